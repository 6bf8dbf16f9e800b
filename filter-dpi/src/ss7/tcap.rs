//! ITU-T TCAP (Q.773): Unidirectional, Begin, Continue, End and Abort; transaction ids; the
//! dialogue portion's application-context name; every component (Invoke, ReturnResult Last and
//! NotLast, ReturnError, Reject) with its invoke id and operation or error code.
//!
//! [`TcapSlice::from_slice`] reads the whole message with the bounded BER reader
//! ([`crate::ber`]) and keeps sub-slices; at most [`MAX_COMPONENTS`] components.

use crate::ber::{self, Budget, CLASS_APPLICATION, CLASS_CONTEXT, Children, TAG_INTEGER, TAG_NULL, TAG_OID, Tlv};
use crate::{DecodeError, Layer};

/// Components decoded per message; more is [`DecodeError::Limit`].
pub const MAX_COMPONENTS: usize = 32;
/// Transaction ids are 1 to 4 octets (Q.773 §3.2.1).
pub const MAX_TID_LEN: usize = 4;

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
}

impl<'a> TcapSlice<'a> {
    /// Decodes one TCAP message (trailing bytes after it are ignored).
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        let budget = Budget::new(Layer::Tcap);
        let (top, _) = Tlv::parse(data, &budget)?;
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
        };
        for e in top.children(&budget) {
            let e = e?;
            if e.class != CLASS_APPLICATION {
                continue;
            }
            match (e.tag, e.constructed) {
                (8, false) => m.otid = Some(tid(e.value)?),
                (9, false) => m.dtid = Some(tid(e.value)?),
                (10, false) => m.abort_cause = e.int(),
                (11, true) => m.dialogue(&e, &budget)?,
                (12, true) => m.read_components(&e, &budget)?,
                _ => {}
            }
        }
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
        Ok(m)
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
            self.components.push(component(kind, &c, budget)?);
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

fn tid(v: &[u8]) -> Result<&[u8], DecodeError> {
    if v.is_empty() || v.len() > MAX_TID_LEN {
        return Err(content("transaction id is not 1 to 4 octets"));
    }
    Ok(v)
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

fn component<'a>(kind: ComponentType, c: &Tlv<'a>, budget: &Budget) -> Result<Component<'a>, DecodeError> {
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
                let f = f?;
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
                out.parameter = inner.next().transpose()?;
            }
        }
        ComponentType::ReturnError => {
            let ec = fields.next().transpose()?.ok_or(content("ReturnError without an error code"))?;
            out.error_code = Some(code(&ec)?.ok_or(content("ReturnError without an error code"))?);
            out.parameter = fields.next().transpose()?;
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
    Ok(out)
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
        assert!(TcapSlice::from_slice(&[0x62, 0x07, 0x48, 0x05, 1, 2, 3, 4, 5]).is_err());
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
    }
}
