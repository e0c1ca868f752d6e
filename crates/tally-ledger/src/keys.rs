//! API keys: what a key may do, how one is made, and how a presented one is checked. Every
//! store keeps keys the same way (`KeyStore`), and keeps only a key's SHA-256: a key is shown
//! once, when it is made, and can never be read back from a disk or a database.
//!
//! A key reads `tally_<id>_<secret>`: `id`, 12 hex digits, names the key in listings, in
//! `revoke`, and in the journal; `secret`, 64 hex digits, is 256 random bits. A key is a
//! bearer token of 256 bits of entropy, so one fast hash suffices (there is nothing to guess).

use crate::LedgerFuture;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use tally_core::limits::{ID_LENGTH_MAX, KEY_NAME_LENGTH_MAX, KEY_PREFIXES_MAX};

const TEXT_PREFIX: &str = "tally_";
const ID_HEX_DIGITS: usize = 12;
const SECRET_BYTES: usize = 32;
/// The length of a key's text.
pub const KEY_TEXT_LENGTH: usize = TEXT_PREFIX.len() + ID_HEX_DIGITS + 1 + 2 * SECRET_BYTES;

/// What a key may do; each scope includes those before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Reads.
    Read,
    /// Reads, and creating and changing accounts and transfers.
    Write,
    /// Everything: also assets and keys.
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Scope, String> {
        match text {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("scope must be read, write or admin, not {other:?}")),
        }
    }
}

/// A key as stored: everything but the secret, of which only the digest is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// The account id prefixes the key is confined to; empty for every account.
    pub prefixes: Vec<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
    pub digest: [u8; 32],
}

impl KeyRecord {
    /// Not revoked, not expired.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|expires| now_ms < expires)
    }

    /// Whether the key may see and move the account (or the transfer) with this id.
    pub fn permits(&self, id: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|prefix| id.starts_with(prefix.as_str()))
    }

    /// Whether `text` is this key, compared in constant time (over digests, so neither the
    /// secret's bytes nor its length show in the time taken).
    pub fn matches(&self, text: &str) -> bool {
        let presented = digest(text);
        presented.iter().zip(self.digest.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// A new key: its text, shown once, and the record a store keeps.
pub struct NewKey {
    pub text: String,
    pub record: KeyRecord,
}

/// What a new key may be: a field that does not fit is named.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub name: String,
    pub scope: Scope,
    pub prefixes: Vec<String>,
    pub expires_at_ms: Option<u64>,
}

impl KeySpec {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.name.len() > KEY_NAME_LENGTH_MAX || self.name.chars().any(char::is_control) {
            return Err(("name", format!("at most {KEY_NAME_LENGTH_MAX} bytes, no control characters")));
        }
        if self.scope == Scope::Admin && !self.prefixes.is_empty() {
            // An admin key manages keys and assets, which belong to the whole ledger.
            return Err(("accounts", "an admin key cannot be confined to accounts: give a tenant a write or read key".into()));
        }
        if self.prefixes.len() > KEY_PREFIXES_MAX {
            return Err(("accounts", format!("at most {KEY_PREFIXES_MAX} prefixes")));
        }
        let valid =
            |p: &String| !p.is_empty() && p.len() <= ID_LENGTH_MAX && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b));
        if let Some(bad) = self.prefixes.iter().find(|p| !valid(p)) {
            return Err(("accounts", format!("{bad:?} is not an id prefix (1-{ID_LENGTH_MAX} bytes of A-Za-z0-9._:@-)")));
        }
        Ok(())
    }

    /// Makes the key: random id and secret from the operating system.
    pub fn generate(self, now_ms: u64) -> Result<NewKey, (&'static str, String)> {
        self.validate()?;
        let mut random = [0u8; ID_HEX_DIGITS / 2 + SECRET_BYTES];
        getrandom::fill(&mut random).map_err(|error| ("key", format!("no randomness from the operating system: {error}")))?;
        let (id, secret) = (hex(&random[..ID_HEX_DIGITS / 2]), hex(&random[ID_HEX_DIGITS / 2..]));
        let text = format!("{TEXT_PREFIX}{id}_{secret}");
        debug_assert_eq!(text.len(), KEY_TEXT_LENGTH);
        let record = KeyRecord {
            digest: digest(&text),
            id,
            name: self.name,
            scope: self.scope,
            prefixes: self.prefixes,
            created_at_ms: now_ms,
            expires_at_ms: self.expires_at_ms,
            revoked_at_ms: None,
        };
        Ok(NewKey { text, record })
    }
}

/// The id a presented key claims to be, if it looks like a key at all.
pub fn claimed_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(TEXT_PREFIX)?;
    let (id, _) = rest.split_once('_')?;
    (id.len() == ID_HEX_DIGITS).then_some(id)
}

pub fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Where a ledger's keys are kept: a file in the data directory, or a table in PostgreSQL.
/// Bounded by `KEYS_MAX`; a revoked key stays, marked.
pub trait KeyStore: Send + Sync + 'static {
    /// Every key, revoked and expired ones included.
    fn keys(&self) -> LedgerFuture<'_, Vec<KeyRecord>>;
    /// Adds a key; fails at `KEYS_MAX` keys.
    fn add(&self, record: KeyRecord) -> LedgerFuture<'_, ()>;
    /// Marks a key revoked; `None` if there is no such key, else the record as it now is.
    fn revoke(&self, id: &str, at_ms: u64) -> LedgerFuture<'_, Option<KeyRecord>>;
}

/// Keys written as lines of text (the file format of the embedded store, and a dump's): a
/// header, then one key per line, tab-separated.
pub mod text {
    use super::KeyRecord;

    pub const HEADER: &str = "tally-keys 1";

    pub fn write(keys: &[KeyRecord]) -> String {
        let mut text = format!("{HEADER}\n");
        let optional = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        for key in keys {
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                key.id,
                key.scope.name(),
                key.created_at_ms,
                optional(key.expires_at_ms),
                optional(key.revoked_at_ms),
                super::hex(&key.digest),
                key.prefixes.join(","),
                key.name,
            ));
        }
        text
    }

    pub fn read(text: &str) -> Result<Vec<KeyRecord>, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("the key file does not start with {HEADER:?}"));
        }
        lines.enumerate().map(|(n, line)| record(line).map_err(|e| format!("key file line {}: {e}", n + 2))).collect()
    }

    fn record(line: &str) -> Result<KeyRecord, String> {
        let fields: Vec<&str> = line.splitn(8, '\t').collect();
        let [id, scope, created, expires, revoked, digest, prefixes, name] = fields[..] else {
            return Err("expected 8 tab-separated fields".into());
        };
        let number = |field: &str, text: &str| text.parse::<u64>().map_err(|e| format!("{field}: {e}"));
        let optional = |field: &str, text: &str| if text == "-" { Ok(None) } else { number(field, text).map(Some) };
        let mut bytes = [0u8; 32];
        if digest.len() != 64 {
            return Err("digest: expected 64 hex digits".into());
        }
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).map_err(|e| format!("digest: {e}"))?;
        }
        Ok(KeyRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            scope: scope.parse()?,
            prefixes: if prefixes.is_empty() { Vec::new() } else { prefixes.split(',').map(str::to_owned).collect() },
            created_at_ms: number("created", created)?,
            expires_at_ms: optional("expires", expires)?,
            revoked_at_ms: optional("revoked", revoked)?,
            digest: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_shown_once_and_only_its_digest_is_kept() {
        let spec = KeySpec { name: "ops".into(), scope: Scope::Write, prefixes: vec!["acme:".into()], expires_at_ms: Some(99) };
        let key = spec.generate(7).unwrap();
        assert_eq!(key.text.len(), KEY_TEXT_LENGTH);
        assert_eq!(claimed_id(&key.text), Some(key.record.id.as_str()));
        assert!(key.record.matches(&key.text));
        let mut other = key.text.clone();
        let last = other.pop().unwrap();
        other.push(if last == '0' { '1' } else { '0' });
        assert!(!key.record.matches(&other), "one digit off is another key");
        let stored = text::write(std::slice::from_ref(&key.record));
        assert!(!stored.contains(&key.text[key.text.len() - 64..]), "the secret is not in the file");
        assert_eq!(text::read(&stored).unwrap(), std::slice::from_ref(&key.record));
        assert!(key.record.is_live(98) && !key.record.is_live(99));
        assert!(key.record.permits("acme:a") && !key.record.permits("globex:a"));
    }

    #[test]
    fn bad_specs_name_their_field() {
        let spec = |name: &str, prefixes: &[&str]| KeySpec {
            name: name.into(),
            scope: Scope::Read,
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            expires_at_ms: None,
        };
        assert_eq!(spec("a\tb", &[]).validate().unwrap_err().0, "name");
        assert_eq!(spec("ok", &["bad prefix"]).validate().unwrap_err().0, "accounts");
        assert_eq!(spec("ok", &[""]).validate().unwrap_err().0, "accounts");
        assert!(spec("ok", &["acme:"]).validate().is_ok());
        let admin = KeySpec { scope: Scope::Admin, ..spec("ok", &["acme:"]) };
        assert_eq!(admin.validate().unwrap_err().0, "accounts", "an admin key is for the whole ledger");
    }
}
