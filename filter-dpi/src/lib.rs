//! sigwall's deep inspection decoders: zero-copy, bounded, never panicking on any input.
//!
//! A crate of its own so that it builds, tests, benches and fuzzes with `std` and `thiserror`
//! only (no aya, tokio or eBPF toolchain); the controller (`filter-user`, `inspect/`) feeds it
//! frames and judges what it returns.
//!
//! - [`sctp`]: SCTP packets, chunks, CRC32c and DATA/I-DATA reassembly; the SIGTRAN PPIDs;
//! - [`tcp`]: one direction of a TCP connection reassembled by sequence number;
//! - [`ipfrag`]: IPv4/IPv6 fragment reassembly;
//! - [`classify`]: what an SCTP user message is by its own header (M3UA, SUA, M2UA, M2PA,
//!   Diameter), whatever PPID the sender put on it;
//! - [`ss7`]: M3UA, SUA, M2UA or M2PA → (MTP3) → SCCP → TCAP → MAP, one call per user message;
//! - [`diameter`]: messages, AVPs, stream reassembly, names;
//! - [`gtp`]: GTPv2-C, GTPv1-C, GTP-U;
//! - [`sms`]: SMS TPDUs (DELIVER, SUBMIT: TP-PID, TP-DCS, user-data header) from MAP sm-RP-UI;
//! - [`ber`], [`bytes`], [`digits`]: the BER reader, big-endian reads and TBCD/BCD digit
//!   strings the protocols share.
//!
//! One module per protocol layer. Each decoder validates what it needs in `from_slice` and
//! returns a [`DecodeError`] that separates "too short" ([`DecodeError::Len`]) from "wrong
//! content" ([`DecodeError::Content`]) and from "over a documented cap" ([`DecodeError::Limit`]);
//! [`DecodeError::kind`] names the counter an error is counted under.

use std::fmt;

pub mod ber;
pub mod bytes;
pub mod classify;
pub mod diameter;
pub mod digits;
pub mod evicted;
pub mod gtp;
pub mod ipfrag;
pub mod sctp;
pub mod sms;
pub mod ss7;
pub mod tcp;
#[cfg(test)]
mod test_rng;

/// The protocol layer an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Sctp,
    M3ua,
    M2pa,
    /// SIGTRAN SCCP User Adaptation (RFC 3868).
    Sua,
    /// SIGTRAN MTP2 User Adaptation (RFC 3331).
    M2ua,
    Mtp3,
    Sccp,
    Tcap,
    Map,
    Diameter,
    GtpV1C,
    GtpV2C,
    GtpU,
    Ip,
    Sms,
}

impl Layer {
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Sctp => "sctp",
            Layer::M3ua => "m3ua",
            Layer::M2pa => "m2pa",
            Layer::Sua => "sua",
            Layer::M2ua => "m2ua",
            Layer::Mtp3 => "mtp3",
            Layer::Sccp => "sccp",
            Layer::Tcap => "tcap",
            Layer::Map => "map",
            Layer::Diameter => "diameter",
            Layer::GtpV1C => "gtpv1c",
            Layer::GtpV2C => "gtpv2c",
            Layer::GtpU => "gtpu",
            Layer::Ip => "ip",
            Layer::Sms => "sms",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends before a field or element that its header promises.
    #[error("{layer}: truncated: need {required} bytes, have {len}")]
    Len { layer: Layer, required: usize, len: usize },
    /// The bytes are there but do not mean anything valid.
    #[error("{layer}: {what}")]
    Content { layer: Layer, what: &'static str },
    /// A documented cap (nesting depth, element count, reassembly memory) was reached.
    #[error("{layer}: limit reached: {what}")]
    Limit { layer: Layer, what: &'static str },
    /// Decodable, and some receiver would act on it, but not canonical: an inner length that
    /// disagrees with its carrier, an encoding a strict decoder refuses (a global TCAP opcode,
    /// an over-long transaction id, an indefinite length, a non-TBCD IMSI...). The decoders
    /// that report this still return what they decoded (as the most permissive receiver would
    /// read it), so rules run; the caller judges the message malformed. This is where parser
    /// differentials (evasions) show up, so it has a counter of its own.
    #[error("{layer}: non-canonical: {what}")]
    NonCanonical { layer: Layer, what: &'static str },
}

impl DecodeError {
    pub fn layer(&self) -> Layer {
        match self {
            DecodeError::Len { layer, .. }
            | DecodeError::Content { layer, .. }
            | DecodeError::Limit { layer, .. }
            | DecodeError::NonCanonical { layer, .. } => *layer,
        }
    }

    /// Counter name, e.g. `sccp.truncated`, `tcap.content`, `sctp.limit`.
    pub fn kind(&self) -> String {
        let k = match self {
            DecodeError::Len { .. } => "truncated",
            DecodeError::Content { .. } => "content",
            DecodeError::Limit { .. } => "limit",
            DecodeError::NonCanonical { .. } => "noncanonical",
        };
        format!("{}.{k}", self.layer())
    }

    /// Shorthand for a length check: `Ok(())` if `len >= required`.
    pub fn need(layer: Layer, required: usize, len: usize) -> Result<(), DecodeError> {
        if len < required { Err(DecodeError::Len { layer, required, len }) } else { Ok(()) }
    }
}
