//! A validated [`Policy`] turned into exactly what the maps of one generation hold.

use filter_common::{
    GlobalPolicy, MAX_PORTS_PER_CLASS, Mode, PEER_MODE_ENFORCE, PEER_MODE_INHERIT,
    PEER_MODE_MONITOR, PeerPolicy, PortClass, rate,
};
use ipnet::IpNet;

use super::Policy;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub global: GlobalPolicy,
    /// Index `i` holds peer id `i + 1` (id 0 is "no peer").
    pub peers: Vec<CompiledPeer>,
    /// (prefix length, address, peer id)
    pub v4: Vec<(u32, [u8; 4], u32)>,
    pub v6: Vec<(u32, [u8; 16], u32)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPeer {
    pub name: String,
    pub policy: PeerPolicy,
}

/// `generation` is stamped into the global settings so every reader knows which one it sees.
pub fn compile(p: &Policy, generation: u64) -> Compiled {
    let mut global = GlobalPolicy {
        generation,
        mode: p.mode as u8,
        unknown_peer_pass: p.unknown_peer_pass as u8,
        non_signaling_pass: p.non_signaling_pass as u8,
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

    let mut peers = Vec::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (i, peer) in p.peers.iter().enumerate() {
        let id = i as u32 + 1;
        let (interval, tolerance) = match peer.rate_limit_pps {
            Some(pps) => rate::params(pps, peer.rate_burst.unwrap_or(0)),
            None => (0, 0),
        };
        let policy = PeerPolicy {
            allow: peer.allow.iter().fold(0, |a, c| a | c.bit()),
            present: 1,
            mode: match peer.mode {
                None => PEER_MODE_INHERIT,
                Some(Mode::Enforce) => PEER_MODE_ENFORCE,
                Some(Mode::Monitor) => PEER_MODE_MONITOR,
            },
            _pad: [0; 2],
            rate_interval_ns: interval,
            rate_tolerance_ns: tolerance,
        };
        peers.push(CompiledPeer {
            name: peer.name.clone(),
            policy,
        });
        for net in &peer.prefixes {
            match net {
                IpNet::V4(n) => v4.push((n.prefix_len() as u32, n.addr().octets(), id)),
                IpNet::V6(n) => v6.push((n.prefix_len() as u32, n.addr().octets(), id)),
            }
        }
    }
    Compiled {
        global,
        peers,
        v4,
        v6,
    }
}
