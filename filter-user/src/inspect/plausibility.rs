//! Location plausibility (SS7 Category 3, and its Diameter and GTP-C counterparts), judged
//! against the subscriber state: every registration seen (MAP UpdateLocation and
//! UpdateGprsLocation, Diameter ULR, GTPv2 Create Session) is recorded per home IMSI; a
//! location-dependent operation for a home subscriber must then come from the network where the
//! subscriber is registered, and a new registration must not need impossible travel since the
//! last one (`location-velocity`). The SMS firewall (`sms`) and the correlation rules
//! (`correlation`) read the same state.
//!
//! Only home subscribers are judged (their home network is the one that knows); a home
//! subscriber with no foreign registration on record is taken to be at home, so a
//! location-dependent operation from a foreign network is implausible. Messages from home GTs
//! and realms are never judged: they are ours.

use std::{
    collections::hash_map::DefaultHasher,
    hash::Hasher,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use filter_dpi::{
    diameter::DiameterMessage,
    digits::Plmn,
    gtp::GtpcMessage,
    ss7::{
        SigtranMessage, TcapInfo,
        map::NumberRole,
        ops,
        tcap::{ComponentType, MessageType},
    },
};
use serde_json::{Value, json};

use super::{
    correlation::Rotation,
    pending::{Outcome, Pending, Registration, TxKey},
    rules::{Finding, RuleId, RuleSet, starts_with_any},
};
use crate::{
    policy::inspect::{PeerInspect, RuleMode},
    subscriber::{LocalStore, Record, Serving, Subscribers, geo::Countries, pack_digits, record_json, serving_json},
};

/// Subscribers whose unconfirmed registration claims are remembered (in-process, two
/// generations like the store; about 200 bytes each at most).
pub const CLAIMS_CAPACITY: usize = 262_144;

/// MAP operations judged against the subscriber's registration: supplementary-service changes
/// (call forwarding, barring), subscriber-data management, roaming number and subscriber
/// information requests, location cancellation and purge.
pub const SS7_CATEGORY3: [u8; 10] = [
    ops::REGISTER_SS,
    ops::ERASE_SS,
    ops::ACTIVATE_SS,
    ops::DEACTIVATE_SS,
    ops::INSERT_SUBSCRIBER_DATA,
    ops::DELETE_SUBSCRIBER_DATA,
    ops::PROVIDE_ROAMING_NUMBER,
    ops::PROVIDE_SUBSCRIBER_INFO,
    ops::CANCEL_LOCATION,
    ops::PURGE_MS,
];

/// Diameter requests judged against the EPS registration: IDR (319), CLR (317), DSR (320),
/// NOR (323), PUR (321).
pub const DIAMETER_CATEGORY3: [u32; 5] = [319, 317, 320, 323, 321];

/// MAP 1, Diameter 2, GTP-C 3 (`Serving::proto`).
pub const PROTO_MAP: u8 = 1;
pub const PROTO_DIAMETER: u8 = 2;
pub const PROTO_GTP: u8 = 3;

/// A registration slot of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Cs,
    Ps,
    Eps,
    Pdn,
}

impl Slot {
    pub fn get(self, r: &Record) -> Serving {
        match self {
            Slot::Cs => r.cs,
            Slot::Ps => r.ps,
            Slot::Eps => r.eps,
            Slot::Pdn => r.pdn,
        }
    }
    pub fn set(self, r: &mut Record, s: Serving) {
        match self {
            Slot::Cs => r.cs = s,
            Slot::Ps => r.ps = s,
            Slot::Eps => r.eps = s,
            Slot::Pdn => r.pdn = s,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Slot::Cs => "cs",
            Slot::Ps => "ps",
            Slot::Eps => "eps",
            Slot::Pdn => "pdn",
        }
    }
    pub const ALL: [Slot; 4] = [Slot::Cs, Slot::Ps, Slot::Eps, Slot::Pdn];
}

/// The engine's stateful part: the subscriber store (shared with the control socket), the
/// country table, and the per-peer identity windows.
pub struct State {
    pub subscribers: Arc<Mutex<Subscribers>>,
    pub countries: &'static Countries,
    pub rotation: Rotation,
    /// A fixed clock (Unix seconds) for tests; `None`: the wall clock.
    pub clock: Option<u32>,
    /// Messages the stateful rules could not judge for want of an identity (a Category 3
    /// operation with no IMSI anywhere, an MT-forwardSM without a TPDU), by kind.
    pub unjudged: std::collections::HashMap<&'static str, u64>,
    /// Registrations claimed by foreign networks and not (yet) confirmed by the home network's
    /// answer, per subscriber: evidence for `location-velocity` and
    /// `correlation-cross-protocol`, never a reason to find a later operation plausible.
    pub claims: LocalStore,
    /// Registration requests waiting for the home network's answer ([`super::pending`]).
    pub pending: Pending,
}

impl State {
    pub fn new(subscribers: Arc<Mutex<Subscribers>>) -> State {
        State {
            subscribers,
            countries: Countries::shared(),
            rotation: Rotation::default(),
            clock: None,
            unjudged: Default::default(),
            claims: LocalStore::new(CLAIMS_CAPACITY),
            pending: Pending::default(),
        }
    }

    /// Counts how registrations ended, and how many wait, in the store's counters (`sigwall
    /// subscriber`, `sigwall stats --json`).
    fn count_registration(&mut self, outcome: Option<Outcome>) {
        let waiting = self.pending.len() as u64;
        let mut subs = self.subs();
        subs.count(|s| {
            s.registrations_pending = waiting;
            match outcome {
                Some(Outcome::Confirmed) => s.registrations_confirmed += 1,
                Some(Outcome::Rejected) => s.registrations_rejected += 1,
                Some(Outcome::Expired) => s.registrations_expired += 1,
                Some(Outcome::Untracked) => s.registrations_untracked += 1,
                None => {}
            }
        });
    }

    /// Drops the registration requests whose answer did not come in time (they stay claims).
    pub(super) fn expire_pending(&mut self) {
        let now = self.now();
        for _ in 0..self.pending.expire(now) {
            self.count_registration(Some(Outcome::Expired));
        }
    }

    /// The home network answered the registration request of `key`: commit it (`ok`) or drop
    /// it and its claim.
    pub(super) fn settle(&mut self, key: &TxKey, ok: bool) {
        let Some(reg) = self.pending.take(key) else { return };
        let Some(k) = pack_digits(&reg.imsi) else { return };
        if ok {
            // Only this slot is written (an HSET of one field in Redis): another edge's update
            // of another slot meanwhile is kept.
            self.subs().update(k, |rec| reg.slot.set(rec, reg.new));
            self.count_registration(Some(Outcome::Confirmed));
        } else {
            // Rejected: no longer even a claim (a refused roamer tries the next network).
            if let Some(mut c) = self.claims.get(k)
                && reg.slot.get(&c) == reg.new
            {
                reg.slot.set(&mut c, Serving::default());
                self.claims.put(k, c);
            }
            self.count_registration(Some(Outcome::Rejected));
        }
    }

    /// What the subscriber's foreign networks have claimed and no answer confirmed.
    pub(super) fn claimed(&mut self, imsi: &str) -> Option<Record> {
        self.claims.get(pack_digits(imsi)?)
    }

    pub fn now(&self) -> u32 {
        self.clock
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0))
    }

    pub fn subs(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        // A panic elsewhere while holding the lock leaves the store usable: take it anyway.
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn unjudged(&mut self, kind: &'static str) {
        *self.unjudged.entry(kind).or_default() += 1;
    }

    /// The shortest plausible time between two countries: the policy's travel table, else the
    /// distance at the policy's speed.
    pub fn min_travel_s(&self, rules: &RuleSet, a: [u8; 2], b: [u8; 2]) -> Option<u64> {
        if a == b {
            return Some(0);
        }
        let (sa, sb) = (std::str::from_utf8(&a).ok()?, std::str::from_utf8(&b).ok()?);
        let p = &rules.subscriber;
        if let Some(t) = p.travel.iter().find(|t| (t.from == sa && t.to == sb) || (t.from == sb && t.to == sa)) {
            return Some(t.min_s);
        }
        let (ca, cb) = (self.countries.by_iso(sa)?, self.countries.by_iso(sb)?);
        self.countries.min_travel_s(ca, cb, p.max_speed_kmh, p.border_slack_km)
    }

    fn iso(&self, id: Option<u16>) -> [u8; 2] {
        id.and_then(|i| self.countries.get(i)).map(|c| c.iso2).unwrap_or([0, 0])
    }

    pub fn country_of_gt(&self, gt: &str) -> [u8; 2] {
        self.iso(self.countries.by_e164(gt))
    }

    pub fn country_of_mcc(&self, mcc: u16) -> [u8; 2] {
        self.iso(self.countries.by_mcc(mcc))
    }

    /// A registration request from a foreign network: checked for impossible travel (against
    /// the same slot) and for a cross-protocol conflict (against the other protocols' slots),
    /// both against what was confirmed and what was only claimed (a claim is evidence that a
    /// network said so). Then it is a claim, and waits for the home network's answer (`tx`)
    /// before it is written to the subscriber's record ([`State::settle`]). In `enforce` mode a
    /// flagged registration is neither: the state keeps the plausible one.
    #[expect(clippy::too_many_arguments, reason = "the registration, its transaction and its context")]
    pub(super) fn register(
        &mut self,
        rules: &RuleSet,
        imsi: &str,
        slot: Slot,
        new: Serving,
        message: Value,
        tx: Option<(TxKey, Option<i64>)>,
        peer_name: &str,
        out: &mut Vec<Finding>,
    ) {
        let Some(key) = pack_digits(imsi) else { return };
        self.expire_pending();
        let rec = self.subs().get(key).unwrap_or_default();
        let mut claimed = self.claims.get(key).unwrap_or_default();
        let seen = newest(&rec, &claimed);
        let before = out.len();
        let prev = slot.get(&seen);
        if prev.is_set()
            && prev.country != [0, 0]
            && new.country != [0, 0]
            && let Some(min) = self.min_travel_s(rules, prev.country, new.country)
        {
            let elapsed = u64::from(new.at.saturating_sub(prev.at));
            if elapsed < min {
                rules.hit(
                    RuleId::LocationVelocity,
                    json!({
                        "imsi": imsi, "slot": slot.name(), "message": message,
                        "previous": serving_json(&prev), "new": serving_json(&new),
                        "elapsed_s": elapsed, "min_travel_s": min,
                        "state": record_json(&rec), "unconfirmed_claims": record_json(&claimed),
                    }),
                    out,
                );
            }
        }
        super::correlation::cross_protocol(self, rules, imsi, slot, &new, &seen, &message, out);
        let enforced = out[before..].iter().any(|f| f.mode == RuleMode::Enforce);
        if enforced {
            return;
        }
        slot.set(&mut claimed, new);
        self.claims.put(key, claimed);
        let outcome = match tx {
            Some((k, invoke_id)) => {
                let r = Registration {
                    imsi: imsi.to_string(),
                    slot,
                    new,
                    message,
                    invoke_id,
                    peer: peer_name.to_string(),
                    at: new.at,
                };
                self.pending.insert(k, r).err()
            }
            None => Some(Outcome::Untracked),
        };
        self.count_registration(outcome);
    }

    /// The subscriber's record (a default one: not seen roaming).
    pub(super) fn record(&self, imsi: &str) -> Option<Record> {
        self.subs().get(pack_digits(imsi)?)
    }
}

/// Per slot, the later of two records' registrations (confirmed and claimed).
fn newest(a: &Record, b: &Record) -> Record {
    let mut r = *a;
    for slot in Slot::ALL {
        let (x, y) = (slot.get(a), slot.get(b));
        if y.is_set() && (!x.is_set() || y.at >= x.at) {
            slot.set(&mut r, y);
        }
    }
    r
}

/// Whether the sending peer is the home network's own link: bound (`gt_prefixes`, `realms`,
/// `plmn_ids`) to a home GT, realm or PLMN. Only such a peer's answers settle a registration: a
/// partner that forges a home identity does not get to confirm its own claims.
pub fn home_peer(rules: &RuleSet, peer: &PeerInspect) -> bool {
    peer.gt_prefixes.iter().any(|p| starts_with_any(p, &rules.home_gt))
        || peer.realms.iter().any(|r| rules.home_realm(r))
        || peer.plmn_ids.iter().any(|p| rules.home_imsi.iter().any(|h| h.starts_with(p.as_str())))
}

/// A MAP dialogue message from the home network (`called`: the GT it is addressed to) that may
/// answer a registration request waiting in `st.pending`: a ReturnResultLast for its invoke
/// confirms it; a ReturnError or Reject for it, an Abort, or an End without its result
/// rejects it; a Continue without either (the HLR's insertSubscriberData) leaves it waiting.
fn map_answer(st: &mut State, tcap: &TcapInfo, called: Option<&str>) {
    let (Some(gt), Some(tid)) = (called, tcap.dtid.as_ref()) else { return };
    if !matches!(tcap.message_type, MessageType::End | MessageType::Continue | MessageType::Abort) {
        return;
    }
    let key = TxKey::Map { gt: gt.to_string(), tid: tid.clone() };
    let Some(reg) = st.pending.get(&key) else { return };
    let invoke = reg.invoke_id;
    let comps = &tcap.components;
    let refused = tcap.message_type == MessageType::Abort
        || comps.iter().any(|c| {
            matches!(c.kind, ComponentType::ReturnError | ComponentType::Reject)
                && (c.invoke_id == invoke || c.invoke_id.is_none())
        });
    let ok = if refused {
        Some(false)
    } else if comps.iter().any(|c| c.kind == ComponentType::ReturnResultLast && c.invoke_id == invoke) {
        Some(true)
    } else if tcap.message_type == MessageType::End {
        Some(false)
    } else {
        None
    };
    if let Some(ok) = ok {
        st.settle(&key, ok);
    }
}

/// Masks every IMSI, MSISDN and User-Name in an event's fields, at any depth (the policy's
/// `mask_identities`).
pub fn mask_identities(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match (k.as_str(), &*x) {
                    ("imsi" | "msisdn" | "user_name", Value::String(s)) => {
                        *x = Value::String(crate::subscriber::mask_id(s, true));
                    }
                    _ => mask_identities(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_identities),
        _ => {}
    }
}

/// A country code as events show it (`None`: not known).
pub fn iso_str(c: [u8; 2]) -> Option<String> {
    (c != [0, 0]).then(|| c.iter().map(|&b| char::from(b)).collect())
}

/// A 64-bit name of a realm or host (the store keeps numbers, not strings).
pub fn hash_name(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    // What `s.to_ascii_lowercase().hash(&mut h)` feeds the hasher (the bytes, then `str`'s
    // 0xff terminator), lowercased on the stack: the values in a running store stay the same,
    // and a name costs no allocation (this runs on every message in path).
    let mut buf = [0u8; 64];
    for chunk in s.as_bytes().chunks(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.copy_from_slice(chunk);
        b.make_ascii_lowercase();
        h.write(b);
    }
    h.write_u8(0xff);
    h.finish() | 1
}

pub fn plmn_number(p: &Plmn) -> u32 {
    u32::from(p.mcc) * 1000 + u32::from(p.mnc)
}

/// MCC and MNC of a 3GPP realm (`epc.mncXXX.mccYYY.3gppnetwork.org`, TS 23.003 §19.2).
pub fn realm_plmn(realm: &str) -> Option<Plmn> {
    let r = realm.to_ascii_lowercase();
    let num = |tag: &str| -> Option<u16> {
        let i = r.find(tag)? + tag.len();
        let d: String = r[i..].chars().take_while(char::is_ascii_digit).collect();
        if d.len() == 3 { d.parse().ok() } else { None }
    };
    Some(Plmn { mcc: num("mcc")?, mnc: num("mnc")?, mnc_digits: 3 })
}

/// Two GTs of one network: a common prefix of `gt_network_digits`, or both within one of the
/// sending peer's declared GT prefixes.
pub fn same_gt_network(a: &str, b: &str, peer: &PeerInspect, digits: usize) -> bool {
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    common >= digits.min(a.len()).min(b.len()).max(1)
        || peer.gt_prefixes.iter().any(|p| a.starts_with(p.as_str()) && b.starts_with(p.as_str()))
}

/// Whether a MAP request from `calling` fits the subscriber's MAP registrations.
fn map_plausible(rec: &Record, calling: &str, peer: &PeerInspect, digits: usize) -> bool {
    [rec.cs, rec.ps]
        .iter()
        .filter(|s| s.is_set() && s.proto == PROTO_MAP)
        .any(|s| same_gt_network(&crate::subscriber::unpack_digits(s.node()), calling, peer, digits))
}

/// The IMSI a MAP component is about: its argument's, else the dialogue's destination
/// reference (registerSS and the other SS operations carry none in their argument).
pub fn component_imsi(m: &SigtranMessage, map_imsi: Option<&str>) -> Option<String> {
    if let Some(i) = map_imsi {
        return Some(i.to_string());
    }
    let d = m.tcap.as_ref()?.open.as_ref()?.destination_reference.as_ref()?;
    (d.digits.len() >= 6 && d.digits.bytes().all(|b| b.is_ascii_digit())).then(|| d.digits.clone())
}

/// SS7: registrations, Category 3 operations, the SRI-SM answers (for the SMS rules), and the
/// MT/MO-forwardSM the SMS firewall judges.
pub(super) fn sigtran(
    st: &mut State,
    rules: &RuleSet,
    m: &SigtranMessage,
    peer_name: &str,
    peer: &PeerInspect,
    out: &mut Vec<Finding>,
) {
    let Some(sccp) = &m.sccp else { return };
    let Some(tcap) = &m.tcap else { return };
    let calling = sccp.calling.digits().unwrap_or("").to_string();
    let from_home = !calling.is_empty() && starts_with_any(&calling, &rules.home_gt);
    // The home network itself, on its own link (a home calling GT from a peer bound to it):
    // only its answers settle registrations and count as SRI-SM answers.
    let home_link = from_home && starts_with_any(&calling, &peer.gt_prefixes);
    let now = st.now();
    st.expire_pending();
    if home_link {
        map_answer(st, tcap, sccp.called.digits());
    }
    if !calling.is_empty() && !from_home {
        super::correlation::claim(st, rules, peer_name, "gt", &calling, now, out);
    }
    for c in &tcap.components {
        let Some(op) = c.op_code.and_then(|o| u8::try_from(o).ok()) else { continue };
        let map_imsi = c.map.as_ref().and_then(|x| x.imsi.as_deref());
        match c.kind {
            ComponentType::ReturnResultLast | ComponentType::ReturnResultNotLast => {
                // An SRI-SM answered by the home HLR: MT-forwardSM for this IMSI may follow.
                if op == ops::SEND_ROUTING_INFO_FOR_SM
                    && home_link
                    && let Some(imsi) = map_imsi.filter(|i| rules.home_imsi(i))
                    && let Some(k) = pack_digits(imsi)
                {
                    st.subs().update(k, |r| r.sri_sm_at = now);
                }
                continue;
            }
            ComponentType::Invoke => {}
            _ => continue,
        }
        if from_home {
            continue;
        }
        let imsi = component_imsi(m, map_imsi);
        let home_sub = imsi.as_deref().is_some_and(|i| rules.home_imsi(i));
        match op {
            ops::UPDATE_LOCATION | ops::UPDATE_GPRS_LOCATION if home_sub => {
                let message = json!({
                    "protocol": "map", "map_op": op, "map_op_name": c.op_name,
                    "calling_gt": calling, "peer": peer_name, "at": now,
                });
                let imsi = imsi.as_deref().unwrap_or_default();
                let (slot, role) =
                    if op == ops::UPDATE_LOCATION { (Slot::Cs, NumberRole::Vlr) } else { (Slot::Ps, NumberRole::Sgsn) };
                let node = c.map.as_ref().and_then(|x| x.number(role)).unwrap_or(&calling).to_string();
                let new = Serving::new(pack_digits(&node).unwrap_or(0), 0, now, st.country_of_gt(&node), op, PROTO_MAP);
                // The HLR's answer comes in the dialogue this Begin opens: addressed to the
                // requester's GT, with the requester's transaction id as its dtid.
                let tx = tcap
                    .otid
                    .as_ref()
                    .filter(|_| !calling.is_empty() && tcap.message_type == MessageType::Begin)
                    .map(|tid| (TxKey::Map { gt: calling.clone(), tid: tid.clone() }, c.invoke_id));
                st.register(rules, imsi, slot, new, message, tx, peer_name, out);
            }
            op if SS7_CATEGORY3.contains(&op) => {
                if imsi.is_none() {
                    st.unjudged("subscriber.no_imsi");
                    continue;
                }
                if !home_sub {
                    continue;
                }
                let imsi = imsi.as_deref().unwrap_or_default();
                let rec = st.record(imsi).unwrap_or_default();
                if !map_plausible(&rec, &calling, peer, rules.subscriber.gt_network_digits) {
                    let claims = st.claimed(imsi).unwrap_or_default();
                    let registered = if rec.cs.is_set() || rec.ps.is_set() {
                        "registered in another network"
                    } else {
                        "not registered in any foreign network (at home)"
                    };
                    rules.hit(
                        RuleId::Ss7LocationPlausibility,
                        json!({
                            "imsi": imsi, "map_op": op, "map_op_name": c.op_name,
                            "calling_gt": calling, "calling_country": iso_str(st.country_of_gt(&calling)),
                            "ss_code": c.args.ss_code, "forwarded_to": c.args.forwarded_to.as_ref().map(|a| a.digits.clone()),
                            "why": registered, "state": record_json(&rec),
                            "unconfirmed_claims": record_json(&claims),
                        }),
                        out,
                    );
                }
            }
            ops::MT_FORWARD_SM | ops::MO_FORWARD_SM | ops::MT_FORWARD_SM_VGCS => {
                super::sms::forward_sm(st, rules, m, c, op, imsi.as_deref(), &calling, peer, out);
            }
            _ => {}
        }
    }
}

/// Diameter: ULR from a foreign realm for a home subscriber registers it; IDR/CLR/DSR/NOR/PUR
/// must come from the realm (PLMN) of the EPS registration.
pub(super) fn diameter(
    st: &mut State,
    rules: &RuleSet,
    m: &DiameterMessage,
    peer_name: &str,
    peer: &PeerInspect,
    out: &mut Vec<Finding>,
) {
    st.expire_pending();
    if m.flags & 0x80 == 0 {
        // A ULA from the home network on its own link settles the ULR it answers: committed
        // with Result-Code DIAMETER_SUCCESS (2001), dropped otherwise (an Experimental-Result
        // such as DIAMETER_ERROR_ROAMING_NOT_ALLOWED comes without a Result-Code).
        if m.command_code == 316
            && let (Some(realm), Some(session)) = (m.origin_realm.as_deref(), m.session_id.as_ref())
            && rules.home_realm(realm)
            && peer.realms.iter().any(|r| r.eq_ignore_ascii_case(realm))
        {
            let key = TxKey::Diameter { session: session.clone(), end_to_end: m.end_to_end };
            st.settle(&key, m.result_code == Some(2001));
        }
        return;
    }
    let Some(realm) = m.origin_realm.as_deref() else { return };
    if rules.home_realm(realm) {
        return;
    }
    let now = st.now();
    super::correlation::claim(st, rules, peer_name, "realm", &realm.to_ascii_lowercase(), now, out);
    let Some(imsi) = m.user_name.as_deref().filter(|u| rules.home_imsi(u)) else { return };
    let plmn = m.visited_plmn.or_else(|| realm_plmn(realm));
    let message = json!({
        "protocol": "diameter", "command_code": m.command_code,
        "command": filter_dpi::diameter::names::command_abbrev(m.command_code, true),
        "origin_host": m.origin_host, "origin_realm": realm, "peer": peer_name, "at": now,
    });
    match m.command_code {
        316 => {
            let new = Serving::new(
                hash_name(realm),
                plmn.as_ref().map(plmn_number).unwrap_or(0),
                now,
                plmn.map(|p| st.country_of_mcc(p.mcc)).unwrap_or([0, 0]),
                (m.command_code & 0xff) as u8,
                PROTO_DIAMETER,
            );
            let tx =
                m.session_id.as_ref().map(|s| (TxKey::Diameter { session: s.clone(), end_to_end: m.end_to_end }, None));
            st.register(rules, imsi, Slot::Eps, new, message, tx, peer_name, out);
        }
        c if DIAMETER_CATEGORY3.contains(&c) => {
            let rec = st.record(imsi).unwrap_or_default();
            let e = rec.eps;
            let same = e.is_set()
                && (e.node() == hash_name(realm)
                    || plmn.as_ref().is_some_and(|p| e.plmn != 0 && e.plmn == plmn_number(p)));
            if !same {
                let claims = st.claimed(imsi).unwrap_or_default();
                rules.hit(
                    RuleId::DiameterLocationPlausibility,
                    json!({
                        "imsi": imsi, "message": message,
                        "why": if e.is_set() { "registered in another network" } else { "no EPS registration in a foreign network (at home)" },
                        "state": record_json(&rec), "unconfirmed_claims": record_json(&claims),
                    }),
                    out,
                );
            }
        }
        _ => {}
    }
}

/// GTPv2-C Create Session for a home subscriber from a foreign network: its serving network
/// must be where the subscriber is registered (EPS, else any registration with a PLMN or
/// country); then it is recorded.
pub(super) fn gtpc(
    st: &mut State,
    rules: &RuleSet,
    m: &GtpcMessage,
    peer_name: &str,
    peer: &PeerInspect,
    out: &mut Vec<Finding>,
) {
    if let Some(next) = &m.piggybacked {
        gtpc(st, rules, next, peer_name, peer, out);
    }
    st.expire_pending();
    // A Create Session Response from the home network's own link settles the request it
    // answers (header TEID: the requester's control F-TEID; same sequence number): committed
    // when the Cause is Request accepted (16) or accepted partially (17), dropped otherwise.
    if m.version == 2
        && m.message_type == 33
        && home_peer(rules, peer)
        && let (Some(teid), Some(sequence)) = (m.teid, m.sequence)
    {
        st.settle(&TxKey::Gtp { teid, sequence }, matches!(m.cause, Some(16 | 17)));
    }
    let now = st.now();
    if let Some(sn) = &m.serving_network {
        super::correlation::claim(st, rules, peer_name, "plmn", &format!("{:03}{:03}", sn.mcc, sn.mnc), now, out);
    }
    if m.version != 2 || m.message_type != 32 {
        return;
    }
    let (Some(imsi), Some(sn)) = (m.imsi.as_deref().filter(|i| rules.home_imsi(i)), m.serving_network) else {
        return;
    };
    let rec = st.record(imsi).unwrap_or_default();
    let country = st.country_of_mcc(sn.mcc);
    let registered: Vec<&Serving> = [&rec.eps, &rec.cs, &rec.ps].into_iter().filter(|s| s.is_set()).collect();
    let matches = |s: &Serving| {
        if s.plmn != 0 { s.plmn == plmn_number(&sn) } else { s.country != [0, 0] && s.country == country }
    };
    if let Some(first) = registered.first()
        && !registered.iter().any(|s| matches(s))
    {
        rules.hit(
            RuleId::GtpcLocationPlausibility,
            json!({
                "imsi": imsi, "serving_network": format!("{:03}{:0w$}", sn.mcc, sn.mnc, w = sn.mnc_digits as usize),
                "peer": peer_name, "registered": serving_json(first), "state": record_json(&rec),
            }),
            out,
        );
    }
    let new = Serving::new(hash_name(peer_name), plmn_number(&sn), now, country, m.message_type, PROTO_GTP);
    let message = json!({"protocol": "gtp-c", "message_type": 32, "message": "Create Session Request", "peer": peer_name, "at": now});
    // The response is addressed to the sender's control-plane F-TEID (top level, instance 0).
    let sender = m.fteids.iter().find(|f| f.parent.is_none() && f.instance == 0).map(|f| f.teid);
    let tx = sender.zip(m.sequence).map(|(teid, sequence)| (TxKey::Gtp { teid, sequence }, None));
    st.register(rules, imsi, Slot::Pdn, new, message, tx, peer_name, out);
}
