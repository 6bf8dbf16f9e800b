//! `dpi-fields`: prints the security-relevant fields sigwall's decoders find, one JSON object
//! per input line, for the differential fuzzer (`filter-dpi/fuzz/differential.py`), which
//! compares them with an independent decoder's (pycrate) on generated and mutated messages.
//!
//! Input, one message per line: `<family> <hex>`, family one of `tcap` (a TCAP message),
//! `m3ua` (an M3UA message: M3UA → SCCP → TCAP → MAP; likewise `sua`, `m2ua`, `m2pa`),
//! `diameter` (one Diameter message, as one SCTP user message), `gtpc` (one GTP-C datagram
//! payload, GTPv1-C or GTPv2-C), `sms-deliver` and `sms-submit` (one SMS TPDU, TS 23.040, sent
//! to the mobile or from it: TP-MTI means different types each way). Output:
//! `{"ok":..., ...}` with the fields, `"error"` naming the error that stopped decoding and
//! `"anomalies"` the non-canonical findings. A line that is not `<family> <hex>` gets
//! `{"bad_input":true}`.
//!
//! Std only (the crate's dependency rule): the JSON is written by hand.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufWriter, Write};

use filter_dpi::ss7::{self, tcap::TcapSlice};
use filter_dpi::{DecodeError, diameter, gtp, sctp, sms};

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => o.push(c),
            // Controls and every non-ASCII character as \uXXXX (UTF-16 units, as JSON wants):
            // the answer is one ASCII line, so no reader can split it at U+0085 or U+2028.
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(o, "\\u{u:04x}");
                }
            }
        }
    }
    o.push('"');
    o
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

fn opt_s(v: Option<&str>) -> String {
    v.map_or("null".into(), js)
}

fn err(e: Option<&DecodeError>) -> String {
    e.map_or("null".into(), |e| js(&e.kind()))
}

fn list<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> String) -> String {
    let v: Vec<String> = items.into_iter().map(f).collect();
    format!("[{}]", v.join(","))
}

/// TCAP alone: message type, transaction ids, application context, components' kinds and
/// codes (MAP arguments are compared through `m3ua`, which decodes them).
fn tcap(b: &[u8]) -> String {
    match TcapSlice::from_slice_lax(b) {
        Err(e) => format!("{{\"ok\":false,\"error\":{}}}", err(Some(&e))),
        Ok((t, stop)) => {
            let comps = list(t.components(), |c| {
                format!(
                    "{{\"kind\":{},\"invoke_id\":{},\"linked_id\":{},\"op\":{},\"global_op\":{},\"error_code\":{}}}",
                    js(c.kind.name()),
                    opt(c.invoke_id),
                    opt(c.linked_id),
                    opt(c.op_code.and_then(|o| o.local())),
                    matches!(c.op_code, Some(ss7::tcap::Code::Global(_))),
                    opt(c.error_code.and_then(|o| o.local())),
                )
            });
            format!(
                "{{\"ok\":true,\"type\":{},\"otid\":{},\"dtid\":{},\"acn\":{},\"components\":{},\"error\":{},\"anomalies\":{}}}",
                js(t.message_type().name()),
                opt_s(t.otid().map(hex).as_deref()),
                opt_s(t.dtid().map(hex).as_deref()),
                opt_s(t.application_context().as_deref()),
                comps,
                err(stop.as_ref()),
                list(t.anomalies(), |e| js(&e.to_string())),
            )
        }
    }
}

fn party(p: &ss7::PartyAddress) -> String {
    format!(
        "{{\"ri\":{},\"pc\":{},\"ssn\":{},\"gt\":{}}}",
        p.routing_indicator,
        opt(p.point_code),
        opt(p.ssn),
        opt_s(p.digits())
    )
}

fn sigtran(ppid: u32, b: &[u8]) -> String {
    match ss7::decode(ppid, b) {
        Err(e) => format!("{{\"ok\":false,\"error\":{}}}", err(Some(&e))),
        Ok(m) => {
            let stop = match &m.stopped {
                Some(ss7::Stopped::Error(e)) => err(Some(e)),
                Some(ss7::Stopped::NotCarried { layer, .. }) => js(&format!("{layer}.not_carried")),
                Some(ss7::Stopped::Segment(_)) => js("sccp.segment"),
                None => "null".into(),
            };
            let (called, calling) = match &m.sccp {
                Some(s) => (party(&s.called), party(&s.calling)),
                None => ("null".into(), "null".into()),
            };
            let comps = list(m.components(), |c| {
                format!(
                    "{{\"kind\":{},\"op\":{},\"imsi\":{},\"msisdn\":{}}}",
                    js(c.kind.name()),
                    opt(c.op_code),
                    opt_s(c.map.as_ref().and_then(|i| i.imsi.as_deref())),
                    opt_s(c.map.as_ref().and_then(|i| i.msisdn())),
                )
            });
            format!(
                "{{\"ok\":true,\"opc\":{},\"dpc\":{},\"si\":{},\"called\":{},\"calling\":{},\"tcap_type\":{},\"components\":{},\"error\":{},\"anomalies\":{}}}",
                opt(m.opc),
                opt(m.dpc),
                opt(m.si),
                called,
                calling,
                opt_s(m.tcap.as_ref().map(|t| t.message_type.name())),
                comps,
                stop,
                list(&m.anomalies, |e| js(&e.to_string())),
            )
        }
    }
}

fn diameter(b: &[u8]) -> String {
    match diameter::decode_framed(b) {
        Err(e) => format!("{{\"ok\":false,\"error\":{}}}", err(Some(&e))),
        Ok(l) => {
            let m = &l.message;
            format!(
                "{{\"ok\":true,\"command\":{},\"request\":{},\"app\":{},\"origin_host\":{},\"origin_realm\":{},\"destination_host\":{},\"destination_realm\":{},\"user_name\":{},\"error\":{}}}",
                m.command_code,
                m.is_request(),
                m.application_id,
                opt_s(m.origin_host.as_deref()),
                opt_s(m.origin_realm.as_deref()),
                opt_s(m.destination_host.as_deref()),
                opt_s(m.destination_realm.as_deref()),
                opt_s(m.user_name.as_deref()),
                err(l.stop.as_ref()),
            )
        }
    }
}

fn gtpc(b: &[u8]) -> String {
    match gtp::decode_c_lax(b) {
        Err(e) => format!("{{\"ok\":false,\"error\":{}}}", err(Some(&e))),
        Ok(l) => {
            let m = &l.message;
            format!(
                "{{\"ok\":true,\"version\":{},\"type\":{},\"teid\":{},\"seq\":{},\"imsi\":{},\"msisdn\":{},\"apn\":{},\"error\":{}}}",
                m.version,
                m.message_type,
                opt(m.teid),
                opt(m.sequence),
                opt_s(m.imsi.as_deref()),
                opt_s(m.msisdn.as_deref()),
                opt_s(m.apn.as_deref()),
                err(l.stop.as_ref()),
            )
        }
    }
}

/// SMS TPDU: TP-MTI, TP-PID, TP-DCS, TP-OA/TP-DA digits (null for an alphanumeric address),
/// TP-UDHI and the user-data header's IEIs in order.
fn sms(b: &[u8], dir: sms::Direction) -> String {
    match sms::TpduSlice::from_slice(b, dir) {
        Err(e) => format!("{{\"ok\":false,\"error\":{}}}", err(Some(&e))),
        Ok(t) => {
            let addr = t.address();
            format!(
                "{{\"ok\":true,\"mti\":{},\"kind\":{},\"pid\":{},\"dcs\":{},\"ton\":{},\"addr\":{},\"udhi\":{},\"ies\":{},\"error\":null}}",
                t.first_octet() & 0x03,
                js(&format!("{:?}", t.kind())),
                opt(t.pid()),
                opt(t.dcs().map(|d| d.raw)),
                opt(addr.map(|a| a.ton)),
                opt_s(addr.and_then(|a| a.digits()).as_deref()),
                t.has_udh(),
                list(t.ies(), |ie| ie.iei.to_string()),
            )
        }
    }
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut out = BufWriter::new(io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        let mut it = line.split_ascii_whitespace();
        let (fam, bytes) = (it.next(), it.next().and_then(unhex));
        let j = match (fam, bytes) {
            (Some("tcap"), Some(b)) => tcap(&b),
            (Some("m3ua"), Some(b)) => sigtran(sctp::PPID_M3UA, &b),
            (Some("sua"), Some(b)) => sigtran(sctp::PPID_SUA, &b),
            (Some("m2ua"), Some(b)) => sigtran(sctp::PPID_M2UA, &b),
            (Some("m2pa"), Some(b)) => sigtran(sctp::PPID_M2PA, &b),
            (Some("diameter"), Some(b)) => diameter(&b),
            (Some("gtpc"), Some(b)) => gtpc(&b),
            (Some("sms-deliver"), Some(b)) => sms(&b, sms::Direction::ToMs),
            (Some("sms-submit"), Some(b)) => sms(&b, sms::Direction::FromMs),
            _ => "{\"bad_input\":true}".into(),
        };
        writeln!(out, "{j}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::js;

    #[test]
    fn json_strings_are_one_ascii_line() {
        // NEL, LINE SEPARATOR and a character beyond the BMP (a surrogate pair in JSON).
        let s = js("a\"\\\n\u{7f}\u{85}\u{2028}é\u{1F600}");
        assert_eq!(s, r#""a\"\\\u000a\u007f\u0085\u2028\u00e9\ud83d\ude00""#);
        assert!(s.is_ascii() && !s.contains('\n'));
    }
}
