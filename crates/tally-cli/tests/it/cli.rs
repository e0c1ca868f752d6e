//! The binary's own promises: one process per data directory, a clean stop on SIGTERM, and
//! `verify` that fails loudly on corruption.

use crate::support::*;
use tally_client::api::TransferInput;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_directory_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let first = Server::start(&data, free_port()).healthy().await;
    let second = tally(&["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir", data.to_str().unwrap()]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("in use by another Tally process"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(first.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_verify_catches_corruption() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let port = free_port();
    let server = Server::start(&data, port).healthy().await;
    server.client.create_asset("USD", 2).await.unwrap();
    let accounts = vec![
        tally_client::api::AccountInput { id: "a".into(), asset: "USD".into(), min_balance: Some(None), ..Default::default() },
        tally_client::api::AccountInput { id: "b".into(), asset: "USD".into(), ..Default::default() },
    ];
    server.client.create_accounts(accounts).await.unwrap();
    for n in 0..5 {
        let transfer = TransferInput {
            id: format!("t{n}").into(),
            debit: Some("a".into()),
            credit: Some("b".into()),
            amount: Some("1.00".into()),
            ..Default::default()
        };
        server.client.create_transfers(vec![transfer]).await.unwrap();
    }
    assert!(server.terminate().success(), "SIGTERM stops with success");
    let verify = tally(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("ok: "), "{}", String::from_utf8_lossy(&verify.stdout));

    let server = Server::start(&data, port).healthy().await;
    assert_eq!(server.client.account("b").await.unwrap().unwrap().balance, "5.00");
    assert!(server.terminate().success());

    let segment = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("journal-")).unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[48 + 40 + 2] ^= 0x40;
    std::fs::write(&segment, bytes).unwrap();
    let verify = tally(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert!(!verify.status.success());
    let message = String::from_utf8_lossy(&verify.stderr);
    assert!(message.contains("journal-") && message.contains("offset 48"), "{message}");
    let start = tally(&["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()]);
    assert!(!start.status.success(), "a corrupt journal stops the start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_before_the_first_start_and_changed_through_the_running_server() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let data_dir = data.to_str().unwrap();
    // Without keys, only a loopback address is served (refused before anything is bound).
    let open = tally(&["serve", "--listen", &format!("0.0.0.0:{}", free_port()), "--data-dir", data_dir]);
    assert!(!open.status.success());
    assert!(String::from_utf8_lossy(&open.stderr).contains("without API keys"), "{}", String::from_utf8_lossy(&open.stderr));

    let made = tally(&["keys", "create", "--scope", "admin", "--name", "ops", "--data-dir", data_dir]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let output = String::from_utf8(made.stdout).unwrap();
    let admin = output.lines().next().unwrap().to_owned();
    assert!(admin.starts_with("tally_") && !admin.contains(' '), "the key alone on the first line: {output}");
    let stored = std::fs::read_to_string(data.join("keys")).unwrap();
    assert!(!stored.contains(&admin[admin.len() - 64..]), "only a digest is on disk");

    let port = free_port();
    let server = Server::start(&data, port).healthy_with(&admin).await;
    assert_eq!(server.client.create_asset("USD", 2).await.unwrap_err().code(), Some("unauthorized"));
    let busy = tally(&["keys", "list", "--data-dir", data_dir]);
    assert!(!busy.status.success(), "the running ledger's directory is locked");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("--url"), "{}", String::from_utf8_lossy(&busy.stderr));
    let url = format!("http://127.0.0.1:{port}");
    let through = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(args)
            .args(["--url", &url])
            .env("TALLY_API_KEY", &admin)
            .output()
            .unwrap()
    };
    let made = through(&["keys", "create", "--scope", "read", "--accounts", "acme:", "--expires", "90d"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let reader = String::from_utf8(made.stdout).unwrap().lines().next().unwrap().to_owned();
    let listed = String::from_utf8(through(&["keys", "list"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains("acme:") && listed.contains("expires at"), "{listed}");
    let id = tally_ledger::keys::claimed_id(&reader).unwrap();
    assert!(through(&["keys", "revoke", id]).status.success());
    let client = tally_client::Client::new(&url).with_token(reader);
    assert_eq!(client.accounts("", None, 10).await.unwrap_err().code(), Some("unauthorized"));
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_removed_under_a_running_server_stops_it_instead_of_losing_writes() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let first = Server::start(&data, free_port()).healthy().await;
    first.client.create_asset("USD", 2).await.unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    // Within a second the idle writer notices; a write is refused, never acknowledged into
    // files no one will find.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let refused = first.client.create_asset("EUR", 2).await.unwrap_err();
    assert_eq!(refused.code(), Some("unavailable"), "{refused}");
    let health = first.client.health().await.unwrap_err().to_string();
    assert!(health.contains("removed or replaced"), "{health}");
    // A new server on the same path starts fresh; the stopped one writes nothing there.
    let second = Server::start(&data, free_port()).healthy().await;
    second.client.create_asset("GBP", 2).await.unwrap();
    first.terminate();
    assert!(second.terminate().success());
    let verified = tally(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("ok: 1 records"), "{}", String::from_utf8_lossy(&verified.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_snapshot_its_journal_does_not_reach_as_a_start_would() {
    let directory = tempfile::tempdir().unwrap();
    let (longer, shorter) = (directory.path().join("longer"), directory.path().join("shorter"));
    let server = Server::start(&longer, free_port()).healthy().await;
    for code in ["USD", "EUR", "GBP"] {
        server.client.create_asset(code, 2).await.unwrap();
    }
    assert!(server.terminate().success());
    let server = Server::start(&shorter, free_port()).healthy().await;
    server.client.create_asset("USD", 2).await.unwrap();
    assert!(server.terminate().success());
    let foreign =
        std::fs::read_dir(&longer).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).find(|n| n.starts_with("snapshot-"));
    let foreign = foreign.expect("a snapshot written at shutdown");
    std::fs::copy(longer.join(&foreign), shorter.join(&foreign)).unwrap();
    let verified = tally(&["verify", "--data-dir", shorter.to_str().unwrap()]);
    assert!(!verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    assert!(String::from_utf8_lossy(&verified.stderr).contains("beyond the journal"), "{}", String::from_utf8_lossy(&verified.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_on_an_address_of_their_own_need_no_key() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let made = tally(&["keys", "create", "--scope", "admin", "--data-dir", data.to_str().unwrap()]);
    let admin = String::from_utf8(made.stdout).unwrap().lines().next().unwrap().to_owned();
    let (port, operations) = (free_port(), free_port());
    let server = Server::start_with(&data, port, &["--operations-listen", &format!("127.0.0.1:{operations}")]);
    let server = server.healthy_through(tally_client::Client::new(&format!("http://127.0.0.1:{operations}"))).await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{operations}/metrics")).await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    // The embedded engine reports the memory it holds, part by part.
    let text = metrics.text().await.unwrap();
    for part in ["accounts", "account_history", "transfer_records", "transfer_index", "transfer_text", "journal", "other"] {
        let line = format!("tally_memory_bytes{{part=\"{part}\"}} ");
        assert!(text.lines().any(|l| l.starts_with(&line) && l[line.len()..].parse::<f64>().is_ok()), "{part} missing:\n{text}");
    }
    let main = tally_client::Client::new(&format!("http://127.0.0.1:{port}"));
    assert_eq!(main.health().await.unwrap_err().code(), Some("not_found"), "not on the API's address");
    assert_eq!(main.accounts("", None, 1).await.unwrap_err().code(), Some("unauthorized"));
    assert!(main.with_token(admin).accounts("", None, 1).await.is_ok());
    assert!(server.terminate().success());
}

/// Runs a server until it answers, stops it, and returns what it logged.
async fn logs_of_a_run(arguments: &[&str]) -> String {
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(arguments)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(directory.path().join("data"))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = tally_client::Client::new(&format!("http://127.0.0.1:{port}"));
    let started = std::time::Instant::now();
    while client.health().await.is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "the server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_when_asked_and_plain_text_when_not_on_a_terminal() {
    let json = logs_of_a_run(&["--log-format", "json"]).await;
    assert!(json.lines().count() >= 3, "{json}");
    for line in json.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string() && entry["fields"]["message"].is_string(), "{line}");
    }
    let text = logs_of_a_run(&[]).await;
    assert!(text.contains("listening on http://127.0.0.1:") && text.contains("stopped cleanly"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {text:?}");
}
