//! The evasion layer (issue 10): attacks shaped so that a filter that parses differently from
//! the receiving stack misses them, one case at least per finding of the adversarial review
//! (`../shared/docs/evasion-review.md`), each with a negative control that must stay clean.
//!
//! The frames come from `tests/integration/attacks/evasions.py` (scapy and pycrate, not
//! sigwall's packet builder). tshark reads them first: where it can decode a case (it cannot
//! decode a deliberately broken CRC or an overlap), the trigger frame must be the message the
//! case claims to carry. Then each case is sent over the veth lab to a running daemon (the
//! policy of `attacks.rs`) and must be
//! - detected by inspection with the right event, on the frame that completes the message as
//!   the receiver would see it, and its flow blocked in XDP afterwards (`Block`);
//! - or, for a forged packet (wrong verification tag, broken CRC32c), reported as `spoofed`
//!   with action alert and *no* block: a forger must not be able to cut a partner off
//!   (`Spoofed`);
//! - or dropped by the first pass without reaching anyone (`FirstPassDrop`);
//! - or, for a burst of attacks (review M7), each flow blocked while at most 10 events per peer,
//!   rule and second are written and the rest counted (`Bounded`);
//! - and every negative control raises nothing and passes (`Clean`).
//!
//! `evasions_caught` runs with IP fragments of every class reassembled (so that inspection's
//! reassembly is what is tested); `evasions_first_pass` holds the cases the first pass stops
//! under the default policy (C2, H9, later fragments without their first, and C3's fragments of
//! classes whose fragments are dropped by default), each with the exact reasons XDP counts.
//! The caught layer's lab runs at MTU 3400, for M4's packet beyond 2,048 bytes.

use std::time::Duration;

use filter_common::Reason;
use filter_testkit::{daemon::Daemon, netns::Lab, sigwall_bin, tempdir};
use serde_json::Value;
use sigwall::{
    control::Command as Ctl,
    inspect::io::{EVENTS_PER_PEER_RULE_PER_S, monotonic_ns},
    stats::Snapshot,
};

use super::attacks::{POLICY, flow_of, generate, inspection, tshark_fields, wait_for};

const EVENT_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// `rule` fires with action block-flow once frame `trigger` has been sent (never before),
    /// besides at most the rules in `also`; the frames after it are dropped with flow_blocked.
    Block { rule: &'static str, trigger: usize, also: &'static [&'static str] },
    /// At least one of `rules` fires with block-flow on frame `trigger`, and nothing else does:
    /// for the TCAP bypass classes, which a strict decoder may judge malformed
    /// (undecodable-signaling) or decode (the operation's rule); both contain the flow.
    BlockAny { rules: &'static [&'static str], trigger: usize },
    /// `rule` fires on frame `trigger` as a spoofed alert; nothing is blocked.
    Spoofed { rule: &'static str, trigger: usize },
    /// No event; every frame passes.
    Clean,
    /// Every frame is dropped by XDP, counted under these reasons only; none is passed.
    FirstPassDrop(&'static [Reason]),
    /// As `FirstPassDrop` for every frame but the last, a whole message on the same flow that
    /// passes: the fragments are stopped, the association is not.
    FirstPassDropThenPass(&'static [Reason]),
    /// Review M7: the first `flows` frames each trigger `rule` (block-flow) on a flow of their
    /// own, all within one second of XDP's clock; at most `EVENTS_PER_PEER_RULE_PER_S` events
    /// are written, the rest counted in `events_suppressed`; every flow is blocked all the same
    /// (the frames after the burst, one per flow, are dropped with flow_blocked).
    Bounded { rule: &'static str, flows: usize },
}

struct Case {
    name: &'static str,
    expect: Expect,
    /// tshark fields of a frame: (frame index, field, value).
    tshark: &'static [(usize, &'static str, &'static str)],
}

const fn block(rule: &'static str, trigger: usize) -> Expect {
    Expect::Block { rule, trigger, also: &[] }
}

const CAT1: &str = "ss7-category1";
const UNDECODABLE: &str = "undecodable-signaling";
const INCONSISTENT: &str = "transport-inconsistent";
const PLR_BLOCKED: &str = "diameter-command-blocked";

fn caught() -> Vec<Case> {
    use Expect::*;
    let c = |name, expect, tshark| Case { name, expect, tshark };
    vec![
        // C4: an ATI followed by 128 PAD chunks, or by a chunk whose length runs past the packet.
        c("c4-ati-then-128-pad", block(CAT1, 0), &[(0, "gsm_old.localValue", "71")]),
        c("c4-ati-then-bad-chunk", block(CAT1, 0), &[]),
        c("control-c4-ul-then-128-pad", Clean, &[(0, "gsm_old.localValue", "2")]),
        // C5: the PPID does not choose the decoder (PPID 0 on the Diameter port is Diameter).
        c("control-c5-ulr-sctp-ppid0", Clean, &[]),
        c("c5-ati-m3ua-ppid0", block(CAT1, 0), &[(0, "gsm_old.localValue", "71")]),
        c("control-c5-ul-m3ua-ppid0", Clean, &[(0, "gsm_old.localValue", "2")]),
        c("c5-ati-idata", block(CAT1, 0), &[(0, "gsm_old.localValue", "71")]),
        c("control-c5-ul-idata", Clean, &[(0, "gsm_old.localValue", "2")]),
        // SUA: decoded like M3UA (the SUA decoder of branch dpi-decoders).
        c("c5-sua-ati", block(CAT1, 0), &[(0, "gsm_old.localValue", "71")]),
        // H1: the decoy the receiver discards never hides the real message; a rewrite of a TSN
        // is itself an event; a true retransmission is one message.
        c("h1-decoy-behind-unknown-chunk", block(CAT1, 1), &[(0, "gsm_old.localValue", "2")]),
        c("h1-decoy-bad-crc", block(CAT1, 2), &[]),
        c("h1-retransmission-rewritten", block(INCONSISTENT, 1), &[]),
        c("control-h1-retransmission", Clean, &[(0, "gsm_old.localValue", "2")]),
        // H2: fragments of one message on two streams: reassembled by TSN, flagged.
        c("h2-ati-fragments-on-two-streams", Block { rule: CAT1, trigger: 1, also: &[INCONSISTENT] }, &[]),
        c("control-h2-ul-fragments-one-stream", Clean, &[]),
        // H3: an inner length that understates the message.
        // The ATI is also found when the decoder reads to the end of the user message, as
        // OsmoSTP does (branch dpi-decoders).
        c("h3-ati-m3ua-length-8", Block { rule: UNDECODABLE, trigger: 0, also: &[CAT1] }, &[]),
        c(
            "h3-idr-diameter-length-20",
            Block { rule: UNDECODABLE, trigger: 0, also: &["diameter-foreign-realm-home-imsi"] },
            &[],
        ),
        // H4: over the AVP cap, the header rule still runs.
        c("h4-plr-with-4097-avps", Block { rule: PLR_BLOCKED, trigger: 22, also: &[UNDECODABLE] }, &[]),
        // H5: Diameter over TCP by sequence number.
        c("h5-plr-segments-reversed", block(PLR_BLOCKED, 1), &[]),
        c("h5-insertion-out-of-window", block(PLR_BLOCKED, 2), &[(2, "diameter.cmd.code", "8388620")]),
        c("h5-insertion-bad-checksum", block(PLR_BLOCKED, 2), &[(3, "diameter.cmd.code", "8388620")]),
        c("h5-urgent-byte", block(PLR_BLOCKED, 0), &[]),
        c("h5-overlap-rewritten", block(INCONSISTENT, 1), &[]),
        c("control-h5-retransmission", Clean, &[(0, "diameter.cmd.code", "316")]),
        // C3: IP fragments reassembled before inspection; overlapping fragments are an event.
        c("c3-ati-ipv4-fragments", block(CAT1, 6), &[(6, "gsm_old.localValue", "71")]),
        c("c3-ati-ipv6-fragments", block(CAT1, 2), &[(2, "gsm_old.localValue", "71")]),
        c(
            "c3-gtpv2-context-request-fragments",
            block("gtpc-message-not-allowed", 3),
            &[(3, "gtpv2.message_type", "130")],
        ),
        // Nothing proves a fragment's sender: reported as spoofed, never a block (gap 2).
        c("c3-overlapping-fragments", Spoofed { rule: INCONSISTENT, trigger: 1 }, &[]),
        c("control-c3-ul-ipv4-fragments", Clean, &[(6, "gsm_old.localValue", "2")]),
        // TCAP bypass classes (issue 10 item 4).
        c("tcap-global-opcode", BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 }, &[]),
        c(
            "tcap-otid-5-octets",
            BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "71")],
        ),
        c(
            "tcap-indefinite-length",
            BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "71")],
        ),
        c(
            "tcap-two-components",
            BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "45")],
        ),
        c(
            "tcap-linked-invoke",
            BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "71")],
        ),
        c(
            "tcap-ac-version-downgrade",
            BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "71")],
        ),
        c(
            "tcap-isd-imsi-filler-inside",
            BlockAny { rules: &["ss7-category2", UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "7")],
        ),
        // (a) An extended or unknown application context on the ATI; its control, the standard
        // version 3 on a UL.
        c("tcap-ac-extended", BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 }, &[(0, "gsm_old.localValue", "71")]),
        c("tcap-ac-unknown", BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 }, &[(0, "gsm_old.localValue", "71")]),
        c("control-tcap-ul-ac-v3", Clean, &[(0, "gsm_old.localValue", "2")]),
        // (b) Subsystem numbers the receiver's translation fills in (tshark does not decode MAP
        // behind called SSN 0).
        c("tcap-called-ssn-0", BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 }, &[]),
        c(
            "tcap-no-calling-ssn",
            BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "71")],
        ),
        // (c) A 9-octet IMSI for a home subscriber on ISD; its control, a canonical IMSI of a
        // partner subscriber.
        c(
            "tcap-isd-imsi-9-octets",
            BlockAny { rules: &["ss7-category2", UNDECODABLE], trigger: 0 },
            &[(0, "gsm_old.localValue", "7")],
        ),
        c("control-tcap-isd-partner-imsi", Clean, &[(0, "gsm_old.localValue", "7")]),
        // M2UA (PPID 2): MAUP DATA → MTP3 → SCCP → TCAP, judged like M3UA.
        c("m2ua-ati", block(CAT1, 0), &[(0, "gsm_old.localValue", "71")]),
        c("control-m2ua-ul", Clean, &[(0, "gsm_old.localValue", "2")]),
        // M3: a GT-routed ATI to SSN 1 is decoded and judged (tshark takes it for SCCP
        // management); a real SCMG message (SST) to SSN 1, routed on SSN, is clean.
        c("m3-ati-called-ssn-1", BlockAny { rules: &[CAT1, UNDECODABLE], trigger: 0 }, &[]),
        c("control-m3-scmg-sst-ssn-1", Clean, &[(0, "sccpmg.message_type", "0x03")]),
        // M4: one SCTP packet of 3,210 bytes (the lab's MTU is raised for it), beyond the old
        // 2,048-byte snap length: the ATI in its first chunk is caught.
        c("m4-ati-then-3000-byte-chunk", block(CAT1, 0), &[(0, "gsm_old.localValue", "71")]),
        // M7: 30 ATIs on 30 associations of the partner in one burst.
        c("m7-ati-burst-30-associations", Bounded { rule: CAT1, flows: 30 }, &[(0, "gsm_old.localValue", "71")]),
        // A message piggybacked behind a harmless one (was in the ignored known_evasions).
        c(
            "gtpv2-piggybacked-context-request",
            block("gtpc-message-not-allowed", 0),
            &[(0, "gtpv2.message_type", "32,130")],
        ),
        // H7: forged packets are reported, never blocked on.
        c("h7-ati-wrong-vtag", Spoofed { rule: CAT1, trigger: 1 }, &[(1, "gsm_old.localValue", "71")]),
        c("h7-ati-bad-crc", Spoofed { rule: CAT1, trigger: 0 }, &[]),
        // H6: USSD (59) and purgeMS (67) from a roaming partner are normal.
        c("control-h6-ussd-request-59", Clean, &[(0, "gsm_old.localValue", "59")]),
        c("control-h6-purge-ms-67", Clean, &[(0, "gsm_old.localValue", "67")]),
        // H8: identities the sender chooses.
        c(
            "h8-isd-home-calling-gt",
            Block { rule: "identity-spoofing", trigger: 0, also: &["ss7-category2", "ss7-gt-binding"] },
            &[(0, "gsm_old.localValue", "7")],
        ),
        c(
            "h8-idr-home-origin-realm",
            // The partner's realm binding is configured block-peer: this case is the last.
            Block {
                rule: "identity-spoofing",
                trigger: 0,
                also: &["diameter-foreign-realm-home-imsi", "diameter-realm-binding"],
            },
            &[(0, "diameter.cmd.code", "319")],
        ),
    ]
}

fn first_pass() -> Vec<Case> {
    use Reason::*;
    let c = |name, reasons, tshark| Case { name, expect: Expect::FirstPassDrop(reasons), tshark };
    vec![
        c("c2-ipv6-seven-destopts-from-nobody", &[Unclassifiable], &[(0, "gsm_old.localValue", "71")]),
        c("h9-three-vlan-tags-from-nobody", &[Unclassifiable], &[]),
        c("xdp-later-fragments-from-nobody", &[FragmentUntracked], &[]),
        // C5 in the first pass: a PPID that names another protocol than the configured port is
        // plain SCTP, which the partner may not send (no `sctp` in its allow): a Diameter PLR
        // labelled IUA (1) or M3UA (3) on the Diameter port, and a ULR labelled IUA.
        c("c5-plr-sctp-ppid1", &[ClassNotAllowed], &[]),
        c("c5-plr-sctp-ppid3-diameter-port", &[ClassNotAllowed], &[]),
        c("control-c5-ulr-sctp-ppid1", &[ClassNotAllowed], &[]),
        // M1: a source port never chooses the class. TCP from 3868 to sshd (from partner-b,
        // which may send Diameter) is unclassifiable; SCTP from 2905 to the S1AP port with PPID
        // 18 is `sctp`, which the partner may not send. Their controls are replies to local
        // clients (an ephemeral destination port): Diameter and SIGTRAN, clean. The S1AP port
        // is in the ephemeral range but is a registered service, not a client's port: an INIT to
        // it from 2905, and S1AP labelled PPID 0, are plain `sctp` too.
        c("m1-tcp-sport-3868-to-ssh", &[Unclassifiable], &[]),
        Case {
            name: "control-m1-tcp-sport-3868-reply",
            expect: Expect::Clean,
            tshark: &[(0, "diameter.cmd.code", "316")],
        },
        c("m1-sctp-sport-2905-s1ap", &[ClassNotAllowed], &[(0, "s1ap.procedureCode", "17")]),
        c("m1-sctp-sport-2905-s1ap-init", &[ClassNotAllowed], &[]),
        c("m1-sctp-sport-2905-s1ap-ppid0", &[ClassNotAllowed], &[]),
        Case {
            name: "control-m1-sctp-sport-2905-reply",
            expect: Expect::Clean,
            tshark: &[(0, "gsm_old.localValue", "2")],
        },
    ]
    .into_iter()
    .chain(
        [
            // C3 under the default policy: SIGTRAN and GTP-C fragments are dropped with their first;
            // the whole message after them on the same flow passes.
            ("c3-ati-ipv4-fragments", &[(6, "gsm_old.localValue", "71")][..]),
            ("c3-ati-ipv6-fragments", &[(2, "gsm_old.localValue", "71")][..]),
            ("c3-gtpv2-context-request-fragments", &[(3, "gtpv2.message_type", "130")][..]),
        ]
        .map(|(name, tshark)| Case {
            name,
            expect: Expect::FirstPassDropThenPass(&[Reason::FragmentPolicy, Reason::Fragment]),
            tshark,
        }),
    )
    .collect()
}

/// Signaling packets passed and dropped by XDP, over every peer and the unknown source (later
/// fragments included: their reason, `fragment`, does not tell the action).
fn peer_totals(s: &Snapshot) -> (u64, u64) {
    s.peers.iter().fold((0, 0), |(p, d), x| (p + x.passed, d + x.dropped))
}

/// Passed by XDP as signaling (or a later fragment), over every class. Non-signaling passes are
/// left out: the lab's own neighbour discovery passes as non-signaling at any moment.
fn passed(s: &Snapshot) -> u64 {
    [Reason::Allowed, Reason::Fragment, Reason::Monitored].iter().map(|r| s.reason(*r)).sum()
}

/// Dropped by XDP, for any reason (the reasons that pass are the only ones left out, so a
/// reason the first pass adds later counts as a drop here).
fn dropped(s: &Snapshot) -> u64 {
    let pass = [Reason::Allowed, Reason::Fragment, Reason::Monitored, Reason::NonSignaling];
    Reason::ALL.iter().filter(|r| !pass.contains(r)).map(|r| s.reason(*r)).sum()
}

struct Run<'a> {
    d: &'a Daemon,
    tx: filter_testkit::netns::RawSocket,
    next_event: u64,
}

impl Run<'_> {
    fn events(&mut self) -> Vec<Value> {
        let v = super::attacks::ctl(self.d, Ctl::Events { since: self.next_event, limit: 1000 });
        self.next_event = v["next"].as_u64().unwrap();
        v["events"].as_array().unwrap().clone()
    }

    /// Send frames and wait until the daemon has looked at every copy XDP made of them (the
    /// count of copies is XDP's business: a later fragment may or may not be copied), then a
    /// little longer for their events.
    fn send(&mut self, frames: &[Vec<u8>]) -> Vec<Value> {
        let before = inspection(self.d)["packets"].as_u64().unwrap();
        let s0 = self.d.stats();
        for f in frames {
            self.tx.send(f);
        }
        // Every frame is either counted by XDP as passed or dropped; wait for XDP, then for the
        // inspector to catch up with what was flagged.
        wait_for(Duration::from_secs(2), || {
            let s = self.d.stats();
            Reason::ALL.iter().map(|r| s.reason(*r) - s0.reason(*r)).sum::<u64>() >= frames.len() as u64
        });
        let mut last = before;
        wait_for(EVENT_WAIT, || {
            std::thread::sleep(Duration::from_millis(150));
            let now = inspection(self.d)["packets"].as_u64().unwrap();
            let settled = now == last && now > before;
            last = now;
            settled
        });
        self.events()
    }

    /// The frames after the trigger: every one dropped in XDP with flow_blocked (or
    /// peer_blocked when another rule of the same message blocked the peer), none passed.
    fn rest_blocked(&self, name: &str, rest: &[Vec<u8>]) {
        let s1 = self.d.stats();
        for f in rest {
            self.tx.send(f);
        }
        let mut s2 = self.d.stats();
        wait_for(Duration::from_secs(2), || {
            s2 = self.d.stats();
            dropped(&s2) - dropped(&s1) >= rest.len() as u64
        });
        // flow_blocked, or peer_blocked when another rule of the same message blocked
        // the peer.
        let blocked = |s: &Snapshot| s.reason(Reason::FlowBlocked) + s.reason(Reason::PeerBlocked);
        assert_eq!(blocked(&s2) - blocked(&s1), rest.len() as u64, "{name}: the rest of the flow dropped in XDP");
        assert_eq!(passed(&s2), passed(&s1), "{name}: nothing after the block passed");
    }

    fn run(&mut self, case: &Case, frames: &[Vec<u8>]) {
        let name = case.name;
        let s0 = self.d.stats();
        match case.expect {
            Expect::BlockAny { rules, trigger } => {
                let ev = self.send(&frames[..=trigger]);
                let blocks = |e: &Value| rules.contains(&e["rule"].as_str().unwrap()) && e["action"] == "block-flow";
                assert!(ev.iter().any(blocks), "{name}: want one of {rules:?} blocking: {ev:#?}");
                for e in &ev {
                    assert!(rules.contains(&e["rule"].as_str().unwrap()), "{name}: unexpected event {e:#}");
                    assert!(e.get("spoofed").is_none(), "{name}: {e:#}");
                }
                self.rest_blocked(name, &frames[trigger + 1..]);
            }
            Expect::Block { rule, trigger, also } => {
                assert!(frames.len() > trigger + 1, "{name}: needs a frame after the trigger");
                if trigger > 0 {
                    let ev = self.send(&frames[..trigger]);
                    let blocks: Vec<_> = ev.iter().filter(|e| e["action"] != "alert").collect();
                    assert!(blocks.is_empty(), "{name}: blocked before the message was complete: {ev:#?}");
                }
                let ev = self.send(&frames[trigger..=trigger]);
                let hit: Vec<_> = ev.iter().filter(|e| e["rule"] == rule).collect();
                assert_eq!(hit.len(), 1, "{name}: want one {rule} event: {ev:#?}");
                let e = hit[0];
                assert_eq!(e["action"], "block-flow", "{name}: {e:#}");
                assert_eq!(e["peer"], "partner", "{name}");
                assert!(e.get("spoofed").is_none(), "{name}: a real packet taken as spoofed: {e:#}");
                // The flow as the last frame shows it (an unfragmented packet of the same flow).
                let (src, _, proto, _, _) = flow_of(frames.last().unwrap());
                assert_eq!(
                    (e["flow"]["src"].as_str().unwrap(), e["flow"]["proto"].as_u64().unwrap()),
                    (src.as_str(), proto as u64),
                    "{name}"
                );
                for other in ev.iter().filter(|e| e["rule"] != rule) {
                    let r = other["rule"].as_str().unwrap();
                    assert!(also.contains(&r), "{name}: unexpected {r} event: {other:#}");
                }
                self.rest_blocked(name, &frames[trigger + 1..]);
            }
            Expect::Spoofed { rule, trigger } => {
                let ev = self.send(frames);
                let hit: Vec<_> = ev.iter().filter(|e| e["rule"] == rule).collect();
                assert_eq!(hit.len(), 1, "{name}: want one {rule} event: {ev:#?}");
                let e = hit[0];
                assert_eq!(
                    (e["action"].as_str(), e["spoofed"].as_bool()),
                    (Some("alert"), Some(true)),
                    "{name}: {e:#}"
                );
                assert_eq!(e["configured_action"], "block", "{name}");
                assert!(ev.iter().all(|e| e["action"] == "alert"), "{name}: {ev:#?}");
                let s1 = self.d.stats();
                assert_eq!(s1.reason(Reason::FlowBlocked), s0.reason(Reason::FlowBlocked), "{name}: nothing blocked");
                assert_eq!(passed(&s1) - passed(&s0), frames.len() as u64, "{name}: every frame passed");
                let _ = trigger;
            }
            Expect::Clean => {
                let ev = self.send(frames);
                assert!(ev.is_empty(), "{name}: legitimate traffic raised {ev:#?}");
                let s1 = self.d.stats();
                assert_eq!(passed(&s1) - passed(&s0), frames.len() as u64, "{name}: every frame passed");
                assert_eq!(s1.reason(Reason::FlowBlocked), s0.reason(Reason::FlowBlocked), "{name}");
            }
            Expect::FirstPassDropThenPass(reasons) => {
                let (last, dropped) = frames.split_last().expect("frames");
                self.run(&Case { name, expect: Expect::FirstPassDrop(reasons), tshark: &[] }, dropped);
                let s1 = self.d.stats();
                self.tx.send(last);
                let mut s2 = self.d.stats();
                wait_for(Duration::from_secs(2), || {
                    s2 = self.d.stats();
                    peer_totals(&s2).0 > peer_totals(&s1).0
                });
                assert_eq!(peer_totals(&s2).0 - peer_totals(&s1).0, 1, "{name}: the whole message passes");
            }
            Expect::Bounded { rule, flows } => {
                let (burst, rest) = frames.split_at(flows);
                assert!(flows > EVENTS_PER_PEER_RULE_PER_S as usize && rest.len() == flows, "{name}");
                // The limiter's window is a second of the clock XDP stamps its copies with
                // (CLOCK_MONOTONIC): start the burst just after a second begins.
                let into_second = monotonic_ns() % 1_000_000_000;
                std::thread::sleep(Duration::from_nanos(1_000_000_000 - into_second + 20_000_000));
                let suppressed = |d: &Daemon| inspection(d)["events_suppressed"].as_u64().unwrap();
                let sup0 = suppressed(self.d);
                let ev = self.send(burst);
                for e in &ev {
                    assert_eq!(
                        (e["rule"].as_str(), e["action"].as_str()),
                        (Some(rule), Some("block-flow")),
                        "{name}: {e:#}"
                    );
                    assert_eq!(e["peer"], "partner", "{name}");
                }
                let flows_seen: std::collections::HashSet<_> = ev.iter().map(|e| e["flow"]["sport"].clone()).collect();
                assert_eq!(
                    (ev.len(), flows_seen.len()),
                    (EVENTS_PER_PEER_RULE_PER_S as usize, EVENTS_PER_PEER_RULE_PER_S as usize),
                    "{name}: events written for one peer and rule in one second"
                );
                assert_eq!(
                    suppressed(self.d) - sup0,
                    (flows - EVENTS_PER_PEER_RULE_PER_S as usize) as u64,
                    "{name}: events_suppressed"
                );
                // The suppressed events' actions were taken: every flow is blocked.
                self.rest_blocked(name, rest);
                // Leave the limiter's second spent by the burst before the next case's events.
                let into_second = monotonic_ns() % 1_000_000_000;
                std::thread::sleep(Duration::from_nanos(1_000_000_000 - into_second + 20_000_000));
            }
            Expect::FirstPassDrop(reasons) => {
                let n = frames.len() as u64;
                let by_reasons = |s: &Snapshot| reasons.iter().map(|r| s.reason(*r)).sum::<u64>();
                for f in frames {
                    self.tx.send(f);
                }
                let mut s1 = self.d.stats();
                wait_for(Duration::from_secs(2), || {
                    s1 = self.d.stats();
                    peer_totals(&s1).1 - peer_totals(&s0).1 >= n
                });
                let ((p0, d0), (p1, d1)) = (peer_totals(&s0), peer_totals(&s1));
                assert_eq!((p1 - p0, d1 - d0), (0, n), "{name}: (passed, dropped) by XDP");
                assert_eq!(by_reasons(&s1) - by_reasons(&s0), n, "{name}: counted under {reasons:?}");
            }
        }
    }
}

/// The attacks' policy with IP fragments of every class reassembled (the default drops SIGTRAN,
/// SCTP, Diameter and GTP-C fragments in XDP).
fn reassembling_policy() -> String {
    format!(
        "{POLICY}\n[fragments]\nsigtran = \"reassemble\"\nsctp = \"reassemble\"\ndiameter = \"reassemble\"\ngtp_c = \"reassemble\"\n"
    )
}

/// The lab's MTU for the caught layer: room for M4's 3,210-byte SCTP packet, and under the
/// largest MTU the kernel lets a veth have under a native XDP program that does not take
/// multi-buffer frames, as sigwall's does not (a 4 KiB page less XDP headroom and
/// `skb_shared_info`: about 3,500 bytes, so no 9,000-byte jumbo frames here).
const JUMBO_MTU: &str = "3400";

fn run_layer(tag: &str, policy_text: &str, cases: &[Case], mtu: Option<&str>) {
    let dir = tempdir(&format!("evasions-{tag}"));
    let generated = generate(dir.path(), &["evasions"]);
    // tshark on the same frames: the trigger frames are what each case claims.
    let fields: Vec<&str> = vec![
        "gsm_old.localValue",
        "diameter.cmd.code",
        "gtpv2.message_type",
        "sccpmg.message_type",
        "s1ap.procedureCode",
    ];
    let rows = tshark_fields(&dir.path().join("evasions.pcap"), &fields);
    let mut n = 0;
    let mut frames_of = std::collections::HashMap::new();
    for (_, name, frames) in &generated {
        frames_of.insert(name.clone(), (n, frames.clone()));
        n += frames.len();
    }
    for c in cases {
        let (first, _) = frames_of.get(c.name).unwrap_or_else(|| panic!("{}: not generated", c.name));
        for (i, f, want) in c.tshark {
            let r = &rows[&(first + i + 1)];
            assert_eq!(r[*f], *want, "{} frame {i}: tshark's {f}", c.name);
        }
    }
    let lab = Lab::new();
    if let Some(mtu) = mtu {
        for (ns, ifname) in [(&lab.ipx_ns, &lab.ipx_if), (&lab.edge_ns, &lab.edge_if)] {
            let out = std::process::Command::new("ip")
                .args(["-n", ns, "link", "set", "dev", ifname, "mtu", mtu])
                .output()
                .expect("run ip(8)");
            assert!(out.status.success(), "MTU {mtu} on {ifname}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_text).unwrap();
    let d = Daemon::start(&lab, &sigwall_bin(), &policy, &[]);
    let mut run = Run { d: &d, tx: lab.sender(), next_event: 1 };
    for c in cases {
        run.run(c, &frames_of[c.name].1);
    }
    let st = inspection(&d);
    assert_eq!(st["inspect_overflow"], 0, "{st:#}");
}

#[test]
fn evasions_caught() {
    run_layer("caught", &reassembling_policy(), &caught(), Some(JUMBO_MTU));
}

/// The first pass: a class is never downgraded to non-signaling when the parser cannot tell;
/// later fragments never pass without their first; fragments of classes that drop them.
#[test]
fn evasions_first_pass() {
    run_layer("first-pass", POLICY, &first_pass(), None);
}
