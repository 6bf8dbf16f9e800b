//! Blocking one message on a stream without breaking the stream (docs/design/in-path.md
//! section 3): a same-length rewrite that makes the receiver reject the message as a protocol
//! error and execute nothing, with the transport checksum made valid again.
//!
//! - SIGTRAN (M3UA DATA -> SCCP UDT/XUDT -> TCAP -> Invoke): the Invoke's local operation code
//!   becomes [`NEUTRAL_MAP_OPCODE`] (127, allocated to no MAP operation): the HLR answers with a
//!   TCAP Reject "unrecognised operation" and runs nothing (3GPP TS 29.002 section 15.1).
//! - Diameter (TCP, or SCTP PPID 46/47): the Command-Code becomes [`NEUTRAL_DIAMETER_COMMAND`]
//!   (0xFFFFFE, experimental, RFC 6733 section 11.2.1): the peer answers 3001
//!   DIAMETER_COMMAND_UNSUPPORTED (section 7.1.3); flags, Application-Id and the hop-by-hop and
//!   end-to-end ids stay, so the sender can match the answer.
//!
//! Everything else stays as it was: frame length, IP header, ports, SCTP verification tag,
//! chunk headers, TSN, stream id and sequence number, PPID, TCP sequence and acknowledgement
//! numbers, flags, window and options. The SCTP CRC32c is recomputed over the whole SCTP packet
//! (a receiver silently discards a packet with a bad one, RFC 9260 section 6.8); the TCP
//! checksum is updated incrementally (RFC 1624, equation 3). A packet whose checksum was already
//! wrong is never "repaired": it is left alone ([`NotDone::BadChecksum`]), and its receiver
//! discards it as it would have anyway.
//!
//! Nothing here panics on packet bytes: every offset is checked before it is used, and every
//! way a frame does not fit is a [`NotDone`].

use filter_dpi::ber::{self, Budget, Tlv};

/// The MAP operation code a blocked Invoke is given.
pub const NEUTRAL_MAP_OPCODE: u8 = 127;
/// The Diameter Command-Code a blocked request is given.
pub const NEUTRAL_DIAMETER_COMMAND: u32 = 0x00ff_fffe;
/// The M3UA or SUA message type a blocked message is given when no operation code can be
/// reached in it (a global operation code, an SCCP segment, a message that does not decode):
/// within the Transfer (M3UA) and Connectionless (SUA) classes only type 1 is allocated, so the
/// peer discards the message and answers ERR "Unsupported Message Type" (RFC 4666 section
/// 3.8.1, RFC 3868 section 3.9.1); the association stays up.
pub const NEUTRAL_ADAPTATION_TYPE: u8 = 127;

/// One rewrite: where, what was there, what is there now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// Offset in the frame.
    pub offset: usize,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    /// As events name it: `map-opcode 71->127`, `diameter-command 8388620->16777214`.
    pub technique: String,
    /// SCTP: the TSN of the DATA chunk rewritten (a retransmission of it gets the same
    /// rewrite); TCP: the segment's sequence number.
    pub seq: u32,
}

/// Why a frame was not rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotDone {
    /// Not IPv4/IPv6 carrying the expected transport directly (no IPv6 extension headers,
    /// no IP fragment).
    NotTransport,
    /// The transport checksum was already wrong.
    BadChecksum,
    /// The frame is shorter than its headers say.
    Truncated,
    /// No message the caller wants blocked was found where a rewrite can reach it (for
    /// example a message split over several DATA chunks or TCP segments, an SCCP segment, or
    /// a global operation code).
    NoTarget,
}

impl NotDone {
    pub fn name(self) -> &'static str {
        match self {
            NotDone::NotTransport => "not_transport",
            NotDone::BadChecksum => "bad_checksum",
            NotDone::Truncated => "truncated",
            NotDone::NoTarget => "no_target",
        }
    }
}

/// The transport of a frame: protocol, its header's offset, one past its end, and the IP
/// pseudo-header's address bytes (source then destination) for TCP.
struct L4 {
    proto: u8,
    off: usize,
    end: usize,
    src: std::ops::Range<usize>,
    dst: std::ops::Range<usize>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// Ethernet, up to two VLAN tags, then IPv4 (options allowed, not a fragment) or IPv6 with the
/// transport as its next header.
fn transport(frame: &[u8]) -> Result<L4, NotDone> {
    let mut off = 12;
    let mut ether = be16(frame, off).ok_or(NotDone::Truncated)?;
    off += 2;
    for _ in 0..2 {
        if ether == 0x8100 || ether == 0x88a8 {
            ether = be16(frame, off + 2).ok_or(NotDone::Truncated)?;
            off += 4;
        }
    }
    match ether {
        0x0800 => {
            let vihl = *frame.get(off).ok_or(NotDone::Truncated)?;
            let ihl = (vihl & 0xf) as usize * 4;
            let total = be16(frame, off + 2).ok_or(NotDone::Truncated)? as usize;
            let frag = be16(frame, off + 6).ok_or(NotDone::Truncated)?;
            if vihl >> 4 != 4 || ihl < 20 || total < ihl || frag & 0x3fff != 0 {
                return Err(NotDone::NotTransport);
            }
            if off + total > frame.len() {
                return Err(NotDone::Truncated);
            }
            Ok(L4 {
                proto: frame[off + 9],
                off: off + ihl,
                end: off + total,
                src: off + 12..off + 16,
                dst: off + 16..off + 20,
            })
        }
        0x86dd => {
            let plen = be16(frame, off + 4).ok_or(NotDone::Truncated)? as usize;
            let next = *frame.get(off + 6).ok_or(NotDone::Truncated)?;
            if off + 40 + plen > frame.len() {
                return Err(NotDone::Truncated);
            }
            Ok(L4 { proto: next, off: off + 40, end: off + 40 + plen, src: off + 8..off + 24, dst: off + 24..off + 40 })
        }
        _ => Err(NotDone::NotTransport),
    }
}

/// The SCTP CRC32c as stored: over the packet with the checksum field zeroed, little-endian.
fn sctp_crc(pkt: &[u8]) -> [u8; 4] {
    filter_dpi::sctp::crc32c(&[&pkt[..8], &[0; 4], &pkt[12..]]).to_le_bytes()
}

/// SCTP: rewrite, in every complete DATA chunk (B and E set) of the packet, the MAP Invokes
/// whose local operation code `map_op` selects (M3UA, PPID 3) and the Diameter requests whose
/// Command-Code `diameter_cmd` selects (PPID 46/47), then recompute the CRC32c. Returns the
/// rewrites made; none is [`NotDone::NoTarget`] and leaves the frame unchanged.
pub fn sctp(
    frame: &mut [u8],
    map_op: impl Fn(i64) -> bool,
    diameter_cmd: impl Fn(u32) -> bool,
) -> Result<Vec<Rewrite>, NotDone> {
    sctp_tsns(frame, |_| true, map_op, diameter_cmd)
}

/// [`sctp`] on the DATA chunks whose TSN `tsn` selects only (a retransmission of chunks
/// rewritten before).
pub fn sctp_tsns(
    frame: &mut [u8],
    tsn: impl Fn(u32) -> bool,
    map_op: impl Fn(i64) -> bool,
    diameter_cmd: impl Fn(u32) -> bool,
) -> Result<Vec<Rewrite>, NotDone> {
    let l4 = transport(frame)?;
    if l4.proto != 132 {
        return Err(NotDone::NotTransport);
    }
    let pkt = frame.get(l4.off..l4.end).ok_or(NotDone::Truncated)?;
    if pkt.len() < 12 {
        return Err(NotDone::Truncated);
    }
    if sctp_crc(pkt) != pkt[8..12] {
        return Err(NotDone::BadChecksum);
    }
    // The operation codes first; only where none can be reached, the adaptation-layer type.
    let mut todo = sctp_rewrites(pkt, l4.off, &tsn, &map_op, &diameter_cmd, false)?;
    if todo.is_empty() {
        todo = sctp_rewrites(pkt, l4.off, &tsn, &map_op, &diameter_cmd, true)?;
    }
    if todo.is_empty() {
        return Err(NotDone::NoTarget);
    }
    for r in &todo {
        frame[r.offset..r.offset + r.new.len()].copy_from_slice(&r.new);
    }
    let crc = sctp_crc(&frame[l4.off..l4.end]);
    frame[l4.off + 8..l4.off + 12].copy_from_slice(&crc);
    Ok(todo)
}

/// The rewrites in the complete DATA chunks of an SCTP packet (at frame offset `off`) whose
/// TSN `tsn` selects; with `fallback`, the adaptation-layer type of SIGTRAN messages in which no
/// operation code can be reached.
fn sctp_rewrites(
    pkt: &[u8],
    off: usize,
    tsn: &impl Fn(u32) -> bool,
    map_op: &impl Fn(i64) -> bool,
    diameter_cmd: &impl Fn(u32) -> bool,
    fallback: bool,
) -> Result<Vec<Rewrite>, NotDone> {
    let mut todo: Vec<Rewrite> = Vec::new();
    let mut at = 12;
    // Chunks in the packet: bounded by its length (each at least 4 bytes).
    while at + 4 <= pkt.len() {
        let (kind, flags) = (pkt[at], pkt[at + 1]);
        let len = be16(pkt, at + 2).ok_or(NotDone::Truncated)? as usize;
        if len < 4 || at + len > pkt.len() {
            break;
        }
        // The receiver discards the rest of the packet at an unknown chunk whose action bits
        // are 00 or 01 (RFC 9260 section 3.2): so does the walk, as the engine's.
        if filter_dpi::sctp::unknown_chunk_stops(kind) {
            break;
        }
        let chunk_tsn = be32(pkt, at + 4).unwrap_or(0);
        // A whole message in one DATA chunk, or in one I-DATA chunk (RFC 8260: its PPID is at
        // offset 16 when B is set, its user data at 20).
        let (ppid_at, data_at) = match kind {
            0 => (12, 16),
            64 => (16, 20),
            _ => (0, 0),
        };
        if data_at != 0 && flags & 0x03 == 0x03 && len > data_at && tsn(chunk_tsn) {
            let ppid = be32(pkt, at + ppid_at).ok_or(NotDone::Truncated)?;
            let user = &pkt[at + data_at..at + len];
            let before = todo.len();
            message_rewrites(ppid, user, off + at + data_at, map_op, diameter_cmd, fallback, &mut todo);
            for r in &mut todo[before..] {
                r.seq = chunk_tsn;
            }
        }
        at += len.next_multiple_of(4);
    }
    Ok(todo)
}

/// The rewrites in one SCTP user message (at frame offset `base`) by its PPID: MAP Invokes in
/// M3UA (3) or SUA (4), Diameter requests (46, 47); with `fallback`, a SIGTRAN message with no
/// operation code to reach gets [`NEUTRAL_ADAPTATION_TYPE`].
fn message_rewrites(
    ppid: u32,
    m: &[u8],
    base: usize,
    map_op: &impl Fn(i64) -> bool,
    diameter_cmd: &impl Fn(u32) -> bool,
    fallback: bool,
    out: &mut Vec<Rewrite>,
) {
    let before = out.len();
    match ppid {
        3 => m3ua_invokes(m, base, map_op, out),
        4 => sua_invokes(m, base, map_op, out),
        46 | 47 => diameter_commands(m, base, diameter_cmd, out),
        _ => {}
    }
    // M3UA DATA (class 1, type 1) or SUA CLDT (class 7, type 1), version 1.
    let adaptation = match ppid {
        3 => Some(1),
        4 => Some(7),
        _ => None,
    };
    // Only a message in which no local operation code at all can be reached: a neighbour
    // bundled in the same packet with a reachable, unselected code is left alone.
    let unreachable = || {
        let mut probe = Vec::new();
        match ppid {
            3 => m3ua_invokes(m, base, &|_| true, &mut probe),
            _ => sua_invokes(m, base, &|_| true, &mut probe),
        }
        probe.is_empty()
    };
    if fallback
        && out.len() == before
        && let Some(class) = adaptation
        && unreachable()
        && m.len() >= 8
        && m[0] == 1
        && m[2] == class
        && m[3] == 1
    {
        let layer = if ppid == 3 { "m3ua" } else { "sua" };
        out.push(Rewrite {
            offset: base + 3,
            old: vec![1],
            new: vec![NEUTRAL_ADAPTATION_TYPE],
            technique: format!("{layer}-type 1->{NEUTRAL_ADAPTATION_TYPE}"),
            seq: 0,
        });
    }
}

/// One DATA or I-DATA chunk of an SCTP packet: what holding a message split over several
/// chunks needs (`inpath::hold`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub tsn: u32,
    pub stream: u16,
    /// I-DATA: the message identifier (fragments of one message share it); DATA: `None`
    /// (fragments of one message have consecutive TSNs, RFC 9260 section 6.9).
    pub mid: Option<u32>,
    pub unordered: bool,
    pub begin: bool,
    pub end: bool,
    /// The payload protocol identifier: every DATA chunk's; an I-DATA chunk's first fragment's.
    pub ppid: Option<u32>,
    /// Where the chunk's user data lies in the frame.
    pub data: std::ops::Range<usize>,
}

/// The DATA and I-DATA chunks of an SCTP packet in a valid frame (CRC32c checked), in packet
/// order; a chunk whose length runs past the packet ends the walk, as at the receiver.
pub fn sctp_pieces(frame: &[u8]) -> Result<Vec<Piece>, NotDone> {
    let l4 = transport(frame)?;
    if l4.proto != 132 {
        return Err(NotDone::NotTransport);
    }
    let pkt = frame.get(l4.off..l4.end).ok_or(NotDone::Truncated)?;
    if pkt.len() < 12 {
        return Err(NotDone::Truncated);
    }
    if sctp_crc(pkt) != pkt[8..12] {
        return Err(NotDone::BadChecksum);
    }
    let mut out = Vec::new();
    let mut at = 12;
    // Bounded by the packet's length: each chunk is at least 4 bytes.
    while at + 4 <= pkt.len() {
        let (kind, flags) = (pkt[at], pkt[at + 1]);
        let len = be16(pkt, at + 2).ok_or(NotDone::Truncated)? as usize;
        if len < 4 || at + len > pkt.len() {
            break;
        }
        if filter_dpi::sctp::unknown_chunk_stops(kind) {
            break;
        }
        let (begin, end, unordered) = (flags & 0x02 != 0, flags & 0x01 != 0, flags & 0x04 != 0);
        match kind {
            0 if len >= 16 => out.push(Piece {
                tsn: be32(pkt, at + 4).unwrap_or(0),
                stream: be16(pkt, at + 8).unwrap_or(0),
                mid: None,
                unordered,
                begin,
                end,
                ppid: be32(pkt, at + 12),
                data: l4.off + at + 16..l4.off + at + len,
            }),
            64 if len >= 20 => out.push(Piece {
                tsn: be32(pkt, at + 4).unwrap_or(0),
                stream: be16(pkt, at + 8).unwrap_or(0),
                mid: be32(pkt, at + 12),
                unordered,
                begin,
                end,
                ppid: if begin { be32(pkt, at + 16) } else { None },
                data: l4.off + at + 20..l4.off + at + len,
            }),
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    Ok(out)
}

/// The rewrites that neutralize, in one whole SCTP user message `data` (reassembled from its
/// pieces), the MAP Invokes `map_op` selects (PPID 3, M3UA) and the Diameter requests
/// `diameter_cmd` selects (PPID 46/47); offsets are into `data`.
pub fn user_message(
    ppid: u32,
    data: &[u8],
    map_op: impl Fn(i64) -> bool,
    diameter_cmd: impl Fn(u32) -> bool,
) -> Vec<Rewrite> {
    let mut out = Vec::new();
    message_rewrites(ppid, data, 0, &map_op, &diameter_cmd, false, &mut out);
    if out.is_empty() {
        message_rewrites(ppid, data, 0, &map_op, &diameter_cmd, true, &mut out);
    }
    out
}

/// Write each `(offset, bytes)` into the frame's SCTP packet and recompute its CRC32c. The
/// offsets are the caller's (from [`sctp_pieces`] of this frame): each must lie in the packet.
pub fn sctp_patch(frame: &mut [u8], patches: &[(usize, Vec<u8>)]) -> Result<(), NotDone> {
    let l4 = transport(frame)?;
    if l4.proto != 132 || l4.end - l4.off < 12 {
        return Err(NotDone::NotTransport);
    }
    if patches.iter().any(|(at, b)| *at < l4.off + 12 || at + b.len() > l4.end) {
        return Err(NotDone::Truncated);
    }
    for (at, b) in patches {
        frame[*at..at + b.len()].copy_from_slice(b);
    }
    let crc = sctp_crc(&frame[l4.off..l4.end]);
    frame[l4.off + 8..l4.off + 12].copy_from_slice(&crc);
    Ok(())
}

/// A TCP segment in a valid frame (checksum checked): its sequence number and where its
/// payload lies in the frame.
pub fn tcp_payload(frame: &[u8]) -> Result<(u32, std::ops::Range<usize>), NotDone> {
    let l4 = transport(frame)?;
    if l4.proto != 6 {
        return Err(NotDone::NotTransport);
    }
    let seg = frame.get(l4.off..l4.end).ok_or(NotDone::Truncated)?;
    let doff = (*seg.get(12).ok_or(NotDone::Truncated)? >> 4) as usize * 4;
    if doff < 20 || doff > seg.len() {
        return Err(NotDone::Truncated);
    }
    if tcp_sum(frame, &l4) != 0xffff {
        return Err(NotDone::BadChecksum);
    }
    Ok((be32(seg, 4).unwrap_or(0), l4.off + doff..l4.end))
}

/// The rewrites that neutralize the Diameter requests `diameter_cmd` selects among the whole
/// messages one after the other from the start of `stream` (offsets into it).
pub fn diameter_stream(stream: &[u8], diameter_cmd: impl Fn(u32) -> bool) -> Vec<Rewrite> {
    let mut out = Vec::new();
    diameter_commands(stream, 0, &diameter_cmd, &mut out);
    out
}

/// Write each `(offset, bytes)` into the TCP payload of the frame and recompute the checksum.
pub fn tcp_patch(frame: &mut [u8], patches: &[(usize, Vec<u8>)]) -> Result<(), NotDone> {
    let l4 = transport(frame)?;
    if l4.proto != 6 || l4.end - l4.off < 20 {
        return Err(NotDone::NotTransport);
    }
    if patches.iter().any(|(at, b)| *at < l4.off + 20 || at + b.len() > l4.end) {
        return Err(NotDone::Truncated);
    }
    for (at, b) in patches {
        frame[*at..at + b.len()].copy_from_slice(b);
    }
    frame[l4.off + 16..l4.off + 18].fill(0);
    let sum = !tcp_sum(frame, &l4);
    frame[l4.off + 16..l4.off + 18].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// TCP: rewrite the Diameter requests whose Command-Code `diameter_cmd` selects, among the
/// whole messages the segment's payload starts with, and update the checksum (RFC 1624).
pub fn tcp(frame: &mut [u8], diameter_cmd: impl Fn(u32) -> bool) -> Result<Vec<Rewrite>, NotDone> {
    let l4 = transport(frame)?;
    if l4.proto != 6 {
        return Err(NotDone::NotTransport);
    }
    let seg = frame.get(l4.off..l4.end).ok_or(NotDone::Truncated)?;
    let doff = (*seg.get(12).ok_or(NotDone::Truncated)? >> 4) as usize * 4;
    if doff < 20 || doff > seg.len() {
        return Err(NotDone::Truncated);
    }
    if tcp_sum(frame, &l4) != 0xffff {
        return Err(NotDone::BadChecksum);
    }
    let mut todo = Vec::new();
    diameter_commands(&frame[l4.off + doff..l4.end], l4.off + doff, &diameter_cmd, &mut todo);
    let seq = be32(frame, l4.off + 4).unwrap_or(0);
    for r in &mut todo {
        r.seq = seq;
    }
    if todo.is_empty() {
        return Err(NotDone::NoTarget);
    }
    let mut hc = be16(frame, l4.off + 16).ok_or(NotDone::Truncated)?;
    for r in &todo {
        // The 16-bit words the rewrite touches, by their parity from the TCP header's start.
        let rel = r.offset - l4.off;
        let first = rel & !1;
        let last = (rel + r.new.len() - 1) & !1;
        let old_words: Vec<u16> = (first..=last).step_by(2).map(|w| word(frame, l4.off + w, l4.end)).collect();
        frame[r.offset..r.offset + r.new.len()].copy_from_slice(&r.new);
        for (k, w) in (first..=last).step_by(2).enumerate() {
            hc = rfc1624(hc, old_words[k], word(frame, l4.off + w, l4.end));
        }
    }
    frame[l4.off + 16..l4.off + 18].copy_from_slice(&hc.to_be_bytes());
    Ok(todo)
}

/// The 16-bit word at `at` (a last odd byte is padded with zero, as the checksum does).
fn word(frame: &[u8], at: usize, end: usize) -> u16 {
    let hi = frame[at];
    let lo = if at + 1 < end { frame[at + 1] } else { 0 };
    u16::from_be_bytes([hi, lo])
}

/// RFC 1624 equation 3: HC' = ~(~HC + ~m + m'), in one's complement arithmetic.
fn rfc1624(hc: u16, m: u16, m_new: u16) -> u16 {
    let mut sum = (!hc as u32) + (!m as u32) + m_new as u32;
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The one's complement sum of the TCP pseudo-header and segment (0xffff when the checksum
/// is right).
fn tcp_sum(frame: &[u8], l4: &L4) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        let mut ch = b.chunks_exact(2);
        for c in &mut ch {
            sum += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        if let [x] = ch.remainder() {
            sum += (*x as u32) << 8;
        }
    };
    add(&frame[l4.src.clone()]);
    add(&frame[l4.dst.clone()]);
    let len = l4.end - l4.off;
    add(&[0, 6]);
    if l4.src.len() == 16 {
        add(&(len as u32).to_be_bytes());
    } else {
        add(&(len as u16).to_be_bytes());
    }
    add(&frame[l4.off..l4.end]);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Diameter messages one after the other from the start of `data` (at frame offset `base`):
/// each request (R flag) whose Command-Code `pick` selects gets the neutral command.
fn diameter_commands(data: &[u8], base: usize, pick: &impl Fn(u32) -> bool, out: &mut Vec<Rewrite>) {
    let mut at = 0;
    while at + 20 <= data.len() && data[at] == 1 {
        let len = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        if len < 20 || at + len > data.len() {
            return;
        }
        let request = data[at + 4] & 0x80 != 0;
        let cmd = u32::from_be_bytes([0, data[at + 5], data[at + 6], data[at + 7]]);
        if request && pick(cmd) {
            out.push(Rewrite {
                offset: base + at + 5,
                old: data[at + 5..at + 8].to_vec(),
                new: NEUTRAL_DIAMETER_COMMAND.to_be_bytes()[1..].to_vec(),
                technique: format!("diameter-command {cmd}->{NEUTRAL_DIAMETER_COMMAND}"),
                seq: 0,
            });
        }
        at += len;
    }
}

/// M3UA DATA -> Protocol Data -> SCCP UDT/XUDT (unsegmented) -> TCAP: each Invoke whose local
/// operation code `pick` selects gets the neutral code.
fn m3ua_invokes(m: &[u8], base: usize, pick: &impl Fn(i64) -> bool, out: &mut Vec<Rewrite>) {
    // Version 1, class 1 (transfer), type 1 (DATA); the length covers the header.
    if m.len() < 8 || m[0] != 1 || m[2] != 1 || m[3] != 1 {
        return;
    }
    let mlen = be32(m, 4).map(|l| l as usize).unwrap_or(0).min(m.len());
    let mut at = 8;
    while at + 4 <= mlen {
        let (Some(tag), Some(len)) = (be16(m, at), be16(m, at + 2)) else { return };
        let len = len as usize;
        if len < 4 || at + len > mlen {
            return;
        }
        // Protocol Data: OPC, DPC, SI, NI, MP, SLS, then the SCCP message (SI 3).
        if tag == 0x0210 && len >= 16 && m[at + 12] == 3 {
            let sccp = &m[at + 16..at + len];
            if let Some((data, off)) = sccp_data(sccp) {
                tcap_invokes(data, base + at + 16 + off, pick, out);
            }
            return;
        }
        at += len.next_multiple_of(4);
    }
}

/// SUA CLDT (RFC 3868 section 3.3.2.1) -> its Data parameter (0x010b) -> TCAP: each Invoke whose
/// local operation code `pick` selects gets the neutral code.
fn sua_invokes(m: &[u8], base: usize, pick: &impl Fn(i64) -> bool, out: &mut Vec<Rewrite>) {
    // Version 1, class 7 (connectionless), type 1 (CLDT); the length covers the header.
    if m.len() < 8 || m[0] != 1 || m[2] != 7 || m[3] != 1 {
        return;
    }
    let mlen = be32(m, 4).map(|l| l as usize).unwrap_or(0).min(m.len());
    let mut at = 8;
    // Parameters: bounded by the message's length (each at least 4 bytes).
    while at + 4 <= mlen {
        let (Some(tag), Some(len)) = (be16(m, at), be16(m, at + 2)) else { return };
        let len = len as usize;
        if len < 4 || at + len > mlen {
            return;
        }
        if tag == 0x010b {
            tcap_invokes(&m[at + 4..at + len], base + at + 4, pick, out);
            return;
        }
        at += len.next_multiple_of(4);
    }
}

/// The data parameter of an SCCP UDT or unsegmented XUDT, and its offset in `s`.
fn sccp_data(s: &[u8]) -> Option<(&[u8], usize)> {
    let (ptr_at, optional) = match *s.first()? {
        0x09 => (4, None),
        // XUDT: class, hop counter, then four pointers; a segmentation parameter among the
        // optional ones means a segment, whose TCAP is not whole here.
        0x11 => (5, Some(6)),
        _ => return None,
    };
    if let Some(o) = optional {
        let p = *s.get(o)? as usize;
        if p != 0 && optional_has_segmentation(s.get(o + p..)?) {
            return None;
        }
    }
    let p = *s.get(ptr_at)? as usize;
    let len_at = ptr_at + p;
    let len = *s.get(len_at)? as usize;
    let start = len_at + 1;
    Some((s.get(start..start + len)?, start))
}

/// SCCP optional parameters (type, length, value; 0 ends them): whether segmentation (0x10)
/// is among them.
fn optional_has_segmentation(mut p: &[u8]) -> bool {
    while let [kind, rest @ ..] = p {
        if *kind == 0 {
            return false;
        }
        if *kind == 0x10 {
            return true;
        }
        let Some((&len, rest)) = rest.split_first() else { return false };
        let Some(rest) = rest.get(len as usize..) else { return false };
        p = rest;
    }
    false
}

/// TCAP Begin/Continue/End/Unidirectional -> component portion -> Invoke -> local operation
/// code.
fn tcap_invokes(data: &[u8], base: usize, pick: &impl Fn(i64) -> bool, out: &mut Vec<Rewrite>) {
    let budget = Budget::new(filter_dpi::Layer::Tcap);
    let Ok((msg, _)) = Tlv::parse(data, &budget) else { return };
    if msg.class != ber::CLASS_APPLICATION || !matches!(msg.tag, 1 | 2 | 4 | 5) {
        return;
    }
    for part in msg.children(&budget).map_while(Result::ok) {
        // The component portion: [APPLICATION 12].
        if part.class != ber::CLASS_APPLICATION || part.tag != 12 {
            continue;
        }
        for comp in part.children(&budget).map_while(Result::ok) {
            // Invoke: [1] { invokeId INTEGER, linkedId [0] OPTIONAL, opcode, parameter }.
            if !comp.is_context(1) || !comp.constructed {
                continue;
            }
            let mut fields = comp.children(&budget).map_while(Result::ok);
            let Some(id) = fields.next() else { continue };
            if !id.is_universal(ber::TAG_INTEGER) {
                continue;
            }
            let mut op = fields.next();
            if op.is_some_and(|t| t.is_context(0)) {
                op = fields.next();
            }
            // A local code (INTEGER); a global one (OBJECT IDENTIFIER) is not MAP's.
            let Some(op) = op.filter(|t| t.is_universal(ber::TAG_INTEGER) && !t.value.is_empty()) else { continue };
            let Some(code) = op.int() else { continue };
            if !pick(code) {
                continue;
            }
            // Same length: 127 in the last octet, zeros before (a non-minimal encoding of a
            // longer original stays as long as it was).
            let mut new = vec![0u8; op.value.len()];
            if let Some(last) = new.last_mut() {
                *last = NEUTRAL_MAP_OPCODE;
            }
            let offset = base + (op.value.as_ptr() as usize - data.as_ptr() as usize);
            out.push(Rewrite {
                offset,
                old: op.value.to_vec(),
                new,
                technique: format!("map-opcode {code}->{NEUTRAL_MAP_OPCODE}"),
                seq: 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use filter_testkit::packets::{self, Frame, L4 as Tl4};

    use super::*;

    fn tcap_begin(op: u8) -> Vec<u8> {
        let (ctx, arg) = if op == 71 { (29, packets::map_ati_arg()) } else { (14, packets::map_sai_arg()) };
        packets::tcap_begin_invoke(op, ctx, 3, &arg)
    }

    fn m3ua(tcap: &[u8]) -> Vec<u8> {
        packets::m3ua_sccp(tcap)
    }

    /// A DATA chunk with a given TSN, stream sequence number and PPID.
    fn data(tsn: u32, ssn: u16, ppid: u32, user: &[u8]) -> Vec<u8> {
        let mut c = packets::data_chunk(ppid, user);
        c[4..8].copy_from_slice(&tsn.to_be_bytes());
        c[10..12].copy_from_slice(&ssn.to_be_bytes());
        c
    }

    fn sctp_frame(chunks: Vec<Vec<u8>>) -> Vec<u8> {
        Frame::new(
            "198.18.1.10".parse().unwrap(),
            "198.18.1.20".parse().unwrap(),
            Tl4::Sctp { sport: 2905, dport: 2905, chunks },
        )
        .bytes()
    }

    fn crc_ok(frame: &[u8]) -> bool {
        let l4 = transport(frame).unwrap();
        let pkt = &frame[l4.off..l4.end];
        sctp_crc(pkt) == pkt[8..12]
    }

    fn diffs(a: &[u8], b: &[u8]) -> Vec<usize> {
        a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect()
    }

    /// An anyTimeInterrogation (71) bundled after a legitimate sendRoutingInfo (22): only the
    /// ATI's operation code changes, to 127; TSNs, stream sequence numbers, PPIDs and the
    /// length stay; the CRC32c is valid again; the decoder now reads operation 127.
    #[test]
    fn map_opcode_is_rewritten_in_place_with_the_crc32c() {
        let frame = sctp_frame(vec![data(7, 3, 3, &m3ua(&tcap_begin(22))), data(8, 4, 3, &m3ua(&tcap_begin(71)))]);
        assert!(crc_ok(&frame));
        let mut out = frame.clone();
        let done = sctp(&mut out, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].old.as_slice(), done[0].new.as_slice()), (&[71u8][..], &[127u8][..]));
        assert_eq!(done[0].technique, "map-opcode 71->127");
        assert_eq!(out.len(), frame.len());
        assert!(crc_ok(&out), "CRC32c recomputed");
        let l4 = transport(&frame).unwrap();
        let changed = diffs(&frame, &out);
        let crc = l4.off + 8..l4.off + 12;
        assert!(changed.iter().all(|i| *i == done[0].offset || crc.contains(i)), "{changed:?}");
        assert_eq!(out[done[0].offset], 127);
        // The first chunk (sendRoutingInfo) is untouched, and the decoders see 127.
        let len = |at: usize| u16::from_be_bytes([frame[at + 2], frame[at + 3]]) as usize;
        let second = l4.off + 12 + len(l4.off + 12).next_multiple_of(4);
        assert_eq!(&out[l4.off + 12..second], &frame[l4.off + 12..second]);
        assert_eq!(&out[second..second + 16], &frame[second..second + 16], "chunk header, TSN, SSN, PPID");
        let user = &out[second + 16..second + len(second)];
        let msg = filter_dpi::ss7::decode(3, user).expect("still decodes");
        let ops: Vec<Option<i64>> =
            msg.tcap.as_ref().map(|t| t.components.iter().map(|c| c.op_code).collect()).unwrap_or_default();
        assert_eq!(ops, vec![Some(127)]);
    }

    /// A packet whose CRC32c is already wrong is left alone (never repaired); nothing to block
    /// leaves the frame unchanged; a truncated frame is named, not a panic.
    #[test]
    fn bad_checksums_and_other_frames_are_left_alone() {
        let frame = sctp_frame(vec![data(1, 0, 3, &m3ua(&tcap_begin(71)))]);
        let mut bad = frame.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(sctp(&mut bad.clone(), |_| true, |_| true), Err(NotDone::BadChecksum));
        let mut same = frame.clone();
        assert_eq!(sctp(&mut same, |op| op == 2, |_| false), Err(NotDone::NoTarget));
        assert_eq!(same, frame);
        for cut in 0..frame.len() {
            let mut f = frame[..cut].to_vec();
            assert!(sctp(&mut f, |_| true, |_| true).is_err());
        }
        let mut udp = Frame::new(
            "198.18.1.10".parse().unwrap(),
            "198.18.1.20".parse().unwrap(),
            Tl4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() },
        )
        .bytes();
        assert_eq!(sctp(&mut udp, |_| true, |_| true), Err(NotDone::NotTransport));
    }

    /// A Diameter PLR (8388620) over TCP: the Command-Code becomes 0xFFFFFE, the flags,
    /// Application-Id and ids stay, the checksum (updated incrementally, RFC 1624) verifies,
    /// and the sequence numbers are untouched. Over SCTP (PPID 46) the same, with the CRC32c.
    #[test]
    fn diameter_command_is_rewritten_with_the_checksum() {
        for v6 in [false, true] {
            let (s, d) = if v6 { ("2001:db8:1::10", "2001:db8:1::20") } else { ("198.18.1.10", "198.18.1.20") };
            let msg = packets::diameter_message(8388620, 16777255);
            // An odd-length second message shifts nothing: one message per segment here, and
            // the segment length is odd when the test pads it so.
            for pad in [0usize, 1] {
                let mut payload = msg.clone();
                payload.extend(std::iter::repeat_n(0u8, pad));
                let frame =
                    Frame::new(s.parse().unwrap(), d.parse().unwrap(), Tl4::Tcp { sport: 40000, dport: 3868, payload })
                        .bytes();
                let l4 = transport(&frame).unwrap();
                assert_eq!(tcp_sum(&frame, &l4), 0xffff);
                let mut out = frame.clone();
                let done = tcp(&mut out, |c| c == 8388620).unwrap();
                assert_eq!(done[0].technique, "diameter-command 8388620->16777214");
                assert_eq!(tcp_sum(&out, &l4), 0xffff, "checksum valid after the update (v6 {v6}, pad {pad})");
                let p = l4.off + 20;
                assert_eq!(&out[p + 5..p + 8], &[0xff, 0xff, 0xfe]);
                assert_eq!(out[p + 4], frame[p + 4], "flags kept");
                assert_eq!(&out[p + 8..p + 20], &frame[p + 8..p + 20], "application id, hop-by-hop, end-to-end kept");
                assert_eq!(&out[l4.off..l4.off + 16], &frame[l4.off..l4.off + 16], "ports, seq, ack, flags, window");
                assert_eq!(out.len(), frame.len());
            }
        }
        // Not selected, or an answer: nothing.
        let frame = Frame::new(
            "198.18.1.10".parse().unwrap(),
            "198.18.1.20".parse().unwrap(),
            Tl4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(316, 16777251) },
        )
        .bytes();
        assert_eq!(tcp(&mut frame.clone(), |c| c == 8388620), Err(NotDone::NoTarget));
        // Over SCTP.
        let frame = sctp_frame(vec![data(9, 1, 46, &packets::diameter_message(8388620, 16777255))]);
        let mut out = frame.clone();
        let done = sctp(&mut out, |_| false, |c| c == 8388620).unwrap();
        assert_eq!(done.len(), 1);
        assert!(crc_ok(&out));
        assert!(diffs(&frame, &out).len() <= 3 + 4);
    }

    /// A real anyTimeInterrogation (frame 102 of the pcapr MAP capture, per tshark an ATI
    /// Begin; other encoders than ours): the rewrite finds the code where tshark does. The
    /// capture was taken on a sending host, so its CRC32c is made valid first, as on the wire.
    #[test]
    fn a_captured_any_time_interrogation_is_neutralized() {
        let cap = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/captures/ss7_map_pcapr.pcap");
        let tmp = std::env::temp_dir().join(format!("sigwall-neutralize-{}.pcap", std::process::id()));
        let frames = filter_testkit::pcap::load_ethernet(&cap, &tmp);
        let _ = std::fs::remove_file(&tmp);
        let mut frame = frames[101].data.clone();
        let l4 = transport(&frame).unwrap();
        let crc = sctp_crc(&frame[l4.off..l4.end]);
        frame[l4.off + 8..l4.off + 12].copy_from_slice(&crc);
        let mut out = frame.clone();
        let done = sctp(&mut out, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.iter().map(|r| r.technique.as_str()).collect::<Vec<_>>(), ["map-opcode 71->127"]);
        assert!(crc_ok(&out));
        let changed = diffs(&frame, &out);
        assert!(changed.iter().all(|i| *i == done[0].offset || (l4.off + 8..l4.off + 12).contains(i)), "{changed:?}");
    }

    /// SUA CLDT (class 7, type 1) with only its Data parameter (0x010b) around `tcap`.
    fn sua_cldt(tcap: &[u8]) -> Vec<u8> {
        let mut p = 0x010bu16.to_be_bytes().to_vec();
        p.extend_from_slice(&((4 + tcap.len()) as u16).to_be_bytes());
        p.extend_from_slice(tcap);
        while !p.len().is_multiple_of(4) {
            p.push(0);
        }
        let mut m = vec![1, 0, 7, 1];
        m.extend_from_slice(&((8 + p.len()) as u32).to_be_bytes());
        m.extend_from_slice(&p);
        m
    }

    /// The ATI with its local operation code (02 01 47) turned into a global one (06 01 47),
    /// which no rewrite of a local code can reach.
    fn global_op_ati() -> Vec<u8> {
        let mut m = m3ua(&tcap_begin(71));
        let at = m.windows(3).position(|w| w == [0x02, 0x01, 71]).unwrap();
        m[at] = 0x06;
        m
    }

    #[test]
    fn a_map_operation_in_sua_is_rewritten() {
        let mut f = sctp_frame(vec![data(1, 0, 4, &sua_cldt(&tcap_begin(71)))]);
        let done = sctp(&mut f, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.iter().map(|r| r.technique.as_str()).collect::<Vec<_>>(), ["map-opcode 71->127"]);
        assert!(crc_ok(&f));
    }

    #[test]
    fn a_message_with_no_reachable_operation_code_gets_the_adaptation_type() {
        let orig = sctp_frame(vec![data(1, 0, 3, &global_op_ati())]);
        let mut f = orig.clone();
        let done = sctp(&mut f, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.iter().map(|r| r.technique.as_str()).collect::<Vec<_>>(), ["m3ua-type 1->127"]);
        assert!(crc_ok(&f));
        // The M3UA header's fourth octet, nothing else but the CRC.
        let l4 = transport(&orig).unwrap();
        let user = l4.off + 12 + 16;
        let changed = diffs(&orig, &f);
        assert!(changed.iter().all(|i| *i == user + 3 || (l4.off + 8..l4.off + 12).contains(i)), "{changed:?}");
        assert_eq!((orig[user + 3], f[user + 3]), (1, NEUTRAL_ADAPTATION_TYPE));
        // SUA the same way.
        let mut tcap = tcap_begin(71);
        let at = tcap.windows(3).position(|w| w == [0x02, 0x01, 71]).unwrap();
        tcap[at] = 0x06;
        let mut f = sctp_frame(vec![data(1, 0, 4, &sua_cldt(&tcap))]);
        let done = sctp(&mut f, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.iter().map(|r| r.technique.as_str()).collect::<Vec<_>>(), ["sua-type 1->127"]);
    }

    #[test]
    fn a_bundled_neighbour_with_a_reachable_code_keeps_its_type() {
        let sai = m3ua(&tcap_begin(56));
        let mut f = sctp_frame(vec![data(1, 0, 3, &global_op_ati()), data(2, 1, 3, &sai)]);
        let done = sctp(&mut f, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].seq, 1, "the unreachable ATI's chunk, not the sendAuthenticationInfo's");
        // Across pieces too: the whole user message.
        let r = user_message(3, &global_op_ati(), |op| op == 71, |_| false);
        assert_eq!((r.len(), r[0].offset), (1, 3));
        assert!(user_message(3, &sai, |op| op == 71, |_| false).is_empty());
    }

    /// Review of stop 17: H4 (a whole message in one I-DATA chunk) and recipe C (chunks after
    /// an unknown chunk with action bits 00, which the receiver discards).
    #[test]
    fn a_whole_i_data_message_is_rewritten_and_chunks_after_an_unknown_one_are_not_seen() {
        let user = m3ua(&tcap_begin(71));
        let mut idata = vec![64, 0x03];
        idata.extend_from_slice(&((20 + user.len()) as u16).to_be_bytes());
        idata.extend_from_slice(&9u32.to_be_bytes()); // TSN
        idata.extend_from_slice(&[0, 1, 0, 0]); // stream 1, reserved
        idata.extend_from_slice(&0u32.to_be_bytes()); // MID
        idata.extend_from_slice(&3u32.to_be_bytes()); // PPID (B set)
        idata.extend_from_slice(&user);
        while !idata.len().is_multiple_of(4) {
            idata.push(0);
        }
        let mut f = sctp_frame(vec![idata]);
        let done = sctp(&mut f, |op| op == 71, |_| false).unwrap();
        assert_eq!(done.iter().map(|r| r.technique.as_str()).collect::<Vec<_>>(), ["map-opcode 71->127"]);
        assert!(crc_ok(&f));
        // An unknown chunk type 0x3f (action bits 00) before a fragment: the walk stops there.
        let unknown = vec![0x3f, 0, 0, 4];
        let f = sctp_frame(vec![unknown, data(5, 0, 3, &user)]);
        assert_eq!(sctp_pieces(&f).unwrap(), vec![]);
        let mut g = f.clone();
        assert_eq!(sctp(&mut g, |op| op == 71, |_| false), Err(NotDone::NoTarget));
    }

    #[test]
    fn rfc1624_matches_a_full_recomputation() {
        // RFC 1624 section 4's example: HC 0xDD2F, m 0x5555 -> m' 0x3285 gives 0x0000.
        assert_eq!(rfc1624(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
