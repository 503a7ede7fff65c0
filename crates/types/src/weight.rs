//! What executing a transaction costs a validator, and the fee that pays for it.
//!
//! A [`Weight`] is time: nanoseconds of execution on the reference machine (the project's 2-core
//! x86_64 machine, one core), measured with criterion and written in the runtime's weight table.
//! A block holds at most `Params::max_block_weight` of it, its hooks included, so what it costs
//! to build and verify is bounded whatever it holds; and every transaction pays for its weight,
//! so an expensive call (verifying TEE evidence, searching for a worker, settling a report) is
//! never as cheap to send as a transfer.
#![deny(clippy::arithmetic_side_effects)]

use crate::balance::Balance;
use crate::codec_newtype;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Nanoseconds of execution on the reference machine.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, Debug,
)]
#[serde(transparent)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Weight(pub u64);
codec_newtype!(Weight);

impl Weight {
    /// No cost.
    pub const ZERO: Weight = Weight(0);

    /// `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Weight {
        Weight(micros.saturating_mul(1_000))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Weight {
        Weight(millis.saturating_mul(1_000_000))
    }

    /// `self + other`, at most `u64::MAX` (a weight that large fits no block).
    pub const fn saturating_add(self, other: Weight) -> Weight {
        Weight(self.0.saturating_add(other.0))
    }

    /// `self × count`, at most `u64::MAX`.
    pub const fn saturating_mul(self, count: u64) -> Weight {
        Weight(self.0.saturating_mul(count))
    }

    /// `self - other`, zero at least.
    pub const fn saturating_sub(self, other: Weight) -> Weight {
        Weight(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Weight {
    /// In the unit a person reads: `850 ns`, `42.5 µs`, `3.25 ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0;
        if nanos < 1_000 {
            write!(f, "{nanos} ns")
        } else if nanos < 1_000_000 {
            write!(f, "{}.{:01} µs", nanos / 1_000, (nanos % 1_000) / 100)
        } else {
            write!(
                f,
                "{}.{:02} ms",
                nanos / 1_000_000,
                (nanos % 1_000_000) / 10_000
            )
        }
    }
}

/// The least fee of one transaction, part by part: what `payment_queryFee` answers, what a wallet
/// shows before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeQuote {
    /// What executing it costs.
    pub weight: Weight,
    /// Its encoded size, signature included.
    pub size: u32,
    /// The part every transaction pays (`base_fee`).
    pub base: Balance,
    /// The part for its weight (`weight × fee_per_weight`).
    pub for_weight: Balance,
    /// The part for its bytes (`size × fee_per_byte`).
    pub for_bytes: Balance,
    /// The sum: the least fee the chain accepts for it.
    pub minimum_fee: Balance,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_read_in_the_unit_a_person_uses() {
        assert_eq!(Weight(850).to_string(), "850 ns");
        assert_eq!(Weight::from_micros(42).to_string(), "42.0 µs");
        assert_eq!(Weight(42_560).to_string(), "42.5 µs");
        assert_eq!(Weight(3_250_000).to_string(), "3.25 ms");
        assert_eq!(Weight::from_millis(100).to_string(), "100.00 ms");
    }

    #[test]
    fn weights_saturate_instead_of_wrapping() {
        assert_eq!(Weight(u64::MAX).saturating_add(Weight(1)), Weight(u64::MAX));
        assert_eq!(Weight(u64::MAX).saturating_mul(2), Weight(u64::MAX));
        assert_eq!(Weight(1).saturating_sub(Weight(2)), Weight::ZERO);
        assert_eq!(Weight::from_millis(u64::MAX), Weight(u64::MAX));
    }
}
