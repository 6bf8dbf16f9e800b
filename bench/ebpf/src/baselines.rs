//! Baselines measured next to sigwall in the same run (`cargo xtask bench`):
//! - `trivial_pass`: returns XDP_PASS, the cost of running any XDP program at all;
//! - `floor`: what any source allowlist must do: read the IPv4 source, one LPM lookup, one
//!   per-CPU counter; `floor6` the same for an IPv6 source. Both read the address with one load
//!   instruction per word, as sigwall's fast path does (`read_unaligned` would cost a byte load
//!   per byte and flatter sigwall);
//! - `floor_any`: `floor` or `floor6` by the EtherType, for floods of both families (veth);
//! - `drop_count`: one per-CPU counter, then XDP_DROP: the most an XDP program can absorb on a
//!   link (end-to-end baseline);
//! - `pass_count`: one per-CPU counter, then XDP_PASS: put in front of an nftables netdev-ingress
//!   rule set so the veth accepts XDP_TX frames and the frames that reach the stack are counted;
//! - `gen_tx`: returns XDP_TX. Run with BPF_PROG_TEST_RUN in live-frames mode on one veth end,
//!   it is the traffic generator of the end-to-end benchmark (each run transmits the test frame);
//! - `gen_seq`: the in-path benchmark's generator: `gen_tx`, but each frame gets the next value of
//!   a sequence field (SCTP TSN, TCP sequence number, GTPv2-C sequence number) with its checksum
//!   updated, so that an SCTP association or TCP connection advances as a live one does (the
//!   same TSN over and over would be judged a retransmission, not decoded); optionally records
//!   the send time of each frame in `SENT_TS`;
//! - `core_count`: on the core end of the in-path lab: counts what arrives and, when stamping,
//!   the latency since `gen_seq` sent it (`LAT_HIST`), then XDP_DROP;
//! - `redirect_dev`: the bare XDP_REDIRECT through a devmap (`FWD_DEV`, keyed by the ingress
//!   ifindex): the floor of in-path forwarding;
//! - `xsk_all`: every frame into the AF_XDP socket of its RX queue (`BENCH_XSKS`): with the
//!   bench's own forwarding loop, the floor of an AF_XDP worker (copy mode on veth).
#![no_std]
#![no_main]
// Inline assembly for one-instruction packet loads at any alignment (see `floor`).
#![feature(asm_experimental_arch)]

use core::arch::asm;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, DevMapHash, LpmTrie, PerCpuArray, XskMap, lpm_trie::Key},
    programs::XdpContext,
};

#[map]
static FLOOR_PREFIXES: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(1 << 20, 0);

#[map]
static FLOOR_PREFIXES6: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(1 << 20, 0);

/// Slot 0: misses, slot 1: hits (both floors).
#[map]
static FLOOR_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// `drop_count` counts in slot 0, `pass_count` in slot 1.
#[map]
static BENCH_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

#[xdp]
pub fn trivial_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[xdp]
pub fn floor(ctx: XdpContext) -> u32 {
    floor_v4(&ctx)
}

#[xdp]
pub fn floor6(ctx: XdpContext) -> u32 {
    floor_v6(&ctx)
}

/// `floor` and `floor6` in one program, chosen by the EtherType (untagged frames only; anything
/// else passes uncounted): the allowlist floor of the veth flood, whose frames are of both
/// families. It reads the packet as any allowlist must, which the counting XDP_DROP does not.
#[xdp]
pub fn floor_any(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + 14 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    // The EtherType as loaded natively, compared with the big-endian constants in that order.
    let ether = ld16(start + 12);
    if ether == 0x0800u16.to_be() {
        floor_v4(&ctx)
    } else if ether == 0x86ddu16.to_be() {
        floor_v6(&ctx)
    } else {
        xdp_action::XDP_PASS
    }
}

/// Untagged IPv4 only: Ethernet (14) + the source address at IPv4 offset 12, one LPM lookup.
#[inline(always)]
fn floor_v4(ctx: &XdpContext) -> u32 {
    let start = ctx.data();
    if start + 14 + 20 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let src = ld32(start + 14 + 12);
    count(FLOOR_PREFIXES.get(Key::new(32, src.to_ne_bytes())).is_some())
}

/// Untagged IPv6 only: Ethernet (14) + the source address at IPv6 offset 8, one LPM lookup.
#[inline(always)]
fn floor_v6(ctx: &XdpContext) -> u32 {
    let start = ctx.data();
    if start + 14 + 40 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let a = [ld64(start + 14 + 8), ld64(start + 14 + 16)];
    // SAFETY: [u64; 2] and [u8; 16] have the same size and no invalid bit patterns; the loads
    // keep the bytes in packet order.
    let src = unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(a) };
    count(FLOOR_PREFIXES6.get(Key::new(128, src)).is_some())
}

/// The floors' one counter, then their verdict.
#[inline(always)]
fn count(hit: bool) -> u32 {
    if let Some(c) = FLOOR_COUNT.get_ptr_mut(hit as u32) {
        // SAFETY: per-CPU slot.
        unsafe { *c += 1 };
    }
    if hit { xdp_action::XDP_PASS } else { xdp_action::XDP_DROP }
}

/// One 16-bit packet load at any alignment.
#[inline(always)]
fn ld16(p: usize) -> u16 {
    let v: u64;
    // SAFETY: the callers checked that [p, p + 2) is inside the frame; the load has no other effect.
    unsafe { asm!("{0} = *(u16 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v as u16
}

/// One 32-bit packet load at any alignment (one `ldx`, as in sigwall's `fast.rs`).
#[inline(always)]
fn ld32(p: usize) -> u32 {
    let v: u64;
    // SAFETY: the callers checked that [p, p + 4) is inside the frame; the load has no other effect.
    unsafe { asm!("{0} = *(u32 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v as u32
}

/// One 64-bit packet load at any alignment.
#[inline(always)]
fn ld64(p: usize) -> u64 {
    let v: u64;
    // SAFETY: the callers checked that [p, p + 8) is inside the frame.
    unsafe { asm!("{0} = *(u64 *)({1} + 0)", out(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)) };
    v
}

#[inline(always)]
fn bump(slot: u32) {
    if let Some(c) = BENCH_COUNT.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *c += 1 };
    }
}

#[xdp]
pub fn drop_count(_ctx: XdpContext) -> u32 {
    bump(0);
    xdp_action::XDP_DROP
}

#[xdp]
pub fn pass_count(_ctx: XdpContext) -> u32 {
    bump(1);
    xdp_action::XDP_PASS
}

#[xdp]
pub fn gen_tx(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_TX
}

/// `gen_spoof`'s frame counter (per CPU: each generator CPU numbers its own frames).
#[map]
static SPOOF_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// `gen_tx` for a spoofed-source flood: each untagged IPv4 frame (no options) leaves with the
/// next source address of 198.19.0.0/16 (65,536 in turn, none in the bench's allowlist), its IPv4
/// header checksum and, for UDP (when not 0) and TCP, its transport checksum updated (RFC 1624).
/// Other frames leave unchanged. A filter that remembers sources sees a new one on every frame.
#[xdp]
pub fn gen_spoof(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    // Ethernet 14 + IPv4 20 + the transport's checksum (TCP: bytes 16-17).
    if start + 34 + 20 > ctx.data_end() || ld32(start + 12) & 0xffff != 0x0008 || ld32(start + 14) & 0xff != 0x45 {
        return xdp_action::XDP_TX;
    }
    let Some(seq) = SPOOF_SEQ.get_ptr_mut(0) else {
        return xdp_action::XDP_TX;
    };
    // SAFETY: per-CPU slot of this run.
    let k = unsafe {
        let k = *seq;
        *seq = k.wrapping_add(1);
        k
    };
    let old = ld32(start + 26).swap_bytes();
    let new = 0xc613_0000 | (k & 0xffff);
    st32(start + 26, new.swap_bytes());
    let patch = |at: usize, zero_means_none: bool| {
        let stored = (ld32(at) & 0xffff) as u16;
        if zero_means_none && stored == 0 {
            return;
        }
        let hc = u16::from_be(stored) as u32;
        // RFC 1624, eqn. 3, for the address's two 16-bit words.
        let mut s: u32 = !hc & 0xffff;
        s += (!(old >> 16) & 0xffff) + (new >> 16);
        s += (!old & 0xffff) + (new & 0xffff);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        let mut c = !s & 0xffff;
        if c == 0 && zero_means_none {
            c = 0xffff;
        }
        st16(at, (c as u16).swap_bytes());
    };
    patch(start + 24, false);
    match ld32(start + 20) >> 24 {
        // Protocol byte (offset 23): UDP, TCP.
        17 => patch(start + 34 + 6, true),
        6 => patch(start + 34 + 16, false),
        _ => {}
    }
    xdp_action::XDP_TX
}

/// The generator's configuration (one entry, written by the bench), u64 words: [0] kind (0: no
/// rewrite, 1: SCTP TSN + CRC32c, 2: TCP sequence number + checksum, 3: GTPv2-C sequence
/// number (no TEID) + UDP checksum; all untagged IPv4 without options), [1] the field's value
/// in the prepared frame, [2] the step per frame, [3] the checksum in the prepared frame
/// (CRC32c as stored, little-endian; the 16-bit checksums in host order), [4] 1 to stamp send
/// times, [5] the time (`bpf_ktime_get_ns`) from which nothing is sent, [6] at most this many
/// frames sent and not yet arrived at the core (0: no limit; a closed loop), [7] `GEN_SEQ` and
/// [8] `ARRIVED` when the configuration was written, [9] one frame per this many ns from [10]
/// (0: no pacing), [11..43] for kind 1, what each bit of (field XOR its first value) flips in
/// the CRC32c. A frame not sent is dropped here and takes no sequence number.
#[map]
static GEN_CFG: Array<[u64; 44]> = Array::with_max_entries(1, 0);

/// Frames sent so far (the generator runs on one CPU).
#[map]
static GEN_SEQ: Array<u64> = Array::with_max_entries(1, 0);

/// Send time of frame k at [k % SENT_SLOTS].
#[map]
static SENT_TS: Array<u64> = Array::with_max_entries(SENT_SLOTS, 0);
const SENT_SLOTS: u32 = 1 << 16;

/// The closed loop's own state: [0] `ARRIVED` when last seen changing, [1] when, [2] frames
/// written off as lost (nothing arrived for `STALL_NS` with the loop full), [3] how often.
#[map]
static GEN_STATE: Array<[u64; 4]> = Array::with_max_entries(1, 0);
const STALL_NS: u64 = 100_000_000;

/// Frames that reached the core end (all CPUs, atomic): the generator's closed loop reads it.
#[map]
static ARRIVED: Array<u64> = Array::with_max_entries(1, 0);

/// The core end's configuration: [0] kind, [1] first value, [2] step, [3] 1 to measure
/// latency, [4..6] the window in which arrivals are counted in `CORE_COUNT[2]`.
#[map]
static CORE_CFG: Array<[u64; 8]> = Array::with_max_entries(1, 0);

/// Frames that reached the core end: slot 0 all, slot 1 the stamped ones measured, slot 2 those
/// inside the window.
#[map]
static CORE_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(3, 0);

/// Latency histogram: bucket i counts latencies in [i * 256 ns, (i + 1) * 256 ns); the last one
/// everything from about 4.2 ms on.
#[map]
static LAT_HIST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LAT_BUCKETS, 0);
const LAT_BUCKETS: u32 = 1 << 14;

#[map]
static FWD_DEV: DevMapHash = DevMapHash::with_max_entries(4, 0);

#[map]
static BENCH_XSKS: XskMap = XskMap::with_max_entries(64, 0);

/// The end of the furthest field `layout` names (a GTPv2-C Echo Request frame is 55 bytes).
const FIELDS_END: usize = 54;

/// Where each kind keeps its sequence field and checksum (packet offsets: Ethernet 14 + IPv4
/// 20 + the transport's own).
#[inline(always)]
fn layout(kind: u64) -> Option<(usize, usize)> {
    match kind {
        // SCTP: common header 12 + chunk header 4 -> TSN; CRC32c at SCTP offset 8.
        1 => Some((34 + 16, 34 + 8)),
        // TCP: sequence number at 4, checksum at 16.
        2 => Some((34 + 4, 34 + 16)),
        // UDP 8 + GTPv2-C without TEID: the sequence number's word at 4; UDP checksum at 6.
        3 => Some((34 + 8 + 4, 34 + 6)),
        _ => None,
    }
}

#[xdp]
pub fn gen_seq(ctx: XdpContext) -> u32 {
    let (Some(cfg), Some(seq), Some(arrived)) = (GEN_CFG.get(0), GEN_SEQ.get_ptr_mut(0), ARRIVED.get_ptr(0)) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if now >= cfg[5] {
        return xdp_action::XDP_DROP;
    }
    // SAFETY: one generator CPU writes the counter; ARRIVED is only read here.
    let (k, arrived) = unsafe { (*seq, core::ptr::read_volatile(arrived)) };
    let sent = k.wrapping_sub(cfg[7]);
    if cfg[6] != 0 {
        let Some(st) = GEN_STATE.get_ptr_mut(0) else {
            return xdp_action::XDP_DROP;
        };
        // SAFETY: the generator's CPU alone uses this slot.
        let st = unsafe { &mut *st };
        if arrived != st[0] {
            st[0] = arrived;
            st[1] = now;
        }
        // Frames written off that arrived after all come back off the books.
        let done = arrived.wrapping_sub(cfg[8]);
        if done.wrapping_add(st[2]) > sent {
            st[2] = sent.saturating_sub(done);
        }
        let in_flight = sent.wrapping_sub(done).wrapping_sub(st[2]);
        if in_flight >= cfg[6] {
            if now.wrapping_sub(st[1]) > STALL_NS {
                st[2] = st[2].wrapping_add(in_flight);
                st[3] += 1;
                st[1] = now;
            }
            return xdp_action::XDP_DROP;
        }
    }
    if cfg[9] != 0 && now < cfg[10] + sent * cfg[9] {
        return xdp_action::XDP_DROP;
    }
    // SAFETY: as above.
    unsafe { *seq = k + 1 };
    if cfg[4] != 0
        && let Some(ts) = SENT_TS.get_ptr_mut((k as u32) & (SENT_SLOTS - 1))
    {
        // SAFETY: an array slot.
        unsafe { *ts = now };
    }
    let Some((field, sum)) = layout(cfg[0]) else {
        return xdp_action::XDP_TX;
    };
    let start = ctx.data();
    if start + FIELDS_END > ctx.data_end() {
        return xdp_action::XDP_TX;
    }
    let first = cfg[1] as u32;
    let v = first.wrapping_add((k as u32).wrapping_mul(cfg[2] as u32));
    st32(start + field, v.swap_bytes());
    if cfg[0] == 1 {
        let mut crc = cfg[3] as u32;
        let d = first ^ v;
        let mut i = 0;
        while i < 32 {
            if (d >> i) & 1 != 0 {
                crc ^= cfg[11 + i] as u32;
            }
            i += 1;
        }
        st32(start + sum, crc);
    } else {
        // RFC 1624, eqn. 3, for the field's two 16-bit words.
        let mut s: u32 = !(cfg[3] as u32) & 0xffff;
        s += (!(first >> 16) & 0xffff) + (v >> 16);
        s += (!first & 0xffff) + (v & 0xffff);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        let mut c = !s & 0xffff;
        if c == 0 && cfg[0] == 3 {
            // UDP sends a computed zero as all ones.
            c = 0xffff;
        }
        st16(start + sum, (c as u16).swap_bytes());
    }
    xdp_action::XDP_TX
}

#[xdp]
pub fn core_count(ctx: XdpContext) -> u32 {
    bump_core(0);
    if let Some(a) = ARRIVED.get_ptr_mut(0) {
        // SAFETY: a live array slot; the add is one atomic instruction (several CPUs may receive;
        // core's atomics have no read-modify-write for this target).
        unsafe { asm!("lock *(u64 *)({0} + 0) += {1}", in(reg) a, in(reg) 1u64, options(nostack, preserves_flags)) };
    }
    let Some(cfg) = CORE_CFG.get(0) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if now >= cfg[4] && now < cfg[5] {
        bump_core(2);
    }
    if cfg[3] == 0 || cfg[2] == 0 {
        return xdp_action::XDP_DROP;
    }
    let Some((field, _)) = layout(cfg[0]) else {
        return xdp_action::XDP_DROP;
    };
    let start = ctx.data();
    if start + FIELDS_END > ctx.data_end() {
        return xdp_action::XDP_DROP;
    }
    let v = ld32(start + field).swap_bytes();
    // checked_div: a division the compiler cannot prove safe would leave a panic path, which
    // the verifier refuses.
    let Some(k) = v.wrapping_sub(cfg[1] as u32).checked_div(cfg[2] as u32) else {
        return xdp_action::XDP_DROP;
    };
    if let Some(ts) = SENT_TS.get(k & (SENT_SLOTS - 1)) {
        let sent = *ts;
        if sent != 0 && now >= sent {
            let b = ((now - sent) >> 8).min(LAT_BUCKETS as u64 - 1) as u32;
            if let Some(c) = LAT_HIST.get_ptr_mut(b) {
                // SAFETY: per-CPU slot.
                unsafe { *c += 1 };
            }
            bump_core(1);
        }
    }
    xdp_action::XDP_DROP
}

#[inline(always)]
fn bump_core(slot: u32) {
    if let Some(c) = CORE_COUNT.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot.
        unsafe { *c += 1 };
    }
}

#[xdp]
pub fn redirect_dev(ctx: XdpContext) -> u32 {
    FWD_DEV.redirect(ctx.ingress_ifindex() as u32, 0).unwrap_or(xdp_action::XDP_DROP)
}

#[xdp]
pub fn xsk_all(ctx: XdpContext) -> u32 {
    BENCH_XSKS.redirect(ctx.rx_queue_index(), 0).unwrap_or(xdp_action::XDP_DROP)
}

/// One 32-bit packet store at any alignment.
#[inline(always)]
fn st32(p: usize, v: u32) {
    // SAFETY: the callers checked that [p, p + 4) is inside the frame.
    unsafe { asm!("*(u32 *)({0} + 0) = {1}", in(reg) p, in(reg) v as u64, options(nostack, preserves_flags)) };
}

/// One 16-bit packet store at any alignment.
#[inline(always)]
fn st16(p: usize, v: u16) {
    // SAFETY: as `st32`, for [p, p + 2).
    unsafe { asm!("*(u16 *)({0} + 0) = {1}", in(reg) p, in(reg) v as u64, options(nostack, preserves_flags)) };
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
