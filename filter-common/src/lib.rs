//! Types shared by the sigwall XDP program (`filter-ebpf`) and its controller (`filter-user`).
//!
//! Everything that crosses the kernel/user boundary lives here as `#[repr(C)]` plain data, and so
//! does [`decide`], the one function that turns packet facts and a peer's policy into a verdict.
//! The XDP program calls it per packet; the host tests call the very same code.
#![no_std]

pub mod classify;
pub mod maps;
pub mod rate;

pub use classify::{CLASS_COUNT, Class, DIAMETER_PPIDS, SIGTRAN_PPIDS};

/// Bumped whenever the layout of any pinned map changes; a restarted controller refuses to adopt
/// pins whose layout version differs (see `filter-user::loader`).
pub const MAP_LAYOUT_VERSION: u32 = 4;

/// Peer id 0 is reserved for "no peer matched"; configured peers are numbered from 1.
pub const UNKNOWN_PEER_ID: u32 = 0;
/// Capacity of the per-peer arrays (policy, counters, rate state), including the unknown slot.
pub const MAX_PEERS: u32 = 4096;
/// Default capacity of each LPM trie (per address family, per generation). The tries are created
/// with `BPF_F_NO_PREALLOC`, so unused capacity costs no kernel memory.
pub const DEFAULT_PREFIX_CAPACITY: u32 = 1 << 20;
/// Ports per class in `[ports]`. The XDP program no longer compares them one by one (it reads
/// `PORT_CLASS`, one array lookup per port); the limit stays because `GlobalPolicy.ports` keeps
/// the lists in the pinned `GLOBAL` map, whose layout changes only with `MAP_LAYOUT_VERSION`.
pub const MAX_PORTS_PER_CLASS: usize = 4;
/// Number of policy generations held in the maps: the active one and the one being written.
pub const GENERATIONS: u32 = 2;

/// Why a packet got its verdict. The discriminant indexes the counter array, so the order is part
/// of the pinned map layout: append only, and bump [`MAP_LAYOUT_VERSION`] otherwise.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Allowed = 0,
    NotAllowlisted = 1,
    ClassNotAllowed = 2,
    RateLimited = 3,
    Malformed = 4,
    Fragment = 5,
    Monitored = 6,
    NonSignaling = 7,
    /// Deep inspection blocked this flow (5-tuple) for a while.
    FlowBlocked = 8,
    /// Deep inspection quarantined the sending peer for a while.
    PeerBlocked = 9,
    /// The parser could not establish the class (more VLAN tags than it follows, an IPv6 header
    /// chain longer than it walks, an extension header or IP protocol it does not know, a
    /// tunnel, a signaling source port aimed at a non-client port): judged as signaling of
    /// unknown class by its source, never as non-signaling.
    Unclassifiable = 10,
    /// A later IP fragment whose first fragment was not seen (or whose verdict expired): it
    /// never passes without its first fragment's verdict.
    FragmentUntracked = 11,
    /// A first fragment of a class whose policy is `fragments = "drop"`.
    FragmentPolicy = 12,
    /// A peer's signaling that had to be copied to deep inspection and could not be (its copy
    /// budget spent, or the ring full), under `on_overload = "fail-closed"`: an inspected peer's
    /// message never passes uninspected (review C6, issue 10 item 5).
    InspectOverload = 13,
}

pub const REASON_COUNT: usize = 14;

impl Reason {
    pub const ALL: [Reason; REASON_COUNT] = [
        Reason::Allowed,
        Reason::NotAllowlisted,
        Reason::ClassNotAllowed,
        Reason::RateLimited,
        Reason::Malformed,
        Reason::Fragment,
        Reason::Monitored,
        Reason::NonSignaling,
        Reason::FlowBlocked,
        Reason::PeerBlocked,
        Reason::Unclassifiable,
        Reason::FragmentUntracked,
        Reason::FragmentPolicy,
        Reason::InspectOverload,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::NotAllowlisted => "not_allowlisted",
            Reason::ClassNotAllowed => "class_not_allowed",
            Reason::RateLimited => "rate_limited",
            Reason::Malformed => "malformed",
            Reason::Fragment => "fragment",
            Reason::Monitored => "monitored",
            Reason::NonSignaling => "non_signaling",
            Reason::FlowBlocked => "flow_blocked",
            Reason::PeerBlocked => "peer_blocked",
            Reason::Unclassifiable => "unclassifiable",
            Reason::FragmentUntracked => "fragment_untracked",
            Reason::FragmentPolicy => "fragment_policy",
            Reason::InspectOverload => "inspect_overload",
        }
    }
}

/// Index of the (reason, class) cell in the per-CPU `STATS` array, in the part that counts
/// peers' packets and non-signaling ([`STATS_PEERS`]).
#[inline(always)]
pub const fn stats_index(reason: Reason, class: Class) -> u32 {
    stats_index_in(STATS_PEERS, reason, class)
}

/// Index of the (reason, class) cell in part `part` of the per-CPU `STATS` array.
#[inline(always)]
pub const fn stats_index_in(part: u32, reason: Reason, class: Class) -> u32 {
    (part * REASON_COUNT as u32 + reason as u32) * CLASS_COUNT as u32 + class as u32
}

/// `STATS` holds the reason x class cells three times. Signaling from a source in no peer is
/// counted once, in [`STATS_UNKNOWN_PASSED`] or [`STATS_UNKNOWN_DROPPED`] by its action, and the
/// `(unknown)` peer's packets, bytes, passed and dropped are sums of those two parts (read by
/// `sigwall stats`); everything else is counted in [`STATS_PEERS`] (and a peer's signaling also
/// in `PEER_STATS`). Until layout 4 an unknown source's packet moved two per-CPU counters, the
/// cell and `PEER_STATS[0]`: one more lookup and three more updates on the path of a flood
/// (issue 13).
pub const STATS_PEERS: u32 = 0;
pub const STATS_UNKNOWN_PASSED: u32 = 1;
pub const STATS_UNKNOWN_DROPPED: u32 = 2;
pub const STATS_PARTS: u32 = 3;
pub const STATS_ENTRIES: u32 = STATS_PARTS * (REASON_COUNT * CLASS_COUNT) as u32;

/// The global (or a peer's) mode. `Mode as u8` is stored in `GlobalPolicy::mode`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce = 0,
    Monitor = 1,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Enforce, Mode::Monitor];

    /// The name in policy files, on the command line and in the control protocol.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Per-peer mode as stored in the map: inherit the global mode unless overridden.
pub const PEER_MODE_INHERIT: u8 = 0;
pub const PEER_MODE_ENFORCE: u8 = 1;
pub const PEER_MODE_MONITOR: u8 = 2;

/// `PeerPolicy::flags`: this peer's unclassifiable frames pass (policy `unclassifiable =
/// "pass"`); without it they are dropped.
pub const PEER_FLAG_UNCLASSIFIABLE_PASS: u8 = 1;
/// `PeerPolicy::flags`: this peer's signaling passes uninspected when its copy to deep
/// inspection cannot be made (policy `on_overload = "fail-open"`, counted in `copy_denied`);
/// without it such a packet is dropped as `inspect_overload` (fail-closed, the default).
pub const PEER_FLAG_OVERLOAD_PASS: u8 = 2;

/// What the controller knows about a peer, as the XDP program reads it (map value).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PeerPolicy {
    /// Bit `1 << Class as u32` per allowed class; [`ALLOW_SCTP_ANY`] is the `sctp` wildcard.
    pub allow: u32,
    /// Non-zero for a configured peer; lets the program tell an empty slot from a peer.
    pub present: u8,
    /// `PEER_MODE_*`.
    pub mode: u8,
    /// `PEER_FLAG_*` bits.
    pub flags: u8,
    pub _pad: u8,
    /// GCRA emission interval in ns (1e9 / rate); 0 means no rate limit.
    pub rate_interval_ns: u64,
    /// GCRA burst tolerance in ns: (burst - 1) * interval.
    pub rate_tolerance_ns: u64,
    /// Copy 1 in N of this peer's signaling (other than GTP-U) to deep inspection; 0: none.
    pub inspect_every: u32,
    /// The same for GTP-U (default none: user plane volume).
    pub inspect_gtpu_every: u32,
    /// GCRA emission interval (ns) of this peer's copies to deep inspection: its budget, so one
    /// peer (or a spoofer of its addresses) cannot fill the ring for everyone (review C6).
    /// Copies of packets the first pass passed and of packets it dropped have separate budgets
    /// of this size; 0: unlimited.
    pub copy_interval_ns: u64,
    /// GCRA burst tolerance (ns) of the copy budget.
    pub copy_tolerance_ns: u64,
}

/// Default `inspect_budget_pps` per peer: far above a signaling peer's message rate, far below
/// the daemon's drain rate (about a million records per second), with a burst of 0.1 s.
pub const DEFAULT_INSPECT_BUDGET_PPS: u64 = 20_000;

/// A peer's name, NUL-padded, for `sigwall stats` to read from the pinned maps without the
/// daemon (map value; the XDP program never reads it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerName {
    pub bytes: [u8; 64],
}

impl Default for PeerName {
    fn default() -> Self {
        PeerName { bytes: [0; 64] }
    }
}

/// The `sctp` wildcard: any class carried over SCTP.
pub const ALLOW_SCTP_ANY: u32 = 1 << 31;

/// Global settings of one policy generation (map value, one per generation).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalPolicy {
    /// Policy generation number, for stats and for tests that check which generation judged a packet.
    pub generation: u64,
    /// `Mode as u8`.
    pub mode: u8,
    /// 1: signaling from a source in no peer passes (counted `not_allowlisted`).
    pub unknown_peer_pass: u8,
    /// 1: non-signaling traffic passes.
    pub non_signaling_pass: u8,
    /// `Class::bit()` of every class whose IP fragments are dropped (`fragments = "drop"`);
    /// the other classes' fragments pass with their first fragment's verdict.
    pub fragments_drop: u8,
    /// One past the highest peer id in this generation (ids are stable per peer name, so there
    /// may be holes); readers of the per-peer arrays stop here.
    pub peer_slots: u32,
    /// Number of valid entries in each port list below.
    pub port_counts: [u8; 4],
    /// Port lists in network byte order, indexed by [`PortClass`].
    pub ports: [[u16; MAX_PORTS_PER_CLASS]; 4],
}

/// The registered ports a policy's `[ports]` defaults to: GTP-C (TS 29.274), GTP-U (TS 29.281),
/// Diameter (RFC 6733) and M3UA/SUA (RFC 4666, RFC 3868), indexed by [`PortClass`]. Written once
/// here for the policy parser and for [`GlobalPolicy::default`].
pub const DEFAULT_PORTS: [u16; 4] = [2123, 2152, 3868, 2905];

impl Default for GlobalPolicy {
    fn default() -> Self {
        let mut ports = [[0u16; MAX_PORTS_PER_CLASS]; 4];
        for pc in [PortClass::GtpC, PortClass::GtpU, PortClass::Diameter, PortClass::Sigtran] {
            ports[pc as usize][0] = DEFAULT_PORTS[pc as usize].to_be();
        }
        GlobalPolicy {
            generation: 0,
            mode: Mode::Enforce as u8,
            unknown_peer_pass: 0,
            non_signaling_pass: 1,
            fragments_drop: DEFAULT_FRAGMENTS_DROP,
            peer_slots: 1,
            port_counts: [1; 4],
            ports,
        }
    }
}

/// Classes whose IP fragments are dropped unless the policy says otherwise: SIGTRAN, Diameter,
/// GTP-C and other SCTP. SCTP fragments its messages itself and Linux sends it with DF (RFC 9260
/// path MTU discovery); Diameter over TCP is segmented by MSS; GTP-C messages are small. IP
/// fragments of these are rare on a sane link and were the way around deep inspection (review
/// C3). GTP-U is the exception: tunnelled user packets of a full MTU fragment routinely.
pub const DEFAULT_FRAGMENTS_DROP: u8 =
    (Class::Sigtran.bit() | Class::Diameter.bit() | Class::GtpC.bit() | Class::Sctp.bit()) as u8;

/// How long the verdict of a first fragment is kept for its later fragments: Linux gives up
/// reassembling after 30 s (IPv4 `ipfrag_time`) or 60 s (IPv6 `ip6frag_time`), so a later
/// fragment older than 60 s can no longer complete a datagram.
pub const FRAGMENT_TTL_NS: u64 = 60_000_000_000;

/// Key of the `FRAGMENTS` map: one IP datagram being fragmented (IPv4 mapped into IPv6; the
/// 16-bit IPv4 or 32-bit IPv6 identification).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FragKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// Value of `FRAGMENTS`: the first fragment's verdict, for the later fragments.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FragVerdict {
    /// CLOCK_MONOTONIC ns after which the entry is ignored.
    pub expires_ns: u64,
    pub peer_id: u32,
    /// `Class as u8` of the first fragment.
    pub class: u8,
    /// 0 pass, 1 drop.
    pub action: u8,
    /// 1: the first fragment was copied to deep inspection, so every later one is too (the
    /// daemon reassembles them).
    pub copied: u8,
    pub _pad: u8,
}

/// `Facts::fragment_verdict` of a later fragment.
pub const FRAG_UNTRACKED: u8 = 0;
pub const FRAG_PASS: u8 = 1;
pub const FRAG_DROP: u8 = 2;

/// Bits of the `PORT_CLASS` map: which configured port list a port is in.
pub const PORT_GTPC: u8 = 1;
pub const PORT_GTPU: u8 = 2;
pub const PORT_DIAMETER: u8 = 4;
pub const PORT_SIGTRAN: u8 = 8;
/// Entries of `PORT_CLASS` per generation (one per port number).
pub const PORT_SLOTS: u32 = 65536;

/// Index into [`GlobalPolicy::ports`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortClass {
    GtpC = 0,
    GtpU = 1,
    Diameter = 2,
    Sigtran = 3,
}

impl GlobalPolicy {
    /// Whether `port_be` (network byte order, as read from the packet) is in the list for `pc`.
    #[inline(always)]
    pub fn port_is(&self, pc: PortClass, port_be: u16) -> bool {
        let list = &self.ports[pc as usize];
        let n = self.port_counts[pc as usize] as usize;
        // Constant bound so the verifier sees a finite loop; `n` only shortens it.
        let mut i = 0;
        while i < MAX_PORTS_PER_CLASS {
            if i >= n {
                return false;
            }
            if list[i] == port_be {
                return true;
            }
            i += 1;
        }
        false
    }

    #[inline(always)]
    pub fn mode(&self) -> Mode {
        if self.mode == Mode::Monitor as u8 { Mode::Monitor } else { Mode::Enforce }
    }
}

/// What the controller records about the attached filter, pinned with the maps (index 0 of
/// `META`) so that a restarted or upgraded controller can tell whether it may adopt them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Meta {
    /// [`MAP_LAYOUT_VERSION`] of the controller that created the maps; 0 before anyone did.
    pub layout_version: u32,
    /// [`AttachMode`] as u8 (0 before anyone attached).
    pub attach_mode: u8,
    pub _pad: [u8; 3],
    /// SHA-256 of the policy text the active generation was compiled from.
    pub policy_sha256: [u8; 32],
}

impl Meta {
    /// How the filter was attached; `None` before anyone attached.
    pub fn attach_mode(&self) -> Option<AttachMode> {
        AttachMode::from_raw(self.attach_mode)
    }
}

/// How XDP was attached, as recorded in [`Meta::attach_mode`]. Part of the pinned layout.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Driver (native) mode.
    Native = 1,
    /// Generic mode in the kernel stack.
    Skb = 2,
}

impl AttachMode {
    pub fn from_raw(b: u8) -> Option<AttachMode> {
        match b {
            1 => Some(AttachMode::Native),
            2 => Some(AttachMode::Skb),
            _ => None,
        }
    }
}

/// A flow as deep inspection names it: IPv4 addresses are mapped into IPv6 (`::ffff:a.b.c.d`)
/// so one map serves both families. Ports in network byte order; 0 for ICMP and fragments.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// One write of the key's 40 bytes, not the derive's nine (lengths, fields and padding one by
/// one): the daemon's flow tables hash a key several times per inspected message, and SipHash
/// pays per write. Equal keys have equal bytes, so this agrees with `Eq`.
impl core::hash::Hash for FlowKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let mut b = [0u8; 40];
        b[..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32..34].copy_from_slice(&self.sport.to_ne_bytes());
        b[34..36].copy_from_slice(&self.dport.to_ne_bytes());
        b[36] = self.proto;
        b[37..].copy_from_slice(&self._pad);
        state.write(&b);
    }
}

/// Value of `FLOW_VERDICTS` and `PEER_BLOCKS`: blocked until `expires_ns` (CLOCK_MONOTONIC,
/// as `bpf_ktime_get_ns`); `rule` names the rule that asked for it (index into the rule list).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Block {
    pub expires_ns: u64,
    pub rule: u32,
    pub _pad: u32,
}

/// Switches for deep inspection (index 0 of `INSPECT_CFG`), outside the policy generations
/// because blocks come and go far more often than policies.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InspectCfg {
    /// Global switch: 0 copies nothing to the ring buffer.
    pub enabled: u32,
    /// Number of entries in `FLOW_VERDICTS` (0 skips the lookup).
    pub flow_blocks: u32,
    /// Number of peers in `PEER_BLOCKS` with an entry (0 skips the lookup).
    pub peer_blocks: u32,
    pub _pad: u32,
}

/// Longest copy of a flagged packet into the ring buffer: records are reserved in size classes
/// of 128 to 16,384 bytes (the smallest that holds the frame), so a 300-byte message no longer
/// costs a 2 KiB record, and frames up to 16 KiB (jumbo and multi-buffer XDP) are copied whole.
/// Longer frames are cut to this length and flagged [`INSPECT_FLAG_TRUNCATED`].
pub const INSPECT_SNAPLEN: usize = 16384;

/// Header of a ring-buffer record; `cap_len` bytes of packet follow (the record may be longer:
/// its size class).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InspectHeader {
    /// CLOCK_MONOTONIC at the last tick (`bpf_ktime_get_coarse_ns`: 4 ms resolution at HZ=250).
    pub ts_ns: u64,
    pub ifindex: u32,
    pub peer_id: u32,
    /// Length of the frame on the wire.
    pub len: u32,
    /// Bytes copied.
    pub cap_len: u32,
    pub class: u8,
    pub reason: u8,
    /// 0 pass, 1 drop.
    pub action: u8,
    /// `INSPECT_FLAG_*` bits.
    pub flags: u8,
    pub _pad: [u8; 4],
}

/// `InspectHeader::flags`: the frame is an IP fragment (first or later) of a flow being copied
/// whole; the daemon reassembles by (source, destination, protocol, IP identification).
pub const INSPECT_FLAG_FRAGMENT: u8 = 1;
/// `InspectHeader::flags`: the frame was longer than [`INSPECT_SNAPLEN`] and only its start was
/// copied (`cap_len < len`); the daemon must not judge it as if it were whole.
pub const INSPECT_FLAG_TRUNCATED: u8 = 2;

/// A ring-buffer record of size class `N`.
#[repr(C)]
pub struct InspectRecord<const N: usize> {
    pub header: InspectHeader,
    pub data: [u8; N],
}

/// XDP submits ring records without waking the reader (BPF_RB_NO_WAKEUP) until this many bytes
/// are pending; the daemon also drains the ring every 2 ms. A wake-up per record (an irq_work
/// and a reader wake-up) cost more than the copy itself.
pub const INSPECT_WAKEUP_BYTES: u64 = 256 << 10;

/// Indexes of the per-CPU `INSPECT_STATS` counters.
pub const INSPECT_FLAGGED: u32 = 0;
pub const INSPECT_OVERFLOW: u32 = 1;
/// Copies cut to `INSPECT_SNAPLEN`.
pub const INSPECT_TRUNCATED: u32 = 2;
/// Copies not made because the peer's copy budget was spent.
pub const INSPECT_BUDGET: u32 = 3;
/// Copies of dropped packets not made because the ring was at least half full.
pub const INSPECT_DROP_SKIPPED: u32 = 4;
pub const INSPECT_STATS_ENTRIES: u32 = 5;

/// In-path mode (`sigwall run --iface A --forward-to B`): the two ports of the bump in the wire
/// (index 0 of `INPATH_CFG`). All zero in host mode, where the program never forwards.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InpathCfg {
    /// 1: in-path mode; every frame the first pass passes leaves by the other port.
    pub enabled: u32,
    /// Ifindex of A, the interconnect side (`--iface`): its frames are judged.
    pub iface_ifindex: u32,
    /// Ifindex of B, the core side (`--forward-to`): its frames are forwarded to A unjudged.
    pub core_ifindex: u32,
    /// Frames of one peer that may be in flight to the daemon on one RX queue (0: no limit);
    /// written by the daemon when its workers start and on each policy change.
    pub budget: u32,
}

/// Indexes of the per-CPU `INPATH_STATS` counters (packets and bytes), in-path mode only. They
/// count what happened to a frame after the first pass's verdict, which `STATS` counts as in
/// host mode: a frame is counted once in `STATS` by reason (A's frames) and once here by where
/// it went.
///
/// A's frames the first pass passed, forwarded to B by XDP.
pub const INPATH_FORWARDED: u32 = 0;
/// B's frames (core to interconnect), forwarded to A unjudged (see docs/policy.md, in-path mode).
pub const INPATH_FROM_CORE: u32 = 1;
/// Frames dropped because the forwarding port was missing from `INPATH_FWD` (a broken set-up:
/// never expected; the redirect lookup failed).
pub const INPATH_NO_PORT: u32 = 2;
/// A's frames of inspected peers handed to the daemon through AF_XDP.
pub const INPATH_TO_DAEMON: u32 = 3;
/// A's frames of inspected peers with no AF_XDP socket to take them (daemon not running, or not
/// yet bound), forwarded uninspected: `on_overload = "fail-open"`.
pub const INPATH_FAIL_OPEN: u32 = 4;
/// The same, dropped (`on_overload = "fail-closed"`); `STATS` counts them `inspect_overload`.
pub const INPATH_FAIL_CLOSED: u32 = 5;
/// Of those (fail-open or fail-closed), frames whose peer had its budget of frames in flight
/// on the queue already (the daemon behind on that peer).
pub const INPATH_OVER_BUDGET: u32 = 6;
pub const INPATH_STATS_ENTRIES: u32 = 8;
/// Names of the `INPATH_STATS` counters, by index (`sigwall stats`, metrics).
pub const INPATH_STAT_NAMES: [(u32, &str); 7] = [
    (INPATH_FORWARDED, "forwarded"),
    (INPATH_FROM_CORE, "from_core"),
    (INPATH_NO_PORT, "no_port"),
    (INPATH_TO_DAEMON, "to_daemon"),
    (INPATH_FAIL_OPEN, "fail_open"),
    (INPATH_FAIL_CLOSED, "fail_closed"),
    (INPATH_OVER_BUDGET, "over_budget"),
];

/// In-path mode: the metadata XDP puts in front of a frame it hands to the daemon through
/// AF_XDP (`bpf_xdp_adjust_meta`; copy-mode AF_XDP copies it into the UMEM frame, so the
/// daemon reads it at `desc.addr - INPATH_META_LEN`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InpathMeta {
    /// [`INPATH_META_MAGIC`]: tells metadata from whatever the headroom held.
    pub magic: u32,
    /// The peer the first pass matched (its generation's id, below [`MAX_PEERS`]).
    pub peer_id: u16,
    /// `Class as u8` as the first pass established it.
    pub class: u8,
    pub _pad: u8,
}

pub const INPATH_META_LEN: usize = core::mem::size_of::<InpathMeta>();
/// "SWM1".
pub const INPATH_META_MAGIC: u32 = 0x5357_4d31;
/// Entries of `INPATH_XSKS` (RX queues of the interconnect side with a daemon socket).
pub const INPATH_MAX_QUEUES: u32 = 64;

/// The single active-generation selector (map value at index 0 of `ACTIVE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Active {
    /// 0 or 1: which generation's maps the program reads.
    pub index: u32,
    pub _pad: u32,
}

/// Slots of `SOURCE_CACHE`, the first pass's per-CPU cache of source -> peer id (a power of two).
/// 1024 slots of 32 bytes: 32 KiB per CPU, which holds the few hundred addresses of an
/// interconnect link's partners (signaling comes from a peer's few signaling hosts; GTP-U
/// multiplexes subscribers by TEID, not by address).
pub const SOURCE_CACHE_SLOTS: u32 = 1024;
const SOURCE_CACHE_SHIFT: u32 = 32 - SOURCE_CACHE_SLOTS.trailing_zeros();

/// One slot of `SOURCE_CACHE`: which peer (or none, [`UNKNOWN_PEER_ID`]) the active generation's
/// tries gave for `addr`. Valid only while `tag` is [`source_cache_tag`] of the active generation,
/// the address's family and the running program load: a new generation (every policy apply)
/// invalidates every slot at once, without a write. The words are the address as loaded from the packet (native order); an IPv4
/// address is `addr[0]`'s low 32 bits, the rest zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SourceCacheEntry {
    pub addr: [u64; 2],
    pub tag: u64,
    pub peer_id: u32,
    pub _pad: u32,
}

/// Per-CPU counters of `SOURCE_CACHE_STATS` (one entry): how often the trie answered because the
/// source cache did not hold the source (with the cache off, as on PREEMPT_RT, every lookup), and
/// how often such an answer of "no peer" left a peer's slot in place (a source in no peer sharing
/// a slot with a partner: a spoofed flood shows here). Misses over the frames judged with a source
/// lookup is the share of packets that paid the trie walk, whose cost grows with the allowlist.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SourceCacheStats {
    pub misses: u64,
    pub kept: u64,
}

/// The tag of a slot filled in policy generation `generation` for an IPv4 (`v6` false) or IPv6
/// source, by the program load whose `epoch` the loader drew at random (`SOURCE_CACHE_EPOCH`).
/// Never 0, so an empty slot matches nothing. Generation numbers are never reused within a set of
/// pinned maps (`Filter::compile` counts past both slots' numbers), and the epoch changes with
/// every program load: slots a previous load left in a pinned cache (a restart, an upgrade, a
/// downgrade and back, a fresh start over pins that survived) never match either. The number
/// keeps its low 38 bits (274 billion generations); the epoch's 32 bits are folded in from bit
/// 32 (XOR over the number's top 8 bits), so epochs that differ anywhere give different tags
/// for the same number.
#[inline(always)]
pub const fn source_cache_tag(generation: u64, v6: bool, epoch: u32) -> u64 {
    ((epoch as u64) << 32) ^ (((generation & ((1 << 38) - 1)) << 2) | 2 | v6 as u64)
}

/// The slot of an IPv4 source (its 4 bytes as loaded from the packet, native order): Fibonacci
/// hashing, whose top bits spread addresses that differ only in their last octets.
#[inline(always)]
pub const fn source_cache_slot_v4(addr: u32) -> u32 {
    addr.wrapping_mul(0x9e37_79b1) >> SOURCE_CACHE_SHIFT
}

/// The slot of an IPv6 source (its 16 bytes as two native 64-bit loads): the words folded to 32
/// bits, then as IPv4.
#[inline(always)]
pub const fn source_cache_slot_v6(addr: [u64; 2]) -> u32 {
    let x = addr[0] ^ addr[1].rotate_left(17);
    source_cache_slot_v4((x ^ (x >> 32)) as u32)
}

/// Packets and bytes (per-CPU counter value; the controller sums across CPUs).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// Per-peer counter (per-CPU). Slot [`UNKNOWN_PEER_ID`] counts sources that matched no peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PeerCounter {
    pub packets: u64,
    pub bytes: u64,
    pub passed: u64,
    pub dropped: u64,
    /// Packets copied to deep inspection.
    pub copied: u64,
    /// Packets the first pass passed that should have been copied and were not whole: over the
    /// peer's copy budget, the ring full, longer than the snap length (review C6). Each went
    /// uninspected (`on_overload = "fail-open"`) or was dropped as `inspect_overload`. Copies
    /// of dropped packets not made are counted only globally.
    pub copy_denied: u64,
}

/// What the parser learnt about a packet: the input of [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub class: Class,
    /// Truncated or inconsistent signaling headers.
    pub malformed: bool,
    /// A non-first IP fragment: no transport header; its class is its first fragment's.
    pub later_fragment: bool,
    /// For a later fragment: its first fragment's verdict (`FRAG_*`).
    pub fragment_verdict: u8,
    /// A first fragment (offset 0, more fragments follow).
    pub first_fragment: bool,
    /// The class could not be established (see [`Reason::Unclassifiable`]); `class` is
    /// `Unclassified`.
    pub unclassifiable: bool,
    /// The transport is SCTP (the `sctp` wildcard allows any class carried over it).
    pub over_sctp: bool,
    /// Deep inspection blocked this packet's flow (unexpired entry in `FLOW_VERDICTS`).
    pub flow_blocked: bool,
    /// Deep inspection quarantined the sending peer (unexpired entry in `PEER_BLOCKS`).
    pub peer_blocked: bool,
}

impl Facts {
    pub const fn new(class: Class) -> Self {
        Facts {
            class,
            malformed: false,
            later_fragment: false,
            fragment_verdict: FRAG_UNTRACKED,
            first_fragment: false,
            unclassifiable: false,
            over_sctp: false,
            flow_blocked: false,
            peer_blocked: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pass,
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub reason: Reason,
}

impl Verdict {
    const fn pass(reason: Reason) -> Self {
        Verdict { action: Action::Pass, reason }
    }
}

/// Turn facts and policy into a verdict.
///
/// `peer` is the policy of the peer whose prefix matched the source, if any. `rate_ok` is asked
/// only for a packet that would otherwise be allowed, so a rejected packet never spends a token.
///
/// Order of checks, and why:
/// 1. later fragments carry no ports: they follow their first fragment's verdict (tracked by
///    the caller), are dropped as `fragment_untracked` without one, and are dropped with a
///    quarantined peer;
/// 2. non-signaling traffic is judged by `non_signaling` alone, whoever sends it;
/// 3. signaling from a source in no peer, with `unknown_peer = "drop"`, is refused next
///    (`not_allowlisted`, or `unclassifiable` when its class could not be established): nothing
///    in its headers could change that verdict, so the XDP fast path does not even parse them
///    for a flood of unknown sources (issue 13). Until this order, malformed headers were
///    counted `malformed` before the source was considered, from anyone;
/// 4. malformed signaling is refused before the peer's policy is considered: a forged header
///    from an allowed peer is no better than one from anyone else (nor from an unknown source
///    under `unknown_peer = "pass"`);
/// 5. then the class, the class's fragment policy (a first fragment of a class with
///    `fragments = "drop"` is dropped as `fragment_policy`), and the rate. A frame whose class
///    could not be established (`unclassifiable`) is signaling of unknown class: from a source
///    in no peer it follows `unknown_peer`; from a peer it is dropped unless the peer's policy
///    says `unclassifiable = "pass"` (then it goes on to the rate limit like allowed signaling).
///
/// Any drop becomes `Pass`/`Monitored` when the effective mode (the peer's override, else the
/// global mode) is monitor: monitor mode never drops, it only counts.
#[inline(always)]
pub fn decide<F: FnOnce() -> bool>(
    facts: &Facts,
    peer: Option<&PeerPolicy>,
    global: &GlobalPolicy,
    rate_ok: F,
) -> Verdict {
    // Two separate paths rather than `peer.is_some() || ...`: LLVM likes to OR the pointer
    // into a flag for such conditions, which the BPF verifier refuses ("bitwise operator on
    // pointer prohibited").
    match peer {
        None => decide_unknown(facts, global),
        Some(p) => decide_peer(facts, p, global, rate_ok),
    }
}

/// Checks that do not depend on who sent the packet; `None` means "go on".
#[inline(always)]
fn common(facts: &Facts, global: &GlobalPolicy) -> Option<(Action, Reason)> {
    if facts.class == Class::NonSignaling {
        return Some(if global.non_signaling_pass != 0 {
            (Action::Pass, Reason::NonSignaling)
        } else {
            (Action::Drop, Reason::NonSignaling)
        });
    }
    if facts.malformed {
        return Some((Action::Drop, Reason::Malformed));
    }
    // Verdicts pushed down by deep inspection outrank the allowlist: they exist precisely for
    // traffic the allowlist lets through.
    if facts.flow_blocked {
        return Some((Action::Drop, Reason::FlowBlocked));
    }
    None
}

#[inline(always)]
fn in_mode(mode: Mode, action: Action, reason: Reason) -> Verdict {
    match (action, mode) {
        (Action::Drop, Mode::Monitor) => Verdict::pass(Reason::Monitored),
        _ => Verdict { action, reason },
    }
}

#[inline(always)]
fn decide_unknown(facts: &Facts, global: &GlobalPolicy) -> Verdict {
    let mode = global.mode();
    let pass_unknown = global.unknown_peer_pass != 0;
    if facts.later_fragment {
        return later_fragment(facts, mode);
    }
    let reason = if facts.unclassifiable { Reason::Unclassifiable } else { Reason::NotAllowlisted };
    if !pass_unknown && facts.class != Class::NonSignaling {
        // Before `common`'s header verdicts: see the order above (3.).
        return in_mode(mode, Action::Drop, reason);
    }
    if let Some((action, reason)) = common(facts, global) {
        return in_mode(mode, action, reason);
    }
    if fragment_dropped(facts, global) {
        return in_mode(mode, Action::Drop, Reason::FragmentPolicy);
    }
    Verdict::pass(reason)
}

/// A later fragment follows its first fragment's verdict; without one it is dropped.
#[inline(always)]
fn later_fragment(facts: &Facts, mode: Mode) -> Verdict {
    match facts.fragment_verdict {
        FRAG_PASS => Verdict::pass(Reason::Fragment),
        FRAG_DROP => in_mode(mode, Action::Drop, Reason::Fragment),
        _ => in_mode(mode, Action::Drop, Reason::FragmentUntracked),
    }
}

/// A first fragment of a class whose fragments the policy drops.
#[inline(always)]
fn fragment_dropped(facts: &Facts, global: &GlobalPolicy) -> bool {
    facts.first_fragment && (global.fragments_drop as u32) & facts.class.bit() != 0
}

/// The peer's effective mode: its override, else the global mode.
#[inline(always)]
pub fn peer_mode(p: &PeerPolicy, global: &GlobalPolicy) -> Mode {
    match p.mode {
        PEER_MODE_ENFORCE => Mode::Enforce,
        PEER_MODE_MONITOR => Mode::Monitor,
        _ => global.mode(),
    }
}

/// The verdict of a packet whose copy to deep inspection was needed and not made (the peer's
/// copy budget spent, the ring full). Fail-closed (the default): a packet that would have passed
/// is dropped as `inspect_overload` (monitor mode: passed as `monitored`); with
/// [`PEER_FLAG_OVERLOAD_PASS`] it keeps its verdict. A verdict that already drops is unchanged.
#[inline(always)]
pub fn uninspected(verdict: Verdict, p: &PeerPolicy, global: &GlobalPolicy) -> Verdict {
    if verdict.action == Action::Drop || p.flags & PEER_FLAG_OVERLOAD_PASS != 0 {
        return verdict;
    }
    in_mode(peer_mode(p, global), Action::Drop, Reason::InspectOverload)
}

#[inline(always)]
fn decide_peer<F: FnOnce() -> bool>(facts: &Facts, p: &PeerPolicy, global: &GlobalPolicy, rate_ok: F) -> Verdict {
    let mode = peer_mode(p, global);
    if facts.later_fragment {
        // A quarantined peer's fragments are dropped too (review L1).
        if facts.peer_blocked {
            return in_mode(mode, Action::Drop, Reason::PeerBlocked);
        }
        return later_fragment(facts, mode);
    }
    if let Some((action, reason)) = common(facts, global) {
        return in_mode(mode, action, reason);
    }
    if facts.peer_blocked {
        return in_mode(mode, Action::Drop, Reason::PeerBlocked);
    }
    let mut pass_reason = Reason::Allowed;
    if facts.unclassifiable {
        if p.flags & PEER_FLAG_UNCLASSIFIABLE_PASS == 0 {
            return in_mode(mode, Action::Drop, Reason::Unclassifiable);
        }
        pass_reason = Reason::Unclassifiable;
    } else {
        let allowed = p.allow & facts.class.bit() != 0 || (facts.over_sctp && p.allow & ALLOW_SCTP_ANY != 0);
        if !allowed {
            return in_mode(mode, Action::Drop, Reason::ClassNotAllowed);
        }
    }
    if fragment_dropped(facts, global) {
        return in_mode(mode, Action::Drop, Reason::FragmentPolicy);
    }
    if p.rate_interval_ns != 0 && !rate_ok() {
        return in_mode(mode, Action::Drop, Reason::RateLimited);
    }
    Verdict::pass(pass_reason)
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    macro_rules! pod {
        ($($t:ty),* $(,)?) => {$(
            // SAFETY: every type listed below is #[repr(C)] plain data with no padding holes left
            // uninitialised by the constructors used here, and every bit pattern is a valid value.
            unsafe impl aya::Pod for $t {}
        )*};
    }
    pod!(
        PeerPolicy,
        GlobalPolicy,
        Active,
        Counter,
        PeerCounter,
        PeerName,
        Meta,
        FlowKey,
        Block,
        InspectCfg,
        InspectHeader,
        FragKey,
        FragVerdict,
        InpathCfg,
        SourceCacheEntry,
        SourceCacheStats
    );
}

#[cfg(test)]
mod tests;
