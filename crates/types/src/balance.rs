//! Token amounts: integer base units, twelve decimals, checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use crate::codec_newtype;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Decimal places of the WeTEE token.
pub const DECIMALS: u32 = 12;
/// Base units in one whole token.
pub const UNIT: u128 = 1_000_000_000_000;
/// The token's symbol.
pub const SYMBOL: &str = "WTE";

/// An amount of base units. There is deliberately no `Add`/`Sub`/`Mul`: every operation is
/// checked and the caller decides what an overflow means.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Balance(pub u128);
codec_newtype!(Balance);

impl Balance {
    /// Nothing.
    pub const ZERO: Balance = Balance(0);

    /// `whole` tokens; `None` on overflow.
    pub const fn tokens(whole: u128) -> Option<Balance> {
        match whole.checked_mul(UNIT) {
            Some(units) => Some(Balance(units)),
            None => None,
        }
    }

    /// Base units.
    pub const fn units(self) -> u128 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Balance) -> Option<Balance> {
        self.0.checked_add(other.0).map(Balance)
    }

    /// `self - other`, `None` if it would go negative.
    pub fn checked_sub(self, other: Balance) -> Option<Balance> {
        self.0.checked_sub(other.0).map(Balance)
    }

    /// `self - other`, or zero.
    pub fn saturating_sub(self, other: Balance) -> Balance {
        Balance(self.0.saturating_sub(other.0))
    }

    /// `self * factor`, `None` on overflow.
    pub fn checked_mul(self, factor: u128) -> Option<Balance> {
        self.0.checked_mul(factor).map(Balance)
    }

    /// `floor(self * numerator / denominator)`; `None` on overflow or a zero denominator.
    pub fn mul_div_floor(self, numerator: u128, denominator: u128) -> Option<Balance> {
        self.0
            .checked_mul(numerator)?
            .checked_div(denominator)
            .map(Balance)
    }

    /// `ceil(self * numerator / denominator)`; `None` on overflow or a zero denominator.
    pub fn mul_div_ceil(self, numerator: u128, denominator: u128) -> Option<Balance> {
        let product = self.0.checked_mul(numerator)?;
        let quotient = product.checked_div(denominator)?;
        let remainder = product.checked_rem(denominator)?;
        if remainder == 0 {
            Some(Balance(quotient))
        } else {
            quotient.checked_add(1).map(Balance)
        }
    }

    /// The share of `self` given in basis points (1/10,000), rounded down.
    pub fn basis_points(self, bps: u16) -> Option<Balance> {
        self.mul_div_floor(u128::from(bps), 10_000)
    }
}

/// Shows the amount in tokens with up to twelve decimals and the symbol: `1.5 WTE`.
impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0.checked_div(UNIT).unwrap_or_default();
        let frac = self.0.checked_rem(UNIT).unwrap_or_default();
        if frac == 0 {
            write!(f, "{whole} {SYMBOL}")
        } else {
            let digits = format!("{frac:012}");
            write!(f, "{whole}.{} {SYMBOL}", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a token amount could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty or non-numeric.
    #[error("`{0}` is not an amount: write tokens like `12.5` or `12.5 WTE`")]
    NotANumber(String),
    /// More than twelve decimals.
    #[error("`{0}` has more than 12 decimals")]
    TooPrecise(String),
    /// Larger than the largest balance.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Parses a token amount such as `12`, `0.25` or `3.5 WTE` (a minus sign is never accepted).
impl FromStr for Balance {
    type Err = AmountError;
    fn from_str(input: &str) -> Result<Balance, AmountError> {
        let text = input.trim();
        let text = text.strip_suffix(SYMBOL).unwrap_or(text).trim_end();
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(AmountError::NotANumber(input.to_string()));
        }
        if frac.len() > DECIMALS as usize {
            return Err(AmountError::TooPrecise(input.to_string()));
        }
        let too_large = || AmountError::TooLarge(input.to_string());
        let whole: u128 = whole.parse().map_err(|_| too_large())?;
        let mut frac_units: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| too_large())?
        };
        for _ in frac.len()..DECIMALS as usize {
            frac_units = frac_units.checked_mul(10).ok_or_else(too_large)?;
        }
        whole
            .checked_mul(UNIT)
            .and_then(|units| units.checked_add(frac_units))
            .map(Balance)
            .ok_or_else(too_large)
    }
}

/// JSON carries base units as a decimal string: JavaScript numbers lose precision above 2^53.
impl Serialize for Balance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Balance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Units {
            Text(String),
            Number(u64),
        }
        match Units::deserialize(deserializer)? {
            Units::Text(text) => text
                .parse::<u128>()
                .map(Balance)
                .map_err(|_| serde::de::Error::custom("expected base units as a decimal string")),
            Units::Number(n) => Ok(Balance(u128::from(n))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_token_amounts() {
        assert_eq!(
            "1.5".parse::<Balance>().unwrap(),
            Balance(1_500_000_000_000)
        );
        assert_eq!("2 WTE".parse::<Balance>().unwrap(), Balance(2 * UNIT));
        assert_eq!("0.000000000001".parse::<Balance>().unwrap(), Balance(1));
        assert_eq!(Balance(1_500_000_000_000).to_string(), "1.5 WTE");
        assert_eq!(Balance(7).to_string(), "0.000000000007 WTE");
        assert_eq!(Balance::tokens(3).unwrap().to_string(), "3 WTE");
    }

    #[test]
    fn refuses_negative_imprecise_and_huge_amounts() {
        assert!(matches!(
            "-1".parse::<Balance>(),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            "0.0000000000001".parse::<Balance>(),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            "1e5".parse::<Balance>(),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            "999999999999999999999999999999999".parse::<Balance>(),
            Err(AmountError::TooLarge(_))
        ));
        assert!(".5".parse::<Balance>().is_err());
    }

    #[test]
    fn checked_operations_report_overflow() {
        let max = Balance(u128::MAX);
        assert_eq!(max.checked_add(Balance(1)), None);
        assert_eq!(Balance::ZERO.checked_sub(Balance(1)), None);
        assert_eq!(max.mul_div_floor(2, 2), None);
        assert_eq!(Balance(10).mul_div_ceil(1, 3), Some(Balance(4)));
        assert_eq!(Balance(10).mul_div_floor(1, 3), Some(Balance(3)));
        assert_eq!(Balance(10).mul_div_floor(1, 0), None);
        assert_eq!(Balance(10_000).basis_points(250), Some(Balance(250)));
    }

    #[test]
    fn json_uses_base_unit_strings() {
        let json = serde_json::to_string(&Balance(u128::MAX)).unwrap();
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        let back: Balance = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Balance(u128::MAX));
    }
}
