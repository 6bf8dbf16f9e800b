//! Baselines measured next to sigwall in the same run (`cargo xtask bench`):
//! - `trivial_pass`: returns XDP_PASS, the cost of running any XDP program at all;
//! - `floor`: what any source allowlist must do: read the IPv4 source, one LPM lookup, one
//!   per-CPU counter;
//! - `drop_count`: one per-CPU counter, then XDP_DROP: the most an XDP program can absorb on a
//!   link (end-to-end baseline);
//! - `pass_count`: one per-CPU counter, then XDP_PASS: put in front of an nftables netdev-ingress
//!   rule set so the veth accepts XDP_TX frames and the frames that reach the stack are counted;
//! - `gen_tx`: returns XDP_TX. Run with BPF_PROG_TEST_RUN in live-frames mode on one veth end,
//!   it is the traffic generator of the end-to-end benchmark (each run transmits the test frame).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};

#[map]
static FLOOR_PREFIXES: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(1 << 20, 0);

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
    // SAFETY: bounds checked above.
    let src = unsafe { core::ptr::read_unaligned((start + 14 + 12) as *const [u8; 4]) };
    let hit = FLOOR_PREFIXES.get(Key::new(32, src)).is_some();
    let idx = hit as u32;
    if let Some(c) = FLOOR_COUNT.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot.
        unsafe { *c += 1 };
    }
    if hit { xdp_action::XDP_PASS } else { xdp_action::XDP_DROP }
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
