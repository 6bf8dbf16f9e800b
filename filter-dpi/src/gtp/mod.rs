//! GTP: GTPv2-C (TS 29.274), GTPv1-C (TS 29.060) and GTP-U (TS 29.281).
//!
//! - [`v2::GtpV2Slice`], [`v1::GtpV1Slice`]: headers validated once, IEs read lazily;
//! - [`v2::walk`], [`v1::V1IeIter`]: bounded IE walks;
//! - [`decode_c`] / [`decode_c_lax`]: one [`GtpcMessage`] for either control-plane version;
//! - [`decode_u`] / [`decode_u_lax`]: one [`GtpuMessage`] with the inner IP header and the
//!   GTP-in-GTP flag;
//! - [`names`]: message type names; [`ie`]: IE values both versions share. IMSI/MSISDN digits
//!   and PLMN ids are in [`crate::digits`] (Diameter and MAP read them too).

pub mod ie;
pub mod names;
pub mod u;
pub mod v1;
pub mod v2;

pub use u::InnerIp;
pub use v1::GtpV1Slice;
pub use v2::{Fteid, GtpV2Slice};

use crate::digits::Plmn;
use crate::{DecodeError, Layer};

/// A GTP-C message of either version with every field a rule needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtpcMessage {
    /// 1 or 2.
    pub version: u8,
    pub message_type: u8,
    /// Length field as the header says it.
    pub length: u16,
    /// GTPv2: present when the T flag is set; GTPv1: always.
    pub teid: Option<u32>,
    /// GTPv2: 24 bits, always; GTPv1: when the S flag is set.
    pub sequence: Option<u32>,
    pub imsi: Option<String>,
    pub msisdn: Option<String>,
    /// GTPv2 Serving Network (83).
    pub serving_network: Option<Plmn>,
    /// GTPv2 RAT Type (82) or GTPv1 RAT Type (151).
    pub rat_type: Option<u8>,
    /// GTPv2 Cause (2), top level: the value (16 request accepted, 17 partially accepted, …).
    pub cause: Option<u8>,
    /// GTPv2 F-TEIDs (87), top level and inside grouped IEs, in message order.
    pub fteids: Vec<Fteid>,
    pub apn: Option<String>,
    /// IEs seen, grouped members included.
    pub ie_count: usize,
    /// GTPv2: the message piggybacked after this one (P flag), decoded one level deep.
    pub piggybacked: Option<Box<GtpcMessage>>,
}

impl GtpcMessage {
    pub fn message_name(&self) -> Option<&'static str> {
        if self.version == 2 {
            names::v2_message_name(self.message_type)
        } else {
            names::v1_message_name(self.message_type)
        }
    }
    /// S3/S10/S16 (GTPv2) or inter-SGSN (GTPv1) mobility management message.
    pub fn is_mobility_management(&self) -> bool {
        if self.version == 2 {
            names::v2_is_mobility_management(self.message_type)
        } else {
            names::v1_is_mobility_management(self.message_type)
        }
    }
}

/// A lax decode: what was decoded, and the error that stopped it (None if nothing did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lax<T> {
    pub message: T,
    pub stop: Option<DecodeError>,
}

/// Decodes one GTP-C message (GTPv1-C or GTPv2-C, by the version bits). Any malformed IE or
/// field is an error.
pub fn decode_c(bytes: &[u8]) -> Result<GtpcMessage, DecodeError> {
    let lax = decode_c_lax(bytes)?;
    match lax.stop {
        None => Ok(lax.message),
        Some(e) => Err(e),
    }
}

/// Decodes what can be decoded: the header must be valid (else `Err`); a message cut short or a
/// malformed IE stops the decode and the fields found before it are kept.
pub fn decode_c_lax(bytes: &[u8]) -> Result<Lax<GtpcMessage>, DecodeError> {
    match bytes.first().map(|f| f >> 5) {
        Some(2) => decode_v2(bytes, true),
        Some(1) => {
            let (s, cut) = GtpV1Slice::from_slice_lax(bytes, Layer::GtpV1C)?;
            let f = v1::extract(&s);
            let message = GtpcMessage {
                version: 1,
                message_type: s.message_type(),
                length: s.length(),
                teid: Some(s.teid()),
                sequence: s.sequence().map(u32::from),
                imsi: f.imsi,
                msisdn: f.msisdn,
                rat_type: f.rat_type,
                apn: f.apn,
                ie_count: f.ie_count,
                ..GtpcMessage::default()
            };
            let trailing = trailing(Layer::GtpV1C, bytes.len() > s.slice().len());
            Ok(Lax { message, stop: first_error(f.stop, cut).or(trailing) })
        }
        Some(_) => Err(DecodeError::Content { layer: Layer::GtpV2C, what: "neither GTPv1-C nor GTPv2-C" }),
        None => Err(DecodeError::Len { layer: Layer::GtpV2C, required: v2::HEADER_LEN, len: 0 }),
    }
}

fn decode_v2(bytes: &[u8], follow_piggyback: bool) -> Result<Lax<GtpcMessage>, DecodeError> {
    let (s, cut) = GtpV2Slice::from_slice_lax(bytes)?;
    let f = v2::extract(&s);
    let mut stop = first_error(f.stop, cut);
    if !s.piggybacking() {
        stop = stop.or(trailing(Layer::GtpV2C, bytes.len() > s.slice().len()));
    }
    let piggybacked = match s.piggybacked() {
        Some(Ok(p)) if follow_piggyback => match decode_v2(p.slice(), false) {
            Ok(lax) => {
                stop = stop.or(lax.stop);
                Some(Box::new(lax.message))
            }
            Err(e) => {
                stop = stop.or(Some(e));
                None
            }
        },
        Some(Err(e)) if follow_piggyback => {
            stop = stop.or(Some(e));
            None
        }
        _ => None,
    };
    let message = GtpcMessage {
        version: 2,
        message_type: s.message_type(),
        length: s.length(),
        teid: s.teid(),
        sequence: Some(s.sequence()),
        imsi: f.imsi,
        msisdn: f.msisdn,
        serving_network: f.serving_network,
        rat_type: f.rat_type,
        cause: f.cause,
        fteids: f.fteids,
        apn: f.apn,
        ie_count: f.ie_count,
        piggybacked,
    };
    Ok(Lax { message, stop })
}

/// Bytes after the message in the datagram (GTPv2: without the P flag). The Message Length
/// understates its carrier: a receiver that parses IEs to the end of the datagram sees IEs the
/// length hides, so the message is malformed, not shorter (review H3).
fn trailing(layer: Layer, extra: bool) -> Option<DecodeError> {
    extra.then_some(DecodeError::NonCanonical { layer, what: "bytes after the message length in the datagram" })
}

/// A field error found inside the bytes there are is more telling than the truncation.
fn first_error(field: Option<DecodeError>, cut: Option<DecodeError>) -> Option<DecodeError> {
    match (field, cut) {
        (Some(e), _) if !matches!(e, DecodeError::Len { .. }) => Some(e),
        (_, Some(cut)) => Some(cut),
        (f, None) => f,
    }
}

/// A GTP-U message with every field a rule needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtpuMessage {
    pub message_type: u8,
    pub length: u16,
    pub teid: u32,
    pub sequence: Option<u16>,
    /// Extension header types, in order (at most [`v1::MAX_EXT_HEADERS`]).
    pub extension_headers: Vec<u8>,
    /// The inner IP header of a G-PDU (None for other messages and non-IP T-PDUs).
    pub inner: Option<InnerIp>,
    /// The inner packet is GTP itself (UDP to/from 2123 or 2152 with a plausible GTP header).
    pub gtp_in_gtp: bool,
}

/// Decodes one GTP-U message; the whole message must be there and a G-PDU's inner IP header must
/// be valid.
pub fn decode_u(bytes: &[u8]) -> Result<GtpuMessage, DecodeError> {
    let lax = decode_u_lax(bytes)?;
    match lax.stop {
        None => Ok(lax.message),
        Some(e) => Err(e),
    }
}

/// Like [`decode_u`], but a message cut short (a first IP fragment, a snap length) keeps its
/// header and as much of the inner packet as is there.
pub fn decode_u_lax(bytes: &[u8]) -> Result<Lax<GtpuMessage>, DecodeError> {
    let (s, cut) = GtpV1Slice::from_slice_lax(bytes, Layer::GtpU)?;
    let mut m = GtpuMessage {
        message_type: s.message_type(),
        length: s.length(),
        teid: s.teid(),
        sequence: s.sequence(),
        extension_headers: s.extension_headers().to_vec(),
        inner: None,
        gtp_in_gtp: false,
    };
    let mut stop = None;
    if m.message_type == u::MSG_G_PDU {
        let tpdu = s.payload();
        match InnerIp::parse(tpdu) {
            Ok(inner) => {
                m.inner = inner;
                if let Some(ip) = &m.inner {
                    m.gtp_in_gtp = u::inner_is_gtp(tpdu, ip, cut.is_none());
                }
            }
            Err(e) => stop = Some(e),
        }
    }
    Ok(Lax { message: m, stop: first_error(stop, cut) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_truncations(b: &[u8], decode: impl Fn(&[u8]) -> bool, lax: impl Fn(&[u8]) -> Option<bool>) {
        for n in 0..b.len() {
            assert!(!decode(&b[..n]), "strict decode of {n} of {} bytes succeeded", b.len());
            if let Some(complete) = lax(&b[..n]) {
                assert!(!complete, "lax decode of {n} bytes says complete");
            }
        }
        assert!(decode(b));
    }

    #[test]
    fn decode_c_v2() {
        let b = v2::tests::csr();
        let m = decode_c(&b).unwrap();
        assert_eq!((m.version, m.message_type, m.teid, m.sequence), (2, 32, Some(0), Some(0xa484)));
        assert_eq!(m.imsi.as_deref(), Some("222010100001140"));
        assert_eq!(m.apn.as_deref(), Some("oai.ipv4"));
        assert_eq!(m.message_name(), Some("Create Session Request"));
        assert!(!m.is_mobility_management());
        all_truncations(&b, |x| decode_c(x).is_ok(), |x| decode_c_lax(x).ok().map(|l| l.stop.is_none()));
    }

    #[test]
    fn decode_c_v1() {
        let b = v1::tests::create_pdp();
        let m = decode_c(&b).unwrap();
        assert_eq!((m.version, m.message_type, m.teid, m.sequence), (1, 16, Some(0), Some(0x1234)));
        assert_eq!(m.imsi.as_deref(), Some("222010100001140"));
        assert_eq!(m.message_name(), Some("Create PDP Context Request"));
        all_truncations(&b, |x| decode_c(x).is_ok(), |x| decode_c_lax(x).ok().map(|l| l.stop.is_none()));
    }

    #[test]
    fn decode_c_rejects_other_versions() {
        assert!(matches!(decode_c(&[0x00; 12]), Err(DecodeError::Content { .. })));
        assert!(matches!(decode_c(&[0x60; 12]), Err(DecodeError::Content { .. })));
        assert!(matches!(decode_c(&[]), Err(DecodeError::Len { .. })));
    }

    #[test]
    fn decode_c_piggybacked() {
        let mut b = v2::encode(33, Some(1), 1, &[v2::encode_ie(v2::ie::CAUSE, 0, &[16, 0])]);
        b[0] |= v2::FLAG_P;
        b.extend_from_slice(&v2::encode(96, Some(1), 2, &[v2::encode_ie(v2::ie::RECOVERY, 0, &[1])]));
        let m = decode_c(&b).unwrap();
        assert_eq!(m.piggybacked.as_ref().map(|p| p.message_type), Some(96));
        assert_eq!((m.cause, m.sequence, m.teid), (Some(16), Some(1), Some(1)));
        // A broken piggybacked message fails the strict decode and is absent in the lax one.
        let mut broken = b.clone();
        broken.truncate(b.len() - 2);
        assert!(decode_c(&broken).is_err());
        let lax = decode_c_lax(&broken).unwrap();
        assert!(lax.stop.is_some() && lax.message.piggybacked.is_none());
    }

    #[test]
    fn identities_are_instance_0() {
        let imsi = v2::encode_ie(v2::ie::IMSI, 0, &[0x00, 0x10, 0x10, 0x32, 0x54, 0xf6]);
        let other = v2::encode_ie(v2::ie::IMSI, 1, &[0x99, 0x99, 0x99, 0x99, 0x99, 0xf9]);
        let b = v2::encode(130, Some(1), 1, &[other.clone(), imsi]);
        assert_eq!(decode_c(&b).unwrap().imsi.as_deref(), Some("00010123456"));
        let b = v2::encode(130, Some(1), 1, &[other]);
        assert_eq!(decode_c(&b).unwrap().imsi, None);
    }

    #[test]
    fn understated_length_is_malformed() {
        let mut b = v2::encode(33, Some(1), 1, &[v2::encode_ie(v2::ie::CAUSE, 0, &[16, 0])]);
        assert_eq!(decode_c_lax(&b).unwrap().stop, None);
        b.extend_from_slice(&v2::encode_ie(v2::ie::RECOVERY, 0, &[1]));
        let lax = decode_c_lax(&b).unwrap();
        assert_eq!(lax.message.message_type, 33);
        assert!(matches!(lax.stop, Some(DecodeError::NonCanonical { layer: Layer::GtpV2C, .. })));
        assert!(decode_c(&b).is_err());
        let mut v1 = v1::tests::create_pdp();
        assert_eq!(decode_c_lax(&v1).unwrap().stop, None);
        v1.extend_from_slice(&[0x0e, 0x01]);
        assert!(matches!(
            decode_c_lax(&v1).unwrap().stop,
            Some(DecodeError::NonCanonical { layer: Layer::GtpV1C, .. })
        ));
    }

    fn gpdu(inner: &[u8]) -> Vec<u8> {
        v1::encode(0, u::MSG_G_PDU, 0xdead_beef, None, &[], inner)
    }

    #[test]
    fn decode_u_gpdu() {
        let inner = u::ipv4_udp([10, 45, 0, 2], [8, 8, 8, 8], 5000, 53, b"query");
        let b = gpdu(&inner);
        let m = decode_u(&b).unwrap();
        assert_eq!((m.message_type, m.teid), (255, 0xdead_beef));
        let ip = m.inner.unwrap();
        assert_eq!(ip.src.to_string(), "10.45.0.2");
        assert_eq!(ip.dst.to_string(), "8.8.8.8");
        assert_eq!(ip.udp_ports, Some((5000, 53)));
        assert!(!m.gtp_in_gtp);
        all_truncations(&b, |x| decode_u(x).is_ok(), |x| decode_u_lax(x).ok().map(|l| l.stop.is_none()));
        // A first fragment: the header and inner addresses are kept.
        let lax = decode_u_lax(&b[..40]).unwrap();
        assert!(lax.stop.is_some());
        assert_eq!(lax.message.inner.map(|i| i.dst.to_string()).as_deref(), Some("8.8.8.8"));
    }

    #[test]
    fn decode_u_gtp_in_gtp() {
        let innermost = gpdu(&u::ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"x"));
        let b = gpdu(&u::ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 2152, 2152, &innermost));
        assert!(decode_u(&b).unwrap().gtp_in_gtp);
        let v2c = v2::encode(130, Some(0), 1, &[]);
        let b = gpdu(&u::ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 33000, 2123, &v2c));
        assert!(decode_u(&b).unwrap().gtp_in_gtp);
    }

    #[test]
    fn decode_u_echo_and_errors() {
        let b = v1::encode(v1::FLAG_S, u::MSG_ECHO_REQUEST, 0, Some((7, 0, 0)), &[], &[]);
        let m = decode_u(&b).unwrap();
        assert_eq!((m.message_type, m.sequence, m.inner), (1, Some(7), None));
        assert!(decode_u(&[0x48, 32, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Bad inner IPv4 header length.
        let b = gpdu(&[0x41; 20]);
        assert!(matches!(decode_u(&b), Err(DecodeError::Content { layer: Layer::Ip, .. })));
        assert!(decode_u_lax(&b).unwrap().stop.is_some());
    }
}
