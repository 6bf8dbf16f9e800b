//! SIGTRAN: the first byte picks M3UA or M2PA, the rest is split into user messages (2-byte
//! length prefixes) fed to one stateful decoder (SCCP segment reassembly) and to the stateless
//! one.
#![no_main]

use filter_dpi::sctp::{PPID_M2PA, PPID_M3UA};
use filter_dpi::ss7::{Decoder, decode, m2pa, m3ua, mtp3, sccp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let ppid = if sel & 1 == 0 { PPID_M3UA } else { PPID_M2PA };
    let mut dec = Decoder::new();
    while rest.len() >= 2 {
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let body = &rest[2..];
        let msg = &body[..n.min(body.len())];
        rest = &body[msg.len()..];
        let _ = decode(ppid, msg);
        if let Ok(m) = dec.decode(ppid, msg) {
            let _ = (m.imsi(), m.msisdn(), m.op_codes().count(), m.is_partial());
        }
        // Each layer on its own, too.
        let _ = m3ua::M3uaSlice::from_slice(msg).map(|s| (s.params().count(), s.protocol_data()));
        let _ = m2pa::M2paSlice::from_slice(msg).map(|s| (s.mtp3_payload(), s.link_status()));
        let _ = mtp3::Mtp3Slice::from_slice(msg).map(|s| (s.opc(), s.dpc(), s.sls(), s.payload()));
        if let Ok(s) = sccp::SccpSlice::from_slice(msg) {
            let _ = (s.called().global_title(), s.calling().global_title(), s.segmentation());
            let _ = s.optional_params().count();
        }
    }
});
