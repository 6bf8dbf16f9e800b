//! The deep-inspection parts of the policy: the `[inspect]` section (home network, rule
//! actions) and each peer's inspection sampling and identity binding.

use serde::Deserialize;
use toml::Spanned;

use crate::inspect::identity::IdentityKind;

pub use super::subscriber::{RuleMode, SubscriberPolicy};
pub use crate::inspect::rules::RuleId;

/// How much of a peer's traffic deep inspection sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    None,
    All,
    /// One packet in N, chosen at random in XDP.
    OneIn(u32),
}

impl Sampling {
    /// The value the XDP program reads (`PeerPolicy::inspect_every`).
    pub fn every(self) -> u32 {
        match self {
            Sampling::None => 0,
            Sampling::All => 1,
            Sampling::OneIn(n) => n,
        }
    }

    pub fn parse(s: &str) -> Result<Sampling, String> {
        match s {
            "none" => Ok(Sampling::None),
            "all" => Ok(Sampling::All),
            _ => {
                let n = s
                    .strip_prefix("sample:")
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (2..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        format!("inspect {s:?}: expected \"none\", \"all\" or \"sample:N\" with N from 2 to 1000000")
                    })?;
                Ok(Sampling::OneIn(n))
            }
        }
    }
}

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Alert,
    /// In path: stop the message and block the identity that sent it (or the IMSI), within
    /// the peer, for a TTL; in host mode, where a copy cannot be stopped: as `BlockFlow`.
    Block,
    /// Drop the rest of the flow (5-tuple) in XDP for a TTL: takes the whole association or
    /// connection down, with every subscriber it carries.
    BlockFlow,
    /// Drop everything from the peer's prefixes for a TTL.
    BlockPeer,
}

impl RuleAction {
    pub fn parse(s: &str) -> Option<RuleAction> {
        match s {
            "alert" => Some(RuleAction::Alert),
            "block" => Some(RuleAction::Block),
            "block-flow" => Some(RuleAction::BlockFlow),
            "block-peer" => Some(RuleAction::BlockPeer),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleAction::Alert => "alert",
            RuleAction::Block => "block",
            RuleAction::BlockFlow => "block-flow",
            RuleAction::BlockPeer => "block-peer",
        }
    }
}

/// A rule's action and TTL as configured (rules not listed keep their defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSetting {
    pub rule: RuleId,
    pub enabled: bool,
    pub action: Option<RuleAction>,
    pub ttl_s: Option<u64>,
    /// learn / alert / enforce (`None`: the rule's default).
    pub mode: Option<RuleMode>,
    /// Which identity `block` blocks (`None`: the sender).
    pub identity: Option<IdentityKind>,
}

/// The `[inspect]` section, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspect {
    pub enabled: bool,
    /// IMSI prefixes (MCC+MNC, or longer) of the home network's subscribers.
    pub home_imsi_prefixes: Vec<String>,
    /// Global-title prefixes (E.164 digits) of the home network's nodes.
    pub home_gt_prefixes: Vec<String>,
    /// Diameter realms of the home network.
    pub home_realms: Vec<String>,
    /// Default TTL of blocks, seconds.
    pub block_ttl_s: u64,
    /// What `block` blocks in path unless a rule says otherwise: the sender or the IMSI.
    pub block_identity: IdentityKind,
    /// Replacement of the shipped SS7 Category 1 operation list, if set.
    pub ss7_category1: Option<Vec<u32>>,
    /// Replacement of the shipped Diameter command blocklist, if set.
    pub diameter_blocked_commands: Option<Vec<u32>>,
    pub rules: Vec<RuleSetting>,
    /// `[inspect.subscriber]`: the stateful rules' settings.
    pub subscriber: SubscriberPolicy,
}

impl Default for Inspect {
    fn default() -> Self {
        Inspect {
            enabled: true,
            home_imsi_prefixes: vec![],
            home_gt_prefixes: vec![],
            home_realms: vec![],
            block_ttl_s: 300,
            block_identity: IdentityKind::Sender,
            ss7_category1: None,
            diameter_blocked_commands: None,
            rules: vec![],
            subscriber: SubscriberPolicy::default(),
        }
    }
}

/// A peer's inspection settings and the identities it may claim (anti-spoofing binding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInspect {
    pub sampling: Sampling,
    pub sampling_gtpu: Sampling,
    /// SCCP calling global-title prefixes this peer may use.
    pub gt_prefixes: Vec<String>,
    /// Diameter Origin-Realms this peer may use.
    pub realms: Vec<String>,
    /// MCC+MNC (5 or 6 digits) this peer's subscribers and serving networks belong to.
    pub plmn_ids: Vec<String>,
    /// Diameter application ids this peer may use; empty: any.
    pub diameter_apps: Vec<u32>,
}

impl Default for PeerInspect {
    fn default() -> Self {
        PeerInspect {
            sampling: Sampling::All,
            sampling_gtpu: Sampling::None,
            gt_prefixes: vec![],
            realms: vec![],
            plmn_ids: vec![],
            diameter_apps: vec![],
        }
    }
}

// ---- file shape ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct InspectModel {
    enabled: Option<bool>,
    #[serde(default)]
    home_imsi_prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    home_gt_prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    home_realms: Vec<Spanned<String>>,
    block_ttl_s: Option<Spanned<i64>>,
    block_identity: Option<Spanned<String>>,
    ss7_category1: Option<Vec<Spanned<i64>>>,
    diameter_blocked_commands: Option<Vec<Spanned<i64>>>,
    #[serde(default)]
    rule: Vec<RuleModel>,
    subscriber: Option<super::subscriber::SubscriberModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleModel {
    name: Spanned<String>,
    enabled: Option<bool>,
    action: Option<Spanned<String>>,
    ttl_s: Option<Spanned<i64>>,
    mode: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
}

/// Peer keys about inspection (read as part of the peer table).
#[derive(Default)]
pub(super) struct PeerInspectModel {
    pub inspect: Option<Spanned<String>>,
    pub inspect_gtpu: Option<Spanned<String>>,
    pub gt_prefixes: Vec<Spanned<String>>,
    pub realms: Vec<Spanned<String>>,
    pub plmn_ids: Vec<Spanned<String>>,
    pub diameter_apps: Vec<Spanned<i64>>,
}

type At<'a> = &'a dyn Fn(usize, String) -> super::PolicyError;

fn digits(v: &[Spanned<String>], what: &str, max: usize, at: At) -> Result<Vec<String>, super::PolicyError> {
    v.iter()
        .map(|s| {
            let d = s.get_ref().trim();
            if d.is_empty() || d.len() > max || !d.bytes().all(|b| b.is_ascii_digit()) {
                Err(at(s.span().start, format!("{what} {d:?}: expected 1 to {max} decimal digits")))
            } else {
                Ok(d.to_string())
            }
        })
        .collect()
}

fn realms(v: &[Spanned<String>], at: At) -> Result<Vec<String>, super::PolicyError> {
    v.iter()
        .map(|s| {
            let r = s.get_ref().trim().to_ascii_lowercase();
            let ok = !r.is_empty()
                && r.len() <= 253
                && r.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            if ok { Ok(r) } else { Err(at(s.span().start, format!("realm {r:?} is not a DNS name"))) }
        })
        .collect()
}

fn u32_list(v: &[Spanned<i64>], what: &str, at: At) -> Result<Vec<u32>, super::PolicyError> {
    v.iter()
        .map(|n| {
            u32::try_from(*n.get_ref())
                .map_err(|_| at(n.span().start, format!("{what}: {} is not a 32-bit unsigned number", n.get_ref())))
        })
        .collect()
}

pub(super) fn validate(m: InspectModel, at: At) -> Result<Inspect, super::PolicyError> {
    let block_ttl_s = match m.block_ttl_s {
        None => 300,
        Some(t) if (1..=86_400 * 7).contains(t.get_ref()) => *t.get_ref() as u64,
        Some(t) => return Err(at(t.span().start, "inspect.block_ttl_s: 1 to 604800 seconds".into())),
    };
    let mut rules = Vec::new();
    for r in m.rule {
        let name = r.name.get_ref().trim();
        let Some(rule) = RuleId::from_name(name) else {
            let all: Vec<&str> = RuleId::ALL.iter().map(|r| r.name()).collect();
            return Err(at(r.name.span().start, format!("unknown rule {name:?} (rules: {})", all.join(", "))));
        };
        let action = match &r.action {
            None => None,
            Some(a) => Some(RuleAction::parse(a.get_ref()).ok_or_else(|| {
                at(
                    a.span().start,
                    format!("rule {name}: action {:?}: expected alert, block, block-flow or block-peer", a.get_ref()),
                )
            })?),
        };
        let ttl_s = match r.ttl_s {
            None => None,
            Some(t) if (1..=86_400 * 7).contains(t.get_ref()) => Some(*t.get_ref() as u64),
            Some(t) => return Err(at(t.span().start, format!("rule {name}: ttl_s: 1 to 604800 seconds"))),
        };
        let mode = match &r.mode {
            None => None,
            Some(m) => Some(RuleMode::parse(m.get_ref()).ok_or_else(|| {
                at(m.span().start, format!("rule {name}: mode {:?}: expected learn, alert or enforce", m.get_ref()))
            })?),
        };
        let identity = match &r.identity {
            None => None,
            Some(i) => Some(IdentityKind::parse(i.get_ref()).ok_or_else(|| {
                at(i.span().start, format!("rule {name}: identity {:?}: expected sender, imsi or none", i.get_ref()))
            })?),
        };
        rules.push(RuleSetting { rule, enabled: r.enabled.unwrap_or(true), action, ttl_s, mode, identity });
    }
    let block_identity = match &m.block_identity {
        None => IdentityKind::default(),
        Some(i) => IdentityKind::parse(i.get_ref()).ok_or_else(|| {
            at(i.span().start, format!("inspect.block_identity {:?}: expected sender, imsi or none", i.get_ref()))
        })?,
    };
    Ok(Inspect {
        enabled: m.enabled.unwrap_or(true),
        block_identity,
        home_imsi_prefixes: digits(&m.home_imsi_prefixes, "home IMSI prefix", 15, at)?,
        home_gt_prefixes: digits(&m.home_gt_prefixes, "home GT prefix", 15, at)?,
        home_realms: realms(&m.home_realms, at)?,
        block_ttl_s,
        ss7_category1: m.ss7_category1.map(|v| u32_list(&v, "ss7_category1", at)).transpose()?,
        diameter_blocked_commands: m
            .diameter_blocked_commands
            .map(|v| u32_list(&v, "diameter_blocked_commands", at))
            .transpose()?,
        rules,
        subscriber: super::subscriber::validate(m.subscriber.unwrap_or_default(), at)?,
    })
}

pub(super) fn validate_peer(name: &str, m: PeerInspectModel, at: At) -> Result<PeerInspect, super::PolicyError> {
    let sampling = |v: &Option<Spanned<String>>, default: Sampling| -> Result<Sampling, super::PolicyError> {
        match v {
            None => Ok(default),
            Some(s) => Sampling::parse(s.get_ref()).map_err(|e| at(s.span().start, format!("peer {name:?}: {e}"))),
        }
    };
    let plmn_ids = m
        .plmn_ids
        .iter()
        .map(|s| {
            let d = s.get_ref().trim();
            if (d.len() == 5 || d.len() == 6) && d.bytes().all(|b| b.is_ascii_digit()) {
                Ok(d.to_string())
            } else {
                Err(at(s.span().start, format!("peer {name:?}: PLMN id {d:?}: expected MCC+MNC, 5 or 6 digits")))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(PeerInspect {
        sampling: sampling(&m.inspect, Sampling::All)?,
        sampling_gtpu: sampling(&m.inspect_gtpu, Sampling::None)?,
        gt_prefixes: digits(&m.gt_prefixes, "GT prefix", 15, at)?,
        realms: realms(&m.realms, at)?,
        plmn_ids,
        diameter_apps: u32_list(&m.diameter_apps, "diameter_apps", at)?,
    })
}
