//! The decoder against pycrate's reading of the same TPDUs (`tests/sms/vectors.py` prints the
//! table below), every truncation, and malformed headers.

use super::*;

struct V {
    name: &'static str,
    dir: Direction,
    hex: &'static str,
    addr: &'static str,
    pid: u8,
    dcs: u8,
    udhi: bool,
    udl: u8,
    ies: &'static [(u8, &'static str)],
}

/// Output of `python3 filter-dpi/tests/sms/vectors.py` (pycrate's reading).
const PYCRATE: [V; 4] = [
    V {
        name: "text",
        dir: Direction::ToMs,
        hex: "040c9144770009103200006210210200000005e8329bfd06",
        addr: "447700900123",
        pid: 0,
        dcs: 0,
        udhi: false,
        udl: 5,
        ies: &[],
    },
    V {
        name: "sim-ota",
        dir: Direction::ToMs,
        hex: "440b913306090000f17ff6621021020000001f0270000270000016021212b00000000000000000000000d0d0d0d0d0d0d0d0",
        addr: "33609000001",
        pid: 127,
        dcs: 246,
        udhi: true,
        udl: 31,
        ies: &[(0x70, "")],
    },
    V {
        name: "concat-8bit",
        dir: Direction::ToMs,
        hex: "440c91447700091032000462102102000000090500032a0201010203",
        addr: "447700900123",
        pid: 0,
        dcs: 4,
        udhi: true,
        udl: 9,
        ies: &[(0x00, "2a0201")],
    },
    V {
        name: "submit",
        dir: Direction::FromMs,
        hex: "11070c915391010000240000a702e834",
        addr: "351910000042",
        pid: 0,
        dcs: 0,
        udhi: false,
        udl: 2,
        ies: &[],
    },
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn agrees_with_pycrate() {
    for v in PYCRATE {
        let b = unhex(v.hex);
        let t = TpduSlice::from_slice(&b, v.dir).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let want = if v.dir == Direction::ToMs { TpduType::Deliver } else { TpduType::Submit };
        assert_eq!(t.kind(), want, "{}", v.name);
        assert_eq!(t.address().unwrap().digits().as_deref(), Some(v.addr), "{}", v.name);
        assert_eq!((t.pid(), t.dcs().map(|d| d.raw)), (Some(v.pid), Some(v.dcs)), "{}", v.name);
        assert_eq!((t.has_udh(), t.udl()), (v.udhi, Some(v.udl)), "{}", v.name);
        let ies: Vec<(u8, String)> = t.ies().map(|ie| (ie.iei, hex(ie.data))).collect();
        let want: Vec<(u8, String)> = v.ies.iter().map(|(i, d)| (*i, d.to_string())).collect();
        assert_eq!(ies, want, "{}", v.name);
    }
}

#[test]
fn sim_ota_marks() {
    let ota = unhex(PYCRATE[1].hex);
    let t = TpduSlice::from_slice(&ota, Direction::ToMs).unwrap();
    assert_eq!(t.sim_ota_marks(), vec!["tp-pid-sim-data-download", "dcs-class2-8bit", "udh-command-packet"]);
    assert_eq!(t.dcs().unwrap(), Dcs { raw: 0xf6, alphabet: Alphabet::EightBit, class: Some(2), compressed: false });
    // Negative controls: a text SMS and a concatenated 8-bit one carry no mark.
    for v in [&PYCRATE[0], &PYCRATE[2], &PYCRATE[3]] {
        let b = unhex(v.hex);
        assert!(TpduSlice::from_slice(&b, v.dir).unwrap().sim_ota_marks().is_empty(), "{}", v.name);
    }
    // General data coding, class meaningful, 8-bit, class 2 (0x16) is class-2 8-bit too.
    assert_eq!(Dcs::parse(0x16).class, Some(2));
    assert_eq!(Dcs::parse(0x16).alphabet, Alphabet::EightBit);
    assert_eq!(Dcs::parse(0x08).alphabet, Alphabet::Ucs2);
    assert_eq!(Dcs::parse(0x04).class, None);
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for v in PYCRATE {
        let b = unhex(v.hex);
        for n in 0..b.len() {
            assert!(TpduSlice::from_slice(&b[..n], v.dir).is_err(), "{} cut at {n}", v.name);
        }
    }
}

#[test]
fn malformed_headers() {
    let mut b = unhex(PYCRATE[1].hex);
    // UDHL larger than the user data.
    // first octet, TP-OA (11 digits: 2 + 6 octets), TP-PID, TP-DCS, TP-SCTS, TP-UDL.
    let ud = 1 + 8 + 2 + 7 + 1;
    assert_eq!(b[ud], 2, "UDHL");
    b[ud] = 0x40;
    assert!(matches!(TpduSlice::from_slice(&b, Direction::ToMs), Err(DecodeError::Content { .. })));
    // An element whose length overruns the header.
    let mut b = unhex(PYCRATE[1].hex);
    b[ud + 2] = 5;
    assert_eq!(b[ud + 1], 0x70);
    assert!(matches!(TpduSlice::from_slice(&b, Direction::ToMs), Err(DecodeError::Content { .. })));
    // An address longer than 20 semi-octets.
    let mut b = unhex(PYCRATE[0].hex);
    b[1] = 21;
    assert!(matches!(TpduSlice::from_slice(&b, Direction::ToMs), Err(DecodeError::Content { .. })));
    // Over the length cap.
    assert!(matches!(TpduSlice::from_slice(&[0; 201], Direction::ToMs), Err(DecodeError::Limit { .. })));
    // Reports and commands decode to their type only.
    let t = TpduSlice::from_slice(&[0x02], Direction::ToMs).unwrap();
    assert_eq!((t.kind(), t.pid(), t.user_data()), (TpduType::StatusReport, None, &[][..]));
    assert_eq!(TpduSlice::from_slice(&[0x00], Direction::FromMs).unwrap().kind(), TpduType::DeliverReport);
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic sweep beside the fuzz target: every 1- to 3-octet prefix on a few
    // real PDUs' tails.
    let base = unhex(PYCRATE[1].hex);
    for a in 0..=255u8 {
        for pos in [0usize, 1, 2, 13, 14, 22, 23, 24, 25] {
            let mut b = base.clone();
            b[pos] = a;
            for dir in [Direction::ToMs, Direction::FromMs] {
                if let Ok(t) = TpduSlice::from_slice(&b, dir) {
                    let _ = (t.ies().count(), t.sim_ota_marks(), t.address().map(|x| x.digits()), t.user_data());
                }
            }
        }
    }
}
