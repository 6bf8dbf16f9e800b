//! SCTP (RFC 9260): common header, every chunk of a packet, DATA and I-DATA chunks, the CRC32c,
//! and a [`Reassembler`] that rebuilds a user message split over several chunks the way the
//! receiver does.
//!
//! [`SctpSlice::from_slice`] walks the chunk list once (at most [`MAX_CHUNKS`] chunks) and
//! checks every chunk length against the packet, so [`SctpSlice::chunks`] cannot fail. A chunk
//! length that is not a multiple of 4 is followed by padding; the last chunk's padding may be
//! missing (as tshark, we accept that).
//!
//! [`SctpSlice::from_slice_lax`] is what inspection uses: it walks like a receiver (Linux
//! `sctp_inq_pop()`), chunk by chunk, up to the first malformed chunk or the first unrecognised
//! chunk whose action bits say "stop processing this packet" (RFC 9260 §3.2), and keeps every
//! chunk before it; a packet is never discarded whole because of something after its DATA.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
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
/// AUTH (RFC 4895).
pub const CHUNK_AUTH: u8 = 15;
/// I-DATA (RFC 8260, interleaved user messages): decoded and reassembled like DATA.
pub const CHUNK_I_DATA: u8 = 64;
/// PAD (RFC 4820): action bits `10`, skipped by the receiver.
pub const CHUNK_PAD: u8 = 0x84;
/// I-DATA chunk header: type, flags, length, TSN, stream id, reserved, message id, PPID or FSN.
pub const I_DATA_HEADER_LEN: usize = 20;

/// Whether a receiver that does not know chunk type `t` stops processing the packet there and
/// discards the rest (action bits `00` and `01`, RFC 9260 §3.2). Types with the high bit set
/// are skipped and the packet goes on.
pub fn unknown_chunk_stops(t: u8) -> bool {
    let known = t <= CHUNK_AUTH || t == CHUNK_I_DATA;
    !known && t & 0x80 == 0
}

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
    /// Common header and the validated chunks.
    data: &'a [u8],
    /// The whole packet as given (the checksum covers it all).
    whole: &'a [u8],
    chunk_count: usize,
}

fn short_data(t: u8, len: usize) -> bool {
    (t == CHUNK_DATA && len < DATA_HEADER_LEN) || (t == CHUNK_I_DATA && len < I_DATA_HEADER_LEN)
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
            if short_data(data.get(off).copied().unwrap_or(0), len) {
                return Err(DecodeError::Content { layer: Layer::Sctp, what: "DATA chunk shorter than its header" });
            }
            count += 1;
            // Padding to a multiple of 4; the last chunk's may be missing.
            off = end.next_multiple_of(4).min(data.len());
        }
        Ok(SctpSlice { data, whole: data, chunk_count: count })
    }

    /// Walks the chunks as a receiver does: up to the first malformed chunk (kept out), or up to
    /// and including the first unrecognised chunk whose action bits discard the rest of the
    /// packet. Returns the packet with the chunks a receiver processes, and why the walk stopped
    /// early (`None` when it reached the end). No chunk count cap: the walk is linear in the
    /// packet's length, and a cap would hide the chunks after it. Only a packet shorter than the
    /// common header is an error.
    pub fn from_slice_lax(data: &'a [u8]) -> Result<(Self, Option<DecodeError>), DecodeError> {
        DecodeError::need(Layer::Sctp, COMMON_HEADER_LEN, data.len())?;
        let mut off = COMMON_HEADER_LEN;
        let mut count = 0;
        let mut stop = None;
        while off < data.len() {
            let Some(len) = be16(data, off + 2) else {
                stop = Some(len_err(off + CHUNK_HEADER_LEN, data.len()));
                break;
            };
            let len = len as usize;
            let t = data.get(off).copied().unwrap_or(0);
            if len < CHUNK_HEADER_LEN {
                stop = Some(DecodeError::Content { layer: Layer::Sctp, what: "chunk length below 4" });
                break;
            }
            if off + len > data.len() {
                stop = Some(len_err(off + len, data.len()));
                break;
            }
            if short_data(t, len) {
                stop = Some(DecodeError::Content { layer: Layer::Sctp, what: "DATA chunk shorter than its header" });
                break;
            }
            count += 1;
            off = (off + len).next_multiple_of(4).min(data.len());
            if unknown_chunk_stops(t) {
                if off < data.len() {
                    stop = Some(DecodeError::Content {
                        layer: Layer::Sctp,
                        what: "unrecognised chunk type: the receiver discards the rest of the packet",
                    });
                }
                break;
            }
        }
        let valid = data.get(..off).unwrap_or(data);
        Ok((SctpSlice { data: valid, whole: data, chunk_count: count }, stop))
    }

    /// Whether the CRC32c in the common header matches the whole packet (computed with the
    /// checksum field as zero). A packet cut short (snap length) cannot be checked: false.
    pub fn checksum_ok(&self) -> bool {
        let (Some(head), Some(rest)) = (self.whole.get(..8), self.whole.get(COMMON_HEADER_LEN..)) else {
            return false;
        };
        crc32c(&[head, &[0; 4], rest]).to_le_bytes() == self.checksum().to_be_bytes()
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

    /// DATA and I-DATA chunks.
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

    /// The DATA view of this chunk, if it is a DATA or I-DATA chunk and is long enough.
    pub fn data(&self) -> Option<DataChunkSlice<'a>> {
        DataChunkSlice::from_chunk(*self).ok()
    }
}

/// A DATA chunk (type 0) or an I-DATA chunk (type 64, RFC 8260): both carry user data; I-DATA
/// names the message by a 32-bit message id and its fragments by a fragment sequence number
/// (FSN), and carries the PPID in the first fragment only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataChunkSlice<'a> {
    data: &'a [u8],
}

impl<'a> DataChunkSlice<'a> {
    pub fn from_chunk(chunk: ChunkSlice<'a>) -> Result<Self, DecodeError> {
        let need = match chunk.chunk_type() {
            CHUNK_DATA => DATA_HEADER_LEN,
            CHUNK_I_DATA => I_DATA_HEADER_LEN,
            _ => return Err(DecodeError::Content { layer: Layer::Sctp, what: "not a DATA chunk" }),
        };
        DecodeError::need(Layer::Sctp, need, chunk.data.len())?;
        Ok(DataChunkSlice { data: chunk.data })
    }

    /// An I-DATA chunk.
    pub fn is_idata(&self) -> bool {
        self.data.first() == Some(&CHUNK_I_DATA)
    }
    /// The chunk's bytes, header included.
    pub fn raw(&self) -> &'a [u8] {
        self.data
    }
    /// Message id: I-DATA's 32-bit MID; for DATA the stream sequence number.
    pub fn message_id(&self) -> u32 {
        if self.is_idata() { be32(self.data, 12).unwrap_or(0) } else { self.stream_seq() as u32 }
    }
    /// Fragment sequence number of an I-DATA fragment (0 for the first fragment and for DATA).
    pub fn fsn(&self) -> u32 {
        if self.is_idata() && !self.beginning() { be32(self.data, 16).unwrap_or(0) } else { 0 }
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
    /// Stream sequence number (DATA); for I-DATA the low 16 bits of the message id.
    pub fn stream_seq(&self) -> u16 {
        if self.is_idata() { be32(self.data, 12).unwrap_or(0) as u16 } else { be16(self.data, 10).unwrap_or(0) }
    }
    /// PPID; an I-DATA chunk carries it in its first fragment only (0 in the others).
    pub fn ppid(&self) -> u32 {
        match (self.is_idata(), self.beginning()) {
            (false, _) => be32(self.data, 12).unwrap_or(0),
            (true, true) => be32(self.data, 16).unwrap_or(0),
            (true, false) => 0,
        }
    }
    pub fn payload(&self) -> &'a [u8] {
        let at = if self.is_idata() { I_DATA_HEADER_LEN } else { DATA_HEADER_LEN };
        self.data.get(at..).unwrap_or(&[])
    }
}

// ---------------------------------------------------------------------------------------------
// CRC32c (RFC 9260 appendix A): the receiver discards a packet whose checksum is wrong, so
// inspection must not let such a packet change what it believes the association carried.

/// The byte-at-a-time table, the reference the tests hold [`crc32c`] to.
#[cfg(test)]
const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// CRC32c (Castagnoli) over the concatenation of `parts`.
///
/// Through the `crc32c` crate: the SSE 4.2 `crc32` instruction (or ARMv8's) where the CPU has
/// it, found at run time, and a software fallback elsewhere; every SCTP packet inspected in
/// path is checked, and a neutralized one checksummed again, and the instruction does in a
/// cycle per 8 bytes what the slicing-by-8 tables this replaced did in about five.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p))
}

// ---------------------------------------------------------------------------------------------
// Reassembly, as the receiver does it (Linux `net/sctp/ulpqueue.c`): DATA fragments by TSN within
// the association, whatever their stream id; I-DATA fragments (RFC 8260) by stream, U flag and
// message id, in fragment sequence number order.

/// Bytes of unfinished messages held per association; beyond it the association's unfinished
/// fragments are dropped and [`Reassembler::feed`] returns [`DecodeError::Limit`] (an event for
/// the caller: the message can no longer be judged).
pub const REASM_MAX_BYTES_PER_ASSOC: usize = 256 * 1024;
/// Bytes of unfinished messages held over all associations of one owner (the caller's peer id):
/// one peer cannot take the memory the others need.
pub const REASM_MAX_BYTES_PER_OWNER: usize = 4 * 1024 * 1024;
/// Bytes of unfinished messages held over all associations.
pub const REASM_MAX_BYTES_TOTAL: usize = 16 * 1024 * 1024;
/// Unfinished fragments held per association.
pub const REASM_MAX_FRAGMENTS_PER_ASSOC: usize = 1024;
/// Associations followed (for reassembly and retransmission checks) in total. When full, the
/// least recently used association of the owner that holds the most is forgotten, never all.
pub const REASM_MAX_ASSOCS: usize = 4096;
/// Associations followed per owner; a new one beyond it replaces that owner's least recently
/// used one, so a peer that opens thousands only ever evicts its own.
pub const REASM_MAX_ASSOCS_PER_OWNER: usize = 512;
/// TSNs of delivered chunks remembered per association, with a digest of their content, to tell
/// a retransmission (same content: skipped) from a rewrite (different content: reported).
pub const RECENT_TSNS: usize = 256;

/// Identifies one direction of an association: addresses, ports and verification tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssocKey {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub vtag: u32,
}

/// The key's fields as one 41-byte write (the derived `Hash` made nine writes, each a call into
/// the keyed hasher; the key is hashed on every chunk). Equal keys write equal bytes; the
/// address family octet and the zero-filled IPv4 addresses keep distinct keys distinct.
impl Hash for AssocKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        fn addr(out: &mut [u8], a: &IpAddr) {
            match a {
                IpAddr::V4(v4) => {
                    if let Some(o) = out.get_mut(..4) {
                        o.copy_from_slice(&v4.octets());
                    }
                }
                IpAddr::V6(v6) => {
                    if let Some(o) = out.get_mut(..16) {
                        o.copy_from_slice(&v6.octets());
                    }
                }
            }
        }
        let mut b = [0u8; 41];
        b[0] = u8::from(self.src.is_ipv6()) | u8::from(self.dst.is_ipv6()) << 1;
        addr(&mut b[1..17], &self.src);
        addr(&mut b[17..33], &self.dst);
        b[33..35].copy_from_slice(&self.src_port.to_be_bytes());
        b[35..37].copy_from_slice(&self.dst_port.to_be_bytes());
        b[37..41].copy_from_slice(&self.vtag.to_be_bytes());
        state.write(&b);
    }
}

/// A complete user message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMessage {
    /// Stream id of the first fragment (the receiver delivers the message on it).
    pub stream_id: u16,
    /// Stream sequence number (DATA) or the low 16 bits of the message id (I-DATA).
    pub stream_seq: u16,
    pub ppid: u32,
    /// TSN of the first fragment.
    pub first_tsn: u32,
    /// How many DATA chunks it came in.
    pub fragments: usize,
    /// It came in I-DATA chunks.
    pub idata: bool,
    /// A later fragment named another stream id or PPID than the first: the receiver ignores
    /// that (it reassembles by TSN), a sender has no reason to do it.
    pub inconsistent: bool,
    pub data: Vec<u8>,
}

/// What one chunk did to the reassembly state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fed {
    /// It completed a user message.
    Message(UserMessage),
    /// A fragment kept until its message is complete.
    Pending,
    /// A retransmission of a chunk already seen with the same content: nothing new.
    Duplicate,
    /// A chunk whose TSN was already seen with *different* content. The first copy is kept (the
    /// receiver keeps it too); a second, different copy is itself an attack on whoever looks at
    /// the traffic, and the caller reports it.
    Conflict { tsn: u32 },
}

#[derive(Debug)]
struct Fragment {
    tsn: u32,
    begin: bool,
    end: bool,
    unordered: bool,
    idata: bool,
    sid: u16,
    mid: u32,
    fsn: u32,
    ppid: u32,
    digest: u64,
    data: Vec<u8>,
}

#[derive(Debug)]
struct AssocState {
    owner: u32,
    bytes: usize,
    frags: Vec<Fragment>,
    recent: Recent,
    last_used: u64,
}

/// The last [`RECENT_TSNS`] TSNs delivered, oldest first, with their digests: two parallel
/// FIFOs, so that the TSNs lie contiguous and a lookup is one comparison pass the compiler
/// vectorises (it was a scan of `(tsn, digest)` pairs, element by element, on every chunk).
#[derive(Debug, Default)]
struct Recent {
    tsns: VecDeque<u32>,
    digests: VecDeque<u64>,
}

impl Recent {
    /// The digest of the oldest remembered `tsn`, as the scan of pairs found it.
    fn find(&self, tsn: u32) -> Option<u64> {
        // No early exit, so the pass vectorises; a hit (a retransmission) is rare.
        let any = |s: &[u32]| s.iter().fold(false, |hit, &t| hit | (t == tsn));
        let (a, b) = self.tsns.as_slices();
        if !(any(a) || any(b)) {
            return None;
        }
        let i = self.tsns.iter().position(|&t| t == tsn)?;
        self.digests.get(i).copied()
    }

    fn remember(&mut self, tsn: u32, digest: u64) {
        if self.tsns.len() >= RECENT_TSNS {
            self.tsns.pop_front();
            self.digests.pop_front();
        }
        self.tsns.push_back(tsn);
        self.digests.push_back(digest);
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct OwnerUse {
    assocs: usize,
    bytes: usize,
}

/// Rebuilds user messages from DATA and I-DATA chunks, like the receiver. A chunk with both B
/// and E is a message at once; fragments wait until their run is complete, in any arrival order.
/// A TSN seen before is a [`Fed::Duplicate`] when its content is the same and a
/// [`Fed::Conflict`] when it is not. Feed it only chunks of packets the receiver accepts (valid
/// checksum, the association's verification tag), or a forged copy takes the real one's place.
/// Memory is capped per association, per owner and in total.
#[derive(Debug)]
pub struct Reassembler {
    assocs: HashMap<AssocKey, AssocState>,
    owners: HashMap<u32, OwnerUse>,
    total: usize,
    tick: u64,
    hasher: RandomState,
    /// Associations forgotten to make room while a message was unfinished: the next fragment
    /// that continues a message there is an error, not a silent wait (see [`crate::evicted`]).
    pub evicted: crate::evicted::Evicted<AssocKey>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler {
            assocs: HashMap::new(),
            owners: HashMap::new(),
            total: 0,
            tick: 0,
            hasher: RandomState::new(),
            evicted: crate::evicted::Evicted::new(REASM_MAX_ASSOCS),
        }
    }
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
        self.assocs.values().filter(|a| !a.frags.is_empty()).count()
    }

    /// Associations followed (unfinished messages or remembered TSNs).
    pub fn assocs(&self) -> usize {
        self.assocs.len()
    }

    /// Forget an association (e.g. on ABORT or SHUTDOWN COMPLETE).
    pub fn drop_assoc(&mut self, key: &AssocKey) {
        if let Some(st) = self.assocs.remove(key) {
            self.total -= st.bytes;
            if let Some(o) = self.owners.get_mut(&st.owner) {
                o.assocs -= 1;
                o.bytes -= st.bytes;
                if o.assocs == 0 {
                    self.owners.remove(&st.owner);
                }
            }
        }
    }

    /// Drop an association's unfinished fragments, keep its remembered TSNs.
    fn drop_pending(&mut self, key: &AssocKey) {
        if let Some(st) = self.assocs.get_mut(key) {
            let n = st.bytes;
            st.frags.clear();
            st.bytes = 0;
            self.total -= n;
            if let Some(o) = self.owners.get_mut(&st.owner) {
                o.bytes -= n;
            }
        }
    }

    fn lru_of(&self, owner: Option<u32>) -> Option<AssocKey> {
        self.assocs
            .iter()
            .filter(|(_, a)| owner.is_none_or(|o| a.owner == o))
            .min_by_key(|(_, a)| a.last_used)
            .map(|(k, _)| *k)
    }

    /// Make room for a new association of `owner`: its own least recently used one if it is at
    /// its quota; if the table is full, the least recently used one of the owner holding most.
    fn admit(&mut self, owner: u32) {
        if self.owners.get(&owner).is_some_and(|o| o.assocs >= REASM_MAX_ASSOCS_PER_OWNER)
            && let Some(k) = self.lru_of(Some(owner))
        {
            self.evict(&k);
        }
        if self.assocs.len() >= REASM_MAX_ASSOCS {
            let biggest = self.owners.iter().max_by_key(|(_, u)| u.assocs).map(|(o, _)| *o);
            if let Some(k) = self.lru_of(biggest) {
                self.evict(&k);
            }
        }
    }

    /// Forget an association to make room, remembering it if a message was unfinished there.
    fn evict(&mut self, key: &AssocKey) {
        if self.assocs.get(key).is_some_and(|a| !a.frags.is_empty()) {
            self.evicted.insert(*key);
        }
        self.drop_assoc(key);
    }

    /// Feeds one DATA chunk (owner 0). `Ok(Some(..))` when it completes a user message;
    /// duplicates and conflicting retransmissions are `Ok(None)` here (see [`Reassembler::feed`]).
    pub fn push(&mut self, key: AssocKey, chunk: &DataChunkSlice<'_>) -> Result<Option<UserMessage>, DecodeError> {
        match self.feed(0, key, chunk)? {
            Fed::Message(m) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    /// Feeds one DATA or I-DATA chunk of association `key`, which belongs to `owner` (the
    /// caller's peer id: quotas are per owner).
    pub fn feed(&mut self, owner: u32, key: AssocKey, chunk: &DataChunkSlice<'_>) -> Result<Fed, DecodeError> {
        self.tick += 1;
        let tick = self.tick;
        let digest = chunk_digest(&self.hasher, chunk.raw());
        // A fragment that continues a message whose beginning was evicted: the receiver has
        // the beginning and will act on the whole; we cannot judge it. (Nothing evicted, the
        // common case: no lookup.)
        if !chunk.beginning() && !self.evicted.is_empty() && self.evicted.take(&key) {
            return Err(DecodeError::Limit {
                layer: Layer::Sctp,
                what: "reassembly state evicted while a message was unfinished",
            });
        }
        // One lookup for a known association (it was `contains_key` then `get_mut`).
        let st = match self.assocs.get_mut(&key) {
            Some(st) => st,
            None => {
                self.admit(owner);
                self.owners.entry(owner).or_default().assocs += 1;
                self.assocs.entry(key).or_insert(AssocState {
                    owner,
                    bytes: 0,
                    frags: Vec::new(),
                    recent: Recent::default(),
                    last_used: tick,
                })
            }
        };
        st.last_used = tick;
        let tsn = chunk.tsn();
        let seen = st.recent.find(tsn);
        let seen = seen.or_else(|| st.frags.iter().find(|f| f.tsn == tsn).map(|f| f.digest));
        if let Some(d) = seen {
            return Ok(if d == digest { Fed::Duplicate } else { Fed::Conflict { tsn } });
        }
        let frag = Fragment {
            tsn,
            begin: chunk.beginning(),
            end: chunk.ending(),
            unordered: chunk.unordered(),
            idata: chunk.is_idata(),
            sid: chunk.stream_id(),
            mid: chunk.message_id(),
            fsn: chunk.fsn(),
            ppid: chunk.ppid(),
            digest,
            data: chunk.payload().to_vec(),
        };
        if frag.begin && frag.end {
            st.recent.remember(tsn, digest);
            return Ok(Fed::Message(UserMessage {
                stream_id: frag.sid,
                stream_seq: frag.mid as u16,
                ppid: frag.ppid,
                first_tsn: tsn,
                fragments: 1,
                idata: frag.idata,
                inconsistent: false,
                data: frag.data,
            }));
        }
        let n = frag.data.len();
        let limit = |what| Err(DecodeError::Limit { layer: Layer::Sctp, what });
        if st.frags.len() >= REASM_MAX_FRAGMENTS_PER_ASSOC || st.bytes + n > REASM_MAX_BYTES_PER_ASSOC {
            self.drop_pending(&key);
            return limit("reassembly memory per association");
        }
        if self.owners.get(&st.owner).is_some_and(|o| o.bytes + n > REASM_MAX_BYTES_PER_OWNER) {
            self.drop_pending(&key);
            return limit("reassembly memory per peer");
        }
        if self.total + n > REASM_MAX_BYTES_TOTAL {
            self.drop_pending(&key);
            return limit("reassembly memory in total");
        }
        st.frags.push(frag);
        st.bytes += n;
        self.total += n;
        if let Some(o) = self.owners.get_mut(&st.owner) {
            o.bytes += n;
        }

        let Some(run) = complete_run(&st.frags) else { return Ok(Fed::Pending) };
        let mut msg = UserMessage {
            stream_id: 0,
            stream_seq: 0,
            ppid: 0,
            first_tsn: 0,
            fragments: run.len(),
            idata: false,
            inconsistent: false,
            data: Vec::new(),
        };
        for (i, &fi) in run.iter().enumerate() {
            let Some(f) = st.frags.get(fi) else { continue };
            if i == 0 {
                (msg.stream_id, msg.stream_seq, msg.ppid, msg.first_tsn, msg.idata) =
                    (f.sid, f.mid as u16, f.ppid, f.tsn, f.idata);
            } else if f.sid != msg.stream_id || (!f.idata && f.ppid != msg.ppid) {
                msg.inconsistent = true;
            }
            msg.data.extend_from_slice(&f.data);
        }
        let mut idx = run;
        idx.sort_unstable_by(|a, b| b.cmp(a));
        for i in idx {
            let f = st.frags.swap_remove(i);
            st.recent.remember(f.tsn, f.digest);
        }
        let freed = msg.data.len();
        st.bytes -= freed;
        self.total -= freed;
        if let Some(o) = self.owners.get_mut(&st.owner) {
            o.bytes -= freed;
        }
        Ok(Fed::Message(msg))
    }
}

/// The keyed digest (SipHash with the reassembler's random key) a retransmission is compared
/// by: the chunk without its type octet and with only the U, B and E flags (the I bit, SACK
/// immediately, RFC 7053, may change on a retransmission; nothing else). Hashed as the byte
/// stream `flags & 7` then `raw[2..]`: two writes (the tuple of `Option`s it was made five,
/// each a call into the hasher), and the same information, the flag octet being of fixed size.
fn chunk_digest(hasher: &RandomState, raw: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write_u8(raw.get(1).map_or(0, |f| f & 0x07));
    h.write(raw.get(2..).unwrap_or(&[]));
    h.finish()
}

/// Indices (in order) of a complete run, if one exists: for DATA a B fragment followed by
/// consecutive TSNs up to an E (any stream, as the receiver); for I-DATA a B fragment followed
/// by consecutive fragment sequence numbers of the same stream, U flag and message id.
fn complete_run(frags: &[Fragment]) -> Option<Vec<usize>> {
    frags.iter().enumerate().filter(|(_, f)| f.begin).find_map(|(bi, _)| run_from(frags, bi))
}

fn run_from(frags: &[Fragment], first: usize) -> Option<Vec<usize>> {
    let mut run = vec![first];
    let head = frags.get(first)?;
    let mut cur = head;
    while !cur.end {
        let ni = if head.idata {
            let next = cur.fsn.wrapping_add(1);
            frags.iter().position(|f| {
                f.idata
                    && !f.begin
                    && f.sid == head.sid
                    && f.unordered == head.unordered
                    && f.mid == head.mid
                    && f.fsn == next
            })?
        } else {
            let next = cur.tsn.wrapping_add(1);
            frags.iter().position(|f| !f.idata && f.tsn == next && !f.begin)?
        };
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
        assert_eq!(push(&mut r, &dchunk(3, 100, 0, b"whole")).unwrap().unwrap().data, b"whole");
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
        for i in 0..REASM_MAX_FRAGMENTS_PER_ASSOC as u32 {
            assert!(push(&mut r, &dchunk(0, i, 0, b"x")).unwrap().is_none());
        }
        assert!(matches!(push(&mut r, &dchunk(0, 9999, 0, b"x")), Err(DecodeError::Limit { .. })));
        assert_eq!(r.buffered_bytes(), 0);
    }

    /// A packet built by scapy (an independent encoder): its CRC32c checks, one flipped byte
    /// anywhere does not.
    #[test]
    fn crc32c_matches_the_byte_at_a_time_reference() {
        let bytewise = |parts: &[&[u8]]| {
            let t = crc32c_table();
            let mut crc = !0u32;
            for p in parts {
                for &b in *p {
                    crc = t[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
                }
            }
            !crc
        };
        // Lengths past 256 and cuts at every alignment: the hardware path works in 8-byte
        // words and 3-way interleaved blocks, with a tail.
        let data: Vec<u8> = (0u32..1100).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in 0..data.len() {
            let d = &data[..len];
            assert_eq!(crc32c(&[d]), bytewise(&[d]), "length {len}");
            let cut = len / 3;
            assert_eq!(
                crc32c(&[&d[..cut], &[0; 4], &d[cut..]]),
                bytewise(&[&d[..cut], &[0; 4], &d[cut..]]),
                "parts {len}"
            );
        }
    }

    #[test]
    fn crc32c_matches_scapy() {
        let hex = "0b590b59deadbeeff6fd42de0003001500000007000100020000000368656c6c6f000000";
        let p: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert!(SctpSlice::from_slice(&p).unwrap().checksum_ok());
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0x40;
            let ok = SctpSlice::from_slice_lax(&q).map(|(s, _)| s.checksum_ok()).unwrap_or(false);
            assert!(!ok, "byte {i} flipped still checks");
        }
        assert!(!SctpSlice::from_slice_lax(&p[..p.len() - 4]).unwrap().0.checksum_ok());
    }

    /// Review C4: an ATI followed by 128 PAD chunks, or by a chunk whose length runs past the
    /// packet, keeps its DATA chunk visible; an unknown chunk with action bits 00 ends the walk
    /// where the receiver stops.
    #[test]
    fn lax_walk_keeps_what_precedes_the_problem() {
        let mut chunks = vec![data_chunk(3, 7, 1, 2, PPID_M3UA, b"ati")];
        chunks.extend((0..128).map(|_| vec![CHUNK_PAD, 0, 0, 4]));
        let p = packet(&chunks);
        assert!(matches!(SctpSlice::from_slice(&p), Err(DecodeError::Limit { .. })));
        let (s, stop) = SctpSlice::from_slice_lax(&p).unwrap();
        assert_eq!((s.chunk_count(), stop), (129, None));
        assert_eq!(s.data_chunks().next().unwrap().payload(), b"ati");

        let p = packet(&[data_chunk(3, 7, 1, 2, PPID_M3UA, b"ati"), vec![0x85, 0, 1, 0]]);
        let (s, stop) = SctpSlice::from_slice_lax(&p).unwrap();
        assert!(matches!(stop, Some(DecodeError::Len { .. })));
        assert_eq!(s.data_chunks().count(), 1);

        // Decoy first: type 0x3e (action bits 00) makes the receiver drop the DATA behind it.
        let p = packet(&[vec![0x3e, 0, 0, 4], data_chunk(3, 7, 1, 2, PPID_M3UA, b"decoy")]);
        let (s, stop) = SctpSlice::from_slice_lax(&p).unwrap();
        assert!(matches!(stop, Some(DecodeError::Content { .. })));
        assert_eq!((s.chunk_count(), s.data_chunks().count()), (1, 0));
        // Type 0x85 (action bits 10) is skipped, the walk goes on.
        let p = packet(&[vec![0x85, 0, 0, 4], data_chunk(3, 7, 1, 2, PPID_M3UA, b"real")]);
        let (s, stop) = SctpSlice::from_slice_lax(&p).unwrap();
        assert_eq!((s.data_chunks().count(), stop), (1, None));
        // Only a packet shorter than the common header is an error.
        assert!(SctpSlice::from_slice_lax(&p[..11]).is_err());
        for n in 12..p.len() {
            let (s, _) = SctpSlice::from_slice_lax(&p[..n]).unwrap();
            assert!(s.chunk_count() <= 2);
        }
    }

    fn idata(flags: u8, tsn: u32, sid: u16, mid: u32, ppid_fsn: u32, payload: &[u8]) -> Vec<u8> {
        let mut c = vec![CHUNK_I_DATA, flags];
        c.extend_from_slice(&((I_DATA_HEADER_LEN + payload.len()) as u16).to_be_bytes());
        c.extend_from_slice(&tsn.to_be_bytes());
        c.extend_from_slice(&sid.to_be_bytes());
        c.extend_from_slice(&[0, 0]);
        c.extend_from_slice(&mid.to_be_bytes());
        c.extend_from_slice(&ppid_fsn.to_be_bytes());
        c.extend_from_slice(payload);
        c
    }

    fn feed(r: &mut Reassembler, owner: u32, k: AssocKey, c: &[u8]) -> Fed {
        let ch = ChunkSlice::from_slice(c).unwrap();
        r.feed(owner, k, &ch.data().unwrap()).unwrap()
    }

    /// Review H2: Linux reassembles by TSN, whatever the stream ids of the later fragments.
    #[test]
    fn fragments_on_two_streams_reassemble_by_tsn() {
        let mut r = Reassembler::new();
        assert_eq!(feed(&mut r, 1, key(), &dchunk(2, 50, 1, b"AT")), Fed::Pending);
        let Fed::Message(m) = feed(&mut r, 1, key(), &dchunk(1, 51, 2, b"I!")) else { panic!() };
        assert_eq!((m.data.as_slice(), m.stream_id, m.inconsistent), (&b"ATI!"[..], 1, true));
    }

    /// Review H1: the same TSN again with the same bytes is a retransmission, with other bytes a
    /// conflict (the first copy stays); fragments too.
    #[test]
    fn retransmission_content_is_compared() {
        let mut r = Reassembler::new();
        assert!(matches!(feed(&mut r, 1, key(), &dchunk(3, 5, 0, b"decoy")), Fed::Message(_)));
        // The I bit may differ on a retransmission.
        assert_eq!(feed(&mut r, 1, key(), &dchunk(3 | 8, 5, 0, b"decoy")), Fed::Duplicate);
        assert_eq!(feed(&mut r, 1, key(), &dchunk(3, 5, 0, b"ATI!!")), Fed::Conflict { tsn: 5 });
        assert_eq!(feed(&mut r, 1, key(), &dchunk(2, 6, 0, b"ab")), Fed::Pending);
        assert_eq!(feed(&mut r, 1, key(), &dchunk(2, 6, 0, b"xy")), Fed::Conflict { tsn: 6 });
        let Fed::Message(m) = feed(&mut r, 1, key(), &dchunk(1, 7, 0, b"cd")) else { panic!() };
        assert_eq!(m.data, b"abcd");
    }

    /// I-DATA: fragments by (stream, message id) and FSN, interleaved with another message.
    #[test]
    fn idata_reassembles_by_message_id() {
        let mut r = Reassembler::new();
        let ch = idata(3, 1, 4, 9, PPID_M3UA, b"whole");
        let c = ChunkSlice::from_slice(&ch).unwrap().data().unwrap();
        assert_eq!((c.ppid(), c.stream_seq(), c.payload()), (PPID_M3UA, 9, &b"whole"[..]));
        assert!(matches!(feed(&mut r, 1, key(), &ch), Fed::Message(m) if m.idata && m.ppid == 3));
        assert_eq!(feed(&mut r, 1, key(), &idata(2, 10, 1, 20, PPID_M3UA, b"a")), Fed::Pending);
        assert_eq!(feed(&mut r, 1, key(), &idata(2, 11, 1, 21, PPID_M3UA, b"x")), Fed::Pending);
        assert_eq!(feed(&mut r, 1, key(), &idata(1, 13, 1, 20, 2, b"c")), Fed::Pending);
        let Fed::Message(m) = feed(&mut r, 1, key(), &idata(0, 12, 1, 20, 1, b"b")) else { panic!() };
        assert_eq!((m.data.as_slice(), m.ppid, m.fragments), (&b"abc"[..], PPID_M3UA, 3));
        assert_eq!(r.buffered_bytes(), 1);
    }

    /// Review M2: one owner that opens associations without end only evicts its own; another
    /// owner's half-reassembled message survives.
    #[test]
    fn quotas_are_per_owner() {
        let mut r = Reassembler::new();
        assert_eq!(feed(&mut r, 2, key(), &dchunk(2, 1, 0, b"half")), Fed::Pending);
        for i in 0..(REASM_MAX_ASSOCS as u32 + 100) {
            let k = AssocKey { vtag: 1000 + i, ..key() };
            assert_eq!(feed(&mut r, 1, k, &dchunk(2, 1, 0, b"x")), Fed::Pending);
        }
        assert!(r.assocs() <= REASM_MAX_ASSOCS_PER_OWNER + 1);
        assert!(matches!(feed(&mut r, 2, key(), &dchunk(1, 2, 0, b"!")), Fed::Message(m) if m.data == b"half!"));
        // Owner 1's first association was evicted with a message unfinished: the fragment that
        // ends it is an error (the receiver has the beginning), once; a new message is fine.
        let first = AssocKey { vtag: 1000, ..key() };
        let end = dchunk(1, 2, 0, b"!");
        let err = r.feed(1, first, &ChunkSlice::from_slice(&end).unwrap().data().unwrap());
        assert!(matches!(err, Err(DecodeError::Limit { .. })), "{err:?}");
        assert!(matches!(feed(&mut r, 1, first, &dchunk(3, 5, 0, b"whole")), Fed::Message(_)));
    }

    use crate::test_rng::Rng;

    /// The FIFO of recent TSNs answers as the scan of `(tsn, digest)` pairs it replaces did
    /// (the first, oldest, match), over random sequences with repeats, wrap-around and more
    /// than RECENT_TSNS entries.
    #[test]
    fn recent_tsns_answer_as_the_scan_of_pairs() {
        let mut r = Rng(0x5c7b_0001);
        for round in 0..200 {
            let mut old: VecDeque<(u32, u64)> = VecDeque::new();
            let mut new = Recent::default();
            let span = [4u64, 64, 300, 1 << 32][round % 4];
            let base = r.next() as u32;
            for _ in 0..r.below(2000) {
                let tsn = base.wrapping_add(r.below(span) as u32);
                let want = old.iter().find(|(t, _)| *t == tsn).map(|(_, d)| *d);
                assert_eq!(new.find(tsn), want, "round {round} tsn {tsn}");
                // Remember it (sometimes again, which `feed` never does: the answer is still
                // the oldest), as `remember` did.
                if want.is_none() || r.below(8) == 0 {
                    let d = r.next();
                    if old.len() >= RECENT_TSNS {
                        old.pop_front();
                    }
                    old.push_back((tsn, d));
                    new.remember(tsn, d);
                }
                assert_eq!(new.tsns.len(), old.len());
                assert_eq!(new.digests.len(), old.len());
            }
            for (t, _) in &old {
                assert_eq!(new.find(*t), old.iter().find(|(u, _)| u == t).map(|(_, d)| *d));
            }
        }
    }

    /// The digest tells the same chunks apart as the tuple hash it replaces: two chunks have
    /// equal digests exactly when the old ones were equal (same U, B, E flags, same bytes from
    /// the length on; the type octet and the I bit do not count).
    #[test]
    fn digest_equality_is_unchanged() {
        let hasher = RandomState::new();
        let old = |raw: &[u8]| hasher.hash_one((raw.get(1).map(|f| f & 0x07), raw.get(2..)));
        let new = |raw: &[u8]| chunk_digest(&hasher, raw);
        let mut r = Rng(0xd16e_5700);
        for _ in 0..20_000 {
            let len = 16 + r.below(24) as usize;
            let a: Vec<u8> = (0..len).map(|_| r.below(4) as u8).collect();
            let mut b = a.clone();
            match r.below(5) {
                0 => {}
                1 => b[r.below(len as u64) as usize] ^= 1 << r.below(8),
                2 => b[1] ^= 0x08,
                3 => b[0] ^= 0x40,
                _ => b.truncate(16 + r.below((len - 15) as u64) as usize),
            }
            assert_eq!(old(&a) == old(&b), new(&a) == new(&b), "{a:?} {b:?}");
        }
        // Moving an octet between the flags and the rest is not a collision.
        assert_ne!(
            new(&[0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            new(&[0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        );
    }

    /// Equal association keys hash equally (the hand-written `Hash` agrees with the derived
    /// `Eq`); the fields land in distinct octets.
    #[test]
    fn assoc_key_hash_agrees_with_eq() {
        use std::net::Ipv6Addr;
        let h = RandomState::new();
        let v6 = AssocKey { src: Ipv6Addr::LOCALHOST.into(), dst: Ipv6Addr::UNSPECIFIED.into(), ..key() };
        let keys = [
            key(),
            AssocKey { vtag: 2, ..key() },
            AssocKey { src_port: 1, ..key() },
            AssocKey { dst_port: 1, ..key() },
            AssocKey { src: key().dst, dst: key().src, ..key() },
            AssocKey { src: Ipv4Addr::UNSPECIFIED.into(), dst: Ipv4Addr::UNSPECIFIED.into(), ..key() },
            AssocKey { src: Ipv6Addr::UNSPECIFIED.into(), dst: Ipv6Addr::UNSPECIFIED.into(), ..key() },
            v6,
            AssocKey { src: v6.dst, dst: v6.src, ..v6 },
        ];
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(h.hash_one(a), h.hash_one(*a));
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(h.hash_one(a), h.hash_one(b), "{a:?} {b:?}");
            }
        }
    }
}
