//! M3UA (RFC 4666): common header, parameters (tag-length-value, padded to 4), and the
//! Protocol Data parameter of a DATA message (OPC, DPC, SI, NI, MP, SLS, user data).
//!
//! [`M3uaSlice::from_slice`] checks the header and walks the parameters once (all of them;
//! more than [`MAX_PARAMS`] is reported, not refused), so [`M3uaSlice::params`] cannot fail.

use crate::bytes::be32;
use crate::{DecodeError, Layer};

pub use super::xua::{HEADER_LEN, MAX_PARAMS, PARAM_HEADER_LEN, ParamIter, ParamSlice, VERSION};

/// Message classes.
pub const CLASS_MGMT: u8 = 0;
pub const CLASS_TRANSFER: u8 = 1;
pub const CLASS_SSNM: u8 = 2;
pub const CLASS_ASPSM: u8 = 3;
pub const CLASS_ASPTM: u8 = 4;
pub const CLASS_RKM: u8 = 9;
/// Transfer class message type DATA.
pub const TYPE_DATA: u8 = 1;

/// Parameter tags.
pub const TAG_NETWORK_APPEARANCE: u16 = 0x0200;
pub const TAG_ROUTING_CONTEXT: u16 = 0x0006;
pub const TAG_PROTOCOL_DATA: u16 = 0x0210;
pub const TAG_CORRELATION_ID: u16 = 0x0013;

/// Protocol Data: OPC, DPC, SI, NI, MP, SLS before the user data.
pub const PROTOCOL_DATA_HEADER_LEN: usize = 12;

/// One M3UA message, read as the receiver reads it (see [`super::xua`]): a Message Length
/// shorter than the user message does not shorten it, it is reported by
/// [`M3uaSlice::noncanonical`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct M3uaSlice<'a> {
    data: &'a [u8],
    noncanonical: Option<&'static str>,
}

impl<'a> M3uaSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        let f = super::xua::message(Layer::M3ua, data, HEADER_LEN, None)?;
        let many = super::xua::walk_params(Layer::M3ua, f.data)?;
        Ok(M3uaSlice { data: f.data, noncanonical: f.noncanonical.or(many) })
    }

    /// What is not canonical about this message's framing (length against the carrier, too
    /// many parameters), as a [`DecodeError::NonCanonical`]; `None` when it is clean.
    pub fn noncanonical(&self) -> Option<DecodeError> {
        self.noncanonical.map(|what| DecodeError::NonCanonical { layer: Layer::M3ua, what })
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
    pub fn slice(&self) -> &'a [u8] {
        self.data
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

    pub fn network_appearance(&self) -> Option<u32> {
        self.param(TAG_NETWORK_APPEARANCE).and_then(|p| be32(p.value(), 0))
    }

    /// The Protocol Data of a Transfer/DATA message. `None` for other messages; an error if a
    /// DATA message lacks it or it is too short. (A second Protocol Data is reported by
    /// [`M3uaSlice::repeated_protocol_data`]; this is the first, the one libosmo-sigtran uses.)
    pub fn protocol_data(&self) -> Result<Option<ProtocolDataSlice<'a>>, DecodeError> {
        if self.message_class() != CLASS_TRANSFER || self.message_type() != TYPE_DATA {
            return Ok(None);
        }
        let p = self
            .param(TAG_PROTOCOL_DATA)
            .ok_or(DecodeError::Content { layer: Layer::M3ua, what: "DATA without Protocol Data" })?;
        ProtocolDataSlice::from_slice(p.value()).map(Some)
    }

    /// A DATA message with two Protocol Data parameters: receivers disagree on which one
    /// counts, so it is non-canonical.
    pub fn repeated_protocol_data(&self) -> Option<DecodeError> {
        super::xua::unique_param(self.params(), TAG_PROTOCOL_DATA)
            .1
            .map(|what| DecodeError::NonCanonical { layer: Layer::M3ua, what })
    }
}

/// The Protocol Data parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolDataSlice<'a> {
    data: &'a [u8],
}

impl<'a> ProtocolDataSlice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        DecodeError::need(Layer::M3ua, PROTOCOL_DATA_HEADER_LEN, data.len())?;
        Ok(ProtocolDataSlice { data })
    }

    pub fn opc(&self) -> u32 {
        be32(self.data, 0).unwrap_or(0)
    }
    pub fn dpc(&self) -> u32 {
        be32(self.data, 4).unwrap_or(0)
    }
    /// Service indicator (3 = SCCP).
    pub fn si(&self) -> u8 {
        self.data.get(8).copied().unwrap_or(0)
    }
    pub fn ni(&self) -> u8 {
        self.data.get(9).copied().unwrap_or(0)
    }
    pub fn mp(&self) -> u8 {
        self.data.get(10).copied().unwrap_or(0)
    }
    pub fn sls(&self) -> u8 {
        self.data.get(11).copied().unwrap_or(0)
    }
    pub fn user_data(&self) -> &'a [u8] {
        self.data.get(PROTOCOL_DATA_HEADER_LEN..).unwrap_or(&[])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An M3UA DATA message with a routing context and Protocol Data.
    pub(crate) fn data_message(opc: u32, dpc: u32, si: u8, user: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 0, CLASS_TRANSFER, TYPE_DATA, 0, 0, 0, 0];
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x08, 0, 0, 0, 7]);
        m.extend_from_slice(&TAG_PROTOCOL_DATA.to_be_bytes());
        m.extend_from_slice(&((PARAM_HEADER_LEN + PROTOCOL_DATA_HEADER_LEN + user.len()) as u16).to_be_bytes());
        m.extend_from_slice(&opc.to_be_bytes());
        m.extend_from_slice(&dpc.to_be_bytes());
        m.extend_from_slice(&[si, 2, 0, 5]);
        m.extend_from_slice(user);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn decodes_data() {
        let m = data_message(75874, 75836, 3, b"\x09\x00abc");
        let s = M3uaSlice::from_slice(&m).unwrap();
        assert_eq!((s.version(), s.message_class(), s.message_type()), (1, 1, 1));
        assert_eq!(s.routing_context(), Some(7));
        assert_eq!(s.params().count(), 2);
        let pd = s.protocol_data().unwrap().unwrap();
        assert_eq!((pd.opc(), pd.dpc(), pd.si(), pd.ni(), pd.mp(), pd.sls()), (75874, 75836, 3, 2, 0, 5));
        assert_eq!(pd.user_data(), b"\x09\x00abc");
    }

    #[test]
    fn truncations_and_malformed() {
        let m = data_message(1, 2, 3, b"\x09\x00abc");
        for n in 0..m.len() {
            assert!(M3uaSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
        let mut bad = m.clone();
        bad[0] = 2;
        assert!(matches!(M3uaSlice::from_slice(&bad), Err(DecodeError::Content { .. })));
        // a DATA message without Protocol Data
        let mut nopd = vec![1, 0, 1, 1, 0, 0, 0, 16, 0x00, 0x06, 0x00, 0x08, 0, 0, 0, 7];
        assert!(M3uaSlice::from_slice(&nopd).unwrap().protocol_data().is_err());
        nopd[2] = CLASS_ASPSM;
        assert_eq!(M3uaSlice::from_slice(&nopd).unwrap().protocol_data(), Ok(None));
        // parameter length 2
        let short = [1, 0, 1, 1, 0, 0, 0, 12, 0x02, 0x10, 0x00, 0x02];
        assert!(matches!(M3uaSlice::from_slice(&short), Err(DecodeError::Content { .. })));
        // Protocol Data too short for its fixed part
        let tiny = [1, 0, 1, 1, 0, 0, 0, 16, 0x02, 0x10, 0x00, 0x08, 0, 0, 0, 1];
        assert!(matches!(M3uaSlice::from_slice(&tiny).unwrap().protocol_data(), Err(DecodeError::Len { .. })));
    }

    #[test]
    fn many_params_are_walked_not_refused() {
        // Protocol Data behind 33 filler parameters: the receiver finds it, so must we (H4).
        let mut m = vec![1, 0, CLASS_TRANSFER, TYPE_DATA, 0, 0, 0, 0];
        for _ in 0..=MAX_PARAMS {
            m.extend_from_slice(&[0x7f, 0x7f, 0, 4]);
        }
        let inner = data_message(1, 2, 3, b"abcd");
        m.extend_from_slice(&inner[HEADER_LEN..]);
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        let s = M3uaSlice::from_slice(&m).unwrap();
        assert!(matches!(s.noncanonical(), Some(DecodeError::NonCanonical { .. })));
        assert_eq!(s.protocol_data().unwrap().unwrap().user_data(), b"abcd");
    }

    #[test]
    fn understated_length_is_noncanonical_not_shorter() {
        // review H3 recipe 1: Message Length 8 on an ATI; OsmoSTP parses to the end
        let mut m = data_message(1, 2, 3, b"abcd");
        assert_eq!(M3uaSlice::from_slice(&m).unwrap().noncanonical(), None);
        m[4..8].copy_from_slice(&8u32.to_be_bytes());
        let s = M3uaSlice::from_slice(&m).unwrap();
        assert!(matches!(s.noncanonical(), Some(DecodeError::NonCanonical { layer: Layer::M3ua, .. })));
        assert_eq!(s.protocol_data().unwrap().unwrap().user_data(), b"abcd");
    }

    #[test]
    fn repeated_protocol_data_reported() {
        let m = data_message(1, 2, 3, b"abcd");
        assert_eq!(M3uaSlice::from_slice(&m).unwrap().repeated_protocol_data(), None);
        let mut two = m.clone();
        two.extend_from_slice(&m[16..]);
        let len = two.len() as u32;
        two[4..8].copy_from_slice(&len.to_be_bytes());
        let s = M3uaSlice::from_slice(&two).unwrap();
        assert!(matches!(s.repeated_protocol_data(), Some(DecodeError::NonCanonical { .. })));
    }
}
