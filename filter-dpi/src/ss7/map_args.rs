//! MAP arguments the subscriber-state rules need beyond the identities [`super::map`] takes:
//! the supplementary-service operations' SS-Code and forwarded-to number (registerSS, eraseSS,
//! activateSS, deactivateSS, interrogateSS), the short message of MT/MO-forwardSM (`sm-RP-UI`,
//! an SMS TPDU: [`crate::sms`]), and the MAP-OpenInfo of the dialogue portion, whose
//! destination reference is how a VLR names the subscriber (the IMSI) on operations whose
//! argument carries no identity (TS 29.002 §7.3 and §17.1: registerSS and friends).
//!
//! Owned values (the decoded message outlives the packet buffer); every read goes through the
//! bounded BER reader ([`crate::ber`]); an element of the wrong shape is skipped, not an error.

use super::{map::AddressString, map::address_string, ops};
use crate::ber::{Budget, CLASS_APPLICATION, CLASS_UNIVERSAL, TAG_EXTERNAL, TAG_OCTET_STRING, Tlv};
use crate::{DecodeError, Layer};

/// The longest `sm-RP-UI` kept (TS 29.002: SignalInfo of at most 200 octets).
pub const MAX_SM_RP_UI: usize = 200;

/// SS-Codes (TS 29.002 §17.7.5) of call forwarding: all forwarding (0x20), unconditional
/// (0x21), all conditional (0x28), busy (0x29), no reply (0x2A), not reachable (0x2B).
pub const SS_CALL_FORWARDING: [u8; 6] = [0x20, 0x21, 0x28, 0x29, 0x2a, 0x2b];

/// `sm-RP-DA` of (mt-/mo-)forwardSM (TS 29.002 §7.6.8.1): whom the short message is for. An
/// IMSI or LMSI names a mobile (the message goes to it: MT); a service centre address names
/// the SC (MO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmRpDa {
    Imsi,
    /// `lmsi [1]`: the VLR's local identity of the subscriber (4 octets).
    Lmsi,
    ServiceCentre,
    NoSmRpDa,
}

/// `sm-RP-OA`: who sends it. A service centre address means the message comes from the SC
/// (MT); an MSISDN means it comes from a mobile (MO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmRpOa {
    Msisdn,
    /// `serviceCentreAddressOA [4]`, with its digits.
    ServiceCentre(AddressString),
    NoSmRpOa,
}

/// What [`decode_invoke`] found in one component's parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapArgs {
    /// SS-Code of a supplementary-service operation.
    pub ss_code: Option<u8>,
    /// forwardedToNumber `[4]` of registerSS (where calls would be diverted).
    pub forwarded_to: Option<AddressString>,
    /// The SMS TPDU of MT/MO-forwardSM and mt-ForwardSM-VGCS, copied (at most
    /// [`MAX_SM_RP_UI`] octets).
    pub sm_rp_ui: Option<Vec<u8>>,
    /// The kind of `sm-RP-DA` (forwardSM, mt-/mo-forwardSM; mt-ForwardSM-VGCS has none).
    pub sm_rp_da: Option<SmRpDa>,
    /// The kind of `sm-RP-OA` (and the service centre's address when it is one).
    pub sm_rp_oa: Option<SmRpOa>,
}

impl MapArgs {
    pub fn is_empty(&self) -> bool {
        *self == MapArgs::default()
    }

    /// Which way a forwarded short message goes, from its SM-RP addresses (TS 29.002 §12.2,
    /// §12.9): code 46 is `forwardSM` in MAP v1/v2, used both ways, so its code does not say.
    /// An IMSI or LMSI as SM-RP-DA, or a service centre as SM-RP-OA, means towards the mobile;
    /// a service centre as SM-RP-DA or an MSISDN as SM-RP-OA means from it. Where the two
    /// disagree (malformed), towards the mobile wins: that is the direction the SIM checks
    /// guard. `None`: the addresses do not say (noSM-RP-DA and noSM-RP-OA, or not decoded).
    pub fn sm_direction(&self) -> Option<crate::sms::Direction> {
        use crate::sms::Direction;
        let da = match self.sm_rp_da {
            Some(SmRpDa::Imsi | SmRpDa::Lmsi) => Some(Direction::ToMs),
            Some(SmRpDa::ServiceCentre) => Some(Direction::FromMs),
            _ => None,
        };
        let oa = match self.sm_rp_oa {
            Some(SmRpOa::ServiceCentre(_)) => Some(Direction::ToMs),
            Some(SmRpOa::Msisdn) => Some(Direction::FromMs),
            _ => None,
        };
        match (da, oa) {
            (Some(Direction::ToMs), _) | (_, Some(Direction::ToMs)) => Some(Direction::ToMs),
            (Some(d), _) | (_, Some(d)) => Some(d),
            (None, None) => None,
        }
    }

    /// The service centre of SM-RP-OA (the sender of a mobile-terminated message).
    pub fn sc_origin(&self) -> Option<&str> {
        match &self.sm_rp_oa {
            Some(SmRpOa::ServiceCentre(a)) => Some(a.digits.as_str()),
            _ => None,
        }
    }
}

/// A supplementary-service change (a Category 3 operation when it comes from a network where
/// the subscriber is not registered).
pub fn is_ss_operation(op: i64) -> bool {
    matches!(
        u8::try_from(op),
        Ok(ops::REGISTER_SS | ops::ERASE_SS | ops::ACTIVATE_SS | ops::DEACTIVATE_SS | ops::INTERROGATE_SS)
    )
}

/// The argument of an Invoke of `op`; empty for operations not handled here.
pub fn decode_invoke(op: i64, param: &Tlv<'_>) -> Result<MapArgs, DecodeError> {
    let budget = Budget::new(Layer::Map);
    let mut a = MapArgs::default();
    let Ok(op) = u8::try_from(op) else { return Ok(a) };
    if !param.constructed {
        return Ok(a);
    }
    match op {
        ops::REGISTER_SS | ops::ERASE_SS | ops::ACTIVATE_SS | ops::DEACTIVATE_SS | ops::INTERROGATE_SS => {
            // RegisterSS-Arg / SS-ForBS-Code ::= SEQUENCE { ss-Code SS-Code, basicService
            // CHOICE [2]/[3] OPTIONAL, forwardedToNumber [4] (registerSS), … }
            for f in param.children(&budget) {
                let f = f?;
                if f.is_universal(TAG_OCTET_STRING) && !f.constructed && a.ss_code.is_none() {
                    a.ss_code = (f.value.len() == 1).then(|| f.value[0]);
                } else if op == ops::REGISTER_SS && f.is_context(4) && !f.constructed {
                    a.forwarded_to = address_string(f.value);
                }
            }
        }
        ops::MT_FORWARD_SM | ops::MO_FORWARD_SM | ops::MT_FORWARD_SM_VGCS => {
            // forwardSM (v1/v2, code 46), mt-forwardSM (44), mo-forwardSM (46, v3):
            //   SEQUENCE { sm-RP-DA CHOICE, sm-RP-OA CHOICE, sm-RP-UI SignalInfo, … }
            // mt-ForwardSM-VGCS (21): SEQUENCE { asciCallReference OCTET STRING, sm-RP-OA
            //   CHOICE, sm-RP-UI SignalInfo, … } — the TPDU is the OCTET STRING after sm-RP-OA,
            //   not the first one.
            // The CHOICEs are context-tagged: DA imsi [0], lmsi [1], serviceCentreAddressDA [4],
            // noSM-RP-DA [5]; OA msisdn [2], serviceCentreAddressOA [4], noSM-RP-OA [5].
            let vgcs = op == ops::MT_FORWARD_SM_VGCS;
            let mut choices = 0;
            let mut octet_strings = 0;
            for f in param.children(&budget) {
                let f = f?;
                if f.class == CLASS_UNIVERSAL && f.tag == TAG_OCTET_STRING && !f.constructed {
                    octet_strings += 1;
                    if vgcs && octet_strings == 1 {
                        continue;
                    }
                    if f.value.len() > MAX_SM_RP_UI {
                        return Err(DecodeError::Limit { layer: Layer::Map, what: "sm-RP-UI over 200 octets" });
                    }
                    a.sm_rp_ui = Some(f.value.to_vec());
                    break;
                }
                if f.class != crate::ber::CLASS_CONTEXT || f.constructed {
                    continue;
                }
                choices += 1;
                let is_da = !vgcs && choices == 1;
                if is_da {
                    a.sm_rp_da = match f.tag {
                        0 => Some(SmRpDa::Imsi),
                        1 => Some(SmRpDa::Lmsi),
                        4 => Some(SmRpDa::ServiceCentre),
                        5 => Some(SmRpDa::NoSmRpDa),
                        _ => None,
                    };
                } else if a.sm_rp_oa.is_none() {
                    a.sm_rp_oa = match f.tag {
                        2 => Some(SmRpOa::Msisdn),
                        4 => address_string(f.value).map(SmRpOa::ServiceCentre),
                        5 => Some(SmRpOa::NoSmRpOa),
                        _ => None,
                    };
                }
            }
        }
        _ => {}
    }
    Ok(a)
}

/// Parses raw parameter bytes (identifier, length, contents) and decodes them as [`decode_invoke`].
pub fn decode_raw(op: i64, raw: &[u8]) -> Result<MapArgs, DecodeError> {
    let budget = Budget::new(Layer::Map);
    let (t, _) = Tlv::parse(raw, &budget)?;
    decode_invoke(op, &t)
}

/// MAP-OpenInfo (TS 29.002 §17.3.3) of a dialogue request: destination and origination
/// references (AddressStrings; for SS operations the destination reference holds the IMSI in
/// TBCD after the TON/NPI octet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenInfo {
    pub destination_reference: Option<AddressString>,
    pub origination_reference: Option<AddressString>,
}

/// The MAP-OpenInfo of a whole TCAP message (`tcap` from its first identifier octet), if its
/// dialogue portion carries one: dialoguePortion `[APPLICATION 11]` → EXTERNAL → `[0]` → AARQ
/// `[APPLICATION 0]` → user-information `[30]` → EXTERNAL → `[0]` → map-open `[0]` → references
/// `[0]`/`[1]`.
/// Any shape it does not expect yields `None`.
pub fn open_info(tcap: &[u8]) -> Option<OpenInfo> {
    fn child<'a>(t: &Tlv<'a>, b: &Budget, pick: impl Fn(&Tlv<'a>) -> bool) -> Option<Tlv<'a>> {
        t.children(b).map_while(Result::ok).find(|c| pick(c))
    }
    // The user-information element read below is `[30]` constructed: an identifier octet of
    // 0xBE (or 0xBF, the high-tag-number form). A message without either octet has none, and
    // the walk below would end without a MAP-OpenInfo; most messages carry none.
    // (`b | 1 == 0xbf` is exactly 0xBE or 0xBF; a fold without an early exit vectorises.)
    if !tcap.iter().fold(false, |found, &b| found | (b | 1 == 0xbf)) {
        return None;
    }
    let budget = Budget::new(Layer::Map);
    let b = &budget;
    let (top, _) = Tlv::parse(tcap, b).ok()?;
    if top.class != CLASS_APPLICATION || !top.constructed {
        return None;
    }
    let portion = child(&top, b, |c| c.class == CLASS_APPLICATION && c.tag == 11 && c.constructed)?;
    let ext = child(&portion, b, |c| c.is_universal(TAG_EXTERNAL))?;
    let single = child(&ext, b, |c| c.is_context(0) && c.constructed)?;
    let aarq = child(&single, b, |c| c.class == CLASS_APPLICATION && c.tag == 0 && c.constructed)?;
    let user = child(&aarq, b, |c| c.is_context(30) && c.constructed)?;
    let uext = child(&user, b, |c| c.is_universal(TAG_EXTERNAL))?;
    let usingle = child(&uext, b, |c| c.is_context(0) && c.constructed)?;
    let open = child(&usingle, b, |c| c.is_context(0) && c.constructed)?;
    let mut o = OpenInfo::default();
    for f in open.children(b).map_while(Result::ok) {
        if f.is_context(0) && !f.constructed {
            o.destination_reference = address_string(f.value);
        } else if f.is_context(1) && !f.constructed {
            o.origination_reference = address_string(f.value);
        }
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut o = vec![tag, v.len() as u8];
        o.extend_from_slice(v);
        o
    }

    #[test]
    fn register_ss_and_ss_for_bs() {
        // RegisterSS-Arg: ss-Code cfu, basicService [3] teleservice (speech), forwardedToNumber [4]
        let p =
            tlv(0x30, &[tlv(0x04, &[0x21]), tlv(0x83, &[0x11]), tlv(0x84, &[0x91, 0x33, 0x06, 0x09, 0xf1])].concat());
        let a = decode_raw(10, &p).unwrap();
        assert_eq!(a.ss_code, Some(0x21));
        assert_eq!(a.forwarded_to.unwrap().digits, "3360901");
        let p = tlv(0x30, &tlv(0x04, &[0x21]));
        assert_eq!(decode_raw(12, &p).unwrap().ss_code, Some(0x21));
        assert_eq!(decode_raw(12, &p).unwrap().forwarded_to, None);
        for n in 0..p.len() {
            assert!(decode_raw(12, &p[..n]).is_err(), "cut at {n}");
        }
        assert!(is_ss_operation(10) && is_ss_operation(11) && !is_ss_operation(2));
    }

    #[test]
    fn forward_sm_ui() {
        let ui = [0x44u8, 0x0b, 0x91];
        let p = tlv(0x30, &[tlv(0x80, &[0x00, 0x01, 0x01]), tlv(0x84, &[0x91, 0x33]), tlv(0x04, &ui)].concat());
        assert_eq!(decode_raw(44, &p).unwrap().sm_rp_ui.as_deref(), Some(&ui[..]));
        assert_eq!(decode_raw(2, &p).unwrap(), MapArgs::default());
        // a primitive argument holds nothing here
        assert!(decode_raw(44, &tlv(0x04, &ui)).unwrap().is_empty());
    }

    /// Code 46 is forwardSM in MAP v1/v2, both ways: the SM-RP addresses say which.
    #[test]
    fn forward_sm_direction_from_the_sm_rp_addresses() {
        use crate::sms::Direction;
        let ui = [0x44u8, 0x0b, 0x91];
        let sc = [0x91, 0x33, 0x06];
        // MT: DA imsi [0] or lmsi [1], OA serviceCentreAddressOA [4] — whatever the code.
        for (op, da) in [(46, 0x80), (44, 0x80), (46, 0x81), (44, 0x81)] {
            let p = tlv(0x30, &[tlv(da, &[0x00, 0x01, 0x01, 0x02]), tlv(0x84, &sc), tlv(0x04, &ui)].concat());
            let a = decode_raw(op, &p).unwrap();
            assert_eq!(a.sm_direction(), Some(Direction::ToMs), "op {op} da {da:#x}");
            assert_eq!(a.sc_origin(), Some("3360"));
            assert_eq!(a.sm_rp_da, Some(if da == 0x80 { SmRpDa::Imsi } else { SmRpDa::Lmsi }));
        }
        // MO: DA serviceCentreAddressDA [4], OA msisdn [2].
        let p = tlv(0x30, &[tlv(0x84, &sc), tlv(0x82, &[0x91, 0x53, 0x19]), tlv(0x04, &ui)].concat());
        let a = decode_raw(46, &p).unwrap();
        assert_eq!((a.sm_direction(), a.sc_origin()), (Some(Direction::FromMs), None));
        // Contradicting addresses: towards the mobile (the direction the SIM checks guard).
        let p = tlv(0x30, &[tlv(0x84, &sc), tlv(0x84, &sc), tlv(0x04, &ui)].concat());
        assert_eq!(decode_raw(46, &p).unwrap().sm_direction(), Some(Direction::ToMs));
        // Neither address says.
        let p = tlv(0x30, &[tlv(0x85, &[]), tlv(0x85, &[]), tlv(0x04, &ui)].concat());
        assert_eq!(decode_raw(46, &p).unwrap().sm_direction(), None);
    }

    /// mt-ForwardSM-VGCS: the asciCallReference OCTET STRING comes first; the TPDU is the one
    /// after sm-RP-OA.
    #[test]
    fn mt_forward_sm_vgcs_ui_is_after_the_call_reference() {
        let ui = [0x04u8, 0x0b, 0x91];
        let p = tlv(0x30, &[tlv(0x04, &[0x21, 0x43]), tlv(0x84, &[0x91, 0x33, 0x06]), tlv(0x04, &ui)].concat());
        let a = decode_raw(21, &p).unwrap();
        assert_eq!(a.sm_rp_ui.as_deref(), Some(&ui[..]));
        assert_eq!(a.sm_rp_da, None);
        assert_eq!(a.sm_direction(), Some(crate::sms::Direction::ToMs));
        for n in 0..p.len() {
            let _ = decode_raw(21, &p[..n]);
        }
    }

    #[test]
    fn open_info_of_a_begin() {
        // map-open { destinationReference [0] = IMSI 001010000000042 as an AddressString }
        let imsi = [0x91, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x40, 0xf2];
        let open = tlv(0xa0, &[tlv(0x80, &imsi), tlv(0x81, &[0x91, 0x53, 0x19])].concat());
        let user_ext = tlv(0x28, &[tlv(0x06, &[0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x01]), tlv(0xa0, &open)].concat());
        let aarq = tlv(
            0x60,
            &[tlv(0xa1, &tlv(0x06, &[0x04, 0x00, 0x00, 0x01, 0x00, 0x0e, 0x03])), tlv(0xbe, &user_ext)].concat(),
        );
        let ext = tlv(0x28, &[tlv(0x06, &[0x00, 0x11, 0x86, 0x05, 0x01, 0x01, 0x01]), tlv(0xa0, &aarq)].concat());
        let begin = tlv(0x62, &[tlv(0x48, &[1, 2, 3, 4]), tlv(0x6b, &ext)].concat());
        let o = open_info(&begin).unwrap();
        assert_eq!(o.destination_reference.unwrap().digits, "001010000000042");
        assert_eq!(o.origination_reference.unwrap().digits, "3591");
        // without the user information, or cut anywhere: None, never a panic
        for n in 0..begin.len() {
            let _ = open_info(&begin[..n]);
        }
        assert_eq!(open_info(&tlv(0x62, &tlv(0x48, &[1, 2, 3, 4]))), None);
        // user-information [30] in the high-tag-number form (0xBF 0x1E): read the same
        let mut high = vec![0xbf, 0x1e, user_ext.len() as u8];
        high.extend_from_slice(&user_ext);
        let aarq = tlv(0x60, &[tlv(0xa1, &tlv(0x06, &[0x04, 0x00, 0x00, 0x01, 0x00, 0x0e, 0x03])), high].concat());
        let ext = tlv(0x28, &[tlv(0x06, &[0x00, 0x11, 0x86, 0x05, 0x01, 0x01, 0x01]), tlv(0xa0, &aarq)].concat());
        let begin = tlv(0x62, &[tlv(0x48, &[1, 2, 3, 4]), tlv(0x6b, &ext)].concat());
        assert!(!begin.contains(&0xbe));
        assert_eq!(open_info(&begin).unwrap().destination_reference.unwrap().digits, "001010000000042");
    }
}
