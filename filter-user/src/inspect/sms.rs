//! The SMS firewall: MT-forwardSM and MO-forwardSM for home subscribers from foreign networks.
//!
//! - `sms-sim-ota`: an SMS for the SIM card rather than the user (TP-PID (U)SIM data download or
//!   ME data download, class-2 8-bit coding, or a UDH command-packet header, TS 31.115) unless it
//!   comes from a configured OTA platform (`ota_platforms`: the SCCP calling GT or the SM-RP-OA
//!   service centre address) — the Simjacker-style spyware push;
//! - `sms-faked-origin`: the SM-RP-OA service centre address claims the home network, or does
//!   not belong to the sending network (neither the calling GT's network nor the peer's GT
//!   ranges); an MO-forwardSM for a home subscriber from a network where it is not registered;
//! - `sms-home-routing-bypass`: an MT-forwardSM for a home subscriber with no SRI-SM answered
//!   by the home network in the last `sri_sm_window_s` (the IMSI and serving node came from
//!   somewhere else: an earlier leak, or a guess).

use filter_dpi::{
    DecodeError,
    sms::{Direction, TpduSlice},
    ss7::{ComponentInfo, SigtranMessage, map::NumberRole, ops},
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

#[expect(clippy::too_many_arguments, reason = "the message, its component and what the caller already derived")]
pub(super) fn forward_sm(
    st: &mut State,
    rules: &RuleSet,
    _m: &SigtranMessage,
    c: &ComponentInfo,
    op: u8,
    imsi: Option<&str>,
    calling: &str,
    peer: &PeerInspect,
    out: &mut Vec<Finding>,
) {
    let Some(imsi) = imsi.filter(|i| rules.home_imsi(i)) else { return };
    let p = &rules.subscriber;
    let map = c.map.clone().unwrap_or_default();
    let sc = map.number(NumberRole::ServiceCentre).map(str::to_string);
    let dir = if op == ops::MT_FORWARD_SM { Direction::ToMs } else { Direction::FromMs };
    let Some(ui) = c.args.sm_rp_ui.as_deref() else {
        st.unjudged("sms.no_tpdu");
        return;
    };
    let tpdu = match TpduSlice::from_slice(ui, dir) {
        Ok(t) => Some(t),
        Err(e) => {
            st.unjudged(error_kind(&e));
            None
        }
    };
    let now = st.now();
    let rec = st.record(imsi).unwrap_or_default();
    let tp = |t: &TpduSlice<'_>| {
        json!({
            "type": format!("{:?}", t.kind()),
            "tp_pid": t.pid(), "tp_dcs": t.dcs().map(|d| d.raw),
            "tp_address": t.address().and_then(|a| a.digits()),
            "udh_ieis": t.ies().map(|ie| ie.iei).collect::<Vec<_>>(),
        })
    };
    if op == ops::MO_FORWARD_SM {
        // A home subscriber sending from a network where it is not registered.
        let registered = [rec.cs, rec.ps]
            .iter()
            .filter(|s| s.is_set() && s.proto == PROTO_MAP)
            .any(|s| same_gt_network(&crate::subscriber::unpack_digits(s.node()), calling, peer, p.gt_network_digits));
        if !registered {
            rules.hit(
                RuleId::SmsFakedOrigin,
                json!({
                    "imsi": imsi, "map_op": op, "map_op_name": "mo-forwardSM", "calling_gt": calling,
                    "why": "mo-forwardSM for a home subscriber from a network where it is not registered",
                    "tpdu": tpdu.as_ref().map(tp), "state": record_json(&rec),
                }),
                out,
            );
        }
        return;
    }
    let base = |why: &str| {
        json!({
            "imsi": imsi, "map_op": op, "map_op_name": "mt-forwardSM", "calling_gt": calling,
            "sc_address": sc, "msisdn": map.msisdn(), "why": why,
            "tpdu": tpdu.as_ref().map(tp),
        })
    };
    if let Some(t) = &tpdu {
        let marks = t.sim_ota_marks();
        let from_platform = starts_with_any(calling, &p.ota_platforms)
            || sc.as_deref().is_some_and(|s| starts_with_any(s, &p.ota_platforms));
        if !marks.is_empty() && !from_platform {
            let mut d = base("SMS addressed to the SIM card from a sender that is not a configured OTA platform");
            d["marks"] = json!(marks);
            d["ota_platforms"] = json!(p.ota_platforms);
            rules.hit(RuleId::SmsSimOta, d, out);
        }
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
    let window = p.sri_sm_window_s;
    if rec.sri_sm_at == 0 || u64::from(now.saturating_sub(rec.sri_sm_at)) > window {
        let mut d = base("no SRI-SM answered by the home network before this MT-forwardSM");
        d["sri_sm_at"] = json!((rec.sri_sm_at != 0).then_some(rec.sri_sm_at));
        d["window_s"] = json!(window);
        d["now"] = json!(now);
        rules.hit(RuleId::SmsHomeRoutingBypass, d, out);
    }
}
