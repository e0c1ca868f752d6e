//! Exact decimal amounts. Amounts cross the wire as strings such as `"12.30"` and live inside
//! as integers of minor units; nothing is ever rounded. A string is first parsed without
//! knowing its asset (syntax only), then converted with the asset's scale, which rejects
//! more decimals than the scale allows instead of rounding them away.

use crate::limits::{AMOUNT_LENGTH_MAX, SCALE_MAX};
use std::fmt;

/// A decimal number as written, before its asset's scale is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// All digits read as one integer: "12.30" has digits 1230.
    pub digits: u128,
    /// Digits after the point as written: "12.30" has 2.
    pub fraction_digits: u8,
    pub negative: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    TooLong,
    InvalidCharacter,
    TooManyDecimals,
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountError::Empty => "amount is empty",
            AmountError::TooLong => "amount has too many characters",
            AmountError::InvalidCharacter => {
                "amount must be a decimal string such as \"12.30\" (digits, an optional leading '-' and one '.'; no exponent, no spaces)"
            }
            AmountError::TooManyDecimals => "amount has more decimal places than the asset's scale",
            AmountError::TooLarge => "amount is too large",
        })
    }
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { digits: 0, fraction_digits: 0, negative: false };

    /// The largest decimal there is. As a balancing transfer's amount it asks for as much as
    /// the bounds allow (it is what an omitted amount means there); anywhere else it is too
    /// large, as any amount beyond `TOTAL_MAX` is.
    pub const UNLIMITED: Decimal = Decimal { digits: u128::MAX, fraction_digits: 0, negative: false };

    pub fn parse(text: &str) -> Result<Decimal, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.len() > AMOUNT_LENGTH_MAX {
            return Err(AmountError::TooLong);
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || !fraction.is_none_or(all_digits) {
            return Err(AmountError::InvalidCharacter);
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > usize::from(SCALE_MAX) {
            return Err(AmountError::TooManyDecimals);
        }
        let mut digits: u128 = 0;
        for byte in whole.bytes().chain(fraction.bytes()) {
            digits = digits.checked_mul(10).and_then(|d| d.checked_add(u128::from(byte - b'0'))).ok_or(AmountError::TooLarge)?;
        }
        Ok(Decimal { digits, fraction_digits: fraction.len() as u8, negative: negative && digits != 0 })
    }

    pub fn is_positive(&self) -> bool {
        !self.negative && self.digits > 0
    }

    /// The same value with trailing fraction zeros removed, so "1.50" and "1.5" compare equal
    /// when deciding whether a resubmitted event has the same fields.
    pub fn normalized(&self) -> Decimal {
        let mut normal = *self;
        while normal.fraction_digits > 0 && normal.digits.is_multiple_of(10) {
            normal.digits /= 10;
            normal.fraction_digits -= 1;
        }
        normal
    }

    /// Minor units at `scale`. Fails if the text has more decimals than the scale (never
    /// rounds) or if the value does not fit in `i128`.
    pub fn to_minor(&self, scale: u8) -> Result<i128, AmountError> {
        if self.fraction_digits > scale {
            return Err(AmountError::TooManyDecimals);
        }
        let factor = 10u128.pow(u32::from(scale - self.fraction_digits));
        let magnitude = self.digits.checked_mul(factor).ok_or(AmountError::TooLarge)?;
        let magnitude = i128::try_from(magnitude).map_err(|_| AmountError::TooLarge)?;
        Ok(if self.negative { -magnitude } else { magnitude })
    }
}

/// Formats minor units with exactly `scale` decimals: `format_minor(-5, 2) == "-0.05"`.
pub fn format_minor(value: i128, scale: u8) -> String {
    let magnitude = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{magnitude}");
    }
    let factor = 10u128.pow(u32::from(scale));
    format!("{sign}{}.{:0width$}", magnitude / factor, magnitude % factor, width = usize::from(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_scales_exactly() {
        let d = Decimal::parse("12.30").unwrap();
        assert_eq!(d.to_minor(2), Ok(1230));
        assert_eq!(d.to_minor(4), Ok(123000));
        assert_eq!(d.to_minor(1), Err(AmountError::TooManyDecimals));
        assert_eq!(Decimal::parse("-0.05").unwrap().to_minor(2), Ok(-5));
        assert_eq!(Decimal::parse("7").unwrap().to_minor(0), Ok(7));
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in ["", "1e5", "+1", "1.", ".5", "1.2.3", " 1", "1,5", "0x10", "--1", "NaN", "1.5e-2"] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(Decimal::parse(&"9".repeat(40)), Err(AmountError::TooLarge));
        assert_eq!(Decimal::parse(&"1".repeat(49)), Err(AmountError::TooLong));
        assert_eq!(Decimal::parse("1.0000000000000000001"), Err(AmountError::TooManyDecimals));
    }

    #[test]
    fn refuses_values_beyond_i128() {
        let max = Decimal::parse(&i128::MAX.to_string()).unwrap();
        assert_eq!(max.to_minor(0), Ok(i128::MAX));
        assert_eq!(max.to_minor(1), Err(AmountError::TooLarge));
    }

    #[test]
    fn formats_with_exactly_scale_decimals() {
        assert_eq!(format_minor(1230, 2), "12.30");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(0, 3), "0.000");
        assert_eq!(format_minor(42, 0), "42");
        assert_eq!(format_minor(i128::MIN + 1, 18), format!("-{}", format_minor(i128::MAX, 18).as_str()));
    }

    #[test]
    fn normalizes_trailing_zeros_only() {
        assert_eq!(Decimal::parse("1.50").unwrap().normalized(), Decimal::parse("1.5").unwrap());
        assert_eq!(Decimal::parse("100").unwrap().normalized(), Decimal::parse("100").unwrap());
        assert_eq!(Decimal::parse("-0.0").unwrap().normalized(), Decimal::ZERO, "negative zero is zero");
    }
}
