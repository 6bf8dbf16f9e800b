//! Holding an SCTP user message split over several chunks (fragments, RFC 9260 section 6.9;
//! I-DATA, RFC 8260) until its last piece has arrived and the whole message has been judged.
//!
//! Without this, the first pieces of a blocked message would already be at the receiver when
//! the last one shows what the message is, and the rewrite that neutralizes it (an operation
//! code, a Command-Code) may lie in a piece already delivered. So a frame that carries a piece
//! of an incomplete message stays in the UMEM, undelivered, until every message it carries a
//! piece of is complete; the worker then neutralizes what the rules stop across the pieces and
//! sends the held frames, in arrival order, before the frame that completed them.
//!
//! Bounded: a message is held at most [`HOLD_FOR`] and [`MAX_PIECES`] pieces, at most
//! [`MAX_HELD_MESSAGES`] messages and [`MAX_HELD_FRAMES`] frames per worker. A message over a
//! bound fails as its peer's `on_overload` says (fail-closed: its frames are dropped, and SCTP
//! retransmits them, so a slow sender is delayed, not broken; fail-open: delivered, counted),
//! together with every message that shares a frame with it.
//!
//! A frame that repeats a piece still held (the sender's retransmission, after its RTO) is
//! dropped: delivered, it would hand the receiver the piece before its rewrite. The held
//! original is delivered once the message is complete.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use filter_common::FlowKey;

use super::neutralize::Piece;

/// How long a message's first piece waits for its last. SCTP's minimum RTO is 1 s (RFC 9260
/// section 16): a sender whose pieces are all sent at once completes well within this.
pub const HOLD_FOR: Duration = Duration::from_millis(500);
/// Pieces of one message (64 full-size chunks: more than the largest MAP or Diameter message).
pub const MAX_PIECES: usize = 64;
/// Messages held at once per worker.
pub const MAX_HELD_MESSAGES: usize = 256;
/// Frames held at once per worker (a quarter of the UMEM).
pub const MAX_HELD_FRAMES: usize = super::FRAMES as usize / 4;
/// Of those, one peer's: a quarter each, so one peer that keeps messages incomplete meets its
/// own bound and the others' split messages are still held (issue 9 item 5: per-peer budgets).
pub const MAX_HELD_MESSAGES_PER_PEER: usize = MAX_HELD_MESSAGES / 4;
pub const MAX_HELD_FRAMES_PER_PEER: usize = MAX_HELD_FRAMES / 4;

/// An incomplete message and the frames that carry its pieces.
#[derive(Clone, Debug)]
pub struct Held {
    pub flow: FlowKey,
    pub peer_id: u32,
    stream: u16,
    mid: Option<u32>,
    unordered: bool,
    next_tsn: u32,
    /// (frame address, piece), in TSN order.
    pub pieces: Vec<(u64, Piece)>,
    since: Instant,
}

impl Held {
    fn continues(&self, flow: &FlowKey, p: &Piece) -> bool {
        self.flow == *flow
            && self.stream == p.stream
            && self.unordered == p.unordered
            && match (self.mid, p.mid) {
                (Some(a), Some(b)) => a == b,
                (None, None) => p.tsn == self.next_tsn,
                _ => false,
            }
    }

    fn has(&self, flow: &FlowKey, p: &Piece) -> bool {
        self.flow == *flow && self.pieces.iter().any(|(_, q)| q.tsn == p.tsn && q.stream == p.stream)
    }

    /// The PPID of the message (its first piece's).
    pub fn ppid(&self) -> Option<u32> {
        self.pieces.first().and_then(|(_, p)| p.ppid)
    }
}

/// What one frame did to the held messages.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Messages this frame completed, with their pieces (this frame's last).
    pub completed: Vec<Held>,
    /// The frame carries pieces of this many incomplete messages: it is held.
    pub holds: u32,
    /// The frame repeats a held piece: drop it (nothing was changed).
    pub duplicate: bool,
    /// A bound was exceeded: these messages (the frame's among them) fail as their peer fails;
    /// the frame too.
    pub failed: Vec<Held>,
    /// Pieces whose message began before anything was held (the daemon started in the middle
    /// of it, or its beginning failed): delivered as they are.
    pub orphans: u32,
}

/// The held messages of one worker.
#[derive(Default)]
pub struct Holds {
    msgs: Vec<Held>,
    /// Held frames: address -> how many held messages have a piece in it.
    refs: HashMap<u64, u32>,
    /// Held frames by peer, and each held frame's peer.
    peer_frames: HashMap<u32, usize>,
    frame_peer: HashMap<u64, u32>,
}

impl Holds {
    pub fn frames(&self) -> usize {
        self.refs.len()
    }

    pub fn messages(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_held(&self, addr: u64) -> bool {
        self.refs.contains_key(&addr)
    }

    /// Take in the pieces of the frame at `addr` (`pieces` from [`super::neutralize::sctp_pieces`]).
    pub fn admit(&mut self, flow: FlowKey, peer_id: u32, addr: u64, pieces: &[Piece], now: Instant) -> Admitted {
        let mut out = Admitted::default();
        if pieces.iter().any(|p| !(p.begin && p.end) && self.msgs.iter().any(|m| m.has(&flow, p))) {
            out.duplicate = true;
            return out;
        }
        let mut touched: Vec<usize> = Vec::new();
        for p in pieces {
            if p.begin && p.end {
                continue;
            }
            if p.begin {
                self.msgs.push(Held {
                    flow,
                    peer_id,
                    stream: p.stream,
                    mid: p.mid,
                    unordered: p.unordered,
                    next_tsn: p.tsn.wrapping_add(1),
                    pieces: vec![(addr, p.clone())],
                    since: now,
                });
                touched.push(self.msgs.len() - 1);
                continue;
            }
            let Some(i) = self.msgs.iter().position(|m| m.continues(&flow, p)) else {
                out.orphans += 1;
                continue;
            };
            let m = &mut self.msgs[i];
            m.pieces.push((addr, p.clone()));
            m.next_tsn = p.tsn.wrapping_add(1);
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        // Complete messages leave; the frame is held by the others it has a piece of.
        let mut done: Vec<usize> = touched
            .iter()
            .copied()
            .filter(|&i| self.msgs[i].pieces.last().is_some_and(|(a, p)| *a == addr && p.end))
            .collect();
        let holds = touched.len() - done.len();
        let new_frame = holds > 0 && !self.refs.contains_key(&addr);
        let over = self.msgs.len() > MAX_HELD_MESSAGES
            || self.msgs.iter().filter(|m| m.peer_id == peer_id).count() > MAX_HELD_MESSAGES_PER_PEER
            || (new_frame && self.refs.len() >= MAX_HELD_FRAMES)
            || (new_frame && self.peer_frames.get(&peer_id).copied().unwrap_or(0) >= MAX_HELD_FRAMES_PER_PEER)
            || touched.iter().any(|&i| self.msgs[i].pieces.len() > MAX_PIECES);
        if over {
            // Fail every message this frame touched, and whatever shares frames with them.
            let seed: HashSet<u64> =
                touched.iter().flat_map(|&i| self.msgs[i].pieces.iter().map(|(a, _)| *a)).collect();
            out.failed = self.take_sharing(seed);
            return out;
        }
        done.sort_unstable();
        for i in done.into_iter().rev() {
            let m = self.msgs.remove(i);
            for (a, _) in &m.pieces {
                if *a != addr {
                    self.unref(*a);
                }
            }
            out.completed.push(m);
        }
        // Removed last-first (indices stay valid); released first-first, so TSNs go in order.
        out.completed.reverse();
        if holds > 0 {
            if new_frame {
                *self.peer_frames.entry(peer_id).or_default() += 1;
                self.frame_peer.insert(addr, peer_id);
            }
            *self.refs.entry(addr).or_default() += holds as u32;
        }
        out.holds = holds as u32;
        out
    }

    /// Drop one reference to a held frame.
    fn unref(&mut self, addr: u64) {
        if let Some(n) = self.refs.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.refs.remove(&addr);
                self.forget_frame(addr);
            }
        }
    }

    fn forget_frame(&mut self, addr: u64) {
        if let Some(p) = self.frame_peer.remove(&addr)
            && let Some(n) = self.peer_frames.get_mut(&p)
        {
            *n -= 1;
            if *n == 0 {
                self.peer_frames.remove(&p);
            }
        }
    }

    /// Frames whose last reference went (they may be sent): among `addrs`, those no longer held.
    pub fn released(&self, addrs: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut seen = HashSet::new();
        addrs.into_iter().filter(|a| !self.refs.contains_key(a) && seen.insert(*a)).collect()
    }

    /// The messages with a piece in the frame at `addr` (and those sharing frames with them),
    /// removed: the frame is going away.
    pub fn release_frame(&mut self, addr: u64) -> Vec<Held> {
        self.take_sharing([addr].into_iter().collect())
    }

    /// Messages held longer than [`HOLD_FOR`], with every message sharing a frame with them:
    /// removed, their frames no longer held.
    pub fn expired(&mut self, now: Instant) -> Vec<Held> {
        let seed: HashSet<u64> = self
            .msgs
            .iter()
            .filter(|m| now.duration_since(m.since) >= HOLD_FOR)
            .flat_map(|m| m.pieces.iter().map(|(a, _)| *a))
            .collect();
        if seed.is_empty() {
            return Vec::new();
        }
        self.take_sharing(seed)
    }

    /// Remove the messages with a piece in any frame of `frames`, closed over shared frames;
    /// their frames are no longer held.
    fn take_sharing(&mut self, mut frames: HashSet<u64>) -> Vec<Held> {
        let mut out = Vec::new();
        // Each round removes at least one message or stops: bounded by the message count.
        while let Some(i) = self.msgs.iter().position(|m| m.pieces.iter().any(|(a, _)| frames.contains(a))) {
            let m = self.msgs.remove(i);
            frames.extend(m.pieces.iter().map(|(a, _)| *a));
            out.push(m);
        }
        for a in &frames {
            if self.refs.remove(a).is_some() {
                self.forget_frame(*a);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> FlowKey {
        FlowKey::default()
    }

    fn piece(tsn: u32, begin: bool, end: bool) -> Piece {
        Piece { tsn, stream: 1, mid: None, unordered: false, begin, end, ppid: Some(3), data: 0..0 }
    }

    #[test]
    fn the_pieces_are_held_until_the_last_one() {
        let mut h = Holds::default();
        let t = Instant::now();
        let a = h.admit(flow(), 1, 100, &[piece(10, true, false)], t);
        assert_eq!((a.holds, a.completed.len()), (1, 0));
        let a = h.admit(flow(), 1, 200, &[piece(11, false, false)], t);
        assert_eq!(a.holds, 1);
        assert!(h.is_held(100) && h.is_held(200));
        let a = h.admit(flow(), 1, 300, &[piece(12, false, true)], t);
        assert_eq!((a.holds, a.completed.len()), (0, 1));
        let tsns: Vec<u32> = a.completed[0].pieces.iter().map(|(_, p)| p.tsn).collect();
        assert_eq!(tsns, [10, 11, 12]);
        assert_eq!(h.released([100, 200, 300]), [100, 200, 300]);
        assert_eq!((h.frames(), h.messages()), (0, 0));
    }

    #[test]
    fn a_frame_with_the_end_of_one_message_and_the_start_of_the_next_stays_held() {
        let mut h = Holds::default();
        let t = Instant::now();
        h.admit(flow(), 1, 100, &[piece(10, true, false)], t);
        let a = h.admit(flow(), 1, 200, &[piece(11, false, true), piece(12, true, false)], t);
        assert_eq!((a.holds, a.completed.len()), (1, 1));
        assert_eq!(h.released([100, 200]), [100], "the first frame goes, the second waits");
        let a = h.admit(flow(), 1, 300, &[piece(13, false, true)], t);
        assert_eq!(a.completed.len(), 1);
        assert_eq!(h.released([200, 300]), [200, 300]);
    }

    #[test]
    fn a_retransmitted_held_piece_is_a_duplicate_and_changes_nothing() {
        let mut h = Holds::default();
        let t = Instant::now();
        h.admit(flow(), 1, 100, &[piece(10, true, false)], t);
        let a = h.admit(flow(), 1, 200, &[piece(10, true, false)], t);
        assert!(a.duplicate);
        assert_eq!((h.frames(), h.messages()), (1, 1));
    }

    #[test]
    fn a_piece_whose_beginning_was_not_held_is_an_orphan() {
        let mut h = Holds::default();
        let a = h.admit(flow(), 1, 100, &[piece(11, false, true)], Instant::now());
        assert_eq!((a.orphans, a.holds, a.completed.len()), (1, 0, 0));
    }

    #[test]
    fn interleaved_i_data_messages_are_told_apart_by_their_message_id() {
        let mut h = Holds::default();
        let t = Instant::now();
        let p = |tsn, mid, begin, end| Piece { mid: Some(mid), ..piece(tsn, begin, end) };
        h.admit(flow(), 1, 1, &[p(1, 7, true, false)], t);
        h.admit(flow(), 1, 2, &[p(2, 8, true, false)], t);
        let a = h.admit(flow(), 1, 3, &[p(3, 7, false, true)], t);
        assert_eq!(a.completed.len(), 1);
        assert_eq!(a.completed[0].pieces.iter().map(|(f, _)| *f).collect::<Vec<_>>(), [1, 3]);
        assert!(h.is_held(2));
    }

    #[test]
    fn a_message_held_too_long_expires_with_the_messages_sharing_its_frames() {
        let mut h = Holds::default();
        let t = Instant::now();
        h.admit(flow(), 1, 100, &[piece(10, true, false)], t);
        h.admit(flow(), 1, 200, &[piece(11, false, true), piece(12, true, false)], t + HOLD_FOR / 2);
        let other = FlowKey { sport: 9, ..FlowKey::default() };
        h.admit(other, 1, 300, &[piece(50, true, false)], t + HOLD_FOR / 2);
        // The first message completed; the second (frame 200) expires at t + HOLD_FOR * 1.5.
        assert!(h.expired(t + HOLD_FOR).is_empty());
        let gone = h.expired(t + HOLD_FOR * 3 / 2);
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert_eq!((h.frames(), h.messages()), (0, 0));
    }

    #[test]
    fn one_peer_meets_its_own_bound_and_another_peer_is_still_held() {
        let mut h = Holds::default();
        let t = Instant::now();
        let mut failed = 0;
        // Peer 1 begins many messages (one frame each) and completes none.
        for i in 0..(MAX_HELD_MESSAGES_PER_PEER + 10) as u32 {
            let f = FlowKey { sport: i as u16, ..FlowKey::default() };
            failed += h.admit(f, 1, i as u64, &[piece(i, true, false)], t).failed.len();
        }
        assert_eq!(failed, 10, "its messages over its own bound fail");
        assert_eq!(h.messages(), MAX_HELD_MESSAGES_PER_PEER);
        // Peer 2's split message is still held, then released whole.
        let f2 = FlowKey { dport: 7, ..FlowKey::default() };
        let a = h.admit(f2, 2, 10_000, &[piece(500, true, false)], t);
        assert_eq!((a.holds, a.failed.len()), (1, 0));
        let a = h.admit(f2, 2, 10_001, &[piece(501, false, true)], t);
        assert_eq!(a.completed.len(), 1);
        assert_eq!(h.released([10_000, 10_001]), [10_000, 10_001]);
    }

    #[test]
    fn a_message_over_the_piece_bound_fails_at_once() {
        let mut h = Holds::default();
        let t = Instant::now();
        h.admit(flow(), 1, 0, &[piece(0, true, false)], t);
        let mut last = Admitted::default();
        for i in 1..=MAX_PIECES as u32 {
            last = h.admit(flow(), 1, i as u64, &[piece(i, false, false)], t);
            if !last.failed.is_empty() {
                break;
            }
        }
        assert_eq!(last.failed.len(), 1);
        assert_eq!(last.failed[0].pieces.len(), MAX_PIECES + 1);
        assert_eq!((h.frames(), h.messages()), (0, 0));
    }
}
