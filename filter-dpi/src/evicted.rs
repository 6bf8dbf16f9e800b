//! Keys whose unfinished reassembly state was evicted to make room for others.
//!
//! Every reassembler here is bounded, and a bounded table must sometimes forget an unfinished
//! message. The receiver did not forget it: it will act on the message once the rest arrives.
//! If the inspector simply started over, the rest would wait for a beginning that never comes
//! and the message would never be judged, silently (review: caps must never hide content). So
//! an eviction is remembered, and the next piece of that message is an error the caller reports
//! (`undecodable-signaling`), never a silent wait.

use std::{
    collections::{HashSet, VecDeque},
    hash::Hash,
};

/// A bounded set of evicted keys; the oldest are forgotten first.
#[derive(Debug)]
pub struct Evicted<K: Hash + Eq + Clone> {
    set: HashSet<K>,
    order: VecDeque<K>,
    cap: usize,
    /// Evictions of unfinished state since creation.
    pub count: u64,
}

impl<K: Hash + Eq + Clone> Evicted<K> {
    pub fn new(cap: usize) -> Self {
        Evicted { set: HashSet::new(), order: VecDeque::new(), cap: cap.max(1), count: 0 }
    }

    /// Remember that `key`'s unfinished state was evicted.
    pub fn insert(&mut self, key: K) {
        self.count += 1;
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    /// Whether `key`'s state was evicted (and forget it: one report per eviction).
    pub fn take(&mut self, key: &K) -> bool {
        if self.set.remove(key) {
            self.order.retain(|k| k != key);
            true
        } else {
            false
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.set.contains(key)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_taken_once() {
        let mut e = Evicted::new(2);
        e.insert(1);
        e.insert(2);
        e.insert(3);
        assert!(!e.contains(&1), "the oldest is forgotten past the bound");
        assert!(e.take(&2));
        assert!(!e.take(&2), "one report per eviction");
        assert_eq!((e.len(), e.count), (1, 3));
    }
}
