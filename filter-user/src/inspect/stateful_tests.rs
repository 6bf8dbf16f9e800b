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
    DiameterMessage {
        flags: 0x80,
        command_code: cmd,
        application_id: 16777251,
        origin_host: Some(format!("mme1.{realm}")),
        origin_realm: Some(realm.into()),
        user_name: Some(imsi.into()),
        ..DiameterMessage::default()
    }
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
    plausibility::diameter(&mut st, &r, &dia(323, CH, HOME_IMSI), "partner", &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"]);
    assert_eq!(out[0].detail["why"], "no EPS registration in a foreign network (at home)");
    // After a ULR from the Swiss realm: a NOR or IDR from there is fine (negative control) ...
    out.clear();
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, CH, HOME_IMSI), "partner", &mut out);
    assert_eq!(names(&out), Vec::<&str>::new());
    // ... from a French realm it is not; the event carries the recorded state.
    plausibility::diameter(&mut st, &r, &dia(323, FR, HOME_IMSI), "partner-b", &mut out);
    assert_eq!(names(&out), ["diameter-location-plausibility"]);
    assert_eq!(out[0].detail["state"]["eps"]["plmn"], "228002");
    // A partner subscriber, an answer, and home realms are not judged.
    out.clear();
    plausibility::diameter(&mut st, &r, &dia(323, FR, "228020000000007"), "partner-b", &mut out);
    let mut answer = dia(323, FR, HOME_IMSI);
    answer.flags = 0;
    plausibility::diameter(&mut st, &r, &answer, "partner-b", &mut out);
    plausibility::diameter(&mut st, &r, &dia(323, "epc.mnc001.mcc001.3gppnetwork.org", HOME_IMSI), "home", &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn velocity_uses_elapsed_time_and_the_travel_table() {
    let r = rules("[inspect.subscriber]\ntravel = [{ from = \"CH\", to = \"FR\", min_s = 7200 }]\n");
    let mut st = state(1_000_000);
    let mut out = vec![];
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &mut out);
    // France one hour later: the table says two hours at least.
    st.clock = Some(1_003_600);
    plausibility::diameter(&mut st, &r, &dia(316, FR, HOME_IMSI), "partner-b", &mut out);
    assert_eq!(names(&out), ["location-velocity"]);
    assert_eq!(out[0].detail["min_travel_s"], 7200);
    // Back to Switzerland three hours later: possible (negative control).
    out.clear();
    st.clock = Some(1_014_400);
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Australia a day later: possible; an hour after that, back in Switzerland: not.
    st.clock = Some(1_100_800);
    plausibility::diameter(&mut st, &r, &dia(316, "epc.mnc001.mcc505.3gppnetwork.org", HOME_IMSI), "au", &mut out);
    assert!(out.is_empty(), "{out:?}");
    st.clock = Some(1_104_400);
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &mut out);
    assert_eq!(names(&out), ["location-velocity"]);
}

#[test]
fn enforce_mode_keeps_the_plausible_registration() {
    let r = rules("[[inspect.rule]]\nname = \"location-velocity\"\nmode = \"enforce\"\n");
    let mut st = state(1_000_000);
    let mut out = vec![];
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &mut out);
    st.clock = Some(1_000_010);
    plausibility::diameter(&mut st, &r, &dia(316, "epc.mnc001.mcc505.3gppnetwork.org", HOME_IMSI), "au", &mut out);
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
        plausibility::diameter(&mut st, &r, &dia(318, &realm, "228020000000007"), "hub", &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    // A fifth: reported once, naming the identities; a sixth within the window is not again.
    for i in 4..6 {
        let realm = format!("epc.mnc00{i}.mcc228.3gppnetwork.org");
        plausibility::diameter(&mut st, &r, &dia(318, &realm, "228020000000007"), "hub", &mut out);
    }
    assert_eq!(names(&out), ["correlation-identity-rotation"]);
    assert_eq!(out[0].detail["distinct_identities"], 5);
    assert_eq!(out[0].detail["identities"].as_array().unwrap().len(), 5);
    // Another peer with as many is judged on its own; old claims age out of the window.
    out.clear();
    st.clock = Some(1_000_200);
    for i in 0..4 {
        let realm = format!("epc.mnc00{i}.mcc228.3gppnetwork.org");
        plausibility::diameter(&mut st, &r, &dia(318, &realm, "228020000000007"), "hub", &mut out);
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
    plausibility::gtpc(&mut st, &r, &csr(208, 1), "partner-b", &mut out);
    assert!(out.is_empty(), "{out:?}");
    st.clock = Some(1_100_000);
    plausibility::diameter(&mut st, &r, &dia(316, CH, HOME_IMSI), "partner", &mut out);
    plausibility::gtpc(&mut st, &r, &csr(228, 2), "partner", &mut out);
    assert!(out.is_empty(), "{out:?}");
    plausibility::gtpc(&mut st, &r, &csr(208, 1), "partner-b", &mut out);
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
