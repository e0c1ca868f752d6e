//! The fuzz targets: amount parsing, request decoding, journal batch decoding and snapshot
//! decoding.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::PathBuf;
use tally_api::{decode_json, AccountPatchInput, CreateAccounts, CreateTransfers};
use tally_core::codec::{decode_batch, encode_batch, Encoder};
use tally_core::{format_minor, Decimal};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> =
        std::fs::read_dir(&directory).unwrap_or_else(|e| panic!("{}: {e}", directory.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn cases() -> u32 {
    std::env::var("TALLY_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000)
}

/// Byte strings near `seeds`: each a seed with a few bytes flipped, inserted or cut.
fn mutations(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((0usize..4, any::<prop::sample::Index>(), any::<u8>()), 0..6);
    (prop::sample::select(seeds), edits).prop_map(|(mut bytes, edits)| {
        for (kind, at, byte) in edits {
            let position = if bytes.is_empty() { 0 } else { at.index(bytes.len()) };
            match kind {
                0 if !bytes.is_empty() => bytes[position] ^= byte | 1,
                1 => bytes.insert(position, byte),
                2 if !bytes.is_empty() => {
                    bytes.remove(position);
                }
                _ => bytes.truncate(position),
            }
        }
        bytes
    })
}

fn run(target: &str, strategy: impl Strategy<Value = Vec<u8>>, check: impl Fn(&[u8])) {
    for input in corpus(target) {
        check(&input);
    }
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |input| {
            check(&input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
}

fn amount(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(decimal) = Decimal::parse(text) {
        for scale in 0..=18 {
            if let Ok(minor) = decimal.to_minor(scale) {
                // What is accepted reads back exactly: no value is ever rounded.
                let again = Decimal::parse(&format_minor(minor, scale)).unwrap();
                assert_eq!(again.to_minor(scale), Ok(minor), "{text:?} at scale {scale}");
            }
        }
    }
}

#[test]
fn amounts_parse_exactly_or_not_at_all() {
    let text = prop_oneof!["[-+0-9.eE ]{0,45}".prop_map(String::into_bytes), any::<Vec<u8>>(), mutations(corpus("amount")),];
    run("amount", text, amount);
}

fn request(bytes: &[u8]) {
    if let Ok(transfers) = decode_json::<CreateTransfers>(bytes) {
        let _ = transfers.convert();
    }
    if let Ok(accounts) = decode_json::<CreateAccounts>(bytes) {
        let _ = accounts.convert();
    }
    if let Ok(patch) = decode_json::<AccountPatchInput>(bytes) {
        let _ = patch.convert("acct");
    }
}

#[test]
fn request_bodies_decode_or_name_what_is_wrong() {
    run("request", prop_oneof![mutations(corpus("request")), any::<Vec<u8>>()], request);
}

fn batch(bytes: &[u8]) {
    if let Ok(decoded) = decode_batch(bytes) {
        // One encoding per value: what decodes encodes back to the same bytes.
        let mut again = Encoder::default();
        encode_batch(decoded.timestamp, &decoded.requests.iter().collect::<Vec<_>>(), &mut again);
        assert_eq!(again.bytes, bytes);
    }
}

#[test]
fn journal_batches_decode_exactly_or_are_refused() {
    run("batch", prop_oneof![mutations(corpus("batch")), any::<Vec<u8>>()], batch);
}

#[test]
fn damaged_snapshots_are_refused_never_misread() {
    use tally_core::*;
    let mut state = State::new();
    state.apply(&Request::CreateAssets(vec![NewAsset { code: AssetCode::parse("USD").unwrap(), scale: 2 }]), 1);
    let account = |name: &str| NewAccount {
        id: Id::parse(name).unwrap(),
        asset: AssetCode::parse("USD").unwrap(),
        parent: None,
        min_balance: None,
        max_balance: None,
        metadata: Some(Metadata::parse("{\"k\":1}").unwrap()),
    };
    state.apply(&Request::CreateAccounts(vec![account("a"), account("b")]), 2);
    let transfer = |id: &str, kind: TransferKind| NewTransfer::new(Id::parse(id).unwrap(), kind);
    let (a, b, one) = (Id::parse("a").unwrap(), Id::parse("b").unwrap(), Decimal::parse("1").unwrap());
    state.apply(
        &Request::CreateTransfers(vec![
            NewTransfer {
                metadata: Some(Metadata::parse(r#"{"k":[1,2.50]}"#).unwrap()),
                ..transfer("t", TransferKind::Direct { debit: a.clone(), credit: b.clone(), amount: one })
            },
            transfer("h", TransferKind::Pending { debit: a, credit: b, amount: one, timeout_ms: Some(5) }),
        ]),
        3,
    );
    let valid = state.snapshot_bytes();
    let original = State::from_snapshot_bytes(&valid).expect("the valid snapshot loads").snapshot_bytes();
    assert_eq!(original, valid);
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    runner
        .run(&mutations(vec![valid]), |bytes| {
            // Either refused, or a state that passes every check and encodes back exactly.
            if let Ok(loaded) = State::from_snapshot_bytes(&bytes) {
                prop_assert!(loaded.check_invariants().is_ok());
                prop_assert_eq!(loaded.snapshot_bytes(), bytes);
                // Every record renders (transfer metadata is canonical, checked when loaded).
                prop_assert_eq!(loaded.journal(0, loaded.last_seq(), usize::MAX).len() as u64, loaded.last_seq());
            }
            Ok(())
        })
        .unwrap();
}
