//! ITU-T TCAP (Q.773): Unidirectional, Begin, Continue, End and Abort; transaction ids; the
//! dialogue portion's application-context name; every component (Invoke, ReturnResult Last and
//! NotLast, ReturnError, Reject) with its invoke id and operation or error code.
//!
//! [`TcapSlice::from_slice`] reads the whole message with the bounded BER reader
//! ([`crate::ber`]) and keeps sub-slices; at most [`MAX_COMPONENTS`] components.
//! [`TcapSlice::from_slice_lax`] keeps what was decoded before an error in the components
//! (header-level rules still run on it) and returns the error beside it.
//!
//! Strict where receivers differ (issue 10 item 4): what some receiver accepts but a canonical
//! MAP dialogue never has is decoded anyway and listed by [`TcapSlice::anomalies`] as
//! [`DecodeError::NonCanonical`] — a global operation or error code, a transaction id outside 1
//! to 4 octets, an indefinite length, an application context that is not a known one (or a
//! MAP context with extra arcs or a version outside 1 to 4), a linked invoke in a message that
//! opens a dialogue, bytes after the message.

use crate::ber::{self, Budget, CLASS_APPLICATION, CLASS_CONTEXT, Children, TAG_INTEGER, TAG_NULL, TAG_OID, Tlv};
use crate::{DecodeError, Layer};

/// Components decoded per message; more is [`DecodeError::Limit`].
pub const MAX_COMPONENTS: usize = 32;
/// Transaction ids are 1 to 4 octets (Q.773 §3.2.1); others are decoded and reported.
pub const MAX_TID_LEN: usize = 4;

/// MAP application contexts: 0.4.0.0.1.0.x.v (contents of the OID, without the version).
const MAP_AC_PREFIX: &[u8] = &[0x04, 0x00, 0x00, 0x01, 0x00];
/// Other application-context families that run over TCAP on an interconnect and that a MAP
/// rule set may see: CAP (0.4.0.0.1.21/22/23...) — anything under 0.4.0.0.1 (GSM/UMTS
/// network domain) with one more level. Others are reported as unknown.
const GSM_AC_PREFIX: &[u8] = &[0x04, 0x00, 0x00, 0x01];

/// The dialogue-as-id object identifier carried by structured dialogues.
pub const DIALOGUE_AS_ID: &str = "0.0.17.773.1.1.1";
/// The unidialogue-as-id object identifier.
pub const UNIDIALOGUE_AS_ID: &str = "0.0.17.773.1.2.1";

fn content(what: &'static str) -> DecodeError {
    DecodeError::Content { layer: Layer::Tcap, what }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Unidirectional,
    Begin,
    End,
    Continue,
    Abort,
}

impl MessageType {
    fn from_tag(tag: u32) -> Option<Self> {
        Some(match tag {
            1 => MessageType::Unidirectional,
            2 => MessageType::Begin,
            4 => MessageType::End,
            5 => MessageType::Continue,
            7 => MessageType::Abort,
            _ => return None,
        })
    }
    /// Name as tshark's element (`tcap.begin_element` → "begin").
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Unidirectional => "unidirectional",
            MessageType::Begin => "begin",
            MessageType::End => "end",
            MessageType::Continue => "continue",
            MessageType::Abort => "abort",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComponentType {
    Invoke,
    ReturnResultLast,
    ReturnError,
    Reject,
    ReturnResultNotLast,
}

impl ComponentType {
    fn from_tag(tag: u32) -> Option<Self> {
        Some(match tag {
            1 => ComponentType::Invoke,
            2 => ComponentType::ReturnResultLast,
            3 => ComponentType::ReturnError,
            4 => ComponentType::Reject,
            7 => ComponentType::ReturnResultNotLast,
            _ => return None,
        })
    }
    pub const fn name(self) -> &'static str {
        match self {
            ComponentType::Invoke => "invoke",
            ComponentType::ReturnResultLast => "returnResultLast",
            ComponentType::ReturnError => "returnError",
            ComponentType::Reject => "reject",
            ComponentType::ReturnResultNotLast => "returnResultNotLast",
        }
    }
}

/// An operation or error code: local (INTEGER) or global (OBJECT IDENTIFIER, raw contents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code<'a> {
    Local(i64),
    Global(&'a [u8]),
}

impl Code<'_> {
    pub fn local(&self) -> Option<i64> {
        match self {
            Code::Local(v) => Some(*v),
            Code::Global(_) => None,
        }
    }
}

/// One component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component<'a> {
    pub kind: ComponentType,
    /// Invoke id (absent in a Reject whose id was not derivable).
    pub invoke_id: Option<i64>,
    /// Linked id of an Invoke.
    pub linked_id: Option<i64>,
    /// Operation code: Invoke always; ReturnResult when it carries a result.
    pub op_code: Option<Code<'a>>,
    /// Error code of a ReturnError.
    pub error_code: Option<Code<'a>>,
    /// Reject problem: (problem type tag 0..=3, value).
    pub problem: Option<(u32, i64)>,
    /// The parameter element (identifier, length and contents), if any.
    pub parameter: Option<Tlv<'a>>,
}

/// The dialogue PDU found in a dialogue portion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialoguePdu {
    /// AARQ (dialogue request) or AUDT (unidirectional).
    Request,
    /// AARE (dialogue response).
    Response,
    /// ABRT (dialogue abort).
    Abort,
    Other(u32),
}

/// A decoded TCAP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcapSlice<'a> {
    data: &'a [u8],
    kind: MessageType,
    otid: Option<&'a [u8]>,
    dtid: Option<&'a [u8]>,
    dialogue_pdu: Option<DialoguePdu>,
    acn: Option<&'a [u8]>,
    abort_cause: Option<i64>,
    components: Vec<Component<'a>>,
    noncanonical: Vec<&'static str>,
}

impl<'a> TcapSlice<'a> {
    /// Decodes one TCAP message, strictly: any error is the result. (Bytes after it are
    /// reported by [`TcapSlice::anomalies`].)
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        match Self::from_slice_lax(data)? {
            (m, None) => Ok(m),
            (_, Some(e)) => Err(e),
        }
    }

    /// Decodes one TCAP message laxly: an error in the dialogue or component portion keeps the
    /// header, the transaction ids and the components decoded before it, and is returned
    /// beside them; only a broken message header (or a missing transaction id) is an `Err`.
    pub fn from_slice_lax(data: &'a [u8]) -> Result<(Self, Option<DecodeError>), DecodeError> {
        let budget = Budget::new(Layer::Tcap);
        let (top, after) = Tlv::parse(data, &budget)?;
        if top.class != CLASS_APPLICATION || !top.constructed {
            return Err(content("not a TCAP message (application-class constructed tag expected)"));
        }
        let kind = MessageType::from_tag(top.tag).ok_or(content("unknown TCAP message type"))?;
        let mut m = TcapSlice {
            data: top.raw,
            kind,
            otid: None,
            dtid: None,
            dialogue_pdu: None,
            acn: None,
            abort_cause: None,
            components: Vec::new(),
            noncanonical: Vec::new(),
        };
        if !after.is_empty() {
            m.note("bytes after the TCAP message");
        }
        let mut stop = None;
        for e in top.children(&budget) {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    stop = Some(err);
                    break;
                }
            };
            if e.class != CLASS_APPLICATION {
                continue;
            }
            let r = match (e.tag, e.constructed) {
                (8, false) => {
                    m.otid = Some(m.tid(e.value));
                    Ok(())
                }
                (9, false) => {
                    m.dtid = Some(m.tid(e.value));
                    Ok(())
                }
                (10, false) => {
                    m.abort_cause = e.int();
                    Ok(())
                }
                (11, true) => m.dialogue(&e, &budget),
                (12, true) => m.read_components(&e, &budget),
                _ => Ok(()),
            };
            if let Err(err) = r {
                stop = Some(err);
                break;
            }
        }
        // Indefinite lengths anywhere in the message (parameters included): legal BER, never
        // produced by a MAP stack in practice, and a classic way to hide an element.
        if ber::has_indefinite(&top) {
            m.note("indefinite length");
        }
        m.check_context();
        // An Abort has no component portion (Q.773 §3.1); a receiver ignores one, so an invoke
        // read from it is not one the receiver acts on (differential fuzzer: pycrate ignores it).
        if kind == MessageType::Abort && !m.components.is_empty() {
            m.note("component portion in an Abort");
        }
        let opens = matches!(kind, MessageType::Begin | MessageType::Unidirectional);
        for c in &m.components {
            if matches!(c.op_code, Some(Code::Global(_))) || matches!(c.error_code, Some(Code::Global(_))) {
                m.noncanonical.push("global operation or error code");
            }
            if opens && c.linked_id.is_some() {
                m.noncanonical.push("linked invoke in a message that opens a dialogue");
            }
        }
        m.noncanonical.sort_unstable();
        m.noncanonical.dedup();
        match kind {
            MessageType::Begin if m.otid.is_none() => return Err(content("Begin without OTID")),
            MessageType::Continue if m.otid.is_none() || m.dtid.is_none() => {
                return Err(content("Continue without OTID and DTID"));
            }
            MessageType::End | MessageType::Abort if m.dtid.is_none() => {
                return Err(content("End/Abort without DTID"));
            }
            _ => {}
        }
        Ok((m, stop))
    }

    fn note(&mut self, what: &'static str) {
        self.noncanonical.push(what);
    }

    /// A transaction id, whatever its length; outside 1 to 4 octets is reported.
    fn tid(&mut self, v: &'a [u8]) -> &'a [u8] {
        if v.is_empty() || v.len() > MAX_TID_LEN {
            self.note("transaction id is not 1 to 4 octets");
        }
        v
    }

    /// The application context against the ones MAP and CAP define.
    fn check_context(&mut self) {
        let Some(acn) = self.acn else {
            if self.dialogue_pdu == Some(DialoguePdu::Request) {
                self.note("dialogue request without an application context");
            }
            return;
        };
        if let Some(rest) = acn.strip_prefix(MAP_AC_PREFIX) {
            match rest {
                [_, v] if (1..=4).contains(v) => {}
                [_, _] => self.note("MAP application-context version outside 1 to 4"),
                _ => self.note("extended or truncated MAP application context"),
            }
        } else if !(acn.starts_with(GSM_AC_PREFIX) && acn.len() > GSM_AC_PREFIX.len()) {
            self.note("unknown application context");
        }
    }

    /// What was decoded but is not canonical (see the module documentation).
    pub fn anomalies(&self) -> impl Iterator<Item = DecodeError> + '_ {
        self.noncanonical.iter().map(|&what| DecodeError::NonCanonical { layer: Layer::Tcap, what })
    }

    fn dialogue(&mut self, portion: &Tlv<'a>, budget: &Budget) -> Result<(), DecodeError> {
        // DialoguePortion ::= [APPLICATION 11] EXTERNAL { direct-reference OID, [0] single-ASN1-type PDU }
        for ext in portion.children(budget) {
            let ext = ext?;
            if !ext.is_universal(ber::TAG_EXTERNAL) {
                continue;
            }
            for f in ext.children(budget) {
                let f = f?;
                if !(f.is_context(0) && f.constructed) {
                    continue;
                }
                let Some(pdu) = f.children(budget).next().transpose()? else { continue };
                self.dialogue_pdu = Some(match (pdu.class, pdu.tag) {
                    (CLASS_APPLICATION, 0) => DialoguePdu::Request,
                    (CLASS_APPLICATION, 1) => DialoguePdu::Response,
                    (CLASS_APPLICATION, 4) => DialoguePdu::Abort,
                    (_, t) => DialoguePdu::Other(t),
                });
                for g in pdu.children(budget) {
                    let g = g?;
                    // application-context-name [1] { OBJECT IDENTIFIER }
                    if g.is_context(1)
                        && g.constructed
                        && let Some(oid) = g.children(budget).next().transpose()?
                        && oid.is_universal(TAG_OID)
                    {
                        self.acn = Some(oid.value);
                    }
                }
            }
        }
        Ok(())
    }

    fn read_components(&mut self, portion: &Tlv<'a>, budget: &Budget) -> Result<(), DecodeError> {
        for c in portion.children(budget) {
            let c = c?;
            if self.components.len() == MAX_COMPONENTS {
                return Err(DecodeError::Limit { layer: Layer::Tcap, what: "more than MAX_COMPONENTS components" });
            }
            if c.class != CLASS_CONTEXT || !c.constructed {
                return Err(content("component is not a context-specific constructed element"));
            }
            let kind = ComponentType::from_tag(c.tag).ok_or(content("unknown component type"))?;
            let (comp, err) = component(kind, &c, budget)?;
            self.components.push(comp);
            if let Some(e) = err {
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn message_type(&self) -> MessageType {
        self.kind
    }
    pub fn otid(&self) -> Option<&'a [u8]> {
        self.otid
    }
    pub fn dtid(&self) -> Option<&'a [u8]> {
        self.dtid
    }
    pub fn dialogue_pdu(&self) -> Option<DialoguePdu> {
        self.dialogue_pdu
    }
    /// Application-context name's raw OID contents.
    pub fn application_context_raw(&self) -> Option<&'a [u8]> {
        self.acn
    }
    /// Application-context name as a dotted string, e.g. "0.4.0.0.1.0.19.3".
    pub fn application_context(&self) -> Option<String> {
        self.acn.and_then(ber::oid_to_string)
    }
    /// For MAP contexts (0.4.0.0.1.0.x.v): the version, the last arc.
    pub fn application_context_version(&self) -> Option<u8> {
        let acn = self.acn?;
        if acn.len() == 7 && acn.starts_with(&[0x04, 0x00, 0x00, 0x01, 0x00]) { acn.get(6).copied() } else { None }
    }
    /// P-abort cause of an Abort.
    pub fn abort_cause(&self) -> Option<i64> {
        self.abort_cause
    }
    pub fn components(&self) -> &[Component<'a>] {
        &self.components
    }
    pub fn slice(&self) -> &'a [u8] {
        self.data
    }
}

fn code<'a>(t: &Tlv<'a>) -> Result<Option<Code<'a>>, DecodeError> {
    if t.is_universal(TAG_INTEGER) && !t.constructed {
        return t.int().map(|v| Some(Code::Local(v))).ok_or(content("operation/error code is not a valid INTEGER"));
    }
    if t.is_universal(TAG_OID) && !t.constructed {
        return Ok(Some(Code::Global(t.value)));
    }
    Ok(None)
}

/// One component. An error once the operation (or error) code is known — the parameter broken
/// or over a cap (BER depth, element budget) — still returns the component, without its
/// parameter, beside the error: the header-level rules (Category 1 by operation code) must
/// see an ATI whose argument was built to exhaust the decoder (review H4 recipe 2).
fn component<'a>(
    kind: ComponentType,
    c: &Tlv<'a>,
    budget: &Budget,
) -> Result<(Component<'a>, Option<DecodeError>), DecodeError> {
    let mut out = Component {
        kind,
        invoke_id: None,
        linked_id: None,
        op_code: None,
        error_code: None,
        problem: None,
        parameter: None,
    };
    let mut fields = c.children(budget);
    // Every component starts with the invoke id (a Reject may carry NULL instead).
    let first = fields.next().transpose()?.ok_or(content("empty component"))?;
    if first.is_universal(TAG_INTEGER) && !first.constructed {
        out.invoke_id = Some(first.int().ok_or(content("invoke id is not a valid INTEGER"))?);
    } else if !(kind == ComponentType::Reject && first.is_universal(TAG_NULL)) {
        return Err(content("component does not start with an invoke id"));
    }
    match kind {
        ComponentType::Invoke => {
            for f in fields {
                let f = match f {
                    Ok(f) => f,
                    Err(e) if out.op_code.is_some() => return Ok((out, Some(e))),
                    Err(e) => return Err(e),
                };
                if out.op_code.is_none() && f.is_context(0) && !f.constructed {
                    out.linked_id = f.int();
                } else if out.op_code.is_none() {
                    out.op_code = Some(code(&f)?.ok_or(content("Invoke without an operation code"))?);
                } else if out.parameter.is_none() {
                    out.parameter = Some(f);
                }
            }
            if out.op_code.is_none() {
                return Err(content("Invoke without an operation code"));
            }
        }
        ComponentType::ReturnResultLast | ComponentType::ReturnResultNotLast => {
            // result SEQUENCE { opcode, parameter } OPTIONAL
            if let Some(seq) = fields.next().transpose()? {
                let mut inner = seq.children(budget);
                if let Some(op) = inner.next().transpose()? {
                    out.op_code = code(&op)?;
                }
                match inner.next().transpose() {
                    Ok(p) => out.parameter = p,
                    Err(e) if out.op_code.is_some() => return Ok((out, Some(e))),
                    Err(e) => return Err(e),
                }
            }
        }
        ComponentType::ReturnError => {
            let ec = fields.next().transpose()?.ok_or(content("ReturnError without an error code"))?;
            out.error_code = Some(code(&ec)?.ok_or(content("ReturnError without an error code"))?);
            match fields.next().transpose() {
                Ok(p) => out.parameter = p,
                Err(e) => return Ok((out, Some(e))),
            }
        }
        ComponentType::Reject => {
            if let Some(p) = fields.next().transpose()?
                && p.class == CLASS_CONTEXT
                && p.tag <= 3
            {
                out.problem = Some((p.tag, p.int().unwrap_or(0)));
            }
        }
    }
    Ok((out, None))
}

/// Hex rendering of a transaction id as tshark prints `tcap.otid` ("a5050001").
pub fn tid_hex(t: &[u8]) -> String {
    t.iter().map(|b| format!("{b:02x}")).collect()
}

/// Iterates the top-level elements of a component parameter's contents (helper for MAP).
pub fn parameter_fields<'a, 'b>(p: &Tlv<'a>, budget: &'b Budget) -> Children<'a, 'b> {
    p.children(budget)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Begin, OTID 00000001, AARQ with ACN shortMsgGateway v2 (0.4.0.0.1.0.20.2), one Invoke
    /// sendRoutingInfoForSM (45) with a small parameter (frame 29 of ss7_map_pcapr.pcap, trimmed).
    pub(crate) fn begin_sri_sm() -> Vec<u8> {
        let param: &[u8] = &[0x30, 0x0c, 0x80, 0x07, 0x91, 0x14, 0x97, 0x42, 0x75, 0x33, 0xf3, 0x81, 0x01, 0xff];
        let mut invoke = vec![0x02, 0x01, 0x00, 0x02, 0x01, 45];
        invoke.extend_from_slice(param);
        let mut comp = vec![0xa1, invoke.len() as u8];
        comp.extend_from_slice(&invoke);
        let mut comps = vec![0x6c, comp.len() as u8];
        comps.extend_from_slice(&comp);
        let dialogue: &[u8] = &[
            0x6b, 0x1a, 0x28, 0x18, 0x06, 0x07, 0x00, 0x11, 0x86, 0x05, 0x01, 0x01, 0x01, 0xa0, 0x0d, 0x60, 0x0b, 0xa1,
            0x09, 0x06, 0x07, 0x04, 0x00, 0x00, 0x01, 0x00, 0x14, 0x02,
        ];
        let mut body = vec![0x48, 0x04, 0x00, 0x00, 0x00, 0x01];
        body.extend_from_slice(dialogue);
        body.extend_from_slice(&comps);
        let mut m = vec![0x62, body.len() as u8];
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn begin_with_invoke() {
        let m = begin_sri_sm();
        let t = TcapSlice::from_slice(&m).unwrap();
        assert_eq!(t.message_type(), MessageType::Begin);
        assert_eq!(tid_hex(t.otid().unwrap()), "00000001");
        assert_eq!(t.dtid(), None);
        assert_eq!(t.application_context().unwrap(), "0.4.0.0.1.0.20.2");
        assert_eq!(t.application_context_version(), Some(2));
        assert_eq!(t.dialogue_pdu(), Some(DialoguePdu::Request));
        let c = &t.components()[0];
        assert_eq!((c.kind, c.invoke_id, c.op_code), (ComponentType::Invoke, Some(0), Some(Code::Local(45))));
        assert_eq!(c.parameter.unwrap().raw.len(), 14);
        for n in 0..m.len() {
            assert!(TcapSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn end_with_results_errors_rejects() {
        // End, DTID, components: RRL with opcode 56, RRL without result, RE error 1, Reject
        // (invoke id NULL, general problem 0), RRNL, all in an indefinite-length components part.
        let m = [
            0x64, 0x80, 0x49, 0x01, 0x07, 0x6c, 0x80, //
            0xa2, 0x08, 0x02, 0x01, 0x01, 0x30, 0x03, 0x02, 0x01, 56, //
            0xa2, 0x03, 0x02, 0x01, 0x02, //
            0xa3, 0x06, 0x02, 0x01, 0x03, 0x02, 0x01, 0x01, //
            0xa4, 0x05, 0x05, 0x00, 0x80, 0x01, 0x00, //
            0xa7, 0x0b, 0x02, 0x01, 0x04, 0x30, 0x06, 0x02, 0x01, 0x02, 0x04, 0x01, 0xaa, //
            0x00, 0x00, 0x00, 0x00,
        ];
        let t = TcapSlice::from_slice(&m).unwrap();
        assert_eq!((t.message_type(), t.dtid(), t.otid()), (MessageType::End, Some(&[7u8][..]), None));
        let kinds: Vec<_> = t.components().iter().map(|c| (c.kind, c.invoke_id, c.op_code)).collect();
        assert_eq!(
            kinds,
            [
                (ComponentType::ReturnResultLast, Some(1), Some(Code::Local(56))),
                (ComponentType::ReturnResultLast, Some(2), None),
                (ComponentType::ReturnError, Some(3), None),
                (ComponentType::Reject, None, None),
                (ComponentType::ReturnResultNotLast, Some(4), Some(Code::Local(2))),
            ]
        );
        assert_eq!(t.components()[2].error_code, Some(Code::Local(1)));
        assert_eq!(t.components()[3].problem, Some((0, 0)));
        assert_eq!(t.components()[4].parameter.unwrap().value, &[0xaa]);
        for n in 0..m.len() {
            assert!(TcapSlice::from_slice(&m[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn abort_continue_and_malformed() {
        let abort = [0x67, 0x06, 0x49, 0x01, 0x01, 0x4a, 0x01, 0x01];
        let t = TcapSlice::from_slice(&abort).unwrap();
        assert_eq!((t.message_type(), t.abort_cause()), (MessageType::Abort, Some(1)));
        let cont = [0x65, 0x06, 0x48, 0x01, 0x01, 0x49, 0x01, 0x02];
        assert_eq!(TcapSlice::from_slice(&cont).unwrap().components().len(), 0);
        // Continue without DTID, Begin without OTID, 5-octet tid, unknown message, bad component
        assert!(TcapSlice::from_slice(&[0x65, 0x03, 0x48, 0x01, 0x01]).is_err());
        assert!(TcapSlice::from_slice(&[0x62, 0x00]).is_err());
        // a 5-octet transaction id is decoded and reported
        let long = TcapSlice::from_slice(&[0x62, 0x07, 0x48, 0x05, 1, 2, 3, 4, 5]).unwrap();
        assert_eq!(long.otid(), Some(&[1u8, 2, 3, 4, 5][..]));
        assert!(matches!(long.anomalies().next(), Some(DecodeError::NonCanonical { layer: Layer::Tcap, .. })));
        assert!(TcapSlice::from_slice(&[0x63, 0x00]).is_err());
        assert!(TcapSlice::from_slice(&[0x62, 0x09, 0x48, 0x01, 0x01, 0x6c, 0x04, 0xa5, 0x02, 0x02, 0x00]).is_err());
        // Invoke without an operation code
        assert!(
            TcapSlice::from_slice(&[0x62, 0x0a, 0x48, 0x01, 0x01, 0x6c, 0x05, 0xa1, 0x03, 0x02, 0x01, 0x01]).is_err()
        );
        // too many components
        let mut comps = vec![];
        for _ in 0..=MAX_COMPONENTS {
            comps.extend_from_slice(&[0xa2, 0x03, 0x02, 0x01, 0x01]);
        }
        let mut m = vec![0x64, 0x82, 0, 0, 0x49, 0x01, 0x01, 0x6c, 0x81, comps.len() as u8];
        m.extend_from_slice(&comps);
        let l = (m.len() - 4) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        assert!(matches!(TcapSlice::from_slice(&m), Err(DecodeError::Limit { .. })));
        // laxly, the first MAX_COMPONENTS are kept beside the error
        let (t, e) = TcapSlice::from_slice_lax(&m).unwrap();
        assert_eq!(t.components().len(), MAX_COMPONENTS);
        assert!(matches!(e, Some(DecodeError::Limit { .. })));
    }

    #[test]
    fn deep_argument_keeps_the_operation_code() {
        // review H4 recipe 2: an ATI whose argument nests 30 indefinite-length levels, over
        // MAX_DEPTH: the invoke and its operation code stay, beside the Limit error
        let mut arg = vec![];
        for _ in 0..30 {
            arg.extend_from_slice(&[0x30, 0x80]);
        }
        arg.extend_from_slice(&[0x05, 0x00]);
        for _ in 0..30 {
            arg.extend_from_slice(&[0x00, 0x00]);
        }
        let mut invoke = vec![0x02, 0x01, 0x01, 0x02, 0x01, 71];
        invoke.extend(arg);
        let mut comp = vec![0xa1, 0x81, invoke.len() as u8];
        comp.extend(invoke);
        let mut comps = vec![0x6c, 0x81, comp.len() as u8];
        comps.extend(comp);
        let mut body = vec![0x48, 0x01, 0x01];
        body.extend(comps);
        let mut m = vec![0x62, 0x81, body.len() as u8];
        m.extend(body);
        assert!(matches!(TcapSlice::from_slice(&m), Err(DecodeError::Limit { .. })));
        let (t, e) = TcapSlice::from_slice_lax(&m).unwrap();
        assert!(matches!(e, Some(DecodeError::Limit { .. })));
        assert_eq!((t.components().len(), t.components()[0].op_code), (1, Some(Code::Local(71))));
        assert_eq!(t.components()[0].parameter, None);
    }

    fn anomalies(m: &[u8]) -> Vec<&'static str> {
        TcapSlice::from_slice_lax(m)
            .unwrap()
            .0
            .anomalies()
            .map(|e| match e {
                DecodeError::NonCanonical { what, .. } => what,
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn canonical_begin_has_no_anomalies() {
        assert_eq!(anomalies(&begin_sri_sm()), Vec::<&str>::new());
    }

    #[test]
    fn strictness_list_is_reported() {
        // global opcode (OID 1.2.3 instead of INTEGER 45)
        let m = [0x62, 0x0f, 0x48, 0x01, 0x01, 0x6c, 0x0a, 0xa1, 0x08, 0x02, 0x01, 0x01, 0x06, 0x03, 0x2a, 0x03, 0x04];
        let t = TcapSlice::from_slice(&m).unwrap();
        assert!(matches!(t.components()[0].op_code, Some(Code::Global(_))));
        assert_eq!(anomalies(&m), ["global operation or error code"]);
        // linked invoke in a Begin
        let m =
            [0x62, 0x10, 0x48, 0x01, 0x01, 0x6c, 0x0b, 0xa1, 0x09, 0x02, 0x01, 0x01, 0x80, 0x01, 0x00, 0x02, 0x01, 71];
        let t = TcapSlice::from_slice(&m).unwrap();
        assert_eq!((t.components()[0].linked_id, t.components()[0].op_code), (Some(0), Some(Code::Local(71))));
        assert_eq!(anomalies(&m), ["linked invoke in a message that opens a dialogue"]);
        // indefinite length on the message
        let m = [0x62, 0x80, 0x48, 0x01, 0x01, 0x00, 0x00];
        assert_eq!(anomalies(&m), ["indefinite length"]);
        // empty transaction id; bytes after the message
        assert_eq!(anomalies(&[0x62, 0x02, 0x48, 0x00]), ["transaction id is not 1 to 4 octets"]);
        assert_eq!(anomalies(&[0x62, 0x03, 0x48, 0x01, 0x01, 0xff]), ["bytes after the TCAP message"]);
        // an Abort carrying an invoke
        let m = [0x67, 0x0d, 0x49, 0x01, 0x01, 0x6c, 0x08, 0xa1, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x43];
        assert_eq!(anomalies(&m), ["component portion in an Abort"]);
    }

    /// A Begin whose AARQ carries the ACN with these OID contents.
    fn begin_with_acn(acn: &[u8]) -> Vec<u8> {
        let mut oid = vec![0x06, acn.len() as u8];
        oid.extend_from_slice(acn);
        let mut a1 = vec![0xa1, oid.len() as u8];
        a1.extend(oid);
        let mut aarq = vec![0x60, a1.len() as u8];
        aarq.extend(a1);
        let mut a0 = vec![0xa0, aarq.len() as u8];
        a0.extend(aarq);
        let mut ext = vec![0x28, (a0.len() + 9) as u8, 0x06, 0x07, 0x00, 0x11, 0x86, 0x05, 0x01, 0x01, 0x01];
        ext.extend(a0);
        let mut dp = vec![0x6b, ext.len() as u8];
        dp.extend(ext);
        let mut body = vec![0x48, 0x01, 0x01];
        body.extend(dp);
        let mut m = vec![0x62, body.len() as u8];
        m.extend(body);
        m
    }

    #[test]
    fn application_contexts() {
        assert_eq!(anomalies(&begin_with_acn(&[4, 0, 0, 1, 0, 29, 3])), Vec::<&str>::new());
        assert_eq!(anomalies(&begin_with_acn(&[4, 0, 0, 1, 21, 3, 4])), Vec::<&str>::new(), "CAP v2");
        assert_eq!(
            anomalies(&begin_with_acn(&[4, 0, 0, 1, 0, 29, 9])),
            ["MAP application-context version outside 1 to 4"]
        );
        assert_eq!(
            anomalies(&begin_with_acn(&[4, 0, 0, 1, 0, 29, 3, 1])),
            ["extended or truncated MAP application context"]
        );
        assert_eq!(anomalies(&begin_with_acn(&[0x2a, 3, 4])), ["unknown application context"]);
        // an AARQ without an application context
        let mut m = begin_with_acn(&[4, 0, 0, 1, 0, 29, 3]);
        let at = m.windows(2).position(|w| w == [0xa1, 0x09]).unwrap();
        m[at] = 0xa2; // the ACN field becomes some other field
        assert_eq!(anomalies(&m), ["dialogue request without an application context"]);
    }
}
