//! sigwall's XDP first pass: classify signaling, look the source up in the active policy
//! generation, decide with `filter_common::decide`, rate-limit, count, pass or drop.
//!
//! Kernel features used, and the first kernel with each: per-CPU arrays (4.6), LPM tries with
//! `BPF_F_NO_PREALLOC` (4.11), LRU hash maps (4.10), XDP native mode on veth (4.19),
//! `bpf_link` for XDP with atomic program replacement (5.9), the BPF ring buffer (5.8) and
//! `bpf_xdp_load_bytes` for copying flagged packets into it (5.18), frozen `.rodata` globals
//! the verifier reads as constants (5.2, `INPATH_LOADED`), the coarse clock (5.11,
//! `bpf_ktime_get_coarse_ns`, for the copy budget and rate limits); in-path mode adds a devmap
//! hash (5.4) and `bpf_redirect_map` with the lookup in the helper (5.3). The floor is therefore
//! **5.18**; tested on 6.18. Maps are legacy `#[map]` definitions (aya-ebpf 0.2), not
//! BTF-described ones.
#![no_std]
#![no_main]
// Inline assembly for one-instruction packet loads at any alignment (see `fast.rs`).
#![feature(asm_experimental_arch)]

mod fast;
mod parse;

use aya_ebpf::{
    Global,
    bindings::xdp_action,
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_NO_WAKEUP, BPF_RB_RING_SIZE},
    helpers::{bpf_get_prandom_u32, bpf_xdp_adjust_meta, bpf_xdp_load_bytes},
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{Array, DevMapHash, LpmTrie, LruHashMap, PerCpuArray, RingBuf, XskMap, lpm_trie::Key},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use filter_common::{
    Action, Active, Block, Class, Counter, DEFAULT_PREFIX_CAPACITY, FlowKey, FragKey, FragVerdict, GENERATIONS,
    GlobalPolicy, INSPECT_BUDGET, INSPECT_DROP_SKIPPED, INSPECT_FLAG_FRAGMENT, INSPECT_FLAG_TRUNCATED, INSPECT_FLAGGED,
    INSPECT_OVERFLOW, INSPECT_SNAPLEN, INSPECT_STATS_ENTRIES, INSPECT_TRUNCATED, InpathCfg, InspectCfg, InspectHeader,
    InspectRecord, MAX_PEERS, Meta, PORT_SLOTS, PeerCounter, PeerName, PeerPolicy, SOURCE_CACHE_SLOTS, STATS_ENTRIES,
    STATS_UNKNOWN_DROPPED, STATS_UNKNOWN_PASSED, SourceCacheEntry, UNKNOWN_PEER_ID, decide, rate, stats_index,
    stats_index_in,
};
use parse::Source;

/// Which generation the program reads. Written only by the controller, after the other
/// generation's maps are complete: the flip is one 4-byte store.
#[map]
static ACTIVE: Array<Active> = Array::with_max_entries(1, 0);

/// Layout version, attach mode and policy hash, for restarts and upgrades (never read here).
#[map]
static META: Array<Meta> = Array::with_max_entries(1, 0);

/// Port -> PORT_* bits (GTP-C, GTP-U, Diameter, SIGTRAN), `generation * PORT_SLOTS + port`.
#[map]
pub(crate) static PORT_CLASS: Array<u8> = Array::with_max_entries(GENERATIONS * PORT_SLOTS, 0);

/// Global settings per generation.
#[map]
static GLOBAL: Array<GlobalPolicy> = Array::with_max_entries(GENERATIONS, 0);

/// Source prefix -> peer id, per generation and family.
#[map]
static PEERS_V4_0: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(DEFAULT_PREFIX_CAPACITY, 0);
#[map]
static PEERS_V4_1: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(DEFAULT_PREFIX_CAPACITY, 0);
#[map]
static PEERS_V6_0: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(DEFAULT_PREFIX_CAPACITY, 0);
#[map]
static PEERS_V6_1: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(DEFAULT_PREFIX_CAPACITY, 0);

/// Peer policies, `generation * MAX_PEERS + peer id`.
#[map]
pub(crate) static PEER_POLICY: Array<PeerPolicy> = Array::with_max_entries(GENERATIONS * MAX_PEERS, 0);

/// Peer names, `generation * MAX_PEERS + peer id`: written by the controller with the policy,
/// read by `sigwall stats` from the pins.
#[map]
static PEER_INFO: Array<PeerName> = Array::with_max_entries(GENERATIONS * MAX_PEERS, 0);

/// GCRA theoretical arrival time per peer id (ns, CLOCK_MONOTONIC). Shared by all CPUs and
/// updated without a lock: two CPUs racing on one peer can each admit a packet in the same slot,
/// so a peer spread over n CPUs may exceed its rate by at most n-1 packets per burst. Peers
/// whose flows hash to one RX queue (the usual case for a few SCTP associations) are exact.
#[map]
static RATE_STATE: Array<u64> = Array::with_max_entries(MAX_PEERS, 0);

/// Flows blocked by deep inspection until an expiry. LRU: under pressure the oldest block goes
/// first rather than a new one being refused.
#[map]
static FLOW_VERDICTS: LruHashMap<FlowKey, Block> =
    LruHashMap::with_max_entries(filter_common::maps::FLOW_VERDICTS_CAPACITY, 0);

/// Peers quarantined by deep inspection, by peer id, until an expiry (0: not blocked).
#[map]
static PEER_BLOCKS: Array<Block> = Array::with_max_entries(MAX_PEERS, 0);

/// Deep-inspection switches (global enable, whether any blocks exist).
#[map]
pub(crate) static INSPECT_CFG: Array<InspectCfg> = Array::with_max_entries(1, 0);

/// Flagged packets for deep inspection: header + up to INSPECT_SNAPLEN bytes. Ring buffers need
/// kernel 5.8.
#[map]
static INSPECT_RING: RingBuf = RingBuf::with_byte_size(filter_common::maps::INSPECT_RING_BYTES, 0);

/// Per-CPU: packets copied to the ring buffer, and packets that found it full.
#[map]
static INSPECT_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(INSPECT_STATS_ENTRIES, 0);

/// GCRA theoretical arrival times of the peers' copy budgets, `peer id * 2` for copies of
/// passed packets, `+ 1` for dropped ones (see `flag`).
#[map]
static COPY_STATE: Array<u64> = Array::with_max_entries(MAX_PEERS * 2, 0);

/// Packets and bytes by reason x class.
#[map]
static STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(STATS_ENTRIES, 0);

/// Packets, bytes, passed, dropped by peer id (slot 0: sources in no peer).
#[map]
static PEER_STATS: PerCpuArray<PeerCounter> = PerCpuArray::with_max_entries(MAX_PEERS, 0);

/// What the parser found, passed through memory the verifier does not track (see [`converge`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Scratch {
    facts: u32,
    l3_off: u32,
    l4_off: u32,
    proto: u32,
    src: u32,
    frag_off: u32,
}

/// One per CPU, written and read back once per packet by [`converge`]; never read by userspace.
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Verdicts of first fragments, for their later fragments: a later fragment never passes
/// without its first fragment's verdict (review C3, L1). LRU, entries expire after
/// `FRAGMENT_TTL_NS`. Needs kernel 4.10 (LRU hash).
#[map]
static FRAGMENTS: LruHashMap<FragKey, FragVerdict> =
    LruHashMap::with_max_entries(filter_common::maps::FRAGMENTS_CAPACITY, 0);

/// Set by the loader, before the verifier runs (`EbpfLoader::override_global`): 1 when the
/// daemon loads the program for in-path mode (`sigwall run --forward-to`), 0 for host and tap
/// mode, tests and benchmarks. It lives in `.rodata`, which aya freezes, so the verifier reads it
/// as a constant (frozen read-only maps, kernel 5.2) and removes the branches it decides: a
/// host-mode program makes none of in-path mode's `INPATH_CFG` lookups on any packet. In-path
/// mode still reads `INPATH_CFG` at run time (the ports arrive after the load, and an adopting
/// daemon may change them).
#[unsafe(no_mangle)]
static INPATH_LOADED: Global<u32> = Global::new(0);

#[inline(always)]
pub(crate) fn inpath_loaded() -> bool {
    INPATH_LOADED.load() != 0
}

/// Per-CPU cache of the tries' answers: source address -> peer id, one slot per address hash,
/// valid for one policy generation (`filter_common::SourceCacheEntry`). A hit replaces the trie
/// walk, whose cost grows with the number of prefixes (one node per prefix bit on the way down),
/// by a hash and a per-CPU array lookup (which the verifier inlines when the JIT supports
/// per-CPU instructions: x86-64 from kernel 6.10; otherwise a direct helper call). The policy itself is not cached: the peer's policy,
/// blocks and budgets are read per packet as before, so only "which peer sent this" is reused.
#[map]
static SOURCE_CACHE: PerCpuArray<SourceCacheEntry> = PerCpuArray::with_max_entries(SOURCE_CACHE_SLOTS, 0);

/// Per-CPU trie walks (misses of [`SOURCE_CACHE`]; every lookup when the cache is off) and peer
/// slots kept against a "no peer" answer (`filter_common::SourceCacheStats`): counted on the
/// walk's path only, so a hit pays nothing for them.
#[map]
static SOURCE_CACHE_STATS: PerCpuArray<filter_common::SourceCacheStats> = PerCpuArray::with_max_entries(1, 0);

/// Set by the loader like [`INPATH_LOADED`]: 0 turns the source cache off (every source walks
/// the trie). The daemon loads it off on a PREEMPT_RT kernel, where two runs of the program on
/// one CPU may interleave and a slot is written in four stores (a half-written slot could pair
/// one source with another's peer); benchmarks of the trie path (`xdp_cost`) load it off too.
#[unsafe(no_mangle)]
static SOURCE_CACHE_ON: Global<u32> = Global::new(1);

/// Set by the loader to a random number drawn for each program load, part of every slot's tag:
/// a slot written by an earlier load (the cache map is pinned and adopted with the others) never
/// matches, whatever generation numbers that load used.
#[unsafe(no_mangle)]
static SOURCE_CACHE_EPOCH: Global<u32> = Global::new(0);

#[inline(always)]
pub(crate) fn source_cache_on() -> bool {
    SOURCE_CACHE_ON.load() != 0
}

/// In-path mode's two ports (index 0); all zero in host mode.
#[map]
static INPATH_CFG: Array<InpathCfg> = Array::with_max_entries(1, 0);

/// In-path forwarding: ingress ifindex -> the other port (A -> B, B -> A). A devmap hash
/// (kernel 5.4) keyed by ifindex, so the key is `ctx.ingress_ifindex()` as is; the redirect
/// looks it up in the helper (5.3), and a missing key takes the `Err` branch.
#[map]
static INPATH_FWD: DevMapHash = DevMapHash::with_max_entries(4, 0);

/// In-path mode: the daemon's AF_XDP sockets, by RX queue of the interconnect side (an XSK
/// takes frames only from the queue it is bound to). Kernel 4.18; the kernel empties a slot
/// when its socket closes (the daemon died), and the redirect's lookup then fails.
#[map]
static INPATH_XSKS: XskMap = XskMap::with_max_entries(filter_common::INPATH_MAX_QUEUES, 0);

/// In-path credit (see `credit`): frames sent up and frames the worker has taken, per RX queue
/// and peer id (`queue * MAX_PEERS + peer`).
#[map]
static INPATH_SENT: Array<u64> = Array::with_max_entries(filter_common::INPATH_MAX_QUEUES * MAX_PEERS, 0);
#[map]
static INPATH_DONE: Array<u64> = Array::with_max_entries(filter_common::INPATH_MAX_QUEUES * MAX_PEERS, 0);

/// Per-CPU packets and bytes by where an in-path frame went (`filter_common::INPATH_*`).
#[map]
static INPATH_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(filter_common::INPATH_STATS_ENTRIES, 0);

// Inlined into the entry point the macro generates: otherwise LLVM leaves the whole program in a
// BPF-to-BPF call that every packet pays for.
#[xdp]
#[inline(always)]
pub fn sigwall(ctx: XdpContext) -> u32 {
    // In-path mode: the core side's frames go to the interconnect side unjudged (the first pass
    // is the interconnect's allowlist; the core is the home network). A program loaded for host
    // mode has none of this: `inpath_loaded` is a constant 0 the verifier folds, and every
    // in-path branch below is dead code it removes.
    if inpath_loaded() {
        let core = match INPATH_CFG.get(0) {
            Some(c) if c.enabled != 0 => c.core_ifindex,
            _ => 0,
        };
        if core != 0 && ctx.ingress_ifindex() as u32 == core {
            return forward(&ctx, filter_common::INPATH_FROM_CORE);
        }
    }
    let action = judge(&ctx);
    if action != xdp_action::XDP_PASS || !inpath_loaded() {
        return action;
    }
    // Read again rather than kept from above: with only `action` live after `judge`, the
    // verifier prunes the many ways out of it into one state here.
    match INPATH_CFG.get(0) {
        Some(c) if c.enabled != 0 => {
            if let Some(u) = INPATH_UP.get_ptr_mut(0) {
                // SAFETY: per-CPU value of this run (see `INPATH_UP`).
                let v = unsafe { core::ptr::replace(u, 0) };
                if v & TO_DAEMON != 0 {
                    return up(&ctx, v & 0xfff, (v >> 12) & 0xf);
                }
            }
            forward(&ctx, filter_common::INPATH_FORWARDED)
        }
        _ => action,
    }
}

/// In-path mode: send the frame out of the other port (every PASS becomes this: ARP/ND,
/// ICMP, non-signaling, allowed signaling), counted under `why`; a port missing from
/// `INPATH_FWD` drops the frame, counted `INPATH_NO_PORT`. The redirect's own fallback action
/// is not used (flags 0): its `Err` would be XDP_ABORTED.
#[inline(always)]
fn forward(ctx: &XdpContext, why: u32) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    match INPATH_FWD.redirect(ctx.ingress_ifindex() as u32, 0) {
        Ok(action) => {
            count_inpath(why, bytes);
            action
        }
        Err(_) => {
            count_inpath(filter_common::INPATH_NO_PORT, bytes);
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
pub(crate) fn count_inpath(index: u32, bytes: u64) {
    if let Some(c) = INPATH_STATS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

/// The whole first pass for one frame. It cannot fail by design: every missing map entry or
/// unreadable header has a defined verdict (fail open only on a half-set-up program, below), so
/// there is no error path to turn into XDP_ABORTED.
#[inline(always)]
fn judge(ctx: &XdpContext) -> u32 {
    let generation = match ACTIVE.get(0) {
        Some(a) => a.index & 1,
        None => 0,
    };
    let Some(global) = GLOBAL.get(generation) else {
        // Unreachable with a loaded policy; fail open so a half-set-up program never cuts a link.
        return xdp_action::XDP_PASS;
    };
    if let Some(action) = fast::first_pass(ctx, generation, global) {
        return action;
    }
    let parsed = converge(parse::parse(ctx, generation));
    let mut facts = parsed.facts;
    let bytes = (ctx.data_end() - ctx.data()) as u64;

    if parsed.link_essential {
        count(stats_index(filter_common::Reason::NonSignaling, facts.class), bytes);
        if facts.first_fragment {
            track_fragment(ctx, &parsed, UNKNOWN_PEER_ID, Class::NonSignaling, Action::Pass, false);
        }
        return xdp_action::XDP_PASS;
    }

    // A later fragment takes its first fragment's class and verdict (and copy decision).
    let mut copy_fragment = false;
    if facts.later_fragment
        && let Some(k) = parse::frag_key(ctx, &parsed)
        // SAFETY: the value is read once, while the program runs.
        && let Some(v) = unsafe { FRAGMENTS.get(k) }
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        && v.expires_ns > unsafe { bpf_ktime_get_ns() }
    {
        let c = v.class as u32;
        if c < filter_common::CLASS_COUNT as u32 {
            // SAFETY: `Class` is `repr(u32)` with the discriminants 0..CLASS_COUNT, checked above.
            facts.class = unsafe { core::mem::transmute::<u32, Class>(c) };
        }
        facts.fragment_verdict = if v.action == 0 { filter_common::FRAG_PASS } else { filter_common::FRAG_DROP };
        copy_fragment = v.copied != 0;
    }

    // Non-signaling traffic is judged without the peer, so skip the lookup on that (bulk) path.
    let needs_peer = facts.class != Class::NonSignaling;
    let peer_id = if needs_peer { lookup_peer(ctx, generation, global.generation, &parsed) } else { UNKNOWN_PEER_ID };
    let peer = if peer_id != UNKNOWN_PEER_ID {
        match PEER_POLICY.get(generation * MAX_PEERS + peer_id) {
            Some(p) if p.present != 0 => Some(p),
            _ => None,
        }
    } else {
        None
    };
    let peer_id = if peer.is_some() { peer_id } else { UNKNOWN_PEER_ID };

    let cfg = match INSPECT_CFG.get(0) {
        Some(c) => *c,
        None => InspectCfg::default(),
    };
    if needs_peer && (cfg.flow_blocks != 0 || cfg.peer_blocks != 0) {
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        if cfg.flow_blocks != 0
            && let Some(k) = parse::flow_key(ctx, &parsed)
            // SAFETY: the value is read once, while the program runs.
            && let Some(b) = unsafe { FLOW_VERDICTS.get(k) }
        {
            facts.flow_blocked = b.expires_ns > now;
        }
        if cfg.peer_blocks != 0
            && peer_id != UNKNOWN_PEER_ID
            && let Some(b) = PEER_BLOCKS.get(peer_id)
        {
            facts.peer_blocked = b.expires_ns > now;
        }
    }

    let mut verdict = decide(&facts, peer, global, || match peer {
        Some(p) => rate_ok(peer_id, p),
        None => true,
    });

    // Packets of flows or peers already blocked are not copied again: the verdict is down here
    // already, and re-inspecting them would only repeat the event.
    let blocked =
        verdict.reason == filter_common::Reason::FlowBlocked || verdict.reason == filter_common::Reason::PeerBlocked;
    let mut copied = false;
    if cfg.enabled != 0
        && !blocked
        && let Some(p) = peer
    {
        let every = if facts.class == Class::GtpU { p.inspect_gtpu_every } else { p.inspect_every };
        // Every fragment of a datagram whose first fragment was copied is copied, so the daemon
        // can reassemble it; other later fragments are not sampled on their own.
        copied = if facts.later_fragment {
            copy_fragment
        } else {
            every == 1 || (every > 1 && sampled(ctx, &parsed, every))
        };
        if copied && !flag(ctx, peer_id, p, global, &facts, &verdict, bytes) {
            copied = false;
            verdict = filter_common::uninspected(verdict, p, global);
        }
    }
    // Counted after the copy: a packet whose copy was not made may change its verdict.
    count_verdict(peer_id, facts.class, &verdict, bytes);
    if facts.first_fragment {
        track_fragment(ctx, &parsed, peer_id, facts.class, verdict.action, copied);
    }
    action(ctx, verdict, facts.class, peer_id)
}

/// Whether a packet is in its peer's 1-in-`every` sample (`every` > 1). SCTP and TCP are sampled
/// per flow (addresses and ports): their reassemblers need every packet of a flow, and a
/// per-packet sample fed them holes, so `sample:N` inspected close to nothing (review M5). GTP
/// datagrams are judged one by one and are sampled per packet.
#[inline(always)]
fn sampled(ctx: &XdpContext, parsed: &parse::Parsed, every: u32) -> bool {
    if (parsed.proto == parse::IPPROTO_SCTP || parsed.proto == parse::IPPROTO_TCP)
        && let Some(h) = parse::flow_hash(ctx, parsed)
    {
        return h.is_multiple_of(every);
    }
    // SAFETY: bpf_get_prandom_u32 has no preconditions.
    (unsafe { bpf_get_prandom_u32() }).is_multiple_of(every)
}

/// The XDP action of a verdict (a drop is logged at debug level).
#[inline(always)]
pub(crate) fn action(ctx: &XdpContext, verdict: filter_common::Verdict, class: Class, peer_id: u32) -> u32 {
    match verdict.action {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => {
            debug!(ctx, "drop reason={} class={} peer={}", verdict.reason as u32, class as u32, peer_id);
            xdp_action::XDP_DROP
        }
    }
}

// Bits of `Scratch::facts` above the class (which takes the low byte).
const F_MALFORMED: u32 = 1 << 8;
const F_LATER_FRAGMENT: u32 = 1 << 9;
const F_UNCLASSIFIABLE: u32 = 1 << 10;
const F_OVER_SCTP: u32 = 1 << 11;
const F_LINK_ESSENTIAL: u32 = 1 << 12;
const F_FIRST_FRAGMENT: u32 = 1 << 13;

/// Join every way through the parser into one verifier state before the verdict.
///
/// The parser ends in hundreds of states that differ only in constants (which class, which
/// flags; the SCTP chunk walk alone multiplies them by its iterations), and without this the
/// verifier explored the whole verdict, counting and copying code once per state: the program
/// sat within 2% of the 1M processed-instruction limit. Storing the result in a per-CPU map
/// value and reading it back (volatile, so the compiler keeps the round trip) turns every
/// field into a value the verifier knows only by its bounds, so those states prune into one.
/// Cost: a few stores and loads to an inlined per-CPU array lookup.
#[inline(always)]
fn converge(p: parse::Parsed) -> parse::Parsed {
    let Some(s) = SCRATCH.get_ptr_mut(0) else {
        return p;
    };
    let f = &p.facts;
    let mut bits = f.class as u32;
    if f.malformed {
        bits |= F_MALFORMED;
    }
    if f.later_fragment {
        bits |= F_LATER_FRAGMENT;
    }
    if f.unclassifiable {
        bits |= F_UNCLASSIFIABLE;
    }
    if f.over_sctp {
        bits |= F_OVER_SCTP;
    }
    if p.link_essential {
        bits |= F_LINK_ESSENTIAL;
    }
    if f.first_fragment {
        bits |= F_FIRST_FRAGMENT;
    }
    let out = Scratch {
        facts: bits,
        l3_off: p.l3_off as u32,
        l4_off: p.l4_off as u32,
        proto: p.proto as u32,
        src: p.src as u32,
        frag_off: p.frag_off as u32,
    };
    // SAFETY: `s` points to this CPU's map value, valid and exclusively ours while the program
    // runs; volatile so that the store and the load below are really made.
    let back = unsafe {
        core::ptr::write_volatile(s, out);
        core::ptr::read_volatile(s)
    };
    let c = back.facts & 0xff;
    let class = if c < filter_common::CLASS_COUNT as u32 {
        // SAFETY: `Class` is `repr(u32)` with the discriminants 0..CLASS_COUNT, checked above.
        unsafe { core::mem::transmute::<u32, Class>(c) }
    } else {
        Class::Unclassified
    };
    let facts = filter_common::Facts {
        class,
        malformed: back.facts & F_MALFORMED != 0,
        later_fragment: back.facts & F_LATER_FRAGMENT != 0,
        fragment_verdict: filter_common::FRAG_UNTRACKED,
        first_fragment: back.facts & F_FIRST_FRAGMENT != 0,
        unclassifiable: back.facts & F_UNCLASSIFIABLE != 0,
        over_sctp: back.facts & F_OVER_SCTP != 0,
        flow_blocked: false,
        peer_blocked: false,
    };
    let src = match back.src {
        1 => Source::V4,
        2 => Source::V6,
        _ => Source::None,
    };
    parse::Parsed {
        facts,
        src,
        link_essential: back.facts & F_LINK_ESSENTIAL != 0,
        l3_off: (back.l3_off as usize) & parse::OFF_MASK,
        l4_off: (back.l4_off as usize) & parse::OFF_MASK,
        proto: back.proto as u8,
        frag_off: (back.frag_off as usize) & parse::OFF_MASK,
    }
}

/// Copy the packet and its verdict to the ring buffer, within the peer's copy budget, or in
/// path hand it up to the daemon (`INPATH_UP`, see below). True if the copy was made (or the
/// packet goes up). A copy not made is counted (globally, and the peer's `copy_denied`); the
/// caller then applies the peer's `on_overload` ([`filter_common::uninspected`]): a packet the
/// first pass passed is dropped (fail-closed) or passes uninspected (fail-open).
///
/// Budgets (review C6): each peer has two GCRA budgets of `inspect_budget_pps`, one for copies of
/// packets the first pass passed and one for packets it dropped, so a spoofer of a peer's
/// address flooding packets that get dropped (malformed, class not allowed) cannot spend the
/// budget of the peer's real traffic. Copies of dropped packets are also skipped while the ring
/// is at least half full: they never take the last half of the ring from anyone's passed
/// traffic.
#[inline(always)]
pub(crate) fn flag(
    ctx: &XdpContext,
    peer_id: u32,
    p: &PeerPolicy,
    global: &GlobalPolicy,
    facts: &filter_common::Facts,
    verdict: &filter_common::Verdict,
    len: u64,
) -> bool {
    let dropped = verdict.action == Action::Drop;
    let every = if facts.class == Class::GtpU { p.inspect_gtpu_every } else { p.inspect_every };
    // In path, a passed message of a peer inspected whole and enforced goes up to the daemon
    // instead of being copied: it is judged before it is delivered. Sampled and monitored
    // peers stay on the copy (detection only, no added latency). Only the general path gets
    // here with such a frame: the fast path leaves it to it (`inpath_up_wanted`), which keeps
    // this branch out of the fast path's many verifier states.
    if (!dropped as u32) & eq(every, 1) & inpath_up_wanted(p, global) != 0 {
        let q = ctx.rx_queue_index();
        if INPATH_XSKS.get(q).is_some()
            && let Some(u) = INPATH_UP.get_ptr_mut(0)
        {
            if credit(q, peer_id) {
                // SAFETY: per-CPU value, this program run's alone; read back and cleared by the
                // entry point before this run ends.
                unsafe { *u = TO_DAEMON | (facts.class as u32) << 12 | peer_id };
                count_copy(peer_id, true, false);
                count_inpath(filter_common::INPATH_TO_DAEMON, len);
                return true;
            }
            count_inpath(filter_common::INPATH_OVER_BUDGET, len);
        }
        // No socket on this queue (daemon not running or not bound yet), or the peer's frames
        // in flight on this queue at its budget: the peer's `on_overload` decides, through the
        // caller's `uninspected`; counted here and in the peer's `copy_denied`.
        count_copy(peer_id, false, false);
        let open = p.flags & filter_common::PEER_FLAG_OVERLOAD_PASS != 0;
        count_inpath(if open { filter_common::INPATH_FAIL_OPEN } else { filter_common::INPATH_FAIL_CLOSED }, len);
        return false;
    }
    copy_to_ring(ctx, peer_id, p, facts, verdict, len)
}

/// In path: one more of `peer_id`'s frames in flight on queue `q`, if its budget allows.
/// `INPATH_SENT[q][peer]` is written only here, by the CPU that polls queue `q` (NAPI runs one
/// queue on one CPU at a time), `INPATH_DONE[q][peer]` only by queue `q`'s worker, so no
/// atomics are needed: in flight = sent - done, racy by at most the worker's current batch, in
/// the direction of fewer frames going up. One peer's flood meets its own budget and never
/// fills the socket's ring for another peer (issue 9, item 5). A budget of 0: no limit.
#[inline(always)]
fn credit(q: u32, peer_id: u32) -> bool {
    let budget = match INPATH_CFG.get(0) {
        Some(c) => c.budget as u64,
        None => 0,
    };
    let slot = (q & (filter_common::INPATH_MAX_QUEUES - 1)) * MAX_PEERS + (peer_id & (MAX_PEERS - 1));
    let (Some(sent), Some(done)) = (INPATH_SENT.get_ptr_mut(slot), INPATH_DONE.get(slot)) else {
        return true;
    };
    // SAFETY: `sent` points into the map value for `slot`, valid for the program's run; only
    // this queue's CPU writes it.
    unsafe {
        if budget != 0 && (*sent).wrapping_sub(*done) >= budget {
            return false;
        }
        *sent += 1;
    }
    true
}

/// In path, a peer whose signaling goes up to the daemon: 1 if its effective mode is enforce
/// and in-path mode is on, else 0. The caller checks that the peer is inspected whole
/// (`every == 1`) for the class. Computed without branches ([`eq`]): a branch per condition
/// split the verifier's states on each path that gets here, and cost it a fifth more
/// instructions.
#[inline(always)]
pub(crate) fn inpath_up_wanted(p: &PeerPolicy, global: &GlobalPolicy) -> u32 {
    if !inpath_loaded() {
        return 0;
    }
    let on = match INPATH_CFG.get(0) {
        Some(c) => c.enabled,
        None => 0,
    };
    let inherit = eq(p.mode as u32, filter_common::PEER_MODE_INHERIT as u32);
    let enforce = eq(p.mode as u32, filter_common::PEER_MODE_ENFORCE as u32)
        | (inherit & eq(global.mode as u32, filter_common::Mode::Enforce as u32));
    (eq(on, 0) ^ 1) & enforce
}

/// 1 if `a == b`, else 0, without a branch (BPF has no set-on-condition instruction, so a
/// comparison's value costs a branch). `a ^ b` is 0 only for equal values; below 2^32 its
/// difference from 1 wraps to the top bit only then.
#[inline(always)]
pub(crate) fn eq(a: u32, b: u32) -> u32 {
    (((a ^ b) as u64).wrapping_sub(1) >> 63) as u32
}

/// The ring copy only, for the fast path (which never sees a frame that goes up; see `flag`).
#[inline(always)]
pub(crate) fn flag_ring(
    ctx: &XdpContext,
    peer_id: u32,
    p: &PeerPolicy,
    facts: &filter_common::Facts,
    verdict: &filter_common::Verdict,
    len: u64,
) -> bool {
    copy_to_ring(ctx, peer_id, p, facts, verdict, len)
}

/// `INPATH_UP`'s value for a frame that goes up to the daemon: this bit, the class in bits
/// 12..16 and the peer id (below `MAX_PEERS` = 2^12) in bits 0..12.
const TO_DAEMON: u32 = 1 << 16;

/// In path: set by [`flag`] when the frame goes up to the daemon (`TO_DAEMON | peer id`), read
/// and cleared by the entry point in the same run. A per-CPU value rather than a return value:
/// threading a third outcome through both paths' verdict code cost the verifier a third more
/// states.
#[map]
static INPATH_UP: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// In path: put the peer id in front of the frame (XDP metadata) and redirect it to this RX
/// queue's AF_XDP socket. `flag` saw the socket in its slot; if it closed since (the daemon
/// died in between) or the metadata cannot be made, the frame is dropped, counted
/// `fail_closed` whatever the peer's `on_overload` (a race of nanoseconds).
#[inline(always)]
fn up(ctx: &XdpContext, peer_id: u32, class: u32) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    // SAFETY: `ctx.ctx` is the xdp_md of this run; a failed adjustment changes nothing.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(filter_common::INPATH_META_LEN as i32)) } == 0 {
        let meta = ctx.metadata();
        if meta + filter_common::INPATH_META_LEN <= ctx.data() {
            let m = meta as *mut filter_common::InpathMeta;
            // SAFETY: [meta, meta + 8) lies before `data`, checked above; the metadata area is
            // this program's.
            unsafe {
                (*m).magic = filter_common::INPATH_META_MAGIC;
                (*m).peer_id = peer_id as u16;
                (*m).class = class as u8;
                (*m)._pad = 0;
            }
            if let Ok(action) = INPATH_XSKS.redirect(ctx.rx_queue_index(), 0) {
                return action;
            }
        }
    }
    count_inpath(filter_common::INPATH_FAIL_CLOSED, bytes);
    xdp_action::XDP_DROP
}

/// Copy the packet and its verdict to the ring buffer (see [`flag`]).
#[inline(always)]
fn copy_to_ring(
    ctx: &XdpContext,
    peer_id: u32,
    p: &PeerPolicy,
    facts: &filter_common::Facts,
    verdict: &filter_common::Verdict,
    len: u64,
) -> bool {
    let dropped = verdict.action == Action::Drop;
    if dropped {
        let ring = INSPECT_RING.query(BPF_RB_RING_SIZE as u64);
        if INSPECT_RING.query(BPF_RB_AVAIL_DATA as u64) * 2 >= ring {
            bump(INSPECT_DROP_SKIPPED);
            count_copy(peer_id, false, dropped);
            return false;
        }
    }
    // The coarse clock (CLOCK_MONOTONIC at the last tick, kernel 5.11): reading the fine one
    // costs an ordered TSC read, some 20-30 ns in a VM, a fifth of the whole copy. The record's
    // time has a tick's resolution (4 ms at HZ=250), plenty for what the daemon times with it
    // (reassembly, blocks, subscriber state); the budget reads the fine clock when it must.
    // SAFETY: bpf_ktime_get_coarse_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if p.copy_interval_ns != 0 && !copy_budget_ok(peer_id * 2 + dropped as u32, p, now) {
        bump(INSPECT_BUDGET);
        count_copy(peer_id, false, dropped);
        return false;
    }
    let len = len as usize;
    if len == 0 {
        return false;
    }
    let truncated = len > INSPECT_SNAPLEN;
    let cap = if truncated { INSPECT_SNAPLEN } else { len };
    let mut flags = if facts.first_fragment || facts.later_fragment { INSPECT_FLAG_FRAGMENT } else { 0 };
    if truncated {
        flags |= INSPECT_FLAG_TRUNCATED;
        bump(INSPECT_TRUNCATED);
    }
    let header = InspectHeader {
        ts_ns: now,
        // SAFETY: `ctx.ctx` is the xdp_md the kernel passed to this program.
        ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
        peer_id,
        len: len as u32,
        cap_len: cap as u32,
        class: facts.class as u8,
        reason: verdict.reason as u8,
        action: dropped as u8,
        flags,
        _pad: [0; 4],
    };
    // The smallest size class that holds the frame: a ring reservation's size is a constant.
    let copied = if cap <= 128 {
        copy::<128>(ctx, &header, cap)
    } else if cap <= 256 {
        copy::<256>(ctx, &header, cap)
    } else if cap <= 512 {
        copy::<512>(ctx, &header, cap)
    } else if cap <= 1024 {
        copy::<1024>(ctx, &header, cap)
    } else if cap <= 2048 {
        copy::<2048>(ctx, &header, cap)
    } else if cap <= 4096 {
        copy::<4096>(ctx, &header, cap)
    } else if cap <= 8192 {
        copy::<8192>(ctx, &header, cap)
    } else {
        copy::<INSPECT_SNAPLEN>(ctx, &header, cap)
    };
    // A frame cut to the snap length is not inspected whole: the daemon counts it
    // (`inspect.truncated`) and the verdict treats it as not copied.
    let whole = copied && !truncated;
    count_copy(peer_id, whole, dropped);
    whole
}

/// Reserve a record of size class `N` (a power of two, at least `cap`), fill it and submit it.
/// False if the ring is full (counted) or the copy failed.
#[inline(always)]
fn copy<const N: usize>(ctx: &XdpContext, header: &InspectHeader, cap: usize) -> bool {
    let Some(mut entry) = INSPECT_RING.reserve::<InspectRecord<N>>(0) else {
        bump(INSPECT_OVERFLOW);
        return false;
    };
    // The same value in 1..=N, in a form the verifier can bound (it does not carry `cap <= N`
    // and `cap != 0` across the copies LLVM makes).
    let cap = ((cap - 1) & (N - 1)) + 1;
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points to a reserved, exclusively owned record; bpf_xdp_load_bytes writes at
    // most `cap` <= N bytes into `data`.
    let ok = unsafe {
        (*rec).header = *header;
        bpf_xdp_load_bytes(ctx.ctx, 0, (*rec).data.as_mut_ptr() as *mut _, cap as u32) == 0
    };
    if ok {
        // Wake the reader only once a backlog builds up; it drains the ring every 2 ms anyway.
        let wake = INSPECT_RING.query(BPF_RB_AVAIL_DATA as u64) >= filter_common::INSPECT_WAKEUP_BYTES;
        entry.submit(if wake { 0 } else { BPF_RB_NO_WAKEUP as u64 });
        bump(INSPECT_FLAGGED);
    } else {
        entry.discard(0);
    }
    ok
}

/// One copy against a peer's budget (`slot`: peer id * 2, + 1 for dropped packets), at
/// `coarse`, the coarse clock.
///
/// The coarse clock is never ahead of the fine one, and GCRA with an earlier `now` only admits
/// less: a copy the coarse clock admits, the fine clock admits too. So the fine clock is read
/// only for a copy the coarse clock would refuse (a peer at its budget), and every refusal is
/// the fine clock's: no copy is refused that the exact budget admits (the coarse clock alone
/// refused legitimate copies in a burst and was reverted in d483c59). The cost: the TAT
/// written from the coarse clock can be up to a tick early, so a peer may get at most one
/// tick's worth of budget more (80 copies in 4 ms at the default 20,000/s).
#[inline(always)]
fn copy_budget_ok(slot: u32, p: &PeerPolicy, coarse: u64) -> bool {
    let Some(tat) = COPY_STATE.get_ptr_mut(slot) else {
        return true;
    };
    // SAFETY: `tat` points into the map value for `slot`, valid for the program's run. Racing
    // CPUs may each admit a copy in the same slot, as with the rate limiter.
    unsafe {
        let next = match rate::gcra(*tat, coarse, p.copy_interval_ns, p.copy_tolerance_ns) {
            Some(next) => Some(next),
            // SAFETY: bpf_ktime_get_ns has no preconditions.
            None => rate::gcra(*tat, bpf_ktime_get_ns(), p.copy_interval_ns, p.copy_tolerance_ns),
        };
        match next {
            Some(next) => {
                *tat = next;
                true
            }
            None => false,
        }
    }
}

/// A copy made, or one not made of a packet the first pass passed (`copy_denied`: a packet that
/// went uninspected or was dropped for it, which the daemon reports). Copies of dropped packets
/// not made are only counted globally (`inspect_drop_skipped`, `inspect_budget`,
/// `inspect_overflow`): nobody received those packets.
#[inline(always)]
fn count_copy(peer_id: u32, copied: bool, dropped: bool) {
    if !copied && dropped {
        return;
    }
    if let Some(c) = PEER_STATS.get_ptr_mut(peer_id) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            if copied {
                (*c).copied += 1;
            } else {
                (*c).copy_denied += 1;
            }
        }
    }
}

/// Remember a first fragment's verdict for its later fragments. A full map evicts the oldest
/// entry (LRU): that datagram's later fragments are then dropped as `fragment_untracked`.
#[inline(always)]
fn track_fragment(ctx: &XdpContext, p: &parse::Parsed, peer_id: u32, class: Class, action: Action, copied: bool) {
    let Some(k) = parse::frag_key(ctx, p) else {
        return;
    };
    let v = FragVerdict {
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        expires_ns: unsafe { bpf_ktime_get_ns() } + filter_common::FRAGMENT_TTL_NS,
        peer_id,
        class: class as u8,
        action: (action == Action::Drop) as u8,
        copied: copied as u8,
        _pad: 0,
    };
    let _ = FRAGMENTS.insert(k, v, 0);
}

#[inline(always)]
fn bump(index: u32) {
    if let Some(c) = INSPECT_STATS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn lookup_peer(ctx: &XdpContext, generation: u32, number: u64, p: &parse::Parsed) -> u32 {
    match p.src {
        Source::V4 => match parse::source_v4(ctx, p.l3_off) {
            Some(a) => lookup_v4(generation, number, u32::from_ne_bytes(a)),
            None => UNKNOWN_PEER_ID,
        },
        Source::V6 => match parse::source_v6(ctx, p.l3_off) {
            // SAFETY: [u8; 16] and [u64; 2] have the same size; every bit pattern is valid.
            Some(a) => lookup_v6(generation, number, unsafe { core::mem::transmute::<[u8; 16], [u64; 2]>(a) }),
            None => UNKNOWN_PEER_ID,
        },
        Source::None => UNKNOWN_PEER_ID,
    }
}

/// What the source cache says about a source before the trie is asked: its slot and, in
/// `cached`, the peer id the slot holds for this source in this generation, or
/// [`SOURCE_CACHE_MISS`]. Taking it is a hash, an inlined per-CPU array lookup and a compare
/// without a branch, so the fast path takes it before it classifies the transport: the verifier
/// checks the probe once per Ethernet/IP state, not once per transport state, and on a hit the
/// trie is never walked.
#[derive(Clone, Copy)]
pub(crate) struct Probe {
    slot: *mut SourceCacheEntry,
    tag: u64,
    cached: u32,
}

/// A slot holding another source, or one from another generation.
const SOURCE_CACHE_MISS: u32 = u32::MAX;

/// Probe the source cache for an IPv4 source (its bytes as loaded from the packet) in the
/// generation numbered `number`. `None` only with the cache off (or the impossible failure of an
/// in-bounds per-CPU array lookup): the caller then walks the trie alone.
#[inline(always)]
pub(crate) fn probe_v4(number: u64, a: u32) -> Option<Probe> {
    let tag = filter_common::source_cache_tag(number, false, SOURCE_CACHE_EPOCH.load());
    let slot = source_cache_slot(filter_common::source_cache_slot_v4(a))?;
    // SAFETY: per-CPU slot, only this CPU reads or writes it while the program runs.
    let (diff, id) = unsafe { (((*slot).tag ^ tag) | ((*slot).addr[0] ^ a as u64), (*slot).peer_id) };
    Some(Probe { slot, tag, cached: id | all_ones_unless_zero(diff) })
}

/// As [`probe_v4`], for an IPv6 source (its 16 bytes as two native 64-bit loads).
#[inline(always)]
pub(crate) fn probe_v6(number: u64, a: [u64; 2]) -> Option<Probe> {
    let tag = filter_common::source_cache_tag(number, true, SOURCE_CACHE_EPOCH.load());
    let slot = source_cache_slot(filter_common::source_cache_slot_v6(a))?;
    // SAFETY: per-CPU slot, only this CPU reads or writes it while the program runs.
    let (diff, id) =
        unsafe { (((*slot).tag ^ tag) | ((*slot).addr[0] ^ a[0]) | ((*slot).addr[1] ^ a[1]), (*slot).peer_id) };
    Some(Probe { slot, tag, cached: id | all_ones_unless_zero(diff) })
}

/// 0 for 0, `u32::MAX` for anything else, in four ALU instructions and no branch: the top bit of
/// `x | -x` is set exactly when `x` is not 0, and an arithmetic shift spreads it. Written in
/// assembly because LLVM turns the same Rust into a compare, and BPF has no conditional move:
/// the branch would split the verifier's state in two for everything after the probe.
#[inline(always)]
fn all_ones_unless_zero(x: u64) -> u32 {
    let m: u64;
    // SAFETY: register arithmetic only.
    unsafe {
        core::arch::asm!(
            "{m} = 0",
            "{m} -= {x}",
            "{m} |= {x}",
            "{m} s>>= 63",
            m = out(reg) m,
            x = in(reg) x,
            options(pure, nomem, nostack, preserves_flags),
        )
    };
    m as u32
}

/// The peer id of an IPv4 source `a` in generation slot `generation`, from the probe if it hit,
/// else from the trie, whose answer is then cached (see [`cache_answer`]).
#[inline(always)]
pub(crate) fn resolve_v4(probe: Option<Probe>, generation: u32, a: u32) -> u32 {
    match probe {
        Some(p) if p.cached != SOURCE_CACHE_MISS => peer_of(Some(&p.cached)),
        Some(p) => cache_answer(p, [a as u64, 0], trie_v4(generation, a)),
        None => {
            count_walk(0);
            trie_v4(generation, a)
        }
    }
}

/// As [`resolve_v4`], for an IPv6 source.
#[inline(always)]
pub(crate) fn resolve_v6(probe: Option<Probe>, generation: u32, a: [u64; 2]) -> u32 {
    match probe {
        Some(p) if p.cached != SOURCE_CACHE_MISS => peer_of(Some(&p.cached)),
        Some(p) => cache_answer(p, a, trie_v6(generation, a)),
        None => {
            count_walk(0);
            trie_v6(generation, a)
        }
    }
}

/// Probe and resolve in one place, for the general path (one state reaches its lookup).
#[inline(always)]
pub(crate) fn lookup_v4(generation: u32, number: u64, a: u32) -> u32 {
    resolve_v4(probe_v4(number, a), generation, a)
}

/// As [`lookup_v4`], for an IPv6 source.
#[inline(always)]
pub(crate) fn lookup_v6(generation: u32, number: u64, a: [u64; 2]) -> u32 {
    resolve_v6(probe_v6(number, a), generation, a)
}

#[inline(always)]
fn source_cache_slot(slot: u32) -> Option<*mut SourceCacheEntry> {
    if source_cache_on() { SOURCE_CACHE.get_ptr_mut(slot) } else { None }
}

/// Keep the trie's answer `id` for `addr` in the probed slot and return it, unless the answer is
/// "no peer" and the slot names a peer of this generation: a flood from sources in no peer
/// (spoofed, one new address per packet) then cannot push the partners' addresses out, and the
/// partners keep their hits while the flood pays its trie walks. Two partners whose addresses
/// share a slot take turns.
///
/// The slot is always written, with either the new entry or its own old one, chosen by masks
/// rather than a branch: a branch on `id` would split the verifier's state for everything after
/// the lookup (measured: 11k more processed instructions).
#[inline(always)]
fn cache_answer(p: Probe, addr: [u64; 2], id: u32) -> u32 {
    let e = p.slot;
    // SAFETY: per-CPU slot, only this CPU reads or writes it while the program runs.
    let stays = unsafe {
        let old = *e;
        // All ones where the old entry stays: no peer now, a peer there, of this generation.
        let stays = !all_ones_unless_zero(id as u64)
            & all_ones_unless_zero(old.peer_id as u64)
            & !all_ones_unless_zero((old.tag | 1) ^ (p.tag | 1));
        let stays64 = ((stays as i32) as i64) as u64;
        let pick = |was: u64, new: u64| new ^ ((new ^ was) & stays64);
        (*e).addr = [pick(old.addr[0], addr[0]), pick(old.addr[1], addr[1])];
        (*e).tag = pick(old.tag, p.tag);
        (*e).peer_id = id ^ ((id ^ old.peer_id) & stays);
        stays
    };
    count_walk((stays & 1) as u64);
    id
}

/// One trie walk in `SOURCE_CACHE_STATS` (`kept`: 1 if the walk's "no peer" left a partner's
/// slot in place). Counted with the cache off too, where every lookup walks the trie: the
/// counter is what it says, trie walks, and an SRE never reads 0 as "every packet hit".
#[inline(always)]
fn count_walk(kept: u64) {
    if let Some(c) = SOURCE_CACHE_STATS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, only this CPU writes it while the program runs.
        unsafe {
            (*c).misses += 1;
            (*c).kept += kept;
        }
    }
}

/// The trie's peer id for an IPv4 source in generation slot `generation`.
#[inline(always)]
fn trie_v4(generation: u32, a: u32) -> u32 {
    let key = Key::new(32, a.to_ne_bytes());
    let found = if generation == 0 {
        let v = PEERS_V4_0.get(&key);
        apart::<0>();
        v
    } else {
        let v = PEERS_V4_1.get(&key);
        apart::<1>();
        v
    };
    peer_of(found)
}

/// The trie's peer id for an IPv6 source in generation slot `generation`.
#[inline(always)]
fn trie_v6(generation: u32, a: [u64; 2]) -> u32 {
    // SAFETY: [u64; 2] and [u8; 16] have the same size, and every bit pattern is valid for both;
    // the words hold the bytes in packet order.
    let key = Key::new(128, unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(a) });
    let found = if generation == 0 {
        let v = PEERS_V6_0.get(&key);
        apart::<0>();
        v
    } else {
        let v = PEERS_V6_1.get(&key);
        apart::<1>();
        v
    };
    peer_of(found)
}

#[inline(always)]
fn peer_of(found: Option<&u32>) -> u32 {
    match found {
        Some(id) if *id < MAX_PEERS => *id,
        _ => UNKNOWN_PEER_ID,
    }
}

/// Keeps the lookups of the two generations' tries at two call sites.
///
/// Left alone, LLVM merges `if g == 0 { A.get(k) } else { B.get(k) }` into one call with the map
/// pointer selected. The verifier then sees two maps at one call and cannot turn it into a
/// direct call of the trie's lookup: every packet went through `bpf_map_lookup_elem` and an
/// indirect call (`map->ops`), a retpoline on this kernel: about 9 ns, half the cost of the
/// lookup itself (measured with TEST_RUN). Each branch ends in an empty assembly statement
/// that differs from the other's, so there is no common tail to merge; the statement emits no
/// instruction.
#[inline(always)]
fn apart<const G: u32>() {
    // SAFETY: an assembly comment: no instruction, no effect.
    unsafe { core::arch::asm!("/* generation {g} */", g = const G, options(nomem, nostack, preserves_flags)) };
}

/// A packet against its peer's rate limit. As for the copy budget (see [`copy_budget_ok`]), the
/// coarse clock admits and only a refusal reads the fine clock: every refusal is exact, and a
/// peer may get at most one tick's worth of its rate more.
#[inline(always)]
pub(crate) fn rate_ok(peer_id: u32, p: &PeerPolicy) -> bool {
    let Some(tat) = RATE_STATE.get_ptr_mut(peer_id) else {
        return true;
    };
    // SAFETY: `tat` points into the map value for `peer_id`, valid for the program's run; the
    // clock helpers have no preconditions.
    unsafe {
        let next = match rate::gcra(*tat, bpf_ktime_get_coarse_ns(), p.rate_interval_ns, p.rate_tolerance_ns) {
            Some(next) => Some(next),
            None => rate::gcra(*tat, bpf_ktime_get_ns(), p.rate_interval_ns, p.rate_tolerance_ns),
        };
        match next {
            Some(next) => {
                *tat = next;
                true
            }
            None => false,
        }
    }
}

/// Count one judged packet once: non-signaling in its reason x class cell; signaling from a
/// source in no peer in the unknown sources' cells of its action (the `(unknown)` peer's
/// counters are sums of those); a peer's signaling in its cell and in `PEER_STATS`.
#[inline(always)]
pub(crate) fn count_verdict(peer_id: u32, class: Class, verdict: &filter_common::Verdict, bytes: u64) {
    if class == Class::NonSignaling {
        count(stats_index(verdict.reason, class), bytes);
    } else if peer_id == UNKNOWN_PEER_ID {
        let part = match verdict.action {
            Action::Pass => STATS_UNKNOWN_PASSED,
            Action::Drop => STATS_UNKNOWN_DROPPED,
        };
        count(stats_index_in(part, verdict.reason, class), bytes);
    } else {
        count(stats_index(verdict.reason, class), bytes);
        count_peer(peer_id, bytes, verdict.action);
    }
}

#[inline(always)]
pub(crate) fn count(index: u32, bytes: u64) {
    if let Some(c) = STATS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

#[inline(always)]
pub(crate) fn count_peer(peer_id: u32, bytes: u64, action: Action) {
    if let Some(c) = PEER_STATS.get_ptr_mut(peer_id) {
        // SAFETY: per-CPU slot, as above.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            match action {
                Action::Pass => (*c).passed += 1,
                Action::Drop => (*c).dropped += 1,
            }
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The kernel's licence string for "MIT or GPL-2.0" (GPL-compatible, as GPL-only helpers need);
/// the crate's `license` field in Cargo.toml says the same in SPDX.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
