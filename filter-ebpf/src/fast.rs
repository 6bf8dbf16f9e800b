//! The fast path: the first pass for the frames that make up nearly all of a signaling link's
//! traffic, in straight-line code that does the floor's work (read the source, find its peer,
//! count) plus only what the verdict needs. The peer comes from the source cache when it holds
//! the source for this generation (`crate::Probe`), else from one LPM lookup.
//!
//! It takes a frame with at most two VLAN tags, an IPv4 header without options or an IPv6 header
//! followed directly by the transport, not an IP fragment, UDP, TCP or SCTP whose class the ports
//! (and, for SCTP, a first chunk that is DATA) establish, while deep inspection has nothing
//! blocked. Anything else returns `None` before any side effect (no counter, rate or copy state
//! touched), and the general path (`parse`, `judge` in main.rs) judges the frame from scratch:
//! options, extension headers, fragments, other chunks first, unclassifiable frames, malformed IP
//! or SCTP framing, blocks, and in in-path mode the signaling that goes up to the daemon. The
//! verdict is `filter_common::decide`'s in both paths, on the same facts; `tests::prog_test_run`
//! checks every class x reason x family x tagging against counters, which both paths reach.
//!
//! Why a separate path instead of a faster general parser: the general parser ends in hundreds of
//! verifier states that have to be joined (`converge`, a per-CPU round trip), loops over tags,
//! extension headers and chunks, and carries offsets it must mask. Here every offset is one of
//! three constants plus a header length, nothing loops, and the state after each test is the
//! verdict's own.

use core::arch::asm;

use aya_ebpf::programs::XdpContext;
use filter_common::{
    Class, Facts, GlobalPolicy, InspectCfg, MAX_PEERS, PORT_DIAMETER, PORT_GTPC, PORT_GTPU, PORT_SIGTRAN, PeerPolicy,
    Reason, UNKNOWN_PEER_ID, classify, decide, stats_index,
};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    sctp::SctpHdr,
    tcp::TcpHdr,
    udp::UdpHdr,
    vlan::VlanHdr,
};

use crate::parse;

/// IPv4 version 4 with a 20-byte header (IHL 5): options send the frame to the general path.
const IPV4_NO_OPTIONS: u32 = 0x45;
/// IPv4 flags and fragment offset as a native load of bytes 6-7 sees them: MF (0x20 of byte 6)
/// and the 13-bit offset. Any of them set: a fragment (general path).
const IPV4_MF_OFFSET: u16 = 0xff3f;

/// A frame's IP layer as the fast path takes it.
struct Ip {
    /// Address of the IP header, checked to hold the whole fixed header (the verifier knows it
    /// as such; an address recomputed from `ctx.data()` would need a bounds check again).
    hdr: usize,
    /// Offset of the transport header.
    l4: usize,
    /// One past the IP payload.
    end: usize,
    proto: u8,
    v6: bool,
}

/// Judge `ctx` if it is a frame the fast path takes; `None` (nothing touched) otherwise.
#[inline(always)]
pub(crate) fn first_pass(ctx: &XdpContext, generation: u32, global: &GlobalPolicy) -> Option<u32> {
    let frame = ctx.data_end() - ctx.data();
    let p = at(ctx, 0, EthHdr::LEN)?;
    let mut off = EthHdr::LEN;
    let mut ether = ld16(p + EthHdr::LEN - 2);
    // Two tags unrolled (the general parser's VLAN_MAX_DEPTH): a third is unclassifiable there.
    if parse::is_vlan(ether) {
        ether = ld16(at(ctx, off, VlanHdr::LEN)? + 2);
        off += VlanHdr::LEN;
        if parse::is_vlan(ether) {
            ether = ld16(at(ctx, off, VlanHdr::LEN)? + 2);
            off += VlanHdr::LEN;
        }
    }
    let ip = if ether == parse::ETH_P_IP {
        let h = at(ctx, off, Ipv4Hdr::LEN)?;
        // Version/IHL, TOS, total length.
        let w = ld32(h);
        let total = be16(w >> 16);
        if w & 0xff != IPV4_NO_OPTIONS
            || total < Ipv4Hdr::LEN
            || off + total > frame
            || ld16(h + 6) & IPV4_MF_OFFSET != 0
        {
            return None;
        }
        Ip { hdr: h, l4: off + Ipv4Hdr::LEN, end: off + total, proto: ld8(h + 9), v6: false }
    } else if ether == parse::ETH_P_IPV6 {
        let h = at(ctx, off, Ipv6Hdr::LEN)?;
        // Version (high nibble of byte 0); payload length and next header (bytes 4-6).
        let w = ld32(h + 4);
        let end = off + Ipv6Hdr::LEN + be16(w);
        if ld8(h) >> 4 != 6 || end > frame {
            return None;
        }
        Ip { hdr: h, l4: off + Ipv6Hdr::LEN, end, proto: (w >> 16) as u8, v6: true }
    } else {
        return None;
    };

    // The source cache's probe, here where few verifier states exist (see `crate::Probe`). No
    // side effect: a frame the fast path does not take leaves it unused. With the cache on, a
    // probe always finds its slot (an in-bounds index); were it ever not to, the general path
    // judges the frame, so that the states after this point all carry a slot.
    let probe = if crate::source_cache_on() {
        let s = ip.hdr + 8;
        Some(if ip.v6 {
            crate::probe_v6(global.generation, [ld64(s), ld64(s + 8)])?
        } else {
            crate::probe_v4(global.generation, ld32(ip.hdr + 12))?
        })
    } else {
        None
    };
    let g = generation;
    let (class, over_sctp, check, ports) = match ip.proto {
        parse::IPPROTO_UDP => {
            let h = at(ctx, ip.l4, UdpHdr::LEN)?;
            let ports = ld32(h);
            let bits = parse::port_class(g, ports as u16, (ports >> 16) as u16, PORT_GTPC | PORT_GTPU);
            let class = if bits & parse::PORT_SOURCE_ONLY != 0 || (ports >> 16) as u16 == parse::SCTP_UDP_PORT {
                return None;
            } else if bits & PORT_GTPC != 0 {
                Class::GtpC
            } else if bits & PORT_GTPU != 0 {
                Class::GtpU
            } else {
                Class::NonSignaling
            };
            (class, false, Check::Gtp(h), ports)
        }
        parse::IPPROTO_TCP => {
            let h = at(ctx, ip.l4, TcpHdr::LEN)?;
            let ports = ld32(h);
            let bits = parse::port_class(g, ports as u16, (ports >> 16) as u16, PORT_DIAMETER);
            if bits & parse::PORT_SOURCE_ONLY != 0 {
                return None;
            }
            let class = if bits == 0 { Class::NonSignaling } else { Class::Diameter };
            (class, false, Check::Tcp(h), ports)
        }
        parse::IPPROTO_SCTP => {
            // Common header and the first chunk's DATA header in one bounds check: a first chunk
            // that is not a well-formed DATA chunk with user data goes to the general path's
            // chunk walk (SACK first, control chunks, malformed framing).
            let h = at(ctx, ip.l4, SctpHdr::LEN + parse::SCTP_DATA_HDR_LEN)?;
            let ports = ld32(h);
            let bits = parse::port_class(g, ports as u16, (ports >> 16) as u16, PORT_DIAMETER | PORT_SIGTRAN);
            let c = h + SctpHdr::LEN;
            let ch = ld32(c);
            let len = be16(ch >> 16);
            if ch as u8 != parse::SCTP_CHUNK_DATA
                || len <= parse::SCTP_DATA_HDR_LEN
                || ip.l4 + SctpHdr::LEN + len > ip.end
            {
                return None;
            }
            let ppid = u32::from_be(ld32(c + parse::SCTP_DATA_PPID_OFF));
            let class = classify::sctp_class(Some(ppid), bits & PORT_DIAMETER != 0, bits & PORT_SIGTRAN != 0);
            let beginning = (ch >> 8) as u8 & parse::SCTP_DATA_FLAG_BEGINNING != 0;
            let user = ip.l4 + SctpHdr::LEN + parse::SCTP_DATA_HDR_LEN;
            let check = if beginning { Check::User(user, len - parse::SCTP_DATA_HDR_LEN, ppid) } else { Check::None };
            (class, true, check, ports)
        }
        _ => return None,
    };

    let bytes = frame as u64;
    if class == Class::NonSignaling {
        // Judged without the peer: no lookup (the general path does the same).
        let v = decide(&Facts::new(Class::NonSignaling), None, global, || true);
        crate::count(stats_index(v.reason, class), bytes);
        return Some(crate::action(ctx, v, class, UNKNOWN_PEER_ID));
    }

    // The source address, from the header checked above.
    // The source: the cache's answer from the probe above, else the trie's.
    let peer_id = if ip.v6 {
        let s = ip.hdr + 8;
        crate::resolve_v6(probe, generation, [ld64(s), ld64(s + 8)])
    } else {
        crate::resolve_v4(probe, generation, ld32(ip.hdr + 12))
    };
    let peer: Option<&PeerPolicy> = if peer_id != UNKNOWN_PEER_ID {
        match crate::PEER_POLICY.get(generation * MAX_PEERS + peer_id) {
            Some(p) if p.present != 0 => Some(p),
            _ => None,
        }
    } else {
        None
    };
    let peer_id = if peer.is_some() { peer_id } else { UNKNOWN_PEER_ID };

    // A source in no peer while unknown sources are dropped: `decide` refuses it before it looks
    // at the headers or at blocks (its order, step 3), so neither is read for such a flood.
    let refused = peer.is_none() && global.unknown_peer_pass == 0;
    let cfg = if refused {
        InspectCfg::default()
    } else {
        let cfg = match crate::INSPECT_CFG.get(0) {
            Some(c) => *c,
            None => InspectCfg::default(),
        };
        // Blocks pushed down by deep inspection: their lookups live in the general path.
        if cfg.flow_blocks != 0 || cfg.peer_blocks != 0 {
            return None;
        }
        // In path, signaling that goes up to the daemon: the general path hands it up.
        if let Some(p) = peer {
            let every = if class == Class::GtpU { p.inspect_gtpu_every } else { p.inspect_every };
            if (crate::eq(cfg.enabled, 0) ^ 1) & crate::eq(every, 1) & crate::inpath_up_wanted(p, global) != 0 {
                return None;
            }
        }
        cfg
    };
    let malformed = !refused && !check.ok(ctx, &ip, class);
    let facts = Facts { malformed, over_sctp, ..Facts::new(class) };
    let mut verdict = decide(&facts, peer, global, || match peer {
        Some(p) => crate::rate_ok(peer_id, p),
        None => true,
    });
    let blocked = verdict.reason == Reason::FlowBlocked || verdict.reason == Reason::PeerBlocked;
    if cfg.enabled != 0
        && !blocked
        && let Some(p) = peer
    {
        let every = if class == Class::GtpU { p.inspect_gtpu_every } else { p.inspect_every };
        if (every == 1 || (every > 1 && sampled(&ip, ports, every)))
            && !crate::flag_ring(ctx, peer_id, p, &facts, &verdict, bytes)
        {
            verdict = filter_common::uninspected(verdict, p, global);
        }
    }
    // Counted after the copy: a packet whose copy was not made may change its verdict.
    crate::count_verdict(peer_id, class, &verdict, bytes);
    Some(crate::action(ctx, verdict, class, peer_id))
}

/// `crate::sampled` on the fast path's checked header: the same hash from the same bytes, so a
/// flow is sampled alike on both paths.
#[inline(always)]
fn sampled(ip: &Ip, ports: u32, every: u32) -> bool {
    if ip.proto != parse::IPPROTO_UDP {
        let (s, d) = if ip.v6 { (20, 36) } else { (12, 16) };
        return filter_common::classify::flow_sample_hash(ports, ld32(ip.hdr + s), ld32(ip.hdr + d))
            .is_multiple_of(every);
    }
    // SAFETY: bpf_get_prandom_u32 has no preconditions.
    (unsafe { aya_ebpf::helpers::bpf_get_prandom_u32() }).is_multiple_of(every)
}

/// The header check a class still needs once its ports are known.
enum Check {
    /// GTP over UDP: the address of the UDP header (checked to hold 8 bytes).
    Gtp(usize),
    /// Diameter over TCP: the address of the TCP header (checked to hold 20 bytes).
    Tcp(usize),
    /// SCTP DATA that begins a user message: offset and length of the user data, PPID.
    User(usize, usize, u32),
    None,
}

impl Check {
    /// The same checks as `parse::udp`, `parse::tcp` and `parse::user_header_ok` for a whole
    /// (not fragmented) datagram.
    #[inline(always)]
    fn ok(&self, ctx: &XdpContext, ip: &Ip, class: Class) -> bool {
        match *self {
            Check::Gtp(h) => {
                let udp_len = be16(ld16(h + 4) as u32);
                if udp_len < parse::GTP_MIN_UDP_LEN || ip.l4 + udp_len != ip.end {
                    return false;
                }
                let Some(gtp) = at(ctx, ip.l4 + UdpHdr::LEN, parse::GTP_FIXED_LEN) else {
                    return false;
                };
                // Flags, message type, length.
                let w = ld32(gtp);
                let (flags, msg_type, length) = (w as u8, (w >> 8) as u8, be16(w >> 16) as u16);
                let payload = (udp_len - UdpHdr::LEN) as u32;
                if class == Class::GtpC {
                    classify::gtpc_header_ok(flags, msg_type, length, payload, true)
                } else {
                    classify::gtpu_header_ok(flags, msg_type, length, payload, true)
                }
            }
            Check::Tcp(h) => {
                // Data offset: the high nibble of byte 12, in 32-bit words.
                let doff = (ld8(h + 12) >> 4) as usize * 4;
                doff >= TcpHdr::LEN && ip.l4 + doff <= ip.end
            }
            Check::User(off, avail, ppid) => parse::user_header_ok(ctx, off, avail, class, ppid),
            Check::None => true,
        }
    }
}

/// The address of `len` bytes at `off` in the frame, if the frame holds them: one bounds check
/// for all the loads of one header.
#[inline(always)]
fn at(ctx: &XdpContext, off: usize, len: usize) -> Option<usize> {
    let p = ctx.data() + off;
    if p + len > ctx.data_end() { None } else { Some(p) }
}

/// A 16-bit big-endian field loaded natively (the low 16 bits of `v`), in host order.
#[inline(always)]
fn be16(v: u32) -> usize {
    u16::from_be(v as u16) as usize
}

// One-instruction packet loads at any alignment.
//
// `read_unaligned` compiles to one byte load per byte on BPF, plus the shifts and ors that put
// them together again (LLVM's BPF backend never emits a misaligned load): for one GTP-U frame
// some 20 loads and 40 more instructions than these. The verifier accepts misaligned packet
// loads unless the program asks for BPF_F_STRICT_ALIGNMENT or the architecture lacks efficient
// unaligned access (x86-64 and arm64 have it), and the JIT emits one mov for each. No Rust
// construct says "possibly misaligned" and compiles to one load, hence inline assembly. Every
// caller passes an address `at` returned (or an offset inside the range it checked).

#[inline(always)]
fn ld8(p: usize) -> u8 {
    let v: u64;
    // SAFETY: `p` is inside the frame, checked by `at` (see above); the load has no other effect.
    unsafe { asm!("{0} = *(u8 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v as _
}

#[inline(always)]
fn ld16(p: usize) -> u16 {
    let v: u64;
    // SAFETY: as for `ld8`: [p, p + 2) is inside the frame.
    unsafe { asm!("{0} = *(u16 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v as _
}

#[inline(always)]
fn ld32(p: usize) -> u32 {
    let v: u64;
    // SAFETY: as for `ld8`: [p, p + 4) is inside the frame.
    unsafe { asm!("{0} = *(u32 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v as _
}

#[inline(always)]
fn ld64(p: usize) -> u64 {
    let v: u64;
    // SAFETY: as for `ld8`: [p, p + 8) is inside the frame.
    unsafe { asm!("{0} = *(u64 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v as _
}
