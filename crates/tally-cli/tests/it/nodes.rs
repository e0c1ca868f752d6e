//! Three Tally nodes on one PostgreSQL: the bank workload with clients on all three at once,
//! one node killed with SIGKILL and restarted on a schedule, for each concurrency strategy.
//! The checker must find no violation: no lost or doubled transfer, no gap in the journal,
//! no overdraft, every hold posted, voided or expired exactly once.

use crate::support::*;
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

fn three_nodes_share_one_database(concurrency: &str) {
    let cluster = PrivateCluster::start(ClusterOptions::default()).expect("a private PostgreSQL cluster");
    let binary = env!("CARGO_BIN_EXE_tally");
    let directory = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let start = |index: usize| {
        format!(
            "RUST_LOG=warn {binary} serve --engine postgres --database-url '{}' --pg-concurrency {concurrency} \
             --listen 127.0.0.1:{} > {dir}/node{index}.log 2>&1 & echo $! > {dir}/node{index}.pid",
            cluster.url(),
            ports[index],
            dir = directory.path().display(),
        )
    };
    let pidfile = |index: usize| directory.path().join(format!("node{index}.pid")).display().to_string();
    for index in 0..3 {
        assert!(std::process::Command::new("sh").arg("-c").arg(start(index)).status().unwrap().success());
    }
    let crash = format!("kill -9 $(cat {0}) && while kill -0 $(cat {0}) 2>/dev/null; do sleep 0.05; done", pidfile(0));
    let urls = ports.map(|port| format!("http://127.0.0.1:{port}")).join(",");
    let output = tally(&[
        "check",
        "--url",
        &urls,
        "--clients",
        "9",
        "--duration",
        "16",
        "--crash-every",
        "6",
        "--crash-cmd",
        &crash,
        "--restart-cmd",
        &start(0),
    ]);
    for index in 0..3 {
        let _ = std::process::Command::new("sh").arg("-c").arg(format!("kill $(cat {})", pidfile(index))).status();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logs: String = (0..3).map(|i| std::fs::read_to_string(directory.path().join(format!("node{i}.log"))).unwrap_or_default()).collect();
    assert!(output.status.success(), "{stdout}\n{}\n{logs}", String::from_utf8_lossy(&output.stderr));
    eprintln!("{stdout}");
    assert!(stdout.contains("ok: no violations"), "{stdout}");
    assert!(stdout.contains("crashes: 2") || stdout.contains("crashes: 3"), "expected the node to be killed and restarted: {stdout}");
}

#[test]
fn three_nodes_with_row_locks_keep_the_bank_correct() {
    three_nodes_share_one_database("locking");
}

#[test]
fn three_nodes_with_optimistic_versions_keep_the_bank_correct() {
    three_nodes_share_one_database("optimistic");
}

#[test]
fn three_nodes_at_serializable_isolation_keep_the_bank_correct() {
    three_nodes_share_one_database("serializable");
}
