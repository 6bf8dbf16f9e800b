//! The in-process subscriber store: a bounded map IMSI → [`Record`] with approximate-LRU
//! eviction, and snapshots so a restarted daemon is not blind.
//!
//! Memory: a record is 84 bytes, keyed by the IMSI packed into a `u64` ([`pack_digits`]) kept
//! 4-aligned: 92 bytes a slot in the std `HashMap` (SwissTable, one control byte more), whose
//! bucket count is a power of two at most 7/8 full, so between 106 and 195 bytes a subscriber
//! depending on where the count falls (`cargo xtask bench` measures it: the `state` harness).
//!
//! Eviction: two generations. Writes go to the young map; when it holds half the capacity the
//! old map is dropped (its subscribers are evicted, counted) and the young one becomes old. A
//! lookup that finds a subscriber in the old map moves it to the young one. So the store never
//! holds more than `capacity` subscribers, every operation is O(1), and what is evicted is what
//! was not touched for the longest (within a factor of two), without a per-entry list.

use std::{collections::HashMap, io::Write, path::Path};

use serde::{Deserialize, Serialize};

/// Where a subscriber was last seen served, by one protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serving {
    /// The serving node: GT digits packed ([`pack_digits`]) for MAP, a 64-bit hash of the
    /// Origin-Realm (Diameter) or the sending peer (GTP) otherwise; 0: none. Two halves (high,
    /// low) rather than a `u64`, so the record aligns to 4 bytes and packs tighter.
    pub node: [u32; 2],
    /// PLMN as MCC * 1000 + MNC (0: not known).
    pub plmn: u32,
    /// When, Unix seconds.
    pub at: u32,
    /// Country (ISO 3166 alpha-2 as two ASCII bytes; [0, 0] not known).
    pub country: [u8; 2],
    /// The message that recorded it: MAP operation code, Diameter command code & 0xff, GTP
    /// message type (named by [`super::message_name`]).
    pub msg: u8,
    /// 1 MAP, 2 Diameter, 3 GTP-C; 0: empty slot.
    pub proto: u8,
}

impl Serving {
    pub fn new(node: u64, plmn: u32, at: u32, country: [u8; 2], msg: u8, proto: u8) -> Serving {
        Serving { node: [(node >> 32) as u32, node as u32], plmn, at, country, msg, proto }
    }

    pub fn node(&self) -> u64 {
        (u64::from(self.node[0]) << 32) | u64::from(self.node[1])
    }

    pub fn is_set(&self) -> bool {
        self.proto != 0
    }

    pub fn protocol(&self) -> &'static str {
        match self.proto {
            1 => "map",
            2 => "diameter",
            3 => "gtp-c",
            _ => "none",
        }
    }

    pub fn country_str(&self) -> Option<&str> {
        (self.country != [0, 0]).then(|| std::str::from_utf8(&self.country).unwrap_or("??"))
    }
}

/// What the store knows about one subscriber.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Circuit-switched registration: MAP UpdateLocation (VLR number).
    pub cs: Serving,
    /// Packet-switched registration: MAP UpdateGprsLocation (SGSN number).
    pub ps: Serving,
    /// EPS registration: Diameter ULR (MME Origin-Host, Visited-PLMN).
    pub eps: Serving,
    /// Session: GTPv2-C Create Session (serving network, sender).
    pub pdn: Serving,
    /// Last SRI-SM answered by the home network (Unix seconds; 0 never).
    pub sri_sm_at: u32,
}

impl Record {
    pub fn slots(&self) -> [(&'static str, &Serving); 4] {
        [("cs", &self.cs), ("ps", &self.ps), ("eps", &self.eps), ("pdn", &self.pdn)]
    }
}

/// Digits (at most 18) packed into a `u64`: the length in the top 5 bits, the value below, so
/// leading zeros (IMSIs of MCC 001) survive. `None` for anything else.
pub fn pack_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(((s.len() as u64) << 59) | s.parse::<u64>().ok()?)
}

pub fn unpack_digits(v: u64) -> String {
    let len = (v >> 59) as usize;
    format!("{:0len$}", v & ((1 << 59) - 1))
}

/// Counters of the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub subscribers: u64,
    pub lookups: u64,
    pub updates: u64,
    pub evictions: u64,
}

/// The maps' hasher: foldhash's quality hasher, seeded per process. std's default (SipHash-1-3)
/// spent more time hashing the 8-byte key than the rest of a lookup; foldhash is several times
/// faster on integer keys and still keyed, so IMSIs chosen by a sender cannot be aimed at one
/// bucket chain without knowing the seed.
type Hasher = foldhash::quality::RandomState;

/// A packed IMSI as the maps' key: a `u64` aligned to 4 bytes, so a map slot (key and 84-byte
/// record) is 92 bytes, not the 96 an 8-aligned key would round it to: 4 % of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C, packed(4))]
struct Key(u64);

impl Key {
    fn get(self) -> u64 {
        self.0
    }
}

/// The bounded in-process store.
#[derive(Debug)]
pub struct LocalStore {
    capacity: usize,
    young: HashMap<Key, Record, Hasher>,
    old: HashMap<Key, Record, Hasher>,
    stats: StoreStats,
}

impl LocalStore {
    pub fn new(capacity: usize) -> LocalStore {
        let capacity = capacity.max(2);
        LocalStore {
            capacity,
            young: HashMap::with_hasher(Hasher::default()),
            old: HashMap::with_hasher(Hasher::default()),
            stats: StoreStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats { subscribers: self.len() as u64, ..self.stats }
    }

    fn rotate_if_full(&mut self) {
        if self.young.len() >= self.capacity / 2 {
            self.stats.evictions += self.old.len() as u64;
            self.old = std::mem::take(&mut self.young);
        }
    }

    pub fn get(&mut self, key: u64) -> Option<Record> {
        let key = Key(key);
        self.stats.lookups += 1;
        if let Some(r) = self.young.get(&key) {
            return Some(*r);
        }
        let r = self.old.remove(&key)?;
        self.rotate_if_full();
        self.young.insert(key, r);
        Some(r)
    }

    /// Read without touching recency or counters (the control socket's view).
    pub fn peek(&self, key: u64) -> Option<Record> {
        let key = Key(key);
        self.young.get(&key).or_else(|| self.old.get(&key)).copied()
    }

    pub fn put(&mut self, key: u64, r: Record) {
        let key = Key(key);
        self.stats.updates += 1;
        if let Some(v) = self.young.get_mut(&key) {
            *v = r;
            return;
        }
        self.old.remove(&key);
        self.rotate_if_full();
        self.young.insert(key, r);
    }

    /// Writes every subscriber to `path` (atomically: a temporary file renamed over it), one
    /// JSON line each: `{"k": packed IMSI, "r": record}`.
    pub fn save(&self, path: &Path) -> std::io::Result<usize> {
        let tmp = path.with_extension("tmp");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut n = 0;
        // Old first, so a load that fills up keeps the young ones.
        for (k, r) in self.old.iter().chain(self.young.iter()) {
            serde_json::to_writer(&mut w, &Line { k: k.get(), r: *r })?;
            w.write_all(b"\n")?;
            n += 1;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(n)
    }

    /// Reads a snapshot written by [`LocalStore::save`]; a missing file is an empty store. A
    /// line that does not parse is an error naming it (the file is not half-trusted).
    pub fn load(path: &Path, capacity: usize) -> Result<LocalStore, String> {
        let mut s = LocalStore::new(capacity);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for (i, line) in text.lines().enumerate() {
            let l: Line = serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            s.put(l.k, l.r);
        }
        s.stats = StoreStats::default();
        Ok(s)
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    k: u64,
    r: Record,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: u32) -> Record {
        Record { cs: Serving::new(1, 228_002, at, *b"CH", 2, 1), ..Record::default() }
    }

    #[test]
    fn digits_pack_both_ways() {
        for s in ["001010000000042", "228020000000007", "4", "123456789012345678"] {
            assert_eq!(unpack_digits(pack_digits(s).unwrap()), s);
        }
        assert_ne!(pack_digits("01"), pack_digits("1"));
        assert_eq!(pack_digits(""), None);
        assert_eq!(pack_digits("12a"), None);
        assert_eq!(pack_digits("1234567890123456789"), None);
    }

    #[test]
    fn bounded_with_eviction_of_the_least_recent() {
        let mut s = LocalStore::new(100);
        for k in 0..1000u64 {
            s.put(k, rec(k as u32));
            // Subscriber 7 is looked up all the time and must survive.
            assert!(k < 7 || s.get(7).is_some(), "lost 7 at {k}");
            assert!(s.len() <= 100, "{} at {k}", s.len());
        }
        assert_eq!(s.get(999).unwrap().cs.at, 999);
        assert_eq!(s.get(0), None);
        let st = s.stats();
        assert!(st.evictions >= 850, "{st:?}");
        assert_eq!(st.subscribers + st.evictions, 1000);
        assert_eq!(std::mem::size_of::<Record>(), 84);
    }

    #[test]
    fn snapshot_round_trip_and_bad_file() {
        let dir = std::env::temp_dir().join(format!("sigwall-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("subs.snapshot");
        let mut s = LocalStore::new(1000);
        for k in 0..50u64 {
            s.put(k, rec(k as u32));
        }
        assert_eq!(s.save(&p).unwrap(), 50);
        let mut t = LocalStore::load(&p, 1000).unwrap();
        assert_eq!(t.len(), 50);
        assert_eq!(t.get(42), Some(rec(42)));
        assert_eq!(LocalStore::load(&dir.join("none"), 10).unwrap().len(), 0);
        std::fs::write(&p, "{\"k\":1,\"r\":{}}\nnot json\n").unwrap();
        let e = LocalStore::load(&p, 10).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
