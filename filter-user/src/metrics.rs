//! Prometheus metrics: the text exposition format (version 0.0.4) on `GET /metrics`, opt-in with
//! `sigwall run --metrics [addr:port]` (default 127.0.0.1:9469, never a wildcard unless asked).

use std::{fmt::Write as _, sync::Arc, time::Duration};

use filter_common::{Class, Reason};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use crate::{
    daemon::{
        inspection::CountersReader,
        state::{SharedFacts, lock},
    },
    loader::AttachMode,
    stats::Snapshot,
};

pub const DEFAULT_ADDR: &str = "127.0.0.1:9469";
/// Longest request head read; the endpoint answers GET only.
const MAX_REQUEST: usize = 8192;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let l: Vec<String> = labels.iter().map(|(k, val)| format!("{k}=\"{}\"", esc(val))).collect();
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

/// What the endpoint reads, none of it under the control state's lock: the counters from the
/// pins, the policy facts the state publishes, deep inspection's counters.
pub struct Sources {
    iface: String,
    mode: AttachMode,
    facts: SharedFacts,
    inspection: CountersReader,
}

impl Sources {
    pub fn new(iface: String, mode: AttachMode, facts: SharedFacts, inspection: CountersReader) -> Sources {
        Sources { iface, mode, facts, inspection }
    }
}

/// Everything the daemon knows, as one exposition.
pub fn render(src: &Sources) -> String {
    let mut o = Out(String::new());
    let snap: Option<Snapshot> = crate::stats::of_pins(&src.iface).ok();
    let facts = lock(&src.facts).clone();
    if let Some(s) = &snap {
        o.head("sigwall_packets_total", "counter", "Packets judged by the XDP program, by verdict reason and class.");
        for r in Reason::ALL {
            for c in Class::ALL {
                o.sample(
                    "sigwall_packets_total",
                    &[("reason", r.name()), ("class", c.name())],
                    s.cells[r as usize][c as usize].packets,
                );
            }
        }
        o.head("sigwall_bytes_total", "counter", "Bytes judged by the XDP program, by verdict reason and class.");
        for r in Reason::ALL {
            for c in Class::ALL {
                o.sample(
                    "sigwall_bytes_total",
                    &[("reason", r.name()), ("class", c.name())],
                    s.cells[r as usize][c as usize].bytes,
                );
            }
        }
        o.head(
            "sigwall_peer_packets_total",
            "counter",
            "Signaling packets by peer and action ((unknown): sources in no peer).",
        );
        for p in &s.peers {
            o.sample("sigwall_peer_packets_total", &[("peer", &p.name), ("action", "pass")], p.passed);
            o.sample("sigwall_peer_packets_total", &[("peer", &p.name), ("action", "drop")], p.dropped);
        }
        o.head("sigwall_peer_bytes_total", "counter", "Signaling bytes by peer.");
        for p in &s.peers {
            o.sample("sigwall_peer_bytes_total", &[("peer", &p.name)], p.bytes);
        }
        if let Some(inpath) = &s.inpath {
            o.head(
                "sigwall_inpath_packets_total",
                "counter",
                "In-path mode: frames by where they went after the first pass (forwarded, from_core, no_port, to_daemon, fail_open, fail_closed).",
            );
            for (n, c) in inpath {
                o.sample("sigwall_inpath_packets_total", &[("what", n)], c.packets);
            }
            o.head("sigwall_inpath_bytes_total", "counter", "In-path mode: bytes, as sigwall_inpath_packets_total.");
            for (n, c) in inpath {
                o.sample("sigwall_inpath_bytes_total", &[("what", n)], c.bytes);
            }
        }
        if let Some(c) = &s.source_cache {
            o.head(
                "sigwall_source_cache_misses_total",
                "counter",
                "LPM trie walks of the XDP program's source lookup: sources its per-CPU source cache did not hold for this policy generation (a source's first packet per CPU after each policy change or program load; a spoofed flood), or every lookup when the cache is off (PREEMPT_RT).",
            );
            o.sample("sigwall_source_cache_misses_total", &[], c.misses);
            o.head(
                "sigwall_source_cache_kept_total",
                "counter",
                "Misses answered \"no peer\" that left a peer's cache slot in place (a source in no peer hashed to a partner's slot).",
            );
            o.sample("sigwall_source_cache_kept_total", &[], c.kept);
        }
        o.head("sigwall_policy_generation", "gauge", "Policy generation the XDP program reads.");
        o.sample("sigwall_policy_generation", &[], s.generation);
    }
    o.head(
        "sigwall_policy_last_change_timestamp_seconds",
        "gauge",
        "When the last policy change was tried (Unix time).",
    );
    o.sample("sigwall_policy_last_change_timestamp_seconds", &[], facts.last_change.at_s);
    o.head("sigwall_policy_last_change_success", "gauge", "1 if the last policy change was applied, 0 if rejected.");
    o.sample("sigwall_policy_last_change_success", &[], facts.last_change.applied as u8);

    let (v4, v6) = (facts.prefixes_v4, facts.prefixes_v6);
    let crate::inspect::io::PinnedCounters {
        flagged,
        overflow,
        truncated,
        budget,
        drop_skipped,
        flows_blocked: flows,
        peers_blocked,
    } = crate::inspect::io::counters_of_pins(&src.iface).unwrap_or_default();
    o.head("sigwall_map_entries", "gauge", "Entries in the BPF maps that fill up (active generation for the policy).");
    o.head("sigwall_map_capacity", "gauge", "Capacity of those maps.");
    for (m, n, cap) in [
        ("peers_v4", v4 as u64, filter_common::DEFAULT_PREFIX_CAPACITY as u64),
        ("peers_v6", v6 as u64, filter_common::DEFAULT_PREFIX_CAPACITY as u64),
        ("peer_policy", facts.peers as u64, filter_common::MAX_PEERS as u64 - 1),
        ("flow_verdicts", flows as u64, filter_common::maps::FLOW_VERDICTS_CAPACITY as u64),
    ] {
        o.sample("sigwall_map_entries", &[("map", m)], n);
        o.sample("sigwall_map_capacity", &[("map", m)], cap);
    }
    o.head("sigwall_blocked_peers", "gauge", "Peers quarantined by deep inspection now.");
    o.sample("sigwall_blocked_peers", &[], peers_blocked);
    o.head("sigwall_xdp_attach_info", "gauge", "The interface and XDP attach mode (always 1).");
    o.sample("sigwall_xdp_attach_info", &[("iface", &src.iface), ("mode", &src.mode.to_string())], 1);

    let c = &src.inspection.get();
    o.head("sigwall_inspect_flagged_total", "counter", "Packets copied to deep inspection.");
    o.sample("sigwall_inspect_flagged_total", &[], flagged);
    o.head("sigwall_inspect_overflow_total", "counter", "Packets not copied because the ring buffer was full.");
    o.sample("sigwall_inspect_overflow_total", &[], overflow);
    o.head(
        "sigwall_inspect_copies_not_made_total",
        "counter",
        "Copies to deep inspection not made whole, by why (a passed packet among them is dropped as inspect_overload unless its peer fails open).",
    );
    for (why, n) in [("truncated", truncated), ("budget", budget), ("drop_skipped", drop_skipped)] {
        o.sample("sigwall_inspect_copies_not_made_total", &[("why", why)], n);
    }
    if snap.as_ref().is_some_and(|s| s.inpath.is_some()) {
        let ip = src.inspection.inpath();
        o.head(
            "sigwall_inpath_daemon_frames_total",
            "counter",
            "In-path mode: frames the AF_XDP workers took, by what became of them (received, forwarded, dropped by a rule, blocked but forwarded, uninspected forwarded or dropped by on_overload, and why not judged).",
        );
        let v = serde_json::to_value(ip).unwrap_or_default();
        if let Some(m) = v.as_object() {
            for (k, n) in m {
                o.sample("sigwall_inpath_daemon_frames_total", &[("what", k)], n);
            }
        }
        let b = src.inspection.identity_blocks();
        o.head(
            "sigwall_identity_blocks",
            "gauge",
            "In-path mode: identity blocks in force (calling GT, Origin-Host/Realm, GTP-C node, IMSI).",
        );
        o.sample("sigwall_identity_blocks", &[], b.active);
        o.head(
            "sigwall_identity_blocks_total",
            "counter",
            "In-path mode: identity blocks installed, evicted before their TTL (table full), and messages stopped by one.",
        );
        for (what, n) in [("installed", b.installed), ("evicted", b.evicted), ("stopped", b.stopped)] {
            o.sample("sigwall_identity_blocks_total", &[("what", what)], n);
        }
    }
    o.head("sigwall_inspect_messages_total", "counter", "Signaling messages decoded.");
    o.sample("sigwall_inspect_messages_total", &[], c.messages);
    o.head("sigwall_inspect_events_total", "counter", "Rule findings reported.");
    o.sample("sigwall_inspect_events_total", &[], c.events);
    o.head("sigwall_inspect_rule_hits_total", "counter", "Findings by rule.");
    for r in crate::inspect::RuleId::ALL.map(crate::inspect::RuleId::name) {
        o.sample("sigwall_inspect_rule_hits_total", &[("rule", r)], c.rule_hits.get(r).copied().unwrap_or(0));
    }
    o.head("sigwall_inspect_decode_errors_total", "counter", "Decoder errors by layer and kind.");
    let mut kinds: Vec<_> = c.decode_errors.iter().collect();
    kinds.sort();
    for (k, n) in kinds {
        o.sample("sigwall_inspect_decode_errors_total", &[("kind", k)], n);
    }
    let s = src.inspection.state();
    o.head("sigwall_subscriber_state_subscribers", "gauge", "Subscribers in the in-process state.");
    o.sample("sigwall_subscriber_state_subscribers", &[], s.store.subscribers);
    o.head("sigwall_subscriber_state_evictions_total", "counter", "Subscribers evicted from the in-process state.");
    o.sample("sigwall_subscriber_state_evictions_total", &[], s.store.evictions);
    o.head("sigwall_subscriber_state_redis_errors_total", "counter", "Failed Redis calls of the subscriber state.");
    o.sample("sigwall_subscriber_state_redis_errors_total", &[], s.redis_errors);
    o.head(
        "sigwall_subscriber_state_redis_degraded",
        "gauge",
        "1 while Redis is down and the subscriber state runs on the local copy.",
    );
    o.sample("sigwall_subscriber_state_redis_degraded", &[], u64::from(s.redis_degraded));
    o.head(
        "sigwall_subscriber_state_registrations_pending",
        "gauge",
        "Foreign registration requests waiting for the home network's answer.",
    );
    o.sample("sigwall_subscriber_state_registrations_pending", &[], s.registrations_pending);
    o.head(
        "sigwall_subscriber_state_registrations_total",
        "counter",
        "Foreign registration requests by how they ended (only confirmed ones are recorded).",
    );
    for (outcome, n) in [
        ("confirmed", s.registrations_confirmed),
        ("rejected", s.registrations_rejected),
        ("expired", s.registrations_expired),
        ("untracked", s.registrations_untracked),
    ] {
        o.sample("sigwall_subscriber_state_registrations_total", &[("outcome", outcome)], n);
    }
    o.0
}

/// Serve `GET /metrics` until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Sources) {
    let sources = Arc::new(sources);
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let sources = sources.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_REQUEST];
            let mut n = 0;
            // Read the request head, bounded in size and time.
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let line = head.lines().next().unwrap_or("");
            let (status, body, ctype) = if line.starts_with("GET /metrics ") || line == "GET /metrics" {
                ("200 OK", tokio::task::block_in_place(|| render(&sources)), "text/plain; version=0.0.4; charset=utf-8")
            } else if line.starts_with("GET ") {
                ("404 Not Found", "see /metrics\n".to_string(), "text/plain")
            } else {
                ("405 Method Not Allowed", "GET only\n".to_string(), "text/plain")
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
