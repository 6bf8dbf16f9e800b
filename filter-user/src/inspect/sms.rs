//! The SMS firewall: short messages forwarded from foreign networks — forwardSM (MAP v1/v2,
//! code 46, both directions), mt-forwardSM (44), mo-forwardSM (46, v3) and mt-ForwardSM-VGCS
//! (21). The direction comes from the SM-RP addresses ([`direction`]), not from the code.
//!
//! - `sms-sim-ota`: a mobile-terminated SMS for the SIM card rather than the user (TP-PID (U)SIM
//!   data download or ME data download, class-2 8-bit coding, or a UDH command-packet header,
//!   TS 31.115) unless it comes from a configured OTA platform (`ota_platforms`: the SCCP
//!   calling GT or the SM-RP-OA service centre address) — the Simjacker-style spyware push. It
//!   judges the TPDU and the sender only, so it applies to a home IMSI and also where no IMSI
//!   is given: an LMSI as SM-RP-DA (allocated by the VLR serving the subscriber: inbound, one
//!   served here) and a VGCS group call (anchored here);
//! - `sms-faked-origin`: the SM-RP-OA service centre address claims the home network, or does
//!   not belong to the sending network (neither the calling GT's network nor the peer's GT
//!   ranges); an MO-forwardSM for a home subscriber from a network where it is not registered;
//! - `sms-home-routing-bypass`: an MT-forwardSM for a home subscriber with no SRI-SM answered
//!   by the home network in the last `sri_sm_window_s` (the IMSI and serving node came from
//!   somewhere else: an earlier leak, or a guess);
//! - `undecodable-signaling` (layer `sms`): a short message from a foreign network whose
//!   sm-RP-UI is not a TPDU cannot be judged by the above, so it is contained, not passed.

use filter_dpi::{
    DecodeError,
    sms::{Direction, TpduSlice},
    ss7::{ComponentInfo, SigtranMessage, map::NumberRole, map_args::SmRpDa, ops},
};
use serde_json::json;

use super::{
    plausibility::{PROTO_MAP, State, same_gt_network},
    rules::{Finding, RuleId, RuleSet, starts_with_any},
};
use crate::{policy::inspect::PeerInspect, subscriber::record_json};

fn error_kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Len { .. } => "sms.truncated",
        DecodeError::Content { .. } => "sms.content",
        DecodeError::Limit { .. } => "sms.limit",
        DecodeError::NonCanonical { .. } => "sms.noncanonical",
    }
}

/// Which way a forwarded short message goes. The SM-RP addresses decide (code 46 is
/// `forwardSM` in MAP v1/v2, used both ways: an MT `forwardSM` carries an IMSI or LMSI as
/// SM-RP-DA and the service centre as SM-RP-OA); when they do not say, the operation and the
/// application-context version do: 44 and 21 are mobile-terminated, 46 is mo-forwardSM only in
/// v3 (in v1/v2, or without a version, it is taken as mobile-terminated: the direction whose
/// SIM checks must not be skipped).
pub fn direction(c: &ComponentInfo, op: u8, acn_version: Option<u8>) -> Direction {
    if let Some(d) = c.args.sm_direction() {
        return d;
    }
    match op {
        ops::MO_FORWARD_SM if acn_version.is_some_and(|v| v >= 3) => Direction::FromMs,
        _ => Direction::ToMs,
    }
}

/// A forwarded short message from a foreign network: forwardSM (v1/v2, either way),
/// mt-forwardSM, mo-forwardSM (v3) and mt-ForwardSM-VGCS.
#[expect(clippy::too_many_arguments, reason = "the message, its component and what the caller already derived")]
pub(super) fn forward_sm(
    st: &mut State,
    rules: &RuleSet,
    m: &SigtranMessage,
    c: &ComponentInfo,
    op: u8,
    imsi: Option<&str>,
    calling: &str,
    peer: &PeerInspect,
    out: &mut Vec<Finding>,
) {
    let p = &rules.subscriber;
    let acn_version = m.tcap.as_ref().and_then(|t| t.acn_version);
    let dir = direction(c, op, acn_version);
    let map = c.map.clone().unwrap_or_default();
    // The sender's service centre (SM-RP-OA of a mobile-terminated message).
    let sc = c.args.sc_origin().map(str::to_string).or_else(|| {
        (dir == Direction::ToMs).then(|| map.number(NumberRole::ServiceCentre).map(str::to_string)).flatten()
    });
    let op_name = match (op, dir) {
        (ops::MT_FORWARD_SM_VGCS, _) => "mt-ForwardSM-VGCS",
        (ops::MT_FORWARD_SM, _) => "mt-forwardSM",
        (_, Direction::ToMs) => "forwardSM (mobile-terminated)",
        (_, Direction::FromMs) => "mo-forwardSM",
    };
    let home_sub = imsi.is_some_and(|i| rules.home_imsi(i));
    // Whether a mobile-terminated message is for this network's side: a home IMSI; or no IMSI
    // at all but an LMSI (allocated by the VLR serving the subscriber, so inbound it names a
    // subscriber served here) or a VGCS group call reference (a group call anchored here). An
    // IMSI of another network is an inbound roamer's, whose home may send it OTA.
    let lmsi = matches!(c.args.sm_rp_da, Some(SmRpDa::Lmsi));
    let ours = home_sub || (imsi.is_none() && (lmsi || op == ops::MT_FORWARD_SM_VGCS));
    let Some(ui) = c.args.sm_rp_ui.as_deref() else {
        // A broken argument is already malformed (`map_error` or a non-canonical field: an
        // undecodable-signaling event); a whole one without its mandatory sm-RP-UI is counted
        // when it is one these rules would judge.
        let judged = match dir {
            Direction::ToMs => ours,
            Direction::FromMs => home_sub,
        };
        if judged {
            st.unjudged("sms.no_tpdu");
        }
        return;
    };
    let tpdu = match TpduSlice::from_slice(ui, dir) {
        Ok(t) => Some(t),
        Err(e) => {
            st.unjudged(error_kind(&e));
            // A short message from a foreign network that is not a TPDU cannot be judged, so
            // it is not passed as if it had been: an event (contained in enforce mode) rather
            // than only a counter. The SIM checks cannot tell a broken TPDU from a hidden one.
            rules.hit(
                RuleId::UndecodableSignaling,
                json!({
                    "layer": "sms", "error": e.to_string(),
                    "what": "the sm-RP-UI of a short message from a foreign network is not a TPDU",
                    "map_op": op, "map_op_name": op_name, "direction": dir_name(dir),
                    "calling_gt": calling, "sc_address": sc, "imsi": imsi,
                }),
                out,
            );
            None
        }
    };
    let Some(tpdu) = tpdu else { return };
    let tp = |t: &TpduSlice<'_>| {
        json!({
            "type": format!("{:?}", t.kind()),
            "tp_pid": t.pid(), "tp_dcs": t.dcs().map(|d| d.raw),
            "tp_address": t.address().and_then(|a| a.digits()),
            "udh_ieis": t.ies().map(|ie| ie.iei).collect::<Vec<_>>(),
        })
    };
    let now = st.now();
    if dir == Direction::FromMs {
        let Some(imsi) = imsi.filter(|_| home_sub) else { return };
        let rec = st.record(imsi).unwrap_or_default();
        // A home subscriber sending from a network where it is not registered.
        let registered = [rec.cs, rec.ps]
            .iter()
            .filter(|s| s.is_set() && s.proto == PROTO_MAP)
            .any(|s| same_gt_network(&crate::subscriber::unpack_digits(s.node()), calling, peer, p.gt_network_digits));
        if !registered {
            rules.hit(
                RuleId::SmsFakedOrigin,
                json!({
                    "imsi": imsi, "map_op": op, "map_op_name": op_name, "calling_gt": calling,
                    "why": "mo-forwardSM for a home subscriber from a network where it is not registered",
                    "tpdu": tp(&tpdu), "state": record_json(&rec),
                }),
                out,
            );
        }
        return;
    }
    if !ours {
        return;
    }
    let base = |why: &str| {
        json!({
            "imsi": imsi, "lmsi": lmsi, "map_op": op, "map_op_name": op_name, "calling_gt": calling,
            "sc_address": sc, "msisdn": map.msisdn(), "why": why,
            "tpdu": tp(&tpdu),
        })
    };
    let marks = tpdu.sim_ota_marks();
    let from_platform = starts_with_any(calling, &p.ota_platforms)
        || sc.as_deref().is_some_and(|s| starts_with_any(s, &p.ota_platforms));
    if !marks.is_empty() && !from_platform {
        let mut d = base("SMS addressed to the SIM card from a sender that is not a configured OTA platform");
        d["marks"] = json!(marks);
        d["ota_platforms"] = json!(p.ota_platforms);
        rules.hit(RuleId::SmsSimOta, d, out);
    }
    if let Some(sc) = sc.as_deref() {
        let why = if starts_with_any(sc, &rules.home_gt) {
            Some("the service centre address claims the home network, the message comes from a foreign one")
        } else if !(same_gt_network(sc, calling, peer, p.gt_network_digits)
            || peer.gt_prefixes.is_empty()
            || starts_with_any(sc, &peer.gt_prefixes))
        {
            Some("the service centre address belongs neither to the calling GT's network nor to the peer's GT ranges")
        } else {
            None
        };
        if let Some(why) = why {
            rules.hit(RuleId::SmsFakedOrigin, base(why), out);
        }
    }
    // Home routing: only a message naming a home IMSI can be matched with an SRI-SM answer;
    // a VGCS message is not routed by SRI-SM, and an LMSI alone names no record.
    let Some(imsi) = imsi.filter(|_| home_sub && op != ops::MT_FORWARD_SM_VGCS) else {
        st.unjudged("subscriber.sms_no_imsi");
        return;
    };
    let rec = st.record(imsi).unwrap_or_default();
    let window = p.sri_sm_window_s;
    if rec.sri_sm_at == 0 || u64::from(now.saturating_sub(rec.sri_sm_at)) > window {
        let mut d = base("no SRI-SM answered by the home network before this MT-forwardSM");
        d["sri_sm_at"] = json!((rec.sri_sm_at != 0).then_some(rec.sri_sm_at));
        d["window_s"] = json!(window);
        d["now"] = json!(now);
        rules.hit(RuleId::SmsHomeRoutingBypass, d, out);
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToMs => "to-ms",
        Direction::FromMs => "from-ms",
    }
}
