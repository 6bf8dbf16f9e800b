//! M2PA (RFC 4165): common header, BSN/FSN, and the User Data message whose data is one
//! priority octet followed by an MTP3 message (see [`super::mtp3`]).

use crate::bytes::be32;
use crate::{DecodeError, Layer};

/// Common header (version, spare, class, type, length) plus BSN and FSN.
pub const HEADER_LEN: usize = 16;
pub const VERSION: u8 = 1;
/// Message class of M2PA messages.
pub const CLASS_M2PA: u8 = 11;
pub const TYPE_USER_DATA: u8 = 1;
pub const TYPE_LINK_STATUS: u8 = 2;

/// One M2PA message; a Message Length shorter than the user message does not shorten it (see
/// [`super::xua`]), it is reported by [`M2paSlice::noncanonical`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct M2paSlice<'a> {
    data: &'a [u8],
    noncanonical: Option<&'static str>,
}

impl<'a> M2paSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        let f = super::xua::message(Layer::M2pa, data, HEADER_LEN, Some((CLASS_M2PA, "message class is not 11")))?;
        Ok(M2paSlice { data: f.data, noncanonical: f.noncanonical })
    }

    /// The Message Length disagrees with the user message, as a [`DecodeError::NonCanonical`].
    pub fn noncanonical(&self) -> Option<DecodeError> {
        self.noncanonical.map(|what| DecodeError::NonCanonical { layer: Layer::M2pa, what })
    }

    pub fn version(&self) -> u8 {
        self.data.first().copied().unwrap_or(0)
    }
    pub fn message_class(&self) -> u8 {
        self.data.get(2).copied().unwrap_or(0)
    }
    pub fn message_type(&self) -> u8 {
        self.data.get(3).copied().unwrap_or(0)
    }
    pub fn length(&self) -> u32 {
        be32(self.data, 4).unwrap_or(0)
    }
    /// Backward sequence number (24 bits).
    pub fn bsn(&self) -> u32 {
        be32(self.data, 8).unwrap_or(0) & 0x00ff_ffff
    }
    /// Forward sequence number (24 bits).
    pub fn fsn(&self) -> u32 {
        be32(self.data, 12).unwrap_or(0) & 0x00ff_ffff
    }
    /// Bytes after BSN/FSN.
    pub fn body(&self) -> &'a [u8] {
        self.data.get(HEADER_LEN..).unwrap_or(&[])
    }
    /// Link Status state (1 = Alignment … 9 = Processor Recovered), for Link Status messages.
    pub fn link_status(&self) -> Option<u32> {
        if self.message_type() == TYPE_LINK_STATUS { be32(self.body(), 0) } else { None }
    }
    /// User Data priority octet (upper two bits used by national variants).
    pub fn priority(&self) -> Option<u8> {
        if self.message_type() == TYPE_USER_DATA { self.body().first().copied() } else { None }
    }
    /// The MTP3 message of a User Data message. `None` for other messages and for an empty
    /// User Data message (which M2PA sends to acknowledge).
    pub fn mtp3_payload(&self) -> Option<&'a [u8]> {
        if self.message_type() != TYPE_USER_DATA {
            return None;
        }
        self.body().get(1..).filter(|d| !d.is_empty())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn user_data(mtp3: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 0, CLASS_M2PA, TYPE_USER_DATA];
        m.extend_from_slice(&((HEADER_LEN + 1 + mtp3.len()) as u32).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0]);
        m.extend_from_slice(mtp3);
        m
    }

    #[test]
    fn decodes_user_data() {
        let m = user_data(b"\x83\x01\x02\x03\x04xyz");
        let s = M2paSlice::from_slice(&m).unwrap();
        assert_eq!((s.message_type(), s.bsn(), s.fsn(), s.priority()), (1, 1, 2, Some(0)));
        assert_eq!(s.mtp3_payload(), Some(&b"\x83\x01\x02\x03\x04xyz"[..]));
        for n in 0..m.len() {
            assert!(M2paSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
        // empty user data (ack) and link status
        let ack = [1, 0, 11, 1, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(M2paSlice::from_slice(&ack).unwrap().mtp3_payload(), None);
        let ls = [1, 0, 11, 2, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4];
        let ls = M2paSlice::from_slice(&ls).unwrap();
        assert_eq!((ls.link_status(), ls.mtp3_payload()), (Some(4), None));
        let mut bad = m.clone();
        bad[2] = 1;
        assert!(matches!(M2paSlice::from_slice(&bad), Err(DecodeError::Content { .. })));
    }
}
