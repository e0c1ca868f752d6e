//! A ledger moves from the embedded engine to PostgreSQL and back with `tally export` and
//! `tally import`, keeping every id, seq, timestamp and state: the dump that comes back is
//! byte for byte the dump that went in, and `tally verify` passes on both sides. A
//! PostgreSQL ledger exported while nodes write into it imports exactly as it was.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_ledger_exported_under_load_imports_exactly_as_it_was() {
    let directory = tempfile::tempdir().unwrap();
    let (source, target) =
        (PrivateCluster::start(ClusterOptions::default()).unwrap(), PrivateCluster::start(ClusterOptions::default()).unwrap());
    let (first_dump, second_dump) = (directory.path().join("first.dump"), directory.path().join("second.dump"));
    let port = free_port();
    let node = Server::start_with(directory.path(), port, &["--engine", "postgres", "--database-url", &source.url()]).healthy().await;
    let url = format!("http://127.0.0.1:{port}");
    let load =
        tokio::task::spawn_blocking(move || tally_with_files(&["check", "--url", &url, "--clients", "4", "--duration", "10"], None, None));
    // Exported once the workload has written a real ledger, however busy the machine is.
    let (mut before, waiting) = (0, std::time::Instant::now());
    while before < 500 {
        assert!(waiting.elapsed() < std::time::Duration::from_secs(60), "the workload writes");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        before = node.client.health().await.unwrap().durable_seq;
    }
    let (url, dump) = (source.url(), first_dump.clone());
    tokio::task::spawn_blocking(move || tally_with_files(&["export", "--database-url", &url], None, Some(&dump))).await.unwrap();
    let after = node.client.health().await.unwrap().durable_seq;
    load.await.unwrap();
    let end = node.client.health().await.unwrap().durable_seq;
    assert!(end > after && after >= before, "the workload ran before, during and after the export ({before}, {after}, {end})");

    let imported = tally_with_files(&["import", "--database-url", &target.url()], Some(&first_dump), None);
    let said = String::from_utf8_lossy(&imported.stderr);
    let exported_seq: u64 = said.split("up to seq ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&exported_seq),
        "the export is the ledger at one seq while it ran: {before} <= {exported_seq} <= {after}"
    );
    let verified = tally_with_files(&["verify", "--database-url", &target.url()], None, None);
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("ok:"));
    tally_with_files(&["export", "--database-url", &target.url()], None, Some(&second_dump));
    assert!(std::fs::read(&first_dump).unwrap() == std::fs::read(&second_dump).unwrap(), "the imported ledger exports the same dump");

    // Served, the copy holds every entry up to the exported seq, and every account as the live
    // ledger had it there. (A journal entry shows a hold as it stands now, so what changed
    // after the export is left out of the comparison.)
    let copy_port = free_port();
    let copy = Server::start_with(directory.path(), copy_port, &["--engine", "postgres", "--database-url", &target.url()]).healthy().await;
    let as_exported = |mut entries: Vec<serde_json::Value>| {
        for entry in &mut entries {
            let entry = entry.as_object_mut().unwrap();
            for later in ["state", "resolved_by", "expires_at"] {
                entry.remove(later);
            }
        }
        entries
    };
    let copied = as_exported(journal_until(&copy.client, exported_seq).await);
    assert_eq!(copied.len() as u64, exported_seq);
    assert_eq!(copied, as_exported(journal_until(&node.client, exported_seq).await), "every entry up to the exported seq");
    let accounts = node.client.accounts("", None, 1_000).await.unwrap().accounts;
    assert!(accounts.len() > 10);
    for account in &accounts {
        let (live, copied) = (
            node.client.account_as_of(&account.id, exported_seq).await.unwrap(),
            copy.client.account_as_of(&account.id, exported_seq).await.unwrap(),
        );
        assert_eq!(serde_json::to_value(&copied).unwrap(), serde_json::to_value(&live).unwrap(), "{} at seq {exported_seq}", account.id);
    }
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
