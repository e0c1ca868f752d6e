//! Starting and stopping real `tally serve` processes on private ports.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_client::Client;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Server {
    pub child: Child,
    pub client: Client,
    /// The server's stderr, shown when it stops with a failure.
    log: std::path::PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, port: u16) -> Server {
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_tally")), data_dir, port)
    }

    /// A server started with more arguments to `tally serve`.
    pub fn start_with(data_dir: &Path, port: u16, arguments: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
        command.args(["serve"]).args(arguments);
        Server::spawn_serving(command, data_dir, port)
    }

    /// A server whose process may open at most `descriptors` files and sockets.
    pub fn start_with_descriptors(data_dir: &Path, port: u16, descriptors: u32) -> Server {
        let mut command = Command::new("sh");
        command.args(["-c", &format!("ulimit -n {descriptors} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_tally")]);
        Server::spawn(command, data_dir, port)
    }

    fn spawn(mut command: Command, data_dir: &Path, port: u16) -> Server {
        command.arg("serve");
        Server::spawn_serving(command, data_dir, port)
    }

    fn spawn_serving(mut command: Command, data_dir: &Path, port: u16) -> Server {
        let log = std::env::temp_dir().join(format!("tally-test-server-{}-{port}.log", std::process::id()));
        let child = command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Server { child, client: Client::new(&format!("http://127.0.0.1:{port}")), log }
    }

    pub async fn healthy(self) -> Server {
        let client = self.client.clone();
        self.healthy_through(client).await
    }

    /// Waits until the server answers `key` (health needs a key once a ledger has keys).
    pub async fn healthy_with(self, key: &str) -> Server {
        let client = self.client.clone().with_token(key);
        self.healthy_through(client).await
    }

    pub async fn healthy_through(self, client: Client) -> Server {
        let started = Instant::now();
        while client.health().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(120), "the server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stops the server with SIGTERM; a failed exit prints its log to the test's output.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        if !status.success() {
            eprintln!("the server exited with {status}; its log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub fn tally(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tally")).args(args).output().unwrap()
}

/// Every journal entry a server holds up to `until_seq`, in order, as JSON.
pub async fn journal_until(client: &Client, until_seq: u64) -> Vec<serde_json::Value> {
    let (mut entries, mut after) = (Vec::new(), 0);
    while after < until_seq {
        let page = client.journal(after, 1_000, 0).await.unwrap();
        if page.entries.is_empty() {
            break;
        }
        entries.extend(page.entries.iter().map(|entry| serde_json::to_value(entry).unwrap()));
        after = page.next_after_seq;
    }
    entries.retain(|entry| entry["seq"].as_u64().expect("every entry has a seq") <= until_seq);
    entries
}

/// Every journal entry a server holds, in order, as JSON.
pub async fn whole_journal(client: &Client) -> Vec<serde_json::Value> {
    journal_until(client, u64::MAX).await
}
