//! The SS7 stack over SIGTRAN, one module per layer, and one call from an SCTP user message to
//! every field a rule needs: M3UA (PPID 3) or M2PA (PPID 5) → MTP3 → SCCP → TCAP → MAP.
//!
//! - [`m3ua`], [`m2pa`], [`mtp3`], [`sccp`], [`tcap`], [`map`]: the layers' decoders;
//! - [`ops`]: the MAP operation codes, named once;
//! - [`decode`], [`Decoder`]: the whole stack (this module; `dpi::sigtran` before).
//!
//! Lax, like etherparse's `LaxSlicedPacket`: only a broken or unsupported first layer is an
//! `Err`; past it, [`SigtranMessage`] keeps what was decoded and [`SigtranMessage::stopped`]
//! says where and why decoding stopped (an error, or a payload that is not SCCP/TCAP, or a
//! segment waiting for the rest of its message).
//!
//! [`decode`] is stateless (a segmented XUDT stops at SCCP); [`Decoder`] adds the SCCP segment
//! reassembler so the last segment yields the whole TCAP message.

pub mod m2pa;
pub mod m3ua;
pub mod map;
pub mod map_args;
pub mod mtp3;
pub mod ops;
pub mod sccp;
pub mod tcap;

use map::MapInfo;
use sccp::{GlobalTitle, SccpSlice, SegmentKey, SegmentReassembler, Segmentation};
use tcap::{Code, ComponentType, MessageType, TcapSlice};

use crate::sctp::{PPID_M2PA, PPID_M3UA};
use crate::{DecodeError, Layer};

/// The common message header of the SIGTRAN adaptation layers (RFC 4666 §3.1; M2PA has the
/// same, RFC 4165 §2.1): version 1, spare, message class, message type, and a 32-bit length that
/// counts the header. Checks that `header_len` bytes are there, the version, the class when one is
/// required (with the error to give otherwise), and the length; returns the message cut to its
/// length (bytes after it, e.g. SCTP padding, are not part of it).
fn common_header<'a>(
    layer: Layer,
    data: &'a [u8],
    header_len: usize,
    class: Option<(u8, &'static str)>,
) -> Result<&'a [u8], DecodeError> {
    DecodeError::need(layer, header_len, data.len())?;
    if data.first() != Some(&m3ua::VERSION) {
        return Err(DecodeError::Content { layer, what: "version is not 1" });
    }
    if let Some((class, what)) = class
        && data.get(2) != Some(&class)
    {
        return Err(DecodeError::Content { layer, what });
    }
    let len = crate::bytes::be32(data, 4).unwrap_or(0) as usize;
    if len < header_len {
        return Err(DecodeError::Content { layer, what: "message length below the header" });
    }
    data.get(..len).ok_or(DecodeError::Len { layer, required: len, len: data.len() })
}

/// Why decoding did not reach MAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// A layer's bytes were broken (or over a cap).
    Error(DecodeError),
    /// The layer is fine but carries nothing decoded further (e.g. M3UA management, MTP3
    /// network management, SCCP management, a non-TCAP SCCP user).
    NotCarried { layer: Layer, what: &'static str },
    /// An SCCP segment that does not complete its message yet.
    Segment(Segmentation),
}

impl Stopped {
    pub fn layer(&self) -> Layer {
        match self {
            Stopped::Error(e) => e.layer(),
            Stopped::NotCarried { layer, .. } => *layer,
            Stopped::Segment(_) => Layer::Sccp,
        }
    }
}

/// A called or calling party address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyAddress {
    /// 0 = route on global title, 1 = route on SSN.
    pub routing_indicator: u8,
    pub point_code: Option<u16>,
    pub ssn: Option<u8>,
    pub global_title: Option<GlobalTitle>,
}

impl PartyAddress {
    fn from(a: sccp::AddressSlice<'_>) -> Self {
        PartyAddress {
            routing_indicator: a.routing_indicator(),
            point_code: a.point_code(),
            ssn: a.ssn(),
            global_title: a.global_title(),
        }
    }
    /// Global title digits, if any.
    pub fn digits(&self) -> Option<&str> {
        self.global_title.as_ref().map(|g| g.digits.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SccpInfo {
    pub message_type: u8,
    pub protocol_class: Option<u8>,
    pub return_cause: Option<u8>,
    pub called: PartyAddress,
    pub calling: PartyAddress,
    pub segmentation: Option<Segmentation>,
    /// Length of this message's user data (one segment's, when segmented).
    pub data_len: usize,
    /// The TCAP below was reassembled from several segments.
    pub reassembled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInfo {
    pub kind: ComponentType,
    pub invoke_id: Option<i64>,
    /// Local operation code (Invoke; ReturnResult when it carries a result).
    pub op_code: Option<i64>,
    /// MAP name of `op_code`.
    pub op_name: Option<&'static str>,
    /// Local error code of a ReturnError.
    pub error_code: Option<i64>,
    /// Identities and numbers of the argument or result.
    pub map: Option<MapInfo>,
    /// MAP decoding of the parameter failed (the component itself is fine).
    pub map_error: Option<DecodeError>,
    /// SS-Code, forwarded-to number, sm-RP-UI of an Invoke ([`map_args`]); empty otherwise.
    pub args: map_args::MapArgs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcapInfo {
    pub message_type: MessageType,
    pub otid: Option<Vec<u8>>,
    pub dtid: Option<Vec<u8>>,
    /// Application-context name, dotted ("0.4.0.0.1.0.19.3").
    pub acn: Option<String>,
    /// MAP application-context version (last arc of 0.4.0.0.1.0.x.v).
    pub acn_version: Option<u8>,
    pub components: Vec<ComponentInfo>,
    /// MAP-OpenInfo of the dialogue portion ([`map_args::open_info`]).
    pub open: Option<map_args::OpenInfo>,
}

/// Everything decoded from one SIGTRAN user message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigtranMessage {
    pub ppid: u32,
    /// M3UA message class and type (PPID 3).
    pub m3ua_class: Option<u8>,
    pub m3ua_type: Option<u8>,
    /// M2PA message type (PPID 5).
    pub m2pa_type: Option<u8>,
    pub opc: Option<u32>,
    pub dpc: Option<u32>,
    pub si: Option<u8>,
    pub ni: Option<u8>,
    pub sls: Option<u8>,
    pub sccp: Option<SccpInfo>,
    pub tcap: Option<TcapInfo>,
    /// `None` when decoding went all the way; otherwise where and why it stopped.
    pub stopped: Option<Stopped>,
}

impl SigtranMessage {
    fn new(ppid: u32) -> Self {
        SigtranMessage {
            ppid,
            m3ua_class: None,
            m3ua_type: None,
            m2pa_type: None,
            opc: None,
            dpc: None,
            si: None,
            ni: None,
            sls: None,
            sccp: None,
            tcap: None,
            stopped: None,
        }
    }

    /// True when decoding stopped before TCAP was fully read.
    pub fn is_partial(&self) -> bool {
        self.stopped.is_some()
    }

    pub fn components(&self) -> &[ComponentInfo] {
        self.tcap.as_ref().map(|t| t.components.as_slice()).unwrap_or(&[])
    }

    /// Local operation codes of all components that carry one.
    pub fn op_codes(&self) -> impl Iterator<Item = i64> + '_ {
        self.components().iter().filter_map(|c| c.op_code)
    }

    /// The first IMSI found in any component.
    pub fn imsi(&self) -> Option<&str> {
        self.components().iter().filter_map(|c| c.map.as_ref()?.imsi.as_deref()).next()
    }

    /// The first MSISDN found in any component.
    pub fn msisdn(&self) -> Option<&str> {
        self.components().iter().filter_map(|c| c.map.as_ref()?.msisdn()).next()
    }

    /// The first number of this role found in any component.
    pub fn number(&self, role: map::NumberRole) -> Option<&str> {
        self.components().iter().filter_map(|c| c.map.as_ref()?.number(role)).next()
    }
}

/// Stateless decode: a segment of a segmented SCCP message stops at SCCP.
pub fn decode(ppid: u32, user_message: &[u8]) -> Result<SigtranMessage, DecodeError> {
    decode_with(ppid, user_message, None)
}

/// Decoder with SCCP segment reassembly across messages.
#[derive(Debug, Default)]
pub struct Decoder {
    segments: SegmentReassembler,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn decode(&mut self, ppid: u32, user_message: &[u8]) -> Result<SigtranMessage, DecodeError> {
        decode_with(ppid, user_message, Some(&mut self.segments))
    }

    pub fn segments(&self) -> &SegmentReassembler {
        &self.segments
    }
}

fn decode_with(
    ppid: u32,
    user_message: &[u8],
    segments: Option<&mut SegmentReassembler>,
) -> Result<SigtranMessage, DecodeError> {
    let mut m = SigtranMessage::new(ppid);
    let sccp_bytes = match ppid {
        PPID_M3UA => {
            let s = m3ua::M3uaSlice::from_slice(user_message)?;
            m.m3ua_class = Some(s.message_class());
            m.m3ua_type = Some(s.message_type());
            let pd = match s.protocol_data() {
                Ok(Some(pd)) => pd,
                Ok(None) => {
                    m.stopped = Some(Stopped::NotCarried { layer: Layer::M3ua, what: "not a Transfer DATA message" });
                    return Ok(m);
                }
                Err(e) => {
                    m.stopped = Some(Stopped::Error(e));
                    return Ok(m);
                }
            };
            m.opc = Some(pd.opc());
            m.dpc = Some(pd.dpc());
            m.si = Some(pd.si());
            m.ni = Some(pd.ni());
            m.sls = Some(pd.sls());
            if pd.si() != mtp3::SI_SCCP {
                m.stopped = Some(Stopped::NotCarried { layer: Layer::M3ua, what: "service indicator is not SCCP" });
                return Ok(m);
            }
            pd.user_data()
        }
        PPID_M2PA => {
            let s = m2pa::M2paSlice::from_slice(user_message)?;
            m.m2pa_type = Some(s.message_type());
            let Some(mtp) = s.mtp3_payload() else {
                m.stopped = Some(Stopped::NotCarried {
                    layer: Layer::M2pa,
                    what: "no MTP3 message (link status or empty user data)",
                });
                return Ok(m);
            };
            let l3 = match mtp3::Mtp3Slice::from_slice(mtp) {
                Ok(l3) => l3,
                Err(e) => {
                    m.stopped = Some(Stopped::Error(e));
                    return Ok(m);
                }
            };
            m.opc = Some(l3.opc() as u32);
            m.dpc = Some(l3.dpc() as u32);
            m.si = Some(l3.si());
            m.ni = Some(l3.ni());
            m.sls = Some(l3.sls());
            if l3.si() != mtp3::SI_SCCP {
                m.stopped = Some(Stopped::NotCarried { layer: Layer::Mtp3, what: "service indicator is not SCCP" });
                return Ok(m);
            }
            l3.payload()
        }
        _ => {
            return Err(DecodeError::Content { layer: Layer::Sctp, what: "PPID is neither M3UA (3) nor M2PA (5)" });
        }
    };

    let sccp = match SccpSlice::from_slice(sccp_bytes) {
        Ok(s) => s,
        Err(e) => {
            m.stopped = Some(Stopped::Error(e));
            return Ok(m);
        }
    };
    let seg = sccp.segmentation();
    let mut info = SccpInfo {
        message_type: sccp.message_type(),
        protocol_class: sccp.protocol_class(),
        return_cause: sccp.return_cause(),
        called: PartyAddress::from(sccp.called()),
        calling: PartyAddress::from(sccp.calling()),
        segmentation: seg,
        data_len: sccp.data().len(),
        reassembled: false,
    };
    // SCCP management (SSN 1) carries SCMG, not TCAP.
    if sccp.called().ssn() == Some(1) {
        m.sccp = Some(info);
        m.stopped = Some(Stopped::NotCarried { layer: Layer::Sccp, what: "SCCP management (SSN 1)" });
        return Ok(m);
    }
    let reassembled;
    let tcap_bytes: &[u8] = match seg {
        Some(s) if !(s.first && s.remaining == 0) => {
            let Some(reasm) = segments else {
                m.sccp = Some(info);
                m.stopped = Some(Stopped::Segment(s));
                return Ok(m);
            };
            let key = SegmentKey {
                opc: m.opc.unwrap_or(0),
                dpc: m.dpc.unwrap_or(0),
                calling: sccp.calling().slice().to_vec(),
                local_ref: s.local_ref,
            };
            match reasm.push(key, s, sccp.data()) {
                Ok(Some(whole)) => {
                    info.reassembled = true;
                    reassembled = whole;
                    &reassembled
                }
                Ok(None) => {
                    m.sccp = Some(info);
                    m.stopped = Some(Stopped::Segment(s));
                    return Ok(m);
                }
                Err(e) => {
                    m.sccp = Some(info);
                    m.stopped = Some(Stopped::Error(e));
                    return Ok(m);
                }
            }
        }
        _ => sccp.data(),
    };
    m.sccp = Some(info);

    let t = match TcapSlice::from_slice(tcap_bytes) {
        Ok(t) => t,
        Err(e) => {
            m.stopped = Some(Stopped::Error(e));
            return Ok(m);
        }
    };
    let mut tcap = TcapInfo {
        message_type: t.message_type(),
        otid: t.otid().map(<[u8]>::to_vec),
        dtid: t.dtid().map(<[u8]>::to_vec),
        acn: t.application_context(),
        acn_version: t.application_context_version(),
        components: Vec::with_capacity(t.components().len()),
        open: map_args::open_info(t.slice()),
    };
    for c in t.components() {
        let op = c.op_code.and_then(|o| o.local());
        let (map, map_error) = match (op, c.parameter) {
            (Some(op), Some(p)) => {
                let r = match c.kind {
                    ComponentType::Invoke => map::decode_invoke(op, &p),
                    ComponentType::ReturnResultLast | ComponentType::ReturnResultNotLast => map::decode_result(op, &p),
                    _ => Ok(MapInfo::default()),
                };
                match r {
                    Ok(i) => (Some(i), None),
                    Err(e) => (None, Some(e)),
                }
            }
            _ => (None, None),
        };
        // The identities above stay usable if only this part fails; its error is reported the
        // same way (`map_error`) so that it is counted, not dropped.
        let (args, map_error) = match (op, c.parameter, c.kind) {
            (Some(op), Some(p), ComponentType::Invoke) => match map_args::decode_invoke(op, &p) {
                Ok(a) => (a, map_error),
                Err(e) => (map_args::MapArgs::default(), map_error.or(Some(e))),
            },
            _ => (map_args::MapArgs::default(), map_error),
        };
        tcap.components.push(ComponentInfo {
            kind: c.kind,
            invoke_id: c.invoke_id,
            op_code: op,
            op_name: op.and_then(map::op_name),
            error_code: c.error_code.and_then(|e| match e {
                Code::Local(v) => Some(v),
                Code::Global(_) => None,
            }),
            map,
            map_error,
            args,
        });
    }
    m.tcap = Some(tcap);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m3ua_to_map() {
        let t = tcap::tests::begin_sri_sm();
        let s = sccp::tests::udt(sccp::tests::CALLED, sccp::tests::CALLING, &t);
        let msg = m3ua::tests::data_message(75874, 75836, 3, &s);
        let d = decode(PPID_M3UA, &msg).unwrap();
        assert_eq!(d.stopped, None);
        assert_eq!((d.opc, d.dpc, d.si), (Some(75874), Some(75836), Some(3)));
        let sc = d.sccp.as_ref().unwrap();
        assert_eq!((sc.message_type, sc.called.digits(), sc.called.ssn), (0x09, Some("41792457333"), Some(6)));
        assert_eq!(
            (sc.calling.digits(), sc.calling.ssn, sc.calling.routing_indicator),
            (Some("41799797800"), Some(8), 1)
        );
        let tc = d.tcap.as_ref().unwrap();
        assert_eq!((tc.message_type, tc.acn.as_deref()), (MessageType::Begin, Some("0.4.0.0.1.0.20.2")));
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
        assert_eq!(d.components()[0].op_name, Some("sendRoutingInfoForSM"));
        assert_eq!(d.msisdn(), Some("41792457333"));
        // every truncation: an error or a partial result, never a panic and never complete
        for n in 0..msg.len() - 1 {
            if let Ok(p) = decode(PPID_M3UA, &msg[..n]) {
                assert!(p.is_partial(), "cut at {n}");
            }
        }
    }

    #[test]
    fn m2pa_to_map_and_partial_results() {
        let t = tcap::tests::begin_sri_sm();
        let s = sccp::tests::udt(sccp::tests::CALLED, sccp::tests::CALLING, &t);
        let l3 = mtp3::tests::message(3, 0, 3, 4536, 0, &s);
        let msg = m2pa::tests::user_data(&l3);
        let d = decode(PPID_M2PA, &msg).unwrap();
        assert_eq!((d.stopped.as_ref(), d.opc, d.dpc), (None, Some(3), Some(4536)));
        assert_eq!(d.imsi(), None);
        // ISUP: stops at MTP3
        let l3 = mtp3::tests::message(5, 0, 3, 4536, 0, b"\x01\x02");
        let d = decode(PPID_M2PA, &m2pa::tests::user_data(&l3)).unwrap();
        assert_eq!(d.stopped.as_ref().map(Stopped::layer), Some(Layer::Mtp3));
        // SCCP carrying something that is not TCAP
        let s = sccp::tests::udt(sccp::tests::CALLED, sccp::tests::CALLING, b"\x01\x02\x03");
        let d = decode(PPID_M3UA, &m3ua::tests::data_message(1, 2, 3, &s)).unwrap();
        assert!(d.sccp.is_some());
        assert!(matches!(d.stopped, Some(Stopped::Error(ref e)) if e.layer() == Layer::Tcap));
        assert!(decode(46, &msg).is_err());
    }

    #[test]
    fn segments_reassembled_by_decoder() {
        let t = tcap::tests::begin_sri_sm();
        let (a, b) = t.split_at(20);
        let s1 = sccp::tests::xudt(sccp::tests::CALLED, sccp::tests::CALLING, a, Some([0x81, 0, 0, 7]));
        let s2 = sccp::tests::xudt(sccp::tests::CALLED, sccp::tests::CALLING, b, Some([0x00, 0, 0, 7]));
        let m1 = m3ua::tests::data_message(1, 2, 3, &s1);
        let m2 = m3ua::tests::data_message(1, 2, 3, &s2);
        assert!(matches!(decode(PPID_M3UA, &m2).unwrap().stopped, Some(Stopped::Segment(_))));
        let mut dec = Decoder::new();
        assert!(matches!(dec.decode(PPID_M3UA, &m1).unwrap().stopped, Some(Stopped::Segment(_))));
        let d = dec.decode(PPID_M3UA, &m2).unwrap();
        assert_eq!(d.stopped, None);
        assert!(d.sccp.as_ref().unwrap().reassembled);
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
    }
}
