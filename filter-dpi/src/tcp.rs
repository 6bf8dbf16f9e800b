//! One direction of a TCP connection, reassembled by sequence number the way the receiving
//! stack does it (Linux `tcp_data_queue()`), so that what inspection reads is the byte stream
//! the application reads: out-of-order segments wait for the gap to close, a retransmission of
//! bytes already delivered adds nothing, the urgent byte is taken out of the stream (a socket
//! without `SO_OOBINLINE`, the default, never reads it in line), SYN starts and RST ends the
//! stream, and segments outside the window are not the connection's.
//!
//! A range received twice with *different* bytes (a conflicting overlap or retransmission) is
//! reported ([`Pushed::conflict`]): the first copy is kept, as the receiver keeps bytes it has
//! already queued, but which copy a given stack uses differs between stacks and between the
//! in-order and out-of-order cases, so such a stream can no longer be judged with confidence.
//!
//! Memory is bounded per direction: [`MAX_OOO_BYTES`] of out-of-order data in at most
//! [`MAX_OOO_SEGMENTS`] segments, and the last [`RECENT_BYTES`] delivered bytes kept to compare
//! retransmissions with.

use std::collections::{BTreeMap, VecDeque};

/// TCP flags (RFC 9293).
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

/// How far ahead of (or behind) the next expected byte a segment may start and still be taken
/// as this connection's: 1 MiB, the order of a receive window on signaling links. Beyond it the
/// receiver drops the segment (and so do we, [`Pushed::out_of_window`]).
pub const WINDOW: u32 = 1 << 20;
/// Out-of-order bytes held per direction.
pub const MAX_OOO_BYTES: usize = 256 * 1024;
/// Out-of-order segments held per direction.
pub const MAX_OOO_SEGMENTS: usize = 256;
/// Delivered bytes kept to compare a retransmission with.
pub const RECENT_BYTES: usize = 64 * 1024;

/// One segment as the reassembler needs it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub seq: u32,
    pub flags: u8,
    pub urgent_pointer: u16,
    pub payload: &'a [u8],
}

/// What one segment did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Bytes that are now in order, to hand to the application-layer parser.
    pub deliver: Vec<u8>,
    /// The segment lies outside the window: not this connection's (spoofed, or stale).
    pub out_of_window: bool,
    /// A range was received again with different bytes.
    pub conflict: bool,
    /// The out-of-order store overflowed: the stream has a gap it will never fill, the
    /// application-layer parser must start over (and the bytes in between were not judged).
    pub gap: bool,
    /// The segment started (SYN) or ended (RST) the stream.
    pub reset: bool,
    /// An urgent byte was taken out of the stream.
    pub urgent: bool,
    /// Held bytes dropped because the stream was found to start after them.
    pub skipped: usize,
    /// A SYN on a live stream, or a RST in the window but not at the next expected byte:
    /// ignored, as the receiver ignores it (RFC 5961 sections 3 and 4: it answers with a
    /// challenge ACK and keeps the connection).
    pub challenged: bool,
}

/// Reassembly state of one direction.
#[derive(Clone, Debug, Default)]
pub struct TcpReassembler {
    /// Next expected sequence number; `None` until the first segment (SYN, or the first segment
    /// seen of a connection older than us).
    next: Option<u32>,
    /// Out-of-order segments by sequence number.
    ooo: BTreeMap<u32, Vec<u8>>,
    ooo_bytes: usize,
    /// The last delivered bytes, ending at `next`.
    recent: VecDeque<u8>,
    /// Sequence numbers of urgent bytes not yet delivered (left out of the stream).
    urgent: Vec<u32>,
    /// Segments held while the stream has no known start (see [`TcpReassembler::push_framed`]).
    held: usize,
    /// This direction's FIN has been taken: a SYN may start a new connection on the 5-tuple.
    finished: bool,
}

/// Urgent bytes remembered per direction (one per segment with URG; a sender has one pending).
const MAX_URGENT: usize = 16;

/// `a - b` as a signed distance in sequence space.
fn dist(a: u32, b: u32) -> i64 {
    a.wrapping_sub(b) as i32 as i64
}

impl TcpReassembler {
    pub fn new() -> TcpReassembler {
        TcpReassembler::default()
    }

    /// The next sequence number expected in order (`None` before the stream has a start).
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    /// Out-of-order bytes held.
    pub fn buffered(&self) -> usize {
        self.ooo_bytes
    }

    /// Whether `seq` is within the window of this direction (true before the first segment).
    pub fn in_window(&self, seq: u32) -> bool {
        self.next.is_none_or(|n| dist(seq, n).unsigned_abs() <= WINDOW as u64)
    }

    pub fn push(&mut self, seg: &Segment<'_>) -> Pushed {
        self.push_framed(seg, |_| true)
    }

    /// Like [`TcpReassembler::push`], for a connection that may have been picked up in the
    /// middle (no SYN seen): until a segment arrives whose payload `starts_message` (e.g. a
    /// Diameter header), segments are held, not delivered. That segment then starts the stream;
    /// held segments after it follow in order, held ones before it are skipped (bytes of a
    /// message that began before we looked, counted in [`Pushed::skipped`]). So a sender that
    /// sends the second half of a message first is reassembled like the receiver does, and a
    /// connection older than the daemon does not start with garbage. Held bytes are bounded
    /// like out-of-order ones: over the cap, [`Pushed::gap`].
    pub fn push_framed(&mut self, seg: &Segment<'_>, starts_message: impl Fn(&[u8]) -> bool) -> Pushed {
        if self.next.is_none() && seg.flags & (SYN | RST) == 0 {
            // Judged as the application will read it: without its urgent byte.
            let mut visible = seg.payload.to_vec();
            if seg.flags & URG != 0 && seg.urgent_pointer > 0 && (seg.urgent_pointer as usize) <= visible.len() {
                visible.remove(seg.urgent_pointer as usize - 1);
            }
            if !starts_message(&visible) {
                let mut out = Pushed::default();
                if self.held >= MAX_OOO_SEGMENTS || self.ooo_bytes + seg.payload.len() > MAX_OOO_BYTES {
                    self.ooo.clear();
                    self.ooo_bytes = 0;
                    self.held = 0;
                    out.gap = true;
                    return out;
                }
                if !seg.payload.is_empty() && !self.ooo.contains_key(&seg.seq) {
                    self.ooo.insert(seg.seq, seg.payload.to_vec());
                    self.ooo_bytes += seg.payload.len();
                    self.held += 1;
                }
                return out;
            }
            // The stream starts here: what was held before it is not part of what we can judge.
            let before: Vec<u32> = self.ooo.keys().copied().filter(|s| dist(*s, seg.seq) < 0).collect();
            let mut skipped = 0;
            for s in before {
                if let Some(d) = self.ooo.remove(&s) {
                    self.ooo_bytes -= d.len();
                    skipped += d.len();
                }
            }
            self.held = 0;
            let mut out = self.push_inner(seg);
            out.skipped += skipped;
            return out;
        }
        self.push_inner(seg)
    }

    fn push_inner(&mut self, seg: &Segment<'_>) -> Pushed {
        let mut out = Pushed::default();
        if seg.flags & RST != 0 {
            // A receiver resets only on a RST at exactly the next expected byte; one elsewhere
            // in the window gets a challenge ACK and changes nothing (RFC 5961 section 3, as
            // Linux does). Treating it as a reset let a forged in-window RST blind inspection.
            match self.next {
                None => {}
                Some(n) if seg.seq == n => {}
                Some(_) if self.in_window(seg.seq) => {
                    out.challenged = true;
                    return out;
                }
                Some(_) => {
                    out.out_of_window = true;
                    return out;
                }
            }
            *self = TcpReassembler::default();
            out.reset = true;
            return out;
        }
        let mut seq = seg.seq;
        if seg.flags & SYN != 0 {
            // A SYN on a live stream is ignored by the receiver (RFC 5961 section 4: challenge
            // ACK); only after this direction's FIN, or before anything, does it start a new
            // connection on the 5-tuple. Resetting on any in-window SYN let a forged one make
            // the following messages "old data", never judged (review of stop 17, H2).
            if self.next.is_some() && !self.finished {
                out.challenged = true;
                return out;
            }
            *self = TcpReassembler::default();
            out.reset = true;
            seq = seq.wrapping_add(1);
        }
        let next = *self.next.get_or_insert(seq);
        if dist(seq, next).unsigned_abs() > WINDOW as u64 {
            out.out_of_window = true;
            return out;
        }
        // The urgent byte (the byte before seq + urgent pointer, RFC 9293 §3.8.5 as Linux reads
        // it) is not part of the stream an ordinary socket reads.
        if seg.flags & URG != 0 && seg.urgent_pointer > 0 {
            let at = seg.urgent_pointer as usize - 1;
            if at < seg.payload.len() {
                if self.urgent.len() >= MAX_URGENT {
                    self.urgent.remove(0);
                }
                self.urgent.push(seq.wrapping_add(at as u32));
                out.urgent = true;
            }
        }
        self.insert(seq, seg.payload, &mut out);
        // FIN takes one sequence number once everything before it has arrived.
        if seg.flags & FIN != 0 && self.ooo.is_empty() && self.next == Some(seq.wrapping_add(seg.payload.len() as u32))
        {
            self.next = self.next.map(|n| n.wrapping_add(1));
            self.finished = true;
        }
        out
    }

    fn insert(&mut self, seq: u32, payload: &[u8], out: &mut Pushed) {
        let Some(next) = self.next else { return };
        let d = dist(seq, next);
        let mut data = payload;
        let mut at = seq;
        if d < 0 {
            // Starts before the next expected byte: the old part is a retransmission.
            let old = (-d) as usize;
            let overlap = old.min(data.len());
            // Compare with what was delivered, as far as it is still kept.
            let kept = self.recent.len();
            if old <= kept {
                let start = kept - old;
                if self.recent.range(start..start + overlap).ne(data.get(..overlap).unwrap_or(&[]).iter()) {
                    out.conflict = true;
                }
            }
            if old >= data.len() {
                return;
            }
            data = data.get(old..).unwrap_or(&[]);
            at = next;
        }
        if data.is_empty() {
            return;
        }
        if at == next {
            self.deliver(data, out);
            self.drain(out);
        } else {
            self.store(at, data, out);
        }
    }

    fn deliver(&mut self, data: &[u8], out: &mut Pushed) {
        let start = self.next.unwrap_or(0);
        if self.urgent.is_empty() {
            out.deliver.extend_from_slice(data);
        } else {
            let end = start.wrapping_add(data.len() as u32);
            for (i, b) in data.iter().enumerate() {
                let s = start.wrapping_add(i as u32);
                if !self.urgent.contains(&s) {
                    out.deliver.push(*b);
                }
            }
            self.urgent.retain(|u| dist(*u, end) >= 0);
        }
        // As a slice (one copy), not byte by byte.
        self.recent.extend(data);
        let excess = self.recent.len().saturating_sub(RECENT_BYTES);
        self.recent.drain(..excess);
        self.next = self.next.map(|n| n.wrapping_add(data.len() as u32));
    }

    /// Deliver what the store now makes contiguous.
    fn drain(&mut self, out: &mut Pushed) {
        while let Some(next) = self.next {
            // The stored segment that starts at or before `next`, if any.
            let Some((&s, _)) = self
                .ooo
                .iter()
                .find(|(s, d)| dist(**s, next) <= 0 && dist(**s, next) + d.len() as i64 > 0 || **s == next)
            else {
                // Drop stored segments wholly behind `next` (covered by what was delivered).
                let stale: Vec<u32> =
                    self.ooo.iter().filter(|(s, d)| dist(**s, next) + d.len() as i64 <= 0).map(|(s, _)| *s).collect();
                for s in stale {
                    if let Some(d) = self.ooo.remove(&s) {
                        self.ooo_bytes -= d.len();
                    }
                }
                return;
            };
            let d = self.ooo.remove(&s).unwrap_or_default();
            self.ooo_bytes -= d.len();
            let skip = (-dist(s, next)) as usize;
            // Bytes of the stored segment that were already delivered by another segment.
            let kept = self.recent.len();
            if skip > 0 && skip <= kept {
                let start = kept - skip;
                if self.recent.range(start..).ne(d.get(..skip).unwrap_or(&[]).iter()) {
                    out.conflict = true;
                }
            }
            if let Some(rest) = d.get(skip..)
                && !rest.is_empty()
            {
                self.deliver(rest, out);
            }
        }
    }

    fn store(&mut self, at: u32, data: &[u8], out: &mut Pushed) {
        // Overlaps with stored segments: compare the common bytes.
        for (&s, d) in &self.ooo {
            let off = dist(at, s);
            let (a_start, b_start) = if off >= 0 { (0usize, off as usize) } else { ((-off) as usize, 0usize) };
            if b_start >= d.len() || a_start >= data.len() {
                continue;
            }
            let n = (d.len() - b_start).min(data.len() - a_start);
            if d.get(b_start..b_start + n) != data.get(a_start..a_start + n) {
                out.conflict = true;
            }
        }
        if let Some(old) = self.ooo.get(&at)
            && old.len() >= data.len()
        {
            return; // a retransmission of what is stored: the first copy stays
        }
        if self.ooo.len() >= MAX_OOO_SEGMENTS || self.ooo_bytes + data.len() > MAX_OOO_BYTES {
            // Give up on the gap: skip to this segment, as if the missing bytes were lost.
            self.ooo.clear();
            self.ooo_bytes = 0;
            self.recent.clear();
            self.next = Some(at);
            out.gap = true;
            self.deliver(data, out);
            return;
        }
        if let Some(old) = self.ooo.insert(at, data.to_vec()) {
            self.ooo_bytes -= old.len();
        }
        self.ooo_bytes += data.len();
    }
}

/// The Internet checksum of a TCP or UDP segment with its pseudo-header (RFC 9293 §3.1,
/// RFC 8200 §8.1): `src` and `dst` are 4 or 16 bytes. True when the segment's checksum field
/// makes the sum come out right.
///
/// The folded sum of the 16-bit words is 0xFFFF exactly when their plain sum S is not zero and
/// is a multiple of 0xFFFF (folding keeps S modulo 0xFFFF and never turns a non-zero sum into
/// zero). As 2^16 ≡ 1 and 2^8 is invertible modulo 0xFFFF, the same holds of the sum of the
/// little-endian 32-bit words (each congruent to 2^8 times the sum of its two big-endian
/// 16-bit words, and zero only when they are): so the sum is taken four octets at a time,
/// little-endian (a plain load on x86), a loop the compiler vectorises (it was two octets at a
/// time, with a bounds check on each).
pub fn checksum_ok(src: &[u8], dst: &[u8], proto: u8, segment: &[u8]) -> bool {
    let len = segment.len() as u32;
    let sum = le_sum(src) + le_sum(dst) + le_sum(&[0, proto]) + le_sum(&len.to_be_bytes()) + le_sum(segment);
    sum != 0 && sum.is_multiple_of(0xffff)
}

/// The sum of `b`'s little-endian 32-bit words, then of the little-endian 16-bit words of the
/// rest (a last odd octet with a zero after it, as the checksum pads it). A u64 cannot
/// overflow: 2^32 words of 2^32 would take 16 GiB.
fn le_sum(b: &[u8]) -> u64 {
    let mut quads = b.chunks_exact(4);
    let mut sum = 0u64;
    for q in &mut quads {
        sum += u64::from(u32::from_le_bytes([q[0], q[1], q[2], q[3]]));
    }
    for p in quads.remainder().chunks(2) {
        sum += u64::from(p.first().copied().unwrap_or(0)) | u64::from(p.get(1).copied().unwrap_or(0)) << 8;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, flags: u8, payload: &[u8]) -> Segment<'_> {
        Segment { seq, flags, urgent_pointer: 0, payload }
    }

    #[test]
    fn in_order_out_of_order_and_retransmission() {
        let mut r = TcpReassembler::new();
        assert!(r.push(&seg(99, SYN, b"")).reset);
        assert_eq!(r.push(&seg(100, ACK, b"abc")).deliver, b"abc");
        // Out of order: held until the gap closes.
        assert_eq!(r.push(&seg(106, ACK, b"ghi")).deliver, b"");
        assert_eq!(r.buffered(), 3);
        let p = r.push(&seg(103, ACK, b"def"));
        assert_eq!((p.deliver.as_slice(), p.conflict), (&b"defghi"[..], false));
        // Retransmission, same bytes: nothing new, no conflict.
        let p = r.push(&seg(100, ACK, b"abcdef"));
        assert_eq!((p.deliver.as_slice(), p.conflict), (&b""[..], false));
        // Partial overlap with new bytes after it.
        let p = r.push(&seg(107, ACK, b"hijk"));
        assert_eq!((p.deliver.as_slice(), p.conflict), (&b"jk"[..], false));
    }

    /// Review H5: a retransmission or an overlap with other bytes is reported; the first copy
    /// is what the stream keeps.
    #[test]
    fn conflicting_overlap_is_reported() {
        let mut r = TcpReassembler::new();
        r.push(&seg(1000, ACK, b"hello"));
        let p = r.push(&seg(1000, ACK, b"HELLO world"));
        assert!(p.conflict);
        assert_eq!(p.deliver, b" world");
        // Out of order, two different copies of the same range.
        r.push(&seg(1020, ACK, b"aaaa"));
        let p = r.push(&seg(1018, ACK, b"xxbbbb"));
        assert!(p.conflict);
    }

    /// Review H5 recipe 1 and 2: a segment far outside the window is not the connection's; the
    /// urgent byte is not in the stream; RST ends it.
    #[test]
    fn window_urgent_and_reset() {
        let mut r = TcpReassembler::new();
        r.push(&seg(5000, ACK, b"ab"));
        let p = r.push(&seg(5000u32.wrapping_sub(100_000_000), ACK, b"\x01\x00\xff\xff"));
        assert!(p.out_of_window && p.deliver.is_empty());
        let p = r.push(&Segment { seq: 5002, flags: ACK | PSH | URG, urgent_pointer: 1, payload: b"\x02PLR" });
        assert!(p.urgent);
        assert_eq!(p.deliver, b"PLR");
        assert!(r.push(&seg(3_000_000_000, RST, b"")).out_of_window);
        // In the window but not at the next byte (5006): challenged, nothing changes.
        let p = r.push(&seg(5005, RST, b""));
        assert!(p.challenged && !p.reset);
        assert!(r.push(&seg(5006, RST, b"")).reset);
        assert_eq!(r.push(&seg(7, ACK, b"new")).deliver, b"new");
    }

    /// Review of stop 17, H2: a forged SYN inside the window used to restart the stream, so the
    /// real messages after it were old data, never judged. The receiver ignores it.
    #[test]
    fn a_syn_on_a_live_stream_is_ignored_until_the_fin() {
        let mut r = TcpReassembler::new();
        assert!(r.push(&seg(1000, SYN, b"")).reset);
        assert_eq!(r.push(&seg(1001, ACK, b"abc")).deliver, b"abc");
        let p = r.push(&seg(1001 + 0x80000, SYN, b""));
        assert!(p.challenged && !p.reset);
        assert_eq!(r.push(&seg(1004, ACK, b"PLR")).deliver, b"PLR", "the real stream goes on");
        // After this direction's FIN, a SYN starts a new connection on the 5-tuple.
        r.push(&seg(1007, ACK | FIN, b""));
        assert!(r.push(&seg(90_000, SYN, b"")).reset);
        assert_eq!(r.push(&seg(90_001, ACK, b"new")).deliver, b"new");
    }

    #[test]
    fn out_of_order_store_is_bounded() {
        let mut r = TcpReassembler::new();
        r.push(&seg(0, ACK, b"a"));
        let mut gap = false;
        for i in 0..(MAX_OOO_SEGMENTS as u32 + 2) {
            gap |= r.push(&seg(10 + i * 2, ACK, b"x")).gap;
        }
        assert!(gap);
        assert!(r.buffered() <= MAX_OOO_BYTES);
    }

    #[test]
    fn checksum() {
        // IPv4 198.18.0.1 -> 198.18.0.2, TCP 3868 -> 3868, built by scapy.
        let hex = "0f1c0f1c000000010000000050102000e5730000";
        let s: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let ok = checksum_ok(&[198, 18, 0, 1], &[198, 18, 0, 2], 6, &s);
        let mut bad = s.clone();
        bad[4] ^= 1;
        assert_eq!((ok, checksum_ok(&[198, 18, 0, 1], &[198, 18, 0, 2], 6, &bad)), (true, false));
    }

    /// A connection picked up without its SYN: the second half of a message first, then the
    /// first half (which starts with a header): delivered whole, in order.
    #[test]
    fn picked_up_mid_stream_waits_for_a_message_start() {
        let starts = |p: &[u8]| p.first() == Some(&b'H');
        let mut r = TcpReassembler::new();
        let p = r.push_framed(&seg(130, ACK, b"world"), starts);
        assert!(p.deliver.is_empty());
        let p = r.push_framed(&seg(125, ACK, b"Hello"), starts);
        assert_eq!(p.deliver, b"Helloworld");
        // Held bytes before the first start are skipped.
        let mut r = TcpReassembler::new();
        r.push_framed(&seg(10, ACK, b"tail"), starts);
        let p = r.push_framed(&seg(14, ACK, b"Head"), starts);
        assert_eq!((p.deliver.as_slice(), p.skipped), (&b"Head"[..], 4));
    }

    use crate::test_rng::Rng;

    /// The checksum as it was computed: 16-bit big-endian words, folded.
    fn checksum_ok_by_words(src: &[u8], dst: &[u8], proto: u8, segment: &[u8]) -> bool {
        let mut sum: u64 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                let hi = c.first().copied().unwrap_or(0) as u64;
                let lo = c.get(1).copied().unwrap_or(0) as u64;
                sum += hi << 8 | lo;
            }
        };
        add(src);
        add(dst);
        add(&[0, proto]);
        let len = segment.len() as u32;
        add(&len.to_be_bytes());
        add(segment);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    /// The four-octet sum accepts exactly what the word-by-word sum did: random segments of
    /// every length up to 300 (odd ones too), made to check and then disturbed; sums of zero;
    /// sums that fold to 0xFFFF from a multiple of it; IPv4 and IPv6 addresses.
    #[test]
    fn checksum_by_four_octets_matches_word_by_word() {
        let mut r = Rng(0x7c9_0001);
        let mut checked = 0;
        for round in 0..20_000 {
            let alen = if round % 2 == 0 { 4 } else { 16 };
            let small = round % 3 == 0;
            let byte = |r: &mut Rng| if small { [0u8, 0xff][r.below(2) as usize] } else { r.next() as u8 };
            let src: Vec<u8> = (0..alen).map(|_| byte(&mut r)).collect();
            let dst: Vec<u8> = (0..alen).map(|_| byte(&mut r)).collect();
            let len = r.below(301) as usize;
            let mut seg: Vec<u8> = (0..len).map(|_| byte(&mut r)).collect();
            let proto = [6u8, 17, 0, 255][r.below(4) as usize];
            // Make it check (the field at 16..18, or a pair of octets of a short segment).
            if len >= 2 {
                let at = if len >= 18 { 16 } else { (r.below(len as u64 - 1) as usize) & !1 };
                seg[at] = 0;
                seg[at + 1] = 0;
                let mut sum: u64 = 0;
                for part in [&src[..], &dst[..], &[0, proto], &(len as u32).to_be_bytes(), &seg[..]] {
                    for c in part.chunks(2) {
                        sum += (c[0] as u64) << 8 | c.get(1).copied().unwrap_or(0) as u64;
                    }
                }
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                seg[at..at + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
                if r.below(3) == 0 {
                    let i = r.below(len as u64) as usize;
                    seg[i] ^= 1 << r.below(8);
                }
            }
            let want = checksum_ok_by_words(&src, &dst, proto, &seg);
            checked += usize::from(want);
            assert_eq!(checksum_ok(&src, &dst, proto, &seg), want, "{src:?} {dst:?} {proto} {seg:?}");
        }
        assert!(checked > 5_000, "{checked}");
        // All zero: the sum is 0, not a multiple of 0xFFFF that folds to it.
        assert!(!checksum_ok(&[0; 4], &[0; 4], 0, &[]));
        assert!(!checksum_ok_by_words(&[0; 4], &[0; 4], 0, &[]));
        // Words summing to 0xFFFF * 2 fold to 0xFFFF.
        for (a, b) in [([0xff; 4], [0, 0, 0, 0]), ([0xff, 0xff, 0, 0], [0xff, 0xff, 0, 0]), ([0x80; 4], [0x7f; 4])] {
            for seg in [&[][..], &[0xff, 0xff], &[0, 0, 0, 0, 0]] {
                for proto in [0, 6, 17] {
                    assert_eq!(checksum_ok(&a, &b, proto, seg), checksum_ok_by_words(&a, &b, proto, seg));
                }
            }
        }
    }
}
