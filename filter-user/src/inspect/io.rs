//! Inspection's side effects: ring-buffer records in, verdicts pushed down into the XDP maps,
//! events out (JSON lines, an in-memory tail for `sigwall events`, a pcap of flagged packets).

use std::{
    collections::{HashMap, VecDeque},
    fs::File,
    io::{BufWriter, Write},
    path::Path,
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use filter_common::{
    Block, Class, FlowKey, INSPECT_BUDGET, INSPECT_DROP_SKIPPED, INSPECT_FLAGGED, INSPECT_OVERFLOW,
    INSPECT_STATS_ENTRIES, INSPECT_TRUNCATED, InspectCfg, InspectHeader, MAX_PEERS, Reason, maps,
};
use serde_json::{Value, json};

use super::Action;
use crate::{errors::OperatorError, loader::Filter};

/// CLOCK_MONOTONIC in ns: the clock `bpf_ktime_get_ns` reads, so expiries compare directly.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A ring-buffer record split into its header and the copied bytes.
pub fn split_record(rec: &[u8]) -> Option<(InspectHeader, &[u8])> {
    let h = std::mem::size_of::<InspectHeader>();
    if rec.len() < h {
        return None;
    }
    // SAFETY: InspectHeader is plain old data of `h` bytes; read_unaligned copies them.
    let header: InspectHeader = unsafe { std::ptr::read_unaligned(rec.as_ptr() as *const InspectHeader) };
    let cap = (header.cap_len as usize).min(rec.len() - h);
    Some((header, &rec[h..h + cap]))
}

pub fn class_of(b: u8) -> Class {
    Class::ALL.get(b as usize).copied().unwrap_or(Class::Unclassified)
}

pub fn reason_name(b: u8) -> &'static str {
    Reason::ALL.get(b as usize).map(|r| r.name()).unwrap_or("unknown")
}

fn cfg_map(f: &mut Filter) -> Result<Array<&mut MapData, InspectCfg>, OperatorError> {
    Ok(Array::try_from(crate::loader::map_mut(&mut f.ebpf, maps::INSPECT_CFG)?)?)
}

/// `INSPECT_CFG` holds the switch (written with the policy) and the block counts (written by
/// the [`BlockWriter`]), each by read-modify-write of the one value: this lock keeps the two
/// writers from undoing each other.
static CFG_WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Turn copying to the ring buffer on or off (the policy's `[inspect] enabled`).
pub fn set_enabled(f: &mut Filter, on: bool) -> Result<(), OperatorError> {
    let _w = CFG_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let mut m = cfg_map(f)?;
    let mut c = m.get(&0, 0)?;
    c.enabled = on as u32;
    m.set(0, c, 0)?;
    Ok(())
}

/// The verdicts deep inspection pushes down into XDP: flow and peer blocks with an expiry, and
/// the counts XDP reads to skip its lookups when nothing is blocked. The counts are kept here,
/// from what this writer wrote, so a block costs one map write, not a scan of the maps; the
/// maps are scanned once, when the writer starts (an adopted filter may hold blocks).
pub struct BlockWriter {
    flows: BpfHashMap<MapData, FlowKey, Block>,
    peers: Array<MapData, Block>,
    cfg: Array<MapData, InspectCfg>,
    /// Expiry (CLOCK_MONOTONIC ns) of every flow block written and not yet expired.
    flow_expiry: HashMap<FlowKey, u64>,
    peer_expiry: HashMap<u32, u64>,
    /// The start-up scan of FLOW_VERDICTS met an entry it could not read: there may be live
    /// blocks this writer does not know of, so XDP keeps looking flows up for as long as it runs
    /// (a lookup per packet, never a blocked flow let through because a count said zero).
    flows_unknown: bool,
}

impl BlockWriter {
    /// Its own descriptors of the filter's block maps, so it works beside whoever owns `f`.
    pub fn new(f: &Filter) -> Result<BlockWriter, OperatorError> {
        let mut flows: BpfHashMap<MapData, FlowKey, Block> = BpfHashMap::try_from(f.map_handle(maps::FLOW_VERDICTS)?)?;
        let peers: Array<MapData, Block> = Array::try_from(f.map_handle(maps::PEER_BLOCKS)?)?;
        let cfg = Array::try_from(f.map_handle(maps::INSPECT_CFG)?)?;
        let now = monotonic_ns();
        let mut flows_unknown = false;
        let mut all: Vec<(FlowKey, u64)> = Vec::new();
        for entry in flows.iter() {
            match entry {
                Ok((k, b)) => all.push((k, b.expires_ns)),
                Err(e) => {
                    log::warn!("reading the blocked flows of the adopted filter: {e}; flow lookups stay on");
                    flows_unknown = true;
                }
            }
        }
        // Blocks that expired while no daemon ran (XDP already ignores them) are removed now,
        // since later only tracked blocks are removed.
        for (k, _) in all.iter().filter(|(_, e)| *e <= now) {
            let _ = flows.remove(k);
        }
        let flow_expiry = all.into_iter().filter(|(_, e)| *e > now).collect();
        let peer_expiry = (0..MAX_PEERS)
            .filter_map(|id| peers.get(&id, 0).ok().filter(|b| b.expires_ns > now).map(|b| (id, b.expires_ns)))
            .collect();
        let mut w = BlockWriter { flows, peers, cfg, flow_expiry, peer_expiry, flows_unknown };
        w.publish_counts()?;
        Ok(w)
    }

    /// Carry out an action: write the block with its expiry, then make sure XDP looks.
    pub fn apply(&mut self, a: &Action) -> Result<(), OperatorError> {
        let now = monotonic_ns();
        match a {
            // A message-level block is the in-path worker's: it stopped the message (the
            // identity table is in memory); it sends a BlockFlow when it could not.
            Action::Alert | Action::BlockMessage { .. } => return Ok(()),
            Action::BlockFlow { key, ttl_s, rule } => {
                let expires_ns = now + ttl_s * 1_000_000_000;
                self.flows.insert(key, Block { expires_ns, rule: *rule as u32, _pad: 0 }, 0)?;
                self.flow_expiry.insert(*key, expires_ns);
                // The kernel map is an LRU of this capacity: past it, the oldest block was
                // evicted there, so forget the one that expires first here.
                if self.flow_expiry.len() > maps::FLOW_VERDICTS_CAPACITY as usize
                    && let Some(k) = self.flow_expiry.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
                {
                    self.flow_expiry.remove(&k);
                }
            }
            Action::BlockPeer { peer_id, ttl_s, rule } => {
                let expires_ns = now + ttl_s * 1_000_000_000;
                self.peers.set(*peer_id, Block { expires_ns, rule: *rule as u32, _pad: 0 }, 0)?;
                self.peer_expiry.insert(*peer_id, expires_ns);
            }
        }
        self.publish_counts()
    }

    /// Remove expired blocks and update the counts. Returns (flows, peers) still blocked.
    pub fn expire(&mut self) -> Result<(u32, u32), OperatorError> {
        let now = monotonic_ns();
        let before = (self.flow_expiry.len(), self.peer_expiry.len());
        let flows: Vec<FlowKey> = self.flow_expiry.iter().filter(|(_, e)| **e <= now).map(|(k, _)| *k).collect();
        for k in flows {
            // Already gone if the LRU evicted it.
            let _ = self.flows.remove(&k);
            self.flow_expiry.remove(&k);
        }
        let peers: Vec<u32> = self.peer_expiry.iter().filter(|(_, e)| **e <= now).map(|(k, _)| *k).collect();
        for id in peers {
            self.peers.set(id, Block::default(), 0)?;
            self.peer_expiry.remove(&id);
        }
        if before != (self.flow_expiry.len(), self.peer_expiry.len()) {
            self.publish_counts()?;
        }
        Ok(self.counts())
    }

    /// (flows, peers) blocked now.
    pub fn counts(&self) -> (u32, u32) {
        (self.flow_expiry.len() as u32, self.peer_expiry.len() as u32)
    }

    fn publish_counts(&mut self) -> Result<(), OperatorError> {
        let (flows, peers) = self.counts();
        let flows = flows + self.flows_unknown as u32;
        let _w = CFG_WRITE.lock().unwrap_or_else(|e| e.into_inner());
        let mut c = self.cfg.get(&0, 0)?;
        if (c.flow_blocks, c.peer_blocks) != (flows, peers) {
            c.flow_blocks = flows;
            c.peer_blocks = peers;
            self.cfg.set(0, c, 0)?;
        }
        Ok(())
    }
}

/// Packets XDP copied up, and packets that found the ring buffer full (summed over CPUs).
pub fn ring_counters(f: &Filter) -> Result<(u64, u64), OperatorError> {
    let c = copy_counters(f)?;
    Ok((c[INSPECT_FLAGGED as usize], c[INSPECT_OVERFLOW as usize]))
}

/// Every `INSPECT_STATS` counter (summed over CPUs), by its index (`filter_common::INSPECT_*`).
pub fn copy_counters(f: &Filter) -> Result<[u64; INSPECT_STATS_ENTRIES as usize], OperatorError> {
    let m: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(crate::loader::map(&f.ebpf, maps::INSPECT_STATS)?)?;
    let mut out = [0; INSPECT_STATS_ENTRIES as usize];
    for (i, o) in out.iter_mut().enumerate() {
        *o = m.get(&(i as u32), 0)?.iter().sum();
    }
    Ok(out)
}

/// Deep inspection's counters in the maps, as the metrics endpoint reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinnedCounters {
    /// Packets XDP copied up to the ring buffer.
    pub flagged: u64,
    /// Packets that found the ring buffer full.
    pub overflow: u64,
    /// Copies cut to the snap length, refused by a peer's copy budget, and copies of dropped
    /// packets skipped while the ring was half full.
    pub truncated: u64,
    pub budget: u64,
    pub drop_skipped: u64,
    /// Flows and peers blocked now.
    pub flows_blocked: u32,
    pub peers_blocked: u32,
}

/// [`PinnedCounters`] of the filter pinned for `iface`: what the metrics endpoint reads
/// without holding the filter.
pub fn counters_of_pins(iface: &str) -> Result<PinnedCounters, OperatorError> {
    let open = |name: &str| crate::loader::pins::open(iface, name);
    let stats: PerCpuArray<MapData, u64> = PerCpuArray::try_from(open(maps::INSPECT_STATS)?)?;
    let sum = |i: u32| -> Result<u64, OperatorError> { Ok(stats.get(&i, 0)?.iter().sum()) };
    let cfg: Array<MapData, InspectCfg> = Array::try_from(open(maps::INSPECT_CFG)?)?;
    let c = cfg.get(&0, 0)?;
    Ok(PinnedCounters {
        flagged: sum(INSPECT_FLAGGED)?,
        overflow: sum(INSPECT_OVERFLOW)?,
        truncated: sum(INSPECT_TRUNCATED)?,
        budget: sum(INSPECT_BUDGET)?,
        drop_skipped: sum(INSPECT_DROP_SKIPPED)?,
        flows_blocked: c.flow_blocks,
        peers_blocked: c.peer_blocks,
    })
}

/// Events: appended as JSON lines to a sink, and the last [`EVENT_TAIL`] kept in memory with
/// sequence numbers for `sigwall events`.
pub struct EventLog {
    sink: Option<Box<dyn Write + Send>>,
    tail: VecDeque<(u64, Value)>,
    next: u64,
}

/// Events kept in memory for `sigwall events`.
pub const EVENT_TAIL: usize = 10_000;

impl EventLog {
    /// `path` "-" is stdout; None keeps events in memory only.
    pub fn open(path: Option<&Path>) -> std::io::Result<EventLog> {
        let sink: Option<Box<dyn Write + Send>> = match path {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stdout())),
            Some(p) => {
                if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d)?;
                }
                Some(Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?))
            }
        };
        Ok(EventLog { sink, tail: VecDeque::new(), next: 1 })
    }

    pub fn push(&mut self, ev: Value) {
        if let Some(s) = self.sink.as_mut()
            && writeln!(s, "{ev}").and_then(|_| s.flush()).is_err()
        {
            log::error!("cannot write an event to the event log");
        }
        if self.tail.len() >= EVENT_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back((self.next, ev));
        self.next += 1;
    }

    /// Events with sequence numbers from `since` on (at most `limit`), and the next number.
    pub fn since(&self, since: u64, limit: usize) -> Value {
        let events: Vec<Value> = self
            .tail
            .iter()
            .filter(|(n, _)| *n >= since)
            .take(limit)
            .map(|(n, e)| {
                let mut e = e.clone();
                e["seq"] = json!(n);
                e
            })
            .collect();
        let next = events.last().and_then(|e| e["seq"].as_u64()).map_or(since.max(self.first()), |n| n + 1);
        json!({ "next": next, "events": events })
    }

    fn first(&self) -> u64 {
        self.tail.front().map_or(self.next, |(n, _)| *n)
    }
}

/// Events written out (event file, log line) per peer and rule and second, at most; the rest
/// are counted (`events_suppressed`), their actions still taken (review M7: a peer sending
/// attacks in a loop must not fill the disk).
pub const EVENTS_PER_PEER_RULE_PER_S: u32 = 10;
/// Events written out per second over all peers and rules.
pub const EVENTS_PER_S: u32 = 1000;

/// The output limits for events, one window per second.
#[derive(Debug, Default)]
pub struct OutputLimiter {
    second: u64,
    total: u32,
    per_key: HashMap<(String, String), u32>,
}

impl OutputLimiter {
    /// Whether an event of `peer` and `rule` at `now_ns` may be written out.
    pub fn allow(&mut self, now_ns: u64, peer: &str, rule: &str) -> bool {
        let second = now_ns / 1_000_000_000;
        if second != self.second {
            *self = OutputLimiter { second, ..OutputLimiter::default() };
        }
        let n = self.per_key.entry((peer.to_string(), rule.to_string())).or_default();
        if *n >= EVENTS_PER_PEER_RULE_PER_S || self.total >= EVENTS_PER_S {
            return false;
        }
        *n += 1;
        self.total += 1;
        true
    }
}

/// Largest pcap file of flagged packets: 1 GiB; past it records are counted, not written.
pub const PCAP_MAX_BYTES: u64 = 1 << 30;

/// A classic pcap file (Ethernet) of flagged packets, flushed per packet so Wireshark can read
/// it while sigwall runs. Bounded by [`PCAP_MAX_BYTES`].
pub struct PcapWriter {
    out: BufWriter<File>,
    written: u64,
    /// Records not written because the file reached its size bound.
    pub suppressed: u64,
}

impl PcapWriter {
    pub fn create(path: &Path) -> std::io::Result<PcapWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&pcap_header())?;
        out.flush()?;
        Ok(PcapWriter { out, written: 24, suppressed: 0 })
    }

    pub fn write(&mut self, wall_ns: u64, orig_len: u32, data: &[u8]) -> std::io::Result<()> {
        let n = 16 + data.len() as u64;
        if self.written + n > PCAP_MAX_BYTES {
            self.suppressed += 1;
            return Ok(());
        }
        self.written += n;
        self.out.write_all(&pcap_record_header(wall_ns, data.len() as u32, orig_len))?;
        self.out.write_all(data)?;
        self.out.flush()
    }
}

/// pcap global header: microsecond stamps, Ethernet, snap length 256 KiB.
pub fn pcap_header() -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b
}

pub fn pcap_record_header(wall_ns: u64, incl: u32, orig: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&((wall_ns / 1_000_000_000) as u32).to_le_bytes());
    h[4..8].copy_from_slice(&(((wall_ns % 1_000_000_000) / 1000) as u32).to_le_bytes());
    h[8..12].copy_from_slice(&incl.to_le_bytes());
    h[12..16].copy_from_slice(&orig.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review M7: a peer raising one rule in a loop gets at most its share written out per
    /// second; another peer or rule still gets its own; the next second starts afresh.
    #[test]
    fn event_output_is_bounded_per_peer_and_rule() {
        let mut l = OutputLimiter::default();
        let n = (0..100).filter(|_| l.allow(5_000_000_000, "p", "ss7-category1")).count();
        assert_eq!(n, EVENTS_PER_PEER_RULE_PER_S as usize);
        assert!(l.allow(5_000_000_001, "q", "ss7-category1"));
        assert!(l.allow(5_000_000_002, "p", "ss7-category2"));
        assert!(l.allow(6_000_000_000, "p", "ss7-category1"));
        let mut l = OutputLimiter::default();
        let total = (0..5000).filter(|i| l.allow(1, &format!("peer{i}"), "r")).count();
        assert_eq!(total, EVENTS_PER_S as usize);
    }
}
