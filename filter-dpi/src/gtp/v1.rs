//! GTPv1 header (TS 29.060 §6, TS 29.281 §5, shared by GTPv1-C and GTP-U) with its extension
//! header chain, and the GTPv1-C information elements (TS 29.060 §7.7: TV with fixed lengths
//! below 128, TLV from 128).

use super::ie::{apn_to_string, keep_first};
use crate::bytes::{be16, be32};
use crate::digits::tbcd_decimal;
use crate::{DecodeError, Layer};

pub const VERSION: u8 = 1;
/// Mandatory part: flags, type, length, TEID.
pub const HEADER_LEN: usize = 8;
/// With sequence number, N-PDU number and next extension header type (any of E, S, PN set).
pub const HEADER_LEN_OPT: usize = 12;

pub const FLAG_PT: u8 = 0x10;
pub const FLAG_E: u8 = 0x04;
pub const FLAG_S: u8 = 0x02;
pub const FLAG_PN: u8 = 0x01;

/// Longest extension header chain followed. TS 29.281 defines a handful of types; a real
/// packet carries one or two (PDU Session Container, UDP port).
pub const MAX_EXT_HEADERS: usize = 8;

/// A GTPv1 message (GTPv1-C or GTP-U): header and extension headers validated, length within
/// the input. `layer` says which protocol errors are counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GtpV1Slice<'a> {
    slice: &'a [u8],
    /// Offset of the payload (IEs or T-PDU): after the header and extension headers.
    payload_at: usize,
    /// Extension header types in order (0 = unused slot), and how many.
    ext_types: [u8; MAX_EXT_HEADERS],
    ext_count: u8,
}

impl<'a> GtpV1Slice<'a> {
    pub fn from_slice(bytes: &'a [u8], layer: Layer) -> Result<GtpV1Slice<'a>, DecodeError> {
        let (s, cut) = Self::from_slice_lax(bytes, layer)?;
        match cut {
            None => Ok(s),
            Some(e) => Err(e),
        }
    }

    /// Like [`from_slice`](Self::from_slice), but a message whose Length runs past the input is
    /// kept with the bytes there are (the mandatory header and the extension headers must be
    /// there); the shortfall is returned.
    pub fn from_slice_lax(bytes: &'a [u8], layer: Layer) -> Result<(GtpV1Slice<'a>, Option<DecodeError>), DecodeError> {
        DecodeError::need(layer, HEADER_LEN, bytes.len())?;
        let flags = bytes.first().copied().unwrap_or(0);
        if flags >> 5 != VERSION {
            return Err(DecodeError::Content { layer, what: "version is not 1" });
        }
        if flags & FLAG_PT == 0 {
            return Err(DecodeError::Content { layer, what: "protocol type is GTP' (PT = 0)" });
        }
        let total = usize::from(be16(bytes, 2).unwrap_or(0)) + HEADER_LEN;
        let (slice, cut) = match bytes.get(..total) {
            Some(s) => (s, None),
            None => (bytes, Some(DecodeError::Len { layer, required: total, len: bytes.len() })),
        };
        let mut s = GtpV1Slice { slice, payload_at: HEADER_LEN, ext_types: [0; MAX_EXT_HEADERS], ext_count: 0 };
        if flags & (FLAG_E | FLAG_S | FLAG_PN) == 0 {
            return Ok((s, cut));
        }
        if total < HEADER_LEN_OPT {
            return Err(DecodeError::Content { layer, what: "length too short for the optional header fields" });
        }
        DecodeError::need(layer, HEADER_LEN_OPT, slice.len())?;
        s.payload_at = HEADER_LEN_OPT;
        if flags & FLAG_E == 0 {
            return Ok((s, cut));
        }
        let mut next = slice.get(11).copied().unwrap_or(0);
        let mut at = HEADER_LEN_OPT;
        while next != 0 {
            if usize::from(s.ext_count) >= MAX_EXT_HEADERS {
                return Err(DecodeError::Limit { layer, what: "more than 8 extension headers" });
            }
            let units = usize::from(slice.get(at).copied().ok_or(DecodeError::Len {
                layer,
                required: at + 1,
                len: slice.len(),
            })?);
            if units == 0 {
                return Err(DecodeError::Content { layer, what: "extension header of length 0" });
            }
            let end = at + 4 * units;
            if end > total {
                return Err(DecodeError::Content { layer, what: "extension header runs past the message" });
            }
            DecodeError::need(layer, end, slice.len())?;
            if let Some(slot) = s.ext_types.get_mut(usize::from(s.ext_count)) {
                *slot = next;
            }
            s.ext_count += 1;
            next = slice.get(end - 1).copied().unwrap_or(0);
            at = end;
        }
        s.payload_at = at;
        Ok((s, cut))
    }

    pub fn flags(&self) -> u8 {
        self.slice.first().copied().unwrap_or(0)
    }
    pub fn message_type(&self) -> u8 {
        self.slice.get(1).copied().unwrap_or(0)
    }
    /// Length: octets after the mandatory 8.
    pub fn length(&self) -> u16 {
        be16(self.slice, 2).unwrap_or(0)
    }
    pub fn teid(&self) -> u32 {
        be32(self.slice, 4).unwrap_or(0)
    }
    pub fn has_optional_fields(&self) -> bool {
        self.flags() & (FLAG_E | FLAG_S | FLAG_PN) != 0
    }
    /// Sequence number, when the S flag is set.
    pub fn sequence(&self) -> Option<u16> {
        if self.flags() & FLAG_S != 0 { be16(self.slice, 8) } else { None }
    }
    /// N-PDU number, when the PN flag is set.
    pub fn npdu(&self) -> Option<u8> {
        if self.flags() & FLAG_PN != 0 { self.slice.get(10).copied() } else { None }
    }
    /// Types of the extension headers, in order.
    pub fn extension_headers(&self) -> &[u8] {
        self.ext_types.get(..usize::from(self.ext_count)).unwrap_or(&[])
    }
    /// IEs (GTPv1-C) or the T-PDU (GTP-U G-PDU).
    pub fn payload(&self) -> &'a [u8] {
        self.slice.get(self.payload_at..).unwrap_or(&[])
    }
    pub fn slice(&self) -> &'a [u8] {
        self.slice
    }
}

/// Value length of a TV IE of type `t` (< 128), TS 29.060 Table 37; None for types the
/// specification leaves unassigned, whose length nobody can know.
pub fn tv_len(t: u8) -> Option<usize> {
    Some(match t {
        1 => 1,   // Cause
        2 => 8,   // IMSI
        3 => 6,   // Routing Area Identity
        4 => 4,   // TLLI
        5 => 4,   // P-TMSI
        6 => 3,   // Quality of Service Profile (GTPv0, kept for old peers)
        8 => 1,   // Reordering Required
        9 => 28,  // Authentication Triplet
        11 => 1,  // MAP Cause
        12 => 3,  // P-TMSI Signature
        13 => 1,  // MS Validated
        14 => 1,  // Recovery
        15 => 1,  // Selection Mode
        16 => 4,  // TEID Data I
        17 => 4,  // TEID Control Plane
        18 => 5,  // TEID Data II
        19 => 1,  // Teardown Ind
        20 => 1,  // NSAPI
        21 => 1,  // RANAP Cause
        22 => 9,  // RAB Context
        23 => 1,  // Radio Priority SMS
        24 => 1,  // Radio Priority
        25 => 2,  // Packet Flow Id
        26 => 2,  // Charging Characteristics
        27 => 2,  // Trace Reference
        28 => 2,  // Trace Type
        29 => 1,  // MS Not Reachable Reason
        126 => 1, // Packet Transfer Command (TS 32.295)
        127 => 4, // Charging ID
        _ => return None,
    })
}

pub mod ie {
    pub const CAUSE: u8 = 1;
    pub const IMSI: u8 = 2;
    pub const RAI: u8 = 3;
    pub const RECOVERY: u8 = 14;
    pub const TEID_DATA_I: u8 = 16;
    pub const TEID_C: u8 = 17;
    pub const NSAPI: u8 = 20;
    pub const END_USER_ADDRESS: u8 = 128;
    pub const APN: u8 = 131;
    pub const GSN_ADDRESS: u8 = 133;
    pub const MSISDN: u8 = 134;
    pub const RAT_TYPE: u8 = 151;
    pub const PRIVATE_EXTENSION: u8 = 255;
}

/// Most IEs walked in one GTPv1-C message.
pub const MAX_IES: usize = 1024;

/// One GTPv1-C IE: its type and value (TV or TLV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V1Ie<'a> {
    pub ie_type: u8,
    pub value: &'a [u8],
}

/// The IEs of a GTPv1-C message in order; yields `Err` once (unknown TV type, truncation), then
/// ends. At most [`MAX_IES`].
#[derive(Clone, Debug)]
pub struct V1IeIter<'a> {
    rest: &'a [u8],
    count: usize,
    failed: bool,
}

impl<'a> V1IeIter<'a> {
    pub fn new(bytes: &'a [u8]) -> V1IeIter<'a> {
        V1IeIter { rest: bytes, count: 0, failed: false }
    }
}

impl<'a> Iterator for V1IeIter<'a> {
    type Item = Result<V1Ie<'a>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        const L: Layer = Layer::GtpV1C;
        if self.failed || self.rest.is_empty() {
            return None;
        }
        self.failed = true; // cleared on success
        let t = self.rest.first().copied().unwrap_or(0);
        let (hl, vlen) = if t < 128 {
            match tv_len(t) {
                Some(n) => (1, n),
                None => {
                    return Some(Err(DecodeError::Content {
                        layer: L,
                        what: "TV IE of unassigned type: length unknown",
                    }));
                }
            }
        } else {
            if self.rest.len() < 3 {
                return Some(Err(DecodeError::Len { layer: L, required: 3, len: self.rest.len() }));
            }
            (3, usize::from(be16(self.rest, 1).unwrap_or(0)))
        };
        let Some(value) = self.rest.get(hl..hl + vlen) else {
            return Some(Err(DecodeError::Len { layer: L, required: hl + vlen, len: self.rest.len() }));
        };
        self.count += 1;
        if self.count > MAX_IES {
            return Some(Err(DecodeError::Limit { layer: L, what: "more than 1024 IEs in one message" }));
        }
        self.rest = self.rest.get(hl + vlen..).unwrap_or(&[]);
        self.failed = false;
        Some(Ok(V1Ie { ie_type: t, value }))
    }
}

impl std::iter::FusedIterator for V1IeIter<'_> {}

pub(crate) struct V1Fields {
    pub imsi: Option<String>,
    pub msisdn: Option<String>,
    pub apn: Option<String>,
    pub rat_type: Option<u8>,
    pub ie_count: usize,
    pub stop: Option<DecodeError>,
}

/// IMSI (2), APN (131), MSISDN (134: an E.164 address, the first octet is nature of address and
/// numbering plan) and RAT Type (151).
pub(crate) fn extract(msg: &GtpV1Slice<'_>) -> V1Fields {
    const L: Layer = Layer::GtpV1C;
    let mut f = V1Fields { imsi: None, msisdn: None, apn: None, rat_type: None, ie_count: 0, stop: None };
    for ie in V1IeIter::new(msg.payload()) {
        let ie = match ie {
            Ok(ie) => ie,
            Err(e) => {
                keep_first(&mut f.stop, e);
                break;
            }
        };
        f.ie_count += 1;
        match ie.ie_type {
            ie::IMSI if f.imsi.is_none() => match tbcd_decimal(L, ie.value) {
                Ok(s) => f.imsi = Some(s),
                Err(e) => keep_first(&mut f.stop, e),
            },
            ie::MSISDN if f.msisdn.is_none() => match ie.value.split_first() {
                Some((_, digits)) => match tbcd_decimal(L, digits) {
                    Ok(s) => f.msisdn = Some(s),
                    Err(e) => keep_first(&mut f.stop, e),
                },
                None => keep_first(&mut f.stop, DecodeError::Len { layer: L, required: 1, len: 0 }),
            },
            ie::APN if f.apn.is_none() => match apn_to_string(L, ie.value) {
                Ok(s) => f.apn = Some(s),
                Err(e) => keep_first(&mut f.stop, e),
            },
            ie::RAT_TYPE if f.rat_type.is_none() => f.rat_type = ie.value.first().copied(),
            _ => {}
        }
    }
    f
}

/// Encodes a GTPv1 message (tests): flags beyond version/PT, type, TEID, optional fields
/// (`Some((seq, npdu, next_ext))`), raw extension headers and payload.
#[cfg(test)]
pub(crate) fn encode(
    flags: u8,
    msg_type: u8,
    teid: u32,
    opt: Option<(u16, u8, u8)>,
    ext: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some((seq, npdu, next)) = opt {
        body.extend_from_slice(&seq.to_be_bytes());
        body.push(npdu);
        body.push(next);
    }
    body.extend_from_slice(ext);
    body.extend_from_slice(payload);
    let mut v = vec![(VERSION << 5) | FLAG_PT | flags, msg_type];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(&teid.to_be_bytes());
    v.extend_from_slice(&body);
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const L: Layer = Layer::GtpV1C;

    pub(crate) fn create_pdp() -> Vec<u8> {
        let mut ies = vec![ie::IMSI, 0x22, 0x02, 0x01, 0x01, 0x00, 0x10, 0x41, 0xf0];
        ies.extend_from_slice(&[3, 0x22, 0xf2, 0x10, 0, 1, 2]); // RAI
        ies.extend_from_slice(&[ie::RECOVERY, 0]);
        ies.extend_from_slice(&[ie::TEID_DATA_I, 0, 0, 0, 1]);
        ies.extend_from_slice(&[ie::TEID_C, 0, 0, 0, 2]);
        ies.extend_from_slice(&[ie::NSAPI, 5]);
        ies.extend_from_slice(&[ie::APN, 0, 9, 3, b'o', b'a', b'i', 4, b'i', b'p', b'v', b'4']);
        ies.extend_from_slice(&[ie::MSISDN, 0, 4, 0x91, 0x94, 0x71, 0xf2]);
        ies.extend_from_slice(&[ie::RAT_TYPE, 0, 1, 1]);
        encode(FLAG_S, 16, 0, Some((0x1234, 0, 0)), &[], &ies)
    }

    #[test]
    fn header_and_ies() {
        let b = create_pdp();
        let s = GtpV1Slice::from_slice(&b, L).unwrap();
        assert_eq!((s.message_type(), s.teid(), s.sequence(), s.npdu()), (16, 0, Some(0x1234), None));
        assert!(s.extension_headers().is_empty());
        let f = extract(&s);
        assert_eq!(f.stop, None);
        assert_eq!(f.imsi.as_deref(), Some("222010100001140"));
        assert_eq!(f.apn.as_deref(), Some("oai.ipv4"));
        assert_eq!(f.msisdn.as_deref(), Some("49172"));
        assert_eq!(f.rat_type, Some(1));
        assert_eq!(f.ie_count, 9);
    }

    #[test]
    fn extension_header_chain() {
        // PDU Session Container (0x85) then UDP Port (0x40).
        let ext = [1, 0x10, 0x05, 0x40, 1, 0x08, 0x68, 0];
        let b = encode(FLAG_E, 255, 7, Some((0, 0, 0x85)), &ext, &[0x45]);
        let s = GtpV1Slice::from_slice(&b, Layer::GtpU).unwrap();
        assert_eq!(s.extension_headers(), &[0x85, 0x40]);
        assert_eq!(s.payload(), &[0x45]);
        // Length 0 extension header.
        let b = encode(FLAG_E, 255, 7, Some((0, 0, 0x85)), &[0, 0, 0, 0], &[]);
        assert!(matches!(GtpV1Slice::from_slice(&b, Layer::GtpU), Err(DecodeError::Content { .. })));
        // A chain that never ends is capped.
        let ext = [1, 0, 0, 0x85].repeat(MAX_EXT_HEADERS + 2);
        let b = encode(FLAG_E, 255, 7, Some((0, 0, 0x85)), &ext, &[]);
        assert!(matches!(GtpV1Slice::from_slice(&b, Layer::GtpU), Err(DecodeError::Limit { .. })));
    }

    #[test]
    fn header_errors() {
        assert!(matches!(GtpV1Slice::from_slice(&[0x30, 1, 0, 0], L), Err(DecodeError::Len { .. })));
        assert!(matches!(GtpV1Slice::from_slice(&[0x20, 1, 0, 0, 0, 0, 0, 0], L), Err(DecodeError::Content { .. })));
        assert!(matches!(GtpV1Slice::from_slice(&[0x50, 1, 0, 0, 0, 0, 0, 0], L), Err(DecodeError::Content { .. })));
        // S flag with length 0: no room for the optional fields.
        assert!(matches!(GtpV1Slice::from_slice(&[0x32, 1, 0, 0, 0, 0, 0, 0], L), Err(DecodeError::Content { .. })));
        let b = create_pdp();
        assert!(matches!(GtpV1Slice::from_slice(&b[..b.len() - 1], L), Err(DecodeError::Len { .. })));
    }

    #[test]
    fn unknown_tv_type_stops_the_walk() {
        let b = encode(0, 16, 0, None, &[], &[ie::IMSI, 0x21, 0x43, 0x65, 0x87, 0x09, 0x21, 0x43, 0xf5, 50, 1, 2]);
        let s = GtpV1Slice::from_slice(&b, L).unwrap();
        let f = extract(&s);
        assert_eq!(f.imsi.as_deref(), Some("123456789012345"));
        assert!(matches!(f.stop, Some(DecodeError::Content { .. })));
    }

    #[test]
    fn tv_table_covers_the_assigned_types() {
        for t in
            [1u8, 2, 3, 4, 5, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 127]
        {
            assert!(tv_len(t).is_some(), "{t}");
        }
        assert_eq!(tv_len(2), Some(8));
        assert_eq!(tv_len(30), None);
    }
}
