//! SCTP (RFC 9260): common header, every chunk of a packet, DATA chunks, and a [`Reassembler`]
//! that rebuilds a user message split over several DATA chunks.
//!
//! [`SctpSlice::from_slice`] walks the chunk list once (at most [`MAX_CHUNKS`] chunks) and
//! checks every chunk length against the packet, so [`SctpSlice::chunks`] cannot fail. A chunk
//! length that is not a multiple of 4 is followed by padding; the last chunk's padding may be
//! missing (as tshark, we accept that).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::bytes::{be16, be32};
use crate::{DecodeError, Layer};

/// Chunks decoded per packet; a packet with more is refused with [`DecodeError::Limit`]. The
/// smallest chunk is 4 bytes, so a 9000-byte jumbo frame could hold ~2250; real bundles hold a
/// handful.
pub const MAX_CHUNKS: usize = 128;

pub const COMMON_HEADER_LEN: usize = 12;
pub const CHUNK_HEADER_LEN: usize = 4;
/// DATA chunk header: type, flags, length, TSN, stream id, stream sequence number, PPID.
pub const DATA_HEADER_LEN: usize = 16;

pub const CHUNK_DATA: u8 = 0;
pub const CHUNK_INIT: u8 = 1;
pub const CHUNK_INIT_ACK: u8 = 2;
pub const CHUNK_SACK: u8 = 3;
pub const CHUNK_HEARTBEAT: u8 = 4;
pub const CHUNK_HEARTBEAT_ACK: u8 = 5;
pub const CHUNK_ABORT: u8 = 6;
pub const CHUNK_SHUTDOWN: u8 = 7;
pub const CHUNK_SHUTDOWN_ACK: u8 = 8;
pub const CHUNK_ERROR: u8 = 9;
pub const CHUNK_COOKIE_ECHO: u8 = 10;
pub const CHUNK_COOKIE_ACK: u8 = 11;
pub const CHUNK_SHUTDOWN_COMPLETE: u8 = 14;
/// I-DATA (RFC 8260, interleaved user messages): recognised, not decoded.
pub const CHUNK_I_DATA: u8 = 64;

/// Payload protocol identifiers (IANA) of the SIGTRAN adaptation layers. [`crate::ss7`]
/// decodes M3UA and M2PA.
pub const PPID_M2UA: u32 = 2;
pub const PPID_M3UA: u32 = 3;
pub const PPID_SUA: u32 = 4;
pub const PPID_M2PA: u32 = 5;
/// Payload protocol identifiers (IANA, RFC 6733 §2.1) of Diameter, in clear and over DTLS.
pub const PPID_DIAMETER: u32 = 46;
pub const PPID_DIAMETER_DTLS: u32 = 47;
/// PPID 0: unspecified (the port says what it is).
pub const PPID_UNSPECIFIED: u32 = 0;

fn len_err(required: usize, len: usize) -> DecodeError {
    DecodeError::Len { layer: Layer::Sctp, required, len }
}

/// One SCTP packet: common header plus a validated chunk list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpSlice<'a> {
    data: &'a [u8],
    chunk_count: usize,
}

impl<'a> SctpSlice<'a> {
    /// Validates the common header and every chunk's length. Zero chunks is accepted (tshark
    /// shows such a packet as a bare header).
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        DecodeError::need(Layer::Sctp, COMMON_HEADER_LEN, data.len())?;
        let mut off = COMMON_HEADER_LEN;
        let mut count = 0;
        while off < data.len() {
            if count == MAX_CHUNKS {
                return Err(DecodeError::Limit { layer: Layer::Sctp, what: "more than MAX_CHUNKS chunks" });
            }
            let len = be16(data, off + 2).ok_or(len_err(off + CHUNK_HEADER_LEN, data.len()))? as usize;
            if len < CHUNK_HEADER_LEN {
                return Err(DecodeError::Content { layer: Layer::Sctp, what: "chunk length below 4" });
            }
            let end = off + len;
            if end > data.len() {
                return Err(len_err(end, data.len()));
            }
            if data.get(off) == Some(&CHUNK_DATA) && len < DATA_HEADER_LEN {
                return Err(DecodeError::Content { layer: Layer::Sctp, what: "DATA chunk shorter than its header" });
            }
            count += 1;
            // Padding to a multiple of 4; the last chunk's may be missing.
            off = end.next_multiple_of(4).min(data.len());
        }
        Ok(SctpSlice { data, chunk_count: count })
    }

    pub fn source_port(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }
    pub fn destination_port(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }
    pub fn verification_tag(&self) -> u32 {
        be32(self.data, 4).unwrap_or(0)
    }
    pub fn checksum(&self) -> u32 {
        be32(self.data, 8).unwrap_or(0)
    }
    pub fn chunk_count(&self) -> usize {
        self.chunk_count
    }
    pub fn slice(&self) -> &'a [u8] {
        self.data
    }

    /// The chunks, in packet order (validated by `from_slice`).
    pub fn chunks(&self) -> ChunkIter<'a> {
        ChunkIter { data: self.data, off: COMMON_HEADER_LEN }
    }

    /// DATA chunks only.
    pub fn data_chunks(&self) -> impl Iterator<Item = DataChunkSlice<'a>> + use<'a> {
        self.chunks().filter_map(|c| c.data())
    }
}

#[derive(Clone, Debug)]
pub struct ChunkIter<'a> {
    data: &'a [u8],
    off: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = ChunkSlice<'a>;

    fn next(&mut self) -> Option<ChunkSlice<'a>> {
        // `from_slice` checked every length; re-check anyway so a bug cannot panic.
        let len = be16(self.data, self.off + 2)? as usize;
        let chunk = self.data.get(self.off..self.off.checked_add(len)?)?;
        if len < CHUNK_HEADER_LEN {
            return None;
        }
        self.off = (self.off + len).next_multiple_of(4).min(self.data.len());
        Some(ChunkSlice { data: chunk })
    }
}

/// One chunk (header and value, without padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSlice<'a> {
    data: &'a [u8],
}

impl<'a> ChunkSlice<'a> {
    /// A single chunk from its first byte; `data` may extend past it (padding, next chunks).
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        DecodeError::need(Layer::Sctp, CHUNK_HEADER_LEN, data.len())?;
        let len = be16(data, 2).unwrap_or(0) as usize;
        if len < CHUNK_HEADER_LEN {
            return Err(DecodeError::Content { layer: Layer::Sctp, what: "chunk length below 4" });
        }
        let data = data.get(..len).ok_or(len_err(len, data.len()))?;
        Ok(ChunkSlice { data })
    }

    pub fn chunk_type(&self) -> u8 {
        self.data.first().copied().unwrap_or(0)
    }
    pub fn flags(&self) -> u8 {
        self.data.get(1).copied().unwrap_or(0)
    }
    /// The chunk length field (header included, padding excluded).
    pub fn length(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }
    pub fn value(&self) -> &'a [u8] {
        self.data.get(CHUNK_HEADER_LEN..).unwrap_or(&[])
    }
    pub fn slice(&self) -> &'a [u8] {
        self.data
    }

    /// The DATA view of this chunk, if it is one and is long enough.
    pub fn data(&self) -> Option<DataChunkSlice<'a>> {
        DataChunkSlice::from_chunk(*self).ok()
    }
}

/// A DATA chunk (type 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataChunkSlice<'a> {
    data: &'a [u8],
}

impl<'a> DataChunkSlice<'a> {
    pub fn from_chunk(chunk: ChunkSlice<'a>) -> Result<Self, DecodeError> {
        if chunk.chunk_type() != CHUNK_DATA {
            return Err(DecodeError::Content { layer: Layer::Sctp, what: "not a DATA chunk" });
        }
        DecodeError::need(Layer::Sctp, DATA_HEADER_LEN, chunk.data.len())?;
        Ok(DataChunkSlice { data: chunk.data })
    }

    pub fn flags(&self) -> u8 {
        self.data.get(1).copied().unwrap_or(0)
    }
    /// I bit (SACK immediately, RFC 7053).
    pub fn immediate(&self) -> bool {
        self.flags() & 0x08 != 0
    }
    /// U bit: unordered.
    pub fn unordered(&self) -> bool {
        self.flags() & 0x04 != 0
    }
    /// B bit: first fragment of a user message.
    pub fn beginning(&self) -> bool {
        self.flags() & 0x02 != 0
    }
    /// E bit: last fragment of a user message.
    pub fn ending(&self) -> bool {
        self.flags() & 0x01 != 0
    }
    pub fn tsn(&self) -> u32 {
        be32(self.data, 4).unwrap_or(0)
    }
    pub fn stream_id(&self) -> u16 {
        be16(self.data, 8).unwrap_or(0)
    }
    pub fn stream_seq(&self) -> u16 {
        be16(self.data, 10).unwrap_or(0)
    }
    pub fn ppid(&self) -> u32 {
        be32(self.data, 12).unwrap_or(0)
    }
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(DATA_HEADER_LEN..).unwrap_or(&[])
    }
}

// ---------------------------------------------------------------------------------------------
// Reassembly

/// Bytes of unfinished messages held per association; beyond it the association's state is
/// dropped and [`Reassembler::push`] returns [`DecodeError::Limit`].
pub const REASM_MAX_BYTES_PER_ASSOC: usize = 256 * 1024;
/// Bytes of unfinished messages held over all associations.
pub const REASM_MAX_BYTES_TOTAL: usize = 16 * 1024 * 1024;
/// Fragments held per (association, stream).
pub const REASM_MAX_FRAGMENTS_PER_STREAM: usize = 256;
/// Associations with unfinished messages.
pub const REASM_MAX_ASSOCS: usize = 4096;
/// Streams with unfinished messages per association.
pub const REASM_MAX_STREAMS_PER_ASSOC: usize = 64;

/// Identifies one direction of an association: addresses, ports and verification tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AssocKey {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub vtag: u32,
}

/// A complete user message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMessage {
    pub stream_id: u16,
    pub stream_seq: u16,
    pub ppid: u32,
    /// TSN of the first fragment.
    pub first_tsn: u32,
    /// How many DATA chunks it came in.
    pub fragments: usize,
    pub data: Vec<u8>,
}

#[derive(Debug)]
struct Fragment {
    tsn: u32,
    begin: bool,
    end: bool,
    ssn: u16,
    ppid: u32,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct AssocState {
    bytes: usize,
    streams: HashMap<u16, Vec<Fragment>>,
}

/// Rebuilds user messages from DATA chunks (B…E on one stream, consecutive TSNs). A chunk with
/// both B and E is returned at once; fragments wait until the run is complete, in any arrival
/// order; a retransmitted TSN is ignored. Memory is capped per association and in total.
#[derive(Debug, Default)]
pub struct Reassembler {
    assocs: HashMap<AssocKey, AssocState>,
    total: usize,
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of unfinished messages held.
    pub fn buffered_bytes(&self) -> usize {
        self.total
    }

    /// Associations with unfinished messages.
    pub fn pending_assocs(&self) -> usize {
        self.assocs.len()
    }

    /// Forget an association (e.g. on ABORT or SHUTDOWN_COMPLETE).
    pub fn drop_assoc(&mut self, key: &AssocKey) {
        if let Some(st) = self.assocs.remove(key) {
            self.total -= st.bytes;
        }
    }

    /// Feeds one DATA chunk. `Ok(Some(..))` when it completes a user message.
    pub fn push(&mut self, key: AssocKey, chunk: &DataChunkSlice<'_>) -> Result<Option<UserMessage>, DecodeError> {
        if chunk.beginning() && chunk.ending() {
            return Ok(Some(UserMessage {
                stream_id: chunk.stream_id(),
                stream_seq: chunk.stream_seq(),
                ppid: chunk.ppid(),
                first_tsn: chunk.tsn(),
                fragments: 1,
                data: chunk.payload().to_vec(),
            }));
        }
        let n = chunk.payload().len();
        let limit = |what| Err(DecodeError::Limit { layer: Layer::Sctp, what });
        if !self.assocs.contains_key(&key) && self.assocs.len() >= REASM_MAX_ASSOCS {
            return limit("too many associations in reassembly");
        }
        let st = self.assocs.entry(key).or_default();
        if !st.streams.contains_key(&chunk.stream_id()) && st.streams.len() >= REASM_MAX_STREAMS_PER_ASSOC {
            self.drop_assoc(&key);
            return limit("too many streams in reassembly for one association");
        }
        let frags = st.streams.entry(chunk.stream_id()).or_default();
        if frags.iter().any(|f| f.tsn == chunk.tsn()) {
            return Ok(None); // retransmission
        }
        if frags.len() >= REASM_MAX_FRAGMENTS_PER_STREAM || st.bytes + n > REASM_MAX_BYTES_PER_ASSOC {
            self.drop_assoc(&key);
            return limit("reassembly memory per association");
        }
        if self.total + n > REASM_MAX_BYTES_TOTAL {
            self.drop_assoc(&key);
            return limit("reassembly memory in total");
        }
        frags.push(Fragment {
            tsn: chunk.tsn(),
            begin: chunk.beginning(),
            end: chunk.ending(),
            ssn: chunk.stream_seq(),
            ppid: chunk.ppid(),
            data: chunk.payload().to_vec(),
        });
        st.bytes += n;
        self.total += n;

        // Look for a complete run: a B fragment followed by consecutive TSNs up to an E.
        let Some(run) = complete_run(frags) else { return Ok(None) };
        let mut msg = UserMessage {
            stream_id: chunk.stream_id(),
            stream_seq: 0,
            ppid: 0,
            first_tsn: 0,
            fragments: run.len(),
            data: Vec::new(),
        };
        for &i in &run {
            if let Some(f) = frags.get(i) {
                if f.begin {
                    msg.stream_seq = f.ssn;
                    msg.ppid = f.ppid;
                    msg.first_tsn = f.tsn;
                }
                msg.data.extend_from_slice(&f.data);
            }
        }
        let mut idx = run;
        idx.sort_unstable_by(|a, b| b.cmp(a));
        for i in idx {
            frags.swap_remove(i);
        }
        let freed = msg.data.len();
        st.bytes -= freed;
        self.total -= freed;
        if frags.is_empty() {
            st.streams.remove(&chunk.stream_id());
        }
        if st.streams.is_empty() {
            self.assocs.remove(&key);
        }
        Ok(Some(msg))
    }
}

/// Indices (in TSN order) of a complete B…E run of consecutive TSNs, if one exists.
fn complete_run(frags: &[Fragment]) -> Option<Vec<usize>> {
    frags.iter().enumerate().filter(|(_, f)| f.begin).find_map(|(bi, _)| run_from(frags, bi))
}

fn run_from(frags: &[Fragment], first: usize) -> Option<Vec<usize>> {
    let mut run = vec![first];
    let mut cur = frags.get(first)?;
    while !cur.end {
        let next = cur.tsn.wrapping_add(1);
        let ni = frags.iter().position(|f| f.tsn == next && !f.begin)?;
        run.push(ni);
        cur = frags.get(ni)?;
        if run.len() > frags.len() {
            return None;
        }
    }
    Some(run)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn data_chunk(flags: u8, tsn: u32, sid: u16, ssn: u16, ppid: u32, payload: &[u8]) -> Vec<u8> {
        let mut c = vec![CHUNK_DATA, flags];
        c.extend_from_slice(&((DATA_HEADER_LEN + payload.len()) as u16).to_be_bytes());
        c.extend_from_slice(&tsn.to_be_bytes());
        c.extend_from_slice(&sid.to_be_bytes());
        c.extend_from_slice(&ssn.to_be_bytes());
        c.extend_from_slice(&ppid.to_be_bytes());
        c.extend_from_slice(payload);
        while c.len() % 4 != 0 {
            c.push(0);
        }
        c
    }

    fn packet(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0x0b, 0x59, 0x0b, 0x59, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
        for c in chunks {
            p.extend_from_slice(c);
        }
        p
    }

    fn key() -> AssocKey {
        AssocKey {
            src: Ipv4Addr::new(192, 0, 2, 1).into(),
            src_port: 2905,
            dst: Ipv4Addr::new(192, 0, 2, 2).into(),
            dst_port: 2905,
            vtag: 1,
        }
    }

    #[test]
    fn header_and_chunks() {
        let sack = vec![CHUNK_SACK, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
        let p = packet(&[sack, data_chunk(3, 7, 1, 2, PPID_M3UA, b"hello")]);
        let s = SctpSlice::from_slice(&p).unwrap();
        assert_eq!((s.source_port(), s.destination_port(), s.verification_tag()), (2905, 2905, 0xdeadbeef));
        assert_eq!(s.chunk_count(), 2);
        let types: Vec<u8> = s.chunks().map(|c| c.chunk_type()).collect();
        assert_eq!(types, [CHUNK_SACK, CHUNK_DATA]);
        let d = s.data_chunks().next().unwrap();
        assert_eq!((d.tsn(), d.stream_id(), d.stream_seq(), d.ppid()), (7, 1, 2, 3));
        assert!(d.beginning() && d.ending() && !d.unordered());
        assert_eq!(d.payload(), b"hello");
    }

    #[test]
    fn last_chunk_padding_may_be_missing() {
        let mut p = packet(&[data_chunk(3, 1, 0, 0, 3, b"abc")]);
        p.pop();
        let s = SctpSlice::from_slice(&p).unwrap();
        assert_eq!(s.data_chunks().next().unwrap().payload(), b"abc");
    }

    #[test]
    fn every_truncation_is_an_error_or_shorter() {
        let p = packet(&[data_chunk(3, 1, 0, 0, 3, b"abcdefgh"), vec![CHUNK_COOKIE_ACK, 0, 0, 4]]);
        for n in 0..p.len() {
            // Cutting inside a chunk is an error; cutting on a chunk boundary is a shorter packet.
            match SctpSlice::from_slice(&p[..n]) {
                Ok(s) => assert!(n == 12 || n == 36, "cut at {n} accepted with {} chunks", s.chunk_count()),
                Err(e) => assert!(matches!(e, DecodeError::Len { .. }), "{e}"),
            }
        }
    }

    #[test]
    fn malformed() {
        let mut p = packet(&[vec![CHUNK_COOKIE_ACK, 0, 0, 2]]);
        assert!(matches!(SctpSlice::from_slice(&p), Err(DecodeError::Content { .. })));
        p = packet(&[vec![CHUNK_DATA, 3, 0, 8, 0, 0, 0, 0]]);
        assert!(matches!(SctpSlice::from_slice(&p), Err(DecodeError::Content { .. })));
        let many: Vec<Vec<u8>> = (0..=MAX_CHUNKS).map(|_| vec![CHUNK_COOKIE_ACK, 0, 0, 4]).collect();
        assert!(matches!(SctpSlice::from_slice(&packet(&many)), Err(DecodeError::Limit { .. })));
        let ok: Vec<Vec<u8>> = (0..MAX_CHUNKS).map(|_| vec![CHUNK_COOKIE_ACK, 0, 0, 4]).collect();
        assert_eq!(SctpSlice::from_slice(&packet(&ok)).unwrap().chunks().count(), MAX_CHUNKS);
    }

    fn dchunk(flags: u8, tsn: u32, sid: u16, payload: &[u8]) -> Vec<u8> {
        data_chunk(flags, tsn, sid, 9, PPID_M3UA, payload)
    }

    fn push(r: &mut Reassembler, c: &[u8]) -> Result<Option<UserMessage>, DecodeError> {
        let ch = ChunkSlice::from_slice(c).unwrap();
        r.push(key(), &ch.data().unwrap())
    }

    #[test]
    fn reassembles_in_and_out_of_order() {
        let mut r = Reassembler::new();
        assert_eq!(push(&mut r, &dchunk(3, 1, 0, b"whole")).unwrap().unwrap().data, b"whole");
        assert!(push(&mut r, &dchunk(2, 10, 1, b"ab")).unwrap().is_none());
        assert!(push(&mut r, &dchunk(0, 11, 1, b"cd")).unwrap().is_none());
        // another stream interleaved
        assert!(push(&mut r, &dchunk(2, 20, 2, b"xy")).unwrap().is_none());
        let m = push(&mut r, &dchunk(1, 12, 1, b"ef")).unwrap().unwrap();
        assert_eq!((m.data.as_slice(), m.fragments, m.first_tsn, m.ppid, m.stream_seq), (&b"abcdef"[..], 3, 10, 3, 9));
        assert_eq!(r.buffered_bytes(), 2);
        // out of order, with a retransmission, across TSN wrap
        assert!(push(&mut r, &dchunk(1, 1, 3, b"3")).unwrap().is_none());
        assert!(push(&mut r, &dchunk(0, 0, 3, b"2")).unwrap().is_none());
        assert!(push(&mut r, &dchunk(0, 0, 3, b"2")).unwrap().is_none());
        let m = push(&mut r, &dchunk(2, u32::MAX, 3, b"1")).unwrap().unwrap();
        assert_eq!(m.data, b"123");
        assert!(push(&mut r, &dchunk(1, 21, 2, b"z")).unwrap().is_some());
        assert_eq!((r.buffered_bytes(), r.pending_assocs()), (0, 0));
    }

    #[test]
    fn reassembly_memory_is_capped() {
        let mut r = Reassembler::new();
        let big = vec![0u8; 60_000];
        let mut tsn = 0;
        let mut err = None;
        for _ in 0..10 {
            tsn += 1;
            match push(&mut r, &dchunk(if tsn == 1 { 2 } else { 0 }, tsn, 0, &big)) {
                Ok(None) => {}
                Ok(Some(_)) => panic!("no E fragment was sent"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(err, Some(DecodeError::Limit { layer: Layer::Sctp, .. })));
        assert_eq!((r.buffered_bytes(), r.pending_assocs()), (0, 0), "state dropped");
        let mut r = Reassembler::new();
        for i in 0..REASM_MAX_FRAGMENTS_PER_STREAM as u32 {
            assert!(push(&mut r, &dchunk(0, i, 0, b"x")).unwrap().is_none());
        }
        assert!(matches!(push(&mut r, &dchunk(0, 9999, 0, b"x")), Err(DecodeError::Limit { .. })));
        assert_eq!(r.buffered_bytes(), 0);
    }
}
