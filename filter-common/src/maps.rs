//! Names and capacities of the program's maps, for the controller. The kernel side's `#[map]`
//! statics must be named by literals; `filter-user` checks that the compiled object holds
//! exactly the maps listed in [`ALL`].

pub const META: &str = "META";
pub const ACTIVE: &str = "ACTIVE";
pub const GLOBAL: &str = "GLOBAL";
pub const PORT_CLASS: &str = "PORT_CLASS";
pub const PEERS_V4_0: &str = "PEERS_V4_0";
pub const PEERS_V4_1: &str = "PEERS_V4_1";
pub const PEERS_V6_0: &str = "PEERS_V6_0";
pub const PEERS_V6_1: &str = "PEERS_V6_1";
pub const PEER_POLICY: &str = "PEER_POLICY";
pub const PEER_INFO: &str = "PEER_INFO";
pub const RATE_STATE: &str = "RATE_STATE";
pub const STATS: &str = "STATS";
pub const PEER_STATS: &str = "PEER_STATS";
pub const FLOW_VERDICTS: &str = "FLOW_VERDICTS";
pub const PEER_BLOCKS: &str = "PEER_BLOCKS";
pub const INSPECT_CFG: &str = "INSPECT_CFG";
pub const INSPECT_RING: &str = "INSPECT_RING";
pub const INSPECT_STATS: &str = "INSPECT_STATS";
/// Per-CPU scratch space of the program (see `filter-ebpf`'s `converge`); holds nothing between
/// packets.
pub const SCRATCH: &str = "SCRATCH";
/// First fragments' verdicts for their later fragments (an LRU hash).
pub const FRAGMENTS: &str = "FRAGMENTS";
/// GCRA state of the peers' copy budgets for deep inspection.
pub const COPY_STATE: &str = "COPY_STATE";
/// In-path mode: the two ports (`filter_common::InpathCfg`).
pub const INPATH_CFG: &str = "INPATH_CFG";
/// In-path mode: the devmap (hash) from the ingress ifindex to the port a frame leaves by.
pub const INPATH_FWD: &str = "INPATH_FWD";
/// In-path mode: per-CPU counters of where frames went (`filter_common::INPATH_*`).
pub const INPATH_STATS: &str = "INPATH_STATS";
/// In-path mode: the daemon's AF_XDP sockets by RX queue of the interconnect side.
pub const INPATH_XSKS: &str = "INPATH_XSKS";
/// In-path mode: per-CPU scratch of one program run (which frame goes up to the daemon).
pub const INPATH_UP: &str = "INPATH_UP";
/// In-path mode: frames sent up and taken by the worker, per RX queue and peer (the credit).
pub const INPATH_SENT: &str = "INPATH_SENT";
pub const INPATH_DONE: &str = "INPATH_DONE";
/// Per-CPU cache of source address -> peer id, valid for one policy generation
/// (`filter_common::SourceCacheEntry`).
pub const SOURCE_CACHE: &str = "SOURCE_CACHE";
/// Per-CPU misses of the source cache and peer slots it kept (`filter_common::SourceCacheStats`).
pub const SOURCE_CACHE_STATS: &str = "SOURCE_CACHE_STATS";

/// Every map of the program. All of them are pinned, so the pins alone describe the running
/// filter (`sigwall stats` reads them without the daemon) and a restarted controller adopts them.
pub const ALL: [&str; 30] = [
    META,
    ACTIVE,
    GLOBAL,
    PORT_CLASS,
    PEERS_V4_0,
    PEERS_V4_1,
    PEERS_V6_0,
    PEERS_V6_1,
    PEER_POLICY,
    PEER_INFO,
    RATE_STATE,
    STATS,
    PEER_STATS,
    FLOW_VERDICTS,
    PEER_BLOCKS,
    INSPECT_CFG,
    INSPECT_RING,
    INSPECT_STATS,
    SCRATCH,
    FRAGMENTS,
    COPY_STATE,
    INPATH_CFG,
    INPATH_FWD,
    INPATH_STATS,
    INPATH_XSKS,
    INPATH_UP,
    INPATH_SENT,
    INPATH_DONE,
    SOURCE_CACHE,
    SOURCE_CACHE_STATS,
];

/// The IPv4 and IPv6 prefix tries of generation slot `slot` (0 or 1).
pub const fn peer_tries(slot: u32) -> (&'static str, &'static str) {
    if slot == 0 { (PEERS_V4_0, PEERS_V6_0) } else { (PEERS_V4_1, PEERS_V6_1) }
}

/// Entries of `FLOW_VERDICTS` (an LRU hash: the oldest block goes first when it is full).
pub const FLOW_VERDICTS_CAPACITY: u32 = 65536;
/// Entries of `FRAGMENTS` (an LRU hash: under a flood of first fragments the oldest datagram's
/// verdict goes first, and its later fragments are then dropped as `fragment_untracked`).
pub const FRAGMENTS_CAPACITY: u32 = 65536;
/// Bytes of the `INSPECT_RING` ring buffer.
pub const INSPECT_RING_BYTES: u32 = 8 << 20;
