//! Deep inspection: flagged packets come up from XDP through the ring buffer, are decoded
//! (`filter_dpi`), judged by the rules, and the verdicts go back down as flow blocks or peer
//! quarantines. This module is the pure part: frames in, events and actions out. The daemon
//! feeds it and carries the actions out (`crate::daemon`).

pub mod correlation;
pub mod identity;
pub mod io;
pub mod pending;
pub mod plausibility;
pub mod rules;
pub mod sms;

use std::{collections::HashMap, net::IpAddr};

use etherparse::{LaxNetSlice, LaxSlicedPacket};
use filter_common::{Class, FlowKey};
use filter_dpi::{
    DecodeError, Layer,
    diameter::{self, StreamReassembler},
    gtp, ipfrag, sctp, ss7, tcp,
};
use serde_json::{Value, json};

use crate::policy::inspect::{PeerInspect, RuleAction, RuleMode};
pub use rules::{Finding, RuleId, RuleSet};

/// Connections whose Diameter-over-TCP byte streams are followed at once; beyond this the least
/// recently used connection of the peer that holds most is forgotten (never all of them).
pub const MAX_TCP_STREAMS: usize = 4096;
/// Connections followed per peer: a peer that opens more only evicts its own (review M2).
pub const MAX_TCP_STREAMS_PER_PEER: usize = 512;
/// SCTP associations whose verification tag is remembered (to tell the association's packets
/// from forged ones, review H7); eviction as for TCP.
pub const MAX_SCTP_ASSOCS: usize = 4096;
/// SCTP associations remembered per peer.
pub const MAX_SCTP_ASSOCS_PER_PEER: usize = 512;

/// TCP header fields the reassembler needs, and whether the checksum holds (`None` when the
/// copy was cut at the snap length and the checksum cannot be checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub seq: u32,
    pub flags: u8,
    pub urgent_pointer: u16,
    pub checksum_ok: Option<bool>,
}

/// Where an IP fragment sits in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragInfo {
    pub id: u32,
    pub offset: usize,
    pub more: bool,
}

/// The transport view of a copied frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// UDP or TCP payload; for SCTP the whole SCTP packet; for an IP fragment its bytes.
    pub payload: &'a [u8],
    /// Part of a fragmented IP datagram (the payload is incomplete; see `frag`).
    pub fragmented: bool,
    /// The copy is shorter than the packet (snap length): checksums cannot be checked.
    pub truncated: bool,
    /// The IPv4 header checksum holds (always true for IPv6, which has none). A receiver drops a
    /// packet whose header checksum is wrong, so inspection must not learn from it.
    pub ip_ok: bool,
    /// UDP checksum (None: absent, zero, or not checkable).
    pub udp_ok: Option<bool>,
    pub tcp: Option<TcpInfo>,
    pub frag: Option<FragInfo>,
}

impl Frame<'_> {
    pub fn flow_key(&self) -> FlowKey {
        FlowKey {
            src: v6(self.src),
            dst: v6(self.dst),
            sport: self.sport.to_be(),
            dport: self.dport.to_be(),
            proto: self.proto,
            _pad: [0; 3],
        }
    }
}

/// IPv4 mapped into IPv6, as the XDP program keys flows.
pub fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn be16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b.get(at).copied().unwrap_or(0), b.get(at + 1).copied().unwrap_or(0)])
}

/// Ones' complement sum check of an IPv4 header.
fn ipv4_header_ok(h: &[u8]) -> bool {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(c.first().copied().unwrap_or(0)) << 8 | u32::from(c.get(1).copied().unwrap_or(0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// The transport view of a whole IP payload (`bytes`: an unfragmented packet's payload or a
/// reassembled datagram), parsed here rather than by etherparse so both cases read the same way.
fn transport<'a>(src: IpAddr, dst: IpAddr, proto: u8, bytes: &'a [u8], truncated: bool, ip_ok: bool) -> Frame<'a> {
    let mut fr = Frame {
        src,
        dst,
        proto,
        sport: 0,
        dport: 0,
        payload: bytes,
        fragmented: false,
        truncated,
        ip_ok,
        udp_ok: None,
        tcp: None,
        frag: None,
    };
    match proto {
        17 if bytes.len() >= 8 => {
            fr.sport = be16_at(bytes, 0);
            fr.dport = be16_at(bytes, 2);
            let len = (be16_at(bytes, 4) as usize).clamp(8, bytes.len());
            fr.payload = bytes.get(8..len).unwrap_or(&[]);
            let sum = be16_at(bytes, 6);
            if !truncated && (sum != 0 || src.is_ipv6()) {
                fr.udp_ok = Some(filter_dpi::tcp::checksum_ok(&addr_bytes(src), &addr_bytes(dst), 17, &bytes[..len]));
            }
        }
        6 if bytes.len() >= 20 => {
            fr.sport = be16_at(bytes, 0);
            fr.dport = be16_at(bytes, 2);
            let off = ((bytes[12] >> 4) as usize * 4).clamp(20, bytes.len());
            fr.payload = bytes.get(off..).unwrap_or(&[]);
            let seq = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            let checksum_ok =
                (!truncated).then(|| filter_dpi::tcp::checksum_ok(&addr_bytes(src), &addr_bytes(dst), 6, bytes));
            fr.tcp = Some(TcpInfo { seq, flags: bytes[13], urgent_pointer: be16_at(bytes, 18), checksum_ok });
        }
        132 if bytes.len() >= 4 => {
            fr.sport = be16_at(bytes, 0);
            fr.dport = be16_at(bytes, 2);
        }
        _ => {}
    }
    fr
}

/// Ethernet (with VLAN tags) → IP → transport, with etherparse's lax slicer (a frame copied
/// up may be cut at the snap length). An IP fragment comes back with `frag` set and its own
/// bytes as payload (ports 0): the engine reassembles it first.
pub fn parse_frame(data: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let p = LaxSlicedPacket::from_ethernet(data).map_err(|_| DecodeError::Len {
        layer: Layer::Ip,
        required: 14,
        len: data.len(),
    })?;
    let (src, dst, ip_payload, ip_ok, frag) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let frag = v4.payload().fragmented.then(|| FragInfo {
                id: h.identification() as u32,
                offset: h.fragments_offset().value() as usize * 8,
                more: h.more_fragments(),
            });
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                ipv4_header_ok(h.slice()),
                frag,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let frag = v6.payload().fragmented.then(|| {
                v6.extensions().clone().into_iter().find_map(|e| match e {
                    // Read from the header's bytes (RFC 8200 §4.5: offset in the high 13 bits of
                    // bytes 2-3, M the lowest bit): etherparse 0.18.2's accessors read other bits.
                    etherparse::Ipv6ExtensionSlice::Fragment(f) => {
                        let b = f.slice();
                        let word = be16_at(b, 2);
                        Some(FragInfo { id: f.identification(), offset: (word >> 3) as usize * 8, more: word & 1 == 1 })
                    }
                    _ => None,
                })
            });
            let frag = match frag {
                Some(Some(f)) => Some(f),
                Some(None) => {
                    return Err(DecodeError::Content {
                        layer: Layer::Ip,
                        what: "fragmented without a fragment header",
                    });
                }
                None => None,
            };
            (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), v6.payload(), true, frag)
        }
        _ => return Err(DecodeError::Content { layer: Layer::Ip, what: "not IP" }),
    };
    let proto = ip_payload.ip_number.0;
    let truncated = ip_payload.incomplete;
    if let Some(fi) = frag {
        let mut fr = transport(src, dst, proto, &[], truncated, ip_ok);
        fr.payload = ip_payload.payload;
        fr.fragmented = true;
        fr.frag = Some(fi);
        return Ok(fr);
    }
    Ok(transport(src, dst, proto, ip_payload.payload, truncated, ip_ok))
}

/// A packet copied up by XDP, with what XDP knew about it.
#[derive(Clone, Debug)]
pub struct Flagged<'a> {
    pub ts_ns: u64,
    pub peer: String,
    pub peer_id: u32,
    pub class: Class,
    /// XDP's verdict reason (name) and whether it dropped the packet.
    pub reason: &'static str,
    pub dropped: bool,
    pub data: &'a [u8],
}

/// What the daemon must do about a finding.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Alert,
    BlockFlow {
        key: FlowKey,
        ttl_s: u64,
        rule: RuleId,
    },
    BlockPeer {
        peer_id: u32,
        ttl_s: u64,
        rule: RuleId,
    },
    /// In path only (`block`): stop this message; `identity`, when the message named one and
    /// was proven its association's, has been blocked within the peer for `ttl_s`
    /// ([`identity`]). `key` is the message's flow, for containment when the message cannot be
    /// stopped (the in-path worker then pushes a flow block down).
    BlockMessage {
        key: FlowKey,
        identity: Option<identity::Identity>,
        ttl_s: u64,
        rule: RuleId,
    },
}

/// One JSON event per finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub json: Value,
    pub action: Action,
}

/// Counters by rule and by decoder error kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub messages: u64,
    pub events: u64,
    /// Findings on packets that are not proven to belong to the live association or connection
    /// (wrong SCTP verification tag or CRC32c, TCP out of window or bad checksum): reported as
    /// `spoofed`, never turned into a block (review H7).
    pub spoofed: u64,
    /// Copies of packets the first pass had already dropped: nobody received them, so they are
    /// counted and not decoded (they must neither cost inspection time nor feed reassembly).
    pub first_pass_dropped: u64,
    /// Records not decoded because their peer was over its inspection budget, by peer name
    /// (review C6: overflow is per peer and counted, and contained by `inspection-overload`).
    pub over_budget: HashMap<String, u64>,
    /// Events whose log line, event-file line and pcap record were suppressed by the output
    /// limits (review M7); their actions were still taken.
    pub events_suppressed: u64,
    /// State forgotten to make room, by table: reassembly of unfinished messages (`sctp`,
    /// `ip_fragments`, `sccp_segments`: the next piece of such a message is reported as
    /// `undecodable-signaling`) and the association and connection tables (`sctp_tags`, `tcp`).
    pub state_evicted: std::collections::BTreeMap<&'static str, u64>,
    pub rule_hits: HashMap<&'static str, u64>,
    pub decode_errors: HashMap<String, u64>,
}

impl Counters {
    /// A flagged record that could not be judged at all (not a decoder's error: the record or
    /// its peer), counted with the decoder errors so that nothing XDP copied up goes unjudged
    /// without a counter saying so.
    pub fn unjudged(&mut self, kind: &'static str) {
        *self.decode_errors.entry(kind.to_string()).or_default() += 1;
    }

    /// Add another engine's counters (the in-path workers' engines to the ring's).
    pub fn add(&mut self, o: &Counters) {
        self.packets += o.packets;
        self.messages += o.messages;
        self.events += o.events;
        self.spoofed += o.spoofed;
        self.first_pass_dropped += o.first_pass_dropped;
        self.events_suppressed += o.events_suppressed;
        for (k, v) in &o.over_budget {
            *self.over_budget.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.state_evicted {
            *self.state_evicted.entry(k).or_default() += v;
        }
        for (k, v) in &o.rule_hits {
            *self.rule_hits.entry(k).or_default() += v;
        }
        for (k, v) in &o.decode_errors {
            *self.decode_errors.entry(k.clone()).or_default() += v;
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "packets": self.packets, "messages": self.messages, "events": self.events,
            "spoofed": self.spoofed, "first_pass_dropped": self.first_pass_dropped,
            "over_budget": self.over_budget, "events_suppressed": self.events_suppressed,
            "state_evicted": self.state_evicted,
            "rule_hits": self.rule_hits, "decode_errors": self.decode_errors,
        })
    }
}

/// Why an anomaly of IP fragments (overlap, inconsistency, reassembly limits) never blocks: anyone
/// with a partner's address can send fragments, and nothing in them proves the sender before
/// the datagram is whole. Signaling classes' fragments are dropped in XDP by default; the rest
/// are reported.
const IP_FRAGMENTS_UNPROVEN: &str = "ip-fragments (nothing proves a fragment's sender)";

/// Whether a packet is proven to belong to the live association or connection (review H7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Yes,
    /// Not proven: why.
    No(&'static str),
}

/// A decoded message or a transport/decoding anomaly, before the rules.
enum Out {
    Msg(Box<Message>, Auth),
    Anomaly(RuleId, Value, Auth),
}

/// The class of a reassembled datagram, from its ports (as XDP classes unfragmented packets).
fn datagram_class(p: &rules::TransportPorts, fr: &Frame<'_>) -> Option<Class> {
    let on = |l: &[u16]| l.contains(&fr.sport) || l.contains(&fr.dport);
    match fr.proto {
        17 if on(&p.gtp_c) => Some(Class::GtpC),
        17 if on(&p.gtp_u) => Some(Class::GtpU),
        6 if on(&p.diameter) => Some(Class::Diameter),
        132 if on(&p.diameter) => Some(Class::Diameter),
        132 if on(&p.sigtran) => Some(Class::Sigtran),
        132 => Some(Class::Sctp),
        _ => None,
    }
}

/// A bounded table keyed by flow, with a per-peer quota and least-recently-used eviction of the
/// peer that holds most (review M2: one peer never flushes another's state).
struct PeerTable<K, V> {
    /// key → (peer id, last use tick, uses, value)
    map: HashMap<K, (u32, u64, u64, V)>,
    /// Entries evicted to make room, since creation.
    evicted: u64,
    per_peer: HashMap<u32, usize>,
    tick: u64,
    max: usize,
    max_per_peer: usize,
}

impl<K: std::hash::Hash + Eq + Copy, V> PeerTable<K, V> {
    fn new(max: usize, max_per_peer: usize) -> Self {
        PeerTable { map: HashMap::new(), evicted: 0, per_peer: HashMap::new(), tick: 0, max, max_per_peer }
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        let (peer, _, _, v) = self.map.remove(k)?;
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some(v)
    }

    /// The entry to evict: the least recently used of those used once (a forged packet per
    /// 5-tuple makes such entries: 512 of them must not push a live association or connection
    /// out, which a forger could then re-learn with his own tag or sequence, review gap 2), else
    /// the least recently used.
    fn lru(&self, peer: Option<u32>) -> Option<K> {
        self.map
            .iter()
            .filter(|(_, (p, _, _, _))| peer.is_none_or(|q| *p == q))
            .min_by_key(|(_, (_, t, uses, _))| (*uses > 1, *t))
            .map(|(k, _)| *k)
    }

    fn get_or_insert_with(&mut self, peer: u32, k: K, new: impl FnOnce() -> V) -> &mut V {
        self.tick += 1;
        if !self.map.contains_key(&k) {
            if self.per_peer.get(&peer).is_some_and(|n| *n >= self.max_per_peer)
                && let Some(old) = self.lru(Some(peer))
            {
                self.remove(&old);
                self.evicted += 1;
            }
            if self.map.len() >= self.max {
                let biggest = self.per_peer.iter().max_by_key(|(_, n)| **n).map(|(p, _)| *p);
                if let Some(old) = self.lru(biggest) {
                    self.remove(&old);
                    self.evicted += 1;
                }
            }
            self.map.insert(k, (peer, self.tick, 0, new()));
            *self.per_peer.entry(peer).or_default() += 1;
        }
        let e = self.map.get_mut(&k).expect("inserted above");
        e.1 = self.tick;
        e.2 += 1;
        &mut e.3
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|(_, _, _, v)| v)
    }
}

/// One direction of an SCTP association as seen from the copies: its verification tag, and
/// whether that was learned from the handshake (INIT-ACK or COOKIE-ECHO) or from the first
/// packet seen of an association older than the daemon.
#[derive(Clone, Copy, Debug)]
struct AssocTag {
    vtag: u32,
    handshake: bool,
    /// The association's tag (packets with it are verified), or a candidate offered by a
    /// handshake while a confirmed tag was alive (unverified until that one goes stale).
    confirmed: bool,
    /// When a packet last carried this tag.
    last_ns: u64,
}

/// Tags remembered at once for one direction of an association: the live one and candidates the
/// handshakes seen since offered (a restart, or a forged COOKIE-ECHO, which we cannot tell
/// apart from a real one without the cookie's key: candidates stay unverified while the live
/// tag is in use).
pub const MAX_SCTP_TAGS: usize = 4;

/// A tag not seen for this long (heartbeats come every 30 s by default, RFC 9260 §16) belongs to
/// an association that is gone without our seeing its end (a lost copy): the next valid packet
/// with another tag starts the association's successor. A forger cannot use this while the real
/// association is alive, because the real packets keep the tag fresh.
pub const SCTP_TAG_STALE_NS: u64 = 90_000_000_000;

type Ports4 = (IpAddr, u16, IpAddr, u16);

/// One direction of a TCP connection: the byte stream and the Diameter messages in it.
struct TcpConn {
    stream: tcp::TcpReassembler,
    diameter: StreamReassembler,
}

/// The inspection state: reassembly per association/connection, rules, counters.
pub struct Engine {
    pub rules: RuleSet,
    sctp: sctp::Reassembler,
    sctp_tags: PeerTable<Ports4, Vec<AssocTag>>,
    sigtran: ss7::Decoder,
    tcp: PeerTable<FlowKey, TcpConn>,
    frags: ipfrag::Defragmenter,
    pub counters: Counters,
    /// Check IPv4 header, UDP and TCP checksums and the SCTP CRC32c (default). Frames from the
    /// wire carry correct ones; captures taken on a sending host with checksum offload do not,
    /// and only the tests that read such captures turn this off.
    pub verify_checksums: bool,
    /// The time of the packet being inspected (XDP's clock).
    now_ns: u64,
    /// Subscriber state and the stateful rules' memory (`plausibility`, `sms`, `correlation`).
    pub state: plausibility::State,
    /// In path: the identity blocks shared by the workers; `block` then stops the message and
    /// blocks its sender ([`identity`]). `None` in host mode, where `block` takes the flow.
    pub identities: Option<std::sync::Arc<identity::Blocks>>,
}

/// A decoded message, before the rules.
enum Message {
    Sigtran(ss7::SigtranMessage),
    Diameter(diameter::DiameterMessage),
    Gtpc(gtp::GtpcMessage),
    Gtpu(gtp::GtpuMessage),
}

/// What an event says about the message or anomaly its finding is on.
#[derive(Clone, Copy)]
struct About<'a> {
    protocol: &'a str,
    auth: Auth,
    ids: &'a identity::Identities,
}

/// What a message says about who sent it and whom it is about ([`identity`]).
fn identities(m: &Message, frame: &Frame<'_>) -> identity::Identities {
    use identity::Identity;
    let imsi = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(|s| Identity::Imsi(s.to_string()));
    match m {
        Message::Sigtran(s) => identity::Identities {
            sender: s
                .sccp
                .as_ref()
                .and_then(|c| c.calling.digits())
                .filter(|d| !d.is_empty())
                .map(|d| Identity::CallingGt(d.to_string())),
            imsi: imsi(s.imsi()),
        },
        Message::Diameter(d) => identity::Identities {
            sender: d
                .origin_host
                .clone()
                .map(Identity::OriginHost)
                .or_else(|| d.origin_realm.clone().map(Identity::OriginRealm)),
            // S6a and SLh carry the IMSI in User-Name; other applications carry other names.
            imsi: imsi(
                d.user_name.as_deref().filter(|u| (6..=15).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_digit())),
            ),
        },
        Message::Gtpc(g) => {
            identity::Identities { sender: Some(Identity::GtpcNode(frame.src)), imsi: imsi(g.imsi.as_deref()) }
        }
        Message::Gtpu(_) => identity::Identities::default(),
    }
}

fn err_detail(e: &DecodeError) -> Value {
    json!({"layer": e.layer().name(), "error": e.to_string()})
}

impl Engine {
    pub fn new(rules: RuleSet) -> Engine {
        let subs = crate::subscriber::Subscribers::in_memory(rules.subscriber.capacity);
        Engine::with_state(rules, std::sync::Arc::new(std::sync::Mutex::new(subs)))
    }

    /// An engine on a given subscriber store (the daemon's: snapshot, Redis, shared with the
    /// control socket).
    pub fn with_state(
        rules: RuleSet,
        subscribers: std::sync::Arc<std::sync::Mutex<crate::subscriber::Subscribers>>,
    ) -> Engine {
        Engine {
            state: plausibility::State::new(subscribers),
            identities: None,
            rules,
            sctp: sctp::Reassembler::new(),
            sctp_tags: PeerTable::new(MAX_SCTP_ASSOCS, MAX_SCTP_ASSOCS_PER_PEER),
            sigtran: ss7::Decoder::new(),
            tcp: PeerTable::new(MAX_TCP_STREAMS, MAX_TCP_STREAMS_PER_PEER),
            frags: ipfrag::Defragmenter::new(),
            counters: Counters::default(),
            verify_checksums: true,
            now_ns: 0,
        }
    }

    fn error(&mut self, e: &DecodeError) {
        *self.counters.decode_errors.entry(e.kind()).or_default() += 1;
    }

    fn count(&mut self, kind: &str) {
        *self.counters.decode_errors.entry(kind.to_string()).or_default() += 1;
    }

    /// Inspect one flagged packet. `peer` is the sending peer's inspection settings, `monitor`
    /// whether its effective mode is monitor (blocks become alerts).
    pub fn inspect(&mut self, f: &Flagged<'_>, peer: &PeerInspect, monitor: bool) -> Vec<Event> {
        let events = self.inspect_one(f, peer, monitor);
        self.count_evictions();
        events
    }

    /// Copy the tables' eviction counts into the counters.
    fn count_evictions(&mut self) {
        let e = &mut self.counters.state_evicted;
        for (table, n) in [
            ("sctp", self.sctp.evicted.count),
            ("ip_fragments", self.frags.evicted.count),
            ("sccp_segments", self.sigtran.segments().evicted.count),
            ("sctp_tags", self.sctp_tags.evicted),
            ("tcp", self.tcp.evicted),
        ] {
            if n != 0 {
                e.insert(table, n);
            }
        }
    }

    /// [`Engine::inspect`] on a frame the caller has already parsed from `f.data` (the in-path
    /// worker needs the flow before judging: parsing twice was a tenth of a message's cost).
    pub fn inspect_parsed(
        &mut self,
        f: &Flagged<'_>,
        frame: Frame<'_>,
        peer: &PeerInspect,
        monitor: bool,
    ) -> Vec<Event> {
        self.counters.packets += 1;
        self.now_ns = f.ts_ns;
        let events = if f.dropped {
            self.counters.first_pass_dropped += 1;
            vec![]
        } else {
            self.inspect_frame(f, frame, peer, monitor)
        };
        self.count_evictions();
        events
    }

    fn inspect_one(&mut self, f: &Flagged<'_>, peer: &PeerInspect, monitor: bool) -> Vec<Event> {
        self.counters.packets += 1;
        self.now_ns = f.ts_ns;
        if f.dropped {
            self.counters.first_pass_dropped += 1;
            return vec![];
        }
        match parse_frame(f.data) {
            Ok(frame) => self.inspect_frame(f, frame, peer, monitor),
            Err(e) => {
                self.error(&e);
                vec![]
            }
        }
    }

    fn inspect_frame(
        &mut self,
        f: &Flagged<'_>,
        mut frame: Frame<'_>,
        peer: &PeerInspect,
        monitor: bool,
    ) -> Vec<Event> {
        if !self.verify_checksums {
            frame.ip_ok = true;
            frame.udp_ok = None;
            frame.truncated = true;
            if let Some(t) = &mut frame.tcp {
                t.checksum_ok = None;
            }
        }
        if !frame.ip_ok {
            // The receiver drops it: nothing it carries reaches anyone.
            self.count("ip.bad_checksum");
            return vec![];
        }
        let mut outs = Vec::new();
        let datagram;
        let reassembled = frame.frag.is_some();
        let frame = match frame.frag {
            None => frame,
            Some(fi) => {
                let key = ipfrag::FragKey { src: frame.src, dst: frame.dst, proto: frame.proto, id: fi.id };
                let piece = ipfrag::Fragment { offset: fi.offset, more: fi.more, data: frame.payload };
                match self.frags.push(f.peer_id, key, piece, f.ts_ns) {
                    ipfrag::Defragged::Complete(bytes) => {
                        datagram = bytes;
                        transport(frame.src, frame.dst, frame.proto, &datagram, false, true)
                    }
                    ipfrag::Defragged::Pending | ipfrag::Defragged::Duplicate => return vec![],
                    ipfrag::Defragged::Inconsistent(what) => {
                        self.count("ip.fragments_inconsistent");
                        let d = json!({"what": what, "ip_id": fi.id});
                        // Fragments carry no proof of their sender (no tag, no sequence, no
                        // checksum over the datagram yet): reported, never a block (gap 2).
                        outs.push(Out::Anomaly(RuleId::TransportInconsistent, d, Auth::No(IP_FRAGMENTS_UNPROVEN)));
                        // A first fragment carries the transport header: the event (and the
                        // block) name the flow; a later one only the addresses.
                        let head = if fi.offset == 0 {
                            transport(frame.src, frame.dst, frame.proto, frame.payload, true, true)
                        } else {
                            frame.clone()
                        };
                        return self.judge(f, &head, outs, peer, monitor);
                    }
                    ipfrag::Defragged::Limit(what) => {
                        self.count("ip.fragments_limit");
                        let d = json!({"layer": "ip", "error": format!("fragment reassembly: {what}")});
                        outs.push(Out::Anomaly(RuleId::UndecodableSignaling, d, Auth::No(IP_FRAGMENTS_UNPROVEN)));
                        return self.judge(f, &frame, outs, peer, monitor);
                    }
                }
            }
        };
        // A reassembled datagram's class is what its transport says: XDP classed only its
        // first fragment by ports, the later ones not at all.
        let class = if reassembled { datagram_class(&self.rules.ports, &frame).unwrap_or(f.class) } else { f.class };
        self.decode(&frame, class, f.peer_id, &mut outs);
        self.judge(f, &frame, outs, peer, monitor)
    }

    /// In path: the sequence number where the bytes of a Diameter-over-TCP direction that no
    /// judged message covers begin (an incomplete message's first byte, or the next byte
    /// expected); everything from there on may still turn out to belong to a blocked message.
    /// `None` while the stream has no known start.
    pub fn tcp_unjudged_from(&self, key: &FlowKey) -> Option<u32> {
        let c = self.tcp.get(key)?;
        Some(c.stream.next_seq()?.wrapping_sub(c.diameter.pending() as u32))
    }

    /// The report of `denied` copies of a peer's passed packets that XDP could not make (its
    /// copy budget spent, the ring full, frames beyond the snap length) since the last look.
    /// XDP already acted on each packet: dropped it as `inspect_overload`, or, for a peer with
    /// `on_overload = "fail-open"` (or in monitor mode), let it through uninspected. The event
    /// says which, so an uninspected message is never silent (review C6, issue 10 item 5).
    pub fn overload(&mut self, peer: &str, denied: u64, fail_open: bool, monitor: bool, now_ns: u64) -> Value {
        *self.counters.over_budget.entry(peer.to_string()).or_default() += denied;
        *self.counters.rule_hits.entry(RuleId::InspectionOverload.name()).or_default() += 1;
        self.counters.events += 1;
        let passed = fail_open || monitor;
        json!({
            "time_ns": now_ns,
            "peer": peer,
            "rule": RuleId::InspectionOverload.name(),
            "decision": if passed { "passed uninspected" } else { "dropped" },
            "action": if passed { "none" } else { "xdp-drop" },
            "on_overload": if fail_open { "fail-open" } else { "fail-closed" },
            "monitor": monitor,
            "fields": {
                "copies_denied": denied,
                "what": "copies of this peer's passed signaling were not made (inspect_budget_pps spent, ring full, or beyond the snap length)",
            },
        })
    }

    fn judge(
        &mut self,
        f: &Flagged<'_>,
        frame: &Frame<'_>,
        outs: Vec<Out>,
        peer: &PeerInspect,
        monitor: bool,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for o in outs {
            let (mut findings, summary, auth) = match &o {
                Out::Msg(m, auth) => {
                    self.counters.messages += 1;
                    match m.as_ref() {
                        Message::Sigtran(s) => (self.rules.sigtran(s, peer), "sigtran", *auth),
                        Message::Diameter(d) => (self.rules.diameter(d, peer), "diameter", *auth),
                        Message::Gtpc(g) => (self.rules.gtpc(g, peer), "gtp-c", *auth),
                        Message::Gtpu(u) => (self.rules.gtpu(u, peer), "gtp-u", *auth),
                    }
                }
                Out::Anomaly(rule, detail, auth) => (self.rules.anomaly(*rule, detail.clone()), "transport", *auth),
            };
            // The stateful rules read and feed the subscriber state: only from packets proven to
            // be their association's or connection's, so a forged one cannot plant a
            // registration (review H7 applied to the state).
            if let Out::Msg(m, Auth::Yes) = &o {
                self.stateful(m, &f.peer, peer, &mut findings);
            }
            let ids = match &o {
                Out::Msg(m, _) => identities(m, frame),
                Out::Anomaly(..) => identity::Identities::default(),
            };
            // In path, a message from a blocked identity is stopped whatever it carries.
            if let Some(blocks) = &self.identities
                && let Some(b) = blocks.blocked(f.peer_id, &ids, f.ts_ns)
            {
                self.rules.hit(RuleId::IdentityBlocked, b.json(), &mut findings);
            }
            for fi in findings {
                *self.counters.rule_hits.entry(fi.rule.name()).or_default() += 1;
                self.counters.events += 1;
                if auth != Auth::Yes {
                    self.counters.spoofed += 1;
                }
                events.push(self.event(f, frame, fi, monitor, &About { protocol: summary, auth, ids: &ids }));
            }
        }
        self.state_notices(f, &mut events);
        events
    }

    /// The stateful rules on one decoded message (they also feed the subscriber state).
    fn stateful(&mut self, m: &Message, peer_name: &str, peer: &PeerInspect, out: &mut Vec<Finding>) {
        if !self.rules.subscriber.enabled {
            return;
        }
        match m {
            Message::Sigtran(s) => plausibility::sigtran(&mut self.state, &self.rules, s, peer_name, peer, out),
            Message::Diameter(d) => plausibility::diameter(&mut self.state, &self.rules, d, peer_name, peer, out),
            Message::Gtpc(g) => plausibility::gtpc(&mut self.state, &self.rules, g, peer_name, peer, out),
            Message::Gtpu(_) => {}
        }
        // TPDU decoding errors are decoder errors like any other; the rest (a Category 3
        // operation with no IMSI) stays in the state's own counters.
        for (kind, n) in self.state.unjudged.iter_mut().filter(|(k, _)| k.starts_with("sms.")) {
            *self.counters.decode_errors.entry(kind.to_string()).or_default() += std::mem::take(n);
        }
    }

    /// The subscriber store's notices (Redis lost or back) as events.
    fn state_notices(&mut self, f: &Flagged<'_>, events: &mut Vec<Event>) {
        let notices = self.state.subs().take_notices();
        for n in notices {
            *self.counters.rule_hits.entry("subscriber-state").or_default() += 1;
            self.counters.events += 1;
            events.push(Event {
                json: json!({
                    "time_ns": f.ts_ns, "rule": "subscriber-state", "event": n.kind, "action": "alert",
                    "decision": "alerted", "fields": n.detail,
                }),
                action: Action::Alert,
            });
        }
    }

    fn event(&self, f: &Flagged<'_>, frame: &Frame<'_>, fi: Finding, monitor: bool, about: &About<'_>) -> Event {
        let About { protocol, auth, ids } = *about;
        let configured = fi.action;
        // A packet not proven to be the association's or connection's never installs a block:
        // anyone can forge one with a partner's address (review H7).
        // learn and alert modes never block; monitor mode neither.
        let observe = monitor || fi.mode != RuleMode::Enforce;
        let action = match (configured, observe, auth) {
            (_, true, _) | (RuleAction::Alert, _, _) | (_, _, Auth::No(_)) => Action::Alert,
            (RuleAction::BlockFlow, false, Auth::Yes) => {
                Action::BlockFlow { key: frame.flow_key(), ttl_s: fi.ttl_s, rule: fi.rule }
            }
            (RuleAction::BlockPeer, false, Auth::Yes) => {
                Action::BlockPeer { peer_id: f.peer_id, ttl_s: fi.ttl_s, rule: fi.rule }
            }
            // Host mode: a copy cannot be stopped and XDP reads no identities; contain by flow.
            (RuleAction::Block, false, Auth::Yes) if self.identities.is_none() => {
                Action::BlockFlow { key: frame.flow_key(), ttl_s: fi.ttl_s, rule: fi.rule }
            }
            (RuleAction::Block, false, Auth::Yes) => {
                // A message from a blocked identity is stopped; its block is not extended.
                let identity = match fi.rule {
                    RuleId::IdentityBlocked => None,
                    _ => ids.pick(fi.identity).cloned(),
                };
                if let (Some(id), Some(blocks)) = (&identity, &self.identities) {
                    blocks.install(f.peer_id, id.clone(), fi.ttl_s, fi.rule, f.ts_ns);
                }
                Action::BlockMessage { key: frame.flow_key(), identity, ttl_s: fi.ttl_s, rule: fi.rule }
            }
        };
        let taken = match action {
            Action::Alert => "alert",
            Action::BlockFlow { .. } => "block-flow",
            Action::BlockPeer { .. } => "block-peer",
            Action::BlockMessage { identity: Some(_), .. } => "block-identity",
            Action::BlockMessage { identity: None, .. } => "block-message",
        };
        let decision = match (fi.mode, &action) {
            (RuleMode::Learn, _) => "learned",
            (_, Action::Alert) => "alerted",
            _ => "blocked",
        };
        let mut detail = fi.detail;
        if self.rules.subscriber.mask_identities {
            plausibility::mask_identities(&mut detail);
        }
        let mut json = json!({
            "time_ns": f.ts_ns,
            "peer": f.peer,
            "rule": fi.rule.name(),
            "mode": fi.mode.name(),
            "decision": decision,
            "action": taken,
            "configured_action": configured.name(),
            "monitor": monitor,
            "ttl_s": if matches!(action, Action::Alert) { None } else { Some(fi.ttl_s) },
            "protocol": protocol,
            "xdp": {"class": f.class.name(), "reason": f.reason, "dropped": f.dropped},
            "flow": {"src": frame.src.to_string(), "dst": frame.dst.to_string(), "proto": frame.proto, "sport": frame.sport, "dport": frame.dport},
            "fields": detail,
        });
        if let Action::BlockMessage { identity: Some(id), .. } = &action {
            json["blocked_identity"] = id.json();
        }
        if let Auth::No(why) = auth {
            json["spoofed"] = json!(true);
            json["unverified"] = json!(why);
        }
        Event { json, action }
    }

    fn decode(&mut self, fr: &Frame<'_>, class: Class, peer_id: u32, out: &mut Vec<Out>) {
        match (fr.proto, class) {
            (132, _) => self.decode_sctp(fr, class, peer_id, out),
            (17, Class::GtpC) => {
                // A UDP packet has nothing to authenticate it but its checksum; a bad one is
                // dropped by the receiver.
                if fr.udp_ok == Some(false) {
                    return self.count("udp.bad_checksum");
                }
                match gtp::decode_c_lax(fr.payload) {
                    Ok(l) => {
                        if let Some(e) = &l.stop {
                            self.error(e);
                            out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(e), Auth::Yes));
                        }
                        out.push(Out::Msg(Box::new(Message::Gtpc(l.message)), Auth::Yes));
                    }
                    Err(e) => {
                        self.error(&e);
                        out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(&e), Auth::Yes));
                    }
                }
            }
            (17, Class::GtpU) => {
                if fr.udp_ok == Some(false) {
                    return self.count("udp.bad_checksum");
                }
                // GTP-U carries user data: a stop inside it is counted, not an event.
                match gtp::decode_u_lax(fr.payload) {
                    Ok(l) => {
                        if let Some(e) = &l.stop {
                            self.error(e);
                        }
                        out.push(Out::Msg(Box::new(Message::Gtpu(l.message)), Auth::Yes));
                    }
                    Err(e) => self.error(&e),
                }
            }
            (6, _) => self.decode_tcp(fr, class, peer_id, out),
            _ => {}
        }
    }

    /// Whether this SCTP packet is the association's: a valid CRC32c and the verification tag
    /// learned for these addresses and ports.
    ///
    /// What a forger with a partner's address can send, and why it proves nothing (gap 2 of the
    /// review of the merged tree): an INIT (vtag 0, no association yet) proves nothing and
    /// creates no state; a COOKIE-ECHO's cookie is checked by the receiver with a key we do not
    /// have, so while the association's tag is alive a COOKIE-ECHO with another tag is only a
    /// *candidate* (a restart, or a forgery): it and the packets with its tag are unverified
    /// until the old tag has gone stale (the real peer that restarted stops using it; a forger
    /// cannot stop the real peer). With no live tag, the first valid packet teaches the tag (an
    /// association older than the daemon, or a new one).
    fn sctp_auth(&mut self, fr: &Frame<'_>, pkt: &sctp::SctpSlice<'_>, peer_id: u32) -> Auth {
        if !fr.truncated && !pkt.checksum_ok() {
            self.count("sctp.bad_checksum");
            return Auth::No("sctp-checksum");
        }
        let vtag = pkt.verification_tag();
        let mut handshake_chunk = false;
        let mut ends = false;
        for c in pkt.chunks() {
            match c.chunk_type() {
                // Anyone can send one with the partner's address; it must be alone in its
                // packet (RFC 9260 §6.10), so it carries nothing to judge either.
                sctp::CHUNK_INIT => return Auth::No("sctp-init (no association yet)"),
                sctp::CHUNK_INIT_ACK | sctp::CHUNK_COOKIE_ECHO => handshake_chunk = true,
                sctp::CHUNK_ABORT | sctp::CHUNK_SHUTDOWN_COMPLETE => ends = true,
                _ => {}
            }
        }
        let k: Ports4 = (fr.src, fr.sport, fr.dst, fr.dport);
        let (auth, counter, relearned, ended) = Self::sctp_tag_check(
            self.sctp_tags.get_or_insert_with(peer_id, k, Vec::new),
            vtag,
            handshake_chunk,
            ends,
            self.now_ns,
        );
        if relearned {
            self.count("sctp.vtag_relearned");
        }
        if let Some(c) = counter {
            self.count(c);
        }
        if ended {
            let key = sctp::AssocKey { src: fr.src, src_port: fr.sport, dst: fr.dst, dst_port: fr.dport, vtag };
            self.sctp.drop_assoc(&key);
        }
        auth
    }

    /// [`Self::sctp_auth`] on one direction's tags: the verdict, a counter to bump, whether the
    /// confirmed tags were replaced (all stale), whether the association ended (ABORT or
    /// SHUTDOWN COMPLETE with its tag).
    fn sctp_tag_check(
        tags: &mut Vec<AssocTag>,
        vtag: u32,
        handshake_chunk: bool,
        ends: bool,
        now: u64,
    ) -> (Auth, Option<&'static str>, bool, bool) {
        let live = |t: &AssocTag| t.confirmed && now.saturating_sub(t.last_ns) <= SCTP_TAG_STALE_NS;
        let mut relearned = false;
        // Candidates whose confirmed predecessors have all gone stale take their place.
        if !tags.iter().any(live) {
            let before = tags.len();
            tags.retain(|t| !t.confirmed && now.saturating_sub(t.last_ns) <= SCTP_TAG_STALE_NS);
            for t in tags.iter_mut() {
                t.confirmed = true;
            }
            relearned = before != 0;
        }
        if let Some(i) = tags.iter().position(|t| t.vtag == vtag) {
            tags[i].last_ns = now;
            if !tags[i].confirmed {
                let why = "sctp-verification-tag (a new association's, while the old one is alive)";
                return (Auth::No(why), Some("sctp.unconfirmed_vtag"), relearned, false);
            }
            if ends {
                tags.remove(i);
            }
            return (Auth::Yes, None, relearned, ends);
        }
        if tags.is_empty() {
            // No live association known: the first valid packet teaches its tag.
            tags.push(AssocTag { vtag, handshake: handshake_chunk, confirmed: true, last_ns: now });
            return (Auth::Yes, None, relearned, false);
        }
        if handshake_chunk {
            // A restart or a forgery: a candidate, unverified for now. The oldest candidate
            // makes room; the confirmed tag never does.
            if tags.len() >= MAX_SCTP_TAGS
                && let Some(i) =
                    tags.iter().enumerate().filter(|(_, t)| !t.confirmed).min_by_key(|(_, t)| t.last_ns).map(|(i, _)| i)
            {
                tags.swap_remove(i);
            }
            if tags.len() < MAX_SCTP_TAGS {
                tags.push(AssocTag { vtag, handshake: true, confirmed: false, last_ns: now });
            }
            let why = "sctp-handshake (a new tag while the association's is alive)";
            return (Auth::No(why), Some("sctp.unconfirmed_vtag"), relearned, false);
        }
        let why = if tags.iter().any(|t| t.handshake) {
            "sctp-verification-tag"
        } else {
            "sctp-verification-tag (tag learned from the first packet seen)"
        };
        (Auth::No(why), Some("sctp.unknown_vtag"), relearned, false)
    }

    fn decode_sctp(&mut self, fr: &Frame<'_>, class: Class, peer_id: u32, out: &mut Vec<Out>) {
        let (pkt, stop) = match sctp::SctpSlice::from_slice_lax(fr.payload) {
            Ok(p) => p,
            Err(e) => {
                self.error(&e);
                return out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(&e), Auth::Yes));
            }
        };
        // Chunks after a malformed one are what the receiver does not process either: counted.
        if let Some(e) = &stop {
            self.error(e);
        }
        let auth = self.sctp_auth(fr, &pkt, peer_id);
        let key = sctp::AssocKey {
            src: fr.src,
            src_port: fr.sport,
            dst: fr.dst,
            dst_port: fr.dport,
            vtag: pkt.verification_tag(),
        };
        for chunk in pkt.data_chunks() {
            if auth != Auth::Yes {
                // Judged for the report, but it changes no state: a forged copy must not take
                // the real one's place in reassembly or retransmission memory.
                if chunk.beginning() && chunk.ending() {
                    self.user_message(fr, class, chunk.ppid(), chunk.payload(), auth, out);
                } else {
                    self.count("sctp.unverified_fragment");
                }
                continue;
            }
            match self.sctp.feed(peer_id, key, &chunk) {
                Ok(sctp::Fed::Message(m)) => {
                    if m.inconsistent {
                        let d = json!({"what": "fragments of one SCTP message name different streams or PPIDs", "tsn": m.first_tsn});
                        out.push(Out::Anomaly(RuleId::TransportInconsistent, d, auth));
                    }
                    self.user_message(fr, class, m.ppid, &m.data, auth, out);
                }
                Ok(sctp::Fed::Pending | sctp::Fed::Duplicate) => {}
                Ok(sctp::Fed::Conflict { tsn }) => {
                    self.count("sctp.retransmission_conflict");
                    let d = json!({"what": "SCTP retransmission with different content", "tsn": tsn});
                    out.push(Out::Anomaly(RuleId::TransportInconsistent, d, auth));
                }
                Err(e) => {
                    self.error(&e);
                    out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(&e), auth));
                }
            }
        }
    }

    /// One SCTP user message, whatever its PPID (review C5): decoded by every decoder that its
    /// PPID, the configured ports or its own header point to, and judged by every decode that
    /// succeeds; if none does, it is an event, not a silent pass. Only a message that nothing
    /// points to as signaling, on SCTP XDP classed as other SCTP (S1AP, NGAP, X2AP on their own
    /// ports, allowed by the `sctp` wildcard), is counted without an event.
    fn user_message(&mut self, fr: &Frame<'_>, class: Class, ppid: u32, data: &[u8], auth: Auth, out: &mut Vec<Out>) {
        let ports = &self.rules.ports;
        let on = |list: &[u16]| list.contains(&fr.sport) || list.contains(&fr.dport);
        let be = |at: usize, n: usize| -> usize {
            data.get(at..at + n).map_or(usize::MAX, |b| b.iter().fold(0usize, |acc, x| acc << 8 | *x as usize))
        };
        // An adaptation layer header: version 1, reserved 0, class, type, and a message length
        // that is the user message's.
        let xua_header = data.len() >= 8 && data[0] == 1 && data[1] == 0 && be(4, 4) == data.len();
        // A Diameter header: version 1, flags with the reserved bits 0, the message length.
        let dia_header = data.len() >= diameter::HEADER_LEN
            && data[0] == diameter::VERSION
            && data[4] & 0x0f == 0
            && be(1, 3) == data.len();
        let sigtran_ppid = matches!(ppid, sctp::PPID_M2UA..=sctp::PPID_M2PA);
        let xua = if xua_header {
            Some(match data[2] {
                // SUA connectionless/connection-oriented, M2UA MAUP, M2PA: named by the header.
                7 | 8 => sctp::PPID_SUA,
                6 | 10 => sctp::PPID_M2UA,
                11 => sctp::PPID_M2PA,
                _ if sigtran_ppid => ppid,
                _ => sctp::PPID_M3UA,
            })
        } else if sigtran_ppid || on(&ports.sigtran) {
            Some(if sigtran_ppid { ppid } else { sctp::PPID_M3UA })
        } else {
            None
        };
        let dia = dia_header || matches!(ppid, sctp::PPID_DIAMETER | sctp::PPID_DIAMETER_DTLS) || on(&ports.diameter);
        let mut decoded = false;
        let mut errors = Vec::new();
        // An inner length that disagrees with the SCTP user message it came in (review H3:
        // OsmoSTP and freeDiameter parse to the end of the user message, whatever the length
        // field says) makes the message malformed, not shorter: an event, and judged anyway.
        if xua.is_some() && !xua_header && !dia_header {
            errors.push(DecodeError::Content {
                layer: Layer::M3ua,
                what: "message length disagrees with the SCTP user message",
            });
        } else if xua.is_none() && dia && !dia_header {
            errors.push(DecodeError::Content {
                layer: Layer::Diameter,
                what: "message length disagrees with the SCTP user message",
            });
        }
        // Decoded but malformed: judged by the rules and an event as well.
        let mut malformed = !errors.is_empty();
        if let Some(p) = xua {
            match self.sigtran.decode(p, data) {
                Ok(s) => {
                    match &s.stopped {
                        Some(ss7::Stopped::Error(e)) => {
                            self.error(e);
                            errors.push(e.clone());
                        }
                        _ => decoded = true,
                    }
                    // Non-canonical encodings (a global opcode, a long transaction id, an
                    // indefinite length, a non-TBCD IMSI...): decoded as the most permissive
                    // receiver would, so the rules run, and malformed all the same (item 4).
                    for e in &s.anomalies {
                        self.error(e);
                        errors.push(e.clone());
                        malformed = true;
                    }
                    out.push(Out::Msg(Box::new(Message::Sigtran(s)), auth));
                }
                Err(e) => errors.push(e),
            }
        }
        if decoded && dia_header {
            // Both headers fit (an M3UA DATA header reads as a Diameter answer of 257 bytes):
            // a message that is also a whole, clean Diameter message is judged as both.
            if let Ok(d) = diameter::decode(data)
                && d.length as usize == data.len()
            {
                out.push(Out::Msg(Box::new(Message::Diameter(d)), auth));
            }
        } else if dia && !decoded {
            match diameter::decode_lax(data) {
                Ok(l) => {
                    match &l.stop {
                        Some(e) => {
                            // Only a Diameter-looking message counts as a partial Diameter decode.
                            if dia_header {
                                out.push(Out::Msg(Box::new(Message::Diameter(l.message)), auth));
                            }
                            errors.push(e.clone());
                        }
                        None => {
                            decoded = true;
                            out.push(Out::Msg(Box::new(Message::Diameter(l.message)), auth));
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if decoded && !malformed {
            return;
        }
        if errors.is_empty() && class == Class::Sctp {
            return self.count("sctp.not_signaling");
        }
        if errors.is_empty() {
            self.count("sctp.undecoded");
            let d = json!({"layer": "sctp", "error": "payload is neither SIGTRAN nor Diameter", "ppid": ppid});
            return out.push(Out::Anomaly(RuleId::UndecodableSignaling, d, auth));
        }
        for e in &errors {
            self.error(e);
        }
        let mut d = err_detail(&errors[0]);
        d["ppid"] = json!(ppid);
        out.push(Out::Anomaly(RuleId::UndecodableSignaling, d, auth));
    }

    fn decode_tcp(&mut self, fr: &Frame<'_>, class: Class, peer_id: u32, out: &mut Vec<Out>) {
        let Some(t) = fr.tcp else { return };
        let on_diameter = class == Class::Diameter || {
            let p = &self.rules.ports.diameter;
            p.contains(&fr.sport) || p.contains(&fr.dport)
        };
        if !on_diameter {
            return;
        }
        let key = fr.flow_key();
        let auth = if t.checksum_ok == Some(false) {
            self.count("tcp.bad_checksum");
            Auth::No("tcp-checksum")
        } else if self.tcp.get(&key).is_some_and(|c| !c.stream.in_window(t.seq)) {
            self.count("tcp.out_of_window");
            Auth::No("tcp-window")
        } else {
            Auth::Yes
        };
        if auth != Auth::Yes {
            // Judged for the report only: a message that starts the segment.
            if let Ok(l) = diameter::decode_lax(fr.payload) {
                out.push(Out::Msg(Box::new(Message::Diameter(l.message)), auth));
            }
            return;
        }
        let conn = self.tcp.get_or_insert_with(peer_id, key, || TcpConn {
            stream: tcp::TcpReassembler::new(),
            diameter: StreamReassembler::new(),
        });
        let seg = tcp::Segment { seq: t.seq, flags: t.flags, urgent_pointer: t.urgent_pointer, payload: fr.payload };
        // A Diameter message starts with version 1 and a length of at least 20.
        let starts = |p: &[u8]| {
            p.len() >= 4
                && p[0] == diameter::VERSION
                && u32::from_be_bytes([0, p[1], p[2], p[3]]) as usize >= diameter::HEADER_LEN
        };
        let pushed = conn.stream.push_framed(&seg, starts);
        if pushed.reset || pushed.gap {
            conn.diameter = StreamReassembler::new();
        }
        let mut msgs = Vec::new();
        let r = if pushed.deliver.is_empty() {
            Ok(0)
        } else {
            conn.diameter.push(&pushed.deliver, |m| msgs.push(diameter::decode_lax(m)))
        };
        if pushed.urgent {
            self.count("tcp.urgent");
        }
        if pushed.challenged {
            self.count("tcp.challenged");
        }
        if pushed.skipped > 0 {
            self.count("tcp.skipped_before_first_message");
        }
        if pushed.conflict {
            self.count("tcp.overlap_conflict");
            let d = json!({"what": "TCP bytes received twice with different content", "seq": t.seq});
            out.push(Out::Anomaly(RuleId::TransportInconsistent, d, auth));
        }
        if pushed.gap {
            self.count("tcp.gap");
            let d = json!({"layer": "tcp", "error": "out-of-order store full: bytes of the stream were skipped"});
            out.push(Out::Anomaly(RuleId::UndecodableSignaling, d, auth));
        }
        if let Err(e) = r {
            self.error(&e);
            out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(&e), auth));
        }
        for m in msgs {
            match m {
                Ok(l) => {
                    if let Some(e) = &l.stop {
                        self.error(e);
                        out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(e), auth));
                    }
                    // Header-only rules (the command blocklist) still run on a partial decode.
                    out.push(Out::Msg(Box::new(Message::Diameter(l.message)), auth));
                }
                Err(e) => {
                    self.error(&e);
                    out.push(Out::Anomaly(RuleId::UndecodableSignaling, err_detail(&e), auth));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stateful_tests;
