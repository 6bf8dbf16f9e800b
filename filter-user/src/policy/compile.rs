//! A validated [`Policy`] turned into exactly what the maps of one generation hold.

use filter_common::{
    Class, GlobalPolicy, MAX_PORTS_PER_CLASS, Mode, PEER_MODE_ENFORCE, PEER_MODE_INHERIT, PEER_MODE_MONITOR,
    PeerPolicy, PortClass, rate,
};
use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::Policy;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub global: GlobalPolicy,
    /// In policy order, each with its id (id 0 is "no peer").
    pub peers: Vec<CompiledPeer>,
    /// Ids given to names that had none: their counters and rate state start from zero.
    pub fresh_ids: Vec<u32>,
    /// (prefix length, address, peer id)
    pub v4: Vec<(u32, [u8; 4], u32)>,
    pub v6: Vec<(u32, [u8; 16], u32)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPeer {
    pub name: String,
    pub id: u32,
    pub policy: PeerPolicy,
}

/// Peer ids by name. A peer keeps its id across generations, so its counters and rate state
/// carry over a policy change; a new name takes the lowest free id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIds {
    by_name: BTreeMap<String, u32>,
}

impl PeerIds {
    /// Ids for `names` (in order): existing names keep theirs, names gone are forgotten.
    /// Returns the ids and which of them are new.
    fn assign(&mut self, names: &[&str]) -> (Vec<u32>, Vec<u32>) {
        self.by_name.retain(|n, _| names.contains(&n.as_str()));
        let mut used: BTreeSet<u32> = self.by_name.values().copied().collect();
        let mut fresh = Vec::new();
        let mut next = 1u32;
        let ids = names
            .iter()
            .map(|n| {
                if let Some(id) = self.by_name.get(*n) {
                    return *id;
                }
                while used.contains(&next) {
                    next += 1;
                }
                used.insert(next);
                self.by_name.insert(n.to_string(), next);
                fresh.push(next);
                next
            })
            .collect();
        (ids, fresh)
    }

    /// Rebuild from (id, name) pairs read back from a running filter.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, String)>) -> Self {
        PeerIds { by_name: pairs.into_iter().map(|(id, n)| (n, id)).collect() }
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }
}

/// `generation` is stamped into the global settings so every reader knows which one it sees.
/// Validation has already bounded the peer count below `MAX_PEERS`, so ids always fit.
pub fn compile(p: &Policy, generation: u64, ids: &mut PeerIds) -> Compiled {
    let mut global = GlobalPolicy {
        generation,
        mode: p.mode as u8,
        unknown_peer_pass: p.unknown_peer_pass as u8,
        non_signaling_pass: p.non_signaling_pass as u8,
        // `sctp` stands for the `Sctp` class here (not the wildcard): other SCTP.
        fragments_drop: p
            .fragments_drop
            .iter()
            .map(|c| match c {
                super::AllowClass::Sctp => Class::Sctp.bit(),
                c => c.bit(),
            })
            .fold(0, |a, b| a | b) as u8,
        ..GlobalPolicy::default()
    };
    for (pc, list) in [
        (PortClass::GtpC, &p.ports.gtp_c),
        (PortClass::GtpU, &p.ports.gtp_u),
        (PortClass::Diameter, &p.ports.diameter),
        (PortClass::Sigtran, &p.ports.sigtran),
    ] {
        let slot = &mut global.ports[pc as usize];
        *slot = [0; MAX_PORTS_PER_CLASS];
        for (i, port) in list.iter().take(MAX_PORTS_PER_CLASS).enumerate() {
            slot[i] = port.to_be();
        }
        global.port_counts[pc as usize] = list.len().min(MAX_PORTS_PER_CLASS) as u8;
    }

    let names: Vec<&str> = p.peers.iter().map(|x| x.name.as_str()).collect();
    let (id_list, fresh_ids) = ids.assign(&names);
    global.peer_slots = id_list.iter().max().map_or(1, |m| m + 1);
    let mut peers = Vec::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (peer, &id) in p.peers.iter().zip(&id_list) {
        let (interval, tolerance) = match peer.rate_limit_pps {
            Some(pps) => rate::params(pps, peer.rate_burst.unwrap_or(0)),
            None => (0, 0),
        };
        // A tenth of a second's worth of burst.
        let copy = rate::params(peer.inspect_budget_pps, (peer.inspect_budget_pps / 10).max(1));
        let policy = PeerPolicy {
            allow: peer.allow.iter().fold(0, |a, c| a | c.bit()),
            present: 1,
            mode: match peer.mode {
                None => PEER_MODE_INHERIT,
                Some(Mode::Enforce) => PEER_MODE_ENFORCE,
                Some(Mode::Monitor) => PEER_MODE_MONITOR,
            },
            flags: if peer.unclassifiable_pass { filter_common::PEER_FLAG_UNCLASSIFIABLE_PASS } else { 0 }
                | if peer.overload_pass { filter_common::PEER_FLAG_OVERLOAD_PASS } else { 0 },
            _pad: 0,
            rate_interval_ns: interval,
            rate_tolerance_ns: tolerance,
            inspect_every: peer.inspect.sampling.every(),
            inspect_gtpu_every: peer.inspect.sampling_gtpu.every(),
            copy_interval_ns: copy.0,
            copy_tolerance_ns: copy.1,
        };
        peers.push(CompiledPeer { name: peer.name.clone(), id, policy });
        for net in &peer.prefixes {
            match net {
                IpNet::V4(n) => v4.push((n.prefix_len() as u32, n.addr().octets(), id)),
                IpNet::V6(n) => v6.push((n.prefix_len() as u32, n.addr().octets(), id)),
            }
        }
    }
    Compiled { global, peers, fresh_ids, v4, v6 }
}
