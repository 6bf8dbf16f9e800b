//! Issue 9's proof in path: the whole attack corpus (`tests/integration/attacks/{ss7,diameter,gtp}.py`,
//! scapy and pycrate) sent through `sigwall run --iface A --forward-to B` on live links, each
//! attack between legitimate messages, and checked at the core:
//! - SS7 on a live SCTP association (`attacks/sctp_peer.py`: a userspace endpoint pair on raw
//!   sockets, since this machine has no SCTP module): INIT, INIT-ACK with a state cookie,
//!   COOKIE-ECHO, COOKIE-ACK, DATA with consecutive TSNs, a SACK for every packet, HEARTBEAT and
//!   SHUTDOWN at the end. The core decodes every message it receives with pycrate: no attack
//!   operation arrives unless neutralized (operation code 127, everything else byte for byte),
//!   no legitimate message lost or changed, the TSNs contiguous, the association still up.
//!   tshark reads a capture taken at the core as a second, independent decoder (CRC32c and
//!   operation codes).
//! - Diameter on kernel TCP: attacks arrive with Command-Code 0xFFFFFE, legitimate requests byte
//!   for byte, and a DWR/DWA crosses at the end on the same connection.
//! - GTP over UDP: attacks absent at the core, legitimate messages byte for byte.
//!
//! The corpus cases keep their message; what they vary below it (IPv6, a VLAN tag, their own
//! source port) is replaced by the live link's. Each table below names every case of its
//! generator, so a new corpus case fails here until it is classified. Messages split over
//! several SCTP chunks or TCP segments are [`SPLIT`]: sent on a link of their own, held until
//! whole, judged and neutralized there. Needs root, python3 with scapy and pycrate.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use filter_common::{Class, Reason};
use filter_testkit::{
    daemon::Daemon,
    netns::{self, CORE_ADDR, IC_PARTNER, InpathLab, in_netns},
    sigwall_bin, tempdir,
};
use serde_json::Value;

use filter_testkit::{
    netns::Capture,
    pcap::{Packet, write_pcap},
};

use super::attacks::{generate, tshark_fields};

/// The home network and the partner as in `tests::attacks` (see
/// `tests/integration/attacks/README.md`), with the partner's single address in this lab,
/// inspected whole and enforced: every signaling message is judged before it is delivered.
/// Every rule keeps its default action, `block`; blocks name no identity here
/// (`block_identity = "none"`): the corpus's attacks and legitimate messages share the partner's
/// identities (its calling GT, Origin-Host, GTP-C node, and the partner IMSI), so an identity
/// block would, by design, stop every legitimate message after the first attack. Each message
/// is judged on its own here; identity blocks are `tests::inpath`'s.
const POLICY: &str = r#"
[defaults]
mode = "enforce"
unknown_peer = "drop"

[inspect]
block_identity = "none"
home_imsi_prefixes = ["00101"]
home_gt_prefixes = ["35191"]
home_realms = ["epc.mnc001.mcc001.3gppnetwork.org"]

[inspect.subscriber]
enabled = false

[[peer]]
name = "partner"
prefixes = ["198.18.1.10/32"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]
gt_prefixes = ["4179"]
realms = ["epc.mnc002.mcc228.3gppnetwork.org"]
plmn_ids = ["22802"]
diameter_apps = [16777251, 16777255]
inspect = "all"
inspect_gtpu = "all"

[[peer]]
name = "partner-b"
prefixes = ["198.18.2.20/32"]
allow = ["diameter"]
gt_prefixes = ["33609"]
realms = ["epc.mnc003.mcc228.3gppnetwork.org"]
plmn_ids = ["22803"]
inspect = "all"
"#;

/// partner-b's address on the interconnect side (added to the lab by the Diameter test).
const PARTNER_B: &str = "198.18.2.20";

/// Attacks split over several SCTP chunks or TCP segments: the in-path worker holds the pieces
/// until the message is whole (`filter-user/src/inpath/hold.rs`), judges it, and neutralizes it
/// in the piece that carries the code. Each goes on a link of its own, between legitimate
/// messages.
const SPLIT: [&str; 2] = ["ss7-ati-fragmented", "dia-plr-split"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Must not arrive as sent: the message whose operation code (MAP) or command code
    /// (Diameter) is this one is neutralized (SCTP, TCP) or dropped (UDP).
    Attack(u32),
    /// An alert-only rule fires; the message arrives unchanged.
    Alert,
    /// Legitimate, or a negative control: arrives byte for byte.
    Legit,
    /// One of [`SPLIT`]: an attack whose message is in several pieces.
    Split(u32),
}
use Kind::*;

/// Every case of ss7.py. The bundled case's updateLocation (operation 2) is legitimate and must
/// arrive unchanged next to the neutralized ATI.
const SS7: [(&str, Kind); 14] = [
    ("ss7-ati", Attack(71)),
    ("ss7-psl", Attack(83)),
    ("ss7-sri-lcs", Attack(85)),
    ("ss7-send-imsi-v6", Attack(58)),
    ("ss7-ati-xudt", Attack(71)),
    ("ss7-ati-vlan", Attack(71)),
    ("ss7-ati-bundled", Attack(71)),
    ("ss7-ati-fragmented", Split(71)),
    ("ss7-isd-home", Attack(7)),
    ("ss7-cl-home", Attack(3)),
    ("ss7-psi-home", Attack(70)),
    ("ss7-isd-foreign-imsi", Legit),
    ("ss7-gt-binding", Attack(2)),
    ("ss7-ul-legit", Legit),
];

/// Every case of diameter.py, each sent over TCP whatever its own transport. partner-b's two
/// cases go on partner-b's own connection.
const DIAMETER: [(&str, Kind); 13] = [
    ("dia-plr-tcp", Attack(8388620)),
    ("dia-plr-sctp", Attack(8388620)),
    ("dia-idr-tcp", Attack(319)),
    ("dia-clr-sctp-v6", Attack(317)),
    ("dia-app-not-allowed", Attack(324)),
    ("dia-ulr-plr-one-segment", Attack(8388620)),
    ("dia-plr-split", Split(8388620)),
    ("dia-plr-sctp-ppid0", Attack(8388620)),
    ("dia-realm-binding", Attack(316)),
    ("dia-partner-b-other-flow", Legit),
    ("dia-ulr-legit", Legit),
    ("dia-air-legit-sctp", Legit),
    ("dia-idr-foreign-imsi", Legit),
];
const PARTNER_B_CASES: [&str; 2] = ["dia-realm-binding", "dia-partner-b-other-flow"];

/// Every case of gtp.py; the kind's number is the GTP message type.
const GTP: [(&str, Kind); 9] = [
    ("gtpc-delete-pdn-connection-set", Attack(101)),
    ("gtpc-context-request", Attack(130)),
    ("gtpc-imsi-plmn-alert", Alert),
    ("gtpu-gtp-in-gtp", Attack(255)),
    ("gtpu-gtp-in-gtp-v6", Attack(255)),
    ("gtpu-gtp-in-gtp-ext-header", Attack(255)),
    ("gtpv1c-sgsn-context-request", Attack(50)),
    ("gtpc-create-session-legit", Legit),
    ("gtpu-legit", Legit),
];

const NEUTRALIZED_OP: u32 = 127;
const NEUTRALIZED_CMD: u32 = 0xFF_FFFE;

// ---- helpers ----

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks").join(name)
}

/// A child process killed (and reaped) when dropped, also when a test panics.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 sctp_peer.py <args>` on the host (no network), its stdout lines.
fn peer_lines(args: &[&str], stdin: Option<String>) -> Vec<String> {
    let mut c = Command::new("python3")
        .arg(script("sctp_peer.py"))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed: {e}"));
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "sctp_peer.py {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().lines().map(str::to_string).collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The cases of one generator, in its order, checked against a table that names every one.
fn corpus(dir: &Path, generator: &'static str, table: &[(&str, Kind)]) -> Vec<(String, Kind, Vec<Vec<u8>>)> {
    let got = generate(dir, &[generator]);
    let names: BTreeSet<&str> = got.iter().map(|(_, n, _)| n.as_str()).collect();
    let want: BTreeSet<&str> = table.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "{generator}.py's cases and this layer's table differ: classify every case");
    got.into_iter()
        .map(|(_, name, frames)| {
            let kind = table.iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(matches!(kind, Split(_)), SPLIT.contains(&name.as_str()), "{name}");
            (name, kind, frames)
        })
        .collect()
}

/// The transport payload of an Ethernet frame (at most 802.1Q tags, IPv4 without options or
/// IPv6 without extension headers, as the generators build them): (IP protocol, payload).
/// Read here directly, with no sigwall code.
fn l4_payload(f: &[u8]) -> (u8, Vec<u8>) {
    let mut off = 12;
    while u16::from_be_bytes([f[off], f[off + 1]]) == 0x8100 {
        off += 4;
    }
    let l3 = off + 2;
    let (proto, l4, end) = match u16::from_be_bytes([f[off], f[off + 1]]) {
        0x0800 => {
            let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
            (f[l3 + 9], l3 + (f[l3] & 0x0f) as usize * 4, l3 + total)
        }
        0x86dd => (f[l3 + 6], l3 + 40, l3 + 40 + u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize),
        t => panic!("ethertype {t:#06x}"),
    };
    let p = &f[l4..end];
    match proto {
        17 => (17, p[8..].to_vec()),
        6 => (6, p[(p[12] >> 4) as usize * 4..].to_vec()),
        132 => (132, p.to_vec()),
        _ => panic!("protocol {proto}"),
    }
}

/// The user data of every DATA chunk of an SCTP packet, in order.
fn sctp_user_data(sctp: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 12;
    while off + 4 <= sctp.len() {
        let len = u16::from_be_bytes([sctp[off + 2], sctp[off + 3]]) as usize;
        if sctp[off] == 0 {
            out.push(sctp[off + 16..off + len].to_vec());
        }
        off += len.div_ceil(4) * 4;
    }
    out
}

fn events(d: &Daemon) -> Vec<Value> {
    let out = Command::new(sigwall_bin()).args(["events", "--socket", d.socket().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The in-path workers' counters. A worker publishes them every 100 ms while busy and as soon as
/// it is idle (after at most a 50 ms poll): read them once the last frames have had the time.
fn worker(d: &Daemon) -> Value {
    std::thread::sleep(Duration::from_millis(250));
    sigwall::control::call(&d.socket(), sigwall::control::Command::Stats, Duration::from_secs(5))
        .expect("stats")["inpath_daemon"]
        .clone()
}

fn start(lab: &InpathLab, dir: &Path) -> Daemon {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let d = Daemon::start(&lab.lab, &sigwall_bin(), &policy, &["--forward-to", &lab.fwd_if]);
    let ic = lab.lab.ipx_ns.clone();
    assert!((0..3).any(|_| netns::ping(&ic, CORE_ADDR, Duration::from_secs(1))), "ping ic -> core");
    d
}

/// Events of the in-path worker for `rule`, with what was done.
fn inpath_outcomes(ev: &[Value], rule: &str) -> Vec<String> {
    ev.iter().filter(|e| e["rule"] == rule).map(|e| e["inpath"].as_str().unwrap_or("").to_string()).collect()
}

// ---- SS7 on a live SCTP association ----

/// The SCTP server at the core (`sctp_peer.py server`), logging to `log`.
fn sctp_server(lab: &InpathLab, dir: &Path) -> (Reaped, PathBuf) {
    let log = dir.join("core-sctp.jsonl");
    let ready = dir.join("core-sctp.ready");
    let child = lab
        .core_command("python3")
        .arg(script("sctp_peer.py"))
        .args(["server", "--addr", CORE_ADDR, "--seconds", "300", "--log"])
        .arg(&log)
        .arg("--ready")
        .arg(&ready)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .spawn()
        .expect("python3");
    let child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the SCTP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, log)
}

/// One association from the partner: `plan` (steps of packets of chunks) sent by
/// `sctp_peer.py client`; returns what the client reports.
fn sctp_client(lab: &InpathLab, dir: &Path, sport: u16, plan: &Value) -> Value {
    let plan_file = dir.join(format!("plan-{sport}.json"));
    let out = dir.join(format!("client-{sport}.json"));
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let status = lab
        .lab
        .ipx_command("timeout")
        .args(["120", "python3"])
        .arg(script("sctp_peer.py"))
        .args(["client", "--src", IC_PARTNER, "--dst", CORE_ADDR, "--sport", &sport.to_string(), "--plan"])
        .arg(&plan_file)
        .arg("--out")
        .arg(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .expect("python3");
    assert!(status.success(), "sctp_peer.py client: {status}");
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// The core's log lines of the association whose INIT came from `sport`.
fn core_log(log: &Path, sport: u16) -> Vec<Value> {
    let all: Vec<Value> =
        std::fs::read_to_string(log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let start = all
        .iter()
        .position(|e| e["ev"] == "init" && e["sport"] == sport)
        .unwrap_or_else(|| panic!("no INIT from port {sport} at the core: {all:?}"));
    let end = all[start + 1..].iter().position(|e| e["ev"] == "init").map_or(all.len(), |i| start + 1 + i);
    all[start..end].to_vec()
}

/// The DATA chunks of every frame of every case (one `sctp_peer.py chunks` run: scapy reads
/// them), as plan chunks: per case, per frame.
fn frame_chunks(cases: &[&(String, Kind, Vec<Vec<u8>>)]) -> Vec<Vec<Value>> {
    let input: String = cases.iter().flat_map(|(_, _, frames)| frames.iter().map(|f| to_hex(f) + "\n")).collect();
    let mut lines = peer_lines(&["chunks"], Some(input)).into_iter();
    cases
        .iter()
        .map(|(_, _, frames)| frames.iter().map(|_| serde_json::from_str(&lines.next().unwrap()).unwrap()).collect())
        .collect()
}

/// A plan step for a case: one packet per frame that carries its message under test, up to the
/// first frame whose last DATA chunk ends a message.
fn step(label: &str, kind: Kind, per_frame: &[Value]) -> Value {
    let k = per_frame
        .iter()
        .position(|chunks| chunks.as_array().unwrap().last().is_some_and(|c| c["end"] == true))
        .expect("a frame that ends the message");
    serde_json::json!({"label": label, "kind": format!("{kind:?}"), "packets": per_frame[..=k]})
}

/// Sent messages of a client report, reassembled: (step label, TSNs, user data).
fn sent_messages(client: &Value) -> Vec<(String, Vec<u64>, Vec<u8>)> {
    let mut out = Vec::new();
    for s in client["steps"].as_array().unwrap() {
        let mut tsns = Vec::new();
        let mut data = Vec::new();
        for c in s["chunks"].as_array().unwrap() {
            if c["begin"] == true {
                tsns.clear();
                data.clear();
            }
            tsns.push(c["tsn"].as_u64().unwrap());
            data.extend(hex(c["data"].as_str().unwrap()));
            if c["end"] == true {
                out.push((s["label"].as_str().unwrap().to_string(), tsns.clone(), data.clone()));
            }
        }
    }
    out
}

/// The first MAP operation of a message as the core's pycrate decoded it.
fn op_of(m: &Value) -> u32 {
    let ops = m["map"].as_array().unwrap_or_else(|| panic!("pycrate could not decode: {m}"));
    ops[0][1].as_u64().unwrap_or_else(|| panic!("no local operation code: {m}")) as u32
}

/// tshark's reading of the partner's DATA as captured at the core (an independent check of
/// the CRC32c and of the MAP decoding): every SCTP checksum good, and per first TSN of each
/// message (relative to the initial TSN, as tshark numbers them) its MAP operation code (a
/// retransmitted TSN read once).
fn tshark_ops(dir: &Path, frames: Vec<Vec<u8>>) -> std::collections::BTreeMap<u64, String> {
    let pcap = dir.join("core-sctp.pcap");
    let packets: Vec<Packet> =
        frames.into_iter().map(|data| Packet { sec: 0, usec: 0, orig_len: data.len() as u32, data }).collect();
    write_pcap(&pcap, &packets);
    let fields = ["ip.src", "sctp.checksum.status", "sctp.data_tsn", "sctp.data_b_bit", "gsm_old.localValue"];
    let mut ops = std::collections::BTreeMap::new();
    for (n, r) in tshark_fields(&pcap, &fields) {
        if r["ip.src"] != IC_PARTNER || r["sctp.checksum.status"].is_empty() {
            continue;
        }
        assert_eq!(r["sctp.checksum.status"], "1", "frame {n}: tshark finds the CRC32c bad");
        let begins: Vec<u64> = r["sctp.data_tsn"]
            .split(',')
            .zip(r["sctp.data_b_bit"].split(','))
            .filter(|(_, b)| *b == "1" || *b == "True")
            .map(|(t, _)| t.parse().unwrap())
            .collect();
        let codes: Vec<&str> = r["gsm_old.localValue"].split(',').filter(|c| !c.is_empty()).collect();
        assert_eq!(begins.len(), codes.len(), "frame {n}: one operation per message: {r:?}");
        for (t, c) in begins.into_iter().zip(codes) {
            ops.insert(t, c.to_string());
        }
    }
    ops
}

/// The association checks every SCTP run shares: set up, every packet SACKed, no ABORT, CRC32c
/// and verification tags right both ways, the TSNs at the core exactly the client's, without
/// gap, and the association still up at the end (HEARTBEAT-ACK, then an orderly SHUTDOWN).
fn assert_association_up(client: &Value, core: &[Value]) {
    assert_eq!(client["established"], true, "{client}");
    for s in client["steps"].as_array().unwrap() {
        assert_eq!(s["acked"], true, "{}: not SACKed: {client}", s["label"]);
    }
    assert_eq!((client["aborts"].as_u64(), client["bad_crc"].as_u64()), (Some(0), Some(0)), "{client}");
    for bad in ["bad_crc", "bad_vtag", "bad_cookie", "malformed", "abort", "no_association"] {
        assert!(!core.iter().any(|e| e["ev"] == bad), "{bad} at the core: {core:?}");
    }
    let tsns: BTreeSet<u64> = core.iter().filter(|e| e["ev"] == "data").map(|e| e["tsn"].as_u64().unwrap()).collect();
    let (first, last) = (client["initial_tsn"].as_u64().unwrap(), client["last_tsn"].as_u64().unwrap());
    assert!(last >= first, "no TSN wrap expected in one run");
    assert_eq!(tsns, (first..=last).collect::<BTreeSet<_>>(), "the TSNs at the core are the client's, contiguous");
    let data_in_order: Vec<u64> =
        core.iter().filter(|e| e["ev"] == "data").map(|e| e["tsn"].as_u64().unwrap()).collect();
    assert!(data_in_order.windows(2).all(|w| w[0] < w[1]), "delivered in TSN order: {data_in_order:?}");
    assert_eq!(client["heartbeat_ack"], true, "HEARTBEAT answered at the end");
    assert_eq!(client["shutdown_ack"], true, "SHUTDOWN answered");
    assert!(core.iter().any(|e| e["ev"] == "closed"), "SHUTDOWN-COMPLETE reached the core");
}

/// SS7: every case of ss7.py on one live SCTP association from the partner, each between two
/// legitimate MAP messages (updateLocation / sendAuthenticationInfo, pycrate): the core never
/// receives an attack operation (pycrate reads 127 where the attack's code was, and nothing else
/// differs), receives every legitimate message byte for byte, sees the TSNs contiguous, and the
/// association is still up at the end. The multi-piece case goes on a second association.
#[test]
fn every_ss7_case_on_a_live_sctp_association() {
    let dir = tempdir("inpath-corpus-ss7");
    let cases = corpus(dir.path(), "ss7", &SS7);
    let lab = InpathLab::new();
    let d = start(&lab, dir.path());
    let (_server, log) = sctp_server(&lab, dir.path());

    let main: Vec<_> = cases.iter().filter(|(_, k, _)| !matches!(k, Split(_))).collect();
    let legit = peer_lines(&["legit", "--count", &(main.len() + 3).to_string()], None);
    let legit_step = |i: usize| {
        serde_json::json!({"label": format!("legit-{i}"), "kind": "Legit", "packets": [[
            {"stream": 1, "ppid": 3, "begin": true, "end": true, "data": legit[i]}]]})
    };
    let gap = cases.iter().find(|(_, k, _)| matches!(k, Split(_))).unwrap();
    let chunks = frame_chunks(&main.iter().copied().chain([gap]).collect::<Vec<_>>());
    let mut plan = vec![legit_step(0)];
    for (i, (name, kind, _)) in main.iter().enumerate() {
        plan.push(step(name, *kind, &chunks[i]));
        plan.push(legit_step(i + 1));
    }
    let cap = Capture::start(&lab.core_ns, &lab.core_if);
    let client = sctp_client(&lab, dir.path(), 2905, &Value::Array(plan.clone()));
    let captured = cap.finish(Duration::from_millis(300), Duration::from_secs(5));
    let core = core_log(&log, 2905);
    assert_association_up(&client, &core);

    let sent = sent_messages(&client);
    let got: Vec<&Value> = core.iter().filter(|e| e["ev"] == "message").collect();
    assert_eq!(got.len(), sent.len(), "every message delivered once");
    // What was sent, decoded by pycrate too (one run for all).
    let input: String = sent.iter().map(|(_, _, data)| to_hex(data) + "\n").collect();
    let sent_ops: Vec<u32> = peer_lines(&["decode"], Some(input))
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()[0][1].as_u64().expect("a local operation code") as u32)
        .collect();
    let mut neutralized = 0;
    let mut want_ops = std::collections::BTreeMap::new();
    for (((label, tsns, data), m), &sent_op) in sent.iter().zip(&got).zip(&sent_ops) {
        let tsns_core: Vec<u64> = m["tsns"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
        assert_eq!(&tsns_core, tsns, "{label}");
        let at_core = hex(m["data"].as_str().unwrap());
        let kind = plan.iter().find(|s| s["label"] == *label).unwrap()["kind"].as_str().unwrap().to_string();
        let attack_op = main.iter().find(|(n, ..)| n == label).and_then(|(_, k, _)| match k {
            Attack(op) => Some(*op),
            _ => None,
        });
        if attack_op == Some(sent_op) {
            assert_eq!(op_of(m), NEUTRALIZED_OP, "{label}: the attack's operation reached the core: {m}");
            assert_eq!(at_core.len(), data.len(), "{label}: same length");
            let diff: Vec<usize> = (0..data.len()).filter(|&i| data[i] != at_core[i]).collect();
            assert_eq!(diff.len(), 1, "{label}: one octet rewritten, nothing else: {diff:?}");
            assert_eq!((data[diff[0]] as u32, at_core[diff[0]] as u32), (sent_op, NEUTRALIZED_OP), "{label}");
            neutralized += 1;
            want_ops.insert(tsns[0], NEUTRALIZED_OP.to_string());
        } else {
            want_ops.insert(tsns[0], sent_op.to_string());
            assert_eq!(at_core, *data, "{label} ({kind}): a legitimate message arrives byte for byte");
            assert_eq!(op_of(m), sent_op, "{label}");
        }
    }
    let attacks = main.iter().filter(|(_, k, _)| matches!(k, Attack(_))).count();
    assert_eq!(neutralized, attacks, "every attack case neutralized once");
    // tshark numbers TSNs from the association's initial TSN.
    let base = client["initial_tsn"].as_u64().unwrap();
    let want_ops: std::collections::BTreeMap<u64, String> = want_ops.into_iter().map(|(t, o)| (t - base, o)).collect();
    assert_eq!(tshark_ops(dir.path(), captured), want_ops, "tshark reads at the core what pycrate read");
    let ev = events(&d);
    let stopped: Vec<&Value> = ev.iter().filter(|e| e["inpath"] == "neutralized").collect();
    assert_eq!(stopped.len(), attacks, "one neutralization event per attack: {ev:#?}");
    assert!(ev.iter().all(|e| e["inpath"] == "neutralized"), "no other verdict on this association: {ev:#?}");
    let s = d.stats();
    assert_eq!(s.cell(Reason::FlowBlocked, Class::Sigtran), 0, "the association was never blocked");
    let w = worker(&d);
    assert_eq!(w["neutralized"].as_u64(), Some(attacks as u64), "{w}");
    assert_eq!((w["uninspected_dropped"].as_u64(), w["blocked_dropped"].as_u64()), (Some(0), Some(0)), "{w}");

    // The split ATI, on an association of its own: legitimate, the ATI in two DATA chunks (B,
    // then E, in two packets), legitimate.
    let before = (d.stats(), worker(&d));
    let plan = vec![legit_step(main.len() + 1), step(&gap.0, gap.1, &chunks[main.len()]), legit_step(main.len() + 2)];
    let client = sctp_client(&lab, dir.path(), 2906, &Value::Array(plan));
    let core = core_log(&log, 2906);
    split_ss7(&d, &client, &core, &before);
}

/// The fragmented ATI (see [`SPLIT`]): its first piece is held until the second arrives, the
/// whole message is judged and the operation code rewritten in the piece that carries it: the
/// core reassembles operation 127, the legitimate messages on both sides arrive, the association
/// stays up (HEARTBEAT-ACK, SHUTDOWN) and is never blocked.
fn split_ss7(d: &Daemon, client: &Value, core: &[Value], before: &(sigwall::stats::Snapshot, Value)) {
    let ops: Vec<Option<u64>> = core
        .iter()
        .filter(|e| e["ev"] == "message")
        .map(|m| m["map"].as_array().and_then(|c| c[0][1].as_u64()))
        .collect();
    assert_eq!(
        ops,
        [Some(2), Some(NEUTRALIZED_OP as u64), Some(56)],
        "the legitimate updateLocation, the ATI neutralized, the next legitimate message: {core:?}"
    );
    assert_association_up(client, core);
    let ev = events(d);
    let ati = ev.iter().find(|e| e["flow"]["sport"] == 2906 && e["rule"] == "ss7-category1").expect("the ATI's event");
    assert_eq!(ati["inpath"], "neutralized", "{ati}");
    let w = worker(d);
    let delta = |k: &str| w[k].as_u64().unwrap() - before.1[k].as_u64().unwrap();
    assert_eq!((delta("held_messages"), delta("blocked_dropped")), (1, 0), "{w}");
    let s = d.stats();
    assert_eq!(
        s.cell(Reason::FlowBlocked, Class::Sigtran),
        before.0.cell(Reason::FlowBlocked, Class::Sigtran),
        "the association is never blocked"
    );
}

// ---- Diameter on kernel TCP ----

/// The Diameter messages in `b`, if it is exactly a sequence of whole ones.
fn whole_messages(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (mut out, mut off) = (Vec::new(), 0);
    while off < b.len() {
        if b.len() - off < 20 {
            return None;
        }
        let len = u32::from_be_bytes([0, b[off + 1], b[off + 2], b[off + 3]]) as usize;
        if len < 20 || off + len > b.len() {
            return None;
        }
        out.push(b[off..off + len].to_vec());
        off += len;
    }
    Some(out)
}

/// What a case sends on the connection: one write per corpus frame (its TCP payload, or its
/// SCTP DATA chunks' user data), from `skip`, up to the frame that completes whole messages.
fn diameter_writes(frames: &[Vec<u8>], skip: usize) -> Vec<Vec<u8>> {
    let (mut writes, mut total) = (Vec::new(), Vec::new());
    for f in &frames[skip..] {
        let (proto, p) = l4_payload(f);
        let w = if proto == 132 { sctp_user_data(&p).concat() } else { p };
        total.extend_from_slice(&w);
        writes.push(w);
        if whole_messages(&total).is_some() {
            return writes;
        }
    }
    panic!("no whole Diameter message in the frames");
}

fn command_code(m: &[u8]) -> u32 {
    u32::from_be_bytes([0, m[5], m[6], m[7]])
}

/// A TCP connection from `src` (bound before connecting, so the address is the peer's) to the
/// core's Diameter port, made in namespace `ns`.
fn connect_from(ns: &str, src: &'static str) -> TcpStream {
    use std::os::fd::FromRawFd as _;
    in_netns(ns, move || {
        let sa = |a: &str, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.parse::<std::net::Ipv4Addr>().unwrap().octets()) },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: a fresh socket, bound and connected with valid sockaddr_in values, then owned
        // by the TcpStream.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let stream = TcpStream::from_raw_fd(fd);
            let local = sa(src, 0);
            let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
            assert_eq!(rc, 0, "bind {src}: {}", std::io::Error::last_os_error());
            let remote = sa(CORE_ADDR, 3868);
            let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
            assert_eq!(rc, 0, "connect from {src}: {}", std::io::Error::last_os_error());
            stream
        }
    })
}

/// What one connection delivered: the messages the core read, and whether the core's answer
/// (a DWA written after the last expected message) came back to the client.
struct Delivered {
    messages: Vec<Vec<u8>>,
    answered: bool,
}

/// One Diameter connection from `src`: `writes` (label, bytes) each as its own segment, the
/// core reading up to `expect` whole messages (5 s of silence ends it), then answering `dwa`.
fn diameter_connection(
    lab: &InpathLab,
    src: &'static str,
    writes: &[(String, Vec<u8>)],
    expect: usize,
    dwa: &[u8],
) -> Delivered {
    let listener = in_netns(&lab.core_ns, || TcpListener::bind(format!("{CORE_ADDR}:3868")).unwrap());
    let answer = dwa.to_vec();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut msgs = Vec::new();
        while msgs.len() < expect {
            let mut head = [0u8; 4];
            if s.read_exact(&mut head).is_err() {
                break;
            }
            let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
            let mut rest = vec![0u8; len.saturating_sub(4)];
            if s.read_exact(&mut rest).is_err() {
                break;
            }
            msgs.push([head.to_vec(), rest].concat());
        }
        let _ = s.write_all(&answer);
        (peer.ip().to_string(), msgs, s)
    });
    let mut c = connect_from(&lab.lab.ipx_ns, src);
    c.set_nodelay(true).unwrap();
    for (_, w) in writes {
        c.write_all(w).unwrap();
        // One write, one segment: the next waits until this one has been sent and ACKed.
        std::thread::sleep(Duration::from_millis(30));
    }
    c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut back = vec![0u8; dwa.len()];
    let answered = c.read_exact(&mut back).is_ok() && back == dwa;
    let (from, messages, _server_end) = server.join().unwrap();
    assert_eq!(from, src, "the connection's source");
    Delivered { messages, answered }
}

/// Check what the core read against what was sent: attacks (the message with the case's
/// command code) arrive with Command-Code 0xFFFFFE and every other octet unchanged, everything
/// else byte for byte. Returns the number of neutralized messages.
fn check_diameter(sent: &[(String, Kind, Vec<u8>)], got: &[Vec<u8>]) -> usize {
    assert_eq!(got.len(), sent.len(), "every message delivered, none dropped");
    let mut neutralized = 0;
    for ((label, kind, m), at_core) in sent.iter().zip(got) {
        if *kind == Attack(command_code(m)) {
            assert_eq!(command_code(at_core), NEUTRALIZED_CMD, "{label}: the attack's command reached the core");
            assert_eq!((&at_core[..5], &at_core[8..]), (&m[..5], &m[8..]), "{label}: only the command code changed");
            neutralized += 1;
        } else {
            assert_eq!(at_core, m, "{label} ({kind:?}): arrives byte for byte");
        }
    }
    neutralized
}

/// Diameter: every case of diameter.py on kernel TCP connections, each attack between two
/// legitimate requests (ULR, AIR: scapy): at the core the attacks carry Command-Code 0xFFFFFE
/// (the TCP checksum recomputed, or the core's kernel would not have delivered them), the
/// legitimate requests are byte for byte the same, and the connection is up at the end (a DWR
/// crosses, the core's DWA comes back). partner-b's realm binding goes on partner-b's own
/// connection, between two of partner-b's own requests; the split PLR on a connection of its own.
#[test]
fn every_diameter_case_on_a_kernel_tcp_connection() {
    let dir = tempdir("inpath-corpus-dia");
    let cases = corpus(dir.path(), "diameter", &DIAMETER);
    let lab = InpathLab::new();
    let d = start(&lab, dir.path());
    // partner-b's address on the interconnect side, reachable from the core on the segment.
    for args in [
        vec!["-n", &lab.lab.ipx_ns, "addr", "add", "198.18.2.20/32", "dev", &lab.lab.ipx_if],
        vec!["-n", &lab.core_ns, "route", "add", "198.18.2.0/24", "dev", &lab.core_if],
    ] {
        let st = Command::new("ip").args(&args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    }
    let main: Vec<_> =
        cases.iter().filter(|(n, k, _)| !matches!(k, Split(_)) && !PARTNER_B_CASES.contains(&n.as_str())).collect();
    let legit = peer_lines(&["legit", "--kind", "diameter", "--count", &(main.len() + 3).to_string()], None);
    let legit: Vec<Vec<u8>> = legit.iter().map(|l| hex(l)).collect();
    let (dwr, dwa) = (legit[legit.len() - 2].clone(), legit[legit.len() - 1].clone());
    assert_eq!((command_code(&dwr), command_code(&dwa)), (280, 280));

    // Connection 1, the partner: legitimate, case, legitimate, ..., DWR.
    let mut writes = vec![("legit-0".to_string(), legit[0].clone())];
    let mut sent = vec![("legit-0".to_string(), Legit, legit[0].clone())];
    for (i, (name, kind, frames)) in main.iter().enumerate() {
        let w = diameter_writes(frames, 0);
        for m in whole_messages(&w.concat()).unwrap() {
            sent.push((name.clone(), *kind, m));
        }
        writes.extend(w.into_iter().map(|w| (name.clone(), w)));
        let l = format!("legit-{}", i + 1);
        writes.push((l.clone(), legit[i + 1].clone()));
        sent.push((l, Legit, legit[i + 1].clone()));
    }
    writes.push(("dwr".into(), dwr.clone()));
    sent.push(("dwr".into(), Legit, dwr.clone()));
    let got = diameter_connection(&lab, IC_PARTNER, &writes, sent.len(), &dwa);
    let neutralized = check_diameter(&sent, &got.messages);
    assert!(got.answered, "the connection is up at the end: the core's DWA came back");
    let attacks = main.iter().filter(|(_, k, _)| matches!(k, Attack(_))).count();
    assert_eq!(neutralized, attacks, "every attack case neutralized once");

    // Connection 2, partner-b: its own ULR, the ULR claiming the partner's realm, its own ULR.
    let own = &cases.iter().find(|(n, ..)| n == "dia-partner-b-other-flow").unwrap().2;
    let binding = cases.iter().find(|(n, ..)| n == "dia-realm-binding").unwrap();
    let b_sent = vec![
        ("dia-partner-b-other-flow".to_string(), Legit, diameter_writes(own, 0).concat()),
        (binding.0.clone(), binding.1, diameter_writes(&binding.2, 0).concat()),
        ("dia-partner-b-other-flow".to_string(), Legit, diameter_writes(own, 1).concat()),
    ];
    let b_writes: Vec<_> = b_sent.iter().map(|(l, _, m)| (l.clone(), m.clone())).collect();
    let got = diameter_connection(&lab, PARTNER_B, &b_writes, 3, &dwa);
    assert_eq!(check_diameter(&b_sent, &got.messages), 1, "the realm binding neutralized");
    assert!(got.answered, "partner-b's connection is up at the end");

    let ev = events(&d);
    let stopped: Vec<&Value> = ev.iter().filter(|e| e["inpath"] == "neutralized").collect();
    assert_eq!(stopped.len(), attacks + 1, "one neutralization event per attack: {ev:#?}");
    assert_eq!(inpath_outcomes(&ev, "diameter-realm-binding"), ["neutralized"]);
    assert!(ev.iter().all(|e| e["inpath"] == "neutralized"), "no other verdict: {ev:#?}");
    let s = d.stats();
    assert_eq!(
        (s.cell(Reason::FlowBlocked, Class::Diameter), s.cell(Reason::PeerBlocked, Class::Diameter)),
        (0, 0),
        "no connection or peer blocked"
    );
    let w = worker(&d);
    assert_eq!((w["uninspected_dropped"].as_u64(), w["blocked_dropped"].as_u64()), (Some(0), Some(0)), "{w}");

    // The split PLR: legitimate, the PLR in two segments, legitimate, DWR.
    let gap = cases.iter().find(|(_, k, _)| matches!(k, Split(_))).unwrap();
    let before = (d.stats(), worker(&d));
    let mut g_writes = vec![("legit-a".to_string(), legit[main.len() + 1].clone())];
    g_writes.extend(diameter_writes(&gap.2, 0).into_iter().map(|w| (gap.0.clone(), w)));
    g_writes.push(("legit-b".to_string(), legit[main.len() + 2].clone()));
    g_writes.push(("dwr".to_string(), dwr.clone()));
    let got = diameter_connection(&lab, IC_PARTNER, &g_writes, 4, &dwa);
    split_diameter(&d, &got, &before, &dwr);
}

/// The PLR split over two segments (see [`SPLIT`]): the segment with its header is held until
/// the message is whole, then its Command-Code is rewritten: the core reads the AIR, the PLR
/// with 0xFFFFFE and nothing else changed, the next legitimate request and the DWR; the
/// connection answers and is never blocked.
fn split_diameter(d: &Daemon, got: &Delivered, before: &(sigwall::stats::Snapshot, Value), dwr: &[u8]) {
    let cmds: Vec<u32> = got.messages.iter().map(|m| command_code(m)).collect();
    assert_eq!(cmds.len(), 4, "{cmds:?}");
    assert_eq!((cmds[0], cmds[1]), (318, NEUTRALIZED_CMD), "the AIR, then the PLR neutralized: {cmds:?}");
    assert_eq!(got.messages[3], dwr, "the DWR after the next legitimate request");
    assert!(got.answered, "the connection is up at the end");
    let ev = events(d);
    let plr: Vec<String> = ev
        .iter()
        .filter(|e| e["rule"] == "diameter-command-blocked")
        .map(|e| e["inpath"].as_str().unwrap().to_string())
        .collect();
    assert!(plr.iter().all(|p| p == "neutralized"), "{ev:#?}");
    let w = worker(d);
    let delta = |k: &str| w[k].as_u64().unwrap() - before.1[k].as_u64().unwrap();
    assert_eq!(delta("blocked_dropped"), 0, "{w}");
    assert!(delta("held_segments") >= 1, "{w}");
    let s = d.stats();
    assert_eq!(
        s.cell(Reason::FlowBlocked, Class::Diameter),
        before.0.cell(Reason::FlowBlocked, Class::Diameter),
        "the connection is never blocked"
    );
}

// ---- GTP over UDP ----

fn udp(ns: &str, addr: String) -> UdpSocket {
    let s = in_netns(ns, move || UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}")));
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s
}

/// GTP: every case of gtp.py on the partner's GTP-C and GTP-U paths (UDP 2123 and 2152), each
/// attack between two legitimate messages (the corpus's Create Session Requests and G-PDUs, and
/// the Create Session Requests that only raise an alert): at the core the attacks are absent and
/// everything else arrives byte for byte, in order; the paths are not blocked.
#[test]
fn every_gtp_case_on_the_gtp_paths() {
    let dir = tempdir("inpath-corpus-gtp");
    let cases = corpus(dir.path(), "gtp", &GTP);
    let lab = InpathLab::new();
    let d = start(&lab, dir.path());
    let ic = lab.lab.ipx_ns.clone();
    let mut core = Vec::new();
    let mut partner = Vec::new();
    for port in [2123u16, 2152] {
        core.push((port, udp(&lab.core_ns, format!("{CORE_ADDR}:{port}"))));
        partner.push((port, udp(&ic, format!("{IC_PARTNER}:{port}"))));
    }
    let datagram = |f: &Vec<u8>| {
        let (proto, payload) = l4_payload(f);
        assert_eq!(proto, 17);
        let dport = super::attacks::flow_of(f).4;
        (dport, payload)
    };
    // Separators: every frame of the legitimate and alert-only cases.
    let mut separators: Vec<(String, Kind, u16, Vec<u8>)> = Vec::new();
    for (name, kind, frames) in cases.iter().filter(|(_, k, _)| matches!(k, Legit | Alert)) {
        for f in frames {
            let (port, p) = datagram(f);
            separators.push((name.clone(), *kind, port, p));
        }
    }
    let attacks: Vec<_> = cases.iter().filter(|(_, k, _)| matches!(k, Attack(_))).collect();
    assert!(separators.len() > attacks.len(), "enough legitimate messages to surround every attack");
    let mut sequence = Vec::new();
    let mut seps = separators.into_iter();
    for (name, kind, frames) in &attacks {
        sequence.push(seps.next().unwrap());
        let (port, p) = datagram(&frames[0]);
        sequence.push((name.clone(), *kind, port, p));
    }
    sequence.extend(seps);
    for (_, _, port, p) in &sequence {
        let s = &partner.iter().find(|(q, _)| q == port).unwrap().1;
        s.send_to(p, format!("{CORE_ADDR}:{port}")).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    for (port, s) in &core {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.recv(&mut buf) {
            got.push(buf[..n].to_vec());
            assert!(got.len() <= sequence.len(), "more datagrams than were sent");
        }
        let want: Vec<Vec<u8>> = sequence
            .iter()
            .filter(|(_, k, q, _)| q == port && !matches!(k, Attack(_)))
            .map(|(.., p)| p.clone())
            .collect();
        let labels: Vec<&String> = sequence.iter().filter(|(.., q, _)| q == port).map(|(l, ..)| l).collect();
        assert_eq!(got, want, "port {port}: attacks absent, the rest byte for byte in order (sent {labels:?})");
    }
    let ev = events(&d);
    let dropped: Vec<&Value> = ev.iter().filter(|e| e["inpath"] == "dropped").collect();
    assert_eq!(dropped.len(), attacks.len(), "one drop event per attack: {ev:#?}");
    let alerts = sequence.iter().filter(|(_, k, ..)| *k == Alert).count();
    assert_eq!(inpath_outcomes(&ev, "gtpc-imsi-plmn").len(), alerts, "one alert per alert-only message");
    assert!(inpath_outcomes(&ev, "gtpc-imsi-plmn").iter().all(|o| o == "forwarded"), "{ev:#?}");
    let w = worker(&d);
    assert_eq!(w["dropped"].as_u64(), Some(attacks.len() as u64), "{w}");
    assert_eq!(w["uninspected_dropped"].as_u64(), Some(0), "{w}");
    let s = d.stats();
    assert_eq!(
        (s.cell(Reason::FlowBlocked, Class::GtpC), s.cell(Reason::FlowBlocked, Class::GtpU)),
        (0, 0),
        "no path blocked"
    );
}
