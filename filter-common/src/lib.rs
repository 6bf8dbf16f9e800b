//! Types shared by the sigwall XDP program (`filter-ebpf`) and its controller (`filter-user`).
//!
//! Everything that crosses the kernel/user boundary lives here as `#[repr(C)]` plain data, and so
//! does [`decide`], the one function that turns packet facts and a peer's policy into a verdict.
//! The XDP program calls it per packet; the host tests call the very same code.
#![no_std]

pub mod classify;
pub mod rate;

pub use classify::{CLASS_COUNT, Class, DIAMETER_PPIDS, SIGTRAN_PPIDS};

/// Bumped whenever the layout of any pinned map changes; a restarted controller refuses to adopt
/// pins whose layout version differs (see `filter-user::loader`).
pub const MAP_LAYOUT_VERSION: u32 = 1;

/// Peer id 0 is reserved for "no peer matched"; configured peers are numbered from 1.
pub const UNKNOWN_PEER_ID: u32 = 0;
/// Capacity of the per-peer arrays (policy, counters, rate state), including the unknown slot.
pub const MAX_PEERS: u32 = 4096;
/// Default capacity of each LPM trie (per address family, per generation). The tries are created
/// with `BPF_F_NO_PREALLOC`, so unused capacity costs no kernel memory.
pub const DEFAULT_PREFIX_CAPACITY: u32 = 1 << 20;
/// Ports per class in `[ports]`. Kept small because the XDP program compares them one by one.
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
}

pub const REASON_COUNT: usize = 8;

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
        }
    }
}

/// Index of the (reason, class) cell in the per-CPU `STATS` array.
#[inline(always)]
pub const fn stats_index(reason: Reason, class: Class) -> u32 {
    reason as u32 * CLASS_COUNT as u32 + class as u32
}
pub const STATS_ENTRIES: u32 = (REASON_COUNT * CLASS_COUNT) as u32;

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce = 0,
    Monitor = 1,
}

/// Per-peer mode as stored in the map: inherit the global mode unless overridden.
pub const PEER_MODE_INHERIT: u8 = 0;
pub const PEER_MODE_ENFORCE: u8 = 1;
pub const PEER_MODE_MONITOR: u8 = 2;

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
    pub _pad: [u8; 2],
    /// GCRA emission interval in ns (1e9 / rate); 0 means no rate limit.
    pub rate_interval_ns: u64,
    /// GCRA burst tolerance in ns: (burst - 1) * interval.
    pub rate_tolerance_ns: u64,
}

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
    pub _pad: u8,
    /// One past the highest peer id in this generation (ids are stable per peer name, so there
    /// may be holes); readers of the per-peer arrays stop here.
    pub peer_slots: u32,
    /// Number of valid entries in each port list below.
    pub port_counts: [u8; 4],
    /// Port lists in network byte order, indexed by [`PortClass`].
    pub ports: [[u16; MAX_PORTS_PER_CLASS]; 4],
}

impl Default for GlobalPolicy {
    fn default() -> Self {
        let mut ports = [[0u16; MAX_PORTS_PER_CLASS]; 4];
        ports[PortClass::GtpC as usize][0] = 2123u16.to_be();
        ports[PortClass::GtpU as usize][0] = 2152u16.to_be();
        ports[PortClass::Diameter as usize][0] = 3868u16.to_be();
        ports[PortClass::Sigtran as usize][0] = 2905u16.to_be();
        GlobalPolicy {
            generation: 0,
            mode: Mode::Enforce as u8,
            unknown_peer_pass: 0,
            non_signaling_pass: 1,
            _pad: 0,
            peer_slots: 1,
            port_counts: [1; 4],
            ports,
        }
    }
}

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
    /// 1 native, 2 skb.
    pub attach_mode: u8,
    pub _pad: [u8; 3],
    /// SHA-256 of the policy text the active generation was compiled from.
    pub policy_sha256: [u8; 32],
}

/// The single active-generation selector (map value at index 0 of `ACTIVE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Active {
    /// 0 or 1: which generation's maps the program reads.
    pub index: u32,
    pub _pad: u32,
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
}

/// What the parser learnt about a packet: the input of [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub class: Class,
    /// Truncated or inconsistent signaling headers.
    pub malformed: bool,
    /// A non-first IP fragment: no transport header, so no class.
    pub later_fragment: bool,
    /// The transport is SCTP (the `sctp` wildcard allows any class carried over it).
    pub over_sctp: bool,
}

impl Facts {
    pub const fn new(class: Class) -> Self {
        Facts { class, malformed: false, later_fragment: false, over_sctp: false }
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
/// 1. later fragments carry no ports, so the only question is whether the source is a peer;
/// 2. non-signaling traffic is judged by `non_signaling` alone, whoever sends it;
/// 3. malformed signaling is refused before the source is considered: a forged header from an
///    allowed peer is no better than one from anyone else;
/// 4. then the allowlist, the class, and the rate.
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
    let mode = match peer {
        Some(p) if p.mode == PEER_MODE_ENFORCE => Mode::Enforce,
        Some(p) if p.mode == PEER_MODE_MONITOR => Mode::Monitor,
        _ => global.mode(),
    };
    let drop = |reason: Reason| -> Verdict {
        match mode {
            Mode::Monitor => Verdict::pass(Reason::Monitored),
            Mode::Enforce => Verdict { action: Action::Drop, reason },
        }
    };

    if facts.later_fragment {
        return if peer.is_some() || global.unknown_peer_pass != 0 {
            Verdict::pass(Reason::Fragment)
        } else {
            drop(Reason::Fragment)
        };
    }
    if facts.class == Class::NonSignaling {
        return if global.non_signaling_pass != 0 {
            Verdict::pass(Reason::NonSignaling)
        } else {
            drop(Reason::NonSignaling)
        };
    }
    if facts.malformed {
        return drop(Reason::Malformed);
    }
    let Some(p) = peer else {
        return if global.unknown_peer_pass != 0 {
            Verdict::pass(Reason::NotAllowlisted)
        } else {
            drop(Reason::NotAllowlisted)
        };
    };
    let allowed = p.allow & facts.class.bit() != 0 || (facts.over_sctp && p.allow & ALLOW_SCTP_ANY != 0);
    if !allowed {
        return drop(Reason::ClassNotAllowed);
    }
    if p.rate_interval_ns != 0 && !rate_ok() {
        return drop(Reason::RateLimited);
    }
    Verdict::pass(Reason::Allowed)
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are #[repr(C)] plain data with no padding holes left uninitialised by
    // the constructors used here, and every bit pattern is a valid value.
    unsafe impl aya::Pod for PeerPolicy {}
    unsafe impl aya::Pod for GlobalPolicy {}
    unsafe impl aya::Pod for Active {}
    unsafe impl aya::Pod for Counter {}
    unsafe impl aya::Pod for PeerCounter {}
    unsafe impl aya::Pod for PeerName {}
    unsafe impl aya::Pod for Meta {}
}

#[cfg(test)]
mod tests;
