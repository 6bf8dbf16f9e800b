//! The SS7 stack over SIGTRAN, one module per layer, and one call from an SCTP user message to
//! every field a rule needs: M3UA (PPID 3), M2UA (2) or M2PA (5) → MTP3 → SCCP → TCAP → MAP,
//! or SUA (4) → TCAP → MAP. The PPID passed selects the decoder; to decode by the message's own
//! header instead (the sender chooses the PPID), classify it first with
//! [`crate::classify::classify`] and pass [`crate::classify::PayloadKind::ppid`].
//!
//! - [`m3ua`], [`sua`], [`m2ua`], [`m2pa`], [`mtp3`], [`sccp`], [`tcap`], [`map`]: the layers'
//!   decoders ([`xua`]: the header and parameters the adaptation layers share);
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
pub mod m2ua;
pub mod m3ua;
pub mod map;
pub mod map_args;
pub mod mtp3;
pub mod ops;
pub mod sccp;
pub mod sua;
pub mod tcap;
pub mod xua;

use std::borrow::Cow;

use map::MapInfo;
use sccp::{GlobalTitle, SccpSlice, SegmentKey, SegmentReassembler, Segmentation};
use tcap::{Code, ComponentType, MessageType, TcapSlice};

use crate::sctp::{PPID_M2PA, PPID_M2UA, PPID_M3UA, PPID_SUA};
use crate::{DecodeError, Layer};

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
    /// 0 = route on global title, 1 = route on SSN (SUA's routes on hostname or IP address
    /// count as 1).
    pub routing_indicator: u8,
    /// 14 bits from SCCP (ITU); up to 24 from SUA.
    pub point_code: Option<u32>,
    pub ssn: Option<u8>,
    pub global_title: Option<GlobalTitle>,
}

impl PartyAddress {
    fn from(a: sccp::AddressSlice<'_>) -> Self {
        PartyAddress {
            routing_indicator: a.routing_indicator(),
            point_code: a.point_code().map(u32::from),
            ssn: a.ssn(),
            global_title: a.global_title(),
        }
    }
    fn from_sua(a: &sua::SuaAddress) -> Self {
        PartyAddress {
            routing_indicator: a.sccp_routing_indicator(),
            point_code: a.point_code,
            ssn: a.ssn,
            global_title: a.global_title.clone(),
        }
    }
    /// Global title digits, if any.
    pub fn digits(&self) -> Option<&str> {
        self.global_title.as_ref().map(|g| g.digits.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SccpInfo {
    /// SCCP message type; for SUA, the SCCP equivalent (CLDT: UDT 0x09, CLDR: UDTS 0x0a).
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
    /// The invoke this one is linked to (an Invoke's linked id).
    pub linked_id: Option<i64>,
    /// Local operation code (Invoke; ReturnResult when it carries a result).
    pub op_code: Option<i64>,
    /// MAP name of `op_code`.
    pub op_name: Option<&'static str>,
    /// Local error code of a ReturnError.
    pub error_code: Option<i64>,
    /// Identities and numbers of the argument or result.
    pub map: Option<MapInfo>,
    /// MAP decoding of the parameter failed (the component itself is fine); also listed in
    /// [`SigtranMessage::anomalies`], so the message is malformed.
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
    /// The adaptation layer decoded (M3UA, SUA, M2UA or M2PA) and its message class and type.
    pub layer: Layer,
    pub message_class: Option<u8>,
    pub message_type: Option<u8>,
    pub opc: Option<u32>,
    pub dpc: Option<u32>,
    pub si: Option<u8>,
    pub ni: Option<u8>,
    pub sls: Option<u8>,
    pub sccp: Option<SccpInfo>,
    pub tcap: Option<TcapInfo>,
    /// `None` when decoding went all the way; otherwise where and why it stopped.
    pub stopped: Option<Stopped>,
    /// What was decoded but is not canonical ([`DecodeError::NonCanonical`]: a length that
    /// understates its carrier, TCAP addressed to SSN 1, a missing SSN...). Decoding went on
    /// as the most permissive receiver would, so the fields above are filled and rules can
    /// run; the message is nevertheless malformed ([`SigtranMessage::is_malformed`]). A MAP
    /// argument that fails to decode ([`ComponentInfo::map_error`]) is listed here too.
    pub anomalies: Vec<DecodeError>,
}

impl SigtranMessage {
    fn new(ppid: u32, layer: Layer) -> Self {
        SigtranMessage {
            ppid,
            m3ua_class: None,
            m3ua_type: None,
            m2pa_type: None,
            layer,
            message_class: None,
            message_type: None,
            anomalies: Vec::new(),
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

    /// Every error: the one decoding stopped at, then the non-canonical findings.
    pub fn errors(&self) -> impl Iterator<Item = &DecodeError> + '_ {
        let stop = match &self.stopped {
            Some(Stopped::Error(e)) => Some(e),
            _ => None,
        };
        stop.into_iter().chain(&self.anomalies)
    }

    /// A layer was broken or not canonical: the caller judges the message malformed (an
    /// event; blocked where inspection is in path), whatever the rules say of its fields.
    pub fn is_malformed(&self) -> bool {
        self.errors().next().is_some()
    }

    /// The M3UA or SUA point codes do not fit ITU's 14 bits (ANSI, China: 24-bit point codes).
    /// The SCCP addresses are still read in the ITU layout, which such networks do not use;
    /// the caller decides (review L6).
    pub fn wide_point_codes(&self) -> bool {
        let wide = |pc: Option<u32>| pc.is_some_and(|p| p > 0x3fff);
        wide(self.opc)
            || wide(self.dpc)
            || self.sccp.as_ref().is_some_and(|s| wide(s.called.point_code) || wide(s.calling.point_code))
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

/// What the adaptation layer carries: an MTP3 user part's SCCP message, or SUA's
/// connectionless message (SCCP already decoded).
enum Carried<'a> {
    Sccp(&'a [u8]),
    Sua(sua::Connectionless<'a>),
}

/// The MTP3 message of M2PA or M2UA, into `m`; the SCCP bytes, or `None` when decoding stopped.
fn mtp3_into<'a>(m: &mut SigtranMessage, mtp: &'a [u8]) -> Option<&'a [u8]> {
    let l3 = match mtp3::Mtp3Slice::from_slice(mtp) {
        Ok(l3) => l3,
        Err(e) => {
            m.stopped = Some(Stopped::Error(e));
            return None;
        }
    };
    m.opc = Some(l3.opc() as u32);
    m.dpc = Some(l3.dpc() as u32);
    m.si = Some(l3.si());
    m.ni = Some(l3.ni());
    m.sls = Some(l3.sls());
    if l3.si() != mtp3::SI_SCCP {
        m.stopped = Some(Stopped::NotCarried { layer: Layer::Mtp3, what: "service indicator is not SCCP" });
        return None;
    }
    Some(l3.payload())
}

/// An SCCP management (SCMG, Q.713 §5.3) message: format identifier 1-6 (SSA, SSP, SST, SOR,
/// SOG, SSC), affected SSN, affected PC, SMI (and congestion level for SSC). TCAP never starts
/// with those octets (its message tags are 0x61-0x67).
fn is_scmg(data: &[u8]) -> bool {
    matches!(data.first(), Some(1..=6)) && (5..=6).contains(&data.len())
}

fn noncanonical(layer: Layer, what: &'static str) -> DecodeError {
    DecodeError::NonCanonical { layer, what }
}

fn decode_with(
    ppid: u32,
    user_message: &[u8],
    segments: Option<&mut SegmentReassembler>,
) -> Result<SigtranMessage, DecodeError> {
    let layer = match ppid {
        PPID_M3UA => Layer::M3ua,
        PPID_SUA => Layer::Sua,
        PPID_M2UA => Layer::M2ua,
        PPID_M2PA => Layer::M2pa,
        _ => {
            return Err(DecodeError::Content {
                layer: Layer::Sctp,
                what: "PPID is none of M2UA (2), M3UA (3), SUA (4), M2PA (5)",
            });
        }
    };
    let mut m = SigtranMessage::new(ppid, layer);
    let carried = match ppid {
        PPID_M3UA => {
            let s = m3ua::M3uaSlice::from_slice(user_message)?;
            m.m3ua_class = Some(s.message_class());
            m.m3ua_type = Some(s.message_type());
            m.message_class = Some(s.message_class());
            m.message_type = Some(s.message_type());
            m.anomalies.extend(s.noncanonical());
            m.anomalies.extend(s.repeated_protocol_data());
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
            Carried::Sccp(pd.user_data())
        }
        PPID_M2PA => {
            let s = m2pa::M2paSlice::from_slice(user_message)?;
            m.m2pa_type = Some(s.message_type());
            m.message_class = Some(s.message_class());
            m.message_type = Some(s.message_type());
            m.anomalies.extend(s.noncanonical());
            let Some(mtp) = s.mtp3_payload() else {
                m.stopped = Some(Stopped::NotCarried {
                    layer: Layer::M2pa,
                    what: "no MTP3 message (link status or empty user data)",
                });
                return Ok(m);
            };
            let Some(sccp) = mtp3_into(&mut m, mtp) else { return Ok(m) };
            Carried::Sccp(sccp)
        }
        PPID_M2UA => {
            let s = m2ua::M2uaSlice::from_slice(user_message)?;
            m.message_class = Some(s.message_class());
            m.message_type = Some(s.message_type());
            m.anomalies.extend(s.noncanonical());
            let mtp = match s.mtp3_payload() {
                Ok(Some(mtp)) => mtp,
                Ok(None) => {
                    m.stopped = Some(Stopped::NotCarried { layer: Layer::M2ua, what: "not a MAUP DATA message" });
                    return Ok(m);
                }
                Err(e) => {
                    m.stopped = Some(Stopped::Error(e));
                    return Ok(m);
                }
            };
            let Some(sccp) = mtp3_into(&mut m, mtp) else { return Ok(m) };
            Carried::Sccp(sccp)
        }
        _ => {
            let s = sua::SuaSlice::from_slice(user_message)?;
            m.message_class = Some(s.message_class());
            m.message_type = Some(s.message_type());
            m.anomalies.extend(s.noncanonical());
            match s.connectionless() {
                Ok(Some(c)) => Carried::Sua(c),
                Ok(None) => {
                    let what = if s.message_class() == sua::CLASS_CO {
                        "connection-oriented SUA (TCAP is connectionless)"
                    } else {
                        "not a connectionless (CLDT/CLDR) message"
                    };
                    m.stopped = Some(Stopped::NotCarried { layer: Layer::Sua, what });
                    return Ok(m);
                }
                Err(e) => {
                    m.stopped = Some(Stopped::Error(e));
                    return Ok(m);
                }
            }
        }
    };

    // SCCP (or SUA's connectionless equivalent): the addresses, the user data, segmentation.
    let (mut info, data, calling_key) = match carried {
        Carried::Sccp(bytes) => {
            let sccp = match SccpSlice::from_slice(bytes) {
                Ok(s) => s,
                Err(e) => {
                    m.stopped = Some(Stopped::Error(e));
                    return Ok(m);
                }
            };
            m.anomalies.extend(sccp.noncanonical());
            for a in [sccp.called(), sccp.calling()] {
                if a.point_code_spare_bits() {
                    m.anomalies.push(noncanonical(Layer::Sccp, "point code spare bits set"));
                }
                if let Some(what) = a.global_title_noncanonical() {
                    m.anomalies.push(noncanonical(Layer::Sccp, what));
                }
                // Bit 8 of the address indicator is reserved for national use; ANSI and the
                // 24-bit national formats set it and lay the address out differently (L6).
                if a.address_indicator() & 0x80 != 0 {
                    m.anomalies.push(noncanonical(
                        Layer::Sccp,
                        "address indicator has the national bit (not ITU layout): read as ITU",
                    ));
                }
            }
            let info = SccpInfo {
                message_type: sccp.message_type(),
                protocol_class: sccp.protocol_class(),
                return_cause: sccp.return_cause(),
                called: PartyAddress::from(sccp.called()),
                calling: PartyAddress::from(sccp.calling()),
                segmentation: sccp.segmentation(),
                data_len: sccp.data().len(),
                reassembled: false,
            };
            // The segment key's calling address, copied only for a segment (below).
            (info, sccp.data(), Cow::Borrowed(sccp.calling().slice()))
        }
        Carried::Sua(c) => {
            m.anomalies.extend(
                [c.noncanonical, c.called.noncanonical, c.calling.noncanonical]
                    .into_iter()
                    .flatten()
                    .map(|what| noncanonical(Layer::Sua, what)),
            );
            let info = SccpInfo {
                message_type: if c.is_response { sccp::MSG_UDTS } else { sccp::MSG_UDT },
                protocol_class: c.protocol_class,
                return_cause: c.return_cause,
                called: PartyAddress::from_sua(&c.called),
                calling: PartyAddress::from_sua(&c.calling),
                segmentation: c.segmentation,
                data_len: c.data.len(),
                reassembled: false,
            };
            // The segment key wants the calling address's bytes; SUA's decoded form stands in.
            // Only a segment is looked up by it (below), so only a segment renders it.
            let key = if c.segmentation.is_some() { format!("{:?}", c.calling).into_bytes() } else { Vec::new() };
            (info, c.data, Cow::Owned(key))
        }
    };
    let seg = info.segmentation;
    // SCCP management (SCMG) is addressed to SSN 1 and has its own format; anything else sent
    // to SSN 1 is decoded as TCAP (an STP's global-title translation may replace the SSN and
    // deliver it to the HLR: review M3) and reported.
    if info.called.ssn == Some(1) {
        if is_scmg(data) && seg.is_none() {
            m.sccp = Some(info);
            m.stopped = Some(Stopped::NotCarried { layer: Layer::Sccp, what: "SCCP management (SSN 1)" });
            return Ok(m);
        }
        m.anomalies.push(noncanonical(Layer::Sccp, "called SSN 1 (SCCP management) on a message that is not SCMG"));
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
                calling: calling_key.into_owned(),
                local_ref: s.local_ref,
            };
            match reasm.push(key, s, data) {
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
        _ => data,
    };
    // TCAP is addressed to a subsystem; a message without one, or with SSN 0 ("unknown"),
    // relies on whatever the receiver's translation fills in (item 4 of issue 10).
    for (ssn, what_missing, what_zero) in [
        (info.called.ssn, "called party without SSN", "called SSN 0 (unknown)"),
        (info.calling.ssn, "calling party without SSN", "calling SSN 0 (unknown)"),
    ] {
        match ssn {
            None => m.anomalies.push(noncanonical(Layer::Sccp, what_missing)),
            Some(0) => m.anomalies.push(noncanonical(Layer::Sccp, what_zero)),
            _ => {}
        }
    }
    m.sccp = Some(info);

    // Lax: a broken component keeps the ones before it (and the header) for the rules, and
    // the error is `stopped` (H4).
    let (t, tcap_stop) = match TcapSlice::from_slice_lax(tcap_bytes) {
        Ok(t) => t,
        Err(e) => {
            m.stopped = Some(Stopped::Error(e));
            return Ok(m);
        }
    };
    m.anomalies.extend(t.anomalies());
    let mut tcap = TcapInfo {
        message_type: t.message_type(),
        otid: t.otid().map(<[u8]>::to_vec),
        dtid: t.dtid().map(<[u8]>::to_vec),
        acn: t.application_context(),
        acn_version: t.application_context_version(),
        components: Vec::with_capacity(t.components().len()),
        open: map_args::open_info(t.slice()),
    };
    // The MAP version of the dialogue: the application context's, or 1 for a message that
    // opens a dialogue without one (MAP v1 has no application context). Continue and End
    // usually carry none, so they are not judged.
    let opens = matches!(t.message_type(), MessageType::Begin | MessageType::Unidirectional);
    let version = tcap.acn_version.or((opens && t.application_context_raw().is_none()).then_some(1));
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
        if let Some(i) = &map {
            m.anomalies.extend(i.noncanonical.iter().map(|&what| noncanonical(Layer::Map, what)));
        }
        if let Some(e) = &map_error {
            m.anomalies.push(e.clone());
        }
        if c.kind == ComponentType::Invoke
            && let (Some(op), Some(v)) = (op, version)
            && v < map::min_version(op)
        {
            m.anomalies.push(noncanonical(Layer::Map, "operation below its minimum MAP version (version downgrade)"));
        }
        tcap.components.push(ComponentInfo {
            kind: c.kind,
            invoke_id: c.invoke_id,
            linked_id: c.linked_id,
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
    if let Some(e) = tcap_stop {
        m.stopped = Some(Stopped::Error(e));
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
        assert!(d.anomalies.is_empty() || d.is_malformed());
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

    #[test]
    fn sua_to_map() {
        let t = tcap::tests::begin_sri_sm();
        let called = sua::tests::gt_address("41792457333", 6, None);
        let calling = sua::tests::gt_address("41799797800", 8, Some(0x0a_0b0c));
        let msg = sua::tests::cldt(&called, &calling, &t);
        let d = decode(PPID_SUA, &msg).unwrap();
        assert_eq!((d.stopped.as_ref(), d.layer, d.message_class), (None, Layer::Sua, Some(sua::CLASS_CL)));
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        let sc = d.sccp.as_ref().unwrap();
        assert_eq!((sc.message_type, sc.called.digits(), sc.called.ssn), (sccp::MSG_UDT, Some("41792457333"), Some(6)));
        assert_eq!((sc.calling.digits(), sc.calling.point_code), (Some("41799797800"), Some(0x0a_0b0c)));
        assert!(d.wide_point_codes(), "0x0a0b0c does not fit 14 bits");
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
        assert_eq!(d.msisdn(), Some("41792457333"));
        for n in 0..msg.len() - 1 {
            if let Ok(p) = decode(PPID_SUA, &msg[..n]) {
                assert!(p.is_partial(), "cut at {n}");
            }
        }
        // management and connection-oriented messages carry nothing
        let d = decode(PPID_SUA, &[1, 0, sua::CLASS_ASPSM, 1, 0, 0, 0, 8]).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::NotCarried { layer: Layer::Sua, .. })));
        let d = decode(PPID_SUA, &[1, 0, sua::CLASS_CO, 1, 0, 0, 0, 8]).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::NotCarried { layer: Layer::Sua, .. })));
        // a CLDT without its Data is an error the caller sees
        let d = decode(PPID_SUA, &msg[..msg.len() - 4 - t.len().next_multiple_of(4)]);
        assert!(d.is_err() || d.unwrap().is_malformed());
    }

    #[test]
    fn m2ua_to_map() {
        let t = tcap::tests::begin_sri_sm();
        let s = sccp::tests::udt(sccp::tests::CALLED, sccp::tests::CALLING, &t);
        let l3 = mtp3::tests::message(3, 0, 3, 4536, 0, &s);
        let msg = m2ua::tests::data(&l3);
        let d = decode(PPID_M2UA, &msg).unwrap();
        assert_eq!((d.stopped.as_ref(), d.layer, d.opc, d.dpc), (None, Layer::M2ua, Some(3), Some(4536)));
        assert!(!d.is_malformed());
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
        // not DATA; DATA without Protocol Data; ISUP
        let d = decode(PPID_M2UA, &[1, 0, m2ua::CLASS_MAUP, 2, 0, 0, 0, 8]).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::NotCarried { layer: Layer::M2ua, .. })));
        let d = decode(PPID_M2UA, &[1, 0, m2ua::CLASS_MAUP, 1, 0, 0, 0, 8]).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::Error(DecodeError::Content { layer: Layer::M2ua, .. }))));
        assert!(d.is_malformed());
        let d = decode(PPID_M2UA, &m2ua::tests::data(&mtp3::tests::message(5, 0, 3, 4, 0, b"\x01"))).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::NotCarried { layer: Layer::Mtp3, .. })));
        let d = decode(PPID_M2UA, &m2ua::tests::data(b"\x83\x01")).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::Error(DecodeError::Len { layer: Layer::Mtp3, .. }))));
    }

    #[test]
    fn understated_m3ua_length_decodes_everything_and_is_malformed() {
        // review H3 recipe 1: the ATI's M3UA length set to 8
        let t = tcap::tests::begin_sri_sm();
        let s = sccp::tests::udt(sccp::tests::CALLED, sccp::tests::CALLING, &t);
        let mut msg = m3ua::tests::data_message(1, 2, 3, &s);
        msg[4..8].copy_from_slice(&8u32.to_be_bytes());
        let d = decode(PPID_M3UA, &msg).unwrap();
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45], "decoded to the carrier's end");
        assert!(d.is_malformed());
        assert!(matches!(d.anomalies[..], [DecodeError::NonCanonical { layer: Layer::M3ua, .. }]));
        let mut msg = m2pa::tests::user_data(&mtp3::tests::message(3, 0, 3, 4536, 0, &s));
        msg[4..8].copy_from_slice(&16u32.to_be_bytes());
        let d = decode(PPID_M2PA, &msg).unwrap();
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
        assert!(matches!(d.anomalies[..], [DecodeError::NonCanonical { layer: Layer::M2pa, .. }]));
    }

    /// An address routed on GT with SSN `ssn` (or none), GTI 4, "4179".
    fn gt_addr(ssn: Option<u8>) -> Vec<u8> {
        let mut a = vec![if ssn.is_some() { 0x12 } else { 0x10 }];
        a.extend(ssn);
        a.extend_from_slice(&[0x00, 0x12, 0x04, 0x14, 0x97]);
        a
    }

    #[test]
    fn ssn_1_missing_and_zero_are_decoded_and_reported() {
        let t = tcap::tests::begin_sri_sm();
        // review M3: TCAP to SSN 1 is decoded, not skipped as SCMG
        let s = sccp::tests::udt(&gt_addr(Some(1)), &gt_addr(Some(8)), &t);
        let d = decode(PPID_M3UA, &m3ua::tests::data_message(1, 2, 3, &s)).unwrap();
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
        assert!(matches!(d.anomalies[..], [DecodeError::NonCanonical { layer: Layer::Sccp, .. }]));
        // a real SCMG message (SST for SSN 6 at PC 0x0102) to SSN 1 stops there, cleanly
        let s = sccp::tests::udt(&gt_addr(Some(1)), &gt_addr(Some(1)), &[3, 6, 0x02, 0x01, 0]);
        let d = decode(PPID_M3UA, &m3ua::tests::data_message(1, 2, 3, &s)).unwrap();
        assert!(matches!(d.stopped, Some(Stopped::NotCarried { layer: Layer::Sccp, .. })));
        assert!(!d.is_malformed());
        // missing called SSN, calling SSN 0
        let s = sccp::tests::udt(&gt_addr(None), &gt_addr(Some(0)), &t);
        let d = decode(PPID_M3UA, &m3ua::tests::data_message(1, 2, 3, &s)).unwrap();
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45]);
        assert_eq!(d.anomalies.len(), 2, "{:?}", d.anomalies);
        // national-format address indicator
        let mut called = gt_addr(Some(6));
        called[0] |= 0x80;
        let s = sccp::tests::udt(&called, &gt_addr(Some(8)), &t);
        let d = decode(PPID_M3UA, &m3ua::tests::data_message(1, 2, 3, &s)).unwrap();
        assert!(d.anomalies.iter().any(|e| e.layer() == Layer::Sccp));
        assert!(!d.wide_point_codes());
    }

    /// A Begin from `begin_sri_sm` whose single Invoke has operation code `op` and no
    /// dialogue portion when `with_acn` is false.
    fn begin_op(op: u8, with_acn: bool) -> Vec<u8> {
        let mut t = tcap::tests::begin_sri_sm();
        let at = t.iter().position(|&b| b == 45).unwrap();
        t[at] = op;
        if !with_acn {
            // drop the 28-byte dialogue portion after the 6-byte OTID and fix the length
            t.drain(8..8 + 28);
            t[1] -= 28;
        }
        t
    }

    fn sigtran_of(tcap: &[u8]) -> SigtranMessage {
        let s = sccp::tests::udt(sccp::tests::CALLED, sccp::tests::CALLING, tcap);
        decode(PPID_M3UA, &m3ua::tests::data_message(1, 2, 3, &s)).unwrap()
    }

    #[test]
    fn version_downgrade_is_reported() {
        // sendRoutingInfoForSM exists since v1: no AC is fine
        let d = sigtran_of(&begin_op(45, false));
        assert_eq!((d.op_codes().collect::<Vec<_>>(), d.is_malformed()), (vec![45], false), "{:?}", d.anomalies);
        // anyTimeInterrogation (v3) with no AC (v1), or in the v2 context of the fixture
        for with_acn in [false, true] {
            let d = sigtran_of(&begin_op(71, with_acn));
            assert_eq!(d.op_codes().collect::<Vec<_>>(), [71]);
            assert!(
                d.anomalies.iter().any(|e| matches!(e, DecodeError::NonCanonical { layer: Layer::Map, .. })),
                "{:?}",
                d.anomalies
            );
        }
    }

    #[test]
    fn broken_component_keeps_the_earlier_ones() {
        // the fixture's component portion with a second, broken component (unknown type [5])
        let mut t = tcap::tests::begin_sri_sm();
        let comps_at = t.iter().rposition(|&b| b == 0x6c).unwrap();
        t.extend_from_slice(&[0xa5, 0x01, 0x00]);
        t[comps_at + 1] += 3;
        t[1] += 3;
        let d = sigtran_of(&t);
        assert_eq!(d.op_codes().collect::<Vec<_>>(), [45], "the first component is kept");
        assert!(matches!(d.stopped, Some(Stopped::Error(DecodeError::Content { layer: Layer::Tcap, .. }))));
        assert!(d.is_malformed());
    }

    #[test]
    fn over_long_imsi_reaches_the_rules() {
        // sendRoutingInfoForSM result-less; use updateLocation's IMSI (first OCTET STRING)
        let imsi = [0x22, 0x08, 0x21, 0x21, 0x10, 0x89, 0x65, 0x43, 0x21, 0xf0];
        let mut param = vec![0x30, (2 + imsi.len()) as u8, 0x04, imsi.len() as u8];
        param.extend_from_slice(&imsi);
        let mut invoke = vec![0x02, 0x01, 0x01, 0x02, 0x01, 2];
        invoke.extend(param);
        let mut comp = vec![0xa1, invoke.len() as u8];
        comp.extend(invoke);
        let mut comps = vec![0x6c, comp.len() as u8];
        comps.extend(comp);
        let mut body = vec![0x48, 0x01, 0x01];
        body.extend(comps);
        let mut t = vec![0x62, body.len() as u8];
        t.extend(body);
        let d = sigtran_of(&t);
        assert_eq!(d.imsi(), Some("2280121201985634120"));
        assert!(d.anomalies.iter().any(|e| matches!(e, DecodeError::NonCanonical { layer: Layer::Map, .. })));
    }
}
