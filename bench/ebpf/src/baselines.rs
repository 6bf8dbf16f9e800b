//! Baselines measured next to sigwall in the same run (`cargo xtask bench`):
//! - `trivial_pass`: returns XDP_PASS, the cost of running any XDP program at all;
//! - `floor`: what any source allowlist must do: read the IPv4 source, one LPM lookup, one
//!   per-CPU counter; `floor6` the same for an IPv6 source. Both read the address with one load
//!   instruction per word, as sigwall's fast path does (`read_unaligned` would cost a byte load
//!   per byte and flatter sigwall);
//! - `drop_count`: one per-CPU counter, then XDP_DROP: the most an XDP program can absorb on a
//!   link (end-to-end baseline);
//! - `pass_count`: one per-CPU counter, then XDP_PASS: put in front of an nftables netdev-ingress
//!   rule set so the veth accepts XDP_TX frames and the frames that reach the stack are counted;
//! - `gen_tx`: returns XDP_TX. Run with BPF_PROG_TEST_RUN in live-frames mode on one veth end,
//!   it is the traffic generator of the end-to-end benchmark (each run transmits the test frame).
#![no_std]
#![no_main]
// Inline assembly for one-instruction packet loads at any alignment (see `floor`).
#![feature(asm_experimental_arch)]

use core::arch::asm;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{LpmTrie, PerCpuArray, lpm_trie::Key},
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
    let start = ctx.data();
    // Untagged IPv4 only: Ethernet (14) + the source address at IPv4 offset 12.
    if start + 14 + 20 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let src = ld32(start + 14 + 12);
    let hit = FLOOR_PREFIXES.get(Key::new(32, src.to_ne_bytes())).is_some();
    count(hit)
}

#[xdp]
pub fn floor6(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    // Untagged IPv6 only: Ethernet (14) + the source address at IPv6 offset 8.
    if start + 14 + 40 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let a = [ld64(start + 14 + 8), ld64(start + 14 + 16)];
    // SAFETY: [u64; 2] and [u8; 16] have the same size and no invalid bit patterns; the loads
    // keep the bytes in packet order.
    let src = unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(a) };
    let hit = FLOOR_PREFIXES6.get(Key::new(128, src)).is_some();
    count(hit)
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
