//! The committed fuzz seeds (`fuzz/seeds/<target>/`, made by `fuzz/seeds.py` from the messages
//! of `testdata/captures/`) are real messages in each target's input format: each one decodes
//! all the way with the decoder its target exercises. A seed that stops early would start the
//! fuzzer shallow, which is what the seeds are there to avoid.

use std::path::{Path, PathBuf};

use filter_dpi::sctp::{PPID_M2PA, PPID_M2UA, PPID_M3UA, PPID_SUA, SctpSlice};
use filter_dpi::ss7::{self, tcap::TcapSlice};
use filter_dpi::{diameter, gtp};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("directory entry").path();
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "{target}: only {} seeds", out.len());
    out
}

#[test]
fn sctp_seeds_are_sctp_packets() {
    for (p, d) in seeds("sctp") {
        let s = SctpSlice::from_slice(&d).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(s.chunk_count() >= 1, "{}", p.display());
    }
}

#[test]
fn sigtran_seeds_decode_past_the_adaptation_layer() {
    let mut to_tcap = 0;
    let mut reached = [0usize; 4];
    for (p, d) in seeds("sigtran") {
        let (&sel, mut rest) = d.split_first().expect("selector byte");
        // the fuzz target's selector: M3UA, M2PA, SUA, M2UA
        let ppid = [PPID_M3UA, PPID_M2PA, PPID_SUA, PPID_M2UA][usize::from(sel & 3)];
        let mut dec = ss7::Decoder::new();
        while let Some((len, body)) = rest.split_first_chunk::<2>() {
            let (msg, tail) = body.split_at(usize::from(u16::from_be_bytes(*len)));
            let m = dec.decode(ppid, msg).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            to_tcap += usize::from(m.tcap.is_some());
            if m.tcap.is_some() {
                reached[usize::from(sel & 3)] += 1;
            }
            rest = tail;
        }
        assert!(rest.is_empty(), "{}: trailing bytes", p.display());
    }
    assert!(to_tcap >= 10, "only {to_tcap} seeds reach TCAP");
    assert!(reached.iter().all(|&n| n > 0), "TCAP reached per adaptation layer (M3UA, M2PA, SUA, M2UA): {reached:?}");
}

#[test]
fn tcap_map_seeds_are_tcap_messages() {
    for (p, d) in seeds("tcap_map") {
        TcapSlice::from_slice(&d).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn diameter_seeds_are_whole_messages() {
    let mut bare = 0;
    for (p, d) in seeds("diameter") {
        // A message as it is, or after the byte that picks the reassembler's segment size.
        match diameter::decode(&d) {
            Ok(_) => bare += 1,
            Err(_) => {
                let (_, msg) = d.split_first().expect("segment-size byte");
                diameter::decode(msg).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
        }
    }
    assert!(bare >= 10, "only {bare} seeds reach the message decoders");
}

#[test]
fn gtp_seeds_have_valid_headers() {
    let mut control = 0;
    for (p, d) in seeds("gtp") {
        match gtp::decode_c_lax(&d) {
            Ok(l) if l.stop.is_none() => control += 1,
            // GTP-U (first IP fragments among them): the header must be valid.
            _ => {
                gtp::decode_u_lax(&d).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
        }
    }
    assert!(control >= 5, "only {control} GTP-C seeds");
}
