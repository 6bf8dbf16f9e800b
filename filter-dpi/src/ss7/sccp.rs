//! SCCP connectionless messages (ITU-T Q.713): UDT, UDTS, XUDT, XUDTS, LUDT, LUDTS, with the
//! called and calling party addresses (address indicator, ITU 14-bit point code, SSN,
//! routing indicator, global title of indicator 1 to 4 with its BCD digits), the optional
//! parameters of the extended messages, and a bounded [`SegmentReassembler`] for XUDT/LUDT
//! segmentation.
//!
//! [`SccpSlice::from_slice`] resolves every pointer and checks the three mandatory variable
//! parameters, both addresses and the optional part (at most [`MAX_OPTIONAL_PARAMS`]).

use std::collections::HashMap;

use crate::{DecodeError, Layer, digits};

pub const MSG_UDT: u8 = 0x09;
pub const MSG_UDTS: u8 = 0x0a;
pub const MSG_XUDT: u8 = 0x11;
pub const MSG_XUDTS: u8 = 0x12;
pub const MSG_LUDT: u8 = 0x13;
pub const MSG_LUDTS: u8 = 0x14;

/// Optional parameter names (Q.713 §3).
pub const OPT_END: u8 = 0x00;
pub const OPT_SEGMENTATION: u8 = 0x10;
pub const OPT_IMPORTANCE: u8 = 0x12;

/// Optional parameters decoded per message; more is [`DecodeError::Limit`].
pub const MAX_OPTIONAL_PARAMS: usize = 16;

/// Subsystem numbers (Q.713 §3.4.2.2 and 3GPP TS 23.003).
pub const SSN_HLR: u8 = 6;
pub const SSN_VLR: u8 = 7;
pub const SSN_MSC: u8 = 8;
pub const SSN_SGSN: u8 = 149;

fn err_len(required: usize, len: usize) -> DecodeError {
    DecodeError::Len { layer: Layer::Sccp, required, len }
}

fn content(what: &'static str) -> DecodeError {
    DecodeError::Content { layer: Layer::Sccp, what }
}

/// Name of a message type, as tshark spells it.
pub fn message_type_name(t: u8) -> &'static str {
    match t {
        0x01 => "CR",
        0x02 => "CC",
        0x03 => "CREF",
        0x04 => "RLSD",
        0x05 => "RLC",
        0x06 => "DT1",
        0x07 => "DT2",
        0x08 => "AK",
        MSG_UDT => "UDT",
        MSG_UDTS => "UDTS",
        0x0b => "ED",
        0x0c => "EA",
        0x0d => "RSR",
        0x0e => "RSC",
        0x0f => "ERR",
        0x10 => "IT",
        MSG_XUDT => "XUDT",
        MSG_XUDTS => "XUDTS",
        MSG_LUDT => "LUDT",
        MSG_LUDTS => "LUDTS",
        _ => "unknown",
    }
}

/// One connectionless SCCP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SccpSlice<'a> {
    data: &'a [u8],
    called: AddressSlice<'a>,
    calling: AddressSlice<'a>,
    user_data: &'a [u8],
    optional: &'a [u8],
    long: bool,
    noncanonical: Option<&'static str>,
}

impl<'a> SccpSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        DecodeError::need(Layer::Sccp, 1, data.len())?;
        let t = data.first().copied().unwrap_or(0);
        // (offset of the first pointer, pointer width, number of pointers)
        let (first_ptr, long, n_ptr) = match t {
            MSG_UDT | MSG_UDTS => (2, false, 3),
            MSG_XUDT | MSG_XUDTS => (3, false, 4),
            MSG_LUDT | MSG_LUDTS => (3, true, 4),
            _ => return Err(content("not a connectionless data message (UDT/XUDT/LUDT or their services)")),
        };
        let width = if long { 2 } else { 1 };
        DecodeError::need(Layer::Sccp, first_ptr + width * n_ptr, data.len())?;
        // Resolves pointer `i` to the offset it points at (pointers count from their own octet).
        let target = |i: usize| -> Result<Option<usize>, DecodeError> {
            let at = first_ptr + width * i;
            let p = if long {
                u16::from_le_bytes([data.get(at).copied().unwrap_or(0), data.get(at + 1).copied().unwrap_or(0)])
                    as usize
            } else {
                data.get(at).copied().unwrap_or(0) as usize
            };
            if p == 0 {
                return Ok(None);
            }
            let off = at + p;
            if off >= data.len() {
                return Err(err_len(off + 1, data.len()));
            }
            Ok(Some(off))
        };
        // A variable parameter: length (1 octet, or 2 for LUDT's long data) then contents.
        let var = |off: usize, len2: bool| -> Result<&'a [u8], DecodeError> {
            let (len, start) = if len2 {
                let l = u16::from_le_bytes([
                    *data.get(off).ok_or(err_len(off + 1, data.len()))?,
                    *data.get(off + 1).ok_or(err_len(off + 2, data.len()))?,
                ]);
                (l as usize, off + 2)
            } else {
                (*data.get(off).ok_or(err_len(off + 1, data.len()))? as usize, off + 1)
            };
            data.get(start..start + len).ok_or(err_len(start + len, data.len()))
        };
        let called_off = target(0)?.ok_or(content("called party address pointer is 0"))?;
        let calling_off = target(1)?.ok_or(content("calling party address pointer is 0"))?;
        let data_off = target(2)?.ok_or(content("data pointer is 0"))?;
        let called_raw = var(called_off, false)?;
        let calling_raw = var(calling_off, false)?;
        let called = AddressSlice::from_slice(called_raw)?;
        let calling = AddressSlice::from_slice(calling_raw)?;
        let user_data = var(data_off, long)?;
        // Where each variable part lies (its length octets included): parts that share bytes,
        // or bytes after the last part of a message without an optional part, mean the
        // lengths disagree with the carrier; receivers resolve that differently (review H3).
        let end = |off: usize, v: &[u8], len2: bool| off + usize::from(len2) + 1 + v.len();
        let mut parts = [
            (called_off, end(called_off, called_raw, false)),
            (calling_off, end(calling_off, calling_raw, false)),
            (data_off, end(data_off, user_data, long)),
        ];
        parts.sort_unstable();
        let mut noncanonical = None;
        if parts.windows(2).any(|w| w[0].1 > w[1].0) {
            noncanonical = Some("variable parameters overlap");
        }
        let optional = if n_ptr == 4 {
            match target(3)? {
                Some(off) => {
                    let opt = data.get(off..).unwrap_or(&[]);
                    check_optional(opt)?;
                    opt
                }
                None => &[],
            }
        } else {
            &[]
        };
        if optional.is_empty() && parts[2].1 < data.len() {
            noncanonical = noncanonical.or(Some("bytes after the last parameter"));
        }
        Ok(SccpSlice { data, called, calling, user_data, optional, long, noncanonical })
    }

    /// The variable parameters' lengths disagree with the message (overlap, or bytes after the
    /// last one), as a [`DecodeError::NonCanonical`].
    pub fn noncanonical(&self) -> Option<DecodeError> {
        self.noncanonical.map(|what| DecodeError::NonCanonical { layer: Layer::Sccp, what })
    }

    pub fn message_type(&self) -> u8 {
        self.data.first().copied().unwrap_or(0)
    }
    pub fn message_type_name(&self) -> &'static str {
        message_type_name(self.message_type())
    }
    /// True for UDTS, XUDTS and LUDTS (the second octet is a return cause).
    pub fn is_service(&self) -> bool {
        matches!(self.message_type(), MSG_UDTS | MSG_XUDTS | MSG_LUDTS)
    }
    /// Protocol class (low nibble) of UDT/XUDT/LUDT.
    pub fn protocol_class(&self) -> Option<u8> {
        if self.is_service() { None } else { self.data.get(1).map(|c| c & 0x0f) }
    }
    /// Message handling bits (high nibble of the protocol class octet: 8 = return on error).
    pub fn message_handling(&self) -> Option<u8> {
        if self.is_service() { None } else { self.data.get(1).map(|c| c >> 4) }
    }
    /// Return cause of UDTS/XUDTS/LUDTS.
    pub fn return_cause(&self) -> Option<u8> {
        if self.is_service() { self.data.get(1).copied() } else { None }
    }
    /// Hop counter of the extended and long messages.
    pub fn hop_counter(&self) -> Option<u8> {
        if matches!(self.message_type(), MSG_UDT | MSG_UDTS) { None } else { self.data.get(2).copied() }
    }
    pub fn called(&self) -> AddressSlice<'a> {
        self.called
    }
    pub fn calling(&self) -> AddressSlice<'a> {
        self.calling
    }
    /// The user data (TCAP, or one segment of it).
    #[expect(
        clippy::misnamed_getters,
        reason = "`data` is SCCP's name for the user data; the field `data` is the whole message"
    )]
    pub fn data(&self) -> &'a [u8] {
        self.user_data
    }
    pub fn is_long(&self) -> bool {
        self.long
    }

    /// Optional parameters (type, value) up to the end-of-optional-parameters octet.
    pub fn optional_params(&self) -> OptionalIter<'a> {
        OptionalIter { data: self.optional, count: 0 }
    }

    /// The segmentation parameter, if present and 4 octets long.
    pub fn segmentation(&self) -> Option<Segmentation> {
        let (_, v) = self.optional_params().find(|(t, _)| *t == OPT_SEGMENTATION)?;
        Segmentation::from_slice(v)
    }
}

fn check_optional(mut d: &[u8]) -> Result<(), DecodeError> {
    let mut n = 0;
    loop {
        match d.first() {
            None | Some(&OPT_END) => return Ok(()),
            Some(_) => {}
        }
        if n == MAX_OPTIONAL_PARAMS {
            return Err(DecodeError::Limit {
                layer: Layer::Sccp,
                what: "more than MAX_OPTIONAL_PARAMS optional parameters",
            });
        }
        let len = *d.get(1).ok_or(err_len(2, d.len()))? as usize;
        d = d.get(2 + len..).ok_or(err_len(2 + len, d.len()))?;
        n += 1;
    }
}

#[derive(Clone, Debug)]
pub struct OptionalIter<'a> {
    data: &'a [u8],
    count: usize,
}

impl<'a> Iterator for OptionalIter<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let t = *self.data.first()?;
        if t == OPT_END || self.count >= MAX_OPTIONAL_PARAMS {
            return None;
        }
        let len = *self.data.get(1)? as usize;
        let v = self.data.get(2..2 + len)?;
        self.data = self.data.get(2 + len..)?;
        self.count += 1;
        Some((t, v))
    }
}

/// The segmentation parameter (Q.713 §3.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segmentation {
    /// F bit: this is the first segment.
    pub first: bool,
    /// C bit: protocol class 1 (in sequence) was requested.
    pub class1: bool,
    /// Segments still to come after this one (0..=15).
    pub remaining: u8,
    /// Segmentation local reference (24 bits, as sent).
    pub local_ref: u32,
}

impl Segmentation {
    pub fn from_slice(v: &[u8]) -> Option<Segmentation> {
        let &[b, r0, r1, r2] = v else { return None };
        Some(Segmentation {
            first: b & 0x80 != 0,
            class1: b & 0x40 != 0,
            remaining: b & 0x0f,
            local_ref: u32::from_be_bytes([0, r0, r1, r2]),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses

/// Global title (Q.713 §3.4.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GlobalTitle {
    /// Global title indicator (1..=4).
    pub gti: u8,
    pub translation_type: Option<u8>,
    pub numbering_plan: Option<u8>,
    pub encoding_scheme: Option<u8>,
    pub nature_of_address: Option<u8>,
    /// Address signals, BCD decoded by [`digits::bcd_global_title`] (0-9, then `A`-`F`; `B` and
    /// `C` are the code 11 and 12 signals).
    pub digits: String,
}

/// A called or calling party address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSlice<'a> {
    data: &'a [u8],
    gt_off: usize,
}

impl<'a> AddressSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        let ai = *data.first().ok_or(err_len(1, 0))?;
        let mut off = 1;
        if ai & 0x01 != 0 {
            off += 2;
        }
        if ai & 0x02 != 0 {
            off += 1;
        }
        DecodeError::need(Layer::Sccp, off, data.len())?;
        let gti = (ai >> 2) & 0x0f;
        let fixed = match gti {
            0 => 0,
            1 | 2 => 1,
            3 => 2,
            4 => 3,
            _ => return Err(content("global title indicator is spare (5-15)")),
        };
        DecodeError::need(Layer::Sccp, off + fixed, data.len())?;
        Ok(AddressSlice { data, gt_off: off })
    }

    pub fn address_indicator(&self) -> u8 {
        self.data.first().copied().unwrap_or(0)
    }
    /// Routing indicator: 0 = route on global title, 1 = route on SSN (tshark's `sccp.*.ri`).
    pub fn routing_indicator(&self) -> u8 {
        (self.address_indicator() >> 6) & 1
    }
    pub fn route_on_ssn(&self) -> bool {
        self.routing_indicator() == 1
    }
    pub fn global_title_indicator(&self) -> u8 {
        (self.address_indicator() >> 2) & 0x0f
    }
    /// ITU 14-bit signalling point code, if the PC indicator is set.
    pub fn point_code(&self) -> Option<u16> {
        if self.address_indicator() & 0x01 == 0 {
            return None;
        }
        Some(u16::from_le_bytes([*self.data.get(1)?, *self.data.get(2)?]) & 0x3fff)
    }
    /// The two spare bits above the 14-bit ITU point code are set: another decoder reads a
    /// 16-bit value (pycrate does; the differential fuzzer found it), a national format may
    /// mean something else by them.
    pub fn point_code_spare_bits(&self) -> bool {
        self.address_indicator() & 0x01 != 0 && self.data.get(2).is_some_and(|b| b & 0xc0 != 0)
    }
    /// Subsystem number, if the SSN indicator is set.
    pub fn ssn(&self) -> Option<u8> {
        if self.address_indicator() & 0x02 == 0 {
            return None;
        }
        let at = if self.address_indicator() & 0x01 != 0 { 3 } else { 1 };
        self.data.get(at).copied()
    }
    pub fn slice(&self) -> &'a [u8] {
        self.data
    }

    /// The global title, decoded (allocates the digit string, at most 2 × 255 characters).
    pub fn global_title(&self) -> Option<GlobalTitle> {
        let gt = self.data.get(self.gt_off..)?;
        let gti = self.global_title_indicator();
        let mut g = GlobalTitle { gti, ..Default::default() };
        let (digits, odd) = match gti {
            1 => {
                let b = *gt.first()?;
                g.nature_of_address = Some(b & 0x7f);
                (gt.get(1..)?, Some(b & 0x80 != 0))
            }
            2 => {
                g.translation_type = gt.first().copied();
                (gt.get(1..)?, None)
            }
            3 | 4 => {
                g.translation_type = gt.first().copied();
                let npes = *gt.get(1)?;
                g.numbering_plan = Some(npes >> 4);
                g.encoding_scheme = Some(npes & 0x0f);
                if gti == 4 {
                    g.nature_of_address = Some(*gt.get(2)? & 0x7f);
                }
                let odd = match npes & 0x0f {
                    1 => Some(true),
                    2 => Some(false),
                    _ => None,
                };
                (gt.get(if gti == 4 { 3 } else { 2 }..)?, odd)
            }
            _ => return None,
        };
        g.digits = digits::bcd_global_title(digits, odd);
        Some(g)
    }

    /// What is not canonical about the global title's digits (Q.713 §3.4.2.3): with an odd
    /// count, the filler nibble is not 0 (or 0xF); an ST (0xF) signal before the last digit. Decoders
    /// differ there (pycrate stops at the 0xF and keeps a non-zero filler; this one renders
    /// the 0xF and drops the filler), so the GT a rule sees may not be the receiver's
    /// (found by the differential fuzzer).
    pub fn global_title_noncanonical(&self) -> Option<&'static str> {
        let gt = self.data.get(self.gt_off..)?;
        let es_odd = |npes: u8| match npes & 0x0f {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        };
        let (digits, odd) = match self.global_title_indicator() {
            1 => (gt.get(1..)?, Some(gt.first()? & 0x80 != 0)),
            2 => (gt.get(1..)?, None),
            3 => (gt.get(2..)?, es_odd(*gt.get(1)?)),
            4 => (gt.get(3..)?, es_odd(*gt.get(1)?)),
            _ => return None,
        };
        // Q.713 says filler 0; real traffic (the captures here) also uses 0xF.
        // GTI 3/4 name the encoding: BCD odd (1) or even (2); unknown (0), national (3) and
        // the spares are read as BCD here, which another decoder does not do (pycrate fails).
        if matches!(self.global_title_indicator(), 3 | 4) && odd.is_none() {
            return Some("global title encoding scheme is not BCD odd or even");
        }
        if odd == Some(true) && digits.last().is_some_and(|b| !matches!(b >> 4, 0 | 0x0f)) {
            return Some("global title filler nibble is not 0 (or 0xF)");
        }
        let n = digits.len() * 2;
        let count = if odd == Some(false) { n } else { n.saturating_sub(1) };
        // Any of the first `count` nibbles (low nibble of each octet first) is 0xF.
        if digits
            .iter()
            .enumerate()
            .any(|(i, &b)| (2 * i < count && b & 0x0f == 0x0f) || (2 * i + 1 < count && b >> 4 == 0x0f))
        {
            return Some("global title has an ST (0xF) signal before its last digit");
        }
        None
    }

    /// Just the GT digits.
    pub fn digits(&self) -> Option<String> {
        self.global_title().map(|g| g.digits)
    }
}

// ---------------------------------------------------------------------------------------------
// Segment reassembly

/// Messages being reassembled at once; one more drops all pending state ([`DecodeError::Limit`]).
pub const SEG_MAX_PENDING: usize = 1024;
/// Bytes held over all pending messages.
pub const SEG_MAX_TOTAL_BYTES: usize = 4 * 1024 * 1024;
/// Size of one reassembled message (16 segments of a LUDT's 3952 bytes is ~63 KiB).
pub const SEG_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Identifies a segmented message: Q.714 §4.1.1.2.3 (calling address, local reference, and the
/// originating point code).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    pub opc: u32,
    pub dpc: u32,
    pub calling: Vec<u8>,
    pub local_ref: u32,
}

#[derive(Debug, Default)]
struct Pending {
    /// Segments by their "remaining" value.
    segs: HashMap<u8, Vec<u8>>,
    /// `remaining` of the first segment, once it arrived.
    total_minus_one: Option<u8>,
    bytes: usize,
    /// When its first piece arrived (the reassembler's counter): the oldest is evicted first.
    born: u64,
}

/// Rebuilds segmented XUDT/XUDTS/LUDT user data (segments may arrive in any order). A segment
/// with F set and 0 remaining is a whole message and is returned at once.
///
/// Bounded: when full, the oldest unfinished message is evicted (not everyone's, which let one
/// sender's flood hide every other message in progress), and its next segment is an error
/// (see [`crate::evicted`]).
#[derive(Debug)]
pub struct SegmentReassembler {
    pending: HashMap<SegmentKey, Pending>,
    total: usize,
    tick: u64,
    pub evicted: crate::evicted::Evicted<SegmentKey>,
}

impl Default for SegmentReassembler {
    fn default() -> Self {
        SegmentReassembler {
            pending: HashMap::new(),
            total: 0,
            tick: 0,
            evicted: crate::evicted::Evicted::new(SEG_MAX_PENDING),
        }
    }
}

impl SegmentReassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Evict the oldest unfinished message, remembering it.
    fn evict_oldest(&mut self) -> bool {
        let Some(k) = self.pending.iter().min_by_key(|(_, p)| p.born).map(|(k, _)| k.clone()) else {
            return false;
        };
        self.remove(&k);
        self.evicted.insert(k);
        true
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.total
    }

    fn limit(what: &'static str) -> Result<Option<Vec<u8>>, DecodeError> {
        Err(DecodeError::Limit { layer: Layer::Sccp, what })
    }

    /// Feeds one segment; `Ok(Some(data))` when it completes the message.
    pub fn push(&mut self, key: SegmentKey, seg: Segmentation, data: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        self.tick += 1;
        if seg.first && seg.remaining == 0 {
            self.remove(&key);
            return Ok(Some(data.to_vec()));
        }
        // A later segment of a message whose earlier ones were evicted: the receiver has them.
        if !self.pending.contains_key(&key) && self.evicted.take(&key) {
            return Self::limit("segmented message evicted unfinished to make room");
        }
        if data.len() > SEG_MAX_MESSAGE_BYTES {
            self.remove(&key);
            return Self::limit("segmented message too large");
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= SEG_MAX_PENDING && self.evict_oldest() {}
        }
        while self.total + data.len() > SEG_MAX_TOTAL_BYTES {
            // Room is made from the oldest messages; the one being fed may be among them.
            if !self.evict_oldest() {
                break;
            }
        }
        if !self.pending.contains_key(&key) && self.evicted.take(&key) {
            return Self::limit("segmented message evicted unfinished to make room");
        }
        let tick = self.tick;
        let p = self.pending.entry(key.clone()).or_insert_with(|| Pending { born: tick, ..Default::default() });
        if p.bytes + data.len() > SEG_MAX_MESSAGE_BYTES {
            self.remove(&key);
            return Self::limit("segmented message too large");
        }
        if seg.first {
            if p.total_minus_one.is_some() {
                // A new message reuses the reference: start over.
                let b = p.bytes;
                *p = Pending { born: tick, ..Default::default() };
                self.total -= b;
            }
            p.total_minus_one = Some(seg.remaining);
        }
        if let Some(old) = p.segs.insert(seg.remaining, data.to_vec()) {
            p.bytes -= old.len();
            self.total -= old.len();
        }
        p.bytes += data.len();
        self.total += data.len();
        let Some(n) = p.total_minus_one else { return Ok(None) };
        if p.segs.keys().any(|r| *r > n) {
            self.remove(&key);
            return Err(content("segment numbering does not match the first segment"));
        }
        if (0..=n).any(|r| !p.segs.contains_key(&r)) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(p.bytes);
        for r in (0..=n).rev() {
            if let Some(s) = p.segs.get(&r) {
                out.extend_from_slice(s);
            }
        }
        self.remove(&key);
        Ok(Some(out))
    }

    fn remove(&mut self, key: &SegmentKey) {
        if let Some(p) = self.pending.remove(key) {
            self.total -= p.bytes;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Called: route on GT, GTI 4, SSN 6, E.164 "41792457333" (frame 29 of ss7_map_pcapr.pcap).
    pub(crate) const CALLED: &[u8] = &[0x12, 0x06, 0x00, 0x11, 0x04, 0x14, 0x97, 0x42, 0x75, 0x33, 0xf3];
    /// Calling: route on SSN with PC 4536 and SSN 8, GTI 4, "41799797800".
    pub(crate) const CALLING: &[u8] = &[0x53, 0xb8, 0x11, 0x08, 0x00, 0x11, 0x04, 0x14, 0x97, 0x79, 0x79, 0x08, 0xf0];

    pub(crate) fn udt(called: &[u8], calling: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = vec![MSG_UDT, 0x81, 3, (3 + called.len()) as u8, (3 + called.len() + calling.len()) as u8];
        m.push(called.len() as u8);
        m.extend_from_slice(called);
        m.push(calling.len() as u8);
        m.extend_from_slice(calling);
        m.push(data.len() as u8);
        m.extend_from_slice(data);
        m
    }

    pub(crate) fn xudt(called: &[u8], calling: &[u8], data: &[u8], seg: Option<[u8; 4]>) -> Vec<u8> {
        let p1 = 4u8;
        let p2 = 3 + 1 + called.len() as u8;
        let p3 = 2 + 1 + called.len() as u8 + 1 + calling.len() as u8;
        let p4 =
            if seg.is_some() { 1 + 1 + called.len() as u8 + 1 + calling.len() as u8 + 1 + data.len() as u8 } else { 0 };
        let mut m = vec![MSG_XUDT, 0x81, 15, p1, p2, p3, p4];
        m.push(called.len() as u8);
        m.extend_from_slice(called);
        m.push(calling.len() as u8);
        m.extend_from_slice(calling);
        m.push(data.len() as u8);
        m.extend_from_slice(data);
        if let Some(s) = seg {
            m.extend_from_slice(&[OPT_SEGMENTATION, 4]);
            m.extend_from_slice(&s);
            m.push(OPT_END);
        }
        m
    }

    #[test]
    fn udt_addresses() {
        let m = udt(CALLED, CALLING, b"\x62\x00");
        let s = SccpSlice::from_slice(&m).unwrap();
        assert_eq!((s.message_type_name(), s.protocol_class(), s.message_handling()), ("UDT", Some(1), Some(8)));
        let (cd, cg) = (s.called(), s.calling());
        assert_eq!((cd.routing_indicator(), cd.ssn(), cd.point_code()), (0, Some(6), None));
        let g = cd.global_title().unwrap();
        assert_eq!(
            (g.gti, g.translation_type, g.numbering_plan, g.encoding_scheme, g.nature_of_address),
            (4, Some(0), Some(1), Some(1), Some(4))
        );
        assert_eq!(g.digits, "41792457333");
        assert_eq!((cg.routing_indicator(), cg.point_code(), cg.ssn()), (1, Some(4536), Some(8)));
        assert_eq!(cg.digits().unwrap(), "41799797800");
        assert_eq!(s.data(), b"\x62\x00");
        assert_eq!(s.segmentation(), None);
        for n in 0..m.len() {
            assert!(SccpSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn gti_variants() {
        // GTI 1 (odd, NAI 4), GTI 2 (TT 0), GTI 3 (TT, NP/ES even), no GT
        let a = AddressSlice::from_slice(&[0x06, 0x08, 0x84, 0x21, 0x43, 0x05]).unwrap();
        let g = a.global_title().unwrap();
        assert_eq!((g.gti, g.nature_of_address, g.digits.as_str()), (1, Some(4), "12345"));
        let a = AddressSlice::from_slice(&[0x0a, 0x08, 0x00, 0x21, 0xf3]).unwrap();
        assert_eq!(a.digits().unwrap(), "123");
        let a = AddressSlice::from_slice(&[0x0e, 0x08, 0x00, 0x12, 0x21, 0x43]).unwrap();
        assert_eq!(a.global_title().unwrap().digits, "1234");
        let a = AddressSlice::from_slice(&[0x43, 0x01, 0x00, 0x06]).unwrap();
        assert_eq!((a.point_code(), a.ssn(), a.global_title()), (Some(1), Some(6), None));
        assert!(AddressSlice::from_slice(&[0x14]).is_err());
        assert!(matches!(AddressSlice::from_slice(&[0x3c, 0, 0, 0]), Err(DecodeError::Content { .. })));
        assert!(AddressSlice::from_slice(&[]).is_err());
    }

    #[test]
    fn xudt_segments() {
        let parts: [&[u8]; 3] = [b"aaaa", b"bbbb", b"cc"];
        let segs = [[0xc2, 1, 2, 3], [0x41, 1, 2, 3], [0x40, 1, 2, 3]];
        let key = SegmentKey { opc: 1, dpc: 2, calling: CALLING.to_vec(), local_ref: 0x010203 };
        // in order, then out of order
        for order in [[0, 1, 2], [2, 0, 1]] {
            let mut r = SegmentReassembler::new();
            let mut out = None;
            for i in order {
                let m = xudt(CALLED, CALLING, parts[i], Some(segs[i]));
                let s = SccpSlice::from_slice(&m).unwrap();
                let seg = s.segmentation().unwrap();
                assert_eq!((seg.local_ref, seg.remaining, seg.first), (0x010203, 2 - i as u8, i == 0));
                out = r.push(key.clone(), seg, s.data()).unwrap();
            }
            assert_eq!(out.unwrap(), b"aaaabbbbcc");
            assert_eq!((r.pending(), r.buffered_bytes()), (0, 0));
        }
        let m = xudt(CALLED, CALLING, b"x", Some(segs[0]));
        for n in 0..m.len() - 1 {
            assert!(SccpSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
        // a lone first-and-last segment is returned at once
        let mut r = SegmentReassembler::new();
        let one = Segmentation { first: true, class1: false, remaining: 0, local_ref: 9 };
        assert_eq!(r.push(key.clone(), one, b"z").unwrap().unwrap(), b"z");
        // inconsistent numbering
        r.push(key.clone(), Segmentation { first: false, remaining: 5, ..one }, b"q").unwrap();
        assert!(r.push(key.clone(), Segmentation { first: true, remaining: 1, ..one }, b"p").is_err());
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn segment_caps() {
        let mut r = SegmentReassembler::new();
        let seg = Segmentation { first: false, class1: false, remaining: 3, local_ref: 0 };
        for i in 0..SEG_MAX_PENDING as u32 {
            let k = SegmentKey { opc: 0, dpc: 0, calling: vec![], local_ref: i };
            assert_eq!(r.push(k, seg, b"x"), Ok(None));
        }
        // Full: the oldest message is evicted for the new one, not everyone's.
        let k = SegmentKey { opc: 0, dpc: 0, calling: vec![], local_ref: u32::MAX };
        assert_eq!(r.push(k, seg, b"x"), Ok(None));
        assert_eq!((r.pending(), r.buffered_bytes()), (SEG_MAX_PENDING, SEG_MAX_PENDING));
        // The evicted message's next segment is an error, once; the others go on.
        let oldest = SegmentKey { opc: 0, dpc: 0, calling: vec![], local_ref: 0 };
        let next = Segmentation { remaining: 2, ..seg };
        assert!(matches!(r.push(oldest.clone(), next, b"y"), Err(DecodeError::Limit { .. })));
        let second = SegmentKey { opc: 0, dpc: 0, calling: vec![], local_ref: 1 };
        assert_eq!(r.push(second, next, b"y"), Ok(None));
        assert_eq!(r.evicted.count, 1);
    }

    #[test]
    fn ludt_and_optional_limit() {
        // LUDT: 2-octet pointers, 2-octet long data length
        let mut m = vec![MSG_LUDT, 0x01, 15];
        let called = [0x42u8, 0x06];
        let calling = [0x42u8, 0x08];
        // pointers at 3,5,7,9
        let p1 = 8u16; // 3+8 = 11
        let p2 = 6 + called.len() as u16 + 1; // 5+p2 = 11+3 = 14
        let p3 = 4u16 + 3 + 3; // 7+p3 = 17
        m.extend_from_slice(&p1.to_le_bytes());
        m.extend_from_slice(&p2.to_le_bytes());
        m.extend_from_slice(&p3.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.push(2);
        m.extend_from_slice(&called);
        m.push(2);
        m.extend_from_slice(&calling);
        m.extend_from_slice(&3u16.to_le_bytes());
        m.extend_from_slice(b"abc");
        let s = SccpSlice::from_slice(&m).unwrap();
        assert_eq!(
            (s.message_type_name(), s.called().ssn(), s.calling().ssn(), s.data()),
            ("LUDT", Some(6), Some(8), &b"abc"[..])
        );
        for n in 0..m.len() {
            assert!(SccpSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
        let mut x = xudt(CALLED, CALLING, b"d", Some([0x80, 0, 0, 1]));
        x.pop();
        for _ in 0..MAX_OPTIONAL_PARAMS {
            x.extend_from_slice(&[0x11, 1, 0]);
        }
        assert!(matches!(SccpSlice::from_slice(&x), Err(DecodeError::Limit { .. })));
        assert!(matches!(SccpSlice::from_slice(&[0x06, 0, 0]), Err(DecodeError::Content { .. })));
    }

    #[test]
    fn global_title_digits_checked() {
        let a = |b: &'static [u8]| AddressSlice::from_slice(b).unwrap().global_title_noncanonical();
        assert_eq!(a(CALLED), None);
        assert_eq!(a(CALLING), None);
        let pc = |b: &'static [u8]| AddressSlice::from_slice(b).unwrap().point_code_spare_bits();
        assert!(!pc(CALLING));
        assert!(pc(&[0x43, 0x6e, 0x80, 0x06]));
        assert!(!pc(&[0x43, 0x6e, 0x3f, 0x06]));
        assert!(!pc(&[0x42, 0x06]));
        // odd count (ES 1) with filler 7; ST before the end; unknown ES with a trailing 0xF
        assert!(a(&[0x12, 0x06, 0x00, 0x11, 0x04, 0x43, 0x16, 0x71, 0x70]).is_some());
        assert!(a(&[0x12, 0x06, 0x00, 0x11, 0x04, 0x7f, 0x39, 0x04]).is_some());
        // GTI 3 with ES 0 (unknown): not BCD
        assert!(a(&[0x0e, 0x06, 0x00, 0x10, 0x21, 0xf3]).is_some());
        // GTI 2 (no ES): a trailing 0xF is a filler, one before the end is not
        assert_eq!(a(&[0x0a, 0x06, 0x00, 0x21, 0xf3]), None);
        assert!(a(&[0x0a, 0x06, 0x00, 0xf1, 0x23]).is_some());
    }

    #[test]
    fn lengths_that_disagree_are_noncanonical() {
        let m = udt(CALLED, CALLING, b"\x62\x00");
        assert_eq!(SccpSlice::from_slice(&m).unwrap().noncanonical(), None);
        let mut extra = m.clone();
        extra.extend_from_slice(b"\x01\x02");
        assert!(matches!(
            SccpSlice::from_slice(&extra).unwrap().noncanonical(),
            Some(DecodeError::NonCanonical { .. })
        ));
        // data pointer aimed at the calling party address: parts overlap
        let mut overlap = m.clone();
        overlap[4] = overlap[3] - 1;
        let s = SccpSlice::from_slice(&overlap).unwrap();
        assert_eq!(s.data(), CALLING);
        assert!(s.noncanonical().is_some());
    }
}
