//! Diameter messages out of a byte stream: one direction of a TCP connection, or the user
//! messages of an SCTP stream (which normally carry one whole message each, but nothing forces
//! a sender to).
//!
//! Feed segments in order with [`StreamReassembler::push`]; each complete message is handed to
//! the callback as one slice. Messages wholly inside a segment are handed out without copying;
//! only a message that spans segments is buffered, and the buffer never holds more than one
//! message of at most [`MAX_MESSAGE_LEN`] bytes.
//!
//! A header that is not Diameter (version ≠ 1, length < 20) or that announces more than
//! [`MAX_MESSAGE_LEN`] means the stream is lost or hostile: the buffered bytes and the rest of
//! the segment are dropped and the error returned; the next segment is taken to start a message
//! (resync). The caller also calls [`StreamReassembler::reset`] on a sequence gap.

use crate::{DecodeError, Layer};

use super::{HEADER_LEN, check_header};

const L: Layer = Layer::Diameter;

/// Largest Diameter message reassembled, and so the most memory one direction of a connection
/// holds: 64 KiB. Real S6a/Gx messages stay under 16 KiB (an ULA with many APN configurations);
/// the 24-bit length field allows 16 MiB, which a peer should never get to make us buffer.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// Reassembly state of one direction of one connection.
#[derive(Clone, Debug, Default)]
pub struct StreamReassembler {
    /// Bytes of an incomplete message (less than its length, at most [`MAX_MESSAGE_LEN`]).
    buf: Vec<u8>,
    /// Messages handed out since creation.
    messages: u64,
    /// Times the state was dropped because of a bad header or the cap.
    resyncs: u64,
}

impl StreamReassembler {
    pub fn new() -> StreamReassembler {
        StreamReassembler::default()
    }

    /// Bytes of the incomplete message at the end of what was fed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next segment; calls `on_message` with each message it completes, in order.
    /// Returns how many messages were completed, or the error that made it drop the stream
    /// state (messages completed before the error have been handed out).
    pub fn push(&mut self, mut segment: &[u8], mut on_message: impl FnMut(&[u8])) -> Result<usize, DecodeError> {
        let mut done = 0usize;
        // 1. Complete the buffered message, if any.
        if !self.buf.is_empty() {
            if self.buf.len() < HEADER_LEN {
                let take = (HEADER_LEN - self.buf.len()).min(segment.len());
                let (head, rest) = segment.split_at(take);
                self.buf.extend_from_slice(head);
                segment = rest;
                if self.buf.len() < HEADER_LEN {
                    return Ok(0);
                }
            }
            let len = match Self::message_len(&self.buf) {
                Ok(len) => len,
                Err(e) => return Err(self.drop_state(e)),
            };
            let take = (len - self.buf.len()).min(segment.len());
            let (head, rest) = segment.split_at(take);
            self.buf.extend_from_slice(head);
            segment = rest;
            if self.buf.len() < len {
                return Ok(0);
            }
            on_message(&self.buf);
            self.buf.clear();
            self.messages += 1;
            done += 1;
        }
        // 2. Whole messages in the segment, without copying.
        while !segment.is_empty() {
            if segment.len() < HEADER_LEN {
                // Check what there is of the header now, not when the rest arrives.
                if segment.first().is_some_and(|&v| v != super::VERSION) {
                    return Err(self.drop_state(DecodeError::Content { layer: L, what: "version is not 1" }));
                }
                break;
            }
            let len = match Self::message_len(segment) {
                Ok(len) => len,
                Err(e) => return Err(self.drop_state(e)),
            };
            let Some((msg, rest)) = segment.split_at_checked(len) else { break };
            on_message(msg);
            self.messages += 1;
            done += 1;
            segment = rest;
        }
        // 3. Keep the incomplete tail (shorter than its message, so under the cap).
        self.buf.extend_from_slice(segment);
        Ok(done)
    }

    /// Drops any partial message (a gap in the stream, or the connection ended).
    pub fn reset(&mut self) {
        self.buf = Vec::new();
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Times the state was dropped (bad header or over the cap).
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    fn message_len(header: &[u8]) -> Result<usize, DecodeError> {
        let len = check_header(header)?;
        if len > MAX_MESSAGE_LEN {
            return Err(DecodeError::Limit { layer: L, what: "message longer than 64 KiB" });
        }
        Ok(len)
    }

    fn drop_state(&mut self, e: DecodeError) -> DecodeError {
        self.reset();
        self.resyncs += 1;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::super::avp::{FLAG_M, code, encode as avp};
    use super::super::encode;
    use super::*;

    fn msg(hbh: u32, host: &[u8]) -> Vec<u8> {
        encode(0x80, 280, 0, hbh, hbh, &[avp(code::ORIGIN_HOST, FLAG_M, None, host)])
    }

    fn collect(r: &mut StreamReassembler, seg: &[u8]) -> (Result<usize, DecodeError>, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        let res = r.push(seg, |m| out.push(m.to_vec()));
        (res, out)
    }

    #[test]
    fn several_messages_in_one_segment() {
        let (a, b, c) = (msg(1, b"a"), msg(2, b"bb"), msg(3, b"ccc"));
        let mut r = StreamReassembler::new();
        let (res, out) = collect(&mut r, &[a.clone(), b.clone(), c.clone()].concat());
        assert_eq!(res, Ok(3));
        assert_eq!(out, vec![a, b, c]);
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.messages(), 3);
    }

    #[test]
    fn every_split_point_and_byte_by_byte() {
        let stream = [msg(1, b"first.example"), msg(2, b"second"), msg(3, b"x")].concat();
        for cut in 0..=stream.len() {
            let mut r = StreamReassembler::new();
            let (r1, mut out) = collect(&mut r, &stream[..cut]);
            let (r2, out2) = collect(&mut r, &stream[cut..]);
            out.extend(out2);
            assert!(r1.is_ok() && r2.is_ok(), "cut {cut}");
            assert_eq!(out.concat(), stream, "cut {cut}");
            assert_eq!(out.len(), 3);
        }
        let mut r = StreamReassembler::new();
        let mut out = Vec::new();
        for b in &stream {
            r.push(std::slice::from_ref(b), |m| out.push(m.to_vec())).unwrap();
        }
        assert_eq!(out.len(), 3);
        assert_eq!(out.concat(), stream);
    }

    #[test]
    fn over_the_cap_is_a_limit_error_and_resyncs() {
        let mut r = StreamReassembler::new();
        let mut big = msg(1, b"x");
        big[1..4].copy_from_slice(&((MAX_MESSAGE_LEN + 4) as u32).to_be_bytes()[1..]);
        let (res, out) = collect(&mut r, &big);
        assert!(matches!(res, Err(DecodeError::Limit { .. })));
        assert!(out.is_empty());
        assert_eq!((r.buffered(), r.resyncs()), (0, 1));
        // The next segment starts a message again.
        let good = msg(2, b"y");
        assert_eq!(collect(&mut r, &good).1, vec![good]);
    }

    #[test]
    fn bad_header_after_a_good_message_drops_the_rest() {
        let good = msg(1, b"x");
        let mut seg = good.clone();
        seg.extend_from_slice(&[2; 24]);
        let mut r = StreamReassembler::new();
        let (res, out) = collect(&mut r, &seg);
        assert!(matches!(res, Err(DecodeError::Content { .. })));
        assert_eq!(out, vec![good]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn bad_header_split_across_segments() {
        let mut r = StreamReassembler::new();
        assert_eq!(collect(&mut r, &[1, 0, 0]).0, Ok(0));
        assert_eq!(r.buffered(), 3);
        // Length 5 (< 20) once the header is complete.
        let mut rest = vec![5u8];
        rest.extend_from_slice(&[0; 16]);
        assert!(matches!(collect(&mut r, &rest).0, Err(DecodeError::Content { .. })));
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn buffer_never_exceeds_the_cap() {
        let mut r = StreamReassembler::new();
        let mut m = msg(1, b"x");
        m[1..4].copy_from_slice(&(MAX_MESSAGE_LEN as u32).to_be_bytes()[1..]);
        collect(&mut r, &m).0.unwrap();
        let mut remaining = MAX_MESSAGE_LEN - m.len();
        let mut total = 0;
        while remaining > 0 {
            let chunk = vec![0u8; remaining.min(1000)];
            remaining -= chunk.len();
            let (res, out) = collect(&mut r, &chunk);
            res.unwrap();
            assert!(r.buffered() <= MAX_MESSAGE_LEN);
            total += out.len();
        }
        assert_eq!(r.buffered(), 0);
        assert_eq!(total, 1);
    }
}
