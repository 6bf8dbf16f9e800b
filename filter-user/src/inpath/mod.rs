//! In-path deep inspection (issue 9): XDP redirects the signaling of peers inspected whole and
//! enforced to an AF_XDP socket per RX queue of the interconnect side (`INPATH_XSKS`); a worker
//! thread per queue decodes and judges each frame with the inspection engine and only then
//! sends it out of the core side, byte for byte unchanged, or drops it.
//!
//! What a blocked message becomes: a GTP datagram (UDP) is dropped; a MAP operation or a
//! Diameter request on SCTP or TCP is neutralized in place ([`neutralize`]: same length, the
//! receiver rejects it and executes nothing, the association stays up), since SCTP and TCP
//! cannot lose a segment without the sender retransmitting it until the association fails
//! (docs/design/in-path.md section 3). The flow is not blocked (the message is stopped; the
//! next one is judged on its own), while `block-peer` still quarantines the peer; the rule's
//! `block` also blocks the identity that sent the message ([`inspect::identity`]). An SCTP
//! message split over several chunks is held until its last piece, judged whole and
//! neutralized in whichever piece carries the code ([`hold`]); so is a Diameter message split
//! over TCP segments (the segments carrying bytes no judged message covers yet wait, at most
//! [`hold::HOLD_FOR`]). A SIGTRAN message in which no local operation code can be reached (a
//! global code, an SCCP segment, one that does not decode) gets an unsupported M3UA or SUA
//! message type instead, which the receiver discards with an ERR. A message the neutralizer
//! still cannot reach (a piece with its code already went on) is not completed: the frame that
//! completes it is dropped and the rule's block pushed down as in copy mode (containment), the
//! event saying so. A retransmission of a neutralized DATA chunk (same TSN)
//! or TCP segment (same sequence number) gets the same rewrite.
//!
//! A message-level verdict does not need the packet to be proven the association's, unlike a
//! pushed-down block (review H7): stopping one message cannot take anyone's association down.
//!
//! Nothing that came up is forwarded uninspected without a counter: a frame without the
//! metadata XDP writes, with a descriptor outside the UMEM, of a peer the current policy does
//! not know, an IP fragment (not reassembled in path yet) or a frame that does not parse goes
//! by the peer's `on_overload` (fail-closed: dropped; fail-open: forwarded), each counted in
//! [`Counters`].

pub mod hold;
pub mod neutralize;
pub mod sched;
pub mod xsk;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use serde::Serialize;
use serde_json::Value;

use filter_common::FlowKey;

use crate::{
    inspect::{self, Action, Engine, Flagged, RuleSet, io, rules::RuleId},
    loader::Filter,
    policy::{Policy, inspect::PeerInspect},
};

/// Frames (and so ring entries) per worker: 8 MiB of UMEM each.
pub const FRAMES: u32 = 2048;
/// Frames taken from the RX ring per batch.
const BATCH: usize = 64;
/// How often a busy worker publishes its counters.
const PUBLISH_MS: u128 = 100;
/// How long a worker sleeps in poll(2) without traffic before it looks at its stop flag and
/// its completions again.
const POLL_MS: i32 = 50;

/// What a worker needs of the policy.
pub struct View {
    rules: RuleSet,
    /// Peer id -> name and inspection settings.
    peers: HashMap<u32, (String, PeerInspect)>,
    fail_open: HashSet<u32>,
}

impl View {
    pub fn new(policy: &Policy, filter: &Filter) -> View {
        let peers = policy
            .peers
            .iter()
            .filter_map(|p| filter.peer_id(&p.name).map(|id| (id, (p.name.clone(), p.inspect.clone()))))
            .collect();
        let fail_open =
            policy.peers.iter().filter(|p| p.overload_pass).filter_map(|p| filter.peer_id(&p.name)).collect();
        View { rules: RuleSet::new(&policy.inspect).with_ports(&policy.ports), peers, fail_open }
    }
}

/// A worker's counters (summed over workers when read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Frames taken from the RX rings.
    pub received: u64,
    /// Judged and sent out of the core side unchanged.
    pub forwarded: u64,
    /// Judged and dropped: a rule blocked the message (GTP over UDP).
    pub dropped: u64,
    /// Judged, blocked and neutralized in place (SCTP, TCP), then forwarded.
    pub neutralized: u64,
    /// Retransmissions of neutralized chunks or segments given the same rewrite.
    pub retransmissions_neutralized: u64,
    /// Blocked SCTP/TCP messages the neutralizer could not reach (say an earlier piece already
    /// went on): the frame that completed them is dropped, so the receiver never has the whole
    /// message, and their block is pushed down (containment: the flow's later packets, its
    /// retransmissions among them, are dropped in XDP).
    pub blocked_dropped: u64,
    /// Not judged (see the module doc) and forwarded: the peer fails open.
    pub uninspected_forwarded: u64,
    /// Not judged and dropped: the peer fails closed (or is unknown).
    pub uninspected_dropped: u64,
    /// Of the unjudged: no metadata, bad descriptor, unknown peer, IP fragment, unparsable.
    pub no_meta: u64,
    pub bad_descriptor: u64,
    pub unknown_peer: u64,
    pub fragment: u64,
    pub unparsable: u64,
    /// SCTP user messages split over several chunks, held until complete and judged whole
    /// ([`hold`]).
    pub held_messages: u64,
    /// Diameter-over-TCP segments held until the messages they carry bytes of were judged.
    pub held_segments: u64,
    /// Held frames of messages that went over a holding bound (pieces, messages, segments or
    /// frames held), gone as their peer's `on_overload` says: dropped / forwarded.
    pub hold_failed_dropped: u64,
    pub hold_failed_forwarded: u64,
    /// Messages (SCTP) and connections (TCP) over a holding bound.
    pub hold_overflow: u64,
    /// Held frames of messages whose rest did not come within `hold::HOLD_FOR`, sent on
    /// unjudged: a sender retransmits only the unacknowledged head, so holding it longer would
    /// stall the association for good. The message is still judged when whole; if a rule stops
    /// it then, the frame completing it is dropped and its flow blocked ([`Counters::blocked_dropped`]).
    pub hold_expired_forwarded: u64,
    /// Frames repeating a piece still held (a retransmission), dropped so the receiver gets the
    /// piece only with its rewrite.
    pub hold_duplicates_dropped: u64,
    /// Pieces whose message began before anything was held (e.g. across a daemon restart):
    /// forwarded as they are.
    pub hold_orphans: u64,
    /// Retransmissions of pieces already delivered, forwarded with the rewrite they had.
    pub hold_retransmissions: u64,
    /// Frames dropped because the core side's TX ring was full.
    pub tx_ring_full: u64,
    /// Frames the fill ring had no room for (an invariant broken; lost to the UMEM).
    pub fill_overflow: u64,
    /// The kernel's counters of the RX sockets (`XDP_STATISTICS`): frames XDP redirected that
    /// never reached the RX ring (ring full, no fill entry).
    pub kernel_rx_dropped: u64,
    pub kernel_rx_ring_full: u64,
    pub kernel_fill_empty: u64,
    pub kernel_tx_invalid: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.received += o.received;
        self.forwarded += o.forwarded;
        self.dropped += o.dropped;
        self.blocked_dropped += o.blocked_dropped;
        self.neutralized += o.neutralized;
        self.retransmissions_neutralized += o.retransmissions_neutralized;
        self.uninspected_forwarded += o.uninspected_forwarded;
        self.uninspected_dropped += o.uninspected_dropped;
        self.no_meta += o.no_meta;
        self.bad_descriptor += o.bad_descriptor;
        self.unknown_peer += o.unknown_peer;
        self.fragment += o.fragment;
        self.unparsable += o.unparsable;
        self.held_messages += o.held_messages;
        self.held_segments += o.held_segments;
        self.hold_failed_dropped += o.hold_failed_dropped;
        self.hold_failed_forwarded += o.hold_failed_forwarded;
        self.hold_overflow += o.hold_overflow;
        self.hold_expired_forwarded += o.hold_expired_forwarded;
        self.hold_duplicates_dropped += o.hold_duplicates_dropped;
        self.hold_orphans += o.hold_orphans;
        self.hold_retransmissions += o.hold_retransmissions;
        self.tx_ring_full += o.tx_ring_full;
        self.fill_overflow += o.fill_overflow;
        self.kernel_rx_dropped += o.kernel_rx_dropped;
        self.kernel_rx_ring_full += o.kernel_rx_ring_full;
        self.kernel_fill_empty += o.kernel_fill_empty;
        self.kernel_tx_invalid += o.kernel_tx_invalid;
    }
}

/// What the workers share with the daemon: events out, counters, blocks for the inspector.
pub struct Sink {
    /// Events (JSON) to log and keep for `sigwall events`.
    pub events: Box<dyn Fn(Vec<Value>) + Send + Sync>,
    /// Block actions (block-peer; SCTP/TCP blocks) for the inspector's block writer.
    pub blocks: Box<dyn Fn(Action) + Send + Sync>,
    /// Per worker: its counters and its engine's.
    pub counters: Mutex<Vec<(Counters, inspect::Counters)>>,
    /// The identity blocks every worker's engine checks and installs (issue 9 item 4).
    pub identities: Arc<inspect::identity::Blocks>,
}

impl Sink {
    /// The workers' counters, summed.
    pub fn totals(&self) -> (Counters, inspect::Counters) {
        let mut c = Counters::default();
        let mut e = inspect::Counters::default();
        for (w, en) in crate::daemon::state::lock(&self.counters).iter() {
            c.add(w);
            e.add(en);
        }
        (c, e)
    }
}

/// The running workers; dropping them stops and joins the threads (closing their sockets, which
/// empties their `INPATH_XSKS` slots: XDP then applies each peer's `on_overload`).
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    views: Vec<mpsc::Sender<View>>,
}

impl Workers {
    /// Follow a policy change.
    pub fn follow(&self, policy: &Policy, filter: &Filter) {
        for v in &self.views {
            let _ = v.send(View::new(policy, filter));
        }
    }

    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// RX queues of `ifname` (ETHTOOL_GCHANNELS: the larger of rx and combined), and TX queues.
pub fn queues(ifname: &str) -> std::io::Result<(u32, u32)> {
    #[repr(C)]
    #[derive(Default)]
    struct Channels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx: u32,
        tx: u32,
        other: u32,
        combined: u32,
    }
    #[repr(C)]
    struct Ifreq {
        name: [u8; 16],
        data: *mut Channels,
        _pad: [u8; 16],
    }
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let mut ch = Channels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    let mut req = Ifreq { name: [0; 16], data: &mut ch, _pad: [0; 16] };
    let n = ifname.len().min(15);
    req.name[..n].copy_from_slice(&ifname.as_bytes()[..n]);
    // SAFETY: plain socket(2), closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCETHTOOL with an ifreq whose data points at a live ethtool_channels.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL, &mut req as *mut Ifreq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    if rc != 0 {
        // A driver without channels: one queue.
        return if err.raw_os_error() == Some(libc::EOPNOTSUPP) { Ok((1, 1)) } else { Err(err) };
    }
    Ok((ch.rx.max(ch.combined).max(1), ch.tx.max(ch.combined).max(1)))
}

/// Each in-path peer's budget of frames in flight per queue: the RX ring shared among the peers
/// that go up (inspected whole, effective mode enforce), 64 kept free, at least 64 each.
pub fn budget(policy: &Policy) -> u32 {
    use crate::policy::inspect::Sampling;
    let up = policy
        .peers
        .iter()
        .filter(|p| {
            p.mode.unwrap_or(policy.mode) == filter_common::Mode::Enforce
                && (p.inspect.sampling == Sampling::All || p.inspect.sampling_gtpu == Sampling::All)
        })
        .count() as u32;
    ((FRAMES - 64) / up.max(1)).max(64)
}

/// A worker's side of the credit (see `credit` in filter-ebpf): `INPATH_DONE[queue][peer]`,
/// which only this worker writes.
struct Credit {
    done: aya::maps::Array<aya::maps::MapData, u64>,
    /// This worker's count per peer id (what it last wrote to `done`).
    taken: HashMap<u32, u64>,
    /// Frames taken in the current batch, per peer id.
    batch: HashMap<u32, u64>,
    base: u32,
}

impl Credit {
    /// Start from what XDP has sent on queue `q` (frames in the rings of a previous daemon are
    /// lost with it): in flight = 0. Done before the socket goes into its slot, so nothing is
    /// counted meanwhile.
    fn open(filter: &Filter, q: u32) -> anyhow::Result<Credit> {
        use anyhow::Context as _;
        let sent: aya::maps::Array<aya::maps::MapData, u64> =
            aya::maps::Array::try_from(filter.map_handle(filter_common::maps::INPATH_SENT)?).context("INPATH_SENT")?;
        let mut done: aya::maps::Array<aya::maps::MapData, u64> =
            aya::maps::Array::try_from(filter.map_handle(filter_common::maps::INPATH_DONE)?).context("INPATH_DONE")?;
        let base = q * filter_common::MAX_PEERS;
        let mut taken = HashMap::new();
        for peer in 0..filter_common::MAX_PEERS {
            let s = sent.get(&(base + peer), 0).unwrap_or(0);
            if s != 0 || done.get(&(base + peer), 0).unwrap_or(0) != 0 {
                done.set(base + peer, s, 0).context("resetting INPATH_DONE")?;
                taken.insert(peer, s);
            }
        }
        Ok(Credit { done, taken, batch: HashMap::new(), base })
    }

    fn took(&mut self, peer: u32) {
        *self.batch.entry(peer).or_default() += 1;
    }

    /// Give the batch's credit back to XDP: one map write per peer seen.
    fn give_back(&mut self) {
        for (peer, n) in self.batch.drain() {
            let t = self.taken.entry(peer).or_default();
            *t += n;
            if peer < filter_common::MAX_PEERS {
                let _ = self.done.set(self.base + peer, *t, 0);
            }
        }
    }
}

/// The interconnect and core sides, for the workers.
pub struct Ports {
    pub iface: String,
    pub ifindex: u32,
    pub core: String,
    pub core_ifindex: u32,
    /// The time slice each worker asks for (µs, 0: the kernel's default): [`sched`].
    pub worker_slice_us: u64,
    /// SCHED_FIFO priority for the workers (`None`: fair tasks with `worker_slice_us`).
    pub worker_priority: Option<u8>,
    /// How long a worker spins for frames before it sleeps in poll(2) (µs, at most
    /// [`MAX_BUSY_POLL_US`]; 0: it sleeps at once).
    pub worker_busy_poll_us: u64,
}

/// The longest `--worker-busy-poll-us`: 10 ms, a few scheduler ticks.
pub const MAX_BUSY_POLL_US: u64 = 10_000;

/// Open one socket pair per RX queue of the interconnect side, put each in its `INPATH_XSKS`
/// slot and start its worker. `subscribers` is the daemon's subscriber state.
pub fn start(
    ports: &Ports,
    xsks: &mut aya::maps::XskMap<aya::maps::MapData>,
    policy: &Policy,
    filter: &Filter,
    subscribers: Arc<Mutex<crate::subscriber::Subscribers>>,
    sink: Arc<Sink>,
) -> anyhow::Result<Workers> {
    use anyhow::Context as _;
    let (rx, _) = queues(&ports.iface).with_context(|| format!("reading the queues of {}", ports.iface))?;
    let (_, core_tx) = queues(&ports.core).with_context(|| format!("reading the queues of {}", ports.core))?;
    let n = rx.min(filter_common::INPATH_MAX_QUEUES);
    if core_tx < n {
        anyhow::bail!(
            "--forward-to {}: {core_tx} TX queues, fewer than the {n} RX queues of {}: in-path inspection sends each queue's frames out of the same queue number (give {} at least {n} queues, e.g. ethtool -L)",
            ports.core,
            ports.iface,
            ports.core
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Workers { stop: stop.clone(), threads: Vec::new(), views: Vec::new() };
    *crate::daemon::state::lock(&sink.counters) = vec![Default::default(); n as usize];
    for q in 0..n {
        let pair = xsk::Pair::open(ports.ifindex, ports.core_ifindex, q, FRAMES).with_context(|| {
            format!(
                "opening the AF_XDP sockets of queue {q} ({} -> {}; kernel 5.10 for a UMEM shared between devices)",
                ports.iface, ports.core
            )
        })?;
        let credit = Credit::open(filter, q)?;
        let (tx, rx) = mpsc::channel();
        let View { rules, peers, fail_open } = View::new(policy, filter);
        let w = Worker {
            q: q as usize,
            realtime: false,
            busy_poll: std::time::Duration::ZERO,
            pair,
            engine: {
                let mut e = Engine::with_state(rules, subscribers.clone());
                e.identities = Some(sink.identities.clone());
                e
            },
            peers,
            fail_open,
            credit,
            rewritten: HashMap::new(),
            rewritten_order: std::collections::VecDeque::new(),
            holds: hold::Holds::default(),
            tcp_holds: HashMap::new(),
            tcp_rewritten: HashMap::new(),
            tcp_rewritten_order: std::collections::VecDeque::new(),
            held: HashMap::new(),
            released: Vec::new(),
            delivered: HashMap::new(),
            delivered_order: std::collections::VecDeque::new(),
            views: rx,
            sink: sink.clone(),
            counters: Counters::default(),
            output: io::OutputLimiter::default(),
            stop: stop.clone(),
        };
        // The slot last: until now XDP found it empty and applied the peers' on_overload.
        use std::os::fd::AsRawFd as _;
        xsks.set(q, w.pair.a.as_raw_fd(), 0).with_context(|| format!("putting queue {q}'s socket in INPATH_XSKS"))?;
        let (slice, priority) = (ports.worker_slice_us, ports.worker_priority);
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let mut w = w;
        w.realtime = priority.is_some();
        w.busy_poll = std::time::Duration::from_micros(ports.worker_busy_poll_us.min(MAX_BUSY_POLL_US));
        let t = std::thread::Builder::new().name(format!("sigwall-inpath-{q}")).spawn(move || {
            if let Some(p) = priority {
                // Asked for explicitly: a refusal stops the start (below), not a silent default.
                let r = sched::set_fifo(p.into()).map_err(|e| e.to_string());
                let refused = r.is_err();
                let _ = started_tx.send(r);
                if refused {
                    return;
                }
            } else {
                // The slice before the start is reported: once the daemon says it is ready,
                // its workers run as configured (a test read the default slice otherwise).
                if slice > 0 {
                    match sched::set_slice(slice) {
                        Ok(()) => log::info!(
                            "in-path worker {q}: time slice {slice} us asked, the kernel reports {}",
                            sched::slice_us().map_or("nothing".into(), |s| format!("{s} us"))
                        ),
                        // Latency only: the worker judges the same with the kernel's slice.
                        Err(e) => log::warn!(
                            "in-path worker {q}: the kernel refused a {slice} us time slice ({e}); the default slice applies, so on a shared core frames may wait a few ms for the worker"
                        ),
                    }
                }
                let _ = started_tx.send(Ok(()));
            }
            w.run()
        })?;
        workers.threads.push(t);
        workers.views.push(tx);
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!(
                "--worker-priority {}: the kernel refused SCHED_FIFO for in-path worker {q} ({e}); it needs CAP_SYS_NICE or an RLIMIT_RTPRIO that high",
                priority.unwrap_or(0)
            ),
            Err(_) => anyhow::bail!("in-path worker {q} ended before it started"),
        }
        if let Some(p) = priority {
            log::info!("in-path worker {q}: real-time, SCHED_FIFO priority {p}");
        }
    }
    Ok(workers)
}

struct Worker {
    q: usize,
    /// SCHED_FIFO (`--worker-priority`): never yield the core to wait for the TX ring, sleep.
    realtime: bool,
    /// `--worker-busy-poll-us`: how long to spin for frames before sleeping in poll(2).
    busy_poll: std::time::Duration,
    pair: xsk::Pair,
    engine: Engine,
    peers: HashMap<u32, (String, PeerInspect)>,
    fail_open: HashSet<u32>,
    credit: Credit,
    /// Neutralized chunks (by TSN) and segments (by sequence number), per flow, with what was
    /// neutralized in them: their retransmissions get the same rewrite. At most
    /// [`REWRITTEN_MAX`] entries, the oldest forgotten first.
    rewritten: HashMap<FlowKey, HashMap<u32, Targets>>,
    rewritten_order: std::collections::VecDeque<(FlowKey, u32)>,
    /// SCTP messages split over chunks, held until whole ([`hold`]), and the held frames with
    /// how they will be counted when sent.
    holds: hold::Holds,
    /// Diameter over TCP: per direction, the segments held because they carry bytes no judged
    /// message covers yet (an incomplete message, or beyond a gap).
    tcp_holds: HashMap<FlowKey, TcpHold>,
    /// Diameter over TCP: per direction, the bytes rewritten (sequence number, new byte), for
    /// retransmissions; at most [`REWRITTEN_MAX`] per direction and `REWRITTEN_MAX / 16`
    /// directions, the oldest forgotten first.
    tcp_rewritten: HashMap<FlowKey, Vec<(u32, u8)>>,
    tcp_rewritten_order: std::collections::VecDeque<FlowKey>,
    held: HashMap<u64, (libc::xdp_desc, Sent)>,
    /// Held frames whose messages are complete or failed: sent (`Some`) or dropped (`None`) by
    /// the run loop, before the frame being judged.
    released: Vec<(libc::xdp_desc, Option<Sent>)>,
    /// Pieces of held messages already delivered, with the bytes rewritten in their user data
    /// (offset into it, byte): a retransmission gets the same ones and is not held again. At
    /// most [`REWRITTEN_MAX`], the oldest forgotten first.
    delivered: HashMap<(FlowKey, u32), Vec<(usize, u8)>>,
    delivered_order: std::collections::VecDeque<(FlowKey, u32)>,
    views: mpsc::Receiver<View>,
    sink: Arc<Sink>,
    counters: Counters,
    output: io::OutputLimiter,
    stop: Arc<AtomicBool>,
}

/// Neutralized chunks and segments remembered per worker (the memo's window of 4096 TSNs).
const REWRITTEN_MAX: usize = 4096;

/// Held TCP segments of one direction: `from` is where the bytes no judged message covers
/// begin (the engine's [`Engine::tcp_unjudged_from`]); a segment ending at or before it may go.
#[derive(Debug, Default)]
struct TcpHold {
    from: u32,
    /// (frame address, sequence number, payload length, payload offset in the frame).
    segs: Vec<(u64, u32, u32, usize)>,
    since: Option<std::time::Instant>,
    peer_id: u32,
}

/// Connections with held segments per worker, and segments held per connection.
const MAX_TCP_HOLDS: usize = 256;
const MAX_TCP_HELD_SEGMENTS: usize = 64;

/// `a` is after `b` in sequence space.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// What holding made of a TCP segment before it was judged.
struct TcpAdmit {
    seq: u32,
    payload: std::ops::Range<usize>,
    /// Where the unjudged bytes began before this segment (`None`: nothing was held).
    from: Option<u32>,
    /// Overlaps a held segment: a retransmission of bytes not yet delivered.
    duplicate: bool,
    /// A retransmission of a delivered segment that had bytes rewritten: given them again.
    rewritten_again: bool,
}

/// What to neutralize in a message: these MAP operation codes and Diameter commands (`None`:
/// every Invoke, every request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Targets {
    ops: Option<HashSet<i64>>,
    cmds: Option<HashSet<u32>>,
}

impl Targets {
    /// From the findings that stop a message: the operation codes and command codes they name;
    /// a finding that names none (a binding or spoofing rule judges the whole message, a
    /// transport or decoding anomaly the whole frame) selects every Invoke or request of the
    /// frame's class.
    fn of(stops: &[&Value], class: filter_common::Class) -> Targets {
        let mut t = Targets { ops: Some(HashSet::new()), cmds: Some(HashSet::new()) };
        for e in stops {
            let f = &e["fields"];
            match (e["protocol"].as_str(), f["map_op"].as_i64(), f["command_code"].as_u64()) {
                (_, Some(op), _) => {
                    if let Some(o) = &mut t.ops {
                        o.insert(op);
                    }
                }
                (_, _, Some(c)) => {
                    if let Some(s) = &mut t.cmds {
                        s.insert(c as u32);
                    }
                }
                (Some("sigtran"), _, _) => t.ops = None,
                (Some("diameter"), _, _) => t.cmds = None,
                _ if class == filter_common::Class::Sigtran => t.ops = None,
                _ if class == filter_common::Class::Diameter => t.cmds = None,
                _ => {}
            }
        }
        t
    }

    fn merge(&mut self, o: &Targets) {
        match (&mut self.ops, &o.ops) {
            (Some(a), Some(b)) => a.extend(b),
            (a, _) => *a = None,
        }
        match (&mut self.cmds, &o.cmds) {
            (Some(a), Some(b)) => a.extend(b),
            (a, _) => *a = None,
        }
    }

    fn op(&self, op: i64) -> bool {
        self.ops.as_ref().is_none_or(|s| s.contains(&op))
    }

    fn cmd(&self, c: u32) -> bool {
        self.cmds.as_ref().is_none_or(|s| s.contains(&c))
    }
}

/// A finding that stops its message: its rule blocks, in enforce mode. Whether the packet was
/// proven the association's only decides whether a block is pushed down (`Event::action`).
/// An address of a [`FlowKey`] (IPv4 mapped into IPv6) as events write it.
fn ip_of(a: &[u8; 16]) -> String {
    let v6 = std::net::Ipv6Addr::from(*a);
    v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string())
}

fn stops_message(ev: &inspect::Event) -> bool {
    let configured = ev.json["configured_action"].as_str().unwrap_or("alert");
    !matches!(ev.action, Action::Alert) || (configured != "alert" && ev.json["mode"] == "enforce")
}

/// A worker's decision on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Sent out of the core side (counted once the TX ring took it).
    Forward(Sent),
    Drop,
    /// Kept in the UMEM until the messages it carries pieces of are whole ([`hold`]).
    Hold,
}

/// Which counter a forwarded frame goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Judged,
    Neutralized,
    Retransmission,
    Uninspected,
}

impl Worker {
    fn run(mut self) {
        let mut tx = Vec::with_capacity(BATCH);
        let mut sent = Vec::with_capacity(BATCH);
        let mut drops = Vec::with_capacity(BATCH);
        let mut events = Vec::new();
        let mut published = std::time::Instant::now();
        let mut seen = 0;
        // Busy polling lasts `busy_poll` from the last frame received: a queue without traffic
        // sleeps.
        let mut spin_until = std::time::Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            while let Ok(View { rules, peers, fail_open }) = self.views.try_recv() {
                self.engine.rules = rules;
                self.peers = peers;
                self.fail_open = fail_open;
            }
            self.pair.wait(POLL_MS, self.realtime, spin_until);
            let descs = self.pair.receive(BATCH);
            if !descs.is_empty() && !self.busy_poll.is_zero() {
                spin_until = std::time::Instant::now() + self.busy_poll;
            }
            for d in &descs {
                self.counters.received += 1;
                let fate = self.judge(d, &mut events);
                // Held frames whose messages this one completed go first, in arrival order.
                for (h, how) in self.released.drain(..) {
                    match how {
                        Some(how) => {
                            tx.push(h);
                            sent.push(how);
                        }
                        None => drops.push(h.addr),
                    }
                }
                match fate {
                    Fate::Forward(how) => {
                        tx.push(*d);
                        sent.push(how);
                    }
                    Fate::Drop => drops.push(d.addr),
                    Fate::Hold => {}
                }
            }
            self.expire_holds(&mut events);
            for (h, how) in self.released.drain(..) {
                match how {
                    Some(how) => {
                        tx.push(h);
                        sent.push(how);
                    }
                    None => drops.push(h.addr),
                }
            }
            self.pair.give_back(descs);
            self.credit.give_back();
            if !tx.is_empty() {
                if self.pair.send(&tx) {
                    self.pair.kick();
                    for how in &sent {
                        match how {
                            Sent::Judged => self.counters.forwarded += 1,
                            Sent::Neutralized => self.counters.neutralized += 1,
                            Sent::Retransmission => self.counters.retransmissions_neutralized += 1,
                            Sent::Uninspected => self.counters.uninspected_forwarded += 1,
                        }
                    }
                } else {
                    // Cannot happen while the TX ring is as large as the UMEM; counted if it does.
                    self.counters.tx_ring_full += tx.len() as u64;
                    drops.extend(tx.iter().map(|d| d.addr));
                }
                tx.clear();
                sent.clear();
            }
            if !drops.is_empty() {
                if !self.pair.recycle(&drops) {
                    self.counters.fill_overflow += drops.len() as u64;
                }
                drops.clear();
            }
            // Frames a full device queue left on the TX ring go now.
            self.pair.kick();
            if !self.pair.complete() {
                self.counters.fill_overflow += 1;
            }
            if !events.is_empty() {
                (self.sink.events)(std::mem::take(&mut events));
            }
            // The counters for readers at most every PUBLISH_MS (two getsockopt calls and a
            // lock), and whenever the worker is idle.
            let now = std::time::Instant::now();
            if now.duration_since(published).as_millis() >= PUBLISH_MS || self.counters.received == seen {
                self.publish();
                published = now;
            }
            seen = self.counters.received;
        }
    }

    fn publish(&mut self) {
        let k = self.pair.statistics();
        self.counters.kernel_rx_dropped = k.rx_dropped;
        self.counters.kernel_rx_ring_full = k.rx_ring_full;
        self.counters.kernel_fill_empty = k.rx_fill_ring_empty;
        self.counters.kernel_tx_invalid = k.tx_invalid;
        if let Some(slot) = crate::daemon::state::lock(&self.sink.counters).get_mut(self.q) {
            *slot = (self.counters, self.engine.counters.clone());
        }
    }

    /// Judge one frame: forward it unchanged or drop it.
    fn judge(&mut self, d: &libc::xdp_desc, events: &mut Vec<Value>) -> Fate {
        let meta = d.addr.checked_sub(filter_common::INPATH_META_LEN as u64).and_then(|a| {
            self.pair
                .umem
                .bytes(a, filter_common::INPATH_META_LEN as u32)
                .map(|b| (u32::from_ne_bytes([b[0], b[1], b[2], b[3]]), u16::from_ne_bytes([b[4], b[5]]) as u32, b[6]))
        });
        let Some((magic, peer_id, class)) = meta else {
            self.counters.bad_descriptor += 1;
            return self.unjudged(None);
        };
        if magic != filter_common::INPATH_META_MAGIC {
            self.counters.no_meta += 1;
            return self.unjudged(None);
        }
        self.credit.took(peer_id);
        let Some(data) = self.pair.umem.bytes(d.addr, d.len) else {
            self.counters.bad_descriptor += 1;
            return self.unjudged(Some(peer_id));
        };
        let Some((name, peer)) = self.peers.get(&peer_id) else {
            self.counters.unknown_peer += 1;
            return self.unjudged(None);
        };
        let frame = match inspect::parse_frame(data) {
            Ok(f) => f,
            Err(_) => {
                self.counters.unparsable += 1;
                return self.unjudged(Some(peer_id));
            }
        };
        if frame.frag.is_some() {
            self.counters.fragment += 1;
            return self.unjudged(Some(peer_id));
        }
        let proto = frame.proto;
        let key = frame.flow_key();
        let seq = frame.tcp.as_ref().map(|t| t.seq).unwrap_or(0);
        let f = Flagged {
            ts_ns: io::monotonic_ns(),
            peer: name.clone(),
            peer_id,
            class: io::class_of(class),
            reason: filter_common::Reason::Allowed.name(),
            dropped: false,
            data,
        };
        // Only enforced peers come up (XDP checks the effective mode): never monitor here.
        let found = self.engine.inspect_parsed(&f, frame, peer, false);
        let (ts_ns, name) = (f.ts_ns, name.clone());
        let stops: Vec<&Value> = found.iter().filter(|e| stops_message(e)).map(|e| &e.json).collect();
        let mut techniques = Vec::new();
        // SCTP pieces of messages split over chunks: held until whole (hold.rs).
        let mut admitted = if proto == 132 { self.admit(d, key, peer_id) } else { None };
        let mut unreachable = false;
        let tcp_admit = if proto == 6 { self.tcp_admit(d, key) } else { None };
        // The frame's fate when holding decided it (a duplicate of a held piece, a bound).
        let mut forced = None;
        if let Some(t) = &tcp_admit {
            if t.duplicate {
                self.counters.hold_duplicates_dropped += 1;
                forced = Some(Fate::Drop);
            } else if t.rewritten_again && stops.is_empty() {
                forced = Some(Fate::Forward(Sent::Retransmission));
            }
        }
        if let Some(a) = &admitted {
            if a.duplicate {
                self.counters.hold_duplicates_dropped += 1;
                forced = Some(Fate::Drop);
            } else if !a.failed.is_empty() {
                self.counters.hold_overflow += a.failed.len() as u64;
                let open = self.fail_open.contains(&peer_id);
                self.fail_held(
                    &a.failed,
                    Some(d.addr),
                    Some("over a holding bound (pieces, messages or frames held)"),
                    events,
                );
                forced = Some(if open {
                    self.counters.hold_failed_forwarded += 1;
                    Fate::Forward(Sent::Uninspected)
                } else {
                    self.counters.hold_failed_dropped += 1;
                    Fate::Drop
                });
            }
        }
        if forced.is_some() {
            admitted = None;
        }
        let completed = admitted.as_ref().map(|a| a.completed.as_slice()).unwrap_or_default();
        let fate = if let Some(f) = forced {
            f
        } else if stops.is_empty() {
            if completed.is_empty() { self.retransmission(d, proto, key, seq) } else { Fate::Forward(Sent::Judged) }
        } else if proto == libc::IPPROTO_UDP as u8 {
            Fate::Drop
        } else {
            let targets = Targets::of(&stops, io::class_of(class));
            let in_frame = match &tcp_admit {
                // Diameter over TCP: the messages this segment completed, from where the
                // unjudged bytes began, across the held segments and this one.
                Some(t) => {
                    let done = self.neutralize_tcp_stream(key, d, t, &targets);
                    if done.is_empty() { Err(neutralize::NotDone::NoTarget) } else { Ok(done) }
                }
                None => self.neutralize(d, proto, |t| t.is_some_and(|_| true), &targets),
            };
            let mut done = match in_frame {
                Ok(done) => {
                    for r in &done {
                        self.remember(key, r.seq, &targets);
                    }
                    done
                }
                Err(why) => {
                    if completed.is_empty() {
                        techniques.push(format!("none ({})", why.name()));
                    }
                    Vec::new()
                }
            };
            for m in completed {
                done.extend(self.neutralize_across(m, d, &targets));
            }
            techniques.extend(done.iter().map(|r| r.technique.clone()));
            if done.is_empty() {
                if techniques.is_empty() {
                    techniques.push("none (no_target)".into());
                }
                // The rewrite cannot reach the message: the frame that completes it does not
                // go on, so the receiver never has it whole (review of stop 17: forwarding it
                // delivered the message).
                unreachable = true;
                self.counters.blocked_dropped += 1;
                Fate::Drop
            } else {
                Fate::Forward(Sent::Neutralized)
            }
        };
        let mut fate = fate;
        if let Some(t) = &tcp_admit
            && forced.is_none()
            && let Fate::Forward(how) = fate
            && let Some(f) = self.tcp_hold(d, key, peer_id, t, how, events)
        {
            fate = f;
        }
        if let Some(a) = admitted {
            self.counters.held_messages += a.completed.len() as u64;
            self.counters.hold_orphans += a.orphans as u64;
            for m in &a.completed {
                self.deliver(m, d.addr);
            }
            if a.holds > 0 {
                // Kept until its messages are whole; counted as judged or neutralized when sent.
                match fate {
                    Fate::Forward(how) => {
                        self.held.insert(d.addr, (*d, how));
                    }
                    // Dropped: the messages it has pieces of cannot complete either.
                    _ => {
                        // Those with pieces held elsewhere go as their peer fails, reported;
                        // those begun in this frame only go with it.
                        let gone: Vec<hold::Held> = self
                            .holds
                            .release_frame(d.addr)
                            .into_iter()
                            .filter(|m| m.pieces.iter().any(|(a, _)| *a != d.addr))
                            .collect();
                        if !gone.is_empty() {
                            self.fail_held(&gone, Some(d.addr), Some("a frame with a piece of it was dropped"), events);
                        }
                    }
                }
            }
        }
        for mut ev in found {
            match (&ev.action, fate) {
                // Dropped because the rewrite could not reach it: contain by flow too.
                (&Action::BlockMessage { key, ttl_s, rule, .. }, _) if unreachable => {
                    (self.sink.blocks)(Action::BlockFlow { key, ttl_s, rule })
                }
                (a @ Action::BlockFlow { .. }, _) if unreachable => (self.sink.blocks)(a.clone()),
                // The message is stopped: its flow is not (the next message is judged alone).
                (
                    Action::BlockFlow { .. } | Action::BlockMessage { .. },
                    Fate::Drop | Fate::Forward(Sent::Neutralized),
                ) => {}
                (Action::BlockMessage { .. }, _) => {}
                (Action::Alert, _) => {}
                (a, _) => (self.sink.blocks)(a.clone()),
            }
            let stopped = stops_message(&ev);
            ev.json["inpath"] = serde_json::json!(match fate {
                Fate::Drop if stopped && unreachable => "dropped (not neutralized; block pushed down)",
                Fate::Drop if stopped => "dropped",
                Fate::Forward(Sent::Neutralized) if stopped => "neutralized",
                _ => "forwarded",
            });
            if stopped && !techniques.is_empty() {
                ev.json["technique"] = serde_json::json!(techniques);
            }
            let rule = ev.json["rule"].as_str().unwrap_or("").to_string();
            if self.output.allow(ts_ns, &name, &rule) {
                events.push(ev.json);
            } else {
                self.engine.counters.events_suppressed += 1;
            }
        }
        if fate == Fate::Drop && forced.is_none() {
            self.counters.dropped += 1;
        }
        if self.holds.is_held(d.addr) || (proto == 6 && self.held.contains_key(&d.addr)) {
            return Fate::Hold;
        }
        fate
    }

    /// A Diameter-over-TCP segment before it is judged: its place in the stream, and whether it
    /// repeats held bytes or a delivered segment that was rewritten (given the rewrite again).
    fn tcp_admit(&mut self, d: &libc::xdp_desc, key: FlowKey) -> Option<TcpAdmit> {
        let bytes = self.pair.umem.bytes(d.addr, d.len)?;
        let (seq, payload) = neutralize::tcp_payload(bytes).ok()?;
        if payload.is_empty() {
            return None;
        }
        let end = seq.wrapping_add(payload.len() as u32);
        let h = self.tcp_holds.get(&key);
        let duplicate = h
            .is_some_and(|h| h.segs.iter().any(|&(_, s, l, _)| seq_after(end, s) && seq_after(s.wrapping_add(l), seq)));
        let from = h.map(|h| h.from);
        let mut rewritten_again = false;
        // Bytes rewritten before, by their sequence number: a retransmission gets them again
        // wherever it starts (a sender may coalesce or split what it resends; review M2).
        let patches: Vec<(usize, Vec<u8>)> = self
            .tcp_rewritten
            .get(&key)
            .map(|v| {
                v.iter()
                    .filter(|(sq, _)| !seq_after(seq, *sq) && seq_after(end, *sq))
                    .map(|(sq, b)| (payload.start + sq.wrapping_sub(seq) as usize, vec![*b]))
                    .collect()
            })
            .unwrap_or_default();
        if !duplicate
            && !patches.is_empty()
            && let Some(f) = self.pair.umem.bytes_mut(d.addr, d.len)
        {
            rewritten_again = neutralize::tcp_patch(f, &patches).is_ok();
            if rewritten_again {
                self.counters.hold_retransmissions += 1;
            }
        }
        Some(TcpAdmit { seq, payload, from, duplicate, rewritten_again })
    }

    /// Neutralize what `t` selects in the Diameter messages that begin where the unjudged bytes
    /// began (before this segment) and lie in the held segments and this one: the bytes are put
    /// together in sequence order, the requests found, and each rewritten byte written back into
    /// the segment that carries it, whose checksum is then recomputed.
    fn neutralize_tcp_stream(
        &mut self,
        key: FlowKey,
        cur: &libc::xdp_desc,
        a: &TcpAdmit,
        t: &Targets,
    ) -> Vec<neutralize::Rewrite> {
        let start = a.from.unwrap_or(a.seq);
        let mut segs: Vec<(u64, u32, u32, u32, usize)> = self
            .tcp_holds
            .get(&key)
            .map(|h| {
                h.segs
                    .iter()
                    .map(|&(addr, s, l, off)| (addr, self.held.get(&addr).map_or(0, |x| x.0.len), s, l, off))
                    .collect()
            })
            .unwrap_or_default();
        segs.push((cur.addr, cur.len, a.seq, a.payload.len() as u32, a.payload.start));
        segs.sort_by_key(|&(_, _, s, _, _)| s.wrapping_sub(start));
        // The stream from `start`, contiguous; and for each of its bytes' runs, the frame.
        let mut stream = Vec::new();
        let mut spans = Vec::new(); // (addr, frame len, frame offset of stream[at], at, n)
        for &(addr, flen, s, l, off) in &segs {
            let pos = stream.len() as u32;
            let rel = s.wrapping_sub(start);
            if seq_after(rel, pos) {
                // A gap: the rest is not contiguous yet.
                break;
            }
            // Bytes before `pos` (a retransmitted overlap, or before the start) are skipped.
            let skip = pos.wrapping_sub(rel) as usize;
            if skip >= l as usize {
                continue;
            }
            let Some(bytes) = self.pair.umem.bytes(addr, flen).and_then(|b| b.get(off + skip..off + l as usize)) else {
                break;
            };
            spans.push((addr, flen, off + skip, stream.len(), bytes.len()));
            stream.extend_from_slice(bytes);
        }
        let done = neutralize::diameter_stream(&stream, |c| t.cmd(c));
        type Patches = (u32, Vec<(usize, Vec<u8>)>);
        let mut per_frame: HashMap<u64, Patches> = HashMap::new();
        for r in &done {
            for (i, b) in r.new.iter().enumerate() {
                let at = r.offset + i;
                if let Some(&(addr, flen, foff, sat, _)) =
                    spans.iter().find(|&&(_, _, _, sat, n)| (sat..sat + n).contains(&at))
                {
                    per_frame.entry(addr).or_insert((flen, Vec::new())).1.push((foff + at - sat, vec![*b]));
                }
            }
        }
        for (addr, (flen, patches)) in per_frame {
            let Some(&(_, _, s, _, poff)) = segs.iter().find(|x| x.0 == addr) else { continue };
            if self.pair.umem.bytes_mut(addr, flen).is_none_or(|f| neutralize::tcp_patch(f, &patches).is_err()) {
                continue;
            }
            if let Some(h) = self.held.get_mut(&addr) {
                h.1 = Sent::Neutralized;
            }
            // A retransmission of these bytes gets the same ones, by sequence number.
            if !self.tcp_rewritten.contains_key(&key) {
                self.tcp_rewritten_order.push_back(key);
            }
            let v = self.tcp_rewritten.entry(key).or_default();
            v.extend(patches.iter().map(|(o, b)| (s.wrapping_add((o - poff) as u32), b[0])));
            if v.len() > REWRITTEN_MAX {
                v.drain(..v.len() - REWRITTEN_MAX);
            }
        }
        // Directions remembered: at most REWRITTEN_MAX / 16, the first rewritten forgotten first.
        while self.tcp_rewritten.len() > REWRITTEN_MAX / 16 {
            let Some(k) = self.tcp_rewritten_order.pop_front() else { break };
            self.tcp_rewritten.remove(&k);
        }
        done
    }

    /// After a segment was judged: hold it if it carries bytes no judged message covers, and
    /// send the held segments that are now wholly covered. Over a bound, the connection's held
    /// segments and this one go as the peer's `on_overload` says: the fate of this one returned.
    fn tcp_hold(
        &mut self,
        d: &libc::xdp_desc,
        key: FlowKey,
        peer_id: u32,
        a: &TcpAdmit,
        how: Sent,
        events: &mut Vec<Value>,
    ) -> Option<Fate> {
        let from = self.engine.tcp_unjudged_from(&key)?;
        let end = a.seq.wrapping_add(a.payload.len() as u32);
        let hold_this = seq_after(end, from);
        // One peer's connections are a quarter of the bound, so its holds cannot use up the
        // others' (issue 9 item 5: per-peer budgets).
        let peer_conns = || self.tcp_holds.values().filter(|h| h.peer_id == peer_id).count();
        if hold_this
            && !self.tcp_holds.contains_key(&key)
            && (self.tcp_holds.len() >= MAX_TCP_HOLDS || peer_conns() >= MAX_TCP_HOLDS / 4)
        {
            self.counters.hold_overflow += 1;
            self.tcp_holds.insert(key, TcpHold { peer_id, ..TcpHold::default() });
            return Some(self.fail_tcp(key, Some(d.addr), Some("over a holding bound (connections held)"), events));
        }
        let h = self.tcp_holds.entry(key).or_insert_with(|| TcpHold { peer_id, ..TcpHold::default() });
        h.from = from;
        if hold_this {
            h.segs.push((d.addr, a.seq, a.payload.len() as u32, a.payload.start));
            h.since.get_or_insert_with(std::time::Instant::now);
            self.held.insert(d.addr, (*d, how));
        }
        let (gone, kept): (Vec<_>, Vec<_>) =
            h.segs.iter().copied().partition(|&(_, s, l, _)| !seq_after(s.wrapping_add(l), from));
        h.segs = kept;
        // Progress (segments went on) restarts the clock: on a busy connection whose messages
        // keep straddling segments the list never empties, and the oldest held is recent.
        if !gone.is_empty() && !h.segs.is_empty() {
            h.since = Some(std::time::Instant::now());
        } else if h.segs.is_empty() {
            h.since = None;
        }
        let empty = h.segs.is_empty();
        let too_long = h.segs.len() > MAX_TCP_HELD_SEGMENTS;
        if empty {
            self.tcp_holds.remove(&key);
        }
        let mine: usize = self.tcp_holds.values().filter(|h| h.peer_id == peer_id).map(|h| h.segs.len()).sum();
        // Only a segment being held can take a connection over a bound.
        let over = hold_this
            && !empty
            && (too_long || self.held.len() > hold::MAX_HELD_FRAMES || mine > hold::MAX_HELD_FRAMES_PER_PEER);
        let mut sorted = gone;
        sorted.sort_by_key(|&(_, s, _, _)| s.wrapping_sub(from));
        for (addr, ..) in sorted {
            if let Some((desc, how)) = self.held.remove(&addr) {
                self.counters.held_segments += 1;
                self.released.push((desc, Some(how)));
            }
        }
        if over {
            self.counters.hold_overflow += 1;
            self.held.remove(&d.addr);
            return Some(self.fail_tcp(
                key,
                Some(d.addr),
                Some("over a holding bound (segments or frames held)"),
                events,
            ));
        }
        None
    }

    /// The held segments of a connection go as its peer's `on_overload` says (fail-closed:
    /// dropped, and TCP retransmits them; fail-open: forwarded uninspected), counted, reported.
    fn fail_tcp(&mut self, key: FlowKey, cur: Option<u64>, over: Option<&str>, events: &mut Vec<Value>) -> Fate {
        let late = over.is_none();
        let why = over.unwrap_or("the rest of the message did not come within the holding time");
        let h = self.tcp_holds.remove(&key);
        let peer_id = h.as_ref().map_or(0, |h| h.peer_id);
        let open = late || self.fail_open.contains(&peer_id);
        let mut n = 0;
        for (addr, ..) in h.map(|h| h.segs).unwrap_or_default() {
            if Some(addr) == cur {
                continue;
            }
            if let Some((desc, _)) = self.held.remove(&addr) {
                n += 1;
                if late {
                    self.counters.hold_expired_forwarded += 1;
                    self.released.push((desc, Some(Sent::Uninspected)));
                } else if open {
                    self.counters.hold_failed_forwarded += 1;
                    self.released.push((desc, Some(Sent::Uninspected)));
                } else {
                    self.counters.hold_failed_dropped += 1;
                    self.released.push((desc, None));
                }
            }
        }
        // The caller's segment goes the same way.
        let fate = match (cur, open) {
            (None, _) => Fate::Drop,
            (Some(_), true) => {
                n += 1;
                self.counters.hold_failed_forwarded += 1;
                Fate::Forward(Sent::Uninspected)
            }
            (Some(_), false) => {
                n += 1;
                self.counters.hold_failed_dropped += 1;
                Fate::Drop
            }
        };
        let peer = self.peers.get(&peer_id).map(|p| p.0.clone()).unwrap_or_default();
        let ts_ns = io::monotonic_ns();
        if self.output.allow(ts_ns, &peer, RuleId::InspectionOverload.name()) {
            events.push(serde_json::json!({
                "time_ns": ts_ns,
                "peer": peer,
                "rule": RuleId::InspectionOverload.name(),
                "decision": if open { "passed uninspected" } else { "dropped" },
                "action": if open { "none" } else { "drop" },
                "on_overload": if self.fail_open.contains(&peer_id) { "fail-open" } else { "fail-closed" },
                "inpath": if late { "head forwarded before judged (if blocked when whole: its last piece dropped, flow blocked)" } else if open { "forwarded uninspected" } else { "dropped" },
                "flow": {"src": ip_of(&key.src), "dst": ip_of(&key.dst), "proto": 6, "sport": u16::from_be(key.sport), "dport": u16::from_be(key.dport)},
                "fields": {
                    "what": format!("{n} TCP segments of a Diameter message were not judged whole: {why}"),
                    "segments": n,
                },
            }));
        } else {
            self.engine.counters.events_suppressed += 1;
        }
        fate
    }

    /// Held messages whose last piece has not come within [`hold::HOLD_FOR`] fail.
    fn expire_holds(&mut self, events: &mut Vec<Value>) {
        if !self.tcp_holds.is_empty() {
            let now = std::time::Instant::now();
            let late: Vec<FlowKey> = self
                .tcp_holds
                .iter()
                .filter(|(_, h)| h.since.is_some_and(|t| now.duration_since(t) >= hold::HOLD_FOR))
                .map(|(k, _)| *k)
                .collect();
            for k in late {
                self.fail_tcp(k, None, None, events);
            }
        }
        if self.holds.messages() == 0 {
            return;
        }
        let gone = self.holds.expired(std::time::Instant::now());
        if !gone.is_empty() {
            self.fail_held(&gone, None, None, events);
        }
    }

    /// Messages that cannot be held any longer. Over a bound (`over`: why), their held frames
    /// (not `cur`, the caller's) go as the peer's `on_overload` says: forwarded uninspected
    /// (fail-open) or dropped (fail-closed). Late (`over` is `None`), they are sent on: see
    /// [`Counters::hold_expired_forwarded`]. Counted, and one event per message says so.
    fn fail_held(&mut self, msgs: &[hold::Held], cur: Option<u64>, over: Option<&str>, events: &mut Vec<Value>) {
        let late = over.is_none();
        let why = over.unwrap_or("its last piece did not come within the holding time");
        for m in msgs {
            let open = late || self.fail_open.contains(&m.peer_id);
            for (addr, _) in &m.pieces {
                if Some(*addr) == cur {
                    continue;
                }
                if let Some((desc, _)) = self.held.remove(addr) {
                    if late {
                        self.counters.hold_expired_forwarded += 1;
                        self.released.push((desc, Some(Sent::Uninspected)));
                    } else if open {
                        self.counters.hold_failed_forwarded += 1;
                        self.released.push((desc, Some(Sent::Uninspected)));
                    } else {
                        self.counters.hold_failed_dropped += 1;
                        self.released.push((desc, None));
                    }
                }
            }
            if open {
                self.deliver_pieces(m);
            }
            let peer = self.peers.get(&m.peer_id).map(|p| p.0.clone()).unwrap_or_default();
            let ts_ns = io::monotonic_ns();
            if self.output.allow(ts_ns, &peer, RuleId::InspectionOverload.name()) {
                let (src, dst) = (ip_of(&m.flow.src), ip_of(&m.flow.dst));
                events.push(serde_json::json!({
                    "time_ns": ts_ns,
                    "peer": peer,
                    "rule": RuleId::InspectionOverload.name(),
                    "decision": if open { "passed uninspected" } else { "dropped" },
                    "action": if open { "none" } else { "drop" },
                    "on_overload": if self.fail_open.contains(&m.peer_id) { "fail-open" } else { "fail-closed" },
                    "inpath": if late { "head forwarded before judged (if blocked when whole: its last piece dropped, flow blocked)" } else if open { "forwarded uninspected" } else { "dropped" },
                    "flow": {"src": src, "dst": dst, "proto": 132, "sport": u16::from_be(m.flow.sport), "dport": u16::from_be(m.flow.dport)},
                    "fields": {
                        "what": format!("an SCTP message split over {} chunks was not judged whole: {why}", m.pieces.len()),
                        "pieces": m.pieces.len(),
                        "first_tsn": m.pieces.first().map(|(_, p)| p.tsn),
                    },
                }));
            } else {
                self.engine.counters.events_suppressed += 1;
            }
        }
    }

    /// Remember a message's pieces as delivered (a retransmission of one is then forwarded, not
    /// held again).
    fn deliver_pieces(&mut self, m: &hold::Held) {
        for (_, p) in &m.pieces {
            let k = (m.flow, p.tsn);
            if let std::collections::hash_map::Entry::Vacant(e) = self.delivered.entry(k) {
                e.insert(Vec::new());
                self.delivered_order.push_back(k);
            }
        }
        while self.delivered_order.len() > REWRITTEN_MAX {
            if let Some(k) = self.delivered_order.pop_front() {
                self.delivered.remove(&k);
            }
        }
    }

    /// The pieces of split SCTP messages in the frame of `d`, taken into the holds; pieces of
    /// messages already delivered (retransmissions) get their rewrite again and are not held.
    fn admit(&mut self, d: &libc::xdp_desc, key: FlowKey, peer_id: u32) -> Option<hold::Admitted> {
        let bytes = self.pair.umem.bytes(d.addr, d.len)?;
        let pieces = neutralize::sctp_pieces(bytes).ok()?;
        if pieces.iter().all(|p| p.begin && p.end) {
            return None;
        }
        let mut patches = Vec::new();
        let mut fresh = Vec::new();
        for p in pieces {
            match self.delivered.get(&(key, p.tsn)) {
                Some(rewritten) if !(p.begin && p.end) => {
                    self.counters.hold_retransmissions += 1;
                    patches.extend(rewritten.iter().map(|(off, b)| (p.data.start + off, vec![*b])));
                }
                _ => fresh.push(p),
            }
        }
        if !patches.is_empty()
            && let Some(frame) = self.pair.umem.bytes_mut(d.addr, d.len)
        {
            let _ = neutralize::sctp_patch(frame, &patches);
        }
        Some(self.holds.admit(key, peer_id, d.addr, &fresh, std::time::Instant::now()))
    }

    /// Neutralize what `t` selects in a message whose pieces lie in held frames and in the frame
    /// of `cur`: the user message is put together, the rewrites found in it, and each rewritten
    /// byte written back into the frame that carries it, whose CRC32c is then recomputed.
    fn neutralize_across(&mut self, m: &hold::Held, cur: &libc::xdp_desc, t: &Targets) -> Vec<neutralize::Rewrite> {
        let Some(ppid) = m.ppid() else { return Vec::new() };
        let mut data = Vec::new();
        // (frame address, frame length, frame offset of the piece's data, offset in `data`, length)
        let mut spans = Vec::with_capacity(m.pieces.len());
        for (addr, p) in &m.pieces {
            let len = if *addr == cur.addr { cur.len } else { self.held.get(addr).map_or(0, |h| h.0.len) };
            let Some(chunk) = self.pair.umem.bytes(*addr, len).and_then(|b| b.get(p.data.clone())) else {
                return Vec::new();
            };
            spans.push((*addr, len, p.data.start, data.len(), chunk.len()));
            data.extend_from_slice(chunk);
        }
        let mut done = neutralize::user_message(ppid, &data, |op| t.op(op), |c| t.cmd(c));
        // Per frame: its length and the (frame offset, bytes) to write.
        type Patches = (u32, Vec<(usize, Vec<u8>)>);
        let mut per_frame: HashMap<u64, Patches> = HashMap::new();
        for r in &mut done {
            r.seq = m.pieces.first().map_or(0, |(_, p)| p.tsn);
            for (i, b) in r.new.iter().enumerate() {
                let at = r.offset + i;
                if let Some((k, &(addr, len, fstart, dstart, _))) =
                    spans.iter().enumerate().find(|&(_, &(_, _, _, dstart, n))| (dstart..dstart + n).contains(&at))
                {
                    per_frame.entry(addr).or_insert((len, Vec::new())).1.push((fstart + at - dstart, vec![*b]));
                    // What a retransmission of this piece must get.
                    let key = (m.flow, m.pieces[k].1.tsn);
                    if !self.delivered.contains_key(&key) {
                        self.delivered_order.push_back(key);
                    }
                    self.delivered.entry(key).or_default().push((at - dstart, *b));
                }
            }
        }
        for (addr, (len, patches)) in per_frame {
            let ok = self.pair.umem.bytes_mut(addr, len).is_some_and(|f| neutralize::sctp_patch(f, &patches).is_ok());
            if ok && let Some(h) = self.held.get_mut(&addr) {
                h.1 = Sent::Neutralized;
            }
        }
        done
    }

    /// A complete message is judged: its held frames that no other held message needs go out,
    /// and its pieces are remembered (with the bytes rewritten in them, recorded by
    /// [`Worker::neutralize_across`]) so that a retransmission is forwarded, not held again.
    fn deliver(&mut self, m: &hold::Held, cur: u64) {
        self.deliver_pieces(m);
        for a in self.holds.released(m.pieces.iter().map(|(a, _)| *a).filter(|a| *a != cur)) {
            if let Some((desc, how)) = self.held.remove(&a) {
                self.released.push((desc, Some(how)));
            }
        }
    }

    /// Neutralize the frame of `d` in place: SCTP chunks whose TSN `tsn` selects (`Some(tsn)`),
    /// or a TCP segment.
    fn neutralize(
        &mut self,
        d: &libc::xdp_desc,
        proto: u8,
        tsn: impl Fn(Option<u32>) -> bool,
        t: &Targets,
    ) -> Result<Vec<neutralize::Rewrite>, neutralize::NotDone> {
        let bytes = self.pair.umem.bytes_mut(d.addr, d.len).ok_or(neutralize::NotDone::Truncated)?;
        match proto {
            132 => neutralize::sctp_tsns(bytes, |n| tsn(Some(n)), |op| t.op(op), |c| t.cmd(c)),
            6 => neutralize::tcp(bytes, |c| t.cmd(c)),
            _ => Err(neutralize::NotDone::NotTransport),
        }
    }

    /// A frame no finding stops: if it retransmits a neutralized chunk or segment of its flow,
    /// the same rewrite (the engine does not judge a message twice, so it raised nothing).
    fn retransmission(&mut self, d: &libc::xdp_desc, proto: u8, key: FlowKey, seq: u32) -> Fate {
        let Some(seen) = self.rewritten.get(&key) else { return Fate::Forward(Sent::Judged) };
        let mut all = Targets::default();
        let mut first = true;
        for t in seen.values() {
            if first {
                all = t.clone();
                first = false;
            } else {
                all.merge(t);
            }
        }
        let tsns: HashSet<u32> = seen.keys().copied().collect();
        if proto == 6 && !tsns.contains(&seq) {
            return Fate::Forward(Sent::Judged);
        }
        match self.neutralize(d, proto, |t| t.is_some_and(|n| tsns.contains(&n)), &all) {
            Ok(_) => Fate::Forward(Sent::Retransmission),
            Err(_) => Fate::Forward(Sent::Judged),
        }
    }

    fn remember(&mut self, key: FlowKey, seq: u32, t: &Targets) {
        let per_flow = self.rewritten.entry(key).or_default();
        if per_flow.insert(seq, t.clone()).is_none() {
            self.rewritten_order.push_back((key, seq));
        }
        while self.rewritten_order.len() > REWRITTEN_MAX {
            let Some((k, s)) = self.rewritten_order.pop_front() else { break };
            if let Some(m) = self.rewritten.get_mut(&k) {
                m.remove(&s);
                if m.is_empty() {
                    self.rewritten.remove(&k);
                }
            }
        }
    }

    /// A frame that came up and cannot be judged: the peer's `on_overload` (fail-closed when
    /// the peer is not known).
    fn unjudged(&mut self, peer_id: Option<u32>) -> Fate {
        if peer_id.is_some_and(|id| self.fail_open.contains(&id)) {
            Fate::Forward(Sent::Uninspected)
        } else {
            self.counters.uninspected_dropped += 1;
            Fate::Drop
        }
    }
}
