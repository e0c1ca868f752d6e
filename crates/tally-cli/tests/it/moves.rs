//! A ledger moves from the embedded engine to PostgreSQL and back with `tally export` and
//! `tally import`, keeping every id, seq, timestamp and state: the dump that comes back is
//! byte for byte the dump that went in, and `tally verify` passes on both sides.

use crate::support::*;
use std::process::{Command, Stdio};
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

fn tally_with_files(args: &[&str], stdin: Option<&std::path::Path>, stdout: Option<&std::path::Path>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command.args(args).stderr(Stdio::piped());
    if let Some(path) = stdin {
        command.stdin(std::fs::File::open(path).unwrap());
    }
    command.stdout(match stdout {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::piped(),
    });
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "tally {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_moves_to_postgres_and_back_unchanged() {
    let directory = tempfile::tempdir().unwrap();
    let (source, back) = (directory.path().join("source"), directory.path().join("back"));
    let (first_dump, second_dump) = (directory.path().join("first.dump"), directory.path().join("second.dump"));
    let port = free_port();
    let server = Server::start(&source, port).healthy().await;
    // Holds with timeouts, posts, voids, failed chains, bound changes, retries.
    let url = format!("http://127.0.0.1:{port}");
    tally_with_files(&["check", "--url", &url, "--clients", "4", "--duration", "2"], None, None);
    every_later_kind(&server.client).await;
    assert!(server.terminate().success());

    tally_with_files(&["export", "--data-dir", source.to_str().unwrap()], None, Some(&first_dump));
    let cluster = PrivateCluster::start(ClusterOptions::default()).unwrap();
    tally_with_files(&["import", "--database-url", &cluster.url()], Some(&first_dump), None);
    let verified = tally_with_files(&["verify", "--database-url", &cluster.url()], None, None);
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("ok:"));
    let refused = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["import", "--database-url", &cluster.url()])
        .stdin(std::fs::File::open(&first_dump).unwrap())
        .output()
        .unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("not empty"));

    tally_with_files(&["export", "--database-url", &cluster.url()], None, Some(&second_dump));
    let (first, second) = (std::fs::read(&first_dump).unwrap(), std::fs::read(&second_dump).unwrap());
    assert!(first.len() > 10_000, "the workload wrote a real ledger ({} bytes)", first.len());
    assert!(first == second, "the dump from PostgreSQL equals the dump that went in");

    tally_with_files(&["import", "--data-dir", back.to_str().unwrap()], Some(&second_dump), None);
    let verified = tally_with_files(&["verify", "--data-dir", back.to_str().unwrap()], None, None);
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("ok:"));
    let reopened = Server::start(&back, free_port()).healthy().await;
    let original_seq = {
        let server = Server::start(&source, free_port()).healthy().await;
        server.client.health().await.unwrap().durable_seq
    };
    assert_eq!(reopened.client.health().await.unwrap().durable_seq, original_seq);
}

/// An allocation held and posted by its id, a balancing transfer, a renewed lease and a closed
/// account: the events added after the first format, so the move carries them too.
async fn every_later_kind(client: &tally_client::Client) {
    use tally_api::{AccountInput, AccountPatchInput, HoldPatchInput, ShareInput, TransferInput};
    assert_eq!(client.create_asset("MOV", 2).await.unwrap().results[0].result, "created");
    let account =
        |id: &'static str| AccountInput { id: id.into(), asset: "MOV".into(), min_balance: Some(None), ..AccountInput::default() };
    client.create_accounts(vec![account("m:source"), account("m:a"), account("m:b")]).await.unwrap();
    let shares = vec![ShareInput { credit: "m:a".into(), weight: 1 }, ShareInput { credit: "m:b".into(), weight: 2 }];
    let transfers = vec![
        TransferInput {
            id: "m:pot".into(),
            debit: Some("m:source".into()),
            amount: Some("10.00".into()),
            allocate: Some(shares),
            pending: true,
            timeout_ms: Some(600_000),
            ..TransferInput::default()
        },
        TransferInput { id: "m:settle".into(), post: Some("m:pot".into()), ..TransferInput::default() },
        TransferInput {
            id: "m:lease".into(),
            debit: Some("m:a".into()),
            credit: Some("m:b".into()),
            amount: Some("1".into()),
            pending: true,
            timeout_ms: Some(600_000),
            ..TransferInput::default()
        },
        TransferInput {
            id: "m:sweep".into(),
            debit: Some("m:b".into()),
            credit: Some("m:source".into()),
            balancing: true,
            ..TransferInput::default()
        },
    ];
    let results = client.create_transfers(transfers).await.unwrap().results;
    assert!(results.iter().all(|r| r.result == "created"), "{results:?}");
    let renewed = client.renew_hold("m:lease", &HoldPatchInput { timeout_ms: Some(900_000), if_seq: None }).await.unwrap();
    assert_eq!(renewed.results[0].result, "updated");
    let close = AccountPatchInput { closed: Some(true), force: true, ..AccountPatchInput::default() };
    assert_eq!(client.update_account("m:a", &close).await.unwrap().results[0].result, "updated");
}
