//! Deep inspection in the daemon, on a task of its own: the ring reader copies flagged packets
//! out of the ring buffer and sends them over a channel; the inspector decodes and judges them
//! ([`Engine`]), pushes verdicts down into XDP ([`BlockWriter`]) and logs the events. Neither
//! waits for the control state: policy changes reach the inspector over a channel too, and
//! control requests and metrics read its events and counters through [`Inspection`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio::sync::mpsc;

use super::state::lock;
use crate::{
    inspect::{
        Counters, Engine, Flagged, RuleSet,
        io::{self, BlockWriter, EventLog, PcapWriter},
    },
    loader::Filter,
    policy::{Policy, inspect::PeerInspect},
};

/// Records taken from the ring per wake-up at most, so one burst cannot starve the rest.
const BATCH: usize = 4096;
/// The peers' per-CPU counters in the pinned `PEER_STATS`, read once a second for the copies of
/// passed packets XDP could not make (`copy_denied`): the daemon reports them per peer as
/// `inspection-overload` (review C6: overload is per peer, counted, and never silent).
type PeerStats = aya::maps::PerCpuArray<aya::maps::MapData, filter_common::PeerCounter>;

/// Batches waiting for the inspector: one. When it falls behind, the ring (8 MiB) fills and XDP
/// counts `inspect_overflow` instead of this process growing by copies of it (a batch is up to
/// BATCH records of about 2 KiB), and a policy change overtakes at most one queued batch.
const QUEUE: usize = 1;

type Ring = tokio::io::unix::AsyncFd<aya::maps::RingBuf<aya::maps::MapData>>;

/// What the inspector needs of the policy: the rules, and per peer id its name, inspection
/// settings and whether its effective mode is monitor (blocks become alerts).
pub struct PolicyView {
    rules: RuleSet,
    peers: HashMap<u32, (String, PeerInspect, bool)>,
    /// Peers with `on_overload = "fail-open"`, by id.
    fail_open: std::collections::HashSet<u32>,
}

impl PolicyView {
    pub fn new(policy: &Policy, filter: &Filter) -> PolicyView {
        let peers = policy
            .peers
            .iter()
            .filter_map(|p| {
                let monitor = p.mode.unwrap_or(policy.mode) == filter_common::Mode::Monitor;
                filter.peer_id(&p.name).map(|id| (id, (p.name.clone(), p.inspect.clone(), monitor)))
            })
            .collect();
        // The configured ports too: inspection classifies SCTP and TCP payloads by them.
        let rules = RuleSet::new(&policy.inspect).with_ports(&policy.ports);
        let fail_open =
            policy.peers.iter().filter(|p| p.overload_pass).filter_map(|p| filter.peer_id(&p.name)).collect();
        PolicyView { rules, peers, fail_open }
    }
}

/// Seconds between snapshots of the subscriber state (and one at exit, when the control
/// state's `Inspection` is dropped).
pub const SNAPSHOT_EVERY_S: u64 = 30;

impl Drop for Inspection {
    fn drop(&mut self) {
        lock(&self.shared.subscribers).save_snapshot();
    }
}

/// Events and counters, written by the inspector, read by control requests and metrics.
struct Shared {
    events: Mutex<EventLog>,
    counters: Mutex<Counters>,
    subscribers: Arc<Mutex<crate::subscriber::Subscribers>>,
    /// In-path mode: the AF_XDP workers' events, blocks and counters.
    inpath: Arc<crate::inpath::Sink>,
}

/// The control state's handle on inspection.
pub struct Inspection {
    policy: mpsc::UnboundedSender<PolicyView>,
    shared: Arc<Shared>,
    /// In-path mode: the AF_XDP workers (stopped when this drops).
    workers: Option<crate::inpath::Workers>,
}

impl Inspection {
    /// Follow a policy change: new rules, new peer table.
    pub fn follow(&self, view: PolicyView) {
        // Only fails once the inspector is gone, at shutdown.
        let _ = self.policy.send(view);
    }

    /// Follow a policy change, in the inspector and in the in-path workers.
    pub fn follow_policy(&self, policy: &Policy, filter: &Filter) {
        self.follow(PolicyView::new(policy, filter));
        if let Some(w) = &self.workers {
            w.follow(policy, filter);
        }
    }

    /// In-path mode: start the AF_XDP workers (one per RX queue of the interconnect side).
    pub fn start_inpath(
        &mut self,
        ports: &crate::inpath::Ports,
        xsks: &mut aya::maps::XskMap<aya::maps::MapData>,
        policy: &Policy,
        filter: &Filter,
    ) -> anyhow::Result<usize> {
        let w = crate::inpath::start(
            ports,
            xsks,
            policy,
            filter,
            self.shared.subscribers.clone(),
            self.shared.inpath.clone(),
        )?;
        let n = w.len();
        self.workers = Some(w);
        Ok(n)
    }

    /// In-path mode: the workers' own counters, summed (`None` in host mode).
    pub fn inpath_counters(&self) -> Option<crate::inpath::Counters> {
        self.workers.as_ref().map(|_| self.shared.inpath.totals().0)
    }

    /// Events from sequence number `since` on (at most `limit`), as `sigwall events` shows them.
    pub fn events(&self, since: u64, limit: usize) -> Value {
        lock(&self.shared.events).since(since, limit)
    }

    /// The ring inspector's counters plus the in-path workers' engines'.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// What the subscriber store knows of one IMSI (`sigwall subscriber`), with the store's
    /// counters.
    pub fn subscriber(&self, imsi: &str, mask: bool) -> Value {
        let mut s = lock(&self.shared.subscribers);
        let mut v = s.describe(imsi, mask);
        v["state"] = serde_json::to_value(s.stats()).unwrap_or_default();
        v
    }

    /// The in-path identity blocks (empty in host mode).
    pub fn identity_blocks(&self) -> Arc<crate::inspect::identity::Blocks> {
        self.shared.inpath.identities.clone()
    }

    pub fn state_stats(&self) -> crate::subscriber::StateStats {
        lock(&self.shared.subscribers).stats()
    }

    /// A reader of the same counters, for the metrics endpoint.
    pub fn counters_reader(&self) -> CountersReader {
        CountersReader(self.shared.clone())
    }
}

#[derive(Clone)]
pub struct CountersReader(Arc<Shared>);

impl CountersReader {
    /// The subscriber state's counters (store size, evictions, Redis).
    pub fn state(&self) -> crate::subscriber::StateStats {
        lock(&self.0.subscribers).stats()
    }

    pub fn get(&self) -> Counters {
        self.0.counters()
    }

    /// In-path mode: the workers' own counters, summed (all zero in host mode).
    pub fn inpath(&self) -> crate::inpath::Counters {
        self.0.inpath.totals().0
    }

    /// In-path mode: the identity blocks' counts (all zero in host mode).
    pub fn identity_blocks(&self) -> crate::inspect::identity::BlockCounts {
        self.0.inpath.identities.counts(crate::inspect::io::monotonic_ns())
    }
}

impl Shared {
    fn counters(&self) -> Counters {
        let mut c = lock(&self.counters).clone();
        c.add(&self.inpath.totals().1);
        c
    }
}

/// Start the ring reader and the inspector on the current runtime.
pub fn start(
    ring: Ring,
    blocks: BlockWriter,
    view: PolicyView,
    events: EventLog,
    pcap: Option<PcapWriter>,
    subscribers: Arc<Mutex<crate::subscriber::Subscribers>>,
    peer_stats: Option<PeerStats>,
) -> Inspection {
    let (block_tx, block_rx) = mpsc::unbounded_channel();
    let shared = Arc::new_cyclic(|me: &std::sync::Weak<Shared>| {
        let me = me.clone();
        let inpath = crate::inpath::Sink {
            events: Box::new(move |evs: Vec<Value>| {
                let Some(sh) = me.upgrade() else { return };
                let mut log = lock(&sh.events);
                for ev in evs {
                    log::warn!("event: {ev}");
                    log.push(ev);
                }
            }),
            blocks: Box::new(move |a| {
                // Only fails once the inspector is gone, at shutdown.
                let _ = block_tx.send(a);
            }),
            counters: Mutex::default(),
            identities: Arc::default(),
        };
        Shared {
            events: Mutex::new(events),
            counters: Mutex::default(),
            subscribers: subscribers.clone(),
            inpath: Arc::new(inpath),
        }
    });
    let (batch_tx, batch_rx) = mpsc::channel(QUEUE);
    let (policy_tx, policy_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_ring(ring, batch_tx));
    let inspector = Inspector {
        engine: Engine::with_state(view.rules, subscribers),
        peers: view.peers,
        blocks,
        pcap,
        shared: shared.clone(),
        fail_open: view.fail_open,
        peer_stats,
        denied_seen: HashMap::new(),
        looked: false,
        output: io::OutputLimiter::default(),
    };
    tokio::spawn(inspector.run(batch_rx, policy_rx, block_rx));
    Inspection { policy: policy_tx, shared, workers: None }
}

/// How often the ring is drained without a wake-up: XDP submits records without waking the
/// reader until `filter_common::INSPECT_WAKEUP_BYTES` are pending (a wake-up per record cost
/// more than the copy), so a lone record waits at most this long.
const RING_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Copy records out of the ring buffer in batches and hand them on: when XDP wakes the reader
/// (a backlog) and every [`RING_POLL`] (records submitted without a wake-up).
async fn read_ring(mut ring: Ring, tx: mpsc::Sender<Vec<Vec<u8>>>) {
    let mut tick = tokio::time::interval(RING_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            ready = ring.readable_mut() => {
                let Ok(mut guard) = ready else { continue };
                while let Some(item) = guard.get_inner_mut().next() {
                    batch.push(item.to_vec());
                    if batch.len() >= BATCH {
                        break;
                    }
                }
                if batch.len() < BATCH {
                    guard.clear_ready();
                }
            }
            _ = tick.tick() => {
                while let Some(item) = ring.get_mut().next() {
                    batch.push(item.to_vec());
                    if batch.len() >= BATCH {
                        break;
                    }
                }
            }
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return;
        }
    }
}

struct Inspector {
    engine: Engine,
    peers: HashMap<u32, PeerView>,
    blocks: BlockWriter,
    pcap: Option<PcapWriter>,
    shared: Arc<Shared>,
    fail_open: std::collections::HashSet<u32>,
    peer_stats: Option<PeerStats>,
    /// Each peer id's `copy_denied` (summed over CPUs) at the last look, and whether there was one.
    denied_seen: HashMap<u32, u64>,
    looked: bool,
    output: io::OutputLimiter,
}

impl Inspector {
    async fn run(
        mut self,
        mut batches: mpsc::Receiver<Vec<Vec<u8>>>,
        mut policy: mpsc::UnboundedReceiver<PolicyView>,
        mut inpath_blocks: mpsc::UnboundedReceiver<crate::inspect::Action>,
    ) {
        let mut janitor = tokio::time::interval(Duration::from_secs(1));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                // A policy change is taken as soon as it is made, also before records flagged
                // under the previous generation that are still queued (at most one batch) or in
                // the ring: those are judged with the new rules and peer table. Records carry no
                // generation yet; the in-path work will add it.
                biased;
                Some(view) = policy.recv() => {
                    self.engine.rules = view.rules;
                    self.peers = view.peers;
                    self.fail_open = view.fail_open;
                }
                // Blocks asked for by the in-path workers' findings (block-peer; SCTP and TCP
                // findings until they are neutralized in place).
                Some(a) = inpath_blocks.recv() => {
                    if let Err(e) = self.blocks.apply(&a) {
                        log::error!("pushing a verdict down to XDP: {e}");
                    }
                }
                batch = batches.recv() => {
                    let Some(batch) = batch else { return };
                    // Decoding is CPU work; keep it off the async workers' critical path.
                    tokio::task::block_in_place(|| self.batch(&batch));
                }
                _ = janitor.tick() => {
                    if let Err(e) = self.blocks.expire() {
                        log::error!("expiring blocks: {e}");
                    }
                    self.report_overload();
                    ticks += 1;
                    if ticks.is_multiple_of(SNAPSHOT_EVERY_S) {
                        tokio::task::block_in_place(|| lock(&self.shared.subscribers).save_snapshot());
                    }
                }
            }
        }
    }

    /// Decode and judge a batch of flagged packets, carry out the actions, log the events.
    fn batch(&mut self, batch: &[Vec<u8>]) {
        let wall =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        let mut logged = Vec::new();
        for rec in batch {
            let (h, data, (name, peer, monitor)) = match record_and_peer(&self.peers, rec) {
                Ok(x) => x,
                Err(kind) => {
                    self.engine.counters.unjudged(kind);
                    continue;
                }
            };
            if let Some(p) = self.pcap.as_mut()
                && let Err(e) = p.write(wall, h.len, data)
            {
                log::error!("writing the pcap of flagged packets: {e}");
            }
            let f = Flagged {
                ts_ns: h.ts_ns,
                peer: name.clone(),
                peer_id: h.peer_id,
                class: io::class_of(h.class),
                reason: io::reason_name(h.reason),
                dropped: h.action != 0,
                data,
            };
            let events = self.engine.inspect(&f, peer, *monitor);
            for ev in events {
                if let Err(e) = self.blocks.apply(&ev.action) {
                    log::error!("pushing a verdict down to XDP: {e}");
                }
                let rule = ev.json["rule"].as_str().unwrap_or("");
                if !self.output.allow(h.ts_ns, name, rule) {
                    self.engine.counters.events_suppressed += 1;
                    continue;
                }
                log::warn!("event: {}", ev.json);
                logged.push(ev.json);
            }
        }
        if !logged.is_empty() {
            let mut events = lock(&self.shared.events);
            for ev in logged {
                events.push(ev);
            }
        }
        *lock(&self.shared.counters) = self.engine.counters.clone();
    }

    /// Report, per peer, the copies of its passed packets XDP could not make since the last
    /// look: one `inspection-overload` event per peer whose `copy_denied` grew.
    fn report_overload(&mut self) {
        let Some(stats) = &self.peer_stats else { return };
        let now = io::monotonic_ns();
        let mut logged = Vec::new();
        for (id, (name, _, monitor)) in &self.peers {
            let Ok(per_cpu) = stats.get(id, 0) else { continue };
            let denied: u64 = per_cpu.iter().map(|c| c.copy_denied).sum();
            // The daemon's first look sets where the counters stand (a restarted daemon does not
            // report the past); a peer added later starts from zero (a new peer's counters are
            // zeroed by its policy load).
            let Some(seen) = self.denied_seen.insert(*id, denied).or(self.looked.then_some(0)) else { continue };
            // Below the last look: the slot was reused or reset by a policy load.
            let grew = denied.saturating_sub(seen);
            if grew == 0 {
                continue;
            }
            let ev = self.engine.overload(name, grew, self.fail_open.contains(id), *monitor, now);
            if !self.output.allow(now, name, "inspection-overload") {
                self.engine.counters.events_suppressed += 1;
                continue;
            }
            log::warn!("event: {ev}");
            logged.push(ev);
        }
        self.looked = true;
        if !logged.is_empty() {
            let mut events = lock(&self.shared.events);
            for ev in logged {
                events.push(ev);
            }
            *lock(&self.shared.counters) = self.engine.counters.clone();
        }
    }
}

type PeerView = (String, PeerInspect, bool);

/// A ring record's header, its bytes and the policy's view of its peer, or the counter kind of
/// why it cannot be judged: a record shorter than its header (`inspect.record`), a frame longer
/// than the snap length or whose copy is shorter than the frame (`inspect.truncated`), or a peer id
/// the current policy does not have (`inspect.unknown_peer`: flagged under a generation that has
/// since removed the peer, whose rules are gone with it).
fn record_and_peer<'p, 'r>(
    peers: &'p HashMap<u32, PeerView>,
    rec: &'r [u8],
) -> Result<(filter_common::InspectHeader, &'r [u8], &'p PeerView), &'static str> {
    let (h, data) = io::split_record(rec).ok_or("inspect.record")?;
    // A frame cut to the snap length is not judged as if it were whole: decoding the start of a
    // longer message would be a different message (review M4).
    if h.flags & filter_common::INSPECT_FLAG_TRUNCATED != 0 || (h.cap_len as usize) < h.len as usize {
        return Err("inspect.truncated");
    }
    let peer = peers.get(&h.peer_id).ok_or("inspect.unknown_peer")?;
    Ok((h, data, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(peer_id: u32, payload: &[u8]) -> Vec<u8> {
        let n = payload.len() as u32;
        let h = filter_common::InspectHeader { peer_id, len: n, cap_len: n, ..Default::default() };
        // SAFETY: InspectHeader is #[repr(C)] plain data; its bytes are read, not interpreted.
        let bytes = unsafe {
            std::slice::from_raw_parts(&h as *const _ as *const u8, std::mem::size_of::<filter_common::InspectHeader>())
        };
        [bytes, payload].concat()
    }

    /// Nothing XDP copied up is dropped without a counter: a truncated record and a record of a
    /// peer the policy no longer has are each named, and a known peer's record is judged.
    #[test]
    fn records_that_cannot_be_judged_are_named() {
        let mut peers = HashMap::new();
        peers.insert(3, ("partner".to_string(), PeerInspect::default(), false));
        let known = record(3, b"frame");
        let (h, data, peer) = record_and_peer(&peers, &known).unwrap();
        assert_eq!((h.peer_id, data, peer.0.as_str()), (3, &b"frame"[..], "partner"));
        assert_eq!(record_and_peer(&peers, &record(4, b"frame")).unwrap_err(), "inspect.unknown_peer");
        assert_eq!(record_and_peer(&peers, &known[..10]).unwrap_err(), "inspect.record");
        // Cut to the snap length: named, not judged as a whole frame.
        let mut cut = record(3, b"frame");
        cut[16..20].copy_from_slice(&20000u32.to_ne_bytes()); // InspectHeader::len
        assert_eq!(record_and_peer(&peers, &cut).unwrap_err(), "inspect.truncated");

        let mut c = Counters::default();
        c.unjudged("inspect.unknown_peer");
        c.unjudged("inspect.unknown_peer");
        assert_eq!(c.to_json()["decode_errors"]["inspect.unknown_peer"], 2);
    }
}
