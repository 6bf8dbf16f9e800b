//! GTP: GTP-C (v1 and v2) and GTP-U decoders, strict and lax, the IE walks and the inner IP
//! parser on arbitrary bytes.

#![no_main]

use filter_dpi::gtp::{self, GtpV1Slice, GtpV2Slice, InnerIp, v1, v2};
use filter_dpi::{Layer, digits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = gtp::decode_c(data) {
        let _ = (m.message_name(), m.is_mobility_management());
        let lax = gtp::decode_c_lax(data).expect("lax accepts what strict accepts");
        assert_eq!(lax.stop, None);
        assert_eq!(lax.message, m);
    }
    let _ = gtp::decode_c_lax(data);
    if let Ok(m) = gtp::decode_u(data) {
        let lax = gtp::decode_u_lax(data).expect("lax accepts what strict accepts");
        assert_eq!(lax.stop, None);
        assert_eq!(lax.message, m);
    }
    let _ = gtp::decode_u_lax(data);
    if let Ok(s) = GtpV2Slice::from_slice(data) {
        let _ = s.walk(|ie, _| {
            let _ = (ie.ie_type(), ie.instance(), ie.value().len());
        });
        if let Some(Ok(p)) = s.piggybacked() {
            let _ = p.ies().count();
        }
    }
    if let Ok(s) = GtpV1Slice::from_slice(data, Layer::GtpV1C) {
        let _ = v1::V1IeIter::new(s.payload()).count();
        let _ = (s.sequence(), s.npdu(), s.extension_headers());
    }
    let _ = v2::walk(data, |_, _| {});
    let _ = gtp::ie::apn_to_string(Layer::GtpV2C, data);
    let _ = v2::Fteid::parse(data, 0, None);
    let _ = digits::tbcd_decimal(Layer::GtpV2C, data);
    let _ = digits::tbcd_map(data);
    let _ = digits::bcd_global_title(data, None);
    let _ = digits::Plmn::from_bytes(Layer::GtpV2C, data);
    if let Ok(Some(ip)) = InnerIp::parse(data) {
        let _ = gtp::u::inner_is_gtp(data, &ip, true);
        let _ = gtp::u::inner_is_gtp(data, &ip, false);
    }
});
