//! SUA, the SS7 SCCP User Adaptation layer (RFC 3868): SCCP's connectionless service carried
//! directly over SCTP, without MTP3. A CLDT (connectionless data transfer) carries the same TCAP
//! as an SCCP UDT/XUDT, with the called and calling party addresses as parameters; so it is
//! decoded into the same [`super::SccpInfo`] and the TCAP/MAP decoding below is shared.
//!
//! Framing as the receiver reads it (see [`super::xua`]). Parameter tags and address layout:
//! RFC 3868 §3.10 (SUA-specific tags 0x0101-0x0118, address sub-parameters 0x8001-0x8006).

use crate::bytes::{be16, be32};
use crate::digits;
use crate::{DecodeError, Layer};

use super::sccp::{GlobalTitle, Segmentation};
use super::xua::{self, ParamIter, ParamSlice};

pub use super::xua::HEADER_LEN;

/// Message classes (RFC 3868 §3.1.2).
pub const CLASS_MGMT: u8 = 0;
pub const CLASS_SSNM: u8 = 2;
pub const CLASS_ASPSM: u8 = 3;
pub const CLASS_ASPTM: u8 = 4;
/// Connectionless messages.
pub const CLASS_CL: u8 = 7;
/// Connection-oriented messages.
pub const CLASS_CO: u8 = 8;
pub const CLASS_RKM: u8 = 9;

/// Connectionless data transfer.
pub const TYPE_CLDT: u8 = 1;
/// Connectionless data response (SCCP's UDTS/XUDTS).
pub const TYPE_CLDR: u8 = 2;

/// Parameter tags.
pub const TAG_ROUTING_CONTEXT: u16 = 0x0006;
pub const TAG_HOP_COUNT: u16 = 0x0101;
pub const TAG_SOURCE_ADDRESS: u16 = 0x0102;
pub const TAG_DESTINATION_ADDRESS: u16 = 0x0103;
pub const TAG_SCCP_CAUSE: u16 = 0x0106;
pub const TAG_DATA: u16 = 0x010b;
pub const TAG_IMPORTANCE: u16 = 0x0113;
pub const TAG_MESSAGE_PRIORITY: u16 = 0x0114;
pub const TAG_PROTOCOL_CLASS: u16 = 0x0115;
pub const TAG_SEQUENCE_CONTROL: u16 = 0x0116;
pub const TAG_SEGMENTATION: u16 = 0x0117;

/// Address sub-parameter tags.
pub const ADDR_GLOBAL_TITLE: u16 = 0x8001;
pub const ADDR_POINT_CODE: u16 = 0x8002;
pub const ADDR_SSN: u16 = 0x8003;
pub const ADDR_IPV4: u16 = 0x8004;
pub const ADDR_HOSTNAME: u16 = 0x8005;
pub const ADDR_IPV6: u16 = 0x8006;

/// Routing indicators of an address (RFC 3868 §3.10.2).
pub const RI_GT: u16 = 1;
pub const RI_SSN_PC: u16 = 2;
pub const RI_HOSTNAME: u16 = 3;
pub const RI_SSN_IP: u16 = 4;

fn content(what: &'static str) -> DecodeError {
    DecodeError::Content { layer: Layer::Sua, what }
}

/// One SUA message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuaSlice<'a> {
    data: &'a [u8],
    noncanonical: Option<&'static str>,
}

impl<'a> SuaSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        let f = xua::message(Layer::Sua, data, HEADER_LEN, None)?;
        let many = xua::walk_params(Layer::Sua, f.data)?;
        Ok(SuaSlice { data: f.data, noncanonical: f.noncanonical.or(many) })
    }

    /// What is not canonical about the framing (length against the carrier, too many
    /// parameters), as a [`DecodeError::NonCanonical`].
    pub fn noncanonical(&self) -> Option<DecodeError> {
        self.noncanonical.map(|what| DecodeError::NonCanonical { layer: Layer::Sua, what })
    }

    pub fn message_class(&self) -> u8 {
        self.data.get(2).copied().unwrap_or(0)
    }
    pub fn message_type(&self) -> u8 {
        self.data.get(3).copied().unwrap_or(0)
    }
    pub fn params(&self) -> ParamIter<'a> {
        ParamIter::new(self.data)
    }
    /// The first parameter with this tag.
    pub fn param(&self, tag: u16) -> Option<ParamSlice<'a>> {
        self.params().find(|p| p.tag() == tag)
    }
    pub fn routing_context(&self) -> Option<u32> {
        self.param(TAG_ROUTING_CONTEXT).and_then(|p| be32(p.value(), 0))
    }

    /// A connectionless message (CLDT or CLDR), checked: `None` for every other message; an
    /// error when a mandatory parameter is missing or broken.
    pub fn connectionless(&self) -> Result<Option<Connectionless<'a>>, DecodeError> {
        if self.message_class() != CLASS_CL || !matches!(self.message_type(), TYPE_CLDT | TYPE_CLDR) {
            return Ok(None);
        }
        let mut repeated = None;
        let mut one = |tag| {
            let (p, rep) = xua::unique_param(self.params(), tag);
            repeated = repeated.or(rep);
            p
        };
        let called =
            one(TAG_DESTINATION_ADDRESS).ok_or(content("connectionless message without Destination Address"))?;
        let calling = one(TAG_SOURCE_ADDRESS).ok_or(content("connectionless message without Source Address"))?;
        let data = one(TAG_DATA).ok_or(content("connectionless message without Data"))?;
        let protocol_class = one(TAG_PROTOCOL_CLASS);
        let cause = one(TAG_SCCP_CAUSE);
        let segmentation = one(TAG_SEGMENTATION);
        if self.message_type() == TYPE_CLDT && protocol_class.is_none() {
            return Err(content("CLDT without Protocol Class"));
        }
        let segmentation = match segmentation {
            None => None,
            Some(p) => Some(segmentation_of(p.value()).ok_or(content("Segmentation parameter is not 4 bytes"))?),
        };
        Ok(Some(Connectionless {
            is_response: self.message_type() == TYPE_CLDR,
            called: SuaAddress::from_slice(called.value())?,
            calling: SuaAddress::from_slice(calling.value())?,
            protocol_class: protocol_class.and_then(|p| p.value().get(3).copied()),
            return_cause: cause.and_then(|p| p.value().get(3).copied()),
            segmentation,
            data: data.value(),
            noncanonical: repeated,
        }))
    }
}

/// SUA's Segmentation parameter: first bit and remaining segments in the first octet, then a
/// 24-bit segmentation reference; the same meaning as SCCP's (Q.713 §3.17).
fn segmentation_of(v: &[u8]) -> Option<Segmentation> {
    let &[b, r0, r1, r2] = v else { return None };
    Some(Segmentation {
        first: b & 0x80 != 0,
        class1: false,
        remaining: b & 0x7f,
        local_ref: u32::from_be_bytes([0, r0, r1, r2]),
    })
}

/// A CLDT or CLDR, its mandatory parameters checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connectionless<'a> {
    pub is_response: bool,
    pub called: SuaAddress,
    pub calling: SuaAddress,
    /// The Protocol Class parameter's octet: class in bits 0-1, return on error in bit 7 (the
    /// same layout as SCCP's protocol class octet).
    pub protocol_class: Option<u8>,
    /// The SCCP Cause value of a CLDR.
    pub return_cause: Option<u8>,
    pub segmentation: Option<Segmentation>,
    /// The SCCP user data (TCAP, for MAP).
    pub data: &'a [u8],
    /// A mandatory parameter that appears twice.
    pub noncanonical: Option<&'static str>,
}

/// A Source or Destination Address parameter, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SuaAddress {
    /// As sent: 1 route on GT, 2 on SSN + PC, 3 on hostname, 4 on SSN + IP address.
    pub routing_indicator: u16,
    pub address_indicator: u16,
    /// Point code: 32 bits on the wire, 14 (ITU) or 24 (ANSI, China) significant.
    pub point_code: Option<u32>,
    pub ssn: Option<u8>,
    pub global_title: Option<GlobalTitle>,
    /// A sub-parameter this decoder does not turn into a field (IP address, hostname).
    pub other: bool,
    /// The GT says more digits than it carries, or a sub-parameter appears twice.
    pub noncanonical: Option<&'static str>,
}

impl SuaAddress {
    pub fn from_slice(v: &[u8]) -> Result<SuaAddress, DecodeError> {
        DecodeError::need(Layer::Sua, 4, v.len())?;
        let mut a = SuaAddress {
            routing_indicator: be16(v, 0).unwrap_or(0),
            address_indicator: be16(v, 2).unwrap_or(0),
            ..Default::default()
        };
        if !(RI_GT..=RI_SSN_IP).contains(&a.routing_indicator) {
            return Err(content("address routing indicator is reserved"));
        }
        let mut off = 4;
        while off < v.len() {
            let len = be16(v, off + 2).ok_or(DecodeError::Len { layer: Layer::Sua, required: off + 4, len: v.len() })?
                as usize;
            if len < 4 {
                return Err(content("address sub-parameter length below 4"));
            }
            let p = v.get(off..off + len).ok_or(DecodeError::Len {
                layer: Layer::Sua,
                required: off + len,
                len: v.len(),
            })?;
            let val = &p[4..];
            let tag = be16(p, 0).unwrap_or(0);
            let seen = match tag {
                ADDR_GLOBAL_TITLE => a.global_title.replace(global_title(val, &mut a.noncanonical)?).is_some(),
                ADDR_POINT_CODE => {
                    a.point_code.replace(be32(val, 0).ok_or(content("point code is not 4 bytes"))?).is_some()
                }
                ADDR_SSN => a.ssn.replace(*val.get(3).ok_or(content("SSN is not 4 bytes"))?).is_some(),
                _ => {
                    a.other = true;
                    false
                }
            };
            if seen {
                a.noncanonical = Some("an address sub-parameter appears twice");
            }
            off = (off + len).next_multiple_of(4);
        }
        match a.routing_indicator {
            RI_GT if a.global_title.is_none() => return Err(content("route on GT without a global title")),
            RI_SSN_PC if a.point_code.is_none() && a.ssn.is_none() => {
                return Err(content("route on SSN + PC without either"));
            }
            _ => {}
        }
        Ok(a)
    }

    /// The routing indicator as SCCP has it (0 = route on GT, 1 = route on SSN), for
    /// [`super::PartyAddress`]: route on hostname or IP address is final routing, like SSN.
    pub fn sccp_routing_indicator(&self) -> u8 {
        u8::from(self.routing_indicator != RI_GT)
    }
}

/// Global Title sub-parameter: 3 reserved octets and the GTI; number of digits, translation
/// type, numbering plan, nature of address; the digits, BCD, low nibble first, padded.
fn global_title(v: &[u8], noncanonical: &mut Option<&'static str>) -> Result<GlobalTitle, DecodeError> {
    DecodeError::need(Layer::Sua, 8, v.len())?;
    let gti = v[3];
    if !(1..=4).contains(&gti) {
        return Err(content("global title indicator is not 1-4"));
    }
    let n = usize::from(v[4]);
    let bcd = &v[8..];
    let mut d = digits::bcd_global_title(bcd, Some(false));
    if n > d.len() {
        *noncanonical = Some("global title says more digits than it carries");
    }
    // Digits past the Number of Digits (an odd count's filler nibble, or whole octets the
    // sub-parameter's length still covers) must be fillers, 0 or 0xF (as SCCP's, Q.713
    // §3.4.2.3.1): a receiver that reads the octets rather than the count (tshark does) sees
    // another global title (found by the differential fuzzer). Zero octets there are padding
    // some senders count in the length.
    if d.bytes().skip(n).any(|c| c != b'0' && c != b'F') {
        *noncanonical = Some("global title has digits past its Number of Digits");
    }
    d.truncate(n);
    Ok(GlobalTitle {
        gti,
        translation_type: Some(v[5]),
        numbering_plan: Some(v[6]),
        encoding_scheme: Some(if n % 2 == 1 { 1 } else { 2 }),
        nature_of_address: Some(v[7]),
        digits: d,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tlv(tag: u16, v: &[u8]) -> Vec<u8> {
        let mut p = tag.to_be_bytes().to_vec();
        p.extend_from_slice(&((4 + v.len()) as u16).to_be_bytes());
        p.extend_from_slice(v);
        while !p.len().is_multiple_of(4) {
            p.push(0);
        }
        p
    }

    /// An address routed on GT (E.164 digits, TT 0, NP 1, NAI 4) with SSN and PC.
    pub(crate) fn gt_address(digits: &str, ssn: u8, pc: Option<u32>) -> Vec<u8> {
        let mut v = vec![0, RI_GT as u8, 0, 0x07];
        let mut gt = vec![0, 0, 0, 4, digits.len() as u8, 0, 1, 4];
        let ds: Vec<u8> = digits.bytes().map(|c| c - b'0').collect();
        for pair in ds.chunks(2) {
            gt.push(pair[0] | (pair.get(1).copied().unwrap_or(0) << 4));
        }
        v.extend(tlv(ADDR_GLOBAL_TITLE, &gt));
        if let Some(pc) = pc {
            v.extend(tlv(ADDR_POINT_CODE, &pc.to_be_bytes()));
        }
        v.extend(tlv(ADDR_SSN, &[0, 0, 0, ssn]));
        v
    }

    /// A CLDT carrying `data` from `calling` to `called`, routing context 1, class 0.
    pub(crate) fn cldt(called: &[u8], calling: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 0, CLASS_CL, TYPE_CLDT, 0, 0, 0, 0];
        m.extend(tlv(TAG_ROUTING_CONTEXT, &[0, 0, 0, 1]));
        m.extend(tlv(TAG_PROTOCOL_CLASS, &[0, 0, 0, 0]));
        m.extend(tlv(TAG_SOURCE_ADDRESS, calling));
        m.extend(tlv(TAG_DESTINATION_ADDRESS, called));
        m.extend(tlv(TAG_SEQUENCE_CONTROL, &[0, 0, 0, 0]));
        m.extend(tlv(TAG_DATA, data));
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn decodes_cldt() {
        let m = cldt(&gt_address("41792457333", 6, None), &gt_address("41799797800", 8, Some(0x123456)), b"\x62\x00");
        let s = SuaSlice::from_slice(&m).unwrap();
        assert_eq!((s.message_class(), s.message_type(), s.routing_context(), s.noncanonical()), (7, 1, Some(1), None));
        let c = s.connectionless().unwrap().unwrap();
        assert_eq!(c.data, b"\x62\x00");
        assert_eq!((c.protocol_class, c.is_response, c.segmentation), (Some(0), false, None));
        let g = c.called.global_title.as_ref().unwrap();
        assert_eq!(
            (g.gti, g.digits.as_str(), g.numbering_plan, g.nature_of_address),
            (4, "41792457333", Some(1), Some(4))
        );
        assert_eq!((c.called.ssn, c.called.point_code, c.called.sccp_routing_indicator()), (Some(6), None, 0));
        assert_eq!((c.calling.ssn, c.calling.point_code), (Some(8), Some(0x123456)));
        assert_eq!(c.calling.global_title.unwrap().digits, "41799797800");
        for n in 0..m.len() {
            assert!(SuaSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn other_messages_are_not_connectionless() {
        let aspup = [1, 0, CLASS_ASPSM, 1, 0, 0, 0, 8];
        assert_eq!(SuaSlice::from_slice(&aspup).unwrap().connectionless(), Ok(None));
        let codt = [1, 0, CLASS_CO, 8, 0, 0, 0, 8];
        assert_eq!(SuaSlice::from_slice(&codt).unwrap().connectionless(), Ok(None));
    }

    #[test]
    fn missing_and_broken_parameters() {
        let called = gt_address("4179", 6, None);
        let calling = gt_address("4179", 8, None);
        let good = cldt(&called, &calling, b"x");
        // drop each mandatory parameter in turn
        for tag in [TAG_DESTINATION_ADDRESS, TAG_SOURCE_ADDRESS, TAG_DATA, TAG_PROTOCOL_CLASS] {
            let s = SuaSlice::from_slice(&good).unwrap();
            let mut m = good[..8].to_vec();
            for p in s.params().filter(|p| p.tag() != tag) {
                m.extend(tlv(p.tag(), p.value()));
            }
            let len = m.len() as u32;
            m[4..8].copy_from_slice(&len.to_be_bytes());
            let e = SuaSlice::from_slice(&m).unwrap().connectionless().unwrap_err();
            assert!(matches!(e, DecodeError::Content { layer: Layer::Sua, .. }), "{tag:#x}: {e}");
        }
        // reserved routing indicator, GT route without GT, bad GTI, short SSN, short sub-parameter
        assert!(SuaAddress::from_slice(&[0, 0, 0, 7]).is_err());
        assert!(SuaAddress::from_slice(&[0, 5, 0, 7]).is_err());
        assert!(SuaAddress::from_slice(&[0, 1, 0, 7]).is_err());
        assert!(SuaAddress::from_slice(&[0, 2, 0, 7]).is_err());
        let mut bad_gti = vec![0, 1, 0, 7];
        bad_gti.extend(tlv(ADDR_GLOBAL_TITLE, &[0, 0, 0, 9, 2, 0, 1, 4, 0x21]));
        assert!(SuaAddress::from_slice(&bad_gti).is_err());
        let mut short_ssn = vec![0, 2, 0, 7];
        short_ssn.extend(tlv(ADDR_SSN, &[6]));
        assert!(SuaAddress::from_slice(&short_ssn).is_err());
        assert!(matches!(SuaAddress::from_slice(&[0, 2, 0, 7, 0x80, 0x03, 0, 2]), Err(DecodeError::Content { .. })));
        assert!(matches!(SuaAddress::from_slice(&[0, 2, 0, 7, 0x80, 0x03, 0, 9]), Err(DecodeError::Len { .. })));
        assert!(matches!(SuaAddress::from_slice(&[0, 2, 0]), Err(DecodeError::Len { .. })));
        // a GT that claims more digits than it has: decoded, reported
        let mut long = vec![0, 1, 0, 7];
        long.extend(tlv(ADDR_GLOBAL_TITLE, &[0, 0, 0, 4, 9, 0, 1, 4, 0x21]));
        let a = SuaAddress::from_slice(&long).unwrap();
        assert_eq!((a.global_title.unwrap().digits.as_str(), a.noncanonical.is_some()), ("12", true));
        // digits past the count: flagged, unless they are zero (padding)
        for (n, bcd, digits, flagged) in [
            (2u8, &[0x21u8, 0x43][..], "12", true),
            (3, &[0x21, 0x53], "123", true),
            (3, &[0x21, 0x03], "123", false),
            (2, &[0x21, 0x00], "12", false),
            (3, &[0x21, 0xf3], "123", false),
            (0, &[0x21], "", true),
        ] {
            let mut v = vec![0, 1, 0, 7];
            let mut gt = vec![0, 0, 0, 4, n, 0, 1, 4];
            gt.extend_from_slice(bcd);
            v.extend(tlv(ADDR_GLOBAL_TITLE, &gt));
            let a = SuaAddress::from_slice(&v).unwrap();
            assert_eq!(
                (a.global_title.unwrap().digits.as_str(), a.noncanonical.is_some()),
                (digits, flagged),
                "{n} {bcd:x?}"
            );
        }
        // a repeated SSN sub-parameter
        let mut two = vec![0, 2, 0, 7];
        two.extend(tlv(ADDR_SSN, &[0, 0, 0, 6]));
        two.extend(tlv(ADDR_SSN, &[0, 0, 0, 1]));
        let a = SuaAddress::from_slice(&two).unwrap();
        assert_eq!((a.ssn, a.noncanonical.is_some()), (Some(1), true));
        // a bad segmentation parameter
        let mut m = good.clone();
        m.extend(tlv(TAG_SEGMENTATION, &[0x80]));
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        assert!(SuaSlice::from_slice(&m).unwrap().connectionless().is_err());
        // a repeated Data parameter
        let mut m = good.clone();
        m.extend(tlv(TAG_DATA, b"y"));
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        let c = SuaSlice::from_slice(&m).unwrap().connectionless().unwrap().unwrap();
        assert_eq!((c.data, c.noncanonical.is_some()), (&b"x"[..], true));
    }
}
