//! Diameter AVPs (RFC 6733 §4.1): a flat iterator over one level, and a bounded walk that
//! descends into the grouped AVPs listed in [`is_grouped`].

use crate::bytes::{be24, be32};
use crate::{DecodeError, Layer};

const L: Layer = Layer::Diameter;

/// AVP header without and with the Vendor-ID field.
pub const AVP_HEADER_LEN: usize = 8;
pub const AVP_HEADER_LEN_VENDOR: usize = 12;

/// Deepest grouped-AVP nesting [`walk`] descends into (top level is depth 0). Real traffic
/// nests three or four levels (MSCC → Used-Service-Unit → …); deeper is treated as an attack.
pub const MAX_AVP_DEPTH: usize = 8;
/// Most AVPs [`walk`] visits in one message, all levels counted. Not what bounds the work: an
/// AVP takes at least 8 bytes and nesting stops at [`MAX_AVP_DEPTH`], so the walk is linear in
/// the message anyway. It was 4096, which a receiver does not have: 4,097 unknown AVPs
/// (RFC 6733 §4.1 says ignore them) hid every AVP after them (review H4). 2^17 covers a
/// 1 MiB message of minimal AVPs, above every reassembly cap, so it never hides an AVP of a
/// message sigwall can hold; reaching it is still a [`DecodeError::Limit`] the caller sees.
pub const MAX_AVPS: usize = 1 << 17;

pub const FLAG_V: u8 = 0x80;
pub const FLAG_M: u8 = 0x40;
pub const FLAG_P: u8 = 0x20;

/// Vendor-Id of 3GPP.
pub const VENDOR_3GPP: u32 = 10415;

pub mod code {
    pub const USER_NAME: u32 = 1;
    pub const AUTH_APPLICATION_ID: u32 = 258;
    pub const ACCT_APPLICATION_ID: u32 = 259;
    pub const VENDOR_SPECIFIC_APPLICATION_ID: u32 = 260;
    pub const SESSION_ID: u32 = 263;
    pub const ORIGIN_HOST: u32 = 264;
    pub const VENDOR_ID: u32 = 266;
    pub const RESULT_CODE: u32 = 268;
    pub const DESTINATION_REALM: u32 = 283;
    pub const DESTINATION_HOST: u32 = 293;
    pub const ORIGIN_REALM: u32 = 296;
    pub const EXPERIMENTAL_RESULT: u32 = 297;
    /// 3GPP (vendor 10415), TS 29.272 §7.3.9.
    pub const VISITED_PLMN_ID: u32 = 1407;
}

/// One AVP, validated: header present, length ≥ header, data within the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvpSlice<'a> {
    /// Header and data, without padding.
    slice: &'a [u8],
    header_len: usize,
}

impl<'a> AvpSlice<'a> {
    /// Validates the AVP at the start of `bytes`. Returns the AVP and the number of bytes it
    /// takes including padding (the padding may be missing at the very end of the input).
    pub fn from_slice(bytes: &'a [u8]) -> Result<(AvpSlice<'a>, usize), DecodeError> {
        DecodeError::need(L, AVP_HEADER_LEN, bytes.len())?;
        let flags = bytes.get(4).copied().unwrap_or(0);
        let header_len = if flags & FLAG_V != 0 { AVP_HEADER_LEN_VENDOR } else { AVP_HEADER_LEN };
        DecodeError::need(L, header_len, bytes.len())?;
        let len = be24(bytes, 5).unwrap_or(0) as usize;
        if len < header_len {
            return Err(DecodeError::Content { layer: L, what: "AVP length shorter than its header" });
        }
        DecodeError::need(L, len, bytes.len())?;
        let padded = len.saturating_add(3) & !3;
        let slice = bytes.get(..len).ok_or(DecodeError::Len { layer: L, required: len, len: bytes.len() })?;
        Ok((AvpSlice { slice, header_len }, padded.min(bytes.len())))
    }

    pub fn code(&self) -> u32 {
        be32(self.slice, 0).unwrap_or(0)
    }
    pub fn flags(&self) -> u8 {
        self.slice.get(4).copied().unwrap_or(0)
    }
    pub fn is_vendor_specific(&self) -> bool {
        self.flags() & FLAG_V != 0
    }
    pub fn is_mandatory(&self) -> bool {
        self.flags() & FLAG_M != 0
    }
    pub fn is_protected(&self) -> bool {
        self.flags() & FLAG_P != 0
    }
    /// AVP Length field: header plus data, without padding.
    pub fn length(&self) -> usize {
        self.slice.len()
    }
    /// Vendor-Id, 0 when the V flag is clear.
    pub fn vendor_id(&self) -> u32 {
        if self.is_vendor_specific() { be32(self.slice, 8).unwrap_or(0) } else { 0 }
    }
    /// The data, without padding.
    pub fn data(&self) -> &'a [u8] {
        self.slice.get(self.header_len..).unwrap_or(&[])
    }
    /// The whole AVP, header and data, without padding.
    pub fn slice(&self) -> &'a [u8] {
        self.slice
    }
    /// The data as `Unsigned32` (exactly four octets).
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        match self.data() {
            &[a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
            _ => Err(DecodeError::Content { layer: L, what: "Unsigned32 AVP is not 4 octets" }),
        }
    }
    /// The data as text (`DiameterIdentity`, `UTF8String`); invalid UTF-8 is replaced, as a
    /// logger would show it.
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(self.data()).into_owned()
    }
    /// The members of a grouped AVP.
    pub fn members(&self) -> AvpIter<'a> {
        AvpIter::new(self.data())
    }
}

/// The AVPs of one level, in order. Yields `Err` once, at the first malformed AVP, then ends.
#[derive(Clone, Debug)]
pub struct AvpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> AvpIter<'a> {
    pub fn new(bytes: &'a [u8]) -> AvpIter<'a> {
        AvpIter { rest: bytes, failed: false }
    }
}

impl<'a> Iterator for AvpIter<'a> {
    type Item = Result<AvpSlice<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match AvpSlice::from_slice(self.rest) {
            Ok((avp, used)) => {
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(avp))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for AvpIter<'_> {}

/// AVPs of type Grouped that [`walk`] descends into: the base protocol's and the grouped AVPs of
/// the applications sigwall inspects (S6a/S6d, Gx, Gy/Ro, Rx, SLg/SLh). An AVP not listed is
/// visited but its data is not parsed as AVPs.
pub fn is_grouped(code: u32, vendor: u32) -> bool {
    match vendor {
        0 => matches!(
            code,
            260 // Vendor-Specific-Application-Id
            | 279 // Failed-AVP
            | 284 // Proxy-Info
            | 297 // Experimental-Result
            | 413 // CC-Money
            | 423 // Cost-Information
            | 430 // Final-Unit-Indication
            | 431 // Granted-Service-Unit
            | 434 // G-S-U-Pool-Reference
            | 437 // Requested-Service-Unit
            | 440 // Service-Parameter-Info
            | 443 // Subscription-Id
            | 445 // Unit-Value
            | 446 // Used-Service-Unit
            | 456 // Multiple-Services-Credit-Control
            | 458 // User-Equipment-Info
            | 486 // MIP6-Agent-Info
        ),
        VENDOR_3GPP => matches!(
            code,
            628 // Supported-Features
            | 873 // Service-Information
            | 874 // PS-Information
            | 1001 // Charging-Rule-Install
            | 1002 // Charging-Rule-Remove
            | 1003 // Charging-Rule-Definition
            | 1016 // QoS-Information
            | 1018 // Charging-Rule-Report
            | 1022 // Access-Network-Charging-Identifier-Gx
            | 1034 // Allocation-Retention-Priority
            | 1049 // Default-EPS-Bearer-QoS
            | 1058 // Flow-Information
            | 1067 // Usage-Monitoring-Information
            | 1400 // Subscription-Data
            | 1401 // Terminal-Information
            | 1408 // Requested-EUTRAN-Authentication-Info
            | 1409 // Requested-UTRAN-GERAN-Authentication-Info
            | 1413 // Authentication-Info
            | 1414 // E-UTRAN-Vector
            | 1415 // UTRAN-Vector
            | 1416 // GERAN-Vector
            | 1429 // APN-Configuration-Profile
            | 1430 // APN-Configuration
            | 1431 // EPS-Subscribed-QoS-Profile
            | 1435 // AMBR
            | 1472 // Specific-APN-Info
        ),
        _ => false,
    }
}

/// Visits every AVP of `bytes` in order, depth first, descending into grouped AVPs
/// ([`is_grouped`]) up to [`MAX_AVP_DEPTH`], at most [`MAX_AVPS`] AVPs in all. `visit` gets the
/// depth (0 = top level) and the AVP. Returns the number of AVPs visited, or the first error
/// (with everything before it already visited: the lax result).
///
/// A malformed member of a grouped AVP is an error of the whole walk, as for Wireshark, which
/// flags the message malformed.
pub fn walk<'a>(bytes: &'a [u8], mut visit: impl FnMut(usize, &AvpSlice<'a>)) -> Result<usize, DecodeError> {
    // An explicit stack of iterators instead of recursion: constant-size, no allocation.
    let mut stack: [AvpIter<'a>; MAX_AVP_DEPTH + 1] = std::array::from_fn(|_| AvpIter::new(&[]));
    stack[0] = AvpIter::new(bytes);
    let mut depth = 0usize;
    let mut count = 0usize;
    loop {
        let Some(iter) = stack.get_mut(depth) else {
            return Err(DecodeError::Limit { layer: L, what: "grouped AVP nesting deeper than 8" });
        };
        match iter.next() {
            None => {
                if depth == 0 {
                    return Ok(count);
                }
                depth -= 1;
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(avp)) => {
                count += 1;
                if count > MAX_AVPS {
                    return Err(DecodeError::Limit { layer: L, what: "more than MAX_AVPS AVPs in one message" });
                }
                visit(depth, &avp);
                if is_grouped(avp.code(), avp.vendor_id()) && !avp.data().is_empty() {
                    if depth + 1 > MAX_AVP_DEPTH {
                        return Err(DecodeError::Limit { layer: L, what: "grouped AVP nesting deeper than 8" });
                    }
                    depth += 1;
                    if let Some(slot) = stack.get_mut(depth) {
                        *slot = avp.members();
                    }
                }
            }
        }
    }
}

/// Encodes one AVP (tests and fuzz seeds): header, data, padding.
#[cfg(test)]
pub(crate) fn encode(code: u32, flags: u8, vendor: Option<u32>, data: &[u8]) -> Vec<u8> {
    let hl = if vendor.is_some() { AVP_HEADER_LEN_VENDOR } else { AVP_HEADER_LEN };
    let len = hl + data.len();
    let mut v = code.to_be_bytes().to_vec();
    v.push(if vendor.is_some() { flags | FLAG_V } else { flags & !FLAG_V });
    v.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    if let Some(id) = vendor {
        v.extend_from_slice(&id.to_be_bytes());
    }
    v.extend_from_slice(data);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avp_fields_and_padding() {
        let a = encode(code::ORIGIN_HOST, FLAG_M, None, b"mme.example");
        assert_eq!(a.len(), 20);
        let (avp, used) = AvpSlice::from_slice(&a).unwrap();
        assert_eq!(used, 20);
        assert_eq!(avp.code(), 264);
        assert!(avp.is_mandatory() && !avp.is_vendor_specific() && !avp.is_protected());
        assert_eq!(avp.length(), 19);
        assert_eq!(avp.vendor_id(), 0);
        assert_eq!(avp.as_text(), "mme.example");
        let v = encode(code::VISITED_PLMN_ID, FLAG_M, Some(VENDOR_3GPP), &[0x22, 0xf2, 0x10]);
        let (avp, used) = AvpSlice::from_slice(&v).unwrap();
        assert_eq!((avp.vendor_id(), avp.data(), used), (10415, &[0x22, 0xf2, 0x10][..], 16));
    }

    #[test]
    fn avp_errors() {
        assert!(matches!(AvpSlice::from_slice(&[0; 7]), Err(DecodeError::Len { required: 8, .. })));
        // V flag promises a vendor id that is not there.
        assert!(matches!(AvpSlice::from_slice(&[0, 0, 1, 8, 0x80, 0, 0, 8, 0]), Err(DecodeError::Len { .. })));
        // Length 4 < header.
        assert!(matches!(AvpSlice::from_slice(&[0, 0, 1, 8, 0, 0, 0, 4]), Err(DecodeError::Content { .. })));
        // Length beyond input.
        assert!(matches!(AvpSlice::from_slice(&[0, 0, 1, 8, 0, 0, 0, 20, 1, 2]), Err(DecodeError::Len { .. })));
        // Last AVP without its padding is accepted.
        let (_, used) = AvpSlice::from_slice(&[0, 0, 1, 8, 0, 0, 0, 9, b'x']).unwrap();
        assert_eq!(used, 9);
    }

    #[test]
    fn iterator_stops_after_error() {
        let mut b = encode(1, 0, None, b"abc");
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3]);
        b.extend_from_slice(&encode(1, 0, None, b"never"));
        let items: Vec<_> = AvpIter::new(&b).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok() && items[1].is_err());
    }

    #[test]
    fn walk_descends_into_grouped_and_bounds_depth() {
        let inner = encode(code::AUTH_APPLICATION_ID, FLAG_M, None, &16777251u32.to_be_bytes());
        let vsai = encode(code::VENDOR_SPECIFIC_APPLICATION_ID, FLAG_M, None, &inner);
        let mut seen = Vec::new();
        let n = walk(&vsai, |d, a| seen.push((d, a.code()))).unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, vec![(0, 260), (1, 258)]);

        // 20 levels of Proxy-Info (284, grouped): the walk stops at the cap.
        let mut g = encode(1, 0, None, b"x");
        for _ in 0..20 {
            g = encode(284, 0, None, &g);
        }
        let mut visited = 0;
        let r = walk(&g, |_, _| visited += 1);
        assert!(matches!(r, Err(DecodeError::Limit { .. })), "{r:?}");
        assert_eq!(visited, MAX_AVP_DEPTH + 1);
    }

    #[test]
    fn walk_counts_avps() {
        let one = encode(1, 0, None, b"");
        let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * (MAX_AVPS + 1)).collect();
        assert!(matches!(walk(&many, |_, _| {}), Err(DecodeError::Limit { .. })));
        let ok: Vec<u8> = one.iter().copied().cycle().take(one.len() * MAX_AVPS).collect();
        assert_eq!(walk(&ok, |_, _| {}), Ok(MAX_AVPS));
    }
}
