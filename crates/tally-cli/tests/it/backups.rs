//! Backups and restores of an embedded ledger, through the `tally` binary as an operator runs
//! them: a backup taken while clients write holds everything acknowledged before it began;
//! a restore to a seq matches `as_of` on the live ledger; a backup kept current and killed
//! misses nothing once resumed; a damaged file is named.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_api::{AccountInput, TransferInput};
use tally_client::Client;

/// A server on a private port with a backup root, and where both live.
struct Live {
    server: Server,
    root: PathBuf,
    url: String,
    directory: tempfile::TempDir,
}

async fn live() -> Live {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path().join("backups");
    let port = free_port();
    let data = directory.path().join("data");
    let server = Server::start_with(&data, port, &["--backup-root", root.to_str().unwrap()]).healthy().await;
    let client = &server.client;
    assert_eq!(client.create_asset("BAK", 2).await.unwrap().results[0].result, "created");
    let mut accounts =
        vec![AccountInput { id: "bak:source".into(), asset: "BAK".into(), min_balance: Some(None), ..AccountInput::default() }];
    accounts.extend((0..8).map(|i| AccountInput { id: format!("bak:{i}").into(), asset: "BAK".into(), ..AccountInput::default() }));
    client.create_accounts(accounts).await.unwrap();
    Live { server, root, url: format!("http://127.0.0.1:{port}"), directory }
}

/// Clients sending small batches of transfers until stopped; every acknowledged transfer is
/// kept with the seq it was given.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(String, u64)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &Client, clients: usize, tag: &str) -> Load {
        let (stop, acknowledged) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let tasks = (0..clients)
            .map(|task| {
                let (client, stop, acknowledged, tag) = (client.clone(), stop.clone(), acknowledged.clone(), tag.to_owned());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let transfers: Vec<TransferInput> = (0..4)
                            .map(|k| TransferInput {
                                id: format!("{tag}-{task}-{n}-{k}").into(),
                                debit: Some("bak:source".into()),
                                credit: Some(format!("bak:{}", (n + k) % 8).into()),
                                amount: Some("1.25".into()),
                                ..TransferInput::default()
                            })
                            .collect();
                        let results = client.create_transfers(transfers).await.unwrap().results;
                        let mut acknowledged = acknowledged.lock().unwrap();
                        for result in results {
                            assert_eq!(result.result, "created");
                            acknowledged.push((result.id, result.seq.unwrap()));
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        Load { stop, acknowledged, tasks }
    }

    fn so_far(&self) -> Vec<(String, u64)> {
        self.acknowledged.lock().unwrap().clone()
    }

    async fn stop(self) -> Vec<(String, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let acknowledged = self.so_far();
        for task in self.tasks {
            task.await.unwrap();
        }
        let all = self.acknowledged.lock().unwrap().clone();
        assert!(all.len() >= acknowledged.len());
        all
    }
}

fn run(args: &[&str]) -> String {
    let output = tally(args);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "tally {args:?}: {text}");
    text
}

fn refused(args: &[&str]) -> String {
    let output = tally(args);
    assert!(!output.status.success(), "tally {args:?} should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn blocking(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || run(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

fn manifest_seq(backup: &Path) -> u64 {
    let text = std::fs::read(backup.join("manifest.json")).unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&text).map_or(0, |manifest| manifest["last_seq"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it_began_and_any_commit_in_between() {
    let live = live().await;
    let load = Load::start(&live.server.client, 4, "u");
    let waiting = Instant::now();
    while load.so_far().len() <= 100 {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the load writes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = live.server.client.health().await.unwrap().durable_seq;
    let acknowledged_before = load.so_far();
    // Twice: the second copies only what came in between.
    let mut copied = 0;
    for _ in 0..2 {
        let said = blocking(vec!["backup".into(), "--url".into(), live.url.clone(), "--to".into(), "under-load".into()]).await;
        let bytes = said.split(" files, ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or_else(|| panic!("{said}"));
        copied += bytes.parse::<u64>().unwrap();
    }
    let acknowledged_all = load.stop().await;
    assert!(acknowledged_before.len() > 100 && acknowledged_all.len() > acknowledged_before.len(), "the load ran during the backup");
    let backup = live.root.join("under-load");
    assert!(manifest_seq(&backup) >= before);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let held: u64 = manifest["files"].as_array().unwrap().iter().map(|file| file["bytes"].as_u64().unwrap()).sum();
    assert_eq!(copied, held, "each byte the backup holds was copied once");
    let verified = run(&["verify", "--backup", backup.to_str().unwrap()]);
    assert!(verified.starts_with("ok:"), "{verified}");

    let restored = live.directory.path().join("restored");
    run(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]);
    assert!(run(&["verify", "--data-dir", restored.to_str().unwrap()]).starts_with("ok:"));
    let copy = Server::start(&restored, free_port()).healthy().await;
    assert_eq!(copy.client.health().await.unwrap().durable_seq, manifest_seq(&backup));
    for (id, seq) in &acknowledged_before {
        let transfer = copy.client.transfer(id).await.unwrap().unwrap_or_else(|| panic!("{id} was acknowledged before the backup"));
        assert_eq!(transfer.seq, *seq, "{id} keeps its seq");
    }
    drop(copy);

    // A restore to a seq in the middle: every account as the live ledger had it then.
    let middle = before / 2;
    let to_seq = live.directory.path().join("to-seq");
    let said =
        run(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", to_seq.to_str().unwrap(), "--until-seq", &middle.to_string()]);
    let copy = Server::start(&to_seq, free_port()).healthy().await;
    let reached = copy.client.health().await.unwrap().durable_seq;
    assert!(reached <= middle && reached + 4 * 4 >= middle, "a commit at most is left out: {said}");
    assert_eq!(reached < middle, said.contains(&format!("seq {middle} lies inside the commit of seqs {}", reached + 1)), "{said}");
    let accounts = live.server.client.accounts("bak:", None, 100).await.unwrap().accounts;
    assert_eq!(accounts.len(), 9);
    for account in &accounts {
        let then = live.server.client.account_as_of(&account.id, reached).await.unwrap();
        // The restored ledger ends at `reached`: as of there is as it is now.
        let restored = copy.client.account_as_of(&account.id, reached).await.unwrap();
        assert_eq!(serde_json::to_value(&restored).unwrap(), serde_json::to_value(&then).unwrap(), "{} at seq {reached}", account.id);
    }
    // The same commit, named by the time of its last event; then a time inside the next
    // commit (its first event's stamp; it holds four): that commit is replayed, found to reach
    // past the time, and left out.
    let mut journals = Vec::new();
    for (name, seq_of_event) in [("to-time", reached), ("inside", reached + 1)] {
        let event = live.server.client.journal(seq_of_event - 1, 1, 0).await.unwrap().entries;
        let stamp = serde_json::to_value(&event[0]).unwrap()["timestamp"].as_u64().unwrap();
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(stamp)).unwrap();
        let time = time.format(&time::format_description::well_known::Rfc3339).unwrap();
        let to_time = live.directory.path().join(name);
        run(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", to_time.to_str().unwrap(), "--until-time", &time]);
        let copy_by_time = Server::start(&to_time, free_port()).healthy().await;
        assert_eq!(copy_by_time.client.health().await.unwrap().durable_seq, reached, "restored to {time}");
        journals.push(whole_journal(&copy_by_time.client).await);
    }
    let expected = whole_journal(&copy.client).await;
    assert!(journals.iter().all(|journal| *journal == expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_kept_current_then_killed_and_resumed_misses_nothing() {
    let live = live().await;
    let follow = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["backup", "--url", url, "--to", "current", "--follow"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let backup = live.root.join("current");
    let mut follower = follow(&live.url);
    let load = Load::start(&live.server.client, 3, "f");
    let started = Instant::now();
    while manifest_seq(&backup) < 500 {
        assert!(started.elapsed() < Duration::from_secs(60), "the backup keeps up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    let killed_at = manifest_seq(&backup);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut follower = follow(&live.url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop().await;
    let durable = live.server.client.health().await.unwrap().durable_seq;
    assert!(durable > killed_at, "writes went on while no backup ran");
    let started = Instant::now();
    while manifest_seq(&backup) < durable {
        assert!(started.elapsed() < Duration::from_secs(60), "the resumed backup catches up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The gauges follow the manifest by a moment.
    let started = Instant::now();
    while !reqwest::get(format!("{}/metrics", live.url)).await.unwrap().text().await.unwrap().contains("tally_backup_lag_seqs 0") {
        assert!(started.elapsed() < Duration::from_secs(10), "caught up, and the lag says so");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    assert!(run(&["verify", "--backup", backup.to_str().unwrap()]).starts_with("ok:"));
    let restored = live.directory.path().join("restored");
    run(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]);
    let copy = Server::start(&restored, free_port()).healthy().await;
    assert_eq!(whole_journal(&copy.client).await, whole_journal(&live.server.client).await, "every entry, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_is_named_and_a_backup_goes_only_where_it_belongs() {
    let live = live().await;
    Load::start(&live.server.client, 2, "d").stop().await;
    let load = Load::start(&live.server.client, 2, "e");
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop().await;
    let data = live.directory.path().join("data");
    assert!(refused(&["backup", "--data-dir", data.to_str().unwrap(), "--to", "/nonexistent-place"])
        .contains("in use by another Tally process"));
    assert!(live.server.terminate().success());

    let backup = live.directory.path().join("offline");
    let said = run(&["backup", "--data-dir", data.to_str().unwrap(), "--to", backup.to_str().unwrap()]);
    assert!(said.contains("backed up to seq"), "{said}");
    // More writes, then a backup into the same directory: it checks that the journal goes on
    // from the backup's last record and copies what is new.
    let again = Server::start(&data, free_port()).healthy().await;
    let load = Load::start(&again.client, 2, "g");
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop().await;
    assert!(again.terminate().success());
    let said = run(&["backup", "--data-dir", data.to_str().unwrap(), "--to", backup.to_str().unwrap()]);
    assert!(said.contains("backed up to seq") && !said.contains(": 0 files"), "{said}");
    assert!(run(&["verify", "--backup", backup.to_str().unwrap()]).starts_with("ok:"));

    // A byte changed in the middle of a snapshot a clean shutdown wrote.
    let snapshot = std::fs::read_dir(&backup)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_name().unwrap().to_str().unwrap().starts_with("snapshot-"))
        .expect("the stopped ledger's snapshots are in the backup");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&snapshot, &bytes).unwrap();
    let name = snapshot.file_name().unwrap().to_str().unwrap();
    let said = refused(&["verify", "--backup", backup.to_str().unwrap()]);
    assert!(said.contains(&format!("{name}: checksum mismatch")), "{said}");
    let restored = live.directory.path().join("restored");
    assert!(refused(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]).contains(name));
    assert!(!restored.exists(), "a refused restore leaves nothing behind");
    std::fs::remove_file(&snapshot).unwrap();
    assert!(refused(&["verify", "--backup", backup.to_str().unwrap()]).contains(name));

    // Not into a directory holding anything else, nor another ledger's backup.
    let stranger = live.directory.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("notes.txt"), "mine").unwrap();
    assert!(refused(&["backup", "--data-dir", data.to_str().unwrap(), "--to", stranger.to_str().unwrap()]).contains("notes.txt"));
    let other = live.directory.path().join("other");
    let other_server = Server::start(&other, free_port()).healthy().await;
    other_server.client.create_asset("OTH", 2).await.unwrap();
    assert!(other_server.terminate().success());
    let fresh = live.directory.path().join("fresh");
    run(&["backup", "--data-dir", data.to_str().unwrap(), "--to", fresh.to_str().unwrap()]);
    assert!(refused(&["backup", "--data-dir", other.to_str().unwrap(), "--to", fresh.to_str().unwrap()]).contains("another ledger's"));
    // The other way round: a longer journal that does not go on from the backup's last record.
    let small = live.directory.path().join("small");
    run(&["backup", "--data-dir", other.to_str().unwrap(), "--to", small.to_str().unwrap()]);
    let said = refused(&["backup", "--data-dir", data.to_str().unwrap(), "--to", small.to_str().unwrap()]);
    assert!(said.contains("does not continue from it"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_through_the_api_stays_under_the_backup_root() {
    let live = live().await;
    for to in ["../escape", "/tmp/x", "a/../../b", ""] {
        let (status, body) = post_backup(&live.url, serde_json::json!({ "to": to })).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("to")), "{to:?}: {body}");
    }
    let (status, body) = post_backup(&live.url, serde_json::json!({ "to": "x", "wait_ms": 10 })).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("after_seq")), "{body}");
    let (status, body) = post_backup(&live.url, serde_json::json!({ "to": "x", "after_seq": 10 })).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("wait_ms")), "{body}");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(&live.root).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), live.root.join("link")).unwrap();
    let (status, body) = post_backup(&live.url, serde_json::json!({ "to": "link/daily" })).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("to")), "{body}");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing written through the link");
    let (status, body) = post_backup(&live.url, serde_json::json!({ "to": "nested/daily" })).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("done")), "{body}");
    assert!(live.root.join("nested/daily/manifest.json").exists());

    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let _off = Server::start(directory.path(), port).healthy().await;
    let (status, body) = post_backup(&format!("http://127.0.0.1:{port}"), serde_json::json!({ "to": "x" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("backups_off")), "{body}");

    // A data directory under the backup root is out of bounds for backups.
    let port = free_port();
    let root = directory.path().join("root");
    let _under = Server::start_with(&root.join("data"), port, &["--backup-root", root.to_str().unwrap()]).healthy().await;
    let (status, body) = post_backup(&format!("http://127.0.0.1:{port}"), serde_json::json!({ "to": "data/inner" })).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("to")), "{body}");
}

async fn post_backup(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new().post(format!("{url}/v1/backups")).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}
