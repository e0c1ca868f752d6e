//! A PostgreSQL failover under load, as teams run it: a primary with a synchronous standby,
//! two Tally nodes reaching both through one multi-host connection string with
//! `target_session_attrs=read-write`, and the bank workload on both nodes. The primary is
//! killed with SIGKILL mid-load and the standby promoted. While no writable server exists,
//! writes are answered at once with `unavailable` (not left waiting) and `/healthz` is 503;
//! once the standby takes writes the nodes reconnect by themselves. The checker then finds
//! every acknowledged transfer exactly once and every invariant holding, and `tally verify`
//! checks the promoted database from its first batch.

use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tally_client::Client;
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

const STANDBY: &str = "tally_standby";

/// Polls `done` every 50 ms until it holds, for at most `limit` (then fails, naming `what`).
async fn until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_synchronous_standby_holds_every_acknowledged_transfer() {
    let options = ClusterOptions { synchronous_standby: Some(STANDBY), ..ClusterOptions::default() };
    let mut primary = PrivateCluster::start(options).expect("a private PostgreSQL cluster");
    let standby = primary.start_standby(STANDBY, ClusterOptions::default()).expect("a standby of it");
    let url = format!(
        "host={},{} port={},{} user=tally dbname=postgres target_session_attrs=read-write",
        primary.directory().display(),
        standby.directory().display(),
        primary.port(),
        standby.port()
    );
    let directory = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let nodes: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            let log = std::fs::File::create(directory.path().join(format!("node{index}.log"))).unwrap();
            Command::new(env!("CARGO_BIN_EXE_tally"))
                .args(["serve", "--engine", "postgres", "--database-url", &url, "--listen", &format!("127.0.0.1:{port}")])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map(ChildGuard)
                .unwrap()
        })
        .collect();
    let clients = ports.map(|port| Client::new(&format!("http://127.0.0.1:{port}")));
    for client in &clients {
        until("a node starting", Duration::from_secs(60), async || client.health().await.is_ok()).await;
    }
    let urls = ports.map(|port| format!("http://127.0.0.1:{port}")).join(",");
    let report = |name: &str| std::fs::File::create(directory.path().join(name)).unwrap();
    // No checkpoints during the run: one would read while no server takes reads. The checker
    // compares everything once the load is over.
    let mut check = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["check", "--url", &urls, "--clients", "8", "--duration", "16", "--checkpoint-every", "3600"])
        .stdout(report("check.out"))
        .stderr(report("check.err"))
        .spawn()
        .map(ChildGuard)
        .unwrap();

    // Mid-load: the bank has moved money through the primary.
    until("the workload committing", Duration::from_secs(60), async || {
        clients[0].health().await.is_ok_and(|health| health.last_seq > 2_000)
    })
    .await;
    assert!(check.0.try_wait().unwrap().is_none(), "the workload still runs when the primary is killed");
    primary.kill().unwrap();

    // No writable server: writes hear `unavailable` at once, health says 503.
    let mut probe = 0;
    until("a write refused as unavailable", Duration::from_secs(20), async || {
        probe += 1;
        match clients[1].create_asset(&format!("P{probe:02}"), 2).await {
            Err(error) => error.code() == Some("unavailable"),
            Ok(results) => panic!("a write was applied with no writable server: {results:?}"),
        }
    })
    .await;
    for client in &clients {
        until("health turning 503", Duration::from_secs(20), async || client.health().await.is_err()).await;
    }

    standby.promote().unwrap();
    for client in &clients {
        until("the node writing again", Duration::from_secs(30), async || client.health().await.is_ok()).await;
    }

    let status = check.0.wait().unwrap();
    drop(nodes);
    let read = |name: &str| std::fs::read_to_string(directory.path().join(name)).unwrap_or_default();
    let (stdout, logs) = (read("check.out"), read("node0.log") + &read("node1.log"));
    assert!(status.success(), "{stdout}\n{}\n{logs}", read("check.err"));
    eprintln!("{stdout}");
    assert!(stdout.contains("ok: no violations"), "{stdout}\n{logs}");
    assert!(logs.contains("cannot connect to a writable PostgreSQL server"), "each failed attempt is logged: {logs}");
    assert!(logs.contains("connected to PostgreSQL again"), "{logs}");

    let verified = tally(&["verify", "--database-url", &standby.url()]);
    assert!(verified.status.success(), "{}{}", String::from_utf8_lossy(&verified.stdout), String::from_utf8_lossy(&verified.stderr));
}

/// Kills a process (a node, the checker) when the test ends, whichever way it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
