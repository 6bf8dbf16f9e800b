//! The fast path: the first pass for the frames that make up nearly all of a signaling link's
//! traffic, in straight-line code that does the floor's work (read the source, one LPM lookup,
//! count) plus only what the verdict needs.
//!
//! It takes a frame with at most two VLAN tags, an IPv4 header without options or an IPv6 header
//! followed directly by the transport, not an IP fragment, UDP, TCP or SCTP whose class the ports
//! (and, for SCTP, a first chunk that is DATA) establish, while deep inspection has nothing
//! blocked. Anything else returns `None` before any side effect (no counter, rate or copy state
//! touched), and the general path (`parse`, `judge` in main.rs) judges the frame from scratch:
//! options, extension headers, fragments, other chunks first, unclassifiable frames, malformed IP
//! or SCTP framing, and blocks. The verdict is `filter_common::decide`'s in both paths, on the
//! same facts; `tests::prog_test_run` checks every class x reason x family x tagging against
//! counters, which both paths reach.
//!
//! Why a separate path instead of a faster general parser: the general parser ends in hundreds of
//! verifier states that have to be joined (`converge`, a per-CPU round trip), loops over tags,
//! extension headers and chunks, and carries offsets it must mask. Here every offset is one of
//! three constants plus a header length, nothing loops, and the state after each test is the
//! verdict's own.

use core::mem::offset_of;

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

use crate::parse::{self, load};

/// IPv4 version 4 with a 20-byte header (IHL 5): options send the frame to the general path.
const IPV4_NO_OPTIONS: u8 = 0x45;

/// A frame's IP layer as the fast path takes it.
struct Ip {
    /// Offset of the IP header.
    l3: usize,
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
    let mut off = EthHdr::LEN;
    let mut ether = load::<u16>(ctx, offset_of!(EthHdr, ether_type))?;
    // Two tags unrolled (the general parser's VLAN_MAX_DEPTH): a third is unclassifiable there.
    if parse::is_vlan(ether) {
        ether = load::<VlanHdr>(ctx, off)?.ether_type;
        off += VlanHdr::LEN;
        if parse::is_vlan(ether) {
            ether = load::<VlanHdr>(ctx, off)?.ether_type;
            off += VlanHdr::LEN;
        }
    }
    let ip = if ether == parse::ETH_P_IP {
        let h = load::<Ipv4Hdr>(ctx, off)?;
        let total = u16::from_be_bytes(h.tot_len) as usize;
        // Flags and fragment offset: MF or a non-zero offset is a fragment (general path).
        if h.vihl != IPV4_NO_OPTIONS
            || total < Ipv4Hdr::LEN
            || off + total > frame
            || h.frags[0] & 0x3f != 0
            || h.frags[1] != 0
        {
            return None;
        }
        Ip { l3: off, l4: off + Ipv4Hdr::LEN, end: off + total, proto: h.proto, v6: false }
    } else if ether == parse::ETH_P_IPV6 {
        let h = load::<Ipv6Hdr>(ctx, off)?;
        let end = off + Ipv6Hdr::LEN + u16::from_be_bytes(h.payload_len) as usize;
        if h.vcf[0] >> 4 != 6 || end > frame {
            return None;
        }
        Ip { l3: off, l4: off + Ipv6Hdr::LEN, end, proto: h.next_hdr, v6: true }
    } else {
        return None;
    };

    let g = generation;
    let (class, over_sctp, check) = match ip.proto {
        parse::IPPROTO_UDP => {
            let h = load::<UdpHdr>(ctx, ip.l4)?;
            let bits =
                parse::port_class(g, u16::from_ne_bytes(h.src), u16::from_ne_bytes(h.dst), PORT_GTPC | PORT_GTPU);
            let class = if bits & parse::PORT_SOURCE_ONLY != 0 {
                return None;
            } else if bits & PORT_GTPC != 0 {
                Class::GtpC
            } else if bits & PORT_GTPU != 0 {
                Class::GtpU
            } else {
                Class::NonSignaling
            };
            (class, false, Check::Gtp(u16::from_be_bytes(h.len) as usize))
        }
        parse::IPPROTO_TCP => {
            let h = load::<TcpHdr>(ctx, ip.l4)?;
            let bits = parse::port_class(g, u16::from_ne_bytes(h.source), u16::from_ne_bytes(h.dest), PORT_DIAMETER);
            if bits & parse::PORT_SOURCE_ONLY != 0 {
                return None;
            }
            let class = if bits == 0 { Class::NonSignaling } else { Class::Diameter };
            (class, false, Check::Tcp(h.doff() as usize * 4))
        }
        parse::IPPROTO_SCTP => {
            let ports = load::<[[u8; 2]; 2]>(ctx, ip.l4)?;
            let bits = parse::port_class(
                g,
                u16::from_ne_bytes(ports[0]),
                u16::from_ne_bytes(ports[1]),
                PORT_DIAMETER | PORT_SIGTRAN,
            );
            // The first chunk, if it is a well-formed DATA chunk with user data; any other
            // first chunk or framing goes to the general path's chunk walk.
            let c = ip.l4 + SctpHdr::LEN;
            if c + parse::SCTP_DATA_HDR_LEN >= ip.end {
                return None;
            }
            let ch = load::<[u8; parse::SCTP_CHUNK_HDR_LEN]>(ctx, c)?;
            let len = u16::from_be_bytes([ch[2], ch[3]]) as usize;
            if ch[0] != parse::SCTP_CHUNK_DATA || len <= parse::SCTP_DATA_HDR_LEN || c + len > ip.end {
                return None;
            }
            let ppid = u32::from_be_bytes(load::<[u8; 4]>(ctx, c + parse::SCTP_DATA_PPID_OFF)?);
            let class = classify::sctp_class(Some(ppid), bits & PORT_DIAMETER != 0, bits & PORT_SIGTRAN != 0);
            let beginning = ch[1] & parse::SCTP_DATA_FLAG_BEGINNING != 0;
            (
                class,
                true,
                if beginning {
                    Check::User(c + parse::SCTP_DATA_HDR_LEN, len - parse::SCTP_DATA_HDR_LEN, ppid)
                } else {
                    Check::None
                },
            )
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

    // Blocks pushed down by deep inspection: their lookups live in the general path.
    let cfg = match crate::INSPECT_CFG.get(0) {
        Some(c) => *c,
        None => InspectCfg::default(),
    };
    if cfg.flow_blocks != 0 || cfg.peer_blocks != 0 {
        return None;
    }

    let peer_id = if ip.v6 {
        match parse::source_v6(ctx, ip.l3) {
            Some(a) => crate::lookup_v6(generation, a),
            None => return None,
        }
    } else {
        match parse::source_v4(ctx, ip.l3) {
            Some(a) => crate::lookup_v4(generation, a),
            None => return None,
        }
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

    let malformed = !check.ok(ctx, &ip, class);
    let facts = Facts { malformed, over_sctp, ..Facts::new(class) };
    let verdict = decide(&facts, peer, global, || match peer {
        Some(p) => crate::rate_ok(peer_id, p),
        None => true,
    });
    crate::count(stats_index(verdict.reason, class), bytes);
    crate::count_peer(peer_id, bytes, verdict.action);
    let blocked = verdict.reason == Reason::FlowBlocked || verdict.reason == Reason::PeerBlocked;
    if cfg.enabled != 0
        && !blocked
        && let Some(p) = peer
    {
        let every = if class == Class::GtpU { p.inspect_gtpu_every } else { p.inspect_every };
        // SAFETY: bpf_get_prandom_u32 has no preconditions.
        if every == 1 || (every > 1 && unsafe { aya_ebpf::helpers::bpf_get_prandom_u32() } % every == 0) {
            crate::flag(ctx, peer_id, p, &facts, &verdict, bytes);
        }
    }
    Some(crate::action(ctx, verdict, class, peer_id))
}

/// The header check a class still needs once its ports are known.
enum Check {
    /// GTP over UDP: the UDP length (from its header).
    Gtp(usize),
    /// Diameter over TCP: the TCP header length.
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
            Check::Gtp(udp_len) => {
                if udp_len < parse::GTP_MIN_UDP_LEN || ip.l4 + udp_len != ip.end {
                    return false;
                }
                let Some(gtp) = load::<[u8; parse::GTP_FIXED_LEN]>(ctx, ip.l4 + UdpHdr::LEN) else {
                    return false;
                };
                let length = u16::from_be_bytes([gtp[2], gtp[3]]);
                let payload = (udp_len - UdpHdr::LEN) as u32;
                if class == Class::GtpC {
                    classify::gtpc_header_ok(gtp[0], gtp[1], length, payload, true)
                } else {
                    classify::gtpu_header_ok(gtp[0], gtp[1], length, payload, true)
                }
            }
            Check::Tcp(doff) => doff >= TcpHdr::LEN && ip.l4 + doff <= ip.end,
            Check::User(off, avail, ppid) => parse::user_header_ok(ctx, off, avail, ppid),
            Check::None => true,
        }
    }
}
