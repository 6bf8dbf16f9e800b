//! Signaling-security rules, after GSMA FS.11 (SS7), FS.19 (Diameter) and FS.20 (GTP) as
//! publicly summarised. Each rule looks at one decoded message and the peer that sent it, and
//! may produce a [`Finding`]; what happens then (alert, block the flow, quarantine the peer) is
//! configured per rule in the policy's `[inspect]` section.

use std::collections::HashSet;

use filter_dpi::{
    diameter::{self, DiameterMessage},
    digits::Plmn,
    gtp::{self, GtpcMessage, GtpuMessage},
    ss7::{SigtranMessage, map::op_name, ops, tcap::ComponentType},
};
use serde_json::{Value, json};

use super::identity::IdentityKind;
use crate::policy::inspect::{Inspect, PeerInspect, RuleAction, RuleMode, SubscriberPolicy};

/// The inspection rules. The discriminant is written into pinned maps (`Block.rule` of
/// `FLOW_VERDICTS` and `PEER_BLOCKS`, read by whoever inspects the pins), so the order is part of
/// the pinned map layout: append only, and bump `MAP_LAYOUT_VERSION` otherwise. The numbers are
/// the positions the rules had in the old `RULE_NAMES` list.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    Ss7Category1 = 0,
    Ss7Category2 = 1,
    Ss7GtBinding = 2,
    DiameterAppNotAllowed = 3,
    DiameterCommandBlocked = 4,
    DiameterForeignRealmHomeImsi = 5,
    DiameterOriginHostRealm = 6,
    DiameterRealmBinding = 7,
    GtpcMessageNotAllowed = 8,
    GtpcImsiPlmn = 9,
    GtpuGtpInGtp = 10,
    /// A message inspection could not decode, or that hit a decoder or reassembly cap: it is
    /// judged, not passed (review H4, C3, C4).
    UndecodableSignaling = 11,
    /// The transport said two things at once: an SCTP retransmission or a TCP range with
    /// different bytes, overlapping IP fragments, fragments of one SCTP message on different
    /// streams (review H1, H5, C3).
    TransportInconsistent = 12,
    /// A peer's copies arrived faster than its inspection budget: the records beyond it were
    /// not judged (review C6).
    InspectionOverload = 13,
    /// A home identity (calling GT in the home GT ranges, Origin-Realm a home realm) or no
    /// calling GT at all, on a message from an interconnect peer (review H8).
    IdentitySpoofing = 14,
    // Stateful rules (subscriber state: inspect::plausibility, inspect::sms, inspect::correlation).
    Ss7LocationPlausibility = 15,
    DiameterLocationPlausibility = 16,
    GtpcLocationPlausibility = 17,
    LocationVelocity = 18,
    SmsSimOta = 19,
    SmsFakedOrigin = 20,
    SmsHomeRoutingBypass = 21,
    CorrelationCrossProtocol = 22,
    CorrelationIdentityRotation = 23,
    /// In path: a message from an identity (calling GT, Origin-Host or Origin-Realm, GTP-C
    /// node, IMSI) that a `block` action blocked within its peer ([`super::identity`]).
    IdentityBlocked = 24,
}

impl RuleId {
    /// Every rule, in discriminant order.
    pub const ALL: [RuleId; 25] = [
        RuleId::Ss7Category1,
        RuleId::Ss7Category2,
        RuleId::Ss7GtBinding,
        RuleId::DiameterAppNotAllowed,
        RuleId::DiameterCommandBlocked,
        RuleId::DiameterForeignRealmHomeImsi,
        RuleId::DiameterOriginHostRealm,
        RuleId::DiameterRealmBinding,
        RuleId::GtpcMessageNotAllowed,
        RuleId::GtpcImsiPlmn,
        RuleId::GtpuGtpInGtp,
        RuleId::UndecodableSignaling,
        RuleId::TransportInconsistent,
        RuleId::InspectionOverload,
        RuleId::IdentitySpoofing,
        RuleId::Ss7LocationPlausibility,
        RuleId::DiameterLocationPlausibility,
        RuleId::GtpcLocationPlausibility,
        RuleId::LocationVelocity,
        RuleId::SmsSimOta,
        RuleId::SmsFakedOrigin,
        RuleId::SmsHomeRoutingBypass,
        RuleId::CorrelationCrossProtocol,
        RuleId::CorrelationIdentityRotation,
        RuleId::IdentityBlocked,
    ];

    /// The name used in the policy's `[[inspect.rule]]`, in events and in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            RuleId::Ss7Category1 => "ss7-category1",
            RuleId::Ss7Category2 => "ss7-category2",
            RuleId::Ss7GtBinding => "ss7-gt-binding",
            RuleId::DiameterAppNotAllowed => "diameter-app-not-allowed",
            RuleId::DiameterCommandBlocked => "diameter-command-blocked",
            RuleId::DiameterForeignRealmHomeImsi => "diameter-foreign-realm-home-imsi",
            RuleId::DiameterOriginHostRealm => "diameter-origin-host-realm",
            RuleId::DiameterRealmBinding => "diameter-realm-binding",
            RuleId::GtpcMessageNotAllowed => "gtpc-message-not-allowed",
            RuleId::GtpcImsiPlmn => "gtpc-imsi-plmn",
            RuleId::GtpuGtpInGtp => "gtpu-gtp-in-gtp",
            RuleId::UndecodableSignaling => "undecodable-signaling",
            RuleId::TransportInconsistent => "transport-inconsistent",
            RuleId::InspectionOverload => "inspection-overload",
            RuleId::IdentitySpoofing => "identity-spoofing",
            RuleId::Ss7LocationPlausibility => "ss7-location-plausibility",
            RuleId::DiameterLocationPlausibility => "diameter-location-plausibility",
            RuleId::GtpcLocationPlausibility => "gtpc-location-plausibility",
            RuleId::LocationVelocity => "location-velocity",
            RuleId::SmsSimOta => "sms-sim-ota",
            RuleId::SmsFakedOrigin => "sms-faked-origin",
            RuleId::SmsHomeRoutingBypass => "sms-home-routing-bypass",
            RuleId::CorrelationCrossProtocol => "correlation-cross-protocol",
            RuleId::CorrelationIdentityRotation => "correlation-identity-rotation",
            RuleId::IdentityBlocked => "identity-blocked",
        }
    }

    pub fn from_name(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What a rule does when the policy does not say.
    pub fn default_action(self) -> RuleAction {
        match self {
            // Consistency checks that a misconfigured partner trips as easily as an attacker.
            RuleId::DiameterOriginHostRealm | RuleId::GtpcImsiPlmn => RuleAction::Alert,
            // In path: the message and its sender's identity; in host mode: the flow.
            _ => RuleAction::Block,
        }
    }

    /// The mode a rule runs in when the policy does not say: the stateless rules enforce their
    /// action as before; the stateful ones alert, so an operator sees their false positives
    /// before turning them to `enforce`, except the SIM OTA rule, whose marks a legitimate
    /// SMS from a foreign network does not carry (an operator's own OTA platform is listed in
    /// `ota_platforms`).
    pub fn default_mode(self) -> RuleMode {
        if (self as u32) < RuleId::Ss7LocationPlausibility as u32
            || self == RuleId::SmsSimOta
            || self == RuleId::IdentityBlocked
        {
            RuleMode::Enforce
        } else {
            RuleMode::Alert
        }
    }
}

/// SS7 Category 1 (FS.11): MAP operations that should never arrive from an interconnect
/// partner, because they only make sense inside the home network. Each is a known tracking,
/// interception or fraud vector.
///
/// Source: GSMA FS.11 as publicly summarised (Category 1: "operations that should only be
/// received from within the same network"), the operation codes of 3GPP TS 29.002 §17.5 (the
/// `ss7::ops` table, checked against pycrate's MAP module and tshark's `gsm_old.localValue`).
/// processUnstructuredSS-Request (59) is deliberately absent: it is how a subscriber roaming at
/// a partner reaches the home HLR with USSD (TS 29.002 §11.9.1, VLR → HLR), normal roaming.
pub const SS7_CATEGORY1: [(u32, &str); 12] = [
    (ops::ANY_TIME_INTERROGATION as u32, "anyTimeInterrogation: location and state of any subscriber"),
    (ops::PROVIDE_SUBSCRIBER_LOCATION as u32, "provideSubscriberLocation: precise location (LCS)"),
    (ops::SEND_ROUTING_INFO_FOR_LCS as u32, "sendRoutingInfoForLCS: finds the serving node for a location request"),
    (ops::SEND_IMSI as u32, "sendIMSI: MSISDN to IMSI"),
    (ops::ANY_TIME_MODIFICATION as u32, "anyTimeModification: changes subscriber data (call forwarding, barring)"),
    (ops::ANY_TIME_SUBSCRIPTION_INTERROGATION as u32, "anyTimeSubscriptionInterrogation: reads subscriber data"),
    (ops::SEND_IDENTIFICATION as u32, "sendIdentification: IMSI and authentication vectors from a VLR"),
    // 19, not processUnstructuredSS-Request (59): that is how a roaming subscriber's USSD reaches
    // the home HLR, legitimately, across the interconnect.
    (ops::PROCESS_UNSTRUCTURED_SS_DATA as u32, "processUnstructuredSS-Data: legacy USSD (phase 1)"),
    (ops::SEND_PARAMETERS as u32, "sendParameters: legacy authentication vector retrieval"),
    (ops::SEND_GROUP_CALL_END_SIGNAL as u32, "sendGroupCallEndSignal"),
    (ops::PROCESS_GROUP_CALL_SIGNALLING as u32, "processGroupCallSignalling"),
    (ops::FORWARD_GROUP_CALL_SIGNALLING as u32, "forwardGroupCallSignalling"),
];

/// SS7 Category 2 (FS.11): HLR → VLR operations. A partner's HLR may send them for its own
/// subscribers roaming here; for *our* subscribers they only ever come from our own HLR, never
/// from the interconnect, whatever calling GT the message claims (review H8: the calling GT is
/// the sender's choice, so it is not a condition).
///
/// Source: TS 29.002 — insertSubscriberData (7, §8.8.1), deleteSubscriberData (8, §8.8.2),
/// cancelLocation (3, §8.1.3), provideSubscriberInfo (70, §8.11.2), all HLR → VLR/SGSN.
/// purgeMS (67, §8.1.6) is *not* here: it travels VLR/SGSN → HLR, so a partner's VLR purging a
/// home subscriber roaming there sends it legitimately (review H6); it belongs to location
/// plausibility checks (Category 3).
pub const SS7_CATEGORY2: [u32; 4] = [
    ops::INSERT_SUBSCRIBER_DATA as u32,
    ops::DELETE_SUBSCRIBER_DATA as u32,
    ops::CANCEL_LOCATION as u32,
    ops::PROVIDE_SUBSCRIBER_INFO as u32,
];

/// Diameter commands blocked from interconnect peers by default (FS.19: location services
/// must stay inside the home network): PLR (Provide-Location), LRR (Location-Report),
/// RIR (Routing-Info on SLh).
///
/// Source: command codes of 3GPP TS 29.172 §7.3 (SLg: PLR/PLA 8388620, LRR/LRA 8388621) and
/// TS 29.173 §6.2 (SLh: RIR/RIA 8388622), as tshark's `diameter.cmd.code` names them.
pub const DIAMETER_BLOCKED: [u32; 3] = [8388620, 8388621, 8388622];

/// HSS → MME/SGSN commands (TS 29.272 §7.2: Insert-Subscriber-Data 319, Cancel-Location 317,
/// Delete-Subscriber-Data 320): for a home subscriber they only come from the home HSS, never
/// across the interconnect, whatever Origin-Realm they claim (review H8, M6).
pub const DIAMETER_HOME_ONLY: [u32; 3] = [319, 317, 320];

/// GTPv2-C messages that belong to S3/S10/S16 (between MMEs and SGSNs of one network), not to
/// the roaming interfaces S5/S8: a roaming partner sending them is trying to pull contexts or
/// tear down sessions (FS.20). Delete PDN Connection Set (101/102), Identification (128/129),
/// Context (130/131/132), Forward Relocation (133..=136), Relocation Cancel (139/140),
/// Forward Access Context (137/138), Configuration Transfer Tunnel (141), RAN Information
/// Relay (152, TS 29.274: between MMEs and SGSNs, S3/S10/S16 only).
pub const GTPV2_NOT_ON_ROAMING: [u8; 17] =
    [101, 102, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 152];

/// GTPv1-C equivalents on Gp: SGSN Context (50/51/52), Identification (48/49), Forward
/// Relocation (53..=56).
pub const GTPV1_NOT_ON_ROAMING: [u8; 9] = [48, 49, 50, 51, 52, 53, 54, 55, 56];

/// A rule's verdict on a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: RuleId,
    pub action: RuleAction,
    /// learn / alert / enforce, as configured.
    pub mode: RuleMode,
    pub ttl_s: u64,
    /// Which identity of the message `block` blocks (in path).
    pub identity: IdentityKind,
    /// Every decoded field that mattered to the rule.
    pub detail: Value,
}

struct Setting {
    enabled: bool,
    action: RuleAction,
    ttl_s: u64,
    mode: RuleMode,
    identity: IdentityKind,
}

/// The rules, configured from the policy.
pub struct RuleSet {
    /// Indexed by `RuleId as usize`.
    settings: [Setting; RuleId::ALL.len()],
    category1: HashSet<u32>,
    diameter_blocked: HashSet<u32>,
    pub(super) home_imsi: Vec<String>,
    pub(super) home_gt: Vec<String>,
    home_realms: Vec<String>,
    /// The configured Diameter and SIGTRAN ports (`[ports]`): the transport classifies a
    /// payload by them as well as by its own header and PPID.
    pub ports: TransportPorts,
    /// `[inspect.subscriber]`, for the stateful rules.
    pub subscriber: SubscriberPolicy,
}

/// The ports inspection classifies SCTP and TCP payloads by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportPorts {
    pub diameter: Vec<u16>,
    pub sigtran: Vec<u16>,
    pub gtp_c: Vec<u16>,
    pub gtp_u: Vec<u16>,
}

impl Default for TransportPorts {
    fn default() -> Self {
        let d = filter_common::DEFAULT_PORTS;
        TransportPorts {
            diameter: vec![d[filter_common::PortClass::Diameter as usize]],
            sigtran: vec![d[filter_common::PortClass::Sigtran as usize]],
            gtp_c: vec![d[filter_common::PortClass::GtpC as usize]],
            gtp_u: vec![d[filter_common::PortClass::GtpU as usize]],
        }
    }
}

pub(super) fn starts_with_any(s: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| s.starts_with(p.as_str()))
}

/// Whether the DNS name `name` is `zone` or inside it (`x.zone`), ASCII case-insensitive (RFC
/// 4343), without allocating: this runs on every Diameter message in path.
pub(super) fn within_realm(name: &str, zone: &str) -> bool {
    let (n, z) = (name.as_bytes(), zone.as_bytes());
    match n.len().checked_sub(z.len()) {
        Some(0) => n.eq_ignore_ascii_case(z),
        Some(d) => n[d - 1] == b'.' && n[d..].eq_ignore_ascii_case(z),
        None => false,
    }
}

impl RuleSet {
    pub fn new(cfg: &Inspect) -> RuleSet {
        let settings = RuleId::ALL.map(|rule| {
            let over = cfg.rules.iter().find(|r| r.rule == rule);
            Setting {
                enabled: over.is_none_or(|r| r.enabled),
                action: over.and_then(|r| r.action).unwrap_or_else(|| rule.default_action()),
                ttl_s: over.and_then(|r| r.ttl_s).unwrap_or(cfg.block_ttl_s),
                mode: over.and_then(|r| r.mode).unwrap_or_else(|| rule.default_mode()),
                identity: over.and_then(|r| r.identity).unwrap_or(cfg.block_identity),
            }
        });
        RuleSet {
            settings,
            category1: cfg
                .ss7_category1
                .clone()
                .map(|v| v.into_iter().collect())
                .unwrap_or_else(|| SS7_CATEGORY1.iter().map(|(c, _)| *c).collect()),
            diameter_blocked: cfg
                .diameter_blocked_commands
                .clone()
                .map(|v| v.into_iter().collect())
                .unwrap_or_else(|| DIAMETER_BLOCKED.into_iter().collect()),
            home_imsi: cfg.home_imsi_prefixes.clone(),
            home_gt: cfg.home_gt_prefixes.clone(),
            home_realms: cfg.home_realms.clone(),
            ports: TransportPorts::default(),
            subscriber: cfg.subscriber.clone(),
        }
    }

    /// The same rules, classifying transport payloads by the policy's `[ports]`.
    pub fn with_ports(mut self, p: &crate::policy::Ports) -> RuleSet {
        self.ports = TransportPorts {
            diameter: p.diameter.clone(),
            sigtran: p.sigtran.clone(),
            gtp_c: p.gtp_c.clone(),
            gtp_u: p.gtp_u.clone(),
        };
        self
    }

    /// A finding about the transport or the decoding rather than a message's content
    /// ([`RuleId::UndecodableSignaling`], [`RuleId::TransportInconsistent`],
    /// [`RuleId::InspectionOverload`]).
    pub fn anomaly(&self, rule: RuleId, detail: Value) -> Vec<Finding> {
        let mut out = Vec::new();
        self.hit(rule, detail, &mut out);
        out
    }

    pub(super) fn hit(&self, rule: RuleId, detail: Value, out: &mut Vec<Finding>) {
        let s = &self.settings[rule as usize];
        if s.enabled {
            out.push(Finding { rule, action: s.action, mode: s.mode, ttl_s: s.ttl_s, identity: s.identity, detail });
        }
    }

    pub(super) fn home_imsi(&self, imsi: &str) -> bool {
        starts_with_any(imsi, &self.home_imsi)
    }

    pub(super) fn home_realm(&self, realm: &str) -> bool {
        self.home_realms.iter().any(|h| within_realm(realm, h))
    }

    /// SS7: Category 1 and 2 MAP operations, and the calling GT's binding to the peer.
    pub fn sigtran(&self, m: &SigtranMessage, peer: &PeerInspect) -> Vec<Finding> {
        let mut out = Vec::new();
        let Some(sccp) = &m.sccp else { return out };
        let calling = sccp.calling.global_title.as_ref().map(|g| g.digits.as_str()).unwrap_or("");
        let called = sccp.called.global_title.as_ref().map(|g| g.digits.as_str()).unwrap_or("");
        let base = |extra: Value| -> Value {
            let mut v = json!({
                "opc": m.opc, "dpc": m.dpc,
                "calling_gt": calling, "called_gt": called,
                "calling_ssn": sccp.calling.ssn, "called_ssn": sccp.called.ssn,
                "acn": m.tcap.as_ref().and_then(|t| t.acn.clone()),
            });
            if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
                a.extend(b);
            }
            v
        };
        // A missing calling GT does not satisfy the binding (review H8): the sender chose to
        // leave it out.
        if !peer.gt_prefixes.is_empty() && !starts_with_any(calling, &peer.gt_prefixes) && !calling.is_empty() {
            self.hit(RuleId::Ss7GtBinding, base(json!({"allowed_gt_prefixes": peer.gt_prefixes})), &mut out);
        }
        // TCAP from the interconnect with no calling GT (the answer could not even be routed
        // back), or with one of our own GTs as calling address: a spoofed identity (FS.11). A
        // peer whose own `gt_prefixes` cover the home GT (a link to the operator's own STP or
        // HLR) may use it: the policy says that source is home.
        if m.tcap.is_some() {
            if calling.is_empty() {
                self.hit(RuleId::IdentitySpoofing, base(json!({"identity": "no calling GT"})), &mut out);
            } else if starts_with_any(calling, &self.home_gt) && !starts_with_any(calling, &peer.gt_prefixes) {
                self.hit(RuleId::IdentitySpoofing, base(json!({"identity": "home calling GT"})), &mut out);
            }
        }
        let Some(tcap) = &m.tcap else { return out };
        for c in &tcap.components {
            if c.kind != ComponentType::Invoke {
                continue;
            }
            let Some(op) = c.op_code.and_then(|o| u32::try_from(o).ok()) else { continue };
            let imsi = c.map.as_ref().and_then(|x| x.imsi.as_deref());
            // The event's fields only when a rule hits: most messages hit none, and building
            // JSON for each was a tenth of the in-path cost of a message.
            let fields = || {
                let name = op_name(op as i64).unwrap_or("unknown");
                let msisdn = c.map.as_ref().and_then(|x| x.msisdn());
                json!({"map_op": op, "map_op_name": name, "imsi": imsi, "msisdn": msisdn})
            };
            if self.category1.contains(&op) {
                self.hit(RuleId::Ss7Category1, base(fields()), &mut out);
            }
            if SS7_CATEGORY2.contains(&op) && imsi.is_some_and(|i| self.home_imsi(i)) {
                self.hit(RuleId::Ss7Category2, base(fields()), &mut out);
            }
        }
        out
    }

    /// Diameter: application allowlist, command blocklist, IDR/CLR for home subscribers from
    /// foreign realms, Origin-Host/Origin-Realm consistency, realm binding.
    pub fn diameter(&self, m: &DiameterMessage, peer: &PeerInspect) -> Vec<Finding> {
        let mut out = Vec::new();
        let request = m.flags & 0x80 != 0;
        let detail = || {
            json!({
                "command_code": m.command_code,
                "command": diameter::names::command_abbrev(m.command_code, request),
                "request": request,
                "application_id": m.application_id,
                "origin_host": m.origin_host, "origin_realm": m.origin_realm,
                "destination_host": m.destination_host, "destination_realm": m.destination_realm,
                "user_name": m.user_name, "session_id": m.session_id,
            })
        };
        // Base protocol (application 0: CER/DWR/DPR) is always allowed.
        if !peer.diameter_apps.is_empty() && m.application_id != 0 && !peer.diameter_apps.contains(&m.application_id) {
            self.hit(RuleId::DiameterAppNotAllowed, detail(), &mut out);
        }
        if request && self.diameter_blocked.contains(&m.command_code) {
            self.hit(RuleId::DiameterCommandBlocked, detail(), &mut out);
        }
        // From the interconnect, whatever Origin-Realm it claims or leaves out (review H8).
        if request
            && DIAMETER_HOME_ONLY.contains(&m.command_code)
            && m.user_name.as_deref().is_some_and(|u| self.home_imsi(u))
        {
            self.hit(RuleId::DiameterForeignRealmHomeImsi, detail(), &mut out);
        }
        // A home Origin-Realm from a peer not itself bound to it (`realms`): see the SS7 case.
        if request
            && m.origin_realm
                .as_deref()
                .is_some_and(|r| self.home_realm(r) && !peer.realms.iter().any(|p| p.eq_ignore_ascii_case(r)))
        {
            self.hit(RuleId::IdentitySpoofing, detail(), &mut out);
        }
        if let (Some(host), Some(realm)) = (&m.origin_host, &m.origin_realm)
            && !within_realm(host, realm)
        {
            self.hit(RuleId::DiameterOriginHostRealm, detail(), &mut out);
        }
        if let Some(realm) = &m.origin_realm
            && !peer.realms.is_empty()
            && !peer.realms.iter().any(|p| within_realm(realm, p))
        {
            self.hit(RuleId::DiameterRealmBinding, detail(), &mut out);
        }
        out
    }

    /// GTP-C: messages that do not belong on the roaming interface; IMSI PLMN against the
    /// peer's PLMN ids (a home subscriber roaming at the peer is fine too).
    pub fn gtpc(&self, m: &GtpcMessage, peer: &PeerInspect) -> Vec<Finding> {
        let mut out = Vec::new();
        // A message piggybacked behind the first (P flag) is judged like any other: otherwise a
        // harmless-looking first message would smuggle a forbidden one past the rules.
        if let Some(next) = &m.piggybacked {
            out.extend(self.gtpc(next, peer));
        }
        let name = match m.version {
            2 => gtp::names::v2_message_name(m.message_type),
            _ => gtp::names::v1_message_name(m.message_type),
        };
        // Built only for a hit (most messages hit nothing; see `sigtran`).
        let detail = || {
            json!({
                "gtp_version": m.version, "message_type": m.message_type, "message": name,
                "teid": m.teid, "sequence": m.sequence, "imsi": m.imsi, "msisdn": m.msisdn,
                "serving_network": m.serving_network.as_ref().map(plmn_string), "apn": m.apn, "rat_type": m.rat_type,
            })
        };
        let forbidden = match m.version {
            2 => GTPV2_NOT_ON_ROAMING.contains(&m.message_type),
            _ => GTPV1_NOT_ON_ROAMING.contains(&m.message_type),
        };
        if forbidden {
            self.hit(RuleId::GtpcMessageNotAllowed, detail(), &mut out);
        }
        if let Some(imsi) = &m.imsi
            && !peer.plmn_ids.is_empty()
            && !self.home_imsi(imsi)
            && !starts_with_any(imsi, &peer.plmn_ids)
        {
            self.hit(RuleId::GtpcImsiPlmn, detail(), &mut out);
        }
        out
    }

    /// GTP-U: a tunnel whose payload is itself GTP is a classic way past GTP firewalls.
    pub fn gtpu(&self, m: &GtpuMessage, _peer: &PeerInspect) -> Vec<Finding> {
        let mut out = Vec::new();
        if m.gtp_in_gtp {
            let inner = m.inner.as_ref();
            self.hit(
                RuleId::GtpuGtpInGtp,
                json!({
                    "teid": m.teid,
                    "inner_src": inner.map(|i| i.src.to_string()), "inner_dst": inner.map(|i| i.dst.to_string()),
                    "inner_udp_ports": inner.and_then(|i| i.udp_ports),
                }),
                &mut out,
            );
        }
        out
    }
}

pub fn plmn_string(p: &Plmn) -> String {
    format!("{:03}{:0width$}", p.mcc, p.mnc, width = p.mnc_digits as usize)
}

#[cfg(test)]
mod rule_id_tests {
    use super::RuleId;

    /// `Block.rule` in the pinned maps is `RuleId as u32`: these numbers may never change.
    #[test]
    fn pinned_numbers_and_names_are_fixed() {
        let want = [
            "ss7-category1",
            "ss7-category2",
            "ss7-gt-binding",
            "diameter-app-not-allowed",
            "diameter-command-blocked",
            "diameter-foreign-realm-home-imsi",
            "diameter-origin-host-realm",
            "diameter-realm-binding",
            "gtpc-message-not-allowed",
            "gtpc-imsi-plmn",
            "gtpu-gtp-in-gtp",
            "undecodable-signaling",
            "transport-inconsistent",
            "inspection-overload",
            "identity-spoofing",
            "ss7-location-plausibility",
            "diameter-location-plausibility",
            "gtpc-location-plausibility",
            "location-velocity",
            "sms-sim-ota",
            "sms-faked-origin",
            "sms-home-routing-bypass",
            "correlation-cross-protocol",
            "correlation-identity-rotation",
            "identity-blocked",
        ];
        for (i, r) in RuleId::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
            assert_eq!(r.name(), want[i]);
            assert_eq!(RuleId::from_name(want[i]), Some(r));
        }
        assert_eq!(RuleId::from_name("ss7-everything"), None);
    }
}
