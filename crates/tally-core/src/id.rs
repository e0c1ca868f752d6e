//! Validated names. An `Id` or `AssetCode` can only be built by parsing, so the state machine
//! never sees an empty, oversized or oddly spelled key.

use crate::limits::{ALLOCATION_SHARES_MAX, ASSET_CODE_LENGTH_MAX, ID_LENGTH_MAX};
use compact_str::CompactString;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong { max: usize },
    InvalidCharacter { allowed: &'static str },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("must not be empty"),
            NameError::TooLong { max } => write!(f, "must be at most {max} characters"),
            NameError::InvalidCharacter { allowed } => write!(f, "may contain only {allowed}"),
        }
    }
}

fn check(text: &str, max: usize, allowed: &'static str, is_allowed: fn(u8) -> bool) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.len() > max {
        return Err(NameError::TooLong { max });
    }
    if !text.bytes().all(is_allowed) {
        return Err(NameError::InvalidCharacter { allowed });
    }
    Ok(())
}

/// An account or transfer id: 1 to 128 characters of `A-Za-z0-9._:@-`. Ids of up to 24
/// bytes (most of them) are stored inline, so parsing a request allocates nothing for them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(CompactString);

impl Id {
    pub const ALLOWED: &'static str = "A-Z a-z 0-9 . _ : @ -";

    pub fn parse(text: &str) -> Result<Id, NameError> {
        check(text, ID_LENGTH_MAX, Self::ALLOWED, |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'))?;
        Ok(Id(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where a range of ids starting with `text` begins: any text, unchecked, for a range's
    /// bound only (never stored).
    pub(crate) fn range_start(text: &str) -> Id {
        Id(text.into())
    }

    /// The id of leg `index` of the allocation, or of the post or void of one, with this id:
    /// `<id>/<index>`. The `/` no given id may contain keeps legs apart from every other id.
    pub fn leg(&self, index: usize) -> Id {
        assert!(index < ALLOCATION_SHARES_MAX, "an allocation has at most ALLOCATION_SHARES_MAX legs");
        Id(compact_str::format_compact!("{}/{index}", self.0))
    }

    /// A transfer id as a lookup names it: an id, or a leg's id (`<id>/<index>`, the index
    /// written without leading zeros).
    pub fn parse_transfer(text: &str) -> Result<Id, NameError> {
        let Some((base, index)) = text.split_once('/') else { return Id::parse(text) };
        let base = Id::parse(base)?;
        let canonical = index.bytes().all(|b| b.is_ascii_digit()) && (index == "0" || !index.starts_with('0'));
        match index.parse::<usize>() {
            Ok(index) if canonical && index < ALLOCATION_SHARES_MAX => Ok(base.leg(index)),
            _ => Err(NameError::InvalidCharacter { allowed: Self::ALLOWED_IN_LOOKUPS }),
        }
    }

    pub const ALLOWED_IN_LOOKUPS: &'static str = "A-Z a-z 0-9 . _ : @ -, and for a leg /0 to /999 at the end";
}

/// An asset code: 1 to 32 characters of `A-Za-z0-9_-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetCode(Box<str>);

impl AssetCode {
    pub const ALLOWED: &'static str = "A-Z a-z 0-9 _ -";

    pub fn parse(text: &str) -> Result<AssetCode, NameError> {
        check(text, ASSET_CODE_LENGTH_MAX, Self::ALLOWED, |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))?;
        Ok(AssetCode(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_charset_only() {
        assert!(Id::parse("world:usd").is_ok());
        assert!(Id::parse("user@example.com").is_ok());
        assert!(Id::parse(&"a".repeat(128)).is_ok());
        assert_eq!(Id::parse(&"a".repeat(129)), Err(NameError::TooLong { max: 128 }));
        assert_eq!(Id::parse(""), Err(NameError::Empty));
        assert!(Id::parse("a b").is_err());
        assert!(Id::parse("a/b").is_err());
        assert!(Id::parse("é").is_err());
    }

    #[test]
    fn leg_ids_extend_an_id_and_parse_back_only_in_lookups() {
        let pot = Id::parse("pot-7").unwrap();
        assert_eq!(pot.leg(0).as_str(), "pot-7/0");
        assert_eq!(pot.leg(999).as_str(), "pot-7/999");
        assert_eq!(Id::parse_transfer("pot-7/12"), Ok(pot.leg(12)));
        assert_eq!(Id::parse_transfer("pot-7"), Ok(pot));
        for bad in ["pot-7/", "pot-7/012", "pot-7/1000", "pot-7/1/2", "/1", "pot-7/x", "pot-7/+1"] {
            assert!(Id::parse_transfer(bad).is_err(), "{bad}");
        }
        assert!(Id::parse("pot-7/0").is_err(), "no given id may name a leg");
    }

    #[test]
    fn asset_codes_are_narrower_than_ids() {
        assert!(AssetCode::parse("USD").is_ok());
        assert!(AssetCode::parse("job-slots_2").is_ok());
        assert!(AssetCode::parse("a:b").is_err());
        assert!(AssetCode::parse(&"A".repeat(33)).is_err());
    }
}
