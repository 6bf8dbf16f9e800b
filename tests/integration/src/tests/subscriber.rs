//! Subscriber state end to end: location plausibility (SS7 Category 3), impossible travel,
//! the SMS firewall and cross-protocol correlation, on frames from independent encoders
//! (`tests/integration/attacks/subscriber.py`: pycrate TCAP/MAP with MAP-OpenInfo, hand-laid SMS
//! TPDUs read back by pycrate, scapy Diameter and GTPv2), checked by tshark first, sent over
//! the veth lab to a real daemon.
//!
//! - `stateful_rules_end_to_end`: every rule has a positive case and a negative control (the
//!   same message from the network where the subscriber is registered; the OTA SMS from the
//!   configured OTA platform; a possible travel); the Category 3 rule goes learn → alert →
//!   enforce by live policy reloads; `sigwall subscriber` shows the state; a restarted daemon
//!   reads its snapshot and judges as before.
//! - `two_edges_share_state_through_redis`: two daemons on two veth links share one real
//!   `redis-server` (unix socket, started here): a registration seen on link A makes a Category
//!   3 request on link B implausible, and the request from the serving network plausible; when
//!   the server stops, B carries on from its local copy, counts it and raises one event — it
//!   keeps judging, never passes silently, never crashes.
//!
//! Needs root, python3 with scapy and pycrate, tshark and redis-server (`cargo xtask setup`).

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use filter_common::{Class, Reason};
use filter_testkit::{daemon::Daemon, netns::Lab, netns::RawSocket, sigwall_bin, tempdir};
use serde_json::{Value, json};
use sigwall::control::{self, Command as Ctl};

const HOME_IMSI: &str = "001010000000042";

/// `{MODE}`: the mode of `ss7-location-plausibility`.
const POLICY: &str = r#"
[inspect]
home_imsi_prefixes = ["00101"]
home_gt_prefixes = ["35191"]
home_realms = ["epc.mnc001.mcc001.3gppnetwork.org"]
block_ttl_s = 120

[inspect.subscriber]
ota_platforms = ["4179000099"]

[[inspect.rule]]
name = "ss7-location-plausibility"
mode = "{MODE}"

[[peer]]
name = "partner"
prefixes = ["198.18.1.0/24"]
allow = ["sigtran", "diameter", "gtp-c"]
gt_prefixes = ["4179"]
realms = ["epc.mnc002.mcc228.3gppnetwork.org"]
plmn_ids = ["22802"]

[[peer]]
name = "partner-b"
prefixes = ["198.18.2.0/24"]
allow = ["sigtran", "diameter", "gtp-c"]
gt_prefixes = ["33609"]
plmn_ids = ["20801"]

[[peer]]
name = "partner-ch2"
prefixes = ["198.18.3.0/24"]
allow = ["sigtran"]
gt_prefixes = ["4176"]

[[peer]]
name = "partner-au"
prefixes = ["198.18.4.0/24"]
allow = ["sigtran"]
gt_prefixes = ["614"]

[[peer]]
name = "home"
prefixes = ["198.18.9.0/24"]
allow = ["sigtran", "diameter"]
gt_prefixes = ["35191"]
realms = ["epc.mnc001.mcc001.3gppnetwork.org"]
"#;

const WAIT: Duration = Duration::from_secs(5);

fn policy(mode: &str) -> String {
    POLICY.replace("{MODE}", mode)
}

type Cases = BTreeMap<String, Vec<Vec<u8>>>;

/// Run the generator; check every frame with tshark (well formed, good checksums).
fn generate(dir: &Path) -> Cases {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks/subscriber.py");
    let pcap = dir.join("subscriber.pcap");
    let o = Command::new("python3")
        .arg(&script)
        .arg("--pcap")
        .arg(&pcap)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for the attack generators: {e}"));
    assert!(
        o.status.success(),
        "subscriber.py failed (needs scapy and pycrate):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut cases = Cases::new();
    let mut total = 0;
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let frames: Vec<Vec<u8>> = v["frames"].as_array().unwrap().iter().map(|h| hex(h.as_str().unwrap())).collect();
        total += frames.len();
        cases.insert(v["case"].as_str().unwrap().to_string(), frames);
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-o", "sctp.checksum:CRC-32C", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "occurrence=a", "-e", "frame.number", "-e", "_ws.malformed"])
        .args(["-e", "sctp.checksum.status", "-e", "udp.checksum.status", "-e", "gsm_sms.tp-pid"])
        .output()
        .unwrap_or_else(|e| panic!("tshark is needed (cargo xtask setup installs it): {e}"));
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Vec<String>> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), total, "tshark read every frame");
    for r in &rows {
        assert_eq!(r[1], "", "frame {}: malformed for tshark", r[0]);
        assert!(r[2] != "0" && r[3] != "0", "frame {}: bad checksum", r[0]);
    }
    // tshark reads TP-PID 0x7f ((U)SIM data download) in the OTA cases' TPDUs.
    assert!(rows.iter().filter(|r| r[4] == "127").count() >= 5, "tshark sees the SIM OTA TPDUs");
    cases
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn ctl(d: &Daemon, cmd: Ctl) -> Value {
    control::call(&d.socket(), cmd, Duration::from_secs(5)).unwrap_or_else(|e| panic!("control socket: {e}"))
}

fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Edge<'a> {
    d: &'a Daemon,
    tx: RawSocket,
    next_event: u64,
}

impl Edge<'_> {
    /// Send one frame XDP passes and copies up; wait until it is inspected; the new events.
    fn send(&mut self, name: &str, frame: &[u8]) -> Vec<Value> {
        let before = ctl(self.d, Ctl::Stats)["inspect"]["packets"].as_u64().unwrap();
        self.tx.send(frame);
        let ok = wait_for(WAIT, || ctl(self.d, Ctl::Stats)["inspect"]["packets"].as_u64().unwrap() > before);
        assert!(ok, "{name}: not inspected within {WAIT:?}");
        let v = ctl(self.d, Ctl::Events { since: self.next_event, limit: 1000 });
        self.next_event = v["next"].as_u64().unwrap();
        v["events"].as_array().unwrap().clone()
    }

    /// Send a case's first frame and check its events: (rule, decision) in any order, each once.
    fn case(&mut self, cases: &Cases, name: &str, want: &[(&str, &str)]) -> Vec<Value> {
        let ev = self.send(name, &cases[name][0]);
        let mut got: Vec<(String, String)> =
            ev.iter().map(|e| (e["rule"].as_str().unwrap().into(), e["decision"].as_str().unwrap().into())).collect();
        let mut want: Vec<(String, String)> = want.iter().map(|(r, d)| (r.to_string(), d.to_string())).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}: events {ev:#?}");
        for e in &ev {
            let blocked = e["decision"] == "blocked";
            assert_eq!(e["action"], if blocked { "block-flow" } else { "alert" }, "{name}: {e}");
        }
        ev
    }

    /// After a blocking event: the rest of the flow is dropped in XDP as `flow_blocked`.
    fn rest_dropped(&self, cases: &Cases, name: &str, class: Class) {
        let frames = &cases[name][1..];
        let s0 = self.d.stats();
        for f in frames {
            self.tx.send(f);
        }
        let n = frames.len() as u64;
        let ok = wait_for(Duration::from_secs(2), || {
            self.d.stats().cell(Reason::FlowBlocked, class) - s0.cell(Reason::FlowBlocked, class) >= n
        });
        assert!(ok, "{name}: the rest of the flow was not dropped as flow_blocked");
    }

    fn subscriber(&self, imsi: &str) -> Value {
        ctl(self.d, Ctl::Subscriber { imsi: imsi.into() })
    }
}

fn reload(d: &Daemon, path: &Path, mode: &str) {
    std::fs::write(path, policy(mode)).unwrap();
    let v = ctl(d, Ctl::PolicyReload { file: None });
    assert!(v.get("error").is_none(), "reload: {v}");
}

#[test]
fn stateful_rules_end_to_end() {
    let dir = tempdir("subscriber");
    let cases = generate(dir.path());
    let lab = Lab::new();
    let pol = dir.path().join("policy.toml");
    std::fs::write(&pol, policy("learn")).unwrap();
    let snap = dir.path().join("subscribers.jsonl");
    let snap_arg = snap.to_str().unwrap();
    let mut d = Daemon::start(&lab, &sigwall_bin(), &pol, &["--state-snapshot", snap_arg]);
    let mut e = Edge { d: &d, tx: lab.sender(), next_event: 1 };
    let s = Class::Sigtran;
    let l3 = "ss7-location-plausibility";

    // Category 3 for a subscriber at home, from the partner: learn, then alert, then enforce.
    let ev = e.case(&cases, "register-ss-at-home-learn", &[(l3, "learned")]);
    let f = &ev[0]["fields"];
    assert_eq!(
        (&f["imsi"], &f["map_op_name"], &f["ss_code"], &f["forwarded_to"], &f["calling_gt"]),
        (&json!(HOME_IMSI), &json!("registerSS"), &json!(0x21), &json!("41790000999"), &json!("41790000010")),
        "{f:#}"
    );
    assert_eq!(f["why"], "not registered in any foreign network (at home)");
    assert_eq!(ev[0]["mode"], "learn");
    reload(e.d, &pol, "alert");
    e.case(&cases, "register-ss-at-home-alert", &[(l3, "alerted")]);
    reload(e.d, &pol, "enforce");
    e.case(&cases, "register-ss-at-home-enforce", &[(l3, "blocked")]);
    e.rest_dropped(&cases, "register-ss-at-home-enforce", s);

    // Registered in Switzerland (the home HLR's answer seen on the home link): registerSS from
    // there is fine, from France it is not.
    e.case(&cases, "ul-partner", &[]);
    e.case(&cases, "ul-partner-accepted", &[]);
    e.case(&cases, "register-ss-from-serving-network", &[]);
    let ev = e.case(&cases, "register-ss-from-other-network", &[(l3, "blocked")]);
    assert_eq!(ev[0]["fields"]["why"], "registered in another network");
    assert_eq!(ev[0]["fields"]["state"]["cs"]["node"], "41790000010");
    assert_eq!(ev[0]["fields"]["state"]["cs"]["country"], "CH");

    // Velocity: another Swiss network is possible, Australia seconds later is not.
    e.case(&cases, "ul-partner-ch2", &[]);
    e.case(&cases, "ul-partner-ch2-accepted", &[]);
    let ev = e.case(&cases, "ul-partner-au", &[("location-velocity", "alerted")]);
    let f = &ev[0]["fields"];
    assert_eq!((&f["previous"]["country"], &f["new"]["country"]), (&json!("CH"), &json!("AU")), "{f:#}");
    assert!(f["min_travel_s"].as_u64().unwrap() > 14 * 3600, "{f:#}");
    e.case(&cases, "ul-partner-au-accepted", &[]);

    // State poisoning: an updateLocation from France that the HLR never answers is a claim
    // only; registerSS from France afterwards is judged as if the subscriber were at home, and
    // the event shows the unconfirmed claim.
    e.case(&cases, "ul-partner-b-unanswered", &[]);
    let ev = e.case(&cases, "register-ss-after-unanswered-ul", &[(l3, "blocked")]);
    let f = &ev[0]["fields"];
    assert_eq!(f["why"], "not registered in any foreign network (at home)", "{f:#}");
    assert_eq!(f["unconfirmed_claims"]["cs"]["country"], "FR", "{f:#}");
    let st = e.subscriber(HOME_IMSI)["state"].clone();
    assert_eq!(
        (&st["registrations_confirmed"], &st["registrations_pending"]),
        (&json!(3), &json!(1)),
        "three accepted; the French one waits: {st:#}"
    );

    // SMS firewall.
    e.case(&cases, "sri-sm-answered-by-home", &[]);
    let ev = e.case(&cases, "mt-sms-sim-ota", &[("sms-sim-ota", "blocked")]);
    assert_eq!(
        ev[0]["fields"]["marks"],
        json!(["tp-pid-sim-data-download", "dcs-class2-8bit", "udh-command-packet"]),
        "{:#}",
        ev[0]
    );
    assert_eq!(ev[0]["fields"]["tpdu"]["udh_ieis"], json!([0x70]));
    e.rest_dropped(&cases, "mt-sms-sim-ota", s);
    e.case(&cases, "mt-sms-sim-ota-from-platform", &[]);
    e.case(&cases, "mt-sms-faked-sc", &[("sms-faked-origin", "alerted")]);
    e.case(&cases, "mt-sms-no-sri-sm", &[("sms-home-routing-bypass", "alerted")]);
    e.case(&cases, "mt-sms-legit", &[]);
    e.case(&cases, "mo-sms-spoofed", &[("sms-faked-origin", "alerted")]);
    e.case(&cases, "mo-sms-from-serving-network", &[]);

    // Correlation: MAP has the subscriber in Australia, Diameter and GTP-C in Switzerland.
    let ev = e.case(&cases, "dia-ulr-while-map-in-au", &[("correlation-cross-protocol", "alerted")]);
    let msgs = &ev[0]["fields"]["messages"];
    assert_eq!((&msgs[0]["protocol"], &msgs[0]["country"]), (&json!("map"), &json!("AU")), "{msgs:#}");
    assert_eq!((&msgs[1]["protocol"], &msgs[1]["command"]), (&json!("diameter"), &json!("ULR")), "{msgs:#}");
    e.case(&cases, "dia-ula-accepted", &[]);
    // The Create Session agrees with the ULR (no plausibility event) but not with MAP.
    e.case(&cases, "gtpc-csr-matches-eps", &[("correlation-cross-protocol", "alerted")]);
    e.case(
        &cases,
        "gtpc-csr-other-network",
        &[
            ("gtpc-location-plausibility", "alerted"),
            ("location-velocity", "alerted"),
            ("correlation-cross-protocol", "alerted"),
            ("correlation-cross-protocol", "alerted"),
        ],
    );

    // What the store knows, through the control socket and the CLI.
    let v = e.subscriber(HOME_IMSI);
    let r = &v["record"];
    assert_eq!(v["known"], true, "{v:#}");
    assert_eq!((&r["cs"]["country"], &r["cs"]["message"]), (&json!("AU"), &json!("updateLocation")), "{v:#}");
    assert_eq!(r["eps"]["plmn"], "228002", "{v:#}");
    assert!(r["sri_sm_at"].is_u64(), "{v:#}");
    let out = Command::new(sigwall_bin())
        .args(["subscriber", HOME_IMSI, "--socket", d.socket().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["record"]["cs"], r["cs"]);
    let bad = Command::new(sigwall_bin()).args(["subscriber", "12ab", "--socket", "/nonexistent"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad IMSI is refused before the socket is tried");
    let st = ctl(&d, Ctl::Stats)["inspect"].clone();
    assert_eq!(st["decode_errors"], json!({}), "{st:#}");

    // Restart: the snapshot brings the state back. From Australia the MO SMS is plausible only
    // because the restarted daemon still knows the subscriber is there.
    drop(e);
    d.stop();
    let text = std::fs::read_to_string(&snap).unwrap();
    // One subscriber was recorded (the other home IMSI only received an SMS).
    assert_eq!(text.lines().count(), 1, "snapshot: {text}");
    drop(d);
    let d = Daemon::start(&lab, &sigwall_bin(), &pol, &["--state-snapshot", snap_arg]);
    let mut e = Edge { d: &d, tx: lab.sender(), next_event: 1 };
    assert_eq!(e.subscriber(HOME_IMSI)["record"]["cs"]["country"], "AU");
    e.case(&cases, "mo-sms-from-serving-network", &[]);
    e.case(&cases, "mo-sms-spoofed", &[("sms-faked-origin", "alerted")]);
}

/// A `redis-server` on a unix socket in `dir` (reachable from every namespace), stopped on drop.
struct Redis {
    child: Option<Child>,
    socket: std::path::PathBuf,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let socket = dir.join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server is needed (cargo xtask setup installs it): {e}"));
        let r = Redis { child: Some(child), socket };
        assert!(wait_for(Duration::from_secs(5), || r.socket.exists()), "redis-server did not start");
        r
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn two_edges_share_state_through_redis() {
    let dir = tempdir("subscriber-redis");
    let cases = generate(dir.path());
    let mut redis = Redis::start(dir.path());
    let url = redis.url();
    let redis_socket = redis.socket.clone();
    let (lab_a, lab_b) = (Lab::new(), Lab::new());
    let pol = dir.path().join("policy.toml");
    std::fs::write(&pol, policy("alert")).unwrap();
    let args = ["--state", url.as_str(), "--state-snapshot", "none"];
    let da = Daemon::start(&lab_a, &sigwall_bin(), &pol, &args);
    let db = Daemon::start(&lab_b, &sigwall_bin(), &pol, &args);
    let mut a = Edge { d: &da, tx: lab_a.sender(), next_event: 1 };
    let mut b = Edge { d: &db, tx: lab_b.sender(), next_event: 1 };
    let l3 = "ss7-location-plausibility";

    // B has seen nothing; the registration comes through link A.
    assert_eq!(b.subscriber(HOME_IMSI)["known"], false);
    a.case(&cases, "ul-partner", &[]);
    a.case(&cases, "ul-partner-accepted", &[]);
    let v = b.subscriber(HOME_IMSI);
    assert_eq!((&v["backend"], &v["record"]["cs"]["node"]), (&json!("redis"), &json!("41790000010")), "{v:#}");
    // On B: registerSS from the serving network is fine (B alone would think the subscriber is
    // at home and flag it); from France it is implausible, and says why.
    b.case(&cases, "register-ss-from-serving-network", &[]);
    let ev = b.case(&cases, "register-ss-from-other-network", &[(l3, "alerted")]);
    assert_eq!(ev[0]["fields"]["why"], "registered in another network");

    // The server goes away: B keeps judging from its local copy, counts, says so once.
    redis.stop();
    let ev = b.send("register-ss-from-other-network (redis down)", &cases["register-ss-from-other-network"][1]);
    let rules: Vec<&str> = ev.iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&l3), "still judged with Redis down: {ev:#?}");
    let notice: Vec<&Value> = ev.iter().filter(|e| e["rule"] == "subscriber-state").collect();
    assert_eq!(notice.len(), 1, "{ev:#?}");
    assert_eq!(notice[0]["event"], "state-redis-degraded");
    let ev = b.send("register-ss-from-serving-network (redis down)", &cases["register-ss-from-serving-network"][1]);
    assert!(ev.is_empty(), "the local copy still knows the registration: {ev:#?}");
    let st = b.subscriber(HOME_IMSI)["state"].clone();
    assert!(st["redis_errors"].as_u64().unwrap() >= 1 && st["redis_degraded"] == true, "{st:#}");
    assert!(st["redis_degraded_ops"].as_u64().unwrap() >= 1, "{st:#}");
    // The same counters in `sigwall stats --json` through the daemon.
    let ss = ctl(&db, Ctl::Stats)["inspect"]["subscriber_state"].clone();
    assert_eq!((ss["redis_degraded"].clone(), ss["redis_errors"].as_u64() >= Some(1)), (json!(true), true), "{ss:#}");
    // Both daemons are alive and answer.
    assert!(ctl(&da, Ctl::Status).get("error").is_none());
    assert!(ctl(&db, Ctl::Status).get("error").is_none());

    // The server comes back (empty: it kept nothing): after the retry delay B uses it again
    // and says so once; what B writes from then on is shared again.
    let _ = std::fs::remove_file(&redis_socket);
    let redis = Redis::start(dir.path());
    assert_eq!(redis.url(), url);
    std::thread::sleep(sigwall::subscriber::REDIS_RETRY + Duration::from_millis(300));
    let ev = b.send("ul-partner on B (redis back)", &cases["ul-partner"][1]);
    let kinds: Vec<&Value> = ev.iter().map(|e| &e["event"]).collect();
    assert_eq!(kinds, [&json!("state-redis-restored")], "{ev:#?}");
    // The HLR's answer to it, on B's home link: committed, written to Redis.
    assert_eq!(b.send("ul-partner-accepted on B", &cases["ul-partner-accepted"][1]), Vec::<Value>::new());
    let st = b.subscriber(HOME_IMSI)["state"].clone();
    assert_eq!(st["redis_degraded"], false, "{st:#}");
    assert_eq!(st["registrations_confirmed"], 1, "{st:#}");
    // B's write after the outage is in the new server (read with redis-cli, not with sigwall).
    let out = Command::new("redis-cli")
        .arg("-s")
        .arg(&redis_socket)
        .args(["HGET", &format!("sigwall:sub:{HOME_IMSI}"), "cs"])
        .output()
        .unwrap_or_else(|e| panic!("redis-cli (redis-tools, installed with redis-server): {e}"));
    let cs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("redis-cli HGET: {e}: {out:?}"));
    assert_eq!(cs["country"], json!([67, 72]), "{cs}");
    drop(redis);
}
