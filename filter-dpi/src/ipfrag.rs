//! IP fragment reassembly (IPv4, and IPv6 with a Fragment header) before inspection, so that a
//! message split over IP fragments is judged whole, as the receiving host reassembles it.
//!
//! Like Linux since 4.19 (`inet_frag_queue_insert()`, RFC 5722 for IPv6), a fragment that
//! overlaps another one partially makes the datagram invalid: the receiver discards it, and
//! [`Defragmenter::push`] reports [`Defragged::Inconsistent`] (an event for the caller: nobody
//! sends overlapping fragments by accident). A fragment repeating a range with the same bytes is
//! a duplicate and ignored; with other bytes it is inconsistent too. Datagrams expire after
//! [`TIMEOUT_NS`]; memory is bounded per owner (the caller's peer id) and in total, and a full
//! table evicts the oldest datagram of the owner that holds most, never everything.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Unfinished datagrams are forgotten after 30 s (Linux `ipfrag_time`).
pub const TIMEOUT_NS: u64 = 30_000_000_000;
/// Largest reassembled payload: the IPv4 total length and the IPv6 payload length are 16 bits.
pub const MAX_DATAGRAM: usize = 65_535;
/// Unfinished datagrams per owner.
pub const MAX_DATAGRAMS_PER_OWNER: usize = 256;
/// Bytes of unfinished datagrams per owner.
pub const MAX_BYTES_PER_OWNER: usize = 4 * 1024 * 1024;
/// Unfinished datagrams in total.
pub const MAX_DATAGRAMS: usize = 4096;
/// Bytes of unfinished datagrams in total.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Fragments per datagram (a 64 KiB datagram in 8-byte fragments would be 8192; real ones have
/// a handful).
pub const MAX_FRAGMENTS: usize = 128;

/// One datagram: addresses, protocol (IPv4) or next header after the Fragment header (IPv6),
/// identification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub id: u32,
}

/// One fragment.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// Offset of `data` in the datagram's payload, in bytes.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    pub data: &'a [u8],
}

/// What one fragment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Defragged {
    /// Kept; the datagram is not complete yet.
    Pending,
    /// The whole payload of the datagram.
    Complete(Vec<u8>),
    /// A repeat of a range already held, with the same bytes.
    Duplicate,
    /// Overlapping or inconsistent fragments: the datagram is discarded (as the receiver does).
    Inconsistent(&'static str),
    /// Over a cap: the datagram is discarded.
    Limit(&'static str),
}

#[derive(Debug)]
struct Datagram {
    owner: u32,
    first_ns: u64,
    parts: BTreeMap<usize, Vec<u8>>,
    /// Payload length, known once the last fragment (MF = 0) arrived.
    total: Option<usize>,
    bytes: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct OwnerUse {
    datagrams: usize,
    bytes: usize,
}

/// Reassembly state for all datagrams.
#[derive(Debug)]
pub struct Defragmenter {
    dgrams: HashMap<FragKey, Datagram>,
    owners: HashMap<u32, OwnerUse>,
    bytes: usize,
    /// Datagrams forgotten unfinished (timeout or eviction) since creation.
    pub expired: u64,
    /// Datagrams evicted unfinished to make room (a timeout is the receiver's too; an eviction
    /// is ours alone): their next fragment is reported, not held (see [`crate::evicted`]).
    pub evicted: crate::evicted::Evicted<FragKey>,
}

impl Default for Defragmenter {
    fn default() -> Self {
        Defragmenter {
            dgrams: HashMap::new(),
            owners: HashMap::new(),
            bytes: 0,
            expired: 0,
            evicted: crate::evicted::Evicted::new(MAX_DATAGRAMS),
        }
    }
}

impl Defragmenter {
    pub fn new() -> Defragmenter {
        Defragmenter::default()
    }

    /// Unfinished datagrams held.
    pub fn pending(&self) -> usize {
        self.dgrams.len()
    }

    /// Bytes of unfinished datagrams held.
    pub fn buffered(&self) -> usize {
        self.bytes
    }

    fn remove(&mut self, key: &FragKey) {
        if let Some(d) = self.dgrams.remove(key) {
            self.bytes -= d.bytes;
            if let Some(o) = self.owners.get_mut(&d.owner) {
                o.datagrams -= 1;
                o.bytes -= d.bytes;
                if o.datagrams == 0 {
                    self.owners.remove(&d.owner);
                }
            }
        }
    }

    /// Forget datagrams older than [`TIMEOUT_NS`] at `now_ns`.
    pub fn expire(&mut self, now_ns: u64) {
        let old: Vec<FragKey> = self
            .dgrams
            .iter()
            .filter(|(_, d)| now_ns.saturating_sub(d.first_ns) > TIMEOUT_NS)
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.remove(&k);
            self.expired += 1;
        }
    }

    fn oldest_of(&self, owner: Option<u32>) -> Option<FragKey> {
        self.dgrams
            .iter()
            .filter(|(_, d)| owner.is_none_or(|o| d.owner == o))
            .min_by_key(|(_, d)| d.first_ns)
            .map(|(k, _)| *k)
    }

    fn evict(&mut self, owner: Option<u32>) -> bool {
        match self.oldest_of(owner) {
            Some(k) => {
                self.remove(&k);
                self.expired += 1;
                self.evicted.insert(k);
                true
            }
            None => false,
        }
    }

    /// Feeds one fragment of `key`, sent by `owner`, seen at `now_ns`.
    pub fn push(&mut self, owner: u32, key: FragKey, frag: Fragment<'_>, now_ns: u64) -> Defragged {
        let end = frag.offset + frag.data.len();
        if end > MAX_DATAGRAM {
            self.remove(&key);
            return Defragged::Inconsistent("fragment ends beyond 65535 bytes");
        }
        if frag.more && !frag.data.len().is_multiple_of(8) {
            self.remove(&key);
            return Defragged::Inconsistent("a fragment other than the last is not a multiple of 8 bytes");
        }
        if !self.dgrams.contains_key(&key) && self.evicted.take(&key) {
            return Defragged::Limit("datagram evicted unfinished to make room");
        }
        if let Some(d) = self.dgrams.get(&key)
            && now_ns.saturating_sub(d.first_ns) > TIMEOUT_NS
        {
            self.remove(&key);
            self.expired += 1;
        }
        if !self.dgrams.contains_key(&key) {
            if self.owners.get(&owner).is_some_and(|o| o.datagrams >= MAX_DATAGRAMS_PER_OWNER) {
                self.evict(Some(owner));
            }
            if self.dgrams.len() >= MAX_DATAGRAMS {
                self.expire(now_ns);
                if self.dgrams.len() >= MAX_DATAGRAMS {
                    let biggest = self.owners.iter().max_by_key(|(_, u)| u.datagrams).map(|(o, _)| *o);
                    self.evict(biggest);
                }
            }
            self.dgrams
                .insert(key, Datagram { owner, first_ns: now_ns, parts: BTreeMap::new(), total: None, bytes: 0 });
            self.owners.entry(owner).or_default().datagrams += 1;
        }
        let Some(d) = self.dgrams.get_mut(&key) else { return Defragged::Limit("datagram table") };

        // The last fragment fixes the length; a second, different one is inconsistent, and so
        // is a fragment beyond it.
        if !frag.more {
            if d.total.is_some_and(|t| t != end) {
                self.remove(&key);
                return Defragged::Inconsistent("two last fragments with different lengths");
            }
            d.total = Some(end);
        }
        if d.total.is_some_and(|t| end > t) {
            self.remove(&key);
            return Defragged::Inconsistent("a fragment beyond the last one");
        }
        // Overlaps: an exact repeat with the same bytes is a duplicate; anything else that
        // shares bytes with a held fragment is inconsistent.
        for (&off, held) in &d.parts {
            let held_end = off + held.len();
            if off >= end || held_end <= frag.offset {
                continue;
            }
            if off == frag.offset && held.as_slice() == frag.data {
                return Defragged::Duplicate;
            }
            self.remove(&key);
            return Defragged::Inconsistent("overlapping fragments");
        }
        if d.parts.len() >= MAX_FRAGMENTS {
            self.remove(&key);
            return Defragged::Limit("fragments per datagram");
        }
        let n = frag.data.len();
        // Memory is charged to the owner that opened the datagram, whoever sends the later
        // fragments: one datagram, one account.
        let owner = d.owner;
        if self.owners.get(&owner).is_some_and(|o| o.bytes + n > MAX_BYTES_PER_OWNER) || self.bytes + n > MAX_BYTES {
            self.remove(&key);
            return Defragged::Limit("fragment memory");
        }
        d.parts.insert(frag.offset, frag.data.to_vec());
        d.bytes += n;
        self.bytes += n;
        if let Some(o) = self.owners.get_mut(&owner) {
            o.bytes += n;
        }
        // Complete when the parts cover 0..total without a hole.
        let Some(total) = d.total else { return Defragged::Pending };
        let mut at = 0;
        for (&off, p) in &d.parts {
            if off != at {
                return Defragged::Pending;
            }
            at += p.len();
        }
        if at != total {
            return Defragged::Pending;
        }
        let mut out = Vec::with_capacity(total);
        for p in d.parts.values() {
            out.extend_from_slice(p);
        }
        self.remove(&key);
        Defragged::Complete(out)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey { src: Ipv4Addr::new(198, 18, 1, 1).into(), dst: Ipv4Addr::new(198, 18, 0, 2).into(), proto: 132, id }
    }

    fn f(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment { offset, more, data }
    }

    #[test]
    fn reassembles_in_any_order() {
        let mut d = Defragmenter::new();
        assert_eq!(d.push(1, key(1), f(16, false, b"tail"), 0), Defragged::Pending);
        assert_eq!(d.push(1, key(1), f(0, true, b"01234567"), 1), Defragged::Pending);
        assert_eq!(d.push(1, key(1), f(0, true, b"01234567"), 1), Defragged::Duplicate);
        assert_eq!(
            d.push(1, key(1), f(8, true, b"89abcdef"), 2),
            Defragged::Complete(b"0123456789abcdeftail".to_vec())
        );
        assert_eq!((d.pending(), d.buffered()), (0, 0));
    }

    /// Review C3: overlapping or inconsistent fragments discard the datagram and are reported.
    #[test]
    fn overlaps_are_inconsistent() {
        let mut d = Defragmenter::new();
        d.push(1, key(2), f(0, true, b"01234567"), 0);
        assert!(matches!(d.push(1, key(2), f(0, true, b"XXXXXXXX"), 0), Defragged::Inconsistent(_)));
        assert_eq!(d.pending(), 0);
        d.push(1, key(3), f(0, true, b"0123456789abcdef"), 0);
        assert!(matches!(d.push(1, key(3), f(8, false, b"zz"), 0), Defragged::Inconsistent(_)));
        assert!(matches!(d.push(1, key(4), f(0, true, b"odd"), 0), Defragged::Inconsistent(_)));
        d.push(1, key(5), f(8, false, b"ab"), 0);
        assert!(matches!(d.push(1, key(5), f(16, false, b"ab"), 0), Defragged::Inconsistent(_)));
    }

    #[test]
    fn timeout_and_per_owner_quota() {
        let mut d = Defragmenter::new();
        d.push(2, key(9), f(0, true, b"01234567"), 0);
        assert_eq!(d.push(2, key(9), f(8, false, b"x"), TIMEOUT_NS + 1), Defragged::Pending, "the first part expired");
        let mut d = Defragmenter::new();
        d.push(2, key(9), f(0, true, b"01234567"), 5);
        for i in 0..(MAX_DATAGRAMS as u32 + 10) {
            d.push(1, key(100 + i), f(0, true, b"01234567"), 10 + i as u64);
        }
        assert!(d.pending() <= MAX_DATAGRAMS_PER_OWNER + 1);
        assert_eq!(d.push(2, key(9), f(8, false, b"x"), 20), Defragged::Complete(b"01234567x".to_vec()));
        // Owner 1's own first datagram was evicted by its flood: its last fragment is reported,
        // once, not held waiting for a first fragment that will not come again.
        assert!(matches!(d.push(1, key(100), f(8, false, b"x"), 30), Defragged::Limit(_)));
        assert_eq!(d.push(1, key(100), f(8, false, b"x"), 31), Defragged::Pending);
    }

    /// Found by the fuzzer: fragments of one datagram pushed under two owners are charged to
    /// the datagram's, so removing it never underflows another's account.
    #[test]
    fn one_datagram_one_account() {
        let mut d = Defragmenter::new();
        d.push(1, key(7), f(0, true, b"01234567"), 0);
        d.push(2, key(7), f(8, true, b"89abcdef"), 0);
        assert!(matches!(d.push(2, key(7), f(4, true, b"zzzzzzzz"), 0), Defragged::Inconsistent(_)));
        assert_eq!((d.pending(), d.buffered()), (0, 0));
    }
}
