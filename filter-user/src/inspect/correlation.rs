//! Cross-protocol correlation: one subscriber claimed by different networks through different
//! protocols within an impossible time (`correlation-cross-protocol`, naming every message
//! involved), and one peer rotating the identities it claims — GTs, realms, PLMNs — faster than
//! any real network does (`correlation-identity-rotation`).

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

use super::{
    plausibility::{Slot, State, hash_name, iso_str},
    rules::{Finding, RuleId, RuleSet},
};
use crate::subscriber::{Record, Serving, serving_json};

/// Peers whose recent claims are remembered; beyond this the windows start over (counted in
/// `Rotation::resets`).
pub const MAX_PEERS: usize = 4096;

/// The per-peer windows of claimed identities.
#[derive(Debug, Default)]
pub struct Rotation {
    peers: HashMap<String, Window>,
    pub resets: u64,
}

#[derive(Debug, Default)]
struct Window {
    /// (last seen, identity hash, kind, identity), oldest first.
    claims: VecDeque<(u32, u64, &'static str, String)>,
    /// When this peer was last reported (one event per window).
    reported_at: Option<u32>,
}

/// A peer claimed `identity` (of `kind`: gt, realm, plmn) at `now`.
pub(super) fn claim(
    st: &mut State,
    rules: &RuleSet,
    peer: &str,
    kind: &'static str,
    identity: &str,
    now: u32,
    out: &mut Vec<Finding>,
) {
    let p = &rules.subscriber;
    let window = p.rotation_window_s as u32;
    let r = &mut st.rotation;
    if !r.peers.contains_key(peer) && r.peers.len() >= MAX_PEERS {
        r.peers.clear();
        r.resets += 1;
    }
    // Looked up before inserting: the peer's name is allocated once, not per message.
    if !r.peers.contains_key(peer) {
        r.peers.insert(peer.to_string(), Default::default());
    }
    let Some(w) = r.peers.get_mut(peer) else { return };
    while w.claims.front().is_some_and(|c| now.saturating_sub(c.0) > window) {
        w.claims.pop_front();
    }
    let h = hash_name(identity) ^ hash_name(kind);
    if let Some(i) = w.claims.iter().position(|c| c.1 == h) {
        let mut c = w.claims.remove(i).expect("position is in range");
        c.0 = now;
        w.claims.push_back(c);
        return;
    }
    w.claims.push_back((now, h, kind, identity.to_string()));
    // Enough is kept to report; older claims beyond it only repeat the point.
    if w.claims.len() > p.rotation_max * 2 {
        w.claims.pop_front();
    }
    let recently = w.reported_at.is_some_and(|t| now.saturating_sub(t) <= window);
    if w.claims.len() > p.rotation_max && !recently {
        w.reported_at = Some(now);
        let ids: Vec<Value> = w.claims.iter().map(|c| json!({"kind": c.2, "identity": c.3, "at": c.0})).collect();
        rules.hit(
            RuleId::CorrelationIdentityRotation,
            json!({
                "peer": peer, "distinct_identities": w.claims.len(), "window_s": window,
                "rotation_max": p.rotation_max, "identities": ids,
            }),
            out,
        );
    }
}

/// A new registration (`new`, in `slot`) against the other protocols' registrations of the
/// same subscriber: a different country within less than the travel time between them.
#[expect(clippy::too_many_arguments, reason = "the registration and its context, as the caller has them")]
pub(super) fn cross_protocol(
    st: &State,
    rules: &RuleSet,
    imsi: &str,
    slot: Slot,
    new: &Serving,
    rec: &Record,
    message: &Value,
    out: &mut Vec<Finding>,
) {
    for other in Slot::ALL {
        let s = other.get(rec);
        if other == slot || !s.is_set() || s.proto == new.proto || s.country == [0, 0] || new.country == [0, 0] {
            continue;
        }
        if s.country == new.country {
            continue;
        }
        let Some(min) = st.min_travel_s(rules, s.country, new.country) else { continue };
        let elapsed = u64::from(new.at.abs_diff(s.at));
        if elapsed < min {
            let mut earlier = serving_json(&s);
            earlier["slot"] = json!(other.name());
            let mut this = message.clone();
            this["slot"] = json!(slot.name());
            this["country"] = json!(iso_str(new.country));
            rules.hit(
                RuleId::CorrelationCrossProtocol,
                json!({
                    "imsi": imsi, "messages": [earlier, this], "elapsed_s": elapsed, "min_travel_s": min,
                }),
                out,
            );
        }
    }
}
