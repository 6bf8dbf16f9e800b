//! Identity blocks (issue 9 item 4): in path, a rule whose action is `block` stops the message
//! and blocks the identity that sent it, within its peer, for the rule's TTL; the association,
//! connection or GTP-C path it came on stays up for everyone else. The identity is what the
//! message says about its sender:
//! - SIGTRAN: the SCCP calling global title (FS.11 filters by calling GT);
//! - Diameter: the Origin-Host, or the Origin-Realm when the message has no Origin-Host
//!   (FS.19 filters by origin);
//! - GTP-C: the sending node, i.e. the source address of the datagram (FS.20: the peer's
//!   GTP-C entities are identified by their addresses);
//! - or, for a rule configured `identity = "imsi"`, the subscriber (IMSI) the message is about.
//!
//! Only a message proven to belong to its association or connection installs a block (review
//! H7): a forged packet may be stopped, but it cannot make anyone's identity blocked. A message
//! from a blocked identity is stopped by the `identity-blocked` rule, which does not extend the
//! block: the TTL runs from the message that misbehaved.
//!
//! The table is shared by the in-path workers (one per RX queue: an identity's messages may
//! arrive on any queue), bounded at [`MAX_IDENTITY_BLOCKS`]; past it the block that expires
//! first is evicted and counted (`evicted`), never silently.
//!
//! Host mode (deep inspection of copies) cannot stop a message, and XDP does not read global
//! titles or AVPs: there `block` takes the flow down, as `block-flow` does, and the event says
//! so.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use serde_json::{Value, json};

use super::rules::RuleId;

/// Identity blocks held at once; past this, the one expiring first is evicted and counted.
pub const MAX_IDENTITY_BLOCKS: usize = 65_536;

/// What a block names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// SCCP (or SUA) calling party global title digits.
    CallingGt(String),
    OriginHost(String),
    OriginRealm(String),
    /// The source address of a GTP-C datagram.
    GtpcNode(IpAddr),
    Imsi(String),
}

impl Identity {
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::CallingGt(_) => "calling-gt",
            Identity::OriginHost(_) => "origin-host",
            Identity::OriginRealm(_) => "origin-realm",
            Identity::GtpcNode(_) => "gtpc-node",
            Identity::Imsi(_) => "imsi",
        }
    }

    pub fn value(&self) -> String {
        match self {
            Identity::CallingGt(s) | Identity::OriginHost(s) | Identity::OriginRealm(s) | Identity::Imsi(s) => {
                s.clone()
            }
            Identity::GtpcNode(a) => a.to_string(),
        }
    }

    pub fn json(&self) -> Value {
        json!({"kind": self.kind(), "value": self.value()})
    }

    /// Diameter names are case-insensitive (RFC 6733 DiameterIdentity is an FQDN): one block
    /// covers every spelling.
    fn normalized(self) -> Identity {
        match self {
            Identity::OriginHost(h) => Identity::OriginHost(h.to_ascii_lowercase()),
            Identity::OriginRealm(r) => Identity::OriginRealm(r.to_ascii_lowercase()),
            other => other,
        }
    }
}

/// Which identity of a message a rule's `block` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// The sender: calling GT, Origin-Host (or Origin-Realm), GTP-C node.
    #[default]
    Sender,
    /// The subscriber the message is about.
    Imsi,
    /// Nobody: `block` stops the message only.
    None,
}

impl IdentityKind {
    pub fn parse(s: &str) -> Option<IdentityKind> {
        match s {
            "sender" => Some(IdentityKind::Sender),
            "imsi" => Some(IdentityKind::Imsi),
            "none" => Some(IdentityKind::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IdentityKind::Sender => "sender",
            IdentityKind::Imsi => "imsi",
            IdentityKind::None => "none",
        }
    }
}

/// A message's identities: its sender's, and the subscriber's when it names one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identities {
    pub sender: Option<Identity>,
    pub imsi: Option<Identity>,
}

impl Identities {
    pub fn pick(&self, kind: IdentityKind) -> Option<&Identity> {
        match kind {
            IdentityKind::Sender => self.sender.as_ref(),
            IdentityKind::Imsi => self.imsi.as_ref(),
            IdentityKind::None => None,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Identity> {
        self.sender.iter().chain(self.imsi.iter())
    }
}

#[derive(Clone, Debug)]
struct Entry {
    until_ns: u64,
    since_ns: u64,
    rule: RuleId,
}

#[derive(Default)]
struct Inner {
    map: HashMap<(u32, Identity), Entry>,
    installed: u64,
    evicted: u64,
    stopped: u64,
}

/// A block in force, as the control socket and events show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub peer_id: u32,
    pub identity: Identity,
    pub rule: RuleId,
    pub remaining_s: u64,
    pub age_s: u64,
}

impl Blocked {
    pub fn json(&self) -> Value {
        json!({
            "identity": self.identity.json(),
            "blocked_by": self.rule.name(),
            "remaining_s": self.remaining_s,
            "age_s": self.age_s,
        })
    }
}

/// The identity blocks of the in-path workers.
#[derive(Default)]
pub struct Blocks {
    inner: Mutex<Inner>,
}

/// Counters of the table, for stats and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockCounts {
    /// Blocks in force.
    pub active: u64,
    /// Blocks installed (a block installed again while in force counts again).
    pub installed: u64,
    /// Blocks evicted before their TTL because the table was full.
    pub evicted: u64,
    /// Messages stopped because their identity was blocked.
    pub stopped: u64,
}

impl Blocks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A worker that panicked holding the lock left a consistent map (every update is one
        // insert or remove): keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Block `identity` within `peer_id` until `now_ns + ttl_s`. A block already in force is
    /// extended, never shortened.
    pub fn install(&self, peer_id: u32, identity: Identity, ttl_s: u64, rule: RuleId, now_ns: u64) {
        let until_ns = now_ns.saturating_add(ttl_s.saturating_mul(1_000_000_000));
        let mut g = self.lock();
        g.installed += 1;
        let key = (peer_id, identity.normalized());
        if let Some(e) = g.map.get_mut(&key) {
            if until_ns > e.until_ns {
                e.until_ns = until_ns;
                e.rule = rule;
            }
            return;
        }
        if g.map.len() >= MAX_IDENTITY_BLOCKS {
            g.map.retain(|_, e| e.until_ns > now_ns);
        }
        if g.map.len() >= MAX_IDENTITY_BLOCKS
            && let Some(k) = g.map.iter().min_by_key(|(_, e)| e.until_ns).map(|(k, _)| k.clone())
        {
            g.map.remove(&k);
            g.evicted += 1;
        }
        g.map.insert(key, Entry { until_ns, since_ns: now_ns, rule });
    }

    /// The first of `ids` blocked within `peer_id` at `now_ns` (an expired block is removed).
    pub fn blocked(&self, peer_id: u32, ids: &Identities, now_ns: u64) -> Option<Blocked> {
        let mut g = self.lock();
        if g.map.is_empty() {
            return None;
        }
        for id in ids.iter() {
            let key = (peer_id, id.clone().normalized());
            let Some(e) = g.map.get(&key).cloned() else { continue };
            if e.until_ns <= now_ns {
                g.map.remove(&key);
                continue;
            }
            g.stopped += 1;
            return Some(Blocked {
                peer_id,
                identity: key.1,
                rule: e.rule,
                remaining_s: (e.until_ns - now_ns).div_ceil(1_000_000_000),
                age_s: now_ns.saturating_sub(e.since_ns) / 1_000_000_000,
            });
        }
        None
    }

    /// Every block in force, soonest to expire first.
    pub fn list(&self, now_ns: u64) -> Vec<Blocked> {
        let mut g = self.lock();
        g.map.retain(|_, e| e.until_ns > now_ns);
        let mut v: Vec<Blocked> = g
            .map
            .iter()
            .map(|((peer_id, identity), e)| Blocked {
                peer_id: *peer_id,
                identity: identity.clone(),
                rule: e.rule,
                remaining_s: (e.until_ns - now_ns).div_ceil(1_000_000_000),
                age_s: now_ns.saturating_sub(e.since_ns) / 1_000_000_000,
            })
            .collect();
        v.sort_by_key(|b| (b.remaining_s, b.peer_id, b.identity.value()));
        v
    }

    /// Lift the blocks of `peer_id` whose identity has this value (any kind); returns how many.
    pub fn lift(&self, peer_id: u32, value: &str) -> usize {
        let mut g = self.lock();
        let before = g.map.len();
        g.map.retain(|(p, id), _| !(*p == peer_id && id.value().eq_ignore_ascii_case(value)));
        before - g.map.len()
    }

    /// Forget the blocks of peers no longer in the policy (a peer id may be given to another
    /// peer later); returns how many went.
    pub fn keep_peers(&self, peers: &std::collections::HashSet<u32>) -> usize {
        let mut g = self.lock();
        let before = g.map.len();
        g.map.retain(|(p, _), _| peers.contains(p));
        before - g.map.len()
    }

    pub fn counts(&self, now_ns: u64) -> BlockCounts {
        let g = self.lock();
        BlockCounts {
            active: g.map.values().filter(|e| e.until_ns > now_ns).count() as u64,
            installed: g.installed,
            evicted: g.evicted,
            stopped: g.stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn gt(d: &str) -> Identities {
        Identities { sender: Some(Identity::CallingGt(d.into())), imsi: None }
    }

    #[test]
    fn a_block_holds_for_its_ttl_within_its_peer_only() {
        let b = Blocks::default();
        b.install(1, Identity::CallingGt("41790000001".into()), 60, RuleId::Ss7Category1, 10 * S);
        let hit = b.blocked(1, &gt("41790000001"), 20 * S).expect("blocked");
        assert_eq!((hit.rule, hit.remaining_s, hit.age_s), (RuleId::Ss7Category1, 50, 10));
        assert!(b.blocked(2, &gt("41790000001"), 20 * S).is_none(), "another peer's GT is not blocked");
        assert!(b.blocked(1, &gt("41790000002"), 20 * S).is_none(), "another GT is not blocked");
        assert!(b.blocked(1, &gt("41790000001"), 70 * S).is_none(), "expired");
        assert_eq!(b.counts(70 * S), BlockCounts { active: 0, installed: 1, evicted: 0, stopped: 1 });
    }

    #[test]
    fn diameter_names_are_matched_whatever_their_case() {
        let b = Blocks::default();
        b.install(3, Identity::OriginHost("MME1.Visited.Example".into()), 60, RuleId::DiameterCommandBlocked, 0);
        let ids = Identities { sender: Some(Identity::OriginHost("mme1.visited.example".into())), imsi: None };
        assert!(b.blocked(3, &ids, S).is_some());
        assert_eq!(b.lift(3, "MME1.VISITED.EXAMPLE"), 1);
        assert!(b.blocked(3, &ids, S).is_none());
    }

    #[test]
    fn an_imsi_block_stops_messages_about_the_subscriber_from_any_sender_of_the_peer() {
        let b = Blocks::default();
        b.install(1, Identity::Imsi("001010000000001".into()), 60, RuleId::Ss7Category2, 0);
        let ids = Identities {
            sender: Some(Identity::CallingGt("41790000009".into())),
            imsi: Some(Identity::Imsi("001010000000001".into())),
        };
        assert_eq!(b.blocked(1, &ids, S).map(|h| h.identity), Some(Identity::Imsi("001010000000001".into())));
    }

    #[test]
    fn a_block_is_extended_never_shortened() {
        let b = Blocks::default();
        b.install(1, Identity::CallingGt("4179".into()), 300, RuleId::Ss7Category1, 0);
        b.install(1, Identity::CallingGt("4179".into()), 10, RuleId::Ss7GtBinding, S);
        let hit = b.blocked(1, &gt("4179"), 2 * S).unwrap();
        assert_eq!((hit.rule, hit.remaining_s), (RuleId::Ss7Category1, 298));
        b.install(1, Identity::CallingGt("4179".into()), 600, RuleId::Ss7GtBinding, 2 * S);
        assert_eq!(b.blocked(1, &gt("4179"), 2 * S).unwrap().rule, RuleId::Ss7GtBinding);
    }

    #[test]
    fn a_full_table_evicts_the_block_expiring_first_and_counts_it() {
        let b = Blocks::default();
        for i in 0..MAX_IDENTITY_BLOCKS as u64 {
            b.install(1, Identity::Imsi(format!("{i:015}")), 100 + i, RuleId::Ss7Category1, 0);
        }
        b.install(1, Identity::Imsi("999999999999999".into()), 1000, RuleId::Ss7Category1, 0);
        let c = b.counts(0);
        assert_eq!((c.active, c.evicted), (MAX_IDENTITY_BLOCKS as u64, 1));
        let first = Identities { sender: None, imsi: Some(Identity::Imsi(format!("{:015}", 0))) };
        assert!(b.blocked(1, &first, 0).is_none(), "the block expiring first went");
        let second = Identities { sender: None, imsi: Some(Identity::Imsi(format!("{:015}", 1))) };
        assert!(b.blocked(1, &second, 0).is_some());
    }

    #[test]
    fn a_removed_peers_blocks_go() {
        let b = Blocks::default();
        b.install(1, Identity::CallingGt("4179".into()), 60, RuleId::Ss7Category1, 0);
        b.install(2, Identity::CallingGt("4179".into()), 60, RuleId::Ss7Category1, 0);
        assert_eq!(b.keep_peers(&[2].into_iter().collect()), 1);
        assert!(b.blocked(1, &gt("4179"), 1).is_none());
        assert!(b.blocked(2, &gt("4179"), 1).is_some());
    }

    #[test]
    fn a_full_table_drops_expired_blocks_before_evicting_live_ones() {
        let b = Blocks::default();
        for i in 0..MAX_IDENTITY_BLOCKS as u64 {
            b.install(1, Identity::Imsi(format!("{i:015}")), if i == 7 { 1 } else { 100 }, RuleId::Ss7Category1, 0);
        }
        b.install(1, Identity::Imsi("999999999999999".into()), 100, RuleId::Ss7Category1, 2 * S);
        assert_eq!(b.counts(2 * S).evicted, 0);
    }
}
