//! GSM MAP (3GPP TS 29.002): operation code → name, and the subscriber identities and node
//! numbers a rule needs (IMSI, MSISDN, VLR/MSC/HLR/SGSN numbers, service centre, gsmSCF, …)
//! taken from an Invoke's argument or a ReturnResult's result.
//!
//! Extraction is by tag within the argument's top-level SEQUENCE (and one level into the few
//! CHOICEs that hold identities), for MAP versions 1 to 3; unknown and extension fields are
//! skipped. Every read goes through the bounded BER reader ([`crate::ber`]).

use super::ops;
use crate::ber::{Budget, CLASS_CONTEXT, CLASS_UNIVERSAL, Children, TAG_OCTET_STRING, TAG_SEQUENCE, Tlv};
use crate::{DecodeError, Layer, digits};

/// Numbers kept per message (the MAP arguments handled here carry at most four).
pub const MAX_NUMBERS: usize = 8;
/// Octets of an IMSI (TS 23.003: 3 to 8).
pub const MAX_IMSI_OCTETS: usize = 8;
/// Octets of an AddressString's digits (TS 29.002: maxAddressLength 20, minus the TON/NPI octet).
pub const MAX_ADDRESS_OCTETS: usize = 19;

/// Operation name as tshark and TS 29.002 spell it (`None` for unassigned codes); see
/// [`super::ops`].
pub fn op_name(code: i64) -> Option<&'static str> {
    u8::try_from(code).ok().and_then(ops::name)
}

/// What a number in a MAP message stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumberRole {
    Msisdn,
    Vlr,
    Msc,
    Hlr,
    Sgsn,
    Ggsn,
    ServiceCentre,
    GsmScf,
    Gmsc,
    Mlc,
    /// networkNode-Number of a sendRoutingInfoForSM result (MSC, SGSN or MME).
    NetworkNode,
    /// Roaming number (MSRN) of a result.
    RoamingNumber,
}

/// A decoded AddressString / ISDN-AddressString (TS 29.002 §17.7.8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddressString {
    /// Nature of address (0 unknown, 1 international, …).
    pub nature: u8,
    /// Numbering plan (1 = E.164).
    pub plan: u8,
    pub digits: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number {
    pub role: NumberRole,
    pub address: AddressString,
}

/// Identities and numbers found in one MAP argument or result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    pub imsi: Option<String>,
    /// Every AddressString found, in message order (at most [`MAX_NUMBERS`]).
    pub numbers: Vec<Number>,
    /// What was decoded but is not canonical (an IMSI of the wrong length or with non-decimal
    /// digits or filler in the middle): reported by the caller as
    /// [`DecodeError::NonCanonical`] for layer MAP.
    pub noncanonical: Vec<&'static str>,
}

impl MapInfo {
    /// The first number with this role.
    pub fn number(&self, role: NumberRole) -> Option<&str> {
        self.numbers.iter().find(|n| n.role == role).map(|n| n.address.digits.as_str())
    }
    pub fn msisdn(&self) -> Option<&str> {
        self.number(NumberRole::Msisdn)
    }
    pub fn vlr_number(&self) -> Option<&str> {
        self.number(NumberRole::Vlr)
    }
    pub fn msc_number(&self) -> Option<&str> {
        self.number(NumberRole::Msc)
    }
    pub fn hlr_number(&self) -> Option<&str> {
        self.number(NumberRole::Hlr)
    }
    pub fn sgsn_number(&self) -> Option<&str> {
        self.number(NumberRole::Sgsn)
    }

    /// The IMSI that an argument has as its first field; an OCTET STRING elsewhere instead is
    /// reported, not taken.
    fn set_lead_imsi(&mut self, f: &Fields<'_>) {
        match f.lead_octets() {
            Some(v) => self.set_imsi(Some(v)),
            None if f.octets(0).is_some() => self.noncanonical.push("IMSI is not the argument's first field"),
            None => {}
        }
    }

    fn set_imsi(&mut self, v: Option<&[u8]>) {
        if self.imsi.is_none()
            && let Some(v) = v
        {
            let (d, bad) = imsi_lax(v);
            self.imsi = d;
            self.noncanonical.extend(bad);
        }
    }

    fn add(&mut self, role: NumberRole, v: Option<&[u8]>) {
        if self.numbers.len() < MAX_NUMBERS
            && let Some(a) = v.and_then(address_string)
        {
            // Digits after a filler (the fuzzer's empty MSISDN was `91 7f ...`): receivers
            // that skip the filler and receivers that stop at it read different numbers.
            let digits = v.and_then(|v| v.get(1..)).unwrap_or(&[]);
            if digits::nibbles(digits).skip_while(|&n| n != 0x0f).any(|n| n != 0x0f) {
                self.noncanonical.push("number has a filler before its last digit");
            }
            if a.digits.is_empty() {
                self.noncanonical.push("number without a digit");
                return;
            }
            self.numbers.push(Number { role, address: a });
        }
    }
}

/// TBCD digits (TS 29.002 §17.7.8): see [`digits::tbcd_map`] (0xA..0xE as `*`, `#`, `a`, `b`,
/// `c`; 0xF ends them).
pub fn tbcd(v: &[u8]) -> String {
    digits::tbcd_map(v)
}

/// An IMSI (TBCD, 3 to 8 octets); `None` if the length is out of range or it has no digit.
pub fn imsi(v: &[u8]) -> Option<String> {
    if v.len() < 3 || v.len() > MAX_IMSI_OCTETS {
        return None;
    }
    Some(tbcd(v)).filter(|s| !s.is_empty())
}

/// An IMSI as the most permissive receiver reads it, and what is not canonical about it.
/// Canonical (TS 23.003 §2.2, TS 29.002 §17.7.8): 3 to 8 octets, decimal digits, 0xF only as
/// the filler in the last octet's high nibble, 6 to 15 digits. Otherwise the digits are still
/// returned — every nibble up to [`digits::TBCD_MAX_OCTETS`] octets, a filler in the middle
/// skipped, 0xA-0xE rendered as [`tbcd`] does — so an IMSI rule still sees the subscriber a
/// lenient HLR would find, and the encoding is reported. `None` only when there is no digit.
pub fn imsi_lax(v: &[u8]) -> (Option<String>, Option<&'static str>) {
    let mut bad = None;
    if v.len() < 3 || v.len() > MAX_IMSI_OCTETS {
        bad = Some("IMSI is not 3 to 8 octets");
    }
    let v = &v[..v.len().min(digits::TBCD_MAX_OCTETS)];
    let n = v.len() * 2;
    let mut s = String::with_capacity(n);
    for (k, d) in digits::nibbles(v).enumerate() {
        match d {
            0..=9 => s.push(char::from(b'0' + d)),
            0x0f if k == n - 1 => {}
            0x0f => bad = bad.or(Some("IMSI has a filler before its last digit")),
            _ => {
                bad = bad.or(Some("IMSI has a non-decimal digit"));
                // 0xA-0xE as TS 29.002 names them (`tbcd` stops at 0xF, so pair with it)
                s.push_str(&tbcd(&[d | 0xf0]));
            }
        }
    }
    if bad.is_none() && !(6..=15).contains(&s.len()) {
        bad = Some("IMSI is not 6 to 15 digits");
    }
    ((!s.is_empty()).then_some(s), bad)
}

/// The lowest MAP application-context version in which an operation exists (TS 29.002 §17.6;
/// MAP v1 is GSM phase 1). Used to spot a version downgrade: a v2/v3 operation sent in a
/// dialogue of a lower version (or with no application context, which is v1), which a
/// receiver may still serve while a version-keyed check would not look at it. Operations not
/// listed exist since v1 or are not judged.
pub fn min_version(op: i64) -> u8 {
    use ops::*;
    let Ok(op) = u8::try_from(op) else { return 1 };
    match op {
        SEND_IDENTIFICATION
        | SEND_AUTHENTICATION_INFO
        | RESTORE_DATA
        | SEND_IMSI
        | PROCESS_UNSTRUCTURED_SS_REQUEST
        | UNSTRUCTURED_SS_REQUEST
        | UNSTRUCTURED_SS_NOTIFY
        | INFORM_SERVICE_CENTRE
        | ALERT_SERVICE_CENTRE
        | READY_FOR_SM
        | PURGE_MS => 2,
        NOTE_SUBSCRIBER_DATA_MODIFIED
        | UPDATE_GPRS_LOCATION
        | SEND_ROUTING_INFO_FOR_GPRS
        | FAILURE_REPORT
        | NOTE_MS_PRESENT_FOR_GPRS
        | MT_FORWARD_SM
        | ANY_TIME_SUBSCRIPTION_INTERROGATION
        | ANY_TIME_MODIFICATION
        | PROVIDE_SUBSCRIBER_INFO
        | ANY_TIME_INTERROGATION
        | PROVIDE_SUBSCRIBER_LOCATION
        | SEND_ROUTING_INFO_FOR_LCS
        | SUBSCRIBER_LOCATION_REPORT => 3,
        _ => 1,
    }
}

/// An AddressString: TON/NPI octet then TBCD digits (1 to [`MAX_ADDRESS_OCTETS`] octets).
pub fn address_string(v: &[u8]) -> Option<AddressString> {
    let (&first, digits) = v.split_first()?;
    if digits.is_empty() || digits.len() > MAX_ADDRESS_OCTETS {
        return None;
    }
    Some(AddressString { nature: (first >> 4) & 0x07, plan: first & 0x0f, digits: tbcd(digits) })
}

/// The top-level fields of an argument.
struct Fields<'a> {
    items: Vec<Tlv<'a>>,
    /// A field read by its context tag came after a context field with a higher tag.
    late: std::cell::Cell<bool>,
}

/// What [`Fields`] reports when a field it read by tag was out of its SEQUENCE position.
const OUT_OF_ORDER: &str =
    "MAP field after one its SEQUENCE puts later (read by tag; a receiver decoding in order does not see it)";

impl<'a> Fields<'a> {
    /// Fields of a constructed element; a primitive element is its own single field.
    fn of(t: &Tlv<'a>, budget: &Budget) -> Result<Self, DecodeError> {
        if !t.constructed {
            return Ok(Fields { items: vec![*t], late: std::cell::Cell::new(false) });
        }
        // Allocated once for the usual arguments: a field takes at least two octets, and
        // most arguments have a handful at the top level (more only grows the vector).
        let mut items = Vec::with_capacity((t.value.len() / 2).clamp(1, 8));
        for f in t.children(budget) {
            // A MAP argument has fewer than 40 top-level fields; the element budget bounds it.
            items.push(f?);
        }
        Ok(Fields { items, late: std::cell::Cell::new(false) })
    }
    /// The context-specific `[n]` field, primitive or constructed. Every field read by tag
    /// here comes, in its SEQUENCE's definition, after context fields of lower tags only; one
    /// found after a higher tag is out of order (BER encodes a SEQUENCE in definition order): a
    /// receiver decoding in order rejects it or skips it as an unknown extension, so reading it
    /// would judge a field the receiver does not see (differential fuzzer: an insertSubscriberData
    /// MSISDN [1] after networkAccessMode [24]). It is still read, and reported ([`Self::late`]).
    fn ctx_field(&self, n: u32, constructed: bool) -> Option<Tlv<'a>> {
        let k =
            self.items.iter().position(|t| t.class == CLASS_CONTEXT && t.tag == n && t.constructed == constructed)?;
        // Also late: after an application- or private-class element, which no MAP argument
        // defines before its extension marker, so an in-order decoder stops at it (differential
        // fuzzer: an insertSubscriberData MSISDN [1] after a [PRIVATE 5]).
        if self.items.iter().take(k).any(|t| {
            (t.class == CLASS_CONTEXT && t.tag > n) || (t.class != CLASS_CONTEXT && t.class != CLASS_UNIVERSAL)
        }) {
            self.late.set(true);
        }
        self.items.get(k).copied()
    }
    /// Primitive context-specific `[n]`.
    fn ctx(&self, n: u32) -> Option<&'a [u8]> {
        self.ctx_field(n, false).map(|t| t.value)
    }
    /// Constructed context-specific `[n]`.
    fn ctx_c(&self, n: u32) -> Option<Tlv<'a>> {
        self.ctx_field(n, true)
    }
    /// A field read by tag was out of its SEQUENCE position: reported in `info`.
    fn report_late(&self, info: &mut MapInfo) {
        if self.late.get() {
            info.noncanonical.push(OUT_OF_ORDER);
        }
    }
    /// The first field, if it is a universal OCTET STRING: where the IMSI of every argument
    /// that starts with one is. Not "the first OCTET STRING anywhere": with the IMSI's tag
    /// changed, that is the next one (the VLR number of an updateLocation), which the
    /// differential fuzzer caught being read as the IMSI.
    fn lead_octets(&self) -> Option<&'a [u8]> {
        self.items.first().filter(|t| t.is_universal(TAG_OCTET_STRING) && !t.constructed).map(|t| t.value)
    }
    /// The k-th universal OCTET STRING.
    fn octets(&self, k: usize) -> Option<&'a [u8]> {
        self.items.iter().filter(|t| t.class == CLASS_UNIVERSAL && t.tag == TAG_OCTET_STRING).nth(k).map(|t| t.value)
    }
    fn get(&self, i: usize) -> Option<&Tlv<'a>> {
        self.items.get(i)
    }
}

/// SubscriberIdentity ::= CHOICE { imsi [0], msisdn [1] } (also SRI-LCS targetMS).
fn subscriber_identity(info: &mut MapInfo, t: Option<Tlv<'_>>, budget: &Budget) -> Result<(), DecodeError> {
    if let Some(t) = t {
        let f = Fields::of(&t, budget)?;
        info.set_imsi(f.ctx(0));
        info.add(NumberRole::Msisdn, f.ctx(1));
    }
    Ok(())
}

/// A constructed argument or result is a SEQUENCE in every MAP version, or, in v3, a
/// `[3] IMPLICIT SEQUENCE` (cancelLocation, purgeMS, sendRoutingInfo results...). The fields are read by their tags whatever the outer tag (found
/// by the differential fuzzer: pycrate, like a receiver, rejects such an argument while the
/// field extraction here read the IMSI out of it), so another outer tag is reported.
fn check_argument_tag(i: &mut MapInfo, param: &Tlv<'_>) {
    if param.constructed && !param.is_universal(TAG_SEQUENCE) && !param.is_context(3) {
        i.noncanonical.push("constructed MAP argument or result that is not a SEQUENCE");
    }
    // The bare arguments of MAP v1/v2 (an IMSI, an ISDN-AddressString) are OCTET STRINGs; a
    // primitive argument with another tag was read as its own single field (a [1] argument
    // became an MSISDN: differential fuzzer).
    if !param.constructed && !param.is_universal(TAG_OCTET_STRING) {
        i.noncanonical.push("primitive MAP argument or result that is not an OCTET STRING");
    }
}

/// The argument of an Invoke of operation `op`. `param` is the component's parameter element.
pub fn decode_invoke(op: i64, param: &Tlv<'_>) -> Result<MapInfo, DecodeError> {
    use NumberRole::*;
    use ops::*;
    let budget = Budget::new(Layer::Map);
    let b = &budget;
    let mut i = MapInfo::default();
    check_argument_tag(&mut i, param);
    // `[3] IMPLICIT SEQUENCE` is the argument of cancelLocation and purgeMS only (TS 29.002
    // v3); any other operation's argument is a plain SEQUENCE, and a receiver rejects a [3]
    // (differential fuzzer: an updateLocation argument in [3] had its IMSI read).
    if param.is_context(3)
        && param.constructed
        && op != i64::from(ops::CANCEL_LOCATION)
        && op != i64::from(ops::PURGE_MS)
    {
        i.noncanonical.push("constructed MAP argument or result that is not a SEQUENCE");
    }
    let f = Fields::of(param, b)?;
    let bare_octets = param.class == CLASS_UNIVERSAL && param.tag == TAG_OCTET_STRING && !param.constructed;
    // MAP codes are 0..=127 (see `ops`); any other value names no operation handled here.
    let Ok(op) = u8::try_from(op) else { return Ok(i) };
    match op {
        UPDATE_LOCATION => {
            i.set_lead_imsi(&f);
            i.add(Msc, f.ctx(1));
            i.add(Vlr, f.octets(1));
        }
        CANCEL_LOCATION => {
            // v3: [3] IMPLICIT SEQUENCE { identity, … }; v1/v2: Identity itself.
            let id = if param.is_context(3) { f.get(0).copied() } else { Some(*param) };
            if let Some(id) = id {
                if id.is_universal(TAG_OCTET_STRING) {
                    i.set_imsi(Some(id.value));
                } else if id.is_universal(TAG_SEQUENCE) {
                    i.set_imsi(Fields::of(&id, b)?.octets(0));
                }
            }
        }
        PROVIDE_ROAMING_NUMBER => {
            i.set_imsi(f.ctx(0));
            i.add(Msc, f.ctx(1));
            i.add(Msisdn, f.ctx(2));
            i.add(Gmsc, f.ctx(8));
        }
        NOTE_SUBSCRIBER_DATA_MODIFIED => {
            i.set_lead_imsi(&f);
            i.add(Msisdn, f.octets(1));
        }
        INSERT_SUBSCRIBER_DATA => {
            i.set_imsi(f.ctx(0));
            i.add(Msisdn, f.ctx(1));
        }
        DELETE_SUBSCRIBER_DATA
        | NOTE_MS_PRESENT_FOR_GPRS
        | ACTIVATE_TRACE_MODE
        | DEACTIVATE_TRACE_MODE
        | READY_FOR_SM
        | PROVIDE_SUBSCRIBER_INFO
        | SET_REPORTING_STATE
        | STATUS_REPORT
        | REMOTE_USER_FREE
        | IST_ALERT
        | IST_COMMAND => i.set_imsi(f.ctx(0)),
        AUTHENTICATION_FAILURE_REPORT | RESTORE_DATA => i.set_lead_imsi(&f),
        SEND_ROUTING_INFO => {
            i.add(Msisdn, f.ctx(0));
            i.add(Gmsc, f.ctx(6));
        }
        UPDATE_GPRS_LOCATION => {
            i.set_lead_imsi(&f);
            i.add(Sgsn, f.octets(1));
        }
        SEND_ROUTING_INFO_FOR_GPRS => {
            i.set_imsi(f.ctx(0));
            i.add(Ggsn, f.ctx(2));
        }
        FAILURE_REPORT => {
            i.set_imsi(f.ctx(0));
            i.add(Ggsn, f.ctx(1));
        }
        RESET => i.add(Hlr, f.octets(0)),
        MT_FORWARD_SM | MO_FORWARD_SM => {
            // sm-RP-DA CHOICE { imsi [0], lmsi [1], serviceCentreAddressDA [4], noSM-RP-DA [5] }
            if let Some(da) = f.get(0) {
                if da.is_context(0) {
                    i.set_imsi(Some(da.value));
                } else if da.is_context(4) {
                    i.add(ServiceCentre, Some(da.value));
                }
            }
            // sm-RP-OA CHOICE { msisdn [2], serviceCentreAddressOA [4], noSM-RP-OA [5] }
            if let Some(oa) = f.get(1) {
                if oa.is_context(2) {
                    i.add(Msisdn, Some(oa.value));
                } else if oa.is_context(4) {
                    i.add(ServiceCentre, Some(oa.value));
                }
            }
            // mo-forwardSM v3: imsi IMSI after sm-RP-UI (the first OCTET STRING).
            if op == MO_FORWARD_SM {
                i.set_imsi(f.octets(1));
            }
        }
        SEND_ROUTING_INFO_FOR_SM => {
            i.add(Msisdn, f.ctx(0));
            i.add(ServiceCentre, f.ctx(2));
        }
        REPORT_SM_DELIVERY_STATUS | ALERT_SERVICE_CENTRE_WITHOUT_RESULT | ALERT_SERVICE_CENTRE => {
            i.add(Msisdn, f.octets(0));
            i.add(ServiceCentre, f.octets(1));
        }
        SEND_AUTHENTICATION_INFO => {
            if bare_octets {
                i.set_imsi(Some(param.value)); // v2: IMSI
            } else {
                i.set_imsi(f.ctx(0));
            }
        }
        SEND_IMSI if bare_octets => i.add(Msisdn, Some(param.value)),
        PROCESS_UNSTRUCTURED_SS_REQUEST | UNSTRUCTURED_SS_REQUEST | UNSTRUCTURED_SS_NOTIFY => i.add(Msisdn, f.ctx(0)),
        ANY_TIME_SUBSCRIPTION_INTERROGATION => {
            subscriber_identity(&mut i, f.ctx_c(0), b)?;
            i.add(GsmScf, f.ctx(2));
        }
        INFORM_SERVICE_CENTRE => i.add(Msisdn, f.octets(0)),
        ANY_TIME_MODIFICATION => {
            subscriber_identity(&mut i, f.ctx_c(0), b)?;
            i.add(GsmScf, f.ctx(1));
        }
        PURGE_MS => {
            // v3: [3] IMPLICIT SEQUENCE { imsi, vlr-Number [0], sgsn-Number [1] }; v2: SEQUENCE
            // { imsi, vlr-Number }.
            i.set_lead_imsi(&f);
            i.add(Vlr, f.ctx(0).or(f.octets(1)));
            i.add(Sgsn, f.ctx(1));
        }
        ANY_TIME_INTERROGATION => {
            subscriber_identity(&mut i, f.ctx_c(0), b)?;
            i.add(GsmScf, f.ctx(3));
        }
        SS_INVOCATION_NOTIFICATION => {
            i.set_imsi(f.ctx(0));
            i.add(Msisdn, f.ctx(1));
        }
        PROVIDE_SUBSCRIBER_LOCATION => {
            i.add(Mlc, f.octets(0));
            i.set_imsi(f.ctx(2));
            i.add(Msisdn, f.ctx(3));
        }
        SEND_ROUTING_INFO_FOR_LCS => {
            i.add(Mlc, f.ctx(0));
            subscriber_identity(&mut i, f.ctx_c(1), b)?;
        }
        SUBSCRIBER_LOCATION_REPORT => {
            i.add(Msisdn, f.ctx(2));
            i.set_imsi(f.ctx(3));
        }
        NOTE_MM_EVENT => {
            i.set_imsi(f.ctx(1));
            i.add(Msisdn, f.ctx(2));
        }
        _ => {}
    }
    f.report_late(&mut i);
    Ok(i)
}

/// The result of a ReturnResult for operation `op`.
pub fn decode_result(op: i64, param: &Tlv<'_>) -> Result<MapInfo, DecodeError> {
    use NumberRole::*;
    use ops::*;
    let budget = Budget::new(Layer::Map);
    let b = &budget;
    let mut i = MapInfo::default();
    check_argument_tag(&mut i, param);
    // `[3] IMPLICIT SEQUENCE` is the argument of cancelLocation and purgeMS only (TS 29.002
    // v3); any other operation's argument is a plain SEQUENCE, and a receiver rejects a [3]
    // (differential fuzzer: an updateLocation argument in [3] had its IMSI read).
    if param.is_context(3)
        && param.constructed
        && op != i64::from(ops::CANCEL_LOCATION)
        && op != i64::from(ops::PURGE_MS)
    {
        i.noncanonical.push("constructed MAP argument or result that is not a SEQUENCE");
    }
    let f = Fields::of(param, b)?;
    let bare_octets = param.is_universal(TAG_OCTET_STRING) && !param.constructed;
    let Ok(op) = u8::try_from(op) else { return Ok(i) };
    match op {
        UPDATE_LOCATION | UPDATE_GPRS_LOCATION => i.add(Hlr, f.octets(0)),
        PROVIDE_ROAMING_NUMBER => i.add(RoamingNumber, f.octets(0)),
        SEND_ROUTING_INFO => {
            if param.is_context(3) {
                i.set_imsi(f.ctx(9));
            } else {
                i.set_lead_imsi(&f);
                i.add(RoamingNumber, f.octets(1));
            }
        }
        SEND_ROUTING_INFO_FOR_SM => {
            i.set_lead_imsi(&f);
            if let Some(loc) = f.ctx_c(0) {
                let l = Fields::of(&loc, b)?;
                i.add(NetworkNode, l.ctx(1));
                l.report_late(&mut i);
            }
        }
        SEND_IDENTIFICATION => i.set_lead_imsi(&f),
        SEND_IMSI if bare_octets => i.set_imsi(Some(param.value)),
        PROVIDE_SUBSCRIBER_INFO | ANY_TIME_INTERROGATION => {
            // SEQUENCE { subscriberInfo SEQUENCE { locationInformation [0] { …, vlr-number [1],
            // …, msc-Number [6], … }, … }, … }
            let info = f.items.iter().find(|t| t.is_universal(TAG_SEQUENCE) && t.constructed).copied();
            if let Some(info) = info
                && let Some(loc) = Fields::of(&info, b)?.ctx_c(0)
            {
                let l = Fields::of(&loc, b)?;
                i.add(Vlr, l.ctx(1));
                i.add(Msc, l.ctx(6));
                l.report_late(&mut i);
            }
        }
        _ => {}
    }
    f.report_late(&mut i);
    Ok(i)
}

/// Parses a parameter given as raw bytes (identifier, length, contents) and decodes it as the
/// argument (`invoke`) or result of `op`.
pub fn decode_raw(op: i64, raw: &[u8], invoke: bool) -> Result<MapInfo, DecodeError> {
    let budget = Budget::new(Layer::Map);
    let (t, _) = Tlv::parse(raw, &budget)?;
    if invoke { decode_invoke(op, &t) } else { decode_result(op, &t) }
}

/// The elements of a parameter's contents, for callers that want more than this module extracts.
pub fn fields<'a, 'b>(param: &Tlv<'a>, budget: &'b Budget) -> Children<'a, 'b> {
    param.children(budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut o = vec![tag, v.len() as u8];
        o.extend_from_slice(v);
        o
    }

    const IMSI: &[u8] = &[0x22, 0x08, 0x21, 0x21, 0x10, 0x90, 0x58, 0xf6]; // 228012120109856
    const MSISDN: &[u8] = &[0x91, 0x14, 0x97, 0x42, 0x75, 0x33, 0xf3]; // 41792457333

    #[test]
    fn names() {
        for (c, n) in [
            (71, "anyTimeInterrogation"),
            (83, "provideSubscriberLocation"),
            (85, "sendRoutingInfoForLCS"),
            (58, "sendIMSI"),
            (65, "anyTimeModification"),
            (62, "anyTimeSubscriptionInterrogation"),
            (55, "sendIdentification"),
            (7, "insertSubscriberData"),
            (3, "cancelLocation"),
            (70, "provideSubscriberInfo"),
            (67, "purgeMS"),
            (2, "updateLocation"),
            (45, "sendRoutingInfoForSM"),
            (46, "mo-forwardSM"),
            (44, "mt-forwardSM"),
            (56, "sendAuthenticationInfo"),
            (22, "sendRoutingInfo"),
        ] {
            assert_eq!(op_name(c), Some(n));
        }
        assert_eq!(op_name(0), None);
        assert_eq!(op_name(-1), None);
        assert_eq!((1..=90).filter(|c| op_name(*c).is_some()).count(), 86);
    }

    #[test]
    fn tbcd_and_addresses() {
        assert_eq!(imsi(IMSI).unwrap(), "228012120109856");
        assert_eq!(imsi(&[0x22]), None);
        assert_eq!(imsi_lax(IMSI), (Some("228012120109856".into()), None));
    }

    #[test]
    fn imsi_encodings_decoded_and_reported() {
        // over-long (10 octets): all digits, reported
        let (d, bad) = imsi_lax(&[0x22, 0x08, 0x21, 0x21, 0x10, 0x89, 0x65, 0x43, 0x21, 0xf0]);
        assert_eq!((d.as_deref(), bad), (Some("2280121201985634120"), Some("IMSI is not 3 to 8 octets")));
        // a filler in the middle does not end it
        let (d, bad) = imsi_lax(&[0x22, 0xf8, 0x21, 0x21, 0x10, 0x89, 0xf5]);
        assert_eq!((d.as_deref(), bad), (Some("228121201985"), Some("IMSI has a filler before its last digit")));
        // non-decimal digit
        let (d, bad) = imsi_lax(&[0x22, 0x08, 0x2a, 0x21, 0x10, 0x89, 0xf5]);
        assert_eq!((d.as_deref(), bad), (Some("2280*21201985"), Some("IMSI has a non-decimal digit")));
        // too few digits, and no digit at all
        assert_eq!(imsi_lax(&[0x22, 0xf8, 0xff]).1, Some("IMSI has a filler before its last digit"));
        assert_eq!(imsi_lax(&[0x22, 0x08, 0xf1]).1, Some("IMSI is not 6 to 15 digits"));
        assert_eq!(imsi_lax(&[]), (None, Some("IMSI is not 3 to 8 octets")));
    }

    #[test]
    fn argument_tag_checked() {
        let b = Budget::new(Layer::Map);
        // purgeMS argument { imsi } as a SEQUENCE, then as [2] constructed (fuzzer case)
        let seq = [0x30, 0x05, 0x04, 0x03, 0x34, 0x35, 0x01];
        let (t, _) = Tlv::parse(&seq, &b).unwrap();
        let i = decode_invoke(i64::from(ops::PURGE_MS), &t).unwrap();
        assert_eq!((i.imsi.as_deref(), i.noncanonical.len()), (Some("435310"), 0));
        let mut ctx = seq;
        ctx[0] = 0xa2;
        let (t, _) = Tlv::parse(&ctx, &b).unwrap();
        let i = decode_invoke(i64::from(ops::PURGE_MS), &t).unwrap();
        assert!(i.noncanonical.contains(&"constructed MAP argument or result that is not a SEQUENCE"));
        let i = decode_result(i64::from(ops::PURGE_MS), &t).unwrap();
        assert!(i.noncanonical.contains(&"constructed MAP argument or result that is not a SEQUENCE"));
        // the IMSI's tag changed: the VLR number (the next OCTET STRING) is not taken for it
        let ul = [0x30, 0x0c, 0x84, 0x03, 0x05, 0x66, 0x13, 0x81, 0x01, 0x91, 0x04, 0x02, 0x91, 0x69];
        let (t, _) = Tlv::parse(&ul, &b).unwrap();
        let i = decode_invoke(i64::from(ops::UPDATE_LOCATION), &t).unwrap();
        assert_eq!(i.imsi, None);
        assert!(i.noncanonical.contains(&"IMSI is not the argument's first field"));
        // a primitive [1] argument is not an MSISDN field
        let prim = [0x81, 0x04, 0x91, 0x28, 0x84, 0xf3];
        let (t, _) = Tlv::parse(&prim, &b).unwrap();
        let i = decode_invoke(i64::from(ops::INSERT_SUBSCRIBER_DATA), &t).unwrap();
        assert!(i.noncanonical.contains(&"primitive MAP argument or result that is not an OCTET STRING"));
        // cancelLocation v3's [3] is fine
        let cl = [0xa3, 0x05, 0x04, 0x03, 0x34, 0x35, 0x01];
        let (t, _) = Tlv::parse(&cl, &b).unwrap();
        let i = decode_invoke(i64::from(ops::CANCEL_LOCATION), &t).unwrap();
        assert!(!i.noncanonical.contains(&"constructed MAP argument or result that is not a SEQUENCE"));
    }

    #[test]
    fn field_out_of_sequence_order_is_reported() {
        let b = Budget::new(Layer::Map);
        // insertSubscriberData { networkAccessMode [24], msisdn [1] } (differential fuzzer):
        // msisdn is read, and reported as out of order; in order, it is not reported
        let late = [
            0x30, 0x10, 0x98, 0x04, 0x06, 0x90, 0x73, 0xf5, 0x81, 0x08, 0x91, 0x00, 0x07, 0x97, 0x66, 0x60, 0x15, 0xf6,
        ];
        let (t, _) = Tlv::parse(&late, &b).unwrap();
        let i = decode_invoke(i64::from(ops::INSERT_SUBSCRIBER_DATA), &t).unwrap();
        assert_eq!((i.msisdn(), i.noncanonical.as_slice()), (Some("0070796606516"), &[OUT_OF_ORDER][..]));
        let in_order = [
            0x30, 0x10, 0x81, 0x08, 0x91, 0x00, 0x07, 0x97, 0x66, 0x60, 0x15, 0xf6, 0x98, 0x04, 0x06, 0x90, 0x73, 0xf5,
        ];
        let (t, _) = Tlv::parse(&in_order, &b).unwrap();
        let i = decode_invoke(i64::from(ops::INSERT_SUBSCRIBER_DATA), &t).unwrap();
        assert_eq!((i.msisdn(), i.noncanonical.len()), (Some("0070796606516"), 0));
        // a higher tag after the field read, or a lower one before it, is in order
        let sri_sm = [0x30, 0x0d, 0x80, 0x03, 0x91, 0x41, 0x22, 0x81, 0x01, 0xff, 0x82, 0x03, 0x91, 0x41, 0x22];
        let (t, _) = Tlv::parse(&sri_sm, &b).unwrap();
        let i = decode_invoke(i64::from(ops::SEND_ROUTING_INFO_FOR_SM), &t).unwrap();
        assert_eq!(i.noncanonical.len(), 0);
        // A [PRIVATE 5] before msisdn [1] (differential fuzzer, 2026-12-03 long run): late.
        let private =
            [0x30, 0x0f, 0xff, 0x05, 0x04, 0x14, 0x21, 0x32, 0x73, 0x81, 0x06, 0x91, 0x67, 0x96, 0x50, 0x65, 0xf6];
        let (t, _) = Tlv::parse(&private, &b).unwrap();
        let i = decode_invoke(i64::from(ops::INSERT_SUBSCRIBER_DATA), &t).unwrap();
        assert_eq!(i.noncanonical.as_slice(), &[OUT_OF_ORDER][..]);
        // An updateLocation argument in [3] (only cancelLocation's and purgeMS's are): reported.
        let ul3 = [0xa3, 0x06, 0x04, 0x04, 0x03, 0x65, 0x15, 0x38];
        let (t, _) = Tlv::parse(&ul3, &b).unwrap();
        let i = decode_invoke(i64::from(ops::UPDATE_LOCATION), &t).unwrap();
        assert!(i.noncanonical.contains(&"constructed MAP argument or result that is not a SEQUENCE"), "{i:?}");
        let i = decode_invoke(i64::from(ops::CANCEL_LOCATION), &t).unwrap();
        assert!(i.noncanonical.is_empty(), "{i:?}");
    }

    #[test]
    fn numbers_with_a_filler_first_are_reported() {
        let mut i = MapInfo::default();
        i.add(NumberRole::Msisdn, Some(&[0x91, 0x7f, 0x25]));
        assert_eq!(i.msisdn(), None);
        assert_eq!(i.noncanonical, ["number has a filler before its last digit", "number without a digit"]);
        let mut i = MapInfo::default();
        i.add(NumberRole::Msisdn, Some(&[0x91, 0x21, 0xf3]));
        assert_eq!((i.msisdn(), i.noncanonical.len()), (Some("123"), 0));
    }

    #[test]
    fn minimum_versions() {
        assert_eq!(min_version(i64::from(ops::ANY_TIME_INTERROGATION)), 3);
        assert_eq!(min_version(i64::from(ops::PURGE_MS)), 2);
        assert_eq!(min_version(i64::from(ops::UPDATE_LOCATION)), 1);
        assert_eq!(min_version(-1), 1);
        let a = address_string(MSISDN).unwrap();
        assert_eq!((a.nature, a.plan, a.digits.as_str()), (1, 1, "41792457333"));
        assert_eq!(address_string(&[0x91]), None);
        assert_eq!(tbcd(&[0xa1, 0xcb, 0xfe]), "1*#ac");
    }

    #[test]
    fn ati_and_update_location() {
        // ATI: subscriberIdentity [0] { msisdn [1] }, requestedInfo [1] {}, gsmSCF-Address [3]
        let mut seq = tlv(0xa0, &tlv(0x81, MSISDN));
        seq.extend(tlv(0xa1, &[]));
        seq.extend(tlv(0x83, MSISDN));
        let p = tlv(0x30, &seq);
        let i = decode_raw(71, &p, true).unwrap();
        assert_eq!(
            (i.msisdn(), i.number(NumberRole::GsmScf), i.imsi.as_deref()),
            (Some("41792457333"), Some("41792457333"), None)
        );
        // UpdateLocation: imsi, msc-Number [1], vlr-Number, plus an unknown extension
        let mut seq = tlv(0x04, IMSI);
        seq.extend(tlv(0x81, MSISDN));
        seq.extend(tlv(0x04, MSISDN));
        seq.extend([0xbf, 0x30, 0x00]); // [48] extension, unknown here
        let p = tlv(0x30, &seq);
        let i = decode_raw(2, &p, true).unwrap();
        assert_eq!(i.imsi.as_deref(), Some("228012120109856"));
        assert_eq!((i.msc_number(), i.vlr_number()), (Some("41792457333"), Some("41792457333")));
        for n in 0..p.len() {
            assert!(decode_raw(2, &p[..n], true).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn cancel_location_versions_and_sendimsi() {
        let v3 = tlv(0xa3, &tlv(0x04, IMSI));
        assert_eq!(decode_raw(3, &v3, true).unwrap().imsi.as_deref(), Some("228012120109856"));
        let v2 = tlv(0x30, &[tlv(0x04, IMSI), tlv(0x04, &[1, 2, 3, 4])].concat());
        assert_eq!(decode_raw(3, &v2, true).unwrap().imsi.as_deref(), Some("228012120109856"));
        let v1 = tlv(0x04, IMSI);
        assert_eq!(decode_raw(3, &v1, true).unwrap().imsi.as_deref(), Some("228012120109856"));
        assert_eq!(decode_raw(58, &tlv(0x04, MSISDN), true).unwrap().msisdn(), Some("41792457333"));
        assert_eq!(decode_raw(58, &tlv(0x04, IMSI), false).unwrap().imsi.as_deref(), Some("228012120109856"));
        // a wrong type where a SEQUENCE is expected is not an error, just nothing found
        // an INTEGER where ATI has a SEQUENCE: nothing taken, and reported
        let i = decode_raw(71, &tlv(0x02, &[1]), true).unwrap();
        assert_eq!((i.imsi, i.numbers.len(), i.noncanonical.len()), (None, 0, 1));
    }

    #[test]
    fn forward_sm_and_sri_sm_result() {
        let p = tlv(0x30, &[tlv(0x80, IMSI), tlv(0x82, MSISDN), tlv(0x04, &[0x11, 0x22])].concat());
        let i = decode_raw(46, &p, true).unwrap();
        assert_eq!((i.imsi.as_deref(), i.msisdn()), (Some("228012120109856"), Some("41792457333")));
        let p = tlv(0x30, &[tlv(0x04, IMSI), tlv(0xa0, &tlv(0x81, MSISDN))].concat());
        let i = decode_raw(45, &p, false).unwrap();
        assert_eq!(
            (i.imsi.as_deref(), i.number(NumberRole::NetworkNode)),
            (Some("228012120109856"), Some("41792457333"))
        );
    }
}
