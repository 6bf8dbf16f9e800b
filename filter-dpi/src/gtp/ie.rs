//! IE values GTPv1-C and GTPv2-C share: the APN (TS 23.003 §9.1, DNS label encoding in both
//! versions), and keeping the first field error of a walk.

use crate::{DecodeError, Layer};

/// Most octets of an APN (TS 23.003 §9.1: 100).
pub const APN_MAX_LEN: usize = 100;

/// An APN in DNS label encoding (length octet, label, ...) as a dotted string: `oai.ipv4`. A
/// label length running past the value is a [`DecodeError::Content`].
pub fn apn_to_string(layer: Layer, value: &[u8]) -> Result<String, DecodeError> {
    if value.len() > APN_MAX_LEN {
        return Err(DecodeError::Limit { layer, what: "APN longer than 100 octets" });
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some((&n, tail)) = rest.split_first() {
        let Some((label, tail)) = tail.split_at_checked(usize::from(n)) else {
            return Err(DecodeError::Content { layer, what: "APN label runs past the IE" });
        };
        // TS 23.003 §9.1: labels are LDH ASCII. A non-ASCII byte was rendered lossily (the
        // differential fuzzer's GTP lenient class), and a '.' inside a label renders the same
        // as two labels: either way a rule would compare an APN the receiver does not see.
        if !label.is_ascii() || label.contains(&b'.') {
            return Err(DecodeError::NonCanonical { layer, what: "APN label is not ASCII or contains a dot" });
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&String::from_utf8_lossy(label));
        rest = tail;
    }
    Ok(out)
}

/// Keeps the first error of an IE walk: the fields before it are decoded, the stop says why the
/// rest was not.
pub(crate) fn keep_first(slot: &mut Option<DecodeError>, e: DecodeError) {
    if slot.is_none() {
        *slot = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Layer = Layer::GtpV2C;

    #[test]
    fn apn_labels() {
        assert_eq!(
            apn_to_string(L, b"\x08internet\x06mnc001\x06mcc001\x04gprs").unwrap(),
            "internet.mnc001.mcc001.gprs"
        );
        assert_eq!(apn_to_string(L, b"").unwrap(), "");
        assert!(apn_to_string(L, b"\x09internet").is_err());
        assert!(apn_to_string(L, &[1; 101]).is_err());
        // non-ASCII label; a dot inside one label (renders like two labels)
        for bad in [&b"\x03a\xc4b"[..], b"\x0cinternet.com"] {
            assert!(matches!(apn_to_string(L, bad), Err(DecodeError::NonCanonical { .. })));
        }
    }
}
