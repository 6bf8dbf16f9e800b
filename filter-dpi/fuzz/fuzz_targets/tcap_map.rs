//! TCAP and MAP: any bytes as a TCAP message, every component's parameter through the MAP
//! extractor (as argument and as result, under its own code and under every code 0..=127);
//! and the bytes as a bare MAP parameter and as BER walked to the depth cap.
#![no_main]

use filter_dpi::Layer;
use filter_dpi::ber::{Budget, Children, Tlv};
use filter_dpi::ss7::map;
use filter_dpi::ss7::tcap::TcapSlice;
use libfuzzer_sys::fuzz_target;

fn walk(t: &Tlv<'_>, b: &Budget) {
    for c in t.children(b) {
        match c {
            Ok(c) => walk(&c, b),
            Err(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = TcapSlice::from_slice(data) {
        let _ = (t.application_context(), t.application_context_version(), t.otid(), t.dtid());
        for c in t.components() {
            if let Some(p) = c.parameter {
                let op = c.op_code.and_then(|o| o.local()).unwrap_or(0);
                let _ = map::decode_invoke(op, &p);
                let _ = map::decode_result(op, &p);
            }
        }
    }
    if let Some((&op, rest)) = data.split_first() {
        let _ = map::decode_raw(op as i64 & 0x7f, rest, op & 0x80 == 0);
    }
    let b = Budget::new(Layer::Tcap);
    for t in Children::of(data, &b) {
        match t {
            Ok(t) => walk(&t, &b),
            Err(_) => break,
        }
    }
    let _ = filter_dpi::ber::oid_to_string(data);
    let _ = map::address_string(data);
});
