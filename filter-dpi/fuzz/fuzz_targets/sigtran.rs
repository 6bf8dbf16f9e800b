//! SIGTRAN: the first byte picks M3UA, M2PA, SUA or M2UA, the rest is split into user messages
//! (2-byte length prefixes) fed to one stateful decoder (SCCP segment reassembly), to the
//! stateless one, and to the payload classifier (whose best guess is decoded too).
#![no_main]

use filter_dpi::classify::classify;
use filter_dpi::sctp::{PPID_M2PA, PPID_M2UA, PPID_M3UA, PPID_SUA};
use filter_dpi::ss7::{Decoder, decode, m2pa, m2ua, m3ua, mtp3, sccp, sua};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let ppid = [PPID_M3UA, PPID_M2PA, PPID_SUA, PPID_M2UA][usize::from(sel & 3)];
    let mut dec = Decoder::new();
    while rest.len() >= 2 {
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let body = &rest[2..];
        let msg = &body[..n.min(body.len())];
        rest = &body[msg.len()..];
        let _ = decode(ppid, msg);
        if let Ok(m) = dec.decode(ppid, msg) {
            let _ = (m.imsi(), m.msisdn(), m.op_codes().count(), m.is_partial(), m.is_malformed());
            let _ = m.wide_point_codes();
        }
        let c = classify(ppid, msg);
        let _ = (c.is_ambiguous(), c.is_unknown());
        for k in c.candidates() {
            if k.is_sigtran() {
                let _ = decode(k.ppid(), msg);
            } else {
                let _ = filter_dpi::diameter::decode_framed(msg);
            }
        }
        // Each layer on its own, too.
        let _ = m3ua::M3uaSlice::from_slice(msg).map(|s| (s.params().count(), s.protocol_data()));
        let _ = m2pa::M2paSlice::from_slice(msg).map(|s| (s.mtp3_payload(), s.link_status()));
        let _ = m2ua::M2uaSlice::from_slice(msg).map(|s| (s.mtp3_payload(), s.noncanonical(), s.interface_id()));
        let _ = sua::SuaSlice::from_slice(msg).map(|s| (s.connectionless(), s.noncanonical(), s.routing_context()));
        let _ = mtp3::Mtp3Slice::from_slice(msg).map(|s| (s.opc(), s.dpc(), s.sls(), s.payload()));
        if let Ok(s) = sccp::SccpSlice::from_slice(msg) {
            let _ = (s.called().global_title(), s.calling().global_title(), s.segmentation());
            let _ = (s.noncanonical(), s.called().global_title_noncanonical(), s.calling().point_code_spare_bits());
            let _ = s.optional_params().count();
        }
    }
});
