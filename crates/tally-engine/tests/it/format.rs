//! The journal's bytes are a promise to every data directory ever written: this test fails
//! if the framing, the batch encoding or the checksum function changes. Change the format
//! only with a new format version and a reader for the old one.

use tally_core::codec::{encode_batch, Encoder};
use tally_core::*;
use tally_engine::journal::{encode_record_header, encode_segment_header, record_checksum};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn checksum_function_is_frozen() {
    assert_eq!(format!("{:032x}", record_checksum(0, b"tally", b"journal")), CHECKSUM);
}

#[test]
fn segment_header_layout_is_frozen() {
    assert_eq!(hex(&encode_segment_header(7, 0x0102)), SEGMENT_HEADER);
}

/// Every kind of field in one batch: an asset, accounts with and without bounds, a transfer
/// with metadata.
fn sample_requests() -> Vec<Request> {
    let id = |text: &str| Id::parse(text).unwrap();
    let usd = || AssetCode::parse("USD").unwrap();
    let account = |name: &str, min: Option<Decimal>| NewAccount {
        id: id(name),
        asset: usd(),
        parent: None,
        min_balance: min,
        max_balance: None,
        metadata: None,
    };
    vec![
        Request::CreateAssets(vec![NewAsset { code: usd(), scale: 2 }]),
        Request::CreateAccounts(vec![account("world", None), account("alice", Some(Decimal::ZERO))]),
        Request::CreateTransfers(vec![NewTransfer {
            id: id("t1"),
            kind: TransferKind::Direct { debit: id("world"), credit: id("alice"), amount: Decimal::parse("12.30").unwrap() },
            asset: None,
            linked: false,
            metadata: Some(Metadata::parse(r#"{"note":"x"}"#).unwrap()),
            if_debit_version: None,
            if_credit_version: None,
        }]),
    ]
}

#[test]
fn record_framing_and_batch_encoding_are_frozen() {
    let requests = sample_requests();
    let mut payload = Encoder::default();
    encode_batch(42, &requests.iter().collect::<Vec<_>>(), &mut payload);
    assert_eq!(hex(&payload.bytes), BATCH);
    let (header, _) = encode_record_header(0x99, 3, 5, &payload.bytes);
    assert_eq!(hex(&header), RECORD_HEADER);
}

const CHECKSUM: &str = "868040a27db6ecb966889225ce7812ee";
const SEGMENT_HEADER: &str = "54414c4c594a4e4c0100000030000000070000000000000002010000000000000000000000000000b97ac0ea5ba57713";
const BATCH: &str = "2a0000000000000003000000010100000003005553440202020000000500776f726c640300555344000000000500616c696365030055534400010000000000000000000000000000000000000000040100000002007431000500776f726c640500616c696365ce04000000000000000000000000000002000000010c007b226e6f7465223a2278227d0000";
const RECORD_HEADER: &str = "5fad638f110c0e3973fea7b25b0a3ee48b0000000000000003000000000000000500000000000000";
