use super::*;

const GOOD: &str = r#"
[defaults]
mode = "enforce"
unknown_peer = "drop"
non_signaling = "pass"

[ports]
gtp_c = [2123]
gtp_u = [2152]
diameter = [3868, 3869]
sigtran = [2905]

[[peer]]
name = "partner-a"
prefixes = ["198.51.100.0/24", "2001:db8:a::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]
rate_limit_pps = 50000
mode = "monitor"

[[peer]]
name = "partner-b"
prefixes = ["198.51.100.128/25", "203.0.113.7"]
allow = ["sctp"]
"#;

fn p(text: &str) -> Result<Policy, PolicyError> {
    parse("policy.toml", text, &Limits::default())
}

/// The error for `text`, which must be rejected, as "line: message".
fn err(text: &str) -> (usize, String) {
    let e = p(text).expect_err("policy should be rejected");
    assert_eq!(e.file, "policy.toml");
    assert!(e.to_string().starts_with(&format!("policy.toml:{}: ", e.line)), "{e}");
    (e.line, e.message)
}

#[test]
fn the_documented_example_parses() {
    let pol = p(GOOD).unwrap();
    assert_eq!(pol.mode, Mode::Enforce);
    assert!(!pol.unknown_peer_pass);
    assert!(pol.non_signaling_pass);
    assert_eq!(pol.ports.diameter, vec![3868, 3869]);
    assert_eq!(pol.peers.len(), 2);
    let a = &pol.peers[0];
    assert_eq!(a.name, "partner-a");
    assert_eq!(a.rate_limit_pps, Some(50000));
    assert_eq!(a.mode, Some(Mode::Monitor));
    assert_eq!(a.allow, vec![AllowClass::Sigtran, AllowClass::Diameter, AllowClass::GtpC, AllowClass::GtpU]);
    assert_eq!(pol.peers[1].prefixes[1].to_string(), "203.0.113.7/32", "a bare address is a host prefix");
}

#[test]
fn empty_file_means_defaults_and_no_peers() {
    let pol = p("").unwrap();
    assert_eq!(pol.mode, Mode::Enforce);
    assert!(!pol.unknown_peer_pass);
    assert!(pol.non_signaling_pass);
    assert_eq!(pol.ports, Ports::default());
    assert!(pol.peers.is_empty());
}

#[test]
fn overlapping_prefixes_of_different_lengths_are_valid() {
    // partner-b's /25 lies inside partner-a's /24 in GOOD.
    p(GOOD).unwrap();
}

#[test]
fn bad_toml_is_rejected_with_its_line() {
    let (line, msg) = err("[defaults]\nmode = \"enforce\"\n\n[[peer]\nname = 1\n");
    assert_eq!(line, 4, "{msg}");
}

#[test]
fn unknown_keys_are_rejected() {
    let (line, msg) = err("[defaults]\nmode = \"enforce\"\nunknwon_peer = \"drop\"\n");
    assert_eq!(line, 3);
    assert!(msg.contains("unknwon_peer"), "{msg}");
    let (line, msg) = err("[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = [\"gtp-c\"]\nrate = 5\n");
    assert_eq!(line, 5);
    assert!(msg.contains("rate"), "{msg}");
    let (_, msg) = err("[limits]\nx = 1\n");
    assert!(msg.contains("limits"), "{msg}");
}

#[test]
fn bad_enum_values_are_rejected() {
    let (line, msg) = err("[defaults]\nmode = \"enforcing\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("enforcing"), "{msg}");
    let (line, _) = err("[defaults]\nunknown_peer = \"allow\"\n");
    assert_eq!(line, 2);
}

fn peer_with(field: &str) -> String {
    format!("[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = [\"gtp-c\"]\n{field}\n")
}

#[test]
fn bad_prefixes_are_rejected() {
    for (bad, needle) in [
        ("198.18.0.0/33", "not a prefix"),
        ("198.18.0.0/", "not a prefix"),
        ("198.18.0", "not an address"),
        ("banana", "not an address"),
        ("198.18.0.1/24", "did you mean 198.18.0.0/24"),
        ("2001:db8::1/32", "did you mean 2001:db8::/32"),
        ("2001:db8::/129", "not a prefix"),
    ] {
        let text = format!(
            "[[peer]]\nname = \"a\"\nallow = [\"gtp-c\"]\nprefixes = [\n  \"198.19.0.0/16\",\n  \"{bad}\",\n]\n"
        );
        let (line, msg) = err(&text);
        assert_eq!(line, 6, "{bad}: {msg}");
        assert!(msg.contains(needle), "{bad}: {msg}");
    }
    let (line, msg) = err("[[peer]]\nname = \"a\"\nprefixes = []\nallow = [\"gtp-c\"]\n");
    assert_eq!(line, 3);
    assert!(msg.contains("no prefixes"), "{msg}");
}

#[test]
fn unknown_class_is_rejected() {
    let (line, msg) = err("[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = [\"gtp-c\", \"ss7\"]\n");
    assert_eq!(line, 4);
    assert!(msg.contains("unknown class \"ss7\""), "{msg}");
    assert!(msg.contains("sigtran, diameter, gtp-c, gtp-u, sctp"), "{msg}");
}

#[test]
fn duplicate_peer_names_are_rejected() {
    let text = "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = [\"gtp-c\"]\n\n[[peer]]\nname = \"a\"\nprefixes = [\"198.18.1.0/24\"]\nallow = [\"gtp-c\"]\n";
    let (line, msg) = err(text);
    assert_eq!(line, 7);
    assert!(msg.contains("duplicate peer name \"a\" (first defined on line 2)"), "{msg}");
}

#[test]
fn same_prefix_in_two_peers_is_rejected() {
    let text = "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = [\"gtp-c\"]\n\n[[peer]]\nname = \"b\"\nprefixes = [\"2001:db8::/32\", \"198.18.0.0/24\"]\nallow = [\"gtp-c\"]\n";
    let (line, msg) = err(text);
    assert_eq!(line, 8);
    assert!(msg.contains("claimed by peer \"b\" and by peer \"a\" (line 3)"), "{msg}");
    // The same prefix written twice in one peer, spelt differently.
    let (_, msg) = err("[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.7\", \"198.18.0.7/32\"]\nallow = [\"gtp-c\"]\n");
    assert!(msg.contains("listed twice"), "{msg}");
}

#[test]
fn bad_rates_and_names_are_rejected() {
    let (line, msg) = err(&peer_with("rate_limit_pps = 0"));
    assert_eq!(line, 5);
    assert!(msg.contains("rate_limit_pps"), "{msg}");
    let (_, msg) = err(&peer_with("rate_limit_pps = -5"));
    assert!(msg.contains("rate_limit_pps"), "{msg}");
    let (_, msg) = err(&peer_with("rate_burst = 10"));
    assert!(msg.contains("needs rate_limit_pps"), "{msg}");
    let (_, msg) = err("[[peer]]\nname = \"two words\"\nprefixes = [\"198.18.0.0/24\"]\nallow = []\n");
    assert!(msg.contains("printable"), "{msg}");
    let (_, msg) = err("[[peer]]\nname = \"\"\nprefixes = [\"198.18.0.0/24\"]\nallow = []\n");
    assert!(msg.contains("empty"), "{msg}");
    let (_, msg) = err("[[peer]]\nprefixes = [\"198.18.0.0/24\"]\nallow = []\n");
    assert!(msg.contains("name"), "{msg}");
}

#[test]
fn bad_ports_are_rejected() {
    let (line, msg) = err("[ports]\ngtp_c = [2123, 70000]\n");
    assert_eq!(line, 2);
    assert!(msg.contains("70000 is not a port"), "{msg}");
    let (_, msg) = err("[ports]\ngtp_c = [1, 2, 3, 4, 5]\n");
    assert!(msg.contains("at most 4"), "{msg}");
    let (line, msg) = err("[ports]\ngtp_c = [2123]\ngtp_u = [2123]\n");
    assert_eq!(line, 3);
    assert!(msg.contains("already used by ports.gtp_c"), "{msg}");
    let (_, msg) = err("[ports]\ndiameter = [2152]\n");
    assert!(msg.contains("already used by ports.gtp_u"), "{msg}");
}

#[test]
fn capacity_is_checked_before_anything_is_written() {
    let limits = Limits { prefixes_v4: 1, prefixes_v6: 10 };
    let e = parse("policy.toml", GOOD, &limits).unwrap_err();
    assert!(e.message.contains("3 IPv4 prefixes exceed the capacity of 1"), "{e}");
}

#[test]
fn compile_lays_out_ids_ports_and_rates() {
    use filter_common::{ALLOW_SCTP_ANY, Class, PEER_MODE_INHERIT, PEER_MODE_MONITOR, PortClass};
    let c = compile::compile(&p(GOOD).unwrap(), 7, &mut compile::PeerIds::default());
    assert_eq!(c.global.generation, 7);
    assert_eq!(c.global.port_counts[PortClass::Diameter as usize], 2);
    assert!(c.global.port_is(PortClass::Diameter, 3869u16.to_be()));
    assert_eq!(c.peers.len(), 2);
    let a = &c.peers[0].policy;
    assert_eq!(a.allow, Class::Sigtran.bit() | Class::Diameter.bit() | Class::GtpC.bit() | Class::GtpU.bit());
    assert_eq!(a.mode, PEER_MODE_MONITOR);
    assert_eq!(a.rate_interval_ns, 20_000);
    assert_eq!(a.rate_tolerance_ns, 49_999 * 20_000);
    let b = &c.peers[1].policy;
    assert_eq!(b.allow, ALLOW_SCTP_ANY);
    assert_eq!(b.mode, PEER_MODE_INHERIT);
    assert_eq!(b.rate_interval_ns, 0);
    assert_eq!(c.v4, vec![(24, [198, 51, 100, 0], 1), (25, [198, 51, 100, 128], 2), (32, [203, 0, 113, 7], 2)]);
    assert_eq!(c.v6.len(), 1);
    assert_eq!(c.v6[0].0, 48);
}

#[test]
fn peer_ids_are_stable_by_name_and_reused_lowest_first() {
    let mut ids = compile::PeerIds::default();
    let c = compile::compile(&p(GOOD).unwrap(), 1, &mut ids);
    assert_eq!(c.peers.iter().map(|x| x.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(c.fresh_ids, vec![1, 2]);
    assert_eq!(c.global.peer_slots, 3);
    // partner-a removed, partner-c added after partner-b: b keeps 2, c takes the freed 1.
    let text = GOOD.replace("name = \"partner-a\"", "name = \"partner-c\"");
    let mut pol = p(&text).unwrap();
    pol.peers.swap(0, 1);
    let c = compile::compile(&pol, 2, &mut ids);
    assert_eq!(
        c.peers.iter().map(|x| (x.name.as_str(), x.id)).collect::<Vec<_>>(),
        vec![("partner-b", 2), ("partner-c", 1)]
    );
    assert_eq!(c.fresh_ids, vec![1]);
    assert_eq!(c.v4.iter().find(|e| e.1 == [203, 0, 113, 7]).unwrap().2, 2, "prefixes carry the stable id");
}

#[test]
fn inspection_settings_parse_and_reject() {
    let text = format!(
        "{GOOD}\n[inspect]\nhome_imsi_prefixes = [\"00101\"]\nhome_gt_prefixes = [\"4477\"]\nhome_realms = [\"EPC.mnc001.mcc001.3gppnetwork.org\"]\nblock_ttl_s = 60\n\n[[inspect.rule]]\nname = \"ss7-category1\"\naction = \"block-peer\"\nttl_s = 30\n"
    )
    .replace(
        "mode = \"monitor\"\n",
        "mode = \"monitor\"\ninspect = \"sample:10\"\ninspect_gtpu = \"all\"\ngt_prefixes = [\"4479\"]\nrealms = [\"epc.mnc002.mcc001.3gppnetwork.org\"]\nplmn_ids = [\"00102\"]\ndiameter_apps = [16777251]\n",
    );
    let pol = p(&text).unwrap();
    assert_eq!(pol.inspect.home_realms, vec!["epc.mnc001.mcc001.3gppnetwork.org"]);
    assert_eq!(pol.inspect.block_ttl_s, 60);
    assert_eq!(pol.inspect.rules[0].action, Some(inspect::RuleAction::BlockPeer));
    let a = &pol.peers[0].inspect;
    assert_eq!((a.sampling, a.sampling_gtpu), (inspect::Sampling::OneIn(10), inspect::Sampling::All));
    assert_eq!(a.diameter_apps, vec![16777251]);
    assert_eq!(pol.peers[1].inspect, inspect::PeerInspect::default());
    let c = compile::compile(&pol, 1, &mut compile::PeerIds::default());
    assert_eq!((c.peers[0].policy.inspect_every, c.peers[0].policy.inspect_gtpu_every), (10, 1));
    assert_eq!((c.peers[1].policy.inspect_every, c.peers[1].policy.inspect_gtpu_every), (1, 0));

    for (bad, needle) in [
        ("inspect = \"sometimes\"", "sample:N"),
        ("inspect = \"sample:1\"", "sample:N"),
        ("gt_prefixes = [\"44a\"]", "decimal digits"),
        ("plmn_ids = [\"0010\"]", "5 or 6 digits"),
        ("realms = [\"bad realm\"]", "not a DNS name"),
        ("diameter_apps = [-1]", "32-bit"),
    ] {
        let (_, msg) = err(&peer_with(bad));
        assert!(msg.contains(needle), "{bad}: {msg}");
    }
    let (line, msg) = err("[inspect]\n\n[[inspect.rule]]\nname = \"ss7-everything\"\n");
    assert_eq!(line, 4);
    assert!(msg.contains("unknown rule"), "{msg}");
    let (_, msg) = err("[[inspect.rule]]\nname = \"ss7-category1\"\naction = \"drop\"\n");
    assert!(msg.contains("alert, block, block-flow or block-peer"), "{msg}");
    let (line, msg) = err("[[inspect.rule]]\nname = \"ss7-category1\"\nidentity = \"gt\"\n");
    assert_eq!(line, 3);
    assert!(msg.contains("identity \"gt\": expected sender, imsi or none"), "{msg}");
    let (_, msg) = err("[inspect]\nenabled = true\nhome = 1\n");
    assert!(msg.contains("home"), "{msg}");
}

#[test]
fn fragments_and_unclassifiable_settings() {
    use filter_common::{Class, DEFAULT_FRAGMENTS_DROP, PEER_FLAG_UNCLASSIFIABLE_PASS};
    // Defaults: GTP-U fragments reassembled, the other classes' dropped; unclassifiable dropped.
    let pol = p(GOOD).unwrap();
    let c = compile::compile(&pol, 1, &mut compile::PeerIds::default());
    assert_eq!(c.global.fragments_drop, DEFAULT_FRAGMENTS_DROP);
    assert_eq!(c.peers[0].policy.flags & PEER_FLAG_UNCLASSIFIABLE_PASS, 0);

    let text = format!(
        "{}\n[fragments]\ngtp_u = \"drop\"\nsigtran = \"reassemble\"\nsctp = \"reassemble\"\n",
        GOOD.replace("name = \"partner-b\"", "name = \"partner-b\"\nunclassifiable = \"pass\"")
    );
    let pol = p(&text).unwrap();
    let c = compile::compile(&pol, 1, &mut compile::PeerIds::default());
    let want = Class::Diameter.bit() | Class::GtpC.bit() | Class::GtpU.bit();
    assert_eq!(c.global.fragments_drop as u32, want);
    assert_eq!(c.peers[1].policy.flags & PEER_FLAG_UNCLASSIFIABLE_PASS, PEER_FLAG_UNCLASSIFIABLE_PASS);
    assert!(pol.summary().contains("IP fragments dropped for [diameter, gtp-c, gtp-u]"), "{}", pol.summary());

    let (line, msg) = err("[fragments]\ngtp_u = \"keep\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("reassemble") && msg.contains("drop"), "{msg}");
    let (_, msg) = err("[fragments]\nicmp = \"drop\"\n");
    assert!(msg.contains("icmp"), "{msg}");
    let (_, msg) = err(&GOOD.replace("mode = \"monitor\"", "unclassifiable = \"maybe\""));
    assert!(msg.contains("pass") && msg.contains("drop"), "{msg}");
}

/// `on_overload`: fail-closed by default (no flag), `fail-open` sets the flag XDP reads; other
/// words are refused with the choices named.
#[test]
fn on_overload_setting() {
    use filter_common::PEER_FLAG_OVERLOAD_PASS;
    let pol = p(GOOD).unwrap();
    let c = compile::compile(&pol, 1, &mut compile::PeerIds::default());
    assert!(c.peers.iter().all(|x| x.policy.flags & PEER_FLAG_OVERLOAD_PASS == 0));
    let text = GOOD.replace("name = \"partner-b\"", "name = \"partner-b\"\non_overload = \"fail-open\"");
    let pol = p(&text).unwrap();
    let c = compile::compile(&pol, 1, &mut compile::PeerIds::default());
    assert_eq!(c.peers[1].policy.flags & PEER_FLAG_OVERLOAD_PASS, PEER_FLAG_OVERLOAD_PASS);
    assert_eq!(c.peers[0].policy.flags & PEER_FLAG_OVERLOAD_PASS, 0);
    assert!(pol.summary().contains("fail-open"), "{}", pol.summary());
    let text = GOOD.replace("name = \"partner-b\"", "name = \"partner-b\"\non_overload = \"fail-closed\"");
    let c = compile::compile(&p(&text).unwrap(), 1, &mut compile::PeerIds::default());
    assert_eq!(c.peers[1].policy.flags & PEER_FLAG_OVERLOAD_PASS, 0);
    let (_, msg) = err(&GOOD.replace("name = \"partner-b\"", "name = \"partner-b\"\non_overload = \"open\""));
    assert!(msg.contains("fail-closed") && msg.contains("fail-open"), "{msg}");
}
