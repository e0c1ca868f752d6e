//! Metadata: the JSON object a client attaches to an account or a transfer.
//!
//! The key decision: metadata is kept in one canonical form, and `Metadata` cannot be built
//! any other way, so "the same metadata" means one thing everywhere (a resent transfer with
//! the same object is the same event, whatever its spacing or key order). The canonical form
//! has the members of every object sorted by key (byte order of the decoded key), no
//! whitespace, every string escaped one way (`"`, `\` and control characters only, as
//! `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` or `\u00XX`), and every number exactly as
//! written: numbers are never read into floats, so `1e15` stays `1e15` and
//! `0.10000000000000000000001` keeps its digits (and `1.0`, `1e0` and `1` are three different
//! values). A key may appear only once in an object. Text read back from disk or a database
//! must already be canonical (`Metadata::from_canonical`).

use crate::limits::{METADATA_BYTES_MAX, METADATA_DEPTH_MAX};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Metadata(Box<str>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataError(pub String);

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetadataError {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Metadata {
    /// Reads a JSON object and puts it in canonical form; refuses anything else, duplicate
    /// keys, nesting deeper than `METADATA_DEPTH_MAX`, and a canonical form longer than
    /// `METADATA_BYTES_MAX`.
    pub fn parse(text: &str) -> Result<Metadata, MetadataError> {
        let mut parser = Parser { bytes: text.as_bytes(), position: 0 };
        parser.whitespace();
        if parser.peek() != Some(b'{') {
            return Err(parser.error("metadata must be a JSON object"));
        }
        let mut canonical = String::with_capacity(text.len().min(METADATA_BYTES_MAX));
        parser.value(&mut canonical, 0)?;
        parser.whitespace();
        if parser.position != parser.bytes.len() {
            return Err(parser.error("unexpected text after the object"));
        }
        if canonical.len() > METADATA_BYTES_MAX {
            return Err(MetadataError(format!("metadata is {} bytes; the limit is {METADATA_BYTES_MAX}", canonical.len())));
        }
        Ok(Metadata(canonical.into()))
    }

    /// Metadata as it was stored: it must be canonical already, or it was not written by Tally.
    pub fn from_canonical(text: &str) -> Result<Metadata, MetadataError> {
        let metadata = Metadata::parse(text)?;
        if *metadata.0 != *text {
            return Err(MetadataError("stored metadata is not in canonical form".into()));
        }
        Ok(metadata)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Text the state machine stored from a `Metadata` (transfer records keep it in a shared
    /// string table): canonical by construction.
    pub(crate) fn stored(text: &str) -> Metadata {
        debug_assert!(Metadata::from_canonical(text).is_ok(), "only canonical metadata is stored");
        Metadata(text.into())
    }
}

impl std::ops::Deref for Metadata {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> MetadataError {
        MetadataError(format!("{what} (at byte {})", self.position))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), MetadataError> {
        if self.peek() != Some(byte) {
            return Err(self.error(&format!("expected {:?}", byte as char)));
        }
        self.position += 1;
        Ok(())
    }

    /// Reads one value at nesting `depth` and appends its canonical form to `out`.
    fn value(&mut self, out: &mut String, depth: usize) -> Result<(), MetadataError> {
        match self.peek() {
            Some(b'{') => self.object(out, depth + 1),
            Some(b'[') => self.array(out, depth + 1),
            Some(b'"') => {
                let text = self.string()?;
                escape(&text, out);
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => self.number(out),
            _ => {
                for literal in ["true", "false", "null"] {
                    if self.bytes[self.position..].starts_with(literal.as_bytes()) {
                        self.position += literal.len();
                        out.push_str(literal);
                        return Ok(());
                    }
                }
                Err(self.error("expected a JSON value"))
            }
        }
    }

    fn nested(&self, depth: usize) -> Result<(), MetadataError> {
        if depth > METADATA_DEPTH_MAX {
            return Err(self.error(&format!("metadata is nested deeper than {METADATA_DEPTH_MAX} levels")));
        }
        Ok(())
    }

    fn object(&mut self, out: &mut String, depth: usize) -> Result<(), MetadataError> {
        self.nested(depth)?;
        self.expect(b'{')?;
        let mut members: Vec<(String, String)> = Vec::new();
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
        } else {
            loop {
                self.whitespace();
                if self.peek() != Some(b'"') {
                    return Err(self.error("expected a key"));
                }
                let key = self.string()?;
                self.whitespace();
                self.expect(b':')?;
                self.whitespace();
                let mut value = String::new();
                self.value(&mut value, depth)?;
                members.push((key, value));
                self.whitespace();
                match self.peek() {
                    Some(b',') => self.position += 1,
                    Some(b'}') => {
                        self.position += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or '}'")),
                }
            }
        }
        members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if let Some(pair) = members.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(MetadataError(format!("metadata has the key {:?} twice", pair[0].0)));
        }
        out.push('{');
        for (index, (key, value)) in members.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            escape(key, out);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        Ok(())
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Result<(), MetadataError> {
        self.nested(depth)?;
        self.expect(b'[')?;
        out.push('[');
        self.whitespace();
        if self.peek() == Some(b']') {
            self.position += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.whitespace();
            self.value(out, depth)?;
            self.whitespace();
            match self.peek() {
                Some(b',') => {
                    self.position += 1;
                    out.push(',');
                }
                Some(b']') => {
                    self.position += 1;
                    out.push(']');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// A number as JSON writes it, copied exactly.
    fn number(&mut self, out: &mut String) -> Result<(), MetadataError> {
        let start = self.position;
        let digits = |parser: &mut Parser<'_>| {
            let from = parser.position;
            while matches!(parser.peek(), Some(b'0'..=b'9')) {
                parser.position += 1;
            }
            parser.position > from
        };
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        match self.peek() {
            Some(b'0') => self.position += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.error("a number needs digits")),
        }
        if self.peek() == Some(b'.') {
            self.position += 1;
            if !digits(self) {
                return Err(self.error("a number needs digits after its point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.position += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.position += 1;
            }
            if !digits(self) {
                return Err(self.error("a number needs digits in its exponent"));
            }
        }
        out.push_str(std::str::from_utf8(&self.bytes[start..self.position]).expect("number characters are ASCII"));
        Ok(())
    }

    /// A string, decoded.
    fn string(&mut self) -> Result<String, MetadataError> {
        self.expect(b'"')?;
        let mut decoded = String::new();
        loop {
            let start = self.position;
            while matches!(self.peek(), Some(byte) if byte != b'"' && byte != b'\\' && byte >= 0x20) {
                self.position += 1;
            }
            decoded.push_str(std::str::from_utf8(&self.bytes[start..self.position]).expect("the input is a str"));
            match self.peek() {
                Some(b'"') => {
                    self.position += 1;
                    return Ok(decoded);
                }
                Some(b'\\') => {
                    self.position += 1;
                    decoded.push(self.escaped()?);
                }
                Some(_) => return Err(self.error("control characters in strings must be escaped")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn escaped(&mut self) -> Result<char, MetadataError> {
        let byte = self.peek().ok_or_else(|| self.error("unterminated escape"))?;
        self.position += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                if !(0xd800..0xdc00).contains(&high) {
                    return char::from_u32(high).ok_or_else(|| self.error("a lone low surrogate"));
                }
                if !self.bytes[self.position..].starts_with(b"\\u") {
                    return Err(self.error("a high surrogate without its low half"));
                }
                self.position += 2;
                let low = self.hex4()?;
                if !(0xdc00..0xe000).contains(&low) {
                    return Err(self.error("a high surrogate without its low half"));
                }
                char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)).expect("a valid surrogate pair")
            }
            _ => return Err(self.error("an unknown escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, MetadataError> {
        let digits = self.bytes.get(self.position..self.position + 4).ok_or_else(|| self.error("a short \\u escape"))?;
        // Exactly four hex digits: `from_str_radix` alone would also take a sign.
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.error("a \\u escape needs four hex digits"));
        }
        let value = digits.iter().fold(0, |value, &digit| value * 16 + char::from(digit).to_digit(16).expect("a hex digit"));
        self.position += 4;
        Ok(value)
    }
}

/// Appends `text` as a canonical JSON string.
fn escape(text: &str, out: &mut String) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if (control as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", control as u32)),
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> Result<String, MetadataError> {
        Metadata::parse(text).map(|m| m.as_str().to_owned())
    }

    #[test]
    fn the_canonical_form_sorts_keys_drops_spaces_and_keeps_numbers_as_written() {
        assert_eq!(
            canonical(r#" { "b" : [1, 2.50, -0.1e-7] , "a" : {"y": null, "x": true} } "#).unwrap(),
            r#"{"a":{"x":true,"y":null},"b":[1,2.50,-0.1e-7]}"#
        );
        assert_eq!(
            canonical(r#"{"n":1180591620717411303424,"f":0.10000000000000000000001}"#).unwrap(),
            r#"{"f":0.10000000000000000000001,"n":1180591620717411303424}"#
        );
        assert_ne!(canonical(r#"{"a":1.0}"#), canonical(r#"{"a":1e0}"#), "numbers are kept as written: these differ");
        assert_eq!(canonical(r#"{"s":"\u0041\/\n\u00e9\ud83d\ude00\u001f"}"#).unwrap(), "{\"s\":\"A/\\n\u{e9}\u{1f600}\\u001f\"}");
        assert_eq!(canonical(r#"{"\u0061":1,"b":2}"#).unwrap(), r#"{"a":1,"b":2}"#);
    }

    #[test]
    fn anything_but_one_json_object_without_duplicate_keys_is_refused() {
        for bad in [
            "",
            "[]",
            "1",
            r#""a""#,
            "{",
            r#"{"a":1,"a":2}"#,
            r#"{"\u0061":1,"a":2}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":NaN}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1} x"#,
            "{\"a\":\"\t\"}",
            r#"{"a":"\x"}"#,
            r#"{"a":"\u+041"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{a:1}"#,
        ] {
            assert!(Metadata::parse(bad).is_err(), "{bad:?} is refused");
        }
        let nested = |levels: usize| format!("{}{{}}{}", "{\"a\":".repeat(levels - 1), "}".repeat(levels - 1));
        assert!(Metadata::parse(&nested(METADATA_DEPTH_MAX)).is_ok());
        assert!(Metadata::parse(&nested(METADATA_DEPTH_MAX + 1)).unwrap_err().0.contains("nested deeper"));
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(METADATA_BYTES_MAX));
        assert!(Metadata::parse(&long).unwrap_err().0.contains("the limit is"));
    }

    #[test]
    fn stored_metadata_must_already_be_canonical() {
        assert!(Metadata::from_canonical(r#"{"a":1,"b":[true]}"#).is_ok());
        assert!(Metadata::from_canonical(r#"{"b":1,"a":2}"#).is_err());
        assert!(Metadata::from_canonical(r#"{"a": 1}"#).is_err());
    }
}
