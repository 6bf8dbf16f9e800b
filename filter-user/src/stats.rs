//! Counters read back from the maps: of a loaded [`Filter`](crate::loader::Filter), or of the
//! pins of a running one.

use std::collections::HashMap;

use aya::maps::{Array, Map, MapData, PerCpuArray};
use filter_common::{
    CLASS_COUNT, Class, Counter, MAX_PEERS, PeerCounter, PeerName, REASON_COUNT, Reason, STATS_PEERS,
    STATS_UNKNOWN_DROPPED, STATS_UNKNOWN_PASSED, UNKNOWN_PEER_ID, maps, stats_index_in,
};
use serde::Serialize;

use crate::{errors::OperatorError, loader};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    pub name: String,
    #[serde(skip)]
    pub id: u32,
    pub packets: u64,
    pub bytes: u64,
    pub passed: u64,
    pub dropped: u64,
    /// Copied to deep inspection, and copies denied (budget, ring half full for drops, ring full).
    pub copied: u64,
    pub copy_denied: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub generation: u64,
    /// `[reason][class]`, summed over CPUs.
    pub cells: [[Counter; CLASS_COUNT]; REASON_COUNT],
    /// The unknown-source slot first, then the active generation's peers in id order.
    pub peers: Vec<PeerStats>,
    /// In-path mode only: where frames went after the first pass (`filter_common::INPATH_*`,
    /// by [`filter_common::INPATH_STAT_NAMES`]), summed over CPUs; `None` in host mode.
    pub inpath: Option<Vec<(&'static str, Counter)>>,
    /// Misses of the XDP program's source cache and peer slots it kept, summed over CPUs;
    /// `None` for pins made before the cache existed (until the next program load creates it).
    pub source_cache: Option<filter_common::SourceCacheStats>,
}

impl Snapshot {
    pub fn reason(&self, r: Reason) -> u64 {
        self.cells[r as usize].iter().map(|c| c.packets).sum()
    }

    pub fn cell(&self, r: Reason, c: Class) -> u64 {
        self.cells[r as usize][c as usize].packets
    }

    pub fn class(&self, c: Class) -> u64 {
        self.cells.iter().map(|row| row[c as usize].packets).sum()
    }

    /// An in-path counter's packets by its name (0 in host mode).
    pub fn inpath(&self, name: &str) -> u64 {
        self.inpath.iter().flatten().find(|(n, _)| *n == name).map(|(_, c)| c.packets).unwrap_or(0)
    }

    pub fn peer(&self, name: &str) -> Option<&PeerStats> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// The JSON documented in the README: `{"generation", "reasons", "classes", "peers"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let reasons: serde_json::Map<_, _> =
            Reason::ALL.iter().map(|r| (r.name().to_string(), self.reason(*r).into())).collect();
        let classes: serde_json::Map<_, _> = Class::ALL
            .iter()
            .map(|c| {
                let by_reason: serde_json::Map<_, _> =
                    Reason::ALL.iter().map(|r| (r.name().to_string(), self.cell(*r, *c).into())).collect();
                (c.name().to_string(), by_reason.into())
            })
            .collect();
        let mut v = serde_json::json!({
            "generation": self.generation,
            "reasons": reasons,
            "classes": classes,
            "peers": self.peers,
        });
        if let Some(inpath) = &self.inpath {
            let m: serde_json::Map<_, _> = inpath
                .iter()
                .map(|(n, c)| (n.to_string(), serde_json::json!({"packets": c.packets, "bytes": c.bytes})))
                .collect();
            v["inpath"] = m.into();
        }
        if let Some(c) = &self.source_cache {
            v["source_cache"] = serde_json::json!({"misses": c.misses, "kept": c.kept});
        }
        v
    }

    /// Two tables for terminals: per peer, and per reason x class (zero rows left out).
    pub fn to_table(&self) -> String {
        let mut s = format!("policy generation {}\n\n", self.generation);
        s += &format!("{:<24} {:>12} {:>14} {:>12} {:>12}\n", "peer", "packets", "bytes", "passed", "dropped");
        for p in &self.peers {
            s += &format!("{:<24} {:>12} {:>14} {:>12} {:>12}\n", p.name, p.packets, p.bytes, p.passed, p.dropped);
        }
        s += &format!("\n{:<18}", "reason \\ class");
        for c in Class::ALL {
            s += &format!(" {:>13}", c.name());
        }
        s += &format!(" {:>10}\n", "total");
        for r in Reason::ALL {
            let total = self.reason(r);
            if total == 0 {
                continue;
            }
            s += &format!("{:<18}", r.name());
            for c in Class::ALL {
                s += &format!(" {:>13}", self.cell(r, c));
            }
            s += &format!(" {:>10}\n", total);
        }
        if let Some(inpath) = &self.inpath {
            s += &format!("\n{:<18} {:>12} {:>14}\n", "in path", "packets", "bytes");
            for (n, c) in inpath {
                s += &format!("{:<18} {:>12} {:>14}\n", n, c.packets, c.bytes);
            }
        }
        if let Some(c) = &self.source_cache {
            s += &format!("\nsource cache: {} misses (trie walks), {} peer slots kept\n", c.misses, c.kept);
        }
        s
    }
}

/// Read a snapshot from maps found by name.
pub fn snapshot<'a>(get: impl Fn(&str) -> Result<&'a Map, OperatorError>) -> Result<Snapshot, OperatorError> {
    let (slot, global) = loader::pins::active_generation(&get)?;
    let generation = global.generation;

    let stats: PerCpuArray<&MapData, Counter> = PerCpuArray::try_from(get(maps::STATS)?)?;
    let mut cells = [[Counter::default(); CLASS_COUNT]; REASON_COUNT];
    // Sources in no peer are counted only in their own parts of STATS (one counter per packet in
    // XDP): the `(unknown)` row is summed from them (packets and bytes; passed and dropped by
    // part).
    let mut unknown = PeerCounter::default();
    for part in [STATS_PEERS, STATS_UNKNOWN_PASSED, STATS_UNKNOWN_DROPPED] {
        for r in Reason::ALL {
            for c in Class::ALL {
                let per_cpu = stats.get(&stats_index_in(part, r, c), 0)?;
                let cell = &mut cells[r as usize][c as usize];
                for v in per_cpu.iter() {
                    cell.packets += v.packets;
                    cell.bytes += v.bytes;
                    if part != STATS_PEERS {
                        unknown.packets += v.packets;
                        unknown.bytes += v.bytes;
                        if part == STATS_UNKNOWN_PASSED {
                            unknown.passed += v.packets;
                        } else {
                            unknown.dropped += v.packets;
                        }
                    }
                }
            }
        }
    }

    let names: Array<&MapData, PeerName> = Array::try_from(get(maps::PEER_INFO)?)?;
    let counters: PerCpuArray<&MapData, PeerCounter> = PerCpuArray::try_from(get(maps::PEER_STATS)?)?;
    let mut rows = Vec::new();
    for id in 0..global.peer_slots.min(MAX_PEERS) {
        let name = names.get(&(slot * MAX_PEERS + id), 0)?;
        let mut sum = if id == UNKNOWN_PEER_ID { unknown } else { PeerCounter::default() };
        for v in counters.get(&id, 0)?.iter() {
            sum.packets += v.packets;
            sum.bytes += v.bytes;
            sum.passed += v.passed;
            sum.dropped += v.dropped;
            sum.copied += v.copied;
            sum.copy_denied += v.copy_denied;
        }
        rows.push((name, sum));
    }
    let peers = peer_list(global.peer_slots, &rows);
    // Pins made before in-path mode existed have neither map: host mode.
    let inpath = match (get(maps::INPATH_CFG), get(maps::INPATH_STATS)) {
        (Ok(cfg), Ok(st)) => {
            let cfg: Array<&MapData, filter_common::InpathCfg> = Array::try_from(cfg)?;
            if cfg.get(&0, 0)?.enabled != 0 {
                let st: PerCpuArray<&MapData, Counter> = PerCpuArray::try_from(st)?;
                let mut out = Vec::new();
                for (i, n) in filter_common::INPATH_STAT_NAMES {
                    let mut c = Counter::default();
                    for v in st.get(&i, 0)?.iter() {
                        c.packets += v.packets;
                        c.bytes += v.bytes;
                    }
                    out.push((n, c));
                }
                Some(out)
            } else {
                None
            }
        }
        _ => None,
    };
    let source_cache = match get(maps::SOURCE_CACHE_STATS) {
        Ok(m) => {
            let m: PerCpuArray<&MapData, filter_common::SourceCacheStats> = PerCpuArray::try_from(m)?;
            let mut sum = filter_common::SourceCacheStats::default();
            for v in m.get(&0, 0)?.iter() {
                sum.misses += v.misses;
                sum.kept += v.kept;
            }
            Some(sum)
        }
        Err(_) => None,
    };
    Ok(Snapshot { generation, cells, peers, inpath, source_cache })
}

/// The peers of one generation from its per-id names and counters (summed over CPUs), `rows[id]`.
/// Only ids below `peer_slots` belong to the generation. Ids are stable per name, so a removed
/// peer leaves a hole (an empty name) that is skipped, not the end of the list.
fn peer_list(peer_slots: u32, rows: &[(PeerName, PeerCounter)]) -> Vec<PeerStats> {
    let mut peers = Vec::new();
    for (id, (n, c)) in rows.iter().enumerate().take(peer_slots.min(MAX_PEERS) as usize) {
        let id = id as u32;
        let len = n.bytes.iter().position(|b| *b == 0).unwrap_or(n.bytes.len());
        if len == 0 {
            continue;
        }
        peers.push(PeerStats {
            name: String::from_utf8_lossy(&n.bytes[..len]).into_owned(),
            id,
            packets: c.packets,
            bytes: c.bytes,
            passed: c.passed,
            dropped: c.dropped,
            copied: c.copied,
            copy_denied: c.copy_denied,
        });
    }
    peers
}

/// Snapshot of a loaded filter.
pub fn of_filter(f: &loader::Filter) -> Result<Snapshot, OperatorError> {
    snapshot(|name| loader::map(&f.ebpf, name))
}

/// Snapshot from the pins of the filter attached to `iface`.
pub fn of_pins(iface: &str) -> Result<Snapshot, OperatorError> {
    let dir = loader::pin_dir(iface);
    if !loader::bpffs_mounted() {
        return Err(OperatorError::NoBpffs);
    }
    if !dir.join(maps::STATS).exists() {
        return Err(OperatorError::NotAttached { iface: iface.to_string(), dir: dir.display().to_string() });
    }
    let mut maps: HashMap<&str, Map> = HashMap::new();
    for name in [maps::ACTIVE, maps::GLOBAL, maps::STATS, maps::PEER_INFO, maps::PEER_STATS] {
        maps.insert(name, loader::pins::open(iface, name)?);
    }
    // Maps a version before in-path mode or the source cache did not pin: absent means absent,
    // but a pin that exists and cannot be opened is an error, not "host mode" or "no cache".
    for name in [maps::INPATH_CFG, maps::INPATH_STATS, maps::SOURCE_CACHE_STATS] {
        if dir.join(name).exists() {
            maps.insert(name, loader::pins::open(iface, name)?);
        }
    }
    snapshot(|name| maps.get(name).ok_or_else(|| OperatorError::BrokenObject { what: format!("map {name}") }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, packets: u64) -> (PeerName, PeerCounter) {
        let mut n = PeerName::default();
        n.bytes[..name.len()].copy_from_slice(name.as_bytes());
        (n, PeerCounter { packets, bytes: packets * 100, passed: packets, dropped: 0, copied: 0, copy_denied: 0 })
    }

    fn names(peers: &[PeerStats]) -> Vec<(&str, u32)> {
        peers.iter().map(|p| (p.name.as_str(), p.id)).collect()
    }

    /// After `peer remove b` of peers a, b, c the generation has a hole at b's id: c is still
    /// listed, with its counters.
    #[test]
    fn a_removed_peer_does_not_hide_the_later_ones() {
        let rows = [row("(unknown)", 7), row("a", 1), (PeerName::default(), PeerCounter::default()), row("c", 3)];
        let peers = peer_list(4, &rows);
        assert_eq!(names(&peers), [("(unknown)", 0), ("a", 1), ("c", 3)]);
        assert_eq!(peers[2].packets, 3);
        assert_eq!(peers[2].bytes, 300);
    }

    /// Names beyond the generation's `peer_slots` (left by an older, larger generation) are
    /// not this generation's peers.
    #[test]
    fn only_the_generations_slots_are_listed() {
        let rows = [row("(unknown)", 0), row("a", 1), row("stale", 2)];
        assert_eq!(names(&peer_list(2, &rows)), [("(unknown)", 0), ("a", 1)]);
    }

    #[test]
    fn no_policy_yet_lists_nothing() {
        let empty = (PeerName::default(), PeerCounter::default());
        assert!(peer_list(0, &[empty, empty]).is_empty());
        assert!(peer_list(1, &[empty, empty]).is_empty());
    }
}
