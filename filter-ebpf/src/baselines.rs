//! Baselines measured next to sigwall in the same run (`cargo xtask bench`):
//! - `trivial_pass`: returns XDP_PASS, the cost of running any XDP program at all;
//! - `floor`: what any source allowlist must do: read the IPv4 source, one LPM lookup, one
//!   per-CPU counter.
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
    if hit {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
