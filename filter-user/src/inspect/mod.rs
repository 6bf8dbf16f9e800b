//! Deep inspection: flagged packets come up from XDP through the ring buffer, are decoded
//! (`filter_dpi`), judged by the rules, and the verdicts go back down as flow blocks or peer
//! quarantines. This module is the pure part: frames in, events and actions out. The daemon
//! feeds it and carries the actions out (`crate::daemon`).

pub mod correlation;
pub mod io;
pub mod plausibility;
pub mod rules;
pub mod sms;

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use filter_common::{Class, FlowKey};
use filter_dpi::{
    DecodeError, Layer,
    diameter::{self, StreamReassembler},
    gtp, sctp, ss7,
};
use serde_json::{Value, json};

use crate::policy::inspect::{PeerInspect, RuleAction, RuleMode};
pub use rules::{Finding, RuleId, RuleSet};

/// Connections whose Diameter-over-TCP byte streams are followed at once; beyond this the
/// oldest (first seen, however busy since) is forgotten (its next message resynchronises).
pub const MAX_TCP_STREAMS: usize = 4096;
/// SCTP associations whose recent TSNs are remembered, to skip retransmitted DATA chunks (a
/// retransmission is the same message, not a second one).
pub const MAX_SCTP_ASSOCS: usize = 4096;
/// TSNs remembered per association.
pub const RECENT_TSNS: usize = 64;

/// The transport view of a copied frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// UDP or TCP payload; for SCTP the whole SCTP packet.
    pub payload: &'a [u8],
    /// Part of a fragmented IP datagram (the payload is incomplete).
    pub fragmented: bool,
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

/// Ethernet (with VLAN tags) → IP → transport, with etherparse's lax slicer (a frame copied
/// up may be cut at the snap length).
pub fn parse_frame(data: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let p = LaxSlicedPacket::from_ethernet(data).map_err(|_| DecodeError::Len {
        layer: Layer::Ip,
        required: 14,
        len: data.len(),
    })?;
    let (src, dst, ip_payload) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), v4.payload())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), v6.payload())
        }
        _ => return Err(DecodeError::Content { layer: Layer::Ip, what: "not IP" }),
    };
    let proto = ip_payload.ip_number.0;
    let fragmented = ip_payload.fragmented;
    let (sport, dport, payload) = match &p.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), u.payload()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port(), t.payload()),
        _ if proto == 132 => {
            let b = ip_payload.payload;
            if b.len() < 4 {
                return Err(DecodeError::Len { layer: Layer::Sctp, required: 4, len: b.len() });
            }
            (u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]]), b)
        }
        _ => (0, 0, ip_payload.payload),
    };
    Ok(Frame { src, dst, proto, sport, dport, payload, fragmented })
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
    BlockFlow { key: FlowKey, ttl_s: u64, rule: RuleId },
    BlockPeer { peer_id: u32, ttl_s: u64, rule: RuleId },
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

    pub fn to_json(&self) -> Value {
        json!({
            "packets": self.packets, "messages": self.messages, "events": self.events,
            "rule_hits": self.rule_hits, "decode_errors": self.decode_errors,
        })
    }
}

/// The inspection state: reassembly per association/connection, rules, counters.
pub struct Engine {
    pub rules: RuleSet,
    sctp: sctp::Reassembler,
    sigtran: ss7::Decoder,
    tcp: HashMap<FlowKey, StreamReassembler>,
    tcp_order: VecDeque<FlowKey>,
    recent_tsns: HashMap<sctp::AssocKey, VecDeque<u32>>,
    pub counters: Counters,
    /// Subscriber state and the stateful rules' memory (`plausibility`, `sms`, `correlation`).
    pub state: plausibility::State,
}

/// A decoded message, before the rules.
enum Message {
    Sigtran(ss7::SigtranMessage),
    Diameter(diameter::DiameterMessage),
    Gtpc(gtp::GtpcMessage),
    Gtpu(gtp::GtpuMessage),
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
            rules,
            sctp: sctp::Reassembler::new(),
            sigtran: ss7::Decoder::new(),
            tcp: HashMap::new(),
            tcp_order: VecDeque::new(),
            recent_tsns: HashMap::new(),
            counters: Counters::default(),
        }
    }

    fn error(&mut self, e: &DecodeError) {
        *self.counters.decode_errors.entry(e.kind()).or_default() += 1;
    }

    /// Inspect one flagged packet. `peer` is the sending peer's inspection settings, `monitor`
    /// whether its effective mode is monitor (blocks become alerts).
    pub fn inspect(&mut self, f: &Flagged<'_>, peer: &PeerInspect, monitor: bool) -> Vec<Event> {
        self.counters.packets += 1;
        let frame = match parse_frame(f.data) {
            Ok(fr) => fr,
            Err(e) => {
                self.error(&e);
                return vec![];
            }
        };
        let messages = self.decode(&frame, f.class);
        let mut events = Vec::new();
        for m in messages {
            self.counters.messages += 1;
            let (mut findings, summary) = match &m {
                Message::Sigtran(s) => (self.rules.sigtran(s, peer), "sigtran"),
                Message::Diameter(d) => (self.rules.diameter(d, peer), "diameter"),
                Message::Gtpc(g) => (self.rules.gtpc(g, peer), "gtp-c"),
                Message::Gtpu(u) => (self.rules.gtpu(u, peer), "gtp-u"),
            };
            self.stateful(&m, &f.peer, peer, &mut findings);
            for fi in findings {
                *self.counters.rule_hits.entry(fi.rule.name()).or_default() += 1;
                self.counters.events += 1;
                events.push(self.event(f, &frame, summary, fi, monitor));
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
            Message::Diameter(d) => plausibility::diameter(&mut self.state, &self.rules, d, peer_name, out),
            Message::Gtpc(g) => plausibility::gtpc(&mut self.state, &self.rules, g, peer_name, out),
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

    fn event(&self, f: &Flagged<'_>, frame: &Frame<'_>, protocol: &str, fi: Finding, monitor: bool) -> Event {
        let configured = fi.action;
        // learn and alert modes never block; monitor mode neither.
        let action = match (configured, monitor || fi.mode != RuleMode::Enforce) {
            (_, true) | (RuleAction::Alert, _) => Action::Alert,
            (RuleAction::BlockFlow, false) => {
                Action::BlockFlow { key: frame.flow_key(), ttl_s: fi.ttl_s, rule: fi.rule }
            }
            (RuleAction::BlockPeer, false) => Action::BlockPeer { peer_id: f.peer_id, ttl_s: fi.ttl_s, rule: fi.rule },
        };
        let taken = match action {
            Action::Alert => "alert",
            Action::BlockFlow { .. } => "block-flow",
            Action::BlockPeer { .. } => "block-peer",
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
        let json = json!({
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
        Event { json, action }
    }

    fn decode(&mut self, fr: &Frame<'_>, class: Class) -> Vec<Message> {
        let mut out = Vec::new();
        match (fr.proto, class) {
            (132, _) => self.decode_sctp(fr, &mut out),
            (17, Class::GtpC) => match gtp::decode_c_lax(fr.payload) {
                Ok(l) => {
                    if let Some(e) = &l.stop {
                        self.error(e);
                    }
                    out.push(Message::Gtpc(l.message));
                }
                Err(e) => self.error(&e),
            },
            (17, Class::GtpU) => match gtp::decode_u_lax(fr.payload) {
                Ok(l) => {
                    if let Some(e) = &l.stop {
                        self.error(e);
                    }
                    out.push(Message::Gtpu(l.message));
                }
                Err(e) => self.error(&e),
            },
            (6, Class::Diameter) => self.decode_tcp_diameter(fr, &mut out),
            _ => {}
        }
        out
    }

    fn decode_sctp(&mut self, fr: &Frame<'_>, out: &mut Vec<Message>) {
        let pkt = match sctp::SctpSlice::from_slice(fr.payload) {
            Ok(p) => p,
            Err(e) => return self.error(&e),
        };
        let key = sctp::AssocKey {
            src: fr.src,
            src_port: fr.sport,
            dst: fr.dst,
            dst_port: fr.dport,
            vtag: pkt.verification_tag(),
        };
        // I-DATA (RFC 8260) is not decoded: say so in the counters rather than skip silently.
        if pkt.chunks().any(|c| c.chunk_type() == sctp::CHUNK_I_DATA) {
            self.error(&DecodeError::Content { layer: Layer::Sctp, what: "I-DATA chunks are not decoded" });
        }
        for chunk in pkt.data_chunks() {
            if self.seen_tsn(&key, chunk.tsn()) {
                continue;
            }
            let msg = match self.sctp.push(key, &chunk) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    self.error(&e);
                    continue;
                }
            };
            match msg.ppid {
                sctp::PPID_M2UA | sctp::PPID_M3UA | sctp::PPID_SUA | sctp::PPID_M2PA => {
                    match self.sigtran.decode(msg.ppid, &msg.data) {
                        Ok(s) => out.push(Message::Sigtran(s)),
                        Err(e) => self.error(&e),
                    }
                }
                sctp::PPID_DIAMETER | sctp::PPID_DIAMETER_DTLS => match diameter::decode(&msg.data) {
                    Ok(d) => out.push(Message::Diameter(d)),
                    Err(e) => self.error(&e),
                },
                // PPID 0 on a Diameter port is Diameter by convention.
                sctp::PPID_UNSPECIFIED if fr.sport == diameter::PORT || fr.dport == diameter::PORT => {
                    match diameter::decode(&msg.data) {
                        Ok(d) => out.push(Message::Diameter(d)),
                        Err(e) => self.error(&e),
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether this TSN was seen recently on this association (then it is a retransmission).
    fn seen_tsn(&mut self, key: &sctp::AssocKey, tsn: u32) -> bool {
        if !self.recent_tsns.contains_key(key) && self.recent_tsns.len() >= MAX_SCTP_ASSOCS {
            // Forget everything rather than track an unbounded number of associations; the
            // cost is at most one duplicate message per association.
            self.recent_tsns.clear();
        }
        let q = self.recent_tsns.entry(*key).or_default();
        if q.contains(&tsn) {
            return true;
        }
        if q.len() >= RECENT_TSNS {
            q.pop_front();
        }
        q.push_back(tsn);
        false
    }

    fn decode_tcp_diameter(&mut self, fr: &Frame<'_>, out: &mut Vec<Message>) {
        if fr.payload.is_empty() {
            return;
        }
        let key = fr.flow_key();
        if !self.tcp.contains_key(&key) {
            if self.tcp.len() >= MAX_TCP_STREAMS
                && let Some(old) = self.tcp_order.pop_front()
            {
                self.tcp.remove(&old);
            }
            self.tcp.insert(key, StreamReassembler::new());
            self.tcp_order.push_back(key);
        }
        let mut msgs = Vec::new();
        let r = self.tcp.get_mut(&key).expect("inserted above").push(fr.payload, |m| msgs.push(diameter::decode(m)));
        if let Err(e) = r {
            self.error(&e);
        }
        for m in msgs {
            match m {
                Ok(d) => out.push(Message::Diameter(d)),
                Err(e) => self.error(&e),
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stateful_tests;
