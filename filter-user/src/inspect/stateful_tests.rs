//! The stateful rules on decoded messages built here, with a fixed clock: the ones the veth
//! test (`tests::subscriber`) does not reach, and the time-dependent edges it cannot wait for.

use filter_dpi::{diameter::DiameterMessage, digits::Plmn, gtp::GtpcMessage};

use super::{
    plausibility::{self, State},
    rules::{Finding, RuleSet},
};
use crate::policy::{self, Limits};

const HOME_IMSI: &str = "001010000000042";

fn rules(extra: &str) -> RuleSet {
    let text = format!(
        "[inspect]\nhome_imsi_prefixes = [\"00101\"]\nhome_gt_prefixes = [\"35191\"]\n\
         home_realms = [\"epc.mnc001.mcc001.3gppnetwork.org\"]\n{extra}"
    );
    RuleSet::new(&policy::parse("t.toml", &text, &Limits::default()).unwrap().inspect)
}

fn state(at: u32) -> State {
    let mut s = State::new(std::sync::Arc::new(std::sync::Mutex::new(crate::subscriber::Subscribers::in_memory(1000))));
    s.clock = Some(at);
    s
}

fn dia(cmd: u32, realm: &str, imsi: &str) -> DiameterMessage {
    static E2E: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let e2e = E2E.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    DiameterMessage {
        flags: 0x80,
        command_code: cmd,
        application_id: 16777251,
        hop_by_hop: e2e,
        end_to_end: e2e,
        session_id: Some(format!("mme1.{realm};1;{e2e}")),
        origin_host: Some(format!("mme1.{realm}")),
        origin_realm: Some(realm.into()),
        user_name: Some(imsi.into()),
        ..DiameterMessage::default()
    }
}

const HOME_REALM: &str = "epc.mnc001.mcc001.3gppnetwork.org";

/// The home network's own Diameter link (bound to the home realm).
fn home_dia_peer() -> PeerInspect {
    PeerInspect { realms: vec![HOME_REALM.into()], ..PeerInspect::default() }
}

/// The HSS's answer to `req`, with `result` as Result-Code (None: an Experimental-Result only).
fn ula(req: &DiameterMessage, result: Option<u32>) -> DiameterMessage {
    DiameterMessage {
        flags: 0x00,
        command_code: 316,
        application_id: 16777251,
        // Another hop-by-hop id on the home side of the agent: matched by end-to-end.
        hop_by_hop: req.hop_by_hop ^ 0xffff,
        end_to_end: req.end_to_end,
        session_id: req.session_id.clone(),
        origin_host: Some(format!("hss1.{HOME_REALM}")),
        origin_realm: Some(HOME_REALM.into()),
        result_code: result,
        ..DiameterMessage::default()
    }
}

/// A ULR from `realm` that the home HSS accepts (ULA 2001 seen on the home link).
fn registered_ulr(st: &mut State, r: &RuleSet, realm: &str, peer_name: &str, out: &mut Vec<Finding>) {
    let req = dia(316, realm, HOME_IMSI);
    plausibility::diameter(st, r, &req, peer_name, &PeerInspect::default(), out);
    plausibility::diameter(st, r, &ula(&req, Some(2001)), "home", &home_dia_peer(), out);
}

fn names(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.rule.name()).collect()
}

const CH: &str = "epc.mnc002.mcc228.3gppnetwork.org";
const FR: &str = "epc.mnc001.mcc208.3gppnetwork.org";

#[test]
fn diameter_category3_against_the_eps_registration() {
    let r = rules("");
    let mut st = state(1_000_000);
    let mut out = vec![];
    // NOR for a subscriber with no foreign EPS registration: implausible.
    plausibility::diameter(&mut st, &r, &dia(323, CH, HOME_IMSI), "partner", &PeerInspect::default(), &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"]);
    assert_eq!(out[0].detail["why"], "no EPS registration in a foreign network (at home)");
    // After a ULR from the Swiss realm that the HSS accepted: a NOR or IDR from there is fine
    // (negative control) ...
    out.clear();
    registered_ulr(&mut st, &r, CH, "partner", &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, CH, HOME_IMSI), "partner", &PeerInspect::default(), &mut out);
    assert_eq!(names(&out), Vec::<&str>::new());
    // ... from a French realm it is not; the event carries the recorded state.
    plausibility::diameter(&mut st, &r, &dia(323, FR, HOME_IMSI), "partner-b", &PeerInspect::default(), &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"]);
    assert_eq!(out[0].detail["state"]["eps"]["plmn"], "228002");
    // A partner subscriber, an answer, and home realms are not judged.
    out.clear();
    plausibility::diameter(
        &mut st,
        &r,
        &dia(323, FR, "228020000000007"),
        "partner-b",
        &PeerInspect::default(),
        &mut out,
    );
    let mut answer = dia(323, FR, HOME_IMSI);
    answer.flags = 0;
    plausibility::diameter(&mut st, &r, &answer, "partner-b", &PeerInspect::default(), &mut out);
    plausibility::diameter(
        &mut st,
        &r,
        &dia(323, "epc.mnc001.mcc001.3gppnetwork.org", HOME_IMSI),
        "home",
        &PeerInspect::default(),
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn velocity_uses_elapsed_time_and_the_travel_table() {
    let r = rules("[inspect.subscriber]\ntravel = [{ from = \"CH\", to = \"FR\", min_s = 7200 }]\n");
    let mut st = state(1_000_000);
    let mut out = vec![];
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &PeerInspect::default(), &mut out);
    // France one hour later: the table says two hours at least.
    st.clock = Some(1_003_600);
    plausibility::diameter(&mut st, &r, &dia(316, FR, HOME_IMSI), "partner-b", &PeerInspect::default(), &mut out);
    assert_eq!(names(&out), ["location-velocity"]);
    assert_eq!(out[0].detail["min_travel_s"], 7200);
    // Back to Switzerland three hours later: possible (negative control).
    out.clear();
    st.clock = Some(1_014_400);
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &PeerInspect::default(), &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Australia a day later: possible; an hour after that, back in Switzerland: not.
    st.clock = Some(1_100_800);
    plausibility::diameter(
        &mut st,
        &r,
        &dia(316, "epc.mnc001.mcc505.3gppnetwork.org", HOME_IMSI),
        "au",
        &PeerInspect::default(),
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    st.clock = Some(1_104_400);
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &PeerInspect::default(), &mut out);
    assert_eq!(names(&out), ["location-velocity"]);
}

#[test]
fn enforce_mode_keeps_the_plausible_registration() {
    let r = rules("[[inspect.rule]]\nname = \"location-velocity\"\nmode = \"enforce\"\n");
    let mut st = state(1_000_000);
    let mut out = vec![];
    registered_ulr(&mut st, &r, CH, "partner", &mut out);
    st.clock = Some(1_000_010);
    // Flagged in enforce mode: not even waiting for its answer, so an accepting ULA does not
    // record it either.
    registered_ulr(&mut st, &r, "epc.mnc001.mcc505.3gppnetwork.org", "au", &mut out);
    assert_eq!(names(&out), ["location-velocity"]);
    let rec = st.subs().get(crate::subscriber::pack_digits(HOME_IMSI).unwrap()).unwrap();
    assert_eq!(rec.eps.country, *b"CH", "the blocked registration is not recorded");
}

#[test]
fn identity_rotation_by_one_peer() {
    let r = rules("[inspect.subscriber]\nrotation_max = 4\nrotation_window_s = 60\n");
    let mut st = state(1_000_000);
    let mut out = vec![];
    // Four realms from one peer in a minute, each seen twice: within the limit.
    for i in 0..8 {
        let realm = format!("epc.mnc00{}.mcc228.3gppnetwork.org", i % 4);
        plausibility::diameter(
            &mut st,
            &r,
            &dia(318, &realm, "228020000000007"),
            "hub",
            &PeerInspect::default(),
            &mut out,
        );
    }
    assert!(out.is_empty(), "{out:?}");
    // A fifth: reported once, naming the identities; a sixth within the window is not again.
    for i in 4..6 {
        let realm = format!("epc.mnc00{i}.mcc228.3gppnetwork.org");
        plausibility::diameter(
            &mut st,
            &r,
            &dia(318, &realm, "228020000000007"),
            "hub",
            &PeerInspect::default(),
            &mut out,
        );
    }
    assert_eq!(names(&out), ["correlation-identity-rotation"]);
    assert_eq!(out[0].detail["distinct_identities"], 5);
    assert_eq!(out[0].detail["identities"].as_array().unwrap().len(), 5);
    // Another peer with as many is judged on its own; old claims age out of the window.
    out.clear();
    st.clock = Some(1_000_200);
    for i in 0..4 {
        let realm = format!("epc.mnc00{i}.mcc228.3gppnetwork.org");
        plausibility::diameter(
            &mut st,
            &r,
            &dia(318, &realm, "228020000000007"),
            "hub",
            &PeerInspect::default(),
            &mut out,
        );
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn gtpc_create_session_against_the_registration() {
    let r = rules("");
    let mut st = state(1_000_000);
    let csr = |mcc, mnc| GtpcMessage {
        version: 2,
        message_type: 32,
        imsi: Some(HOME_IMSI.into()),
        serving_network: Some(Plmn { mcc, mnc, mnc_digits: 2 }),
        ..GtpcMessage::default()
    };
    let mut out = vec![];
    // No registration on record: not judged (S6a may not cross this edge).
    plausibility::gtpc(&mut st, &r, &csr(208, 1), "partner-b", &PeerInspect::default(), &mut out);
    assert!(out.is_empty(), "{out:?}");
    st.clock = Some(1_100_000);
    registered_ulr(&mut st, &r, CH, "partner", &mut out);
    plausibility::gtpc(&mut st, &r, &csr(228, 2), "partner", &PeerInspect::default(), &mut out);
    assert!(out.is_empty(), "{out:?}");
    plausibility::gtpc(&mut st, &r, &csr(208, 1), "partner-b", &PeerInspect::default(), &mut out);
    assert!(names(&out).contains(&"gtpc-location-plausibility"), "{out:?}");
}

#[test]
fn identities_masked_in_events_when_the_policy_says_so() {
    let mut v =
        serde_json::json!({"imsi": HOME_IMSI, "state": {"msisdn": "351910000042"}, "list": [{"user_name": HOME_IMSI}]});
    plausibility::mask_identities(&mut v);
    assert_eq!(v["imsi"], "00101********42");
    assert_eq!(v["state"]["msisdn"], "35191*****42");
    assert_eq!(v["list"][0]["user_name"], "00101********42");
    let r = rules("[inspect.subscriber]\nmask_identities = true\n");
    assert!(r.subscriber.mask_identities);
}

#[test]
fn policy_rejects_bad_subscriber_settings() {
    for (bad, what) in [
        ("[inspect.subscriber]\nmax_speed_kmh = 0\n", "max_speed_kmh"),
        ("[inspect.subscriber]\ntravel = [{ from = \"XX\", to = \"FR\", min_s = 1 }]\n", "ISO 3166"),
        ("[inspect.subscriber]\nota_platforms = [\"41a\"]\n", "ota_platforms"),
        ("[inspect.subscriber]\nnope = 1\n", "nope"),
        ("[[inspect.rule]]\nname = \"sms-sim-ota\"\nmode = \"block\"\n", "learn, alert or enforce"),
    ] {
        let text = format!("[inspect]\n{bad}");
        let e = policy::parse("t.toml", &text, &Limits::default()).unwrap_err().to_string();
        assert!(e.contains(what), "{bad}: {e}");
    }
}

// --- MAP messages built here: the SCCP and TCAP fields the stateful rules read, with the
// argument decoded by the real MAP decoders from BER built below.

mod map_built {
    use filter_dpi::{
        Layer,
        ss7::{
            ComponentInfo, PartyAddress, SccpInfo, SigtranMessage, TcapInfo, map, map_args, ops,
            sccp::GlobalTitle,
            tcap::{ComponentType, MessageType},
        },
    };

    pub fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
        assert!(v.len() < 128, "short form only");
        let mut o = vec![tag, v.len() as u8];
        o.extend_from_slice(v);
        o
    }

    pub fn tbcd(d: &str) -> Vec<u8> {
        let n: Vec<u8> = d.bytes().map(|b| b - b'0').collect();
        n.chunks(2).map(|c| c[0] | (c.get(1).copied().unwrap_or(0x0f) << 4)).collect()
    }

    /// An international E.164 AddressString.
    pub fn addr(d: &str) -> Vec<u8> {
        [&[0x91][..], &tbcd(d)].concat()
    }

    fn gt(d: &str) -> PartyAddress {
        PartyAddress {
            routing_indicator: 0,
            point_code: None,
            ssn: Some(8),
            global_title: Some(GlobalTitle {
                gti: 4,
                translation_type: Some(0),
                numbering_plan: Some(1),
                encoding_scheme: Some(2),
                nature_of_address: Some(4),
                digits: d.into(),
            }),
        }
    }

    pub struct Tcap<'a> {
        pub kind: MessageType,
        pub calling: &'a str,
        pub called: &'a str,
        pub otid: Option<&'a [u8]>,
        pub dtid: Option<&'a [u8]>,
        pub acn_version: Option<u8>,
    }

    pub fn message(t: Tcap<'_>, components: Vec<ComponentInfo>) -> SigtranMessage {
        SigtranMessage {
            ppid: 3,
            m3ua_class: Some(1),
            m3ua_type: Some(1),
            m2pa_type: None,
            layer: Layer::M3ua,
            message_class: Some(1),
            message_type: Some(1),
            opc: Some(1),
            dpc: Some(2),
            si: Some(3),
            ni: Some(2),
            sls: Some(0),
            sccp: Some(SccpInfo {
                message_type: 9,
                protocol_class: Some(0),
                return_cause: None,
                called: gt(t.called),
                calling: gt(t.calling),
                segmentation: None,
                data_len: 0,
                reassembled: false,
            }),
            tcap: Some(TcapInfo {
                message_type: t.kind,
                otid: t.otid.map(<[u8]>::to_vec),
                dtid: t.dtid.map(<[u8]>::to_vec),
                acn: None,
                acn_version: t.acn_version,
                components,
                open: None,
            }),
            stopped: None,
            anomalies: vec![],
        }
    }

    /// A component of `kind` for `op` whose parameter is `param` (BER), decoded as the
    /// SIGTRAN decoder does.
    pub fn component(kind: ComponentType, op: Option<u8>, invoke_id: i64, param: Option<&[u8]>) -> ComponentInfo {
        let invoke = kind == ComponentType::Invoke;
        let map = match (op, param) {
            (Some(op), Some(p)) if kind != ComponentType::ReturnError && kind != ComponentType::Reject => {
                map::decode_raw(op.into(), p, invoke).ok()
            }
            _ => None,
        };
        let args = match (op, param) {
            (Some(op), Some(p)) if invoke => map_args::decode_raw(op.into(), p).unwrap(),
            _ => map_args::MapArgs::default(),
        };
        ComponentInfo {
            kind,
            invoke_id: Some(invoke_id),
            linked_id: None,
            op_code: op.map(i64::from),
            op_name: op.and_then(ops::name),
            error_code: (kind == ComponentType::ReturnError).then_some(8),
            map,
            map_error: None,
            args,
        }
    }

    pub fn invoke(op: u8, param: &[u8]) -> ComponentInfo {
        component(ComponentType::Invoke, Some(op), 1, Some(param))
    }

    /// A forwarded short message's argument: sm-RP-DA, sm-RP-OA (already tagged), sm-RP-UI.
    pub fn forward_sm(da: &[u8], oa: &[u8], ui: &[u8]) -> Vec<u8> {
        tlv(0x30, &[da, oa, &tlv(0x04, ui)].concat())
    }

    /// SMS-DELIVER for the SIM: TP-PID (U)SIM data download, DCS class 2 8-bit.
    pub const OTA_DELIVER: [u8; 17] =
        [0x04, 0x04, 0x91, 0x21, 0x43, 0x7f, 0xf6, 0x52, 0x10, 0x10, 0x12, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb];
    /// A plain text SMS-DELIVER ("hi" in GSM 7-bit).
    pub const TEXT_DELIVER: [u8; 17] =
        [0x04, 0x04, 0x91, 0x21, 0x43, 0x00, 0x00, 0x52, 0x10, 0x10, 0x12, 0x00, 0x00, 0x00, 0x02, 0xe8, 0x34];
}

use filter_dpi::ss7::{ops, tcap::MessageType};
use map_built::*;

use crate::policy::inspect::PeerInspect;

/// A foreign SMSC's GT (Switzerland) and its service centre address.
const CH_SMSC_GT: &str = "41790000010";
const CH_SC: &str = "41790000011";

fn mt(op: u8, acn_version: Option<u8>, param: &[u8]) -> filter_dpi::ss7::SigtranMessage {
    let t = Tcap {
        kind: MessageType::Begin,
        calling: CH_SMSC_GT,
        called: "35191000001",
        otid: Some(&[1, 2, 3, 4]),
        dtid: None,
        acn_version,
    };
    message(t, vec![invoke(op, param)])
}

fn sms_rules(out: &mut Vec<Finding>, st: &mut State, m: &filter_dpi::ss7::SigtranMessage) {
    let r = rules("[inspect.subscriber]\nota_platforms = [\"4179000099\"]\n");
    plausibility::sigtran(st, &r, m, "partner", &PeerInspect::default(), out);
}

/// Item 2: code 46 in MAP v1/v2 is forwardSM, both ways. A v2 forwardSM with an IMSI as
/// SM-RP-DA and a service centre as SM-RP-OA is mobile-terminated: its SIM OTA payload is
/// judged (before, code 46 was always mo-forwardSM and only sms-faked-origin could fire).
#[test]
fn forward_sm_v2_mobile_terminated_is_judged_as_mt() {
    let mut st = state(1_000_000);
    let mut out = vec![];
    let p = forward_sm(&tlv(0x80, &tbcd(HOME_IMSI)), &tlv(0x84, &addr(CH_SC)), &OTA_DELIVER);
    sms_rules(&mut out, &mut st, &mt(ops::MO_FORWARD_SM, Some(2), &p));
    assert!(names(&out).contains(&"sms-sim-ota"), "{:?}", names(&out));
    let ota = out.iter().find(|f| f.rule.name() == "sms-sim-ota").unwrap();
    assert_eq!(ota.detail["map_op_name"], "forwardSM (mobile-terminated)");
    assert!(!names(&out).contains(&"sms-faked-origin"), "not judged as MO: {:?}", names(&out));
    // Negative controls: the same from the OTA platform; a text SMS; and a real v2 MO
    // forwardSM (service centre as SM-RP-DA, MSISDN as SM-RP-OA) with no IMSI: not judged.
    out.clear();
    let p = forward_sm(&tlv(0x80, &tbcd(HOME_IMSI)), &tlv(0x84, &addr("4179000099")), &OTA_DELIVER);
    sms_rules(&mut out, &mut st, &mt(ops::MO_FORWARD_SM, Some(2), &p));
    let p2 = forward_sm(&tlv(0x80, &tbcd(HOME_IMSI)), &tlv(0x84, &addr(CH_SC)), &TEXT_DELIVER);
    sms_rules(&mut out, &mut st, &mt(ops::MO_FORWARD_SM, Some(2), &p2));
    assert!(!names(&out).contains(&"sms-sim-ota"), "{:?}", names(&out));
    out.clear();
    let submit = [0x01, 0x00, 0x04, 0x91, 0x21, 0x43, 0x00, 0x00, 0x02, 0xe8, 0x34];
    let p = forward_sm(&tlv(0x84, &addr(CH_SC)), &tlv(0x82, &addr("41790000042")), &submit);
    sms_rules(&mut out, &mut st, &mt(ops::MO_FORWARD_SM, Some(2), &p));
    assert!(out.is_empty(), "{out:?}");
}

/// Item 3: mt-ForwardSM-VGCS (21) carries an SMS-DELIVER to the mobiles of a group call
/// anchored here: its SIM OTA payload is judged like an MT-forwardSM's (before: ignored).
#[test]
fn mt_forward_sm_vgcs_is_not_an_ota_bypass() {
    let mut st = state(1_000_000);
    let mut out = vec![];
    let p = tlv(0x30, &[tlv(0x04, &[0x21, 0x43]), tlv(0x84, &addr(CH_SC)), tlv(0x04, &OTA_DELIVER)].concat());
    sms_rules(&mut out, &mut st, &mt(ops::MT_FORWARD_SM_VGCS, Some(3), &p));
    assert_eq!(names(&out), ["sms-sim-ota"], "no IMSI: no home-routing judgement");
    assert_eq!(out[0].detail["map_op_name"], "mt-ForwardSM-VGCS");
    out.clear();
    let p = tlv(0x30, &[tlv(0x04, &[0x21, 0x43]), tlv(0x84, &addr(CH_SC)), tlv(0x04, &TEXT_DELIVER)].concat());
    sms_rules(&mut out, &mut st, &mt(ops::MT_FORWARD_SM_VGCS, Some(3), &p));
    assert!(out.is_empty(), "{out:?}");
}

/// Item 4: an MT-forwardSM addressed by LMSI (no IMSI anywhere) is for a subscriber served
/// here: the OTA check applies (before: no IMSI, not judged). An inbound roamer's IMSI (not
/// home) is not judged by it (its home may run OTA for it).
#[test]
fn lmsi_addressed_mt_sms_gets_the_ota_check() {
    let mut st = state(1_000_000);
    let mut out = vec![];
    let p = forward_sm(&tlv(0x81, &[0x00, 0x01, 0x02, 0x03]), &tlv(0x84, &addr(CH_SC)), &OTA_DELIVER);
    sms_rules(&mut out, &mut st, &mt(ops::MT_FORWARD_SM, Some(3), &p));
    assert_eq!(names(&out), ["sms-sim-ota"]);
    assert_eq!(out[0].detail["lmsi"], true);
    out.clear();
    let p = forward_sm(&tlv(0x80, &tbcd("228020000000007")), &tlv(0x84, &addr(CH_SC)), &OTA_DELIVER);
    sms_rules(&mut out, &mut st, &mt(ops::MT_FORWARD_SM, Some(3), &p));
    assert!(out.is_empty(), "{out:?}");
}

/// Item 5: a short message from a foreign network whose sm-RP-UI is not a TPDU is an event
/// (undecodable-signaling, enforce by default), not only a counter.
#[test]
fn undecodable_tpdu_from_a_foreign_network_is_an_event() {
    let mut st = state(1_000_000);
    let mut out = vec![];
    // An SMS-DELIVER cut in its originating address.
    let p = forward_sm(&tlv(0x80, &tbcd(HOME_IMSI)), &tlv(0x84, &addr(CH_SC)), &[0x04, 0x0b, 0x91]);
    sms_rules(&mut out, &mut st, &mt(ops::MT_FORWARD_SM, Some(3), &p));
    assert_eq!(names(&out), ["undecodable-signaling"]);
    assert_eq!(out[0].detail["layer"], "sms");
    assert_eq!(out[0].mode, crate::policy::inspect::RuleMode::Enforce);
    assert_eq!(st.unjudged.get("sms.truncated"), Some(&1), "and still counted");
    // Also for an inbound roamer's, and for a mobile-originated one.
    out.clear();
    let p = forward_sm(&tlv(0x80, &tbcd("228020000000007")), &tlv(0x84, &addr(CH_SC)), &[0x04, 0x0b, 0x91]);
    sms_rules(&mut out, &mut st, &mt(ops::MT_FORWARD_SM, Some(3), &p));
    let p = forward_sm(&tlv(0x84, &addr(CH_SC)), &tlv(0x82, &addr("41790000042")), &[0x01]);
    sms_rules(&mut out, &mut st, &mt(ops::MO_FORWARD_SM, Some(3), &p));
    assert_eq!(names(&out), ["undecodable-signaling", "undecodable-signaling"]);
}

// --- Item 1: a foreign registration counts only once the home network has accepted it.

use filter_dpi::ss7::tcap::ComponentType;

const FR_VLR: &str = "33609000001";
const DE_VLR: &str = "49171000001";
const HLR: &str = "35191000001";
const UL_TID: [u8; 4] = [0x0a, 0, 0, 1];

fn ul_begin(vlr: &str, tid: &[u8]) -> filter_dpi::ss7::SigtranMessage {
    // UpdateLocationArg: imsi, msc-Number [1], vlr-Number.
    let arg = tlv(0x30, &[tlv(0x04, &tbcd(HOME_IMSI)), tlv(0x81, &addr(vlr)), tlv(0x04, &addr(vlr))].concat());
    let t =
        Tcap { kind: MessageType::Begin, calling: vlr, called: HLR, otid: Some(tid), dtid: None, acn_version: Some(3) };
    message(t, vec![invoke(ops::UPDATE_LOCATION, &arg)])
}

/// The HLR's dialogue message back to `vlr` (dtid: the VLR's otid) with `components`.
fn hlr_answer(
    kind: MessageType,
    vlr: &str,
    tid: &[u8],
    components: Vec<filter_dpi::ss7::ComponentInfo>,
) -> filter_dpi::ss7::SigtranMessage {
    let t = Tcap { kind, calling: HLR, called: vlr, otid: Some(&[0x0b, 0, 0, 9]), dtid: Some(tid), acn_version: None };
    message(t, components)
}

fn ul_result() -> filter_dpi::ss7::ComponentInfo {
    let res = tlv(0x30, &tlv(0x04, &addr(HLR)));
    component(ComponentType::ReturnResultLast, Some(ops::UPDATE_LOCATION), 1, Some(&res))
}

/// provideSubscriberInfo (a Category 3 operation) from `gt` for the home subscriber.
fn psi(gt: &str) -> filter_dpi::ss7::SigtranMessage {
    let arg = tlv(0x30, &[tlv(0x80, &tbcd(HOME_IMSI)), tlv(0xa2, &tlv(0x80, &[]))].concat());
    let t = Tcap {
        kind: MessageType::Begin,
        calling: gt,
        called: HLR,
        otid: Some(&[7, 7, 7, 7]),
        dtid: None,
        acn_version: Some(3),
    };
    message(t, vec![invoke(ops::PROVIDE_SUBSCRIBER_INFO, &arg)])
}

/// The home network's own SIGTRAN link (bound to the home GTs).
fn home_link() -> PeerInspect {
    PeerInspect { gt_prefixes: vec!["35191".into()], ..PeerInspect::default() }
}

fn ss7(st: &mut State, m: &filter_dpi::ss7::SigtranMessage, peer: &PeerInspect, out: &mut Vec<Finding>) {
    plausibility::sigtran(st, &rules(""), m, "peer", peer, out);
}

/// Item 1 (state poisoning): an updateLocation from a fake VLR whose answer is not seen is a
/// claim only: a Category 3 operation from that network afterwards is still implausible, and
/// the event shows the unconfirmed claim. (Before: the request alone was recorded, and the
/// provideSubscriberInfo below passed as plausible.)
#[test]
fn unconfirmed_foreign_registration_does_not_make_operations_plausible() {
    let mut st = state(1_000_000);
    let mut out = vec![];
    let partner = PeerInspect::default();
    ss7(&mut st, &ul_begin(FR_VLR, &UL_TID), &partner, &mut out);
    assert!(out.is_empty(), "{out:?}");
    ss7(&mut st, &psi("33609000002"), &partner, &mut out);
    assert_eq!(names(&out), ["ss7-location-plausibility"]);
    assert_eq!(out[0].detail["why"], "not registered in any foreign network (at home)");
    assert_eq!(out[0].detail["unconfirmed_claims"]["cs"]["country"], "FR");
    assert_eq!(st.subs().get(crate::subscriber::pack_digits(HOME_IMSI).unwrap()), None, "nothing recorded");
    assert_eq!(st.subs().stats().registrations_pending, 1);
    // A "result" with a home calling GT forged by the partner (a peer not bound to the home
    // GTs) confirms nothing.
    out.clear();
    ss7(&mut st, &hlr_answer(MessageType::End, FR_VLR, &UL_TID, vec![ul_result()]), &partner, &mut out);
    ss7(&mut st, &psi("33609000002"), &partner, &mut out);
    assert_eq!(names(&out), ["ss7-location-plausibility"]);
    // No answer within the time: expired, counted, still only a claim; a late answer is
    // matched with nothing.
    st.clock = Some(1_000_000 + super::pending::PENDING_TTL_S);
    out.clear();
    ss7(&mut st, &hlr_answer(MessageType::End, FR_VLR, &UL_TID, vec![ul_result()]), &home_link(), &mut out);
    ss7(&mut st, &psi("33609000002"), &partner, &mut out);
    assert_eq!(names(&out), ["ss7-location-plausibility"]);
    let stats = st.subs().stats();
    assert_eq!((stats.registrations_expired, stats.registrations_confirmed, stats.registrations_pending), (1, 0, 0));
}

/// Item 1: the home HLR's answer on the home link settles the request: ReturnResultLast
/// commits it (the operation from there is then plausible: negative control); a ReturnError
/// drops it and its claim; a Continue carrying only the HLR's insertSubscriberData leaves it
/// waiting.
#[test]
fn home_answer_confirms_or_rejects_the_registration() {
    let mut st = state(1_000_000);
    let mut out = vec![];
    let partner = PeerInspect::default();
    ss7(&mut st, &ul_begin(FR_VLR, &UL_TID), &partner, &mut out);
    // insertSubscriberData in a Continue: still waiting.
    let isd = tlv(0x30, &tlv(0x80, &tbcd(HOME_IMSI)));
    let isd = component(ComponentType::Invoke, Some(ops::INSERT_SUBSCRIBER_DATA), 2, Some(&isd));
    ss7(&mut st, &hlr_answer(MessageType::Continue, FR_VLR, &UL_TID, vec![isd]), &home_link(), &mut out);
    assert_eq!(st.subs().stats().registrations_pending, 1);
    ss7(&mut st, &hlr_answer(MessageType::End, FR_VLR, &UL_TID, vec![ul_result()]), &home_link(), &mut out);
    ss7(&mut st, &psi("33609000002"), &partner, &mut out);
    assert!(out.is_empty(), "{out:?}");
    let rec = st.subs().get(crate::subscriber::pack_digits(HOME_IMSI).unwrap()).unwrap();
    assert_eq!(rec.cs.country, *b"FR");
    // A day later, a German VLR's updateLocation that the HLR refuses (ReturnError): the
    // subscriber stays registered in France, and the claim is gone.
    st.clock = Some(1_086_400);
    ss7(&mut st, &ul_begin(DE_VLR, &[0x0d, 0, 0, 2]), &partner, &mut out);
    let err = component(ComponentType::ReturnError, None, 1, None);
    ss7(&mut st, &hlr_answer(MessageType::End, DE_VLR, &[0x0d, 0, 0, 2], vec![err]), &home_link(), &mut out);
    ss7(&mut st, &psi("49171000002"), &partner, &mut out);
    assert_eq!(names(&out), ["ss7-location-plausibility"]);
    assert_eq!(out[0].detail["state"]["cs"]["country"], "FR");
    assert_eq!(out[0].detail["unconfirmed_claims"]["cs"], serde_json::Value::Null);
    // An End without the result (nor an error) rejects as well; an Abort too.
    for kind in [MessageType::End, MessageType::Abort] {
        ss7(&mut st, &ul_begin(DE_VLR, &[0x0d, 0, 0, 3]), &partner, &mut out);
        ss7(&mut st, &hlr_answer(kind, DE_VLR, &[0x0d, 0, 0, 3], vec![]), &home_link(), &mut out);
    }
    let stats = st.subs().stats();
    assert_eq!((stats.registrations_confirmed, stats.registrations_rejected, stats.registrations_pending), (1, 3, 0));
}

/// Item 1, Diameter and GTP: a ULR counts once a ULA with DIAMETER_SUCCESS from the home realm
/// on its own link answers it (matched by Session-Id and End-to-End id); a ULA with an
/// Experimental-Result, or no ULA, leaves the NOR from that realm implausible. A Create
/// Session Request's pdn slot is written only on an accepting response.
#[test]
fn diameter_and_gtp_registrations_wait_for_the_home_answer() {
    let r = rules("");
    let mut st = state(1_000_000);
    let mut out = vec![];
    let partner = PeerInspect::default();
    let req = dia(316, FR, HOME_IMSI);
    plausibility::diameter(&mut st, &r, &req, "partner-b", &partner, &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, FR, HOME_IMSI), "partner-b", &partner, &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"], "no ULA seen: a claim only");
    // Roaming not allowed (Experimental-Result 5004, no Result-Code): rejected.
    out.clear();
    plausibility::diameter(&mut st, &r, &ula(&req, None), "home", &home_dia_peer(), &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, FR, HOME_IMSI), "partner-b", &partner, &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"]);
    // A 2001 ULA from a partner claiming the home realm confirms nothing; from the home link
    // it does.
    out.clear();
    let req = dia(316, FR, HOME_IMSI);
    plausibility::diameter(&mut st, &r, &req, "partner-b", &partner, &mut out);
    plausibility::diameter(&mut st, &r, &ula(&req, Some(2001)), "partner-b", &partner, &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, FR, HOME_IMSI), "partner-b", &partner, &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"]);
    out.clear();
    plausibility::diameter(&mut st, &r, &ula(&req, Some(2001)), "home", &home_dia_peer(), &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, FR, HOME_IMSI), "partner-b", &partner, &mut out);
    assert!(out.is_empty(), "{out:?}");

    // GTPv2: the response's header TEID is the request's sender F-TEID, same sequence.
    let csr = |seq: u32| GtpcMessage {
        version: 2,
        message_type: 32,
        sequence: Some(seq),
        imsi: Some(HOME_IMSI.into()),
        serving_network: Some(Plmn { mcc: 208, mnc: 1, mnc_digits: 2 }),
        fteids: vec![filter_dpi::gtp::v2::Fteid {
            instance: 0,
            parent: None,
            interface_type: 6,
            teid: 0x1234,
            ipv4: None,
            ipv6: None,
        }],
        ..GtpcMessage::default()
    };
    let resp = |seq: u32, cause: u8| GtpcMessage {
        version: 2,
        message_type: 33,
        teid: Some(0x1234),
        sequence: Some(seq),
        cause: Some(cause),
        ..GtpcMessage::default()
    };
    let home_gtp = PeerInspect { plmn_ids: vec!["00101".into()], ..PeerInspect::default() };
    let pdn = |st: &mut State| st.subs().get(crate::subscriber::pack_digits(HOME_IMSI).unwrap()).unwrap().pdn;
    plausibility::gtpc(&mut st, &r, &csr(5), "partner-b", &partner, &mut out);
    assert!(!pdn(&mut st).is_set());
    // Context not found (64): rejected.
    plausibility::gtpc(&mut st, &r, &resp(5, 64), "home", &home_gtp, &mut out);
    assert!(!pdn(&mut st).is_set());
    plausibility::gtpc(&mut st, &r, &csr(6), "partner-b", &partner, &mut out);
    plausibility::gtpc(&mut st, &r, &resp(6, 16), "partner-b", &partner, &mut out);
    assert!(!pdn(&mut st).is_set(), "not from the home network's link");
    plausibility::gtpc(&mut st, &r, &resp(6, 16), "home", &home_gtp, &mut out);
    assert_eq!(pdn(&mut st).country, *b"FR");
    assert!(out.is_empty(), "{out:?}");
}
