//! The journal's bytes are a promise to every data directory ever written: this test fails
//! if the framing, the batch encoding or the checksum function changes. Change the format
//! only with a new format version and a reader for the old one, or with new kind bytes that
//! no earlier record carries.

use tally_core::codec::{encode_batch, Encoder};
use tally_core::*;
use tally_engine::journal::{encode_record_header, encode_segment_header, record_checksum, Position};
use tally_engine::{snapshot, FileStorage, Storage};

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
            balancing: false,
        }]),
    ]
}

/// The kinds added without a format change: an allocation, a balancing transfer and hold,
/// an account update that closes, and a renewal.
#[test]
fn later_request_and_transfer_kinds_are_frozen() {
    let id = |text: &str| Id::parse(text).unwrap();
    let amount = || Decimal::parse("1.00").unwrap();
    let shares = vec![Share { credit: id("a"), weight: 1 }, Share { credit: id("b"), weight: 2 }];
    let allocation = TransferKind::Allocate { debit: id("w"), shares, amount: amount(), pending: true, timeout_ms: Some(9) };
    let sweep = TransferKind::Direct { debit: id("a"), credit: id("w"), amount: Decimal::UNLIMITED };
    let up_to = TransferKind::Pending { debit: id("a"), credit: id("w"), amount: amount(), timeout_ms: None };
    let requests = [
        Request::CreateTransfers(vec![
            NewTransfer::new(id("p"), allocation),
            NewTransfer { balancing: true, ..NewTransfer::new(id("s"), sweep) },
            NewTransfer { balancing: true, ..NewTransfer::new(id("u"), up_to) },
        ]),
        Request::UpdateAccounts(vec![AccountUpdate {
            id: id("a"),
            patch: AccountPatch { closed: Some(true), force: true, ..AccountPatch::default() },
        }]),
        Request::RenewHolds(vec![HoldRenewal { id: id("p").leg(1), timeout_ms: 7, if_seq: Some(3) }]),
    ];
    let mut payload = Encoder::default();
    encode_batch(42, &requests.iter().collect::<Vec<_>>(), &mut payload);
    assert_eq!(hex(&payload.bytes), LATER_KINDS);
    assert_eq!(tally_core::codec::decode_batch(&payload.bytes).unwrap().requests, requests);
}

/// A request made with an API key: the key's id, then the request.
#[test]
fn a_request_made_with_a_key_is_frozen() {
    let request = sample_requests().swap_remove(0).by(Some(tally_core::Id::parse("k1").unwrap()));
    let mut payload = Encoder::default();
    encode_batch(42, &[&request], &mut payload);
    assert_eq!(hex(&payload.bytes), BY_KEY);
    assert_eq!(tally_core::codec::decode_batch(&payload.bytes).unwrap().requests, [request]);
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

/// A whole snapshot file of the sample ledger: header, frames and the end frame.
#[test]
fn snapshot_layout_is_frozen() {
    let state = sample_state();
    let directory = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::open(directory.path()).unwrap();
    let position = Position { record: 3, last_seq: state.last_seq(), checksum: 0x99 };
    snapshot::write(&mut storage, &state, position).unwrap();
    let name = storage.list().unwrap().into_iter().find(|name| name.starts_with("snapshot-")).unwrap();
    let mut bytes = vec![0u8; storage.len(&name).unwrap() as usize];
    storage.read_exact_at(&name, 0, &mut bytes).unwrap();
    assert_eq!(hex(&bytes), SNAPSHOT);
    let (loaded, at) = snapshot::load_latest(&storage).unwrap().unwrap();
    assert_eq!((at, loaded.snapshot_bytes()), (position, state.snapshot_bytes()), "the frozen bytes still load");
}

/// Snapshots written at format 1 (before closed accounts), 2 (before the keys behind the
/// entries) and 3 (with a table of strings) still load: every account open, no entry made
/// with a key.
#[test]
fn format_1_to_3_snapshots_still_load() {
    for (format, golden) in [(1, SNAPSHOT_V1), (2, SNAPSHOT_V2), (3, SNAPSHOT_V3)] {
        let directory = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..golden.len()).step_by(2).map(|i| u8::from_str_radix(&golden[i..i + 2], 16).unwrap()).collect();
        std::fs::write(directory.path().join("snapshot-00000000000000000003.ts"), bytes).unwrap();
        let storage = FileStorage::open(directory.path()).unwrap();
        let (loaded, at) = snapshot::load_latest(&storage).unwrap().unwrap_or_else(|| panic!("the format {format} snapshot loads"));
        assert_eq!((at.record, loaded.snapshot_bytes()), (3, sample_state().snapshot_bytes()), "format {format}");
    }
}

/// A history segment: a replay writes it again and `verify` compares the two, so its bytes
/// are frozen too (here by their xxh3 and length). 64 records: the sample's transfer, then
/// holds, a post, a void, failures and plain transfers.
#[test]
fn history_segment_layout_is_frozen() {
    let id = |text: &str| Id::parse(text).unwrap();
    let amount = |text: &str| Decimal::parse(text).unwrap();
    let mut state = sample_state();
    let transfer = |name: String, kind| NewTransfer::new(id(&name), kind);
    for n in 0..64u64 {
        let kind = match n % 4 {
            0 => TransferKind::Pending { debit: id("world"), credit: id("alice"), amount: amount("2.00"), timeout_ms: Some(1_000) },
            1 => TransferKind::Post { pending_id: id(&format!("s{}", n - 1)), debit: None, credit: None, amount: None },
            2 => TransferKind::Direct { debit: id("alice"), credit: id("world"), amount: amount("999999.00") },
            _ => TransferKind::Direct { debit: id("world"), credit: id("alice"), amount: amount("0.01") },
        };
        state.apply(&Request::CreateTransfers(vec![transfer(format!("s{n}"), kind)]), 100 + n);
    }
    let bytes = state.history_segment(0, tally_core::records::SEGMENT_SHIFT_MIN).unwrap();
    assert_eq!((bytes.len(), format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)).as_str()), SEGMENT);
}

fn sample_state() -> State {
    let mut state = State::new();
    for request in sample_requests() {
        state.apply(&request, 42);
    }
    state
}

const CHECKSUM: &str = "868040a27db6ecb966889225ce7812ee";
const SEGMENT_HEADER: &str = "54414c4c594a4e4c0100000030000000070000000000000002010000000000000000000000000000b97ac0ea5ba57713";
const BATCH: &str = "2a0000000000000003000000010100000003005553440202020000000500776f726c640300555344000000000500616c696365030055534400010000000000000000000000000000000000000000040100000002007431000500776f726c640500616c696365ce04000000000000000000000000000002000000010c007b226e6f7465223a2278227d0000";
const BY_KEY: &str = "2a0000000000000001000000070000000002006b310101000000030055534402";
const LATER_KINDS: &str = "2a000000000000000300000004030000000100700401007702000100610100000000000000010062020000000000000064000000000000000000000000000000020001010900000000000000000000000001007305010061010077ffffffffffffffffffffffffffffffff000000000000000100750601006101007764000000000000000000000000000000020000000000000005010000000100610000000001010106010000000300702f310700000000000000010300000000000000";
const RECORD_HEADER: &str = "5fad638f110c0e3973fea7b25b0a3ee48b0000000000000003000000000000000500000000000000";
const SNAPSHOT_V2: &str = "54414c4c59534e5002000000000000000300000000000000040000000000000099000000000000000000000000000000bec7988710e71123c60100000000000076194e6eec1b17400e3b53adfebd26512d00000000000000010000000000000002000000000000000100000000000000010000000000000000000000000000000000000000000000000000000000000003005553440201000000000000002a000000000000000500776f726c6400000000ffffffff0000000000000000ce04000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000002b000000000000000200000000000000020000000000000004000000000000000500616c69636500000000ffffffff0100000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000000000ce040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000002c000000000000000200000000000000030000000000000004000000000000000e00000074317b226e6f7465223a2278227d00ce0400000000000000000000000000000c4000000000000004000000000000002d00000000000000da5295cd0fe71fb80000000001000000ffffffff000000000000000000000076194e6eec1b17400e3b53adfebd2651";
/// The same ledger as format 3 wrote it.
const SNAPSHOT_V3: &str = "54414c4c59534e5003000000000000000300000000000000040000000000000099000000000000000000000000000000317274cb88c1f9e8ce0100000000000059aaf46859ddd9e0f02f38985999b7122d000000000000000100000000000000020000000000000001000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000003005553440201000000000000002a000000000000000500776f726c6400000000ffffffff0000000000000000ce04000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000002b000000000000000200000000000000020000000000000004000000000000000500616c69636500000000ffffffff0100000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000000000ce040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000002c000000000000000200000000000000030000000000000004000000000000000e00000074317b226e6f7465223a2278227d00ce0400000000000000000000000000000c4000000000000004000000000000002d00000000000000da5295cd0fe71fb80000000001000000ffffffff000000000000000000000059aaf46859ddd9e0f02f38985999b712";
/// The same ledger as format 1 wrote it.
const SNAPSHOT_V1: &str = "54414c4c59534e5001000000000000000300000000000000040000000000000099000000000000000000000000000000e2a2ee723624aa34ba01000000000000207679c79130b7b637b66f3ef2f212282d0000000000000001000000000000000200000000000000010000000000000001000000000000000000000000000000000000000000000003005553440201000000000000002a000000000000000500776f726c6400000000ffffffff000000000000ce04000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000002b000000000000000200000000000000020000000000000004000000000000000500616c69636500000000ffffffff010000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000000ce040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000002c000000000000000200000000000000030000000000000004000000000000000e00000074317b226e6f7465223a2278227d00ce0400000000000000000000000000000c4000000000000004000000000000002d00000000000000da5295cd0fe71fb80000000001000000ffffffff0000000000000000000000207679c79130b7b637b66f3ef2f21228";
/// The sample ledger as this build writes it.
const SNAPSHOT: &str = "54414c4c59534e50040000000000000003000000000000000400000000000000990000000000000000000000000000004c1348c54a2301ffdf01000000000000fe9f93633dbbcd77ca8319e550da92232d000000000000000100000000000000020000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003005553440201000000000000002a000000000000000500776f726c6400000000ffffffff0000000000000000ce04000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000000002b000000000000000200000000000000020000000000000004000000000000000500616c69636500000000ffffffff0100000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000000000ce040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000002c0000000000000002000000000000000300000000000000040000000000000000ce04000000000000000000000000000004000000000000002d00000000000000da5295cd0fe71fb80000000001000000ffffffff00000002007431010c007b226e6f7465223a2278227d0000000000000000fe9f93633dbbcd77ca8319e550da9223";
const SEGMENT: (usize, &str) = (4865, "cc437f3c327efe89");
