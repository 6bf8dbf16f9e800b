//! `[inspect.subscriber]`: the settings of the stateful rules (location plausibility, SMS
//! firewall, correlation) and of the subscriber store, and the per-rule modes
//! (`learn`, `alert`, `enforce`).

use serde::Deserialize;
use toml::Spanned;

/// How a rule's finding is carried out: `learn` records it (counted, an event marked
/// "learned", no block), `alert` raises an alert, `enforce` takes the rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleMode {
    Learn,
    Alert,
    Enforce,
}

impl RuleMode {
    pub fn parse(s: &str) -> Option<RuleMode> {
        match s {
            "learn" => Some(RuleMode::Learn),
            "alert" => Some(RuleMode::Alert),
            "enforce" => Some(RuleMode::Enforce),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleMode::Learn => "learn",
            RuleMode::Alert => "alert",
            RuleMode::Enforce => "enforce",
        }
    }
}

/// One entry of the travel-time table: the shortest plausible time between two countries,
/// replacing the one computed from the distance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TravelTime {
    pub from: String,
    pub to: String,
    pub min_s: u64,
}

/// `[inspect.subscriber]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberPolicy {
    /// The stateful rules and the state's feeding (default on; off: the stateless rules only).
    pub enabled: bool,
    /// Identities (IMSI, MSISDN) in events and logs shown with their middle digits masked.
    pub mask_identities: bool,
    /// GT prefixes of the SIM OTA platforms allowed to send command SMS to home subscribers
    /// (SCCP calling GT or SM-RP-OA service centre address).
    pub ota_platforms: Vec<String>,
    /// Fastest plausible travel, km/h (default 900, an airliner).
    pub max_speed_kmh: u32,
    /// Kilometres taken off every distance: near a border two countries' networks are both in
    /// reach, however far apart the countries' points are (default 300).
    pub border_slack_km: u32,
    /// Two GTs sharing this many leading digits belong to one network (default 5: country
    /// code and network code for most numbering plans).
    pub gt_network_digits: usize,
    /// How long an SRI-SM answered by the home network covers the MT-forwardSM that follows
    /// (default 300 s).
    pub sri_sm_window_s: u64,
    /// Identity rotation: more than `rotation_max` distinct identities (GTs, realms, PLMNs)
    /// claimed by one peer within `rotation_window_s` (defaults 16 and 60 s).
    pub rotation_max: usize,
    pub rotation_window_s: u64,
    /// Subscribers kept in memory (default 10 000 000).
    pub capacity: usize,
    pub travel: Vec<TravelTime>,
}

impl Default for SubscriberPolicy {
    fn default() -> Self {
        SubscriberPolicy {
            enabled: true,
            mask_identities: false,
            ota_platforms: vec![],
            max_speed_kmh: 900,
            border_slack_km: 300,
            gt_network_digits: 5,
            sri_sm_window_s: 300,
            rotation_max: 16,
            rotation_window_s: 60,
            capacity: crate::subscriber::DEFAULT_CAPACITY,
            travel: vec![],
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriberModel {
    enabled: Option<bool>,
    mask_identities: Option<bool>,
    #[serde(default)]
    ota_platforms: Vec<Spanned<String>>,
    max_speed_kmh: Option<Spanned<i64>>,
    border_slack_km: Option<Spanned<i64>>,
    gt_network_digits: Option<Spanned<i64>>,
    sri_sm_window_s: Option<Spanned<i64>>,
    rotation_max: Option<Spanned<i64>>,
    rotation_window_s: Option<Spanned<i64>>,
    capacity: Option<Spanned<i64>>,
    #[serde(default)]
    travel: Vec<TravelModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TravelModel {
    from: Spanned<String>,
    to: Spanned<String>,
    min_s: Spanned<i64>,
}

type At<'a> = &'a dyn Fn(usize, String) -> super::PolicyError;

fn ranged(
    v: &Option<Spanned<i64>>,
    what: &str,
    lo: i64,
    hi: i64,
    default: i64,
    at: At,
) -> Result<i64, super::PolicyError> {
    match v {
        None => Ok(default),
        Some(s) if (lo..=hi).contains(s.get_ref()) => Ok(*s.get_ref()),
        Some(s) => Err(at(s.span().start, format!("inspect.subscriber.{what}: {lo} to {hi}"))),
    }
}

pub(super) fn validate(m: SubscriberModel, at: At) -> Result<SubscriberPolicy, super::PolicyError> {
    let d = SubscriberPolicy::default();
    let countries = crate::subscriber::geo::Countries::shipped();
    let mut travel = Vec::new();
    for t in m.travel {
        for c in [&t.from, &t.to] {
            if countries.by_iso(c.get_ref()).is_none() {
                return Err(at(
                    c.span().start,
                    format!("inspect.subscriber.travel: {:?} is not an ISO 3166 alpha-2 country code", c.get_ref()),
                ));
            }
        }
        let min_s = ranged(&Some(t.min_s.clone()), "travel.min_s", 0, 7 * 86_400, 0, at)? as u64;
        travel.push(TravelTime {
            from: t.from.get_ref().to_ascii_uppercase(),
            to: t.to.get_ref().to_ascii_uppercase(),
            min_s,
        });
    }
    let mut ota = Vec::new();
    for p in &m.ota_platforms {
        let s = p.get_ref().trim();
        if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(at(p.span().start, format!("inspect.subscriber.ota_platforms: {s:?}: 1 to 15 decimal digits")));
        }
        ota.push(s.to_string());
    }
    Ok(SubscriberPolicy {
        enabled: m.enabled.unwrap_or(true),
        mask_identities: m.mask_identities.unwrap_or(d.mask_identities),
        ota_platforms: ota,
        max_speed_kmh: ranged(&m.max_speed_kmh, "max_speed_kmh", 1, 20_000, 900, at)? as u32,
        border_slack_km: ranged(&m.border_slack_km, "border_slack_km", 0, 5_000, 300, at)? as u32,
        gt_network_digits: ranged(&m.gt_network_digits, "gt_network_digits", 1, 15, 5, at)? as usize,
        sri_sm_window_s: ranged(&m.sri_sm_window_s, "sri_sm_window_s", 1, 86_400, 300, at)? as u64,
        rotation_max: ranged(&m.rotation_max, "rotation_max", 2, 10_000, 16, at)? as usize,
        rotation_window_s: ranged(&m.rotation_window_s, "rotation_window_s", 1, 86_400, 60, at)? as u64,
        capacity: ranged(&m.capacity, "capacity", 1_000, 1_000_000_000, d.capacity as i64, at)? as usize,
        travel,
    })
}
