//! The bank workload with kill -9 and restart, as a user would run it: `tally check` drives a
//! real server through its crash and restart commands and must find no violation.

use crate::support::*;

#[test]
fn the_bank_workload_survives_repeated_kill_9() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let pidfile = directory.path().join("server.pid");
    let port = free_port();
    let binary = env!("CARGO_BIN_EXE_tally");
    let restart = format!(
        "RUST_LOG=warn {binary} serve --listen 127.0.0.1:{port} --data-dir {} > /dev/null 2>&1 & echo $! > {}",
        data.display(),
        pidfile.display()
    );
    let crash =
        format!("kill -9 $(cat {}) && while kill -0 $(cat {}) 2>/dev/null; do sleep 0.05; done", pidfile.display(), pidfile.display());
    let started = std::process::Command::new("sh").arg("-c").arg(&restart).status().unwrap();
    assert!(started.success());
    let output = tally(&[
        "check",
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--clients",
        "6",
        "--duration",
        "32",
        "--crash-every",
        "7",
        "--crash-cmd",
        &crash,
        "--restart-cmd",
        &restart,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let _ = std::process::Command::new("sh").arg("-c").arg(format!("kill -9 $(cat {})", pidfile.display())).status();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let crashes: u64 = stdout
        .lines()
        .find_map(|l| l.split("crashes: ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(crashes >= 3, "expected at least 3 crash cycles: {stdout}");
    assert!(stdout.contains("ok: no violations"), "{stdout}");
}
