//! GTPv2-C (TS 29.274): header, information elements (grouped ones bounded), and the IEs
//! sigwall's rules read: IMSI, MSISDN, Serving Network, RAT Type, F-TEID, APN.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ie::{apn_to_string, keep_first};
use crate::bytes::{be16, be24, be32};
use crate::digits::{Plmn, tbcd_decimal};
use crate::{DecodeError, Layer};

const L: Layer = Layer::GtpV2C;

pub const VERSION: u8 = 2;
/// Header without TEID (echo, version not supported), and with it.
pub const HEADER_LEN: usize = 8;
pub const HEADER_LEN_TEID: usize = 12;
pub const IE_HEADER_LEN: usize = 4;

pub const FLAG_P: u8 = 0x10;
pub const FLAG_T: u8 = 0x08;
pub const FLAG_MP: u8 = 0x04;

/// Deepest grouped-IE nesting [`walk`] descends into (top level is depth 0). TS 29.274 nests
/// at most two levels (PDN Connection → Bearer Context).
pub const MAX_IE_DEPTH: usize = 4;
/// Most IEs [`walk`] visits in one message, all levels counted. A Create Session Request has
/// 20-40; a Context Response with 11 PDN connections of 11 bearers a few hundred.
pub const MAX_IES: usize = 1024;

pub mod ie {
    pub const IMSI: u8 = 1;
    pub const CAUSE: u8 = 2;
    pub const RECOVERY: u8 = 3;
    pub const APN: u8 = 71;
    pub const AMBR: u8 = 72;
    pub const EBI: u8 = 73;
    pub const MEI: u8 = 75;
    pub const MSISDN: u8 = 76;
    pub const INDICATION: u8 = 77;
    pub const PCO: u8 = 78;
    pub const PAA: u8 = 79;
    pub const BEARER_QOS: u8 = 80;
    pub const RAT_TYPE: u8 = 82;
    pub const SERVING_NETWORK: u8 = 83;
    pub const ULI: u8 = 86;
    pub const F_TEID: u8 = 87;
    pub const BEARER_CONTEXT: u8 = 93;
    pub const PDN_CONNECTION: u8 = 109;
    pub const OVERLOAD_CONTROL_INFORMATION: u8 = 180;
    pub const LOAD_CONTROL_INFORMATION: u8 = 181;
    pub const REMOTE_UE_CONTEXT: u8 = 191;
    pub const SCEF_PDN_CONNECTION: u8 = 195;
    pub const PRIVATE_EXTENSION: u8 = 255;
}

/// IE types whose value is a list of IEs (TS 29.274 §8.2, "grouped").
pub fn is_grouped(ie_type: u8) -> bool {
    matches!(
        ie_type,
        ie::BEARER_CONTEXT
            | ie::PDN_CONNECTION
            | ie::OVERLOAD_CONTROL_INFORMATION
            | ie::LOAD_CONTROL_INFORMATION
            | ie::REMOTE_UE_CONTEXT
            | ie::SCEF_PDN_CONNECTION
    )
}

/// A GTPv2-C message: header validated (version 2, length within the input and long enough for
/// the header the flags promise). The slice covers the message only (not a piggybacked one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GtpV2Slice<'a> {
    slice: &'a [u8],
    /// Bytes after this message (a piggybacked message when the P flag is set).
    rest: &'a [u8],
}

impl<'a> GtpV2Slice<'a> {
    pub fn from_slice(bytes: &'a [u8]) -> Result<GtpV2Slice<'a>, DecodeError> {
        let total = check_header(bytes)?;
        DecodeError::need(L, total, bytes.len())?;
        let (slice, rest) =
            bytes.split_at_checked(total).ok_or(DecodeError::Len { layer: L, required: total, len: bytes.len() })?;
        Ok(GtpV2Slice { slice, rest })
    }

    /// Like [`from_slice`](Self::from_slice), but a message cut short (snap length, first IP
    /// fragment) is kept with the bytes there are, and the shortfall returned.
    pub fn from_slice_lax(bytes: &'a [u8]) -> Result<(GtpV2Slice<'a>, Option<DecodeError>), DecodeError> {
        let total = check_header(bytes)?;
        match bytes.split_at_checked(total) {
            Some((slice, rest)) => Ok((GtpV2Slice { slice, rest }, None)),
            None => Ok((
                GtpV2Slice { slice: bytes, rest: &[] },
                Some(DecodeError::Len { layer: L, required: total, len: bytes.len() }),
            )),
        }
    }

    pub fn version(&self) -> u8 {
        self.flags() >> 5
    }
    pub fn flags(&self) -> u8 {
        self.slice.first().copied().unwrap_or(0)
    }
    pub fn piggybacking(&self) -> bool {
        self.flags() & FLAG_P != 0
    }
    pub fn has_teid(&self) -> bool {
        self.flags() & FLAG_T != 0
    }
    pub fn message_priority(&self) -> Option<u8> {
        if self.flags() & FLAG_MP != 0 && self.has_teid() { self.slice.get(11).map(|b| b >> 4) } else { None }
    }
    pub fn message_type(&self) -> u8 {
        self.slice.get(1).copied().unwrap_or(0)
    }
    /// Message Length: octets after the first four.
    pub fn length(&self) -> u16 {
        be16(self.slice, 2).unwrap_or(0)
    }
    pub fn teid(&self) -> Option<u32> {
        if self.has_teid() { Some(be32(self.slice, 4).unwrap_or(0)) } else { None }
    }
    pub fn sequence(&self) -> u32 {
        let at = if self.has_teid() { 8 } else { 4 };
        be24(self.slice, at).unwrap_or(0)
    }
    fn header_len(&self) -> usize {
        if self.has_teid() { HEADER_LEN_TEID } else { HEADER_LEN }
    }
    /// The top-level IEs.
    pub fn ies(&self) -> IeIter<'a> {
        IeIter::new(self.slice.get(self.header_len()..).unwrap_or(&[]))
    }
    /// Every IE, grouped members included; see [`walk`].
    pub fn walk(&self, visit: impl FnMut(&IeSlice<'a>, Option<u8>)) -> Result<usize, DecodeError> {
        walk(self.slice.get(self.header_len()..).unwrap_or(&[]), visit)
    }
    /// The piggybacked message (TS 29.274 §5.5.1: a Create Bearer Response after a Create
    /// Session Response, ...), if the P flag is set and one follows.
    pub fn piggybacked(&self) -> Option<Result<GtpV2Slice<'a>, DecodeError>> {
        if self.piggybacking() && !self.rest.is_empty() { Some(GtpV2Slice::from_slice(self.rest)) } else { None }
    }
    pub fn slice(&self) -> &'a [u8] {
        self.slice
    }
}

/// Returns the whole message length (Message Length + 4).
fn check_header(bytes: &[u8]) -> Result<usize, DecodeError> {
    DecodeError::need(L, HEADER_LEN, bytes.len())?;
    let flags = bytes.first().copied().unwrap_or(0);
    if flags >> 5 != VERSION {
        return Err(DecodeError::Content { layer: L, what: "version is not 2" });
    }
    let hl = if flags & FLAG_T != 0 { HEADER_LEN_TEID } else { HEADER_LEN };
    DecodeError::need(L, hl, bytes.len())?;
    let total = usize::from(be16(bytes, 2).unwrap_or(0)) + 4;
    if total < hl {
        return Err(DecodeError::Content { layer: L, what: "message length shorter than the header" });
    }
    Ok(total)
}

/// One IE: type, instance and value, validated to lie within the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IeSlice<'a> {
    ie_type: u8,
    flags: u8,
    value: &'a [u8],
}

impl<'a> IeSlice<'a> {
    /// The IE at the start of `bytes` and the bytes it takes.
    pub fn from_slice(bytes: &'a [u8]) -> Result<(IeSlice<'a>, usize), DecodeError> {
        DecodeError::need(L, IE_HEADER_LEN, bytes.len())?;
        let len = usize::from(be16(bytes, 1).unwrap_or(0));
        let total = IE_HEADER_LEN + len;
        let value =
            bytes.get(IE_HEADER_LEN..total).ok_or(DecodeError::Len { layer: L, required: total, len: bytes.len() })?;
        Ok((
            IeSlice { ie_type: bytes.first().copied().unwrap_or(0), flags: bytes.get(3).copied().unwrap_or(0), value },
            total,
        ))
    }
    pub fn ie_type(&self) -> u8 {
        self.ie_type
    }
    pub fn instance(&self) -> u8 {
        self.flags & 0x0f
    }
    /// CR flag / spare nibble.
    pub fn spare(&self) -> u8 {
        self.flags >> 4
    }
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
    /// Members of a grouped IE.
    pub fn members(&self) -> IeIter<'a> {
        IeIter::new(self.value)
    }
}

/// The IEs of one level; yields `Err` once at the first malformed IE, then ends.
#[derive(Clone, Debug)]
pub struct IeIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> IeIter<'a> {
    pub fn new(bytes: &'a [u8]) -> IeIter<'a> {
        IeIter { rest: bytes, failed: false }
    }
}

impl<'a> Iterator for IeIter<'a> {
    type Item = Result<IeSlice<'a>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match IeSlice::from_slice(self.rest) {
            Ok((ie, used)) => {
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(ie))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for IeIter<'_> {}

/// Visits every IE depth first, descending into grouped IEs up to [`MAX_IE_DEPTH`], at most
/// [`MAX_IES`] in all; `visit` gets the IE and the type of the grouped IE it is in (None at top
/// level). Returns the count, or the first error (everything before it visited).
pub fn walk<'a>(bytes: &'a [u8], mut visit: impl FnMut(&IeSlice<'a>, Option<u8>)) -> Result<usize, DecodeError> {
    let mut stack: [(IeIter<'a>, Option<u8>); MAX_IE_DEPTH + 1] = std::array::from_fn(|_| (IeIter::new(&[]), None));
    stack[0] = (IeIter::new(bytes), None);
    let mut depth = 0usize;
    let mut count = 0usize;
    loop {
        let Some((iter, parent)) = stack.get_mut(depth) else {
            return Err(DecodeError::Limit { layer: L, what: "grouped IE nesting deeper than 4" });
        };
        let parent = *parent;
        match iter.next() {
            None if depth == 0 => return Ok(count),
            None => depth -= 1,
            Some(Err(e)) => return Err(e),
            Some(Ok(ie)) => {
                count += 1;
                if count > MAX_IES {
                    return Err(DecodeError::Limit { layer: L, what: "more than 1024 IEs in one message" });
                }
                visit(&ie, parent);
                if is_grouped(ie.ie_type()) && !ie.value().is_empty() {
                    if depth + 1 > MAX_IE_DEPTH {
                        return Err(DecodeError::Limit { layer: L, what: "grouped IE nesting deeper than 4" });
                    }
                    depth += 1;
                    if let Some(slot) = stack.get_mut(depth) {
                        *slot = (ie.members(), Some(ie.ie_type()));
                    }
                }
            }
        }
    }
}

/// Fully Qualified TEID (IE 87, TS 29.274 §8.22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fteid {
    /// Instance of the IE (which F-TEID of the message it is).
    pub instance: u8,
    /// Grouped IE it was found in (93 for a Bearer Context), None at top level.
    pub parent: Option<u8>,
    /// Interface type (10 = S11 MME GTP-C, 7 = S5/S8 PGW GTP-C, ...).
    pub interface_type: u8,
    pub teid: u32,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

impl Fteid {
    pub fn parse(value: &[u8], instance: u8, parent: Option<u8>) -> Result<Fteid, DecodeError> {
        DecodeError::need(L, 5, value.len())?;
        let flags = value.first().copied().unwrap_or(0);
        let (v4, v6) = (flags & 0x80 != 0, flags & 0x40 != 0);
        let need = 5 + if v4 { 4 } else { 0 } + if v6 { 16 } else { 0 };
        DecodeError::need(L, need, value.len())?;
        let mut at = 5;
        let ipv4 = if v4 {
            let a: [u8; 4] = value.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or(DecodeError::Len {
                layer: L,
                required: at + 4,
                len: value.len(),
            })?;
            at += 4;
            Some(Ipv4Addr::from(a))
        } else {
            None
        };
        let ipv6 = if v6 {
            let a: [u8; 16] = value.get(at..at + 16).and_then(|s| s.try_into().ok()).ok_or(DecodeError::Len {
                layer: L,
                required: at + 16,
                len: value.len(),
            })?;
            Some(Ipv6Addr::from(a))
        } else {
            None
        };
        Ok(Fteid { instance, parent, interface_type: flags & 0x3f, teid: be32(value, 1).unwrap_or(0), ipv4, ipv6 })
    }
}

/// The fields of a GTPv2-C message rules read (filled by [`super::decode_c`]).
pub(crate) struct V2Fields {
    pub imsi: Option<String>,
    pub msisdn: Option<String>,
    pub serving_network: Option<Plmn>,
    pub rat_type: Option<u8>,
    pub cause: Option<u8>,
    pub fteids: Vec<Fteid>,
    pub apn: Option<String>,
    pub ie_count: usize,
    pub stop: Option<DecodeError>,
}

/// Walks the message and extracts the rule fields; identity IEs count at top level only (a
/// Context Response carries other UEs' data inside its PDN connections), F-TEIDs at any level.
pub(crate) fn extract(msg: &GtpV2Slice<'_>) -> V2Fields {
    let mut f = V2Fields {
        imsi: None,
        msisdn: None,
        serving_network: None,
        rat_type: None,
        cause: None,
        fteids: Vec::new(),
        apn: None,
        ie_count: 0,
        stop: None,
    };
    let mut err: Option<DecodeError> = None;
    // The identities are instance 0 in every message that carries them; an IE of the same type
    // with another instance is a different IE to the receiver (TS 29.274 §6.1.3), so it is not
    // taken for the IMSI (found by the differential fuzzer).
    let walked = msg.walk(|ie, parent| {
        f.ie_count += 1;
        let v = ie.value();
        match (ie.ie_type(), parent) {
            (ie::F_TEID, _) => match Fteid::parse(v, ie.instance(), parent) {
                Ok(t) => f.fteids.push(t),
                Err(e) => keep_first(&mut err, e),
            },
            (ie::IMSI, None) if ie.instance() == 0 && f.imsi.is_none() => match tbcd_decimal(L, v) {
                Ok(s) => f.imsi = Some(s),
                Err(e) => keep_first(&mut err, e),
            },
            (ie::MSISDN, None) if ie.instance() == 0 && f.msisdn.is_none() => match tbcd_decimal(L, v) {
                Ok(s) => f.msisdn = Some(s),
                Err(e) => keep_first(&mut err, e),
            },
            (ie::SERVING_NETWORK, None) if ie.instance() == 0 && f.serving_network.is_none() => {
                match v
                    .get(..3)
                    .ok_or(DecodeError::Len { layer: L, required: 3, len: v.len() })
                    .and_then(|p| Plmn::from_bytes(L, p))
                {
                    Ok(p) => f.serving_network = Some(p),
                    Err(e) => keep_first(&mut err, e),
                }
            }
            (ie::RAT_TYPE, None) if ie.instance() == 0 && f.rat_type.is_none() => match v.first() {
                Some(&r) => f.rat_type = Some(r),
                None => keep_first(&mut err, DecodeError::Len { layer: L, required: 1, len: 0 }),
            },
            // Cause (TS 29.274 §8.4): the value is the first octet.
            (ie::CAUSE, None) if ie.instance() == 0 && f.cause.is_none() => match v.first() {
                Some(&c) => f.cause = Some(c),
                None => keep_first(&mut err, DecodeError::Len { layer: L, required: 1, len: 0 }),
            },
            (ie::APN, None) if ie.instance() == 0 && f.apn.is_none() => match apn_to_string(L, v) {
                Ok(s) => f.apn = Some(s),
                Err(e) => keep_first(&mut err, e),
            },
            _ => {}
        }
    });
    f.stop = match walked {
        Ok(_) => err,
        Err(e) => Some(err.unwrap_or(e)),
    };
    f
}

/// Encodes an IE (tests).
#[cfg(test)]
pub(crate) fn encode_ie(ie_type: u8, instance: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![ie_type];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.push(instance & 0x0f);
    v.extend_from_slice(value);
    v
}

/// Encodes a message (tests).
#[cfg(test)]
pub(crate) fn encode(msg_type: u8, teid: Option<u32>, seq: u32, ies: &[Vec<u8>]) -> Vec<u8> {
    let body = ies.concat();
    let hl = if teid.is_some() { HEADER_LEN_TEID } else { HEADER_LEN };
    let mut v = vec![(VERSION << 5) | if teid.is_some() { FLAG_T } else { 0 }, msg_type];
    v.extend_from_slice(&((hl - 4 + body.len()) as u16).to_be_bytes());
    if let Some(t) = teid {
        v.extend_from_slice(&t.to_be_bytes());
    }
    v.extend_from_slice(&seq.to_be_bytes()[1..]);
    v.push(0);
    v.extend_from_slice(&body);
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn csr() -> Vec<u8> {
        let bearer = [encode_ie(ie::EBI, 0, &[5]), encode_ie(ie::F_TEID, 0, &[0x80, 0, 0, 0, 9, 10, 0, 0, 2])].concat();
        encode(
            32,
            Some(0),
            0x00a484,
            &[
                encode_ie(ie::IMSI, 0, &[0x22, 0x02, 0x01, 0x01, 0x00, 0x10, 0x41, 0xf0]),
                encode_ie(ie::MSISDN, 0, &[0x94, 0x71, 0x52, 0x76, 0x00, 0x41]),
                encode_ie(ie::RAT_TYPE, 0, &[6]),
                encode_ie(ie::F_TEID, 0, &[0x80 | 10, 0x00, 0x02, 0xa1, 0x00, 192, 168, 61, 149]),
                encode_ie(ie::APN, 0, b"\x03oai\x04ipv4"),
                encode_ie(ie::SERVING_NETWORK, 0, &[0x22, 0xf2, 0x10]),
                encode_ie(ie::BEARER_CONTEXT, 0, &bearer),
            ],
        )
    }

    #[test]
    fn header_and_ies() {
        let b = csr();
        let s = GtpV2Slice::from_slice(&b).unwrap();
        assert_eq!((s.version(), s.message_type(), s.teid(), s.sequence()), (2, 32, Some(0), 0xa484));
        assert!(!s.piggybacking());
        assert_eq!(usize::from(s.length()) + 4, b.len());
        assert_eq!(s.ies().count(), 7);
        let f = extract(&s);
        assert_eq!(f.stop, None);
        assert_eq!(f.imsi.as_deref(), Some("222010100001140"));
        assert_eq!(f.msisdn.as_deref(), Some("491725670014"));
        assert_eq!(f.rat_type, Some(6));
        assert_eq!(f.apn.as_deref(), Some("oai.ipv4"));
        assert_eq!(f.serving_network, Some(Plmn { mcc: 222, mnc: 1, mnc_digits: 2 }));
        assert_eq!(f.fteids.len(), 2);
        assert_eq!(f.fteids[0].teid, 0x0002a100);
        assert_eq!(f.fteids[0].interface_type, 10);
        assert_eq!(f.fteids[0].ipv4, Some(Ipv4Addr::new(192, 168, 61, 149)));
        assert_eq!(f.fteids[1].parent, Some(ie::BEARER_CONTEXT));
        assert_eq!(f.ie_count, 9);
    }

    #[test]
    fn no_teid_header() {
        let b = encode(1, None, 7, &[encode_ie(ie::RECOVERY, 0, &[3])]);
        let s = GtpV2Slice::from_slice(&b).unwrap();
        assert_eq!((s.teid(), s.sequence(), s.ies().count()), (None, 7, 1));
    }

    #[test]
    fn fteid_ipv6_and_both() {
        let mut v = vec![0xc0 | 7, 1, 2, 3, 4, 10, 0, 0, 1];
        v.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let t = Fteid::parse(&v, 1, None).unwrap();
        assert_eq!((t.interface_type, t.teid, t.instance), (7, 0x01020304, 1));
        assert_eq!((t.ipv4, t.ipv6), (Some(Ipv4Addr::new(10, 0, 0, 1)), Some(Ipv6Addr::LOCALHOST)));
        assert!(Fteid::parse(&v[..v.len() - 1], 0, None).is_err());
        assert!(Fteid::parse(&[0, 1, 2, 3], 0, None).is_err());
    }

    #[test]
    fn piggybacked_message() {
        let mut b = encode(33, Some(1), 1, &[encode_ie(ie::CAUSE, 0, &[16, 0])]);
        b[0] |= FLAG_P;
        let second = encode(96, Some(1), 2, &[]);
        b.extend_from_slice(&second);
        let s = GtpV2Slice::from_slice(&b).unwrap();
        let p = s.piggybacked().unwrap().unwrap();
        assert_eq!(p.message_type(), 96);
    }

    #[test]
    fn errors() {
        assert!(matches!(GtpV2Slice::from_slice(&[0x48, 32, 0]), Err(DecodeError::Len { .. })));
        assert!(matches!(
            GtpV2Slice::from_slice(&[0x28, 32, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Content { .. })
        ));
        // T set but length 4 < 8.
        assert!(matches!(
            GtpV2Slice::from_slice(&[0x48, 32, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Content { .. })
        ));
        let b = csr();
        assert!(matches!(GtpV2Slice::from_slice(&b[..b.len() - 1]), Err(DecodeError::Len { .. })));
        let (lax, cut) = GtpV2Slice::from_slice_lax(&b[..40]).unwrap();
        assert!(cut.is_some());
        let f = extract(&lax);
        assert_eq!(f.imsi.as_deref(), Some("222010100001140"));
        assert!(f.stop.is_some());
    }

    #[test]
    fn nesting_and_count_caps() {
        let mut g = encode_ie(ie::RECOVERY, 0, &[1]);
        for _ in 0..10 {
            g = encode_ie(ie::BEARER_CONTEXT, 0, &g);
        }
        assert!(matches!(walk(&g, |_, _| {}), Err(DecodeError::Limit { .. })));
        let one = encode_ie(ie::RECOVERY, 0, &[]);
        let many = one.repeat(MAX_IES + 1);
        assert!(matches!(walk(&many, |_, _| {}), Err(DecodeError::Limit { .. })));
        assert_eq!(walk(&one.repeat(MAX_IES), |_, _| {}), Ok(MAX_IES));
    }
}
