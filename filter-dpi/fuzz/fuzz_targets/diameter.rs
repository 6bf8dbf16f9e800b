//! Diameter: the message decoders (strict and lax), every AVP walk, the names, and the stream
//! reassembler fed the input cut into segments at points the input itself chooses.

#![no_main]

use filter_dpi::DecodeError;
use filter_dpi::diameter::{self, DiameterSlice, StreamReassembler, names, reassembly::MAX_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = diameter::decode(data) {
        let _ = (m.command_name(), m.command_abbrev(), m.application_name(), m.all_application_ids().count());
        // A strict success is a lax success without a stop.
        let lax = diameter::decode_lax(data).expect("lax accepts what strict accepts");
        assert_eq!(lax.stop, None);
        assert_eq!(lax.message, m);
    }
    if let Ok(lax) = diameter::decode_lax(data) {
        let _ = names::command_name(lax.message.command_code);
    }
    if let Ok(s) = DiameterSlice::from_slice(data) {
        let _ = s.walk(|_, a| {
            let _ = (a.code(), a.flags(), a.vendor_id(), a.data(), a.as_u32(), a.members().count());
        });
        let _ = s.avps().count();
    }

    // Segment boundaries from the first byte: split every (k+1) bytes, k in 0..=15, and once in
    // two at a point the second byte picks.
    let Some((&k, rest)) = data.split_first() else { return };
    let step = usize::from(k & 0x0f) + 1;
    let mut r = StreamReassembler::new();
    let mut delivered = 0usize;
    for seg in rest.chunks(step) {
        let _ = r.push(seg, |m| {
            assert!(m.len() >= diameter::HEADER_LEN && m.len() <= MAX_MESSAGE_LEN);
            assert!(DiameterSlice::from_slice(m).is_ok(), "reassembled message has a valid header");
            delivered += m.len();
        });
        assert!(r.buffered() <= MAX_MESSAGE_LEN);
    }
    assert!(delivered + r.buffered() <= rest.len());
    if let Some((&cut, tail)) = rest.split_first() {
        let cut = usize::from(cut).min(tail.len());
        let (a, b) = tail.split_at(cut);
        let mut whole = StreamReassembler::new();
        let mut split = StreamReassembler::new();
        let mut out_whole = Vec::new();
        let mut out_split = Vec::new();
        let rw = whole.push(tail, |m| out_whole.push(m.to_vec()));
        let r1 = split.push(a, |m| out_split.push(m.to_vec()));
        let r2 = split.push(b, |m| out_split.push(m.to_vec()));
        // Without errors, where the stream is cut does not change the messages.
        if rw.is_ok() && r1.is_ok() && r2.is_ok() {
            assert_eq!(out_whole, out_split);
        }
        let _: Option<&DecodeError> = rw.as_ref().err();
    }
});
