//! Foreign registrations waiting for the home network's answer (review: state poisoning).
//!
//! A registration request (MAP updateLocation / updateGprsLocation, Diameter ULR, GTPv2 Create
//! Session Request) says only what the sending network *claims*: a fake VLR can send one for any
//! subscriber. So a request is not written to the subscriber's record; it is kept here, keyed by
//! its transaction, until the home network's positive answer is seen (then it is committed), a
//! negative one (discarded), or its time runs out (discarded). Until then — and forever when the
//! answers never cross the inspected interface — it is only a *claim*
//! ([`super::plausibility::State::claims`]), which the location-plausibility rules do not trust.
//!
//! Bounded in number (overall and per sending peer) and in time; what does not fit is not
//! tracked (counted): it stays a claim, the safe side.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::plausibility::Slot;
use crate::subscriber::Serving;

/// How long a request waits for its answer, in seconds. An updateLocation dialogue carries the
/// HLR's insertSubscriberData round trips before its result (TS 29.002 timer `m`, 15-30 s per
/// operation); Diameter and GTP answers come within seconds. Beyond this the request is
/// discarded (a claim only).
pub const PENDING_TTL_S: u32 = 60;
/// Requests waiting at once, overall.
pub const MAX_PENDING: usize = 65_536;
/// Requests waiting at once from one peer: a peer flooding requests only stops its own from
/// being tracked.
pub const MAX_PENDING_PER_PEER: usize = 8_192;

/// The transaction a registration request opened, as its answer names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// MAP: the requester's GT (the request's calling GT, the answer's called GT) and its TCAP
    /// transaction id (the request's otid, the answer's dtid).
    Map { gt: String, tid: Vec<u8> },
    /// Diameter: Session-Id and End-to-End Identifier (the Hop-by-Hop Identifier changes at
    /// every agent, so the answer seen on the home side may carry another one).
    Diameter { session: String, end_to_end: u32 },
    /// GTPv2: the requester's control-plane F-TEID (the response's header TEID) and the
    /// sequence number.
    Gtp { teid: u32, sequence: u32 },
}

/// A registration waiting for its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    pub imsi: String,
    pub slot: Slot,
    pub new: Serving,
    /// The request as events show it.
    pub message: Value,
    /// MAP: the invoke id of the registration in its dialogue.
    pub invoke_id: Option<i64>,
    pub peer: String,
    /// When it was seen (Unix seconds).
    pub at: u32,
}

/// How a registration request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    Rejected,
    Expired,
    /// Not tracked: no transaction id to match an answer with, or the table (or the peer's
    /// share) full.
    Untracked,
}

/// The table of waiting registrations, oldest first for expiry.
#[derive(Debug, Default)]
pub struct Pending {
    map: HashMap<TxKey, Registration>,
    /// (when, key) in insertion order; an entry whose registration has since been taken or
    /// replaced is skipped when it comes up.
    order: VecDeque<(u32, TxKey)>,
    per_peer: HashMap<String, usize>,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn forget(&mut self, key: &TxKey) -> Option<Registration> {
        let r = self.map.remove(key)?;
        if let Some(n) = self.per_peer.get_mut(&r.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&r.peer);
            }
        }
        Some(r)
    }

    /// Drops what has waited longer than [`PENDING_TTL_S`] at `now`; returns how many.
    pub fn expire(&mut self, now: u32) -> u64 {
        let mut n = 0;
        while let Some((at, _)) = self.order.front() {
            if now.saturating_sub(*at) < PENDING_TTL_S {
                break;
            }
            let Some((at, key)) = self.order.pop_front() else { break };
            // Only the registration this entry was queued for: a key reused since is younger.
            if self.map.get(&key).is_some_and(|r| r.at == at) {
                self.forget(&key);
                n += 1;
            }
        }
        // Entries taken by answers leave their queue slot behind; keep the queue from growing
        // beyond the table by more than its bound.
        if self.order.len() > 2 * MAX_PENDING {
            let map = &self.map;
            self.order.retain(|(at, k)| map.get(k).is_some_and(|r| r.at == *at));
        }
        n
    }

    /// Waits for the answer to `key`; `Err(Untracked)` when the table or the peer's share is
    /// full (the registration stays a claim). A request retransmitted with the same key
    /// replaces the earlier one.
    pub fn insert(&mut self, key: TxKey, r: Registration) -> Result<(), Outcome> {
        if self.map.contains_key(&key) {
            self.forget(&key);
        } else if self.map.len() >= MAX_PENDING
            || self.per_peer.get(&r.peer).is_some_and(|n| *n >= MAX_PENDING_PER_PEER)
        {
            return Err(Outcome::Untracked);
        }
        *self.per_peer.entry(r.peer.clone()).or_default() += 1;
        self.order.push_back((r.at, key.clone()));
        self.map.insert(key, r);
        Ok(())
    }

    pub fn get(&self, key: &TxKey) -> Option<&Registration> {
        self.map.get(key)
    }

    /// Takes the registration waiting for `key` (its answer came).
    pub fn take(&mut self, key: &TxKey) -> Option<Registration> {
        self.forget(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(peer: &str, at: u32) -> Registration {
        Registration {
            imsi: "001010000000042".into(),
            slot: Slot::Cs,
            new: Serving::default(),
            message: Value::Null,
            invoke_id: Some(1),
            peer: peer.into(),
            at,
        }
    }

    fn key(i: u32) -> TxKey {
        TxKey::Map { gt: "33609000001".into(), tid: i.to_be_bytes().to_vec() }
    }

    #[test]
    fn bounded_in_time_and_per_peer() {
        let mut p = Pending::default();
        p.insert(key(1), reg("a", 100)).unwrap();
        p.insert(key(2), reg("a", 130)).unwrap();
        assert_eq!(p.expire(100 + PENDING_TTL_S - 1), 0);
        assert_eq!(p.expire(100 + PENDING_TTL_S), 1);
        assert!(p.get(&key(1)).is_none() && p.get(&key(2)).is_some());
        assert_eq!(p.take(&key(2)).unwrap().at, 130);
        assert_eq!(p.expire(1000), 0, "taken is not expired");
        // One peer's share is bounded; another peer still gets in.
        for i in 0..MAX_PENDING_PER_PEER as u32 {
            p.insert(key(10 + i), reg("flood", 200)).unwrap();
        }
        assert_eq!(p.insert(key(1_000_000), reg("flood", 200)), Err(Outcome::Untracked));
        p.insert(key(1_000_001), reg("b", 200)).unwrap();
        assert_eq!(p.len(), MAX_PENDING_PER_PEER + 1);
        // A retransmission replaces, and the older queue entry does not expire the newer one.
        p.insert(key(1_000_001), reg("b", 250)).unwrap();
        assert_eq!(p.expire(200 + PENDING_TTL_S), MAX_PENDING_PER_PEER as u64);
        assert_eq!(p.get(&key(1_000_001)).unwrap().at, 250);
        assert!(p.insert(key(1_000_000), reg("flood", 300)).is_ok(), "the flood's share is free again");
    }
}
