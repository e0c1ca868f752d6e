//! A data directory written by an earlier build must open and verify with every later one:
//! an old ledger never becomes unreadable silently. `tests/data/ledger-v1` was written by
//! `tally serve` at journal and snapshot format version 1 (`tests/data/make-ledger-v1.sh`):
//! assets, accounts in a tree, transfers with metadata, holds posted, voided, expired and
//! failed, a failed chain, a bound change and a resend, with a clean stop (its snapshot)
//! and a kill -9 after three more requests (replayed from the journal).

use crate::support::{free_port, tally, Server};
use std::path::Path;

fn copy_of_ledger_v1() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ledger-v1");
    let copy = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(source).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), copy.path().join(file.file_name())).unwrap();
    }
    copy
}

#[tokio::test]
async fn a_ledger_written_at_format_version_1_opens_and_verifies() {
    let data = copy_of_ledger_v1();
    let verify = tally(&["verify", "--data-dir", data.path().to_str().unwrap()]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(report.contains("(last seq 29)") && report.contains("snapshots checked against the replay: 1 of 1"), "{report}");

    let server = Server::start(data.path(), free_port()).healthy().await;
    let balance = |account: Option<tally_api::Account>| {
        let account = account.expect("the account exists");
        (account.balance, account.available)
    };
    let client = &server.client;
    let expected = [
        ("alice", "25.00", "25.00"),
        ("bob", "20.50", "20.50"),
        ("bank:usd", "75.00", "75.00"),
        ("world:usd", "-80.50", "-80.50"),
        ("org", "-40.00", "-40.00"),
        ("org:design", "-30.00", "-30.00"),
        ("org:infra", "-10.00", "-10.00"),
        ("job:7:slots", "2", "1"),
    ];
    for (account, balance_now, available) in expected {
        assert_eq!(balance(client.account(account).await.unwrap()), (balance_now.into(), available.into()), "{account}");
    }
    // alice right after the hold of 80.00 was placed (seq 15).
    assert_eq!(balance(client.account_as_of("alice", 15).await.unwrap()), ("100.00".into(), "20.00".into()));
    let bob = client.account("bob").await.unwrap().unwrap();
    assert_eq!(
        (bob.max_balance.as_deref(), bob.metadata.map(|m| m.get().to_owned())),
        (Some("2000.00"), Some(r#"{"note":"raised"}"#.into()))
    );
    for (transfer, state) in [
        ("wd-1", "posted"),
        ("hold-short", "expired"),
        ("apply-1", "voided"),
        ("apply-2", "pending"),
        ("wd-2", "failed"),
        ("chain-a", "failed"),
    ] {
        assert_eq!(client.transfer(transfer).await.unwrap().expect("the transfer exists").state, state, "{transfer}");
    }
    let fund = client.transfer("fund-1").await.unwrap().unwrap();
    assert_eq!((fund.seq, fund.metadata.map(|m| m.get().to_owned())), (12, Some(r#"{"ref":"wire 1"}"#.into())));
    server.terminate();
}
