//! `tally bench`: durable transfers per second over the real HTTP path. It starts a server
//! (or targets one with `--url`), creates the accounts, encodes every request body before the
//! clock starts (so the load generator measures the server, not its own JSON encoding),
//! then sends batches from concurrent clients and reports throughput, batch latency and the
//! server's peak resident memory.

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_check::Random;
use tally_client::api::AccountInput;
use tally_client::Client;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Workload {
    /// Debit and credit accounts drawn uniformly.
    Uniform,
    /// `--hot-percent` of transfers touch one of `--hot-accounts` accounts.
    Hot,
}

#[derive(clap::Args)]
pub struct Args {
    /// Target a running server instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    pub accounts: usize,
    #[arg(long, default_value_t = 10_000_000)]
    pub transfers: usize,
    /// Transfers per request (at most 8,190).
    #[arg(long, default_value_t = 8_190)]
    pub batch: usize,
    /// Concurrent clients, each with one request in flight. Two keep the writer busy (one
    /// request is applied while the next is parsed); more only add queueing latency.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    #[arg(long, value_enum, default_value = "uniform")]
    pub workload: Workload,
    #[arg(long, default_value_t = 10)]
    pub hot_accounts: usize,
    #[arg(long, default_value_t = 90)]
    pub hot_percent: u64,
    /// Data directory for the server the bench starts (default: a new temporary directory,
    /// removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// After the run, stop the server and time restarts: from its snapshot, and from the
    /// journal alone.
    #[arg(long)]
    pub measure_restart: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threads of the load generator. One keeps up with the server and leaves it the rest.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// The store the started servers run on. `postgres` needs --database-url.
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "postgres"])]
    pub engine: String,
    #[command(flatten)]
    pub postgres: crate::serve::PostgresArgs,
    /// Servers to start on one PostgreSQL database; clients are spread over them.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

struct Server {
    child: Child,
    url: String,
    data_dir: PathBuf,
    temporary: Option<tempfile::TempDir>,
}

/// How the bench starts a server.
#[derive(Clone)]
enum Store {
    Embedded,
    Postgres { url: String, concurrency: String },
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn_server(data_dir: &std::path::Path, store: &Store) -> anyhow::Result<(Child, String)> {
    let port = free_port()?;
    let log = std::fs::File::create(data_dir.with_extension("log"))?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir);
    if let Store::Postgres { url, concurrency } = store {
        command.args(["--engine", "postgres", "--database-url", url, "--pg-concurrency", concurrency]);
    }
    let child = command.env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(log).spawn().context("starting the server")?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

async fn wait_healthy(client: &Client, within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if client.health().await.is_ok() {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the server did not become healthy within {within:?}")
}

fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn terminate(child: &mut Child) -> anyhow::Result<Duration> {
    let started = Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    let status = child.wait()?;
    if !status.success() {
        bail!("the server exited with {status}");
    }
    Ok(started.elapsed())
}

fn check_args(args: &Args) -> anyhow::Result<()> {
    if args.batch == 0 || args.batch > tally_core::limits::BATCH_EVENTS_MAX {
        bail!("--batch must be between 1 and {}", tally_core::limits::BATCH_EVENTS_MAX);
    }
    if args.accounts < 2 || args.hot_accounts < 2 || args.hot_accounts > args.accounts || args.hot_percent > 100 {
        bail!("need at least 2 accounts, 2 to --accounts hot accounts, and --hot-percent at most 100");
    }
    if args.engine == "embedded" && args.nodes != 1 {
        bail!("--nodes needs --engine postgres: an embedded ledger has one node");
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    check_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads.max(1)).enable_all().build()?;
    let store = match args.engine.as_str() {
        "postgres" => {
            let url = args
                .postgres
                .database_url
                .clone()
                .context("--engine postgres needs --database-url (bench/pg-compare.sh starts a private cluster and passes it)")?;
            // Migrate once, before the nodes start together.
            runtime.block_on(tally_pg::migrate(&url))?;
            Store::Postgres { url, concurrency: args.postgres.pg_concurrency.clone() }
        }
        _ => Store::Embedded,
    };
    let mut servers = Vec::new();
    if args.url.is_none() {
        for node in 0..args.nodes.max(1) {
            let (data_dir, temporary) = match &args.data_dir {
                Some(dir) if node == 0 => (dir.clone(), None),
                _ => {
                    let temporary = tempfile::Builder::new().prefix("tally-bench").tempdir()?;
                    (temporary.path().join("data"), Some(temporary))
                }
            };
            let (child, url) = spawn_server(&data_dir, &store)?;
            servers.push(Server { child, url, data_dir, temporary });
        }
    }
    let urls: Vec<String> = match &args.url {
        Some(url) => vec![url.clone()],
        None => servers.iter().map(|s| s.url.clone()).collect(),
    };
    let clients: Vec<Client> = urls.iter().map(|url| crate::remote::client(url)).collect::<anyhow::Result<_>>()?;
    let result = runtime.block_on(drive(&args, &clients));
    let peak_rss: Option<u64> = servers.iter().map(|s| peak_rss_bytes(s.child.id())).sum();
    let memory = runtime.block_on(clients[0].metrics()).ok().and_then(|text| memory_line(&memory_parts(&text)));
    let report = result.as_ref().ok();
    let mut stops = Vec::new();
    for server in &mut servers {
        stops.push(terminate(&mut server.child)?);
    }
    if let Some(report) = report {
        report.print(if servers.is_empty() { None } else { peak_rss });
    }
    if let Some(line) = memory {
        println!("{line}");
    }
    if let Some(stop) = stops.first() {
        println!(
            "clean shutdown (drain{}): {:.2} s",
            if matches!(store, Store::Embedded) { " + snapshot" } else { "" },
            stop.as_secs_f64()
        );
    }
    if let Some(server) = servers.first_mut() {
        if args.measure_restart {
            measure_restarts(&runtime, server, &store)?;
        }
    }
    for mut server in servers {
        if let Some(temporary) = server.temporary.take() {
            temporary.close()?;
        }
    }
    result.map(|_| ())
}

/// What the server said it holds, in MiB, total and by part; `None` if it said nothing (a
/// store in a database).
fn memory_line(parts: &[(String, f64)]) -> Option<String> {
    let mib = |bytes: f64| bytes / 1048576.0;
    let listed: Vec<String> = parts.iter().map(|(part, bytes)| format!("{part} {:.0}", mib(*bytes))).collect();
    let total: f64 = parts.iter().map(|(_, bytes)| bytes).sum();
    (!parts.is_empty()).then(|| format!("memory the server accounts for: {:.0} MiB ({} MiB)", mib(total), listed.join(", ")))
}

/// The `tally_memory_bytes` gauges of a metrics text, by part, in `MemoryUse`'s order.
fn memory_parts(text: &str) -> Vec<(String, f64)> {
    let mut parts: Vec<(String, f64)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("tally_memory_bytes{part=\"")?;
            let (part, value) = rest.split_once("\"} ")?;
            Some((part.to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    let order = tally_core::memory::MemoryUse::default().parts().map(|(name, _)| name);
    parts.sort_by_key(|(part, _)| order.iter().position(|name| name == part));
    parts
}

fn measure_restarts(runtime: &tokio::runtime::Runtime, server: &mut Server, store: &Store) -> anyhow::Result<()> {
    let restart = |label: &str| -> anyhow::Result<()> {
        let (mut child, url) = spawn_server(&server.data_dir, store)?;
        let took = runtime.block_on(wait_healthy(&crate::remote::client(&url)?, Duration::from_secs(600)))?;
        println!(
            "restart {label}: {:.2} s to healthy, peak RSS {:.0} MiB",
            took.as_secs_f64(),
            peak_rss_bytes(child.id()).unwrap_or(0) as f64 / 1048576.0
        );
        terminate(&mut child)?;
        Ok(())
    };
    restart("from the snapshot")?;
    for entry in std::fs::read_dir(&server.data_dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("snapshot-")) {
            std::fs::remove_file(path)?;
        }
    }
    restart("from the journal alone (snapshots removed)")
}

/// Just the result names of an answer, borrowed, so checking answers costs the load
/// generator little of the CPU it shares with the server.
#[derive(serde::Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    results: Vec<AnswerResult<'a>>,
}

#[derive(serde::Deserialize)]
struct AnswerResult<'a> {
    result: &'a str,
}

struct Report {
    transfers: usize,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    failed: usize,
    /// Requests sent again after a 503 (queue full, or too contended).
    retried: usize,
    args_line: String,
}

impl Report {
    fn print(&self, peak_rss: Option<u64>) {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        println!("{}", self.args_line);
        println!(
            "transfers: {} in {:.2} s = {:.0} transfers/s ({} not created, {} requests resent after a 503)",
            self.transfers,
            self.elapsed.as_secs_f64(),
            self.transfers as f64 / self.elapsed.as_secs_f64(),
            self.failed,
            self.retried
        );
        println!("batch latency: p50 {:.1} ms, p99 {:.1} ms, p100 {:.1} ms", ms(0.5), ms(0.99), self.latency_us.max() as f64 / 1000.0);
        match peak_rss {
            Some(bytes) => println!("server peak RSS: {:.0} MiB", bytes as f64 / 1048576.0),
            None => println!("server peak RSS: not measured (server not started by the bench)"),
        }
    }
}

async fn drive(args: &Args, clients: &[Client]) -> anyhow::Result<Report> {
    for client in clients {
        wait_healthy(client, Duration::from_secs(600)).await?;
    }
    let run = create_accounts(args, &clients[0]).await?;
    let bodies = encode_requests(args, &run);
    send_requests(args, clients, bodies).await
}

/// Creates this run's asset and its accounts, without a floor, and returns the prefix of the
/// run's ids.
async fn create_accounts(args: &Args, client: &Client) -> anyhow::Result<String> {
    let run = format!("b{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let asset = format!("{run}-X");
    client.create_asset(&asset, 2).await?;
    let account_id = |index: usize| format!("{run}-a{index}");
    for chunk in (0..args.accounts).collect::<Vec<_>>().chunks(tally_core::limits::BATCH_EVENTS_MAX) {
        let ids: Vec<String> = chunk.iter().map(|&i| account_id(i)).collect();
        let accounts = ids
            .iter()
            .map(|id| AccountInput {
                id: id.as_str().into(),
                asset: asset.as_str().into(),
                min_balance: Some(None),
                ..AccountInput::default()
            })
            .collect();
        let results = client.create_accounts(accounts).await?;
        if let Some(bad) = results.results.iter().find(|r| r.result != "created") {
            bail!("creating account {} failed: {}", bad.id, bad.result);
        }
    }
    Ok(run)
}

/// Encodes the body of every request, each with the number of transfers it carries, before
/// the clock starts: the bench measures the server, not its own JSON encoding.
fn encode_requests(args: &Args, run: &str) -> Vec<(usize, Vec<u8>)> {
    let batches = args.transfers.div_ceil(args.batch);
    let encoding = ProgressBar::new(batches as u64)
        .with_style(ProgressStyle::with_template("encoding requests [{bar:40}] {pos}/{len}").expect("valid template"));
    let mut random = Random::new(args.seed);
    let mut bodies = Vec::with_capacity(batches);
    let mut next_id = 0usize;
    for batch in 0..batches {
        let size = args.batch.min(args.transfers - batch * args.batch);
        let mut body = String::with_capacity(size * 80 + 16);
        body.push_str("{\"transfers\":[");
        for n in 0..size {
            let (debit, credit) = draw_accounts(args, &mut random);
            let amount = 1 + random.below(10_000);
            if n > 0 {
                body.push(',');
            }
            write!(
                body,
                "{{\"id\":\"{run}-t{next_id}\",\"debit\":\"{run}-a{debit}\",\"credit\":\"{run}-a{credit}\",\"amount\":\"{}.{:02}\"}}",
                amount / 100,
                amount % 100
            )
            .expect("writing to a String cannot fail");
            next_id += 1;
        }
        body.push_str("]}");
        bodies.push((size, body.into_bytes()));
        encoding.inc(1);
    }
    encoding.finish_and_clear();
    bodies
}

/// The indexes of a transfer's debit and credit accounts, drawn as the workload says; the
/// two differ.
fn draw_accounts(args: &Args, random: &mut Random) -> (usize, usize) {
    let pick = |random: &mut Random| match args.workload {
        Workload::Hot if random.below(100) < args.hot_percent as usize => random.below(args.hot_accounts),
        _ => random.below(args.accounts),
    };
    let debit = pick(random);
    let mut credit = pick(random);
    while credit == debit {
        credit = random.below(args.accounts);
    }
    (debit, credit)
}

/// Sends the encoded requests from `args.clients` concurrent clients, timed from the first
/// request to the last answer.
async fn send_requests(args: &Args, clients: &[Client], bodies: Vec<(usize, Vec<u8>)>) -> anyhow::Result<Report> {
    let queue = Arc::new(Queue {
        bodies: Mutex::new(bodies.into_iter()),
        sent: ProgressBar::new(args.transfers as u64)
            .with_style(ProgressStyle::with_template("transfers [{bar:40}] {pos}/{len} {per_sec}").expect("valid template")),
        failed: AtomicUsize::new(0),
        retried: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..args.clients {
        let client = clients[n % clients.len()].clone();
        tasks.push(tokio::spawn(queue.clone().drain(client)));
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
    for task in tasks {
        latency_us.add(task.await??)?;
    }
    let elapsed = started.elapsed();
    queue.sent.finish_and_clear();
    Ok(Report {
        transfers: args.transfers,
        elapsed,
        latency_us,
        failed: queue.failed.load(Ordering::Relaxed),
        retried: queue.retried.load(Ordering::Relaxed),
        args_line: args_line(args),
    })
}

/// The encoded requests not yet sent, and what the clients sending them have counted.
struct Queue {
    bodies: Mutex<std::vec::IntoIter<(usize, Vec<u8>)>>,
    sent: ProgressBar,
    failed: AtomicUsize,
    retried: AtomicUsize,
}

impl Queue {
    /// One client's loop: sends requests from the queue until it is empty, and returns their
    /// latencies.
    async fn drain(self: Arc<Self>, client: Client) -> anyhow::Result<Histogram<u64>> {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        loop {
            let Some((size, body)) = self.bodies.lock().expect("queue lock").next() else { break };
            let began = Instant::now();
            // A full queue, or a store that gave up on a contended batch, applied nothing:
            // the same request (same ids) is sent again.
            let results = loop {
                match client.create_transfers_raw(body.clone()).await {
                    Err(error) if matches!(error.code(), Some("queue_full" | "unavailable")) => {
                        self.retried.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await
                    }
                    other => break other,
                }
            }?;
            latency.saturating_record(began.elapsed().as_micros() as u64);
            let results: Answer<'_> = serde_json::from_slice(&results)?;
            let not_created = results.results.iter().filter(|r| r.result != "created").count();
            self.failed.fetch_add(not_created + size - results.results.len(), Ordering::Relaxed);
            self.sent.inc(size as u64);
        }
        Ok(latency)
    }
}

/// The line that opens the report: the store and the workload the bench ran.
fn args_line(args: &Args) -> String {
    let store = match args.engine.as_str() {
        "postgres" => format!("postgres ({}, {} node{})", args.postgres.pg_concurrency, args.nodes, if args.nodes == 1 { "" } else { "s" }),
        _ => "embedded".to_owned(),
    };
    format!(
        "tally bench on {store}: {} accounts, {} transfers, batches of {}, {} clients, {:?} workload{}",
        args.accounts,
        args.transfers,
        args.batch,
        args.clients,
        args.workload,
        match args.workload {
            Workload::Hot => format!(" ({}% on {} accounts)", args.hot_percent, args.hot_accounts),
            Workload::Uniform => String::new(),
        }
    )
}
