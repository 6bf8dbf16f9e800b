//! Deep inspection decoders: zero-copy, bounded, never panicking on any input.
//!
//! One module per protocol layer. Each decoder validates what it needs in `from_slice` and
//! returns a [`DecodeError`] that separates "too short" ([`DecodeError::Len`]) from "wrong
//! content" ([`DecodeError::Content`]) and from "over a documented cap" ([`DecodeError::Limit`]);
//! [`DecodeError::kind`] names the counter an error is counted under.

use std::fmt;

pub mod ber;
pub mod m2pa;
pub mod m3ua;
pub mod map;
pub mod mtp3;
pub mod sccp;
pub mod sctp;
pub mod sigtran;
pub mod tcap;

/// The protocol layer an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Sctp,
    M3ua,
    M2pa,
    Mtp3,
    Sccp,
    Tcap,
    Map,
    Diameter,
    GtpV1C,
    GtpV2C,
    GtpU,
    Ip,
}

impl Layer {
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Sctp => "sctp",
            Layer::M3ua => "m3ua",
            Layer::M2pa => "m2pa",
            Layer::Mtp3 => "mtp3",
            Layer::Sccp => "sccp",
            Layer::Tcap => "tcap",
            Layer::Map => "map",
            Layer::Diameter => "diameter",
            Layer::GtpV1C => "gtpv1c",
            Layer::GtpV2C => "gtpv2c",
            Layer::GtpU => "gtpu",
            Layer::Ip => "ip",
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
}

impl DecodeError {
    pub fn layer(&self) -> Layer {
        match self {
            DecodeError::Len { layer, .. } | DecodeError::Content { layer, .. } | DecodeError::Limit { layer, .. } => {
                *layer
            }
        }
    }

    /// Counter name, e.g. `sccp.truncated`, `tcap.content`, `sctp.limit`.
    pub fn kind(&self) -> String {
        let k = match self {
            DecodeError::Len { .. } => "truncated",
            DecodeError::Content { .. } => "content",
            DecodeError::Limit { .. } => "limit",
        };
        format!("{}.{k}", self.layer())
    }

    /// Shorthand for a length check: `Ok(())` if `len >= required`.
    pub fn need(layer: Layer, required: usize, len: usize) -> Result<(), DecodeError> {
        if len < required { Err(DecodeError::Len { layer, required, len }) } else { Ok(()) }
    }
}

pub mod diameter;
pub mod gtp;
