//! Attack cases built with independent encoders, sent over the veth lab end to end.
//!
//! The frames come from the Python generators in `tests/integration/attacks/` (scapy for Ethernet, IP,
//! SCTP, TCP, UDP, Diameter, GTPv2-C and GTP-U; pycrate for M3UA, SCCP and TCAP/MAP BER), not
//! from sigwall's own packet builder, so sigwall's decoders are checked against someone else's
//! bytes. Before anything is sent, tshark reads the same frames and must find every one well
//! formed, with good checksums and the message each case claims to be (operation code, command
//! code, message type); a disagreement with sigwall is then sigwall's.
//!
//! Each case is one flow (5-tuple) of its own; its first packet carries the message under test
//! (for a message split over two packets, the second completes it):
//! - attacks whose rule blocks the flow: exactly the expected event (rule, action, peer, flow,
//!   decoded fields), the packet passed (XDP judged it before inspection saw it), every later
//!   packet of the flow dropped in XDP with `flow_blocked`;
//! - the rule configured `block-peer` here (`diameter-realm-binding`): the peer's packets on
//!   another flow are dropped with `peer_blocked`;
//! - alert-only rules (`gtpc-imsi-plmn` by default): one event per packet, nothing dropped;
//! - legitimate traffic and negative controls: no event, every packet passes.
//!
//! Every inspected packet must decode without error into the expected number of messages (so a
//! "no event" really means "decoded and judged harmless", not "not understood"). At the end: rule
//! hits and event counts as expected (control socket, `sigwall events`, and the `--events`
//! file). Needs root, python3 with scapy and pycrate, and tshark (`cargo xtask setup`); fails
//! rather than skips without them.
//!
//! Evasions (attacks shaped to be parsed differently by a filter and by the receiver) are the
//! `evasions` layer's, with the cases that used to be ignored here.

use std::{
    collections::{BTreeMap, HashMap},
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use filter_common::{Class, Reason};
use filter_testkit::{daemon::Daemon, netns::Lab, netns::RawSocket, sigwall_bin, tempdir};
use serde_json::{Value, json};
use sigwall::{
    control::{self, Command as Ctl},
    stats::Snapshot,
};

/// The home network: subscribers 00101…, GTs 35191…, realm epc.mnc001.mcc001. The partner
/// (roaming partner, MCC 228 MNC 02) claims GTs 4179…, its realm and PLMN, and S6a/SLg; partner-b
/// (MNC 03) its own. See `tests/integration/attacks/README.md`.
pub(super) const POLICY: &str = r#"
[inspect]
home_imsi_prefixes = ["00101"]
home_gt_prefixes = ["35191"]
home_realms = ["epc.mnc001.mcc001.3gppnetwork.org"]
block_ttl_s = 120

# The stateful rules would add their alerts to these cases; tests::subscriber judges them.
[inspect.subscriber]
enabled = false

[[inspect.rule]]
name = "diameter-realm-binding"
action = "block-peer"
ttl_s = 120

[[peer]]
name = "partner"
prefixes = ["198.18.1.0/24", "2001:db8:1::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]
gt_prefixes = ["4179"]
realms = ["epc.mnc002.mcc228.3gppnetwork.org"]
plmn_ids = ["22802"]
diameter_apps = [16777251, 16777255]
inspect_gtpu = "all"

[[peer]]
name = "partner-b"
prefixes = ["198.18.2.0/24"]
allow = ["sigtran", "diameter", "gtp-c"]
gt_prefixes = ["33609"]
realms = ["epc.mnc003.mcc228.3gppnetwork.org"]
plmn_ids = ["22803"]
"#;

const GENERATORS: [&str; 3] = ["ss7", "diameter", "gtp"];
const EVENT_WAIT: Duration = Duration::from_secs(5);
const HOME_IMSI: &str = "001010000000042";
const HOME_MSISDN: &str = "351910000042";
const PARTNER_GT: &str = "41790000010";
const PARTNER_REALM: &str = "epc.mnc002.mcc228.3gppnetwork.org";

// ---- generated frames ----

/// Cases in generator order: (generator, case name, frames).
pub(super) type Generated = Vec<(&'static str, String, Vec<Vec<u8>>)>;

/// Run the generators (in parallel); each also writes its frames to `<dir>/<generator>.pcap`.
pub(super) fn generate(dir: &Path, generators: &[&'static str]) -> Generated {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks");
    let children: Vec<_> = generators
        .iter()
        .map(|g| {
            let child = Command::new("python3")
                .arg(scripts.join(format!("{g}.py")))
                .arg("--pcap")
                .arg(dir.join(format!("{g}.pcap")))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("python3 is needed for the attack generators: {e}"));
            (*g, child)
        })
        .collect();
    let mut out = Vec::new();
    for (g, child) in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{g}.py failed (needs scapy and pycrate):\n{}", String::from_utf8_lossy(&o.stderr));
        for line in String::from_utf8(o.stdout).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{g}.py printed {line:?}: {e}"));
            let frames = v["frames"].as_array().unwrap().iter().map(|h| hex(h.as_str().unwrap())).collect();
            out.push((g, v["case"].as_str().unwrap().to_string(), frames));
        }
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex string");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The flow of an Ethernet frame as the events report it: (src, dst, proto, sport, dport).
/// Read here directly (no sigwall code), for frames with at most 802.1Q tags and no IPv6
/// extension headers.
pub(super) fn flow_of(f: &[u8]) -> (String, String, u8, u16, u16) {
    let mut off = 12;
    while u16::from_be_bytes([f[off], f[off + 1]]) == 0x8100 {
        off += 4;
    }
    let l3 = off + 2;
    let (src, dst, proto, l4) = match u16::from_be_bytes([f[off], f[off + 1]]) {
        0x0800 => {
            let ihl = (f[l3] & 0x0f) as usize * 4;
            let a = |o: usize| Ipv4Addr::new(f[l3 + o], f[l3 + o + 1], f[l3 + o + 2], f[l3 + o + 3]).to_string();
            (a(12), a(16), f[l3 + 9], l3 + ihl)
        }
        0x86dd => {
            let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&f[l3 + o..l3 + o + 16]).unwrap()).to_string();
            (a(8), a(24), f[l3 + 6], l3 + 40)
        }
        t => panic!("ethertype {t:#06x}"),
    };
    (src, dst, proto, u16::from_be_bytes([f[l4], f[l4 + 1]]), u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]))
}

// ---- tshark, the independent reader ----

/// tshark fields per frame of a pcap: frame number → field → value (occurrences joined by ',').
pub(super) fn tshark_fields(pcap: &Path, fields: &[&str]) -> BTreeMap<usize, HashMap<String, String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap);
    // Verify every checksum scapy computed (off by default in tshark).
    cmd.args(["-o", "sctp.checksum:CRC-32C", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]);
    cmd.args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("tshark is needed (cargo xtask setup installs it): {e}"));
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let mut m = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut cols = line.split('\t');
        let n: usize = cols.next().unwrap().parse().unwrap();
        let row = fields.iter().zip(cols).map(|(f, v)| (f.to_string(), v.to_string())).collect();
        m.insert(n, row);
    }
    m
}

/// Every frame well formed for tshark (no malformed or error-level expert info, no bad
/// checksum), and each case's trigger frame the message it claims to be.
fn check_with_tshark(dir: &Path, generators: &[&str], generated: &Generated, cases: &[Case]) {
    const CHECKSUMS: [&str; 3] = ["sctp.checksum.status", "udp.checksum.status", "tcp.checksum.status"];
    const MESSAGES: [&str; 4] = ["gsm_old.localValue", "diameter.cmd.code", "gtpv2.message_type", "gtp.message"];
    let mut fields = vec!["_ws.malformed", "_ws.expert.severity", "_ws.expert.message"];
    fields.extend(CHECKSUMS);
    fields.extend(MESSAGES);
    for g in generators {
        let pcap = dir.join(format!("{g}.pcap"));
        let rows = tshark_fields(&pcap, &fields);
        let mut n = 0;
        for (_, name, frames) in generated.iter().filter(|(gen_, ..)| gen_ == g) {
            let case = cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no expectation for {name}"));
            for i in 0..frames.len() {
                n += 1;
                let r = rows.get(&n).unwrap_or_else(|| panic!("tshark lost frame {n} of {}", pcap.display()));
                let what = format!("{name} frame {i} ({g}.pcap frame {n})");
                assert_eq!(r["_ws.malformed"], "", "{what}: tshark: {}", r["_ws.expert.message"]);
                // Expert severities: 0x800000 error, 0x600000 warning and below are tolerated.
                for s in r["_ws.expert.severity"].split(',').filter(|s| !s.is_empty()) {
                    let s: u32 = s.parse().unwrap();
                    assert!(s < 0x80_0000, "{what}: tshark error: {}", r["_ws.expert.message"]);
                }
                for c in CHECKSUMS {
                    assert!(!r[c].split(',').any(|s| s == "0"), "{what}: bad {c}");
                }
                if i == case.trigger {
                    for (f, want) in &case.tshark {
                        assert_eq!(r[*f], *want, "{what}: tshark's {f}");
                    }
                }
            }
        }
        assert_eq!(rows.len(), n, "{}: frame count", pcap.display());
    }
}

// ---- expectations ----

enum Expect {
    /// The rule fires on the trigger packet (the first, unless the message spans several) with
    /// action block-flow; the rest of the flow is dropped in XDP with `flow_blocked`.
    BlockFlow(&'static str),
    /// The rule fires on the first packet with action block-peer; nothing more is sent on this
    /// flow (the next case sends the peer's other traffic).
    BlockPeer(&'static str),
    /// The peer is quarantined: every packet is dropped with `peer_blocked`, none is inspected.
    Quarantined,
    /// The rule fires on every packet with action alert; everything passes.
    Alert(&'static str),
    /// No event; everything passes.
    Clean,
}

struct Case {
    name: &'static str,
    peer: &'static str,
    class: Class,
    /// tshark field values of the trigger frame.
    tshark: Vec<(&'static str, &'static str)>,
    expect: Expect,
    /// JSON pointers into the event and their expected values.
    fields: Vec<(&'static str, Value)>,
    /// The frame that completes the message under test (earlier ones carry its first parts).
    trigger: usize,
    /// Messages the inspected packets hold, if not one per packet.
    messages: Option<u64>,
}

fn case(name: &'static str, class: Class, tshark: &[(&'static str, &'static str)], expect: Expect) -> Case {
    Case { name, peer: "partner", class, tshark: tshark.to_vec(), expect, fields: vec![], trigger: 0, messages: None }
}

impl Case {
    fn trigger(mut self, frame: usize) -> Case {
        self.trigger = frame;
        self
    }

    fn messages(mut self, n: u64) -> Case {
        self.messages = Some(n);
        self
    }

    fn from(mut self, peer: &'static str) -> Case {
        self.peer = peer;
        self
    }

    fn with(mut self, fields: &[(&'static str, Value)]) -> Case {
        self.fields.extend(fields.iter().cloned());
        self
    }
}

fn map_op(op: &'static str) -> [(&'static str, &'static str); 1] {
    [("gsm_old.localValue", op)]
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let (s, d, c, u) = (Class::Sigtran, Class::Diameter, Class::GtpC, Class::GtpU);
    let ss7 = |op: u32, name: &str, acn: &str, called_gt: &str, called_ssn: u8, calling_ssn: u8| {
        vec![
            ("/fields/map_op", json!(op)),
            ("/fields/map_op_name", json!(name)),
            ("/fields/acn", json!(acn)),
            ("/fields/calling_gt", json!(PARTNER_GT)),
            ("/fields/called_gt", json!(called_gt)),
            ("/fields/calling_ssn", json!(calling_ssn)),
            ("/fields/called_ssn", json!(called_ssn)),
            ("/fields/opc", json!(0x1234)),
            ("/fields/dpc", json!(0x0a0b)),
        ]
    };
    let ati = ss7(71, "anyTimeInterrogation", "0.4.0.0.1.0.29.3", "35191000001", 6, 147);
    let dia = |code: u32, abbrev: &str, app: u32, host: &str| {
        vec![
            ("/fields/command_code", json!(code)),
            ("/fields/command", json!(abbrev)),
            ("/fields/request", json!(true)),
            ("/fields/application_id", json!(app)),
            ("/fields/origin_host", json!(format!("{host}.{PARTNER_REALM}"))),
            ("/fields/origin_realm", json!(PARTNER_REALM)),
            ("/fields/destination_realm", json!("epc.mnc001.mcc001.3gppnetwork.org")),
            ("/fields/user_name", json!(HOME_IMSI)),
        ]
    };
    let gtpc = |t: u8, name: &str| {
        vec![
            ("/fields/gtp_version", json!(2)),
            ("/fields/message_type", json!(t)),
            ("/fields/message", json!(name)),
            ("/fields/teid", json!(0)),
        ]
    };
    vec![
        // 1. SS7 Category 1 from the partner.
        case("ss7-ati", s, &map_op("71"), BlockFlow("ss7-category1"))
            .with(&ati)
            .with(&[("/fields/msisdn", json!(HOME_MSISDN)), ("/fields/imsi", Value::Null)]),
        case("ss7-psl", s, &map_op("83"), BlockFlow("ss7-category1"))
            .with(&ss7(83, "provideSubscriberLocation", "0.4.0.0.1.0.38.3", "35191000002", 8, 145))
            .with(&[("/fields/msisdn", json!(HOME_MSISDN))]),
        case("ss7-sri-lcs", s, &map_op("85"), BlockFlow("ss7-category1"))
            .with(&ss7(85, "sendRoutingInfoForLCS", "0.4.0.0.1.0.37.3", "35191000001", 6, 145))
            .with(&[("/fields/msisdn", json!(HOME_MSISDN))]),
        case("ss7-send-imsi-v6", s, &map_op("58"), BlockFlow("ss7-category1"))
            .with(&ss7(58, "sendIMSI", "0.4.0.0.1.0.26.2", "35191000001", 6, 7))
            .with(&[("/fields/msisdn", json!(HOME_MSISDN))]),
        // The same ATI in XUDT, on a VLAN, bundled behind an updateLocation (two messages in one
        // packet), and fragmented over two DATA chunks (the event comes with the second).
        case("ss7-ati-xudt", s, &map_op("71"), BlockFlow("ss7-category1")).with(&ati),
        case("ss7-ati-vlan", s, &map_op("71"), BlockFlow("ss7-category1")).with(&ati),
        case("ss7-ati-bundled", s, &[("gsm_old.localValue", "2,71")], BlockFlow("ss7-category1"))
            .messages(2)
            .with(&ati),
        case("ss7-ati-fragmented", s, &map_op("71"), BlockFlow("ss7-category1")).trigger(1).with(&ati),
        // 2. Category 2 for a home subscriber from a foreign GT; the same ISD for a partner
        //    subscriber is fine.
        case("ss7-isd-home", s, &[("gsm_old.localValue", "7")], BlockFlow("ss7-category2"))
            .with(&ss7(7, "insertSubscriberData", "0.4.0.0.1.0.16.3", "35191000002", 7, 6))
            .with(&[("/fields/imsi", json!(HOME_IMSI)), ("/fields/msisdn", json!(HOME_MSISDN))]),
        case("ss7-cl-home", s, &map_op("3"), BlockFlow("ss7-category2"))
            .with(&ss7(3, "cancelLocation", "0.4.0.0.1.0.2.3", "35191000002", 7, 6))
            .with(&[("/fields/imsi", json!(HOME_IMSI))]),
        case("ss7-psi-home", s, &map_op("70"), BlockFlow("ss7-category2"))
            .with(&ss7(70, "provideSubscriberInfo", "0.4.0.0.1.0.28.3", "35191000002", 7, 6))
            .with(&[("/fields/imsi", json!(HOME_IMSI))]),
        case("ss7-isd-foreign-imsi", s, &map_op("7"), Clean),
        // 3. A calling GT that belongs to partner-b, from the partner.
        case("ss7-gt-binding", s, &map_op("2"), BlockFlow("ss7-gt-binding"))
            .with(&[("/fields/calling_gt", json!("33609000001")), ("/fields/allowed_gt_prefixes", json!(["4179"]))]),
        // 7. updateLocation for a partner subscriber from the partner's VLR.
        case("ss7-ul-legit", s, &map_op("2"), Clean),
        // 4. Diameter location requests, and IDR/CLR for a home subscriber from a foreign realm.
        case("dia-plr-tcp", d, &[("diameter.cmd.code", "8388620")], BlockFlow("diameter-command-blocked"))
            .with(&dia(8388620, "PLR", 16777255, "gmlc1")),
        case("dia-plr-sctp", d, &[("diameter.cmd.code", "8388620")], BlockFlow("diameter-command-blocked"))
            .with(&dia(8388620, "PLR", 16777255, "gmlc1")),
        case("dia-idr-tcp", d, &[("diameter.cmd.code", "319")], BlockFlow("diameter-foreign-realm-home-imsi"))
            .with(&dia(319, "IDR", 16777251, "hss1"))
            .with(&[("/fields/destination_host", json!("mme1.epc.mnc001.mcc001.3gppnetwork.org"))]),
        case("dia-clr-sctp-v6", d, &[("diameter.cmd.code", "317")], BlockFlow("diameter-foreign-realm-home-imsi"))
            .with(&dia(317, "CLR", 16777251, "hss1")),
        case("dia-app-not-allowed", d, &[("diameter.cmd.code", "324")], BlockFlow("diameter-app-not-allowed"))
            .with(&dia(324, "ECR", 16777252, "mme1")),
        // Two messages in one TCP segment (ULR, then PLR); a PLR split over two segments;
        // Diameter over SCTP with PPID 0 on the Diameter port.
        case(
            "dia-ulr-plr-one-segment",
            d,
            &[("diameter.cmd.code", "316,8388620")],
            BlockFlow("diameter-command-blocked"),
        )
        .messages(2)
        .with(&dia(8388620, "PLR", 16777255, "gmlc1")),
        case("dia-plr-split", d, &[("diameter.cmd.code", "8388620")], BlockFlow("diameter-command-blocked"))
            .trigger(1)
            .with(&dia(8388620, "PLR", 16777255, "gmlc1")),
        case("dia-plr-sctp-ppid0", d, &[("diameter.cmd.code", "8388620")], BlockFlow("diameter-command-blocked"))
            .with(&dia(8388620, "PLR", 16777255, "gmlc1")),
        // 3. partner-b claims the partner's realm: block-peer (configured), then partner-b's
        //    other connection is dropped with peer_blocked.
        case("dia-realm-binding", d, &[("diameter.cmd.code", "316")], BlockPeer("diameter-realm-binding"))
            .from("partner-b")
            .with(&dia(316, "ULR", 16777251, "mme1")),
        case("dia-partner-b-other-flow", d, &[("diameter.cmd.code", "316")], Quarantined).from("partner-b"),
        // 7. Legitimate S6a from the partner; an IDR for the partner's own subscriber.
        case("dia-ulr-legit", d, &[("diameter.cmd.code", "316")], Clean),
        case("dia-air-legit-sctp", d, &[("diameter.cmd.code", "318")], Clean),
        case("dia-idr-foreign-imsi", d, &[("diameter.cmd.code", "319")], Clean),
        // 5. GTPv2-C messages that have no business on the roaming interface.
        case(
            "gtpc-delete-pdn-connection-set",
            c,
            &[("gtpv2.message_type", "101")],
            BlockFlow("gtpc-message-not-allowed"),
        )
        .with(&gtpc(101, "Delete PDN Connection Set Request"))
        .with(&[("/fields/sequence", json!(0x100))]),
        case("gtpc-context-request", c, &[("gtpv2.message_type", "130")], BlockFlow("gtpc-message-not-allowed"))
            .with(&gtpc(130, "Context Request"))
            .with(&[
                ("/fields/sequence", json!(0x200)),
                ("/fields/imsi", json!(HOME_IMSI)),
                ("/fields/rat_type", json!(6)),
            ]),
        // An IMSI of a third PLMN: alert only, by default.
        case("gtpc-imsi-plmn-alert", c, &[("gtpv2.message_type", "32")], Alert("gtpc-imsi-plmn"))
            .with(&gtpc(32, "Create Session Request"))
            .with(&[
                ("/fields/imsi", json!("310150000000099")),
                ("/fields/msisdn", json!("41790001234")),
                ("/fields/serving_network", json!("31015")),
                ("/fields/apn", json!("internet")),
                ("/fields/rat_type", json!(6)),
            ]),
        // 6. GTP-in-GTP (the partner's GTP-U is inspected: inspect_gtpu = "all").
        case(
            "gtpu-gtp-in-gtp",
            u,
            &[("gtp.message", "0xff"), ("gtpv2.message_type", "32")],
            BlockFlow("gtpu-gtp-in-gtp"),
        )
        .with(&[
            ("/fields/teid", json!(0x0a0b0c01)),
            ("/fields/inner_src", json!("198.19.10.1")),
            ("/fields/inner_dst", json!("198.19.20.1")),
            ("/fields/inner_udp_ports", json!([2123, 2123])),
        ]),
        case("gtpu-gtp-in-gtp-v6", u, &[("gtp.message", "0xff,0xff")], BlockFlow("gtpu-gtp-in-gtp")).with(&[
            ("/fields/teid", json!(0x0a0b0c02)),
            ("/fields/inner_src", json!("198.19.10.2")),
            ("/fields/inner_udp_ports", json!([2152, 2152])),
        ]),
        case(
            "gtpu-gtp-in-gtp-ext-header",
            u,
            &[("gtp.message", "0xff"), ("gtpv2.message_type", "32")],
            BlockFlow("gtpu-gtp-in-gtp"),
        )
        .with(&[("/fields/teid", json!(0x0a0b0c04)), ("/fields/inner_udp_ports", json!([2123, 2123]))]),
        // GTPv1-C on Gp.
        case("gtpv1c-sgsn-context-request", c, &[("gtp.message", "0x32")], BlockFlow("gtpc-message-not-allowed")).with(
            &[
                ("/fields/gtp_version", json!(1)),
                ("/fields/message_type", json!(50)),
                ("/fields/message", json!("SGSN Context Request")),
                ("/fields/imsi", json!(HOME_IMSI)),
                ("/fields/sequence", json!(0x600)),
            ],
        ),
        // 7. A Create Session Request for a partner subscriber; plain user-plane traffic.
        case("gtpc-create-session-legit", c, &[("gtpv2.message_type", "32")], Clean),
        case("gtpu-legit", u, &[("gtp.message", "0xff")], Clean),
    ]
}

// ---- the lab ----

pub(super) fn ctl(d: &Daemon, cmd: Ctl) -> Value {
    control::call(&d.socket(), cmd, Duration::from_secs(5)).unwrap_or_else(|e| panic!("control socket: {e}"))
}

/// Deep inspection's counters. The control socket answers under the lock the inspection runs
/// under, so once `packets` has moved past a packet, all of that packet's events are logged.
pub(super) fn inspection(d: &Daemon) -> Value {
    ctl(d, Ctl::Stats)["inspect"].clone()
}

pub(super) fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
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

fn delta(a: &Snapshot, b: &Snapshot, r: Reason, c: Class) -> u64 {
    b.cell(r, c) - a.cell(r, c)
}

struct Run<'a> {
    d: &'a Daemon,
    tx: RawSocket,
    /// Next event sequence number to read.
    next_event: u64,
    /// Events seen, all cases.
    events: usize,
    rule_hits: BTreeMap<&'static str, u64>,
    /// Packets the daemon inspected and messages it decoded, all cases.
    inspected: u64,
    messages: u64,
}

impl Run<'_> {
    fn new(d: &Daemon, tx: RawSocket) -> Run<'_> {
        Run { d, tx, next_event: 1, events: 0, rule_hits: BTreeMap::new(), inspected: 0, messages: 0 }
    }

    fn new_events(&mut self) -> Vec<Value> {
        let v = ctl(self.d, Ctl::Events { since: self.next_event, limit: 1000 });
        self.next_event = v["next"].as_u64().unwrap();
        let ev = v["events"].as_array().unwrap().clone();
        self.events += ev.len();
        ev
    }

    /// Send `frames`, all of which XDP passes and copies up; wait until the daemon has inspected
    /// them; check they decoded into `messages` messages without a decoder error. Returns the
    /// events they raised.
    fn send_inspected(&mut self, name: &str, frames: &[Vec<u8>], messages: u64) -> Vec<Value> {
        let before = inspection(self.d);
        for f in frames {
            self.tx.send(f);
        }
        let want = before["packets"].as_u64().unwrap() + frames.len() as u64;
        let mut after = before.clone();
        let ok = wait_for(EVENT_WAIT, || {
            after = inspection(self.d);
            after["packets"].as_u64().unwrap() >= want
        });
        assert!(ok, "{name}: the daemon did not inspect {} packet(s) within {EVENT_WAIT:?}", frames.len());
        assert_eq!(after["packets"].as_u64().unwrap(), want, "{name}: inspected packets");
        assert_eq!(after["decode_errors"], before["decode_errors"], "{name}: decoder errors on bytes tshark reads");
        let decoded = after["messages"].as_u64().unwrap() - before["messages"].as_u64().unwrap();
        assert_eq!(decoded, messages, "{name}: messages decoded");
        self.inspected += frames.len() as u64;
        self.messages += messages;
        self.new_events()
    }

    /// Send frames XDP drops (flow or peer blocked): they are not copied up.
    fn send_dropped(&self, frames: &[Vec<u8>]) {
        for f in frames {
            self.tx.send(f);
        }
    }

    /// Wait until XDP has counted `n` more packets in (reason, class) since `s0`.
    fn wait_counted(&self, s0: &Snapshot, r: Reason, c: Class, n: u64) -> Snapshot {
        let mut s = self.d.stats();
        wait_for(Duration::from_secs(2), || {
            s = self.d.stats();
            delta(s0, &s, r, c) >= n
        });
        s
    }

    fn check_event(&mut self, case: &Case, frames: &[Vec<u8>], ev: &Value, rule: &'static str, action: &str) {
        let name = case.name;
        let (src, dst, proto, sport, dport) = flow_of(&frames[case.trigger]);
        let want = [
            ("/rule", json!(rule)),
            ("/action", json!(action)),
            // Host mode carries out a configured `block` (the default) on the flow.
            ("/configured_action", json!(if action == "block-flow" { "block" } else { action })),
            ("/monitor", json!(false)),
            ("/peer", json!(case.peer)),
            ("/xdp/class", json!(case.class.name())),
            ("/xdp/reason", json!("allowed")),
            ("/xdp/dropped", json!(false)),
            ("/flow/src", json!(src)),
            ("/flow/dst", json!(dst)),
            ("/flow/proto", json!(proto)),
            ("/flow/sport", json!(sport)),
            ("/flow/dport", json!(dport)),
        ];
        for (ptr, v) in want.iter().chain(case.fields.iter()) {
            assert_eq!(ev.pointer(ptr), Some(v), "{name}: event {ptr}\n{ev:#}");
        }
        let ttl = if action == "alert" { Value::Null } else { json!(120) };
        assert_eq!(ev["ttl_s"], ttl, "{name}: {ev}");
        *self.rule_hits.entry(rule).or_default() += 1;
    }

    fn run(&mut self, case: &Case, frames: &[Vec<u8>]) {
        let (name, class, n) = (case.name, case.class, frames.len() as u64);
        let s0 = self.d.stats();
        match case.expect {
            Expect::BlockFlow(rule) => {
                let k = case.trigger;
                assert!(frames.len() > k + 1, "{name}: needs packets after the trigger");
                // The packets before the trigger carry parts of the message: nothing to say yet.
                let ev = self.send_inspected(name, &frames[..k], 0);
                assert!(ev.is_empty(), "{name}: events before the message was complete: {ev:#?}");
                let ev = self.send_inspected(name, &frames[k..=k], case.messages.unwrap_or(1));
                assert_eq!(ev.len(), 1, "{name}: events {ev:#?}");
                self.check_event(case, frames, &ev[0], rule, "block-flow");
                // The verdict is in the map before the event is logged: the rest is dropped.
                self.send_dropped(&frames[k + 1..]);
                let later = n - k as u64 - 1;
                let s1 = self.wait_counted(&s0, Reason::FlowBlocked, class, later);
                assert_eq!(delta(&s0, &s1, Reason::Allowed, class), k as u64 + 1, "{name}: passed up to the trigger");
                assert_eq!(delta(&s0, &s1, Reason::FlowBlocked, class), later, "{name}: the rest of the flow dropped");
                assert_eq!(delta(&s0, &s1, Reason::PeerBlocked, class), 0, "{name}");
            }
            Expect::BlockPeer(rule) => {
                assert_eq!(n, 1, "{name}: the peer's other traffic is the next case");
                let ev = self.send_inspected(name, frames, 1);
                assert_eq!(ev.len(), 1, "{name}: events {ev:#?}");
                self.check_event(case, frames, &ev[0], rule, "block-peer");
                let s1 = self.wait_counted(&s0, Reason::Allowed, class, 1);
                assert_eq!(delta(&s0, &s1, Reason::Allowed, class), 1, "{name}: the first packet passed");
            }
            Expect::Quarantined => {
                self.send_dropped(frames);
                let s1 = self.wait_counted(&s0, Reason::PeerBlocked, class, n);
                assert_eq!(delta(&s0, &s1, Reason::PeerBlocked, class), n, "{name}: dropped with peer_blocked");
                assert_eq!(delta(&s0, &s1, Reason::Allowed, class), 0, "{name}");
                let (a, b) = (s0.peer(case.peer).unwrap(), s1.peer(case.peer).unwrap());
                assert_eq!((b.dropped - a.dropped, b.passed - a.passed), (n, 0), "{name}: peer counters");
            }
            Expect::Alert(rule) => {
                let ev = self.send_inspected(name, frames, case.messages.unwrap_or(n));
                assert_eq!(ev.len() as u64, n, "{name}: one alert per packet: {ev:#?}");
                for e in &ev {
                    self.check_event(case, frames, e, rule, "alert");
                }
                let s1 = self.wait_counted(&s0, Reason::Allowed, class, n);
                assert_eq!(delta(&s0, &s1, Reason::Allowed, class), n, "{name}: alerts drop nothing");
                assert_eq!(delta(&s0, &s1, Reason::FlowBlocked, class), 0, "{name}");
            }
            Expect::Clean => {
                let ev = self.send_inspected(name, frames, case.messages.unwrap_or(n));
                assert!(ev.is_empty(), "{name}: legitimate traffic raised {ev:#?}");
                let s1 = self.wait_counted(&s0, Reason::Allowed, class, n);
                assert_eq!(delta(&s0, &s1, Reason::Allowed, class), n, "{name}: every packet passed");
                assert_eq!(delta(&s0, &s1, Reason::FlowBlocked, class), 0, "{name}");
            }
        }
    }
}

/// Generate, check with tshark, start a lab and a daemon, and run every case in order.
fn run_cases(tag: &str, generators: &[&'static str], cases: &[Case], finish: impl FnOnce(&Daemon, &mut Run, &Path)) {
    let dir = tempdir(&format!("attacks-{tag}"));
    let generated = generate(dir.path(), generators);
    assert_eq!(generated.len(), cases.len(), "generators and expectations list the same cases");
    for c in cases {
        assert!(generated.iter().any(|(_, n, _)| n == c.name), "{}: not generated", c.name);
    }
    check_with_tshark(dir.path(), generators, &generated, cases);

    let lab = Lab::new();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let events_file = dir.path().join("events.jsonl");
    let d = Daemon::start(&lab, &sigwall_bin(), &policy, &["--events", events_file.to_str().unwrap()]);
    let mut run = Run::new(&d, lab.sender());
    for c in cases {
        let frames = &generated.iter().find(|(_, n, _)| n == c.name).unwrap().2;
        run.run(c, frames);
    }
    finish(&d, &mut run, &events_file);
}

#[test]
fn attacks_from_independent_encoders_are_caught_end_to_end() {
    let started = Instant::now();
    let cases = cases();
    run_cases("run", &GENERATORS, &cases, |d, run, events_file| {
        // No packet raised an event it should not have (blocked packets are not copied up again).
        std::thread::sleep(Duration::from_millis(200));
        let late = run.new_events();
        assert!(late.is_empty(), "unexpected events: {late:#?}");
        let st = inspection(d);
        assert_eq!(st["decode_errors"], json!({}), "decoder errors: {st:#}");
        assert_eq!(st["packets"], json!(run.inspected), "{st:#}");
        assert_eq!(st["messages"], json!(run.messages), "{st:#}");
        assert_eq!(st["events"], json!(run.events), "{st:#}");
        assert_eq!(st["inspect_overflow"], json!(0), "{st:#}");
        let hits: BTreeMap<String, u64> = serde_json::from_value(st["rule_hits"].clone()).unwrap();
        let want: BTreeMap<String, u64> = run.rule_hits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(hits, want, "rule hits");

        // The same events through `sigwall events` and in the --events file.
        let out =
            Command::new(sigwall_bin()).args(["events", "--socket", d.socket().to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cli: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(cli.len(), run.events, "sigwall events");
        let logged = std::fs::read_to_string(events_file).unwrap();
        assert_eq!(logged.lines().count(), run.events, "--events file");
    });
    eprintln!("{} cases in {:.1} s", cases.len(), started.elapsed().as_secs_f64());
}
