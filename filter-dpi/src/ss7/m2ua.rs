//! M2UA, the MTP2 User Adaptation layer (RFC 3331): MTP3 messages backhauled over SCTP. A MAUP
//! DATA message carries one MTP3 message (SIO, routing label, SCCP...) in its Protocol Data 1
//! parameter, or, in the Japanese TTC variant, a priority octet and the MTP3 message in
//! Protocol Data 2 (RFC 3331 §3.3.1.1). Below that, the same MTP3 → SCCP → TCAP decoding as
//! M2PA.
//!
//! Framing as the receiver reads it (see [`super::xua`]).

use crate::bytes::be32;
use crate::{DecodeError, Layer};

use super::xua::{self, ParamIter, ParamSlice};

pub use super::xua::HEADER_LEN;

/// Message classes (RFC 3331 §3.1.3).
pub const CLASS_MGMT: u8 = 0;
pub const CLASS_ASPSM: u8 = 3;
pub const CLASS_ASPTM: u8 = 4;
/// MTP2 User Adaptation messages (DATA, establish, release, state, retrieval...).
pub const CLASS_MAUP: u8 = 6;
/// Interface Identifier Management.
pub const CLASS_IIM: u8 = 10;

/// MAUP message type DATA.
pub const TYPE_DATA: u8 = 1;

/// Parameter tags.
pub const TAG_INTERFACE_ID_INT: u16 = 0x0001;
pub const TAG_INTERFACE_ID_TEXT: u16 = 0x0003;
pub const TAG_CORRELATION_ID: u16 = 0x0013;
pub const TAG_PROTOCOL_DATA_1: u16 = 0x0300;
pub const TAG_PROTOCOL_DATA_2: u16 = 0x0301;

/// One M2UA message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct M2uaSlice<'a> {
    data: &'a [u8],
    noncanonical: Option<&'static str>,
}

impl<'a> M2uaSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        let f = xua::message(Layer::M2ua, data, HEADER_LEN, None)?;
        let many = xua::walk_params(Layer::M2ua, f.data)?;
        Ok(M2uaSlice { data: f.data, noncanonical: f.noncanonical.or(many) })
    }

    /// What is not canonical about the framing (length against the carrier, too many
    /// parameters, two Protocol Data parameters), as a [`DecodeError::NonCanonical`].
    pub fn noncanonical(&self) -> Option<DecodeError> {
        let pd = || {
            let (p1, r1) = xua::unique_param(self.params(), TAG_PROTOCOL_DATA_1);
            let (p2, r2) = xua::unique_param(self.params(), TAG_PROTOCOL_DATA_2);
            r1.or(r2).or((p1.is_some() && p2.is_some()).then_some("both Protocol Data 1 and 2"))
        };
        self.noncanonical.or_else(pd).map(|what| DecodeError::NonCanonical { layer: Layer::M2ua, what })
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
    /// The integer interface identifier, if the message has one.
    pub fn interface_id(&self) -> Option<u32> {
        self.param(TAG_INTERFACE_ID_INT).and_then(|p| be32(p.value(), 0))
    }

    /// The MTP3 message of a DATA message: `None` for other messages; an error when a DATA
    /// message has no Protocol Data, or an empty one. Protocol Data 1 is taken first (the one
    /// every non-TTC stack sends); from Protocol Data 2 the priority octet is skipped.
    pub fn mtp3_payload(&self) -> Result<Option<&'a [u8]>, DecodeError> {
        if self.message_class() != CLASS_MAUP || self.message_type() != TYPE_DATA {
            return Ok(None);
        }
        let d = match (self.param(TAG_PROTOCOL_DATA_1), self.param(TAG_PROTOCOL_DATA_2)) {
            (Some(p), _) => p.value(),
            (None, Some(p)) => p.value().get(1..).unwrap_or(&[]),
            (None, None) => {
                return Err(DecodeError::Content { layer: Layer::M2ua, what: "DATA without Protocol Data" });
            }
        };
        if d.is_empty() {
            return Err(DecodeError::Content { layer: Layer::M2ua, what: "DATA with empty Protocol Data" });
        }
        Ok(Some(d))
    }
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

    /// A MAUP DATA message on interface 7 carrying `mtp3` as Protocol Data 1.
    pub(crate) fn data(mtp3: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 0, CLASS_MAUP, TYPE_DATA, 0, 0, 0, 0];
        m.extend(tlv(TAG_INTERFACE_ID_INT, &[0, 0, 0, 7]));
        m.extend(tlv(TAG_PROTOCOL_DATA_1, mtp3));
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn decodes_data() {
        let m = data(b"\x83\x01\x02\x03\x04xyz");
        let s = M2uaSlice::from_slice(&m).unwrap();
        assert_eq!((s.message_class(), s.message_type(), s.interface_id()), (6, 1, Some(7)));
        assert_eq!(s.mtp3_payload(), Ok(Some(&b"\x83\x01\x02\x03\x04xyz"[..])));
        assert_eq!(s.noncanonical(), None);
        for n in 0..m.len() {
            assert!(M2uaSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn protocol_data_2_and_errors() {
        let mut m = vec![1, 0, CLASS_MAUP, TYPE_DATA, 0, 0, 0, 0];
        m.extend(tlv(TAG_PROTOCOL_DATA_2, b"\x01\x83abcd"));
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        assert_eq!(M2uaSlice::from_slice(&m).unwrap().mtp3_payload(), Ok(Some(&b"\x83abcd"[..])));
        // both: reported, Protocol Data 1 wins
        let mut both = data(b"\x83zz");
        both.extend(tlv(TAG_PROTOCOL_DATA_2, b"\x01\x83abcd"));
        let len = both.len() as u32;
        both[4..8].copy_from_slice(&len.to_be_bytes());
        let s = M2uaSlice::from_slice(&both).unwrap();
        assert_eq!(s.mtp3_payload(), Ok(Some(&b"\x83zz"[..])));
        assert!(matches!(s.noncanonical(), Some(DecodeError::NonCanonical { layer: Layer::M2ua, .. })));
        // DATA without Protocol Data, with an empty one; a non-DATA message
        let none = [1, 0, CLASS_MAUP, TYPE_DATA, 0, 0, 0, 16, 0, 1, 0, 8, 0, 0, 0, 7];
        assert!(matches!(M2uaSlice::from_slice(&none).unwrap().mtp3_payload(), Err(DecodeError::Content { .. })));
        let empty = [1, 0, CLASS_MAUP, TYPE_DATA, 0, 0, 0, 12, 3, 0, 0, 4];
        assert!(matches!(M2uaSlice::from_slice(&empty).unwrap().mtp3_payload(), Err(DecodeError::Content { .. })));
        let est = [1, 0, CLASS_MAUP, 2, 0, 0, 0, 16, 0, 1, 0, 8, 0, 0, 0, 7];
        assert_eq!(M2uaSlice::from_slice(&est).unwrap().mtp3_payload(), Ok(None));
        // understated length
        let mut short = data(b"\x83\x01\x02\x03\x04xyz");
        short[7] = 8;
        let s = M2uaSlice::from_slice(&short).unwrap();
        assert!(s.noncanonical().is_some());
        assert!(s.mtp3_payload().unwrap().is_some());
    }
}
