//! Subscriber state: per IMSI, where the subscriber is served (MAP, Diameter, GTP-C) and when,
//! fed by every decoder and read by the stateful rules (`inspect::plausibility`, `inspect::sms`,
//! `inspect::correlation`).
//!
//! A module of the controller rather than a crate of its own: its only users are the
//! inspection engine, the control socket and the benchmarks, which all link `filter-user`
//! already, and it needs nothing the controller does not have but the Redis client.
//!
//! Backends: the in-process [`store::LocalStore`] always (bounded, evicting, snapshotted to a
//! file so a restart is not a blind spot); with `--state redis://…` also Redis (Debian's
//! `redis-server`, or a Redis-compatible cluster endpoint), shared by a fleet of edges. Redis is
//! read first and written through; when it fails the store carries on with the local copy,
//! counts the failure and says so once in an event ([`Notice`]), and tries Redis again every
//! [`REDIS_RETRY`]. Nothing here panics or blocks for longer than [`REDIS_TIMEOUT`] on a call.

pub mod geo;
pub mod store;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
pub use store::{LocalStore, Record, Serving, StoreStats, pack_digits, unpack_digits};

/// Connect, read and write timeout of one Redis call.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// How long after a failure Redis is tried again.
pub const REDIS_RETRY: Duration = Duration::from_secs(2);
/// Records expire in Redis after this long without an update (a subscriber not seen for a
/// month is not roaming where it was).
pub const REDIS_TTL_S: u64 = 30 * 86_400;
/// Default capacity of the in-process store: 10 million subscribers (about 1.3 GB).
pub const DEFAULT_CAPACITY: usize = 10_000_000;

/// Where the state is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Local,
    Redis(String),
}

impl Backend {
    /// `memory` (or empty) or a `redis://` / `rediss://` / `redis+unix://` URL.
    pub fn parse(s: &str) -> Result<Backend, String> {
        match s.trim() {
            "" | "memory" => Ok(Backend::Local),
            u if u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("redis+unix://") => {
                redis::Client::open(u).map_err(|e| format!("--state {u:?}: {e}"))?;
                Ok(Backend::Redis(u.to_string()))
            }
            o => Err(format!("--state {o:?}: expected \"memory\" or a redis:// URL")),
        }
    }
}

/// Something the operator must hear about once, as an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub kind: &'static str,
    pub detail: Value,
}

struct Redis {
    client: redis::Client,
    url: String,
    con: Option<redis::Connection>,
    /// Not before this instant is a failed Redis tried again.
    retry_at: Option<Instant>,
    degraded: bool,
}

/// Counters of the state, beside the store's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateStats {
    pub store: StoreStats,
    pub redis_reads: u64,
    pub redis_writes: u64,
    pub redis_errors: u64,
    /// Operations served by the local store alone because Redis was down.
    pub redis_degraded_ops: u64,
    pub redis_degraded: bool,
    pub snapshot_saves: u64,
    pub snapshot_errors: u64,
    /// Foreign registration requests waiting for the home network's answer now
    /// (`inspect::pending`), and how the others ended: confirmed by a positive answer (then
    /// recorded), rejected by a negative one, expired without one, or not tracked (no
    /// transaction to match, or the table full). Only confirmed ones make later operations
    /// plausible.
    pub registrations_pending: u64,
    pub registrations_confirmed: u64,
    pub registrations_rejected: u64,
    pub registrations_expired: u64,
    pub registrations_untracked: u64,
}

/// The subscriber state the rules use.
pub struct Subscribers {
    local: LocalStore,
    redis: Option<Redis>,
    snapshot: Option<PathBuf>,
    stats: StateStats,
    notices: Vec<Notice>,
}

impl Subscribers {
    /// In-process only, no snapshot (tests, the default engine).
    pub fn in_memory(capacity: usize) -> Subscribers {
        Subscribers {
            local: LocalStore::new(capacity),
            redis: None,
            snapshot: None,
            stats: StateStats::default(),
            notices: vec![],
        }
    }

    /// The daemon's state: the snapshot (if any) loaded, Redis connected lazily.
    pub fn open(backend: &Backend, snapshot: Option<PathBuf>, capacity: usize) -> Result<Subscribers, String> {
        let local = match &snapshot {
            Some(p) => LocalStore::load(p, capacity)?,
            None => LocalStore::new(capacity),
        };
        let redis = match backend {
            Backend::Local => None,
            Backend::Redis(u) => Some(Redis {
                client: redis::Client::open(u.as_str()).map_err(|e| format!("--state {u:?}: {e}"))?,
                url: u.clone(),
                con: None,
                retry_at: None,
                degraded: false,
            }),
        };
        Ok(Subscribers { local, redis, snapshot, stats: StateStats::default(), notices: vec![] })
    }

    pub fn backend_name(&self) -> &'static str {
        if self.redis.is_some() { "redis" } else { "memory" }
    }

    pub fn stats(&self) -> StateStats {
        StateStats {
            store: self.local.stats(),
            redis_degraded: self.redis.as_ref().is_some_and(|r| r.degraded),
            ..self.stats
        }
    }

    /// Updates the counters kept for the inspection engine (registrations).
    pub fn count(&mut self, f: impl FnOnce(&mut StateStats)) {
        f(&mut self.stats);
    }

    /// Notices since the last call (Redis lost, Redis back).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The Redis connection, connecting if it is time to (re)try; `None` when there is no Redis
    /// or it is down.
    fn redis_con(&mut self) -> Option<&mut redis::Connection> {
        let r = self.redis.as_mut()?;
        if r.con.is_none() {
            if r.retry_at.is_some_and(|t| Instant::now() < t) {
                self.stats.redis_degraded_ops += 1;
                return None;
            }
            match r.client.get_connection_with_timeout(REDIS_TIMEOUT).and_then(|c| {
                c.set_read_timeout(Some(REDIS_TIMEOUT))?;
                c.set_write_timeout(Some(REDIS_TIMEOUT))?;
                Ok(c)
            }) {
                Ok(c) => {
                    r.con = Some(c);
                    r.retry_at = None;
                    if r.degraded {
                        r.degraded = false;
                        self.notices.push(Notice {
                            kind: "state-redis-restored",
                            detail: json!({"url": redact(&r.url), "errors": self.stats.redis_errors}),
                        });
                    }
                }
                Err(e) => {
                    Self::redis_failed(r, &mut self.stats, &mut self.notices, &e);
                    return None;
                }
            }
        }
        r.con.as_mut()
    }

    fn redis_failed(r: &mut Redis, stats: &mut StateStats, notices: &mut Vec<Notice>, e: &redis::RedisError) {
        stats.redis_errors += 1;
        stats.redis_degraded_ops += 1;
        r.con = None;
        r.retry_at = Some(Instant::now() + REDIS_RETRY);
        if !r.degraded {
            r.degraded = true;
            log::error!("subscriber state: Redis {} failed ({e}); using the local store", redact(&r.url));
            notices.push(Notice {
                kind: "state-redis-degraded",
                detail: json!({"url": redact(&r.url), "error": e.to_string(), "fallback": "local store"}),
            });
        }
    }

    fn key(imsi: u64) -> String {
        format!("sigwall:sub:{}", unpack_digits(imsi))
    }

    /// The record of a subscriber (packed IMSI), Redis first when there is one.
    pub fn get(&mut self, imsi: u64) -> Option<Record> {
        let local = self.local.get(imsi);
        let Some(con) = self.redis_con() else { return local };
        let res: redis::RedisResult<Option<String>> = redis::cmd("GET").arg(Self::key(imsi)).query(con);
        self.stats.redis_reads += 1;
        match res {
            Ok(Some(s)) => match serde_json::from_str::<Record>(&s) {
                Ok(r) => {
                    self.local.put(imsi, r);
                    Some(r)
                }
                // Another writer's garbage is not trusted; the local copy stands.
                Err(_) => local,
            },
            Ok(None) => local,
            Err(e) => {
                let r = self.redis.as_mut().expect("redis_con returned a connection");
                Self::redis_failed(r, &mut self.stats, &mut self.notices, &e);
                local
            }
        }
    }

    /// Read without side effects (local store only): the control socket's view when the
    /// inspector is busy is not worth a network round trip.
    pub fn peek_local(&self, imsi: u64) -> Option<Record> {
        self.local.peek(imsi)
    }

    /// Store a record (local, and Redis written through).
    pub fn put(&mut self, imsi: u64, r: Record) {
        self.local.put(imsi, r);
        let Some(con) = self.redis_con() else { return };
        let body = serde_json::to_string(&r).unwrap_or_default();
        let res: redis::RedisResult<()> =
            redis::cmd("SET").arg(Self::key(imsi)).arg(body).arg("EX").arg(REDIS_TTL_S).query(con);
        self.stats.redis_writes += 1;
        if let Err(e) = res {
            let rd = self.redis.as_mut().expect("redis_con returned a connection");
            Self::redis_failed(rd, &mut self.stats, &mut self.notices, &e);
        }
    }

    /// Write the snapshot, if one is configured. Errors are counted and logged: a failed
    /// snapshot must not stop inspection.
    pub fn save_snapshot(&mut self) {
        let Some(p) = &self.snapshot else { return };
        match self.local.save(p) {
            Ok(_) => self.stats.snapshot_saves += 1,
            Err(e) => {
                self.stats.snapshot_errors += 1;
                log::error!("subscriber snapshot {}: {e}", p.display());
            }
        }
    }

    /// What `sigwall subscriber <imsi>` prints; `mask` hides all but the MCC+MNC and the last
    /// two digits of identities.
    pub fn describe(&mut self, imsi: &str, mask: bool) -> Value {
        let Some(k) = pack_digits(imsi) else {
            return json!({"error": format!("{imsi:?} is not an IMSI (digits only, at most 15)")});
        };
        let rec = self.get(k);
        json!({
            "imsi": mask_id(imsi, mask),
            "backend": self.backend_name(),
            "known": rec.is_some(),
            "record": rec.map(|r| record_json(&r)),
        })
    }
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// An identity as events and logs show it: whole, or with the middle digits masked (the first
/// five and the last two kept) when the policy's `mask_identities` is on.
pub fn mask_id(id: &str, mask: bool) -> String {
    if !mask || id.len() <= 7 {
        return id.to_string();
    }
    format!("{}{}{}", &id[..5], "*".repeat(id.len() - 7), &id[id.len() - 2..])
}

pub fn serving_json(s: &Serving) -> Value {
    if !s.is_set() {
        return Value::Null;
    }
    let node = match s.proto {
        1 => json!(unpack_digits(s.node())),
        _ => json!(format!("{:016x}", s.node())),
    };
    json!({
        "protocol": s.protocol(),
        "message": message_name(s.proto, s.msg),
        "node": node,
        "plmn": (s.plmn != 0).then(|| format!("{:06}", s.plmn)),
        "country": s.country_str(),
        "at": s.at,
    })
}

pub fn record_json(r: &Record) -> Value {
    json!({
        "cs": serving_json(&r.cs), "ps": serving_json(&r.ps),
        "eps": serving_json(&r.eps), "pdn": serving_json(&r.pdn),
        "sri_sm_at": (r.sri_sm_at != 0).then_some(r.sri_sm_at),
    })
}

/// The name of the message that recorded a serving slot.
pub fn message_name(proto: u8, msg: u8) -> String {
    match proto {
        1 => filter_dpi::ss7::map::op_name(i64::from(msg)).unwrap_or("map").to_string(),
        2 => match msg {
            // Command codes & 0xff: 316 ULR → 60, 318 AIR → 62, 323 NOR → 67.
            60 => "ULR".into(),
            62 => "AIR".into(),
            67 => "NOR".into(),
            m => format!("diameter-{m}"),
        },
        3 => filter_dpi::gtp::names::v2_message_name(msg).unwrap_or("gtpv2").to_string(),
        _ => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_and_masking() {
        assert_eq!(Backend::parse("memory").unwrap(), Backend::Local);
        assert_eq!(
            Backend::parse("redis://127.0.0.1:6379/0").unwrap(),
            Backend::Redis("redis://127.0.0.1:6379/0".into())
        );
        assert!(Backend::parse("mysql://x").unwrap_err().contains("expected"));
        assert_eq!(mask_id("001010000000042", true), "00101********42");
        assert_eq!(mask_id("001010000000042", false), "001010000000042");
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://***@h:1/0");
    }

    /// No server listens on this port: every call falls back to the local store, counts the
    /// failure, and says so exactly once.
    #[test]
    fn redis_down_degrades_to_local_with_a_counter_and_one_notice() {
        let b = Backend::parse("redis://127.0.0.1:1/0").unwrap();
        let mut s = Subscribers::open(&b, None, 100).unwrap();
        let k = pack_digits("001010000000042").unwrap();
        let r = Record { sri_sm_at: 5, ..Record::default() };
        s.put(k, r);
        assert_eq!(s.get(k), Some(r));
        let st = s.stats();
        assert!(st.redis_errors >= 1 && st.redis_degraded && st.redis_degraded_ops >= 2, "{st:?}");
        let n = s.take_notices();
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].kind, "state-redis-degraded");
        assert!(s.take_notices().is_empty());
        assert_eq!(s.describe("001010000000042", true)["imsi"], "00101********42");
        assert_eq!(s.describe("001010000000042", false)["record"]["sri_sm_at"], 5);
        assert!(s.describe("x", false)["error"].is_string());
    }
}
