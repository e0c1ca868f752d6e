//! The bank workload and its checker, against any running Tally (`tally check`).
//!
//! Concurrent clients move money between accounts (uniform and hot), place holds that are
//! posted, voided or left to expire, send linked chains (some built to fail), spend from an
//! account tree whose root bound binds its teams, change bounds at runtime, and resend
//! requests with the same ids (some while the first attempt is still in flight). Every
//! request and every answer is kept, "unknown" (the connection died) included. Optionally the
//! server is killed and restarted on a schedule; unknown outcomes are resolved afterwards by
//! sending the very same request again.
//!
//! The checker then reads the journal feed and the accounts and requires: a journal without
//! gaps or duplicates; every transfer in it sent by this run, exactly once; every answer
//! consistent with it (a retry hears the original outcome); balances equal to the journal
//! folded from the start, equal to the account's own transfer listing, and equal at past
//! seqs (`as_of`); money conserved; no account outside its bounds. At checkpoints during the
//! run the same balance checks run against a consistent cut (`as_of` a recent seq).

use crate::random::Random;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_client::api::{AccountInput, AccountPatchInput, JournalItem, TransferInput};
use tally_client::{Client, ClientError};
use tally_core::Decimal;

#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// One or more nodes of the same ledger; clients are spread over them, the checker reads
    /// from the first.
    /// A client for each node, set up with its address, key and trusted authorities.
    pub nodes: Vec<Client>,
    pub clients: usize,
    /// Stop after this long, or after `ops` requests, whichever comes first.
    pub duration: Duration,
    pub ops: u64,
    /// Shell commands that kill the server (with SIGKILL) and start it again.
    pub crash_cmd: Option<String>,
    pub restart_cmd: Option<String>,
    pub crash_every: Duration,
    pub checkpoint_every: Duration,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub requests: u64,
    pub events_by_result: BTreeMap<String, u64>,
    pub unknown_outcomes: u64,
    pub retries_in_flight: u64,
    pub crashes: u64,
    pub checkpoints: u64,
    pub journal_entries: u64,
    pub elapsed: Duration,
    pub violations: Vec<String>,
}

const SCALE: u8 = 2;
const TEAMS: [&str; 3] = ["org:design", "org:infra", "org:infra:ci"];

/// One request as sent, and what was heard back.
#[derive(Clone)]
struct Sent {
    transfers: Vec<TransferInput<'static>>,
    /// Per event, the results heard (one list per answer; retries add more).
    answers: Vec<Vec<String>>,
    unknown: bool,
}

#[derive(Default)]
struct History {
    requests: Vec<Sent>,
    /// Holds that may still be open, for posts and voids to pick from.
    holds: Vec<(String, u64)>,
}

struct Run {
    prefix: String,
    accounts: Vec<String>,
    parents: HashMap<String, Option<String>>,
    history: Mutex<History>,
    report: Mutex<CheckReport>,
    next_id: AtomicU64,
}

fn minor(amount: &str) -> i128 {
    Decimal::parse(amount)
        .ok()
        .and_then(|d| d.to_minor(SCALE).ok())
        .unwrap_or_else(|| panic!("the server answered an invalid amount {amount:?}"))
}

fn cents(value: i128) -> String {
    tally_core::format_minor(value, SCALE)
}

impl Run {
    fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn next(&self, kind: &str) -> String {
        format!("{}-{kind}{}", self.prefix, self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The account and its ancestors, the account first.
    fn lineage(&self, account: &str) -> Vec<String> {
        let mut lineage = vec![account.to_owned()];
        while let Some(Some(parent)) = self.parents.get(lineage.last().expect("not empty")) {
            lineage.push(parent.clone());
        }
        lineage
    }

    fn violation(&self, what: String) {
        self.report.lock().expect("report lock").violations.push(what);
    }
}

fn transfer(id: String, debit: &str, credit: &str, amount: i128) -> TransferInput<'static> {
    TransferInput {
        id: id.into(),
        debit: Some(debit.to_owned().into()),
        credit: Some(credit.to_owned().into()),
        amount: Some(cents(amount).into()),
        ..TransferInput::default()
    }
}

async fn setup(client: &Client, seed: u64) -> anyhow::Result<Run> {
    let prefix = format!("k{seed:x}x{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() % 1_000_000_000);
    let asset = format!("{prefix}-USD");
    anyhow::ensure!(client.create_asset(&asset, SCALE).await?.results[0].result == "created", "could not create the asset");
    let mut parents = HashMap::new();
    let mut inputs = Vec::new();
    let mut add = |name: &str, parent: Option<&str>, min: Option<&str>, max: Option<&str>| {
        let id = format!("{prefix}-{name}");
        let parent = parent.map(|p| format!("{prefix}-{p}"));
        parents.insert(id.clone(), parent.clone());
        inputs.push(AccountInput {
            id: id.into(),
            asset: asset.clone().into(),
            parent: parent.map(Into::into),
            min_balance: Some(min.map(|m| m.to_owned().into())),
            max_balance: max.map(|m| m.to_owned().into()),
            ..AccountInput::default()
        });
    };
    add("world", None, None, None);
    for n in 0..8 {
        add(&format!("user{n}"), None, Some("0"), None);
    }
    add("hot", None, Some("0"), None);
    add("capped", None, Some("0"), Some("2500.00"));
    add("org", None, Some("-800.00"), None);
    add("org:design", Some("org"), None, None);
    add("org:infra", Some("org"), None, None);
    add("org:infra:ci", Some("org:infra"), Some("-300.00"), None);
    let results = client.create_accounts(inputs).await?;
    anyhow::ensure!(results.results.iter().all(|r| r.result == "created"), "could not create the accounts");
    let accounts: Vec<String> = results.results.iter().map(|r| r.id.clone()).collect();
    let run = Run { prefix, accounts, parents, history: Mutex::default(), report: Mutex::default(), next_id: AtomicU64::new(0) };
    let funding = (0..8).map(|n| transfer(run.next("fund"), &run.id("world"), &run.id(&format!("user{n}")), 100_000)).chain([transfer(
        run.next("fund"),
        &run.id("world"),
        &run.id("hot"),
        100_000,
    )]);
    let funding: Vec<_> = funding.collect();
    run.history.lock().expect("history lock").requests.push(Sent { transfers: funding.clone(), answers: Vec::new(), unknown: true });
    Ok(run)
}

/// Builds one request of the workload.
fn request(run: &Run, random: &mut Random) -> Vec<TransferInput<'static>> {
    let requests = Requests { run, users: (0..8).map(|n| run.id(&format!("user{n}"))).collect() };
    match random.below(100) {
        0..=39 => requests.plain_transfer(random),
        40..=54 => requests.hold(random),
        55..=69 => requests.resolve_hold(random),
        70..=79 => requests.linked_chain(random),
        80..=94 => requests.team_spend(random),
        _ => Vec::new(), // a bound change, sent by the caller
    }
}

/// The kinds of request the workload sends, drawn over this run's accounts.
struct Requests<'a> {
    run: &'a Run,
    users: Vec<String>,
}

impl Requests<'_> {
    /// An account of the flat part of the ledger, the hot account drawn most often.
    fn account(&self, random: &mut Random) -> String {
        match random.below(10) {
            0..=2 => self.run.id("hot"),
            3 => self.run.id("capped"),
            4 => self.run.id("world"),
            _ => random.pick(&self.users).clone(),
        }
    }

    /// A debit and a different credit account.
    fn pair(&self, random: &mut Random) -> (String, String) {
        let debit = self.account(random);
        let mut credit = self.account(random);
        while credit == debit {
            credit = self.account(random);
        }
        (debit, credit)
    }

    /// One plain transfer.
    fn plain_transfer(&self, random: &mut Random) -> Vec<TransferInput<'static>> {
        let (debit, credit) = self.pair(random);
        vec![transfer(self.run.next("t"), &debit, &credit, draw_amount(random))]
    }

    /// A hold, with a timeout half of the time, remembered so that a later request posts or voids it.
    fn hold(&self, random: &mut Random) -> Vec<TransferInput<'static>> {
        let (debit, credit) = self.pair(random);
        let mut hold = transfer(self.run.next("h"), &debit, &credit, draw_amount(random));
        hold.pending = true;
        hold.timeout_ms = random.chance(500).then(|| 50 + random.below(1_500) as u64);
        self.run.history.lock().expect("history lock").holds.push((hold.id.to_string(), random.next_u64()));
        vec![hold]
    }

    /// A post (partial some of the time) or a void of a remembered hold, or a small plain
    /// transfer when no hold is left.
    fn resolve_hold(&self, random: &mut Random) -> Vec<TransferInput<'static>> {
        let hold = {
            let mut history = self.run.history.lock().expect("history lock");
            if history.holds.is_empty() {
                None
            } else {
                let index = random.below(history.holds.len());
                Some(history.holds.swap_remove(index).0)
            }
        };
        let Some(hold) = hold else { return vec![transfer(self.run.next("t"), &self.run.id("world"), &self.users[0], 100)] };
        let mut resolve = TransferInput { id: self.run.next("r").into(), ..TransferInput::default() };
        if random.chance(600) {
            resolve.post = Some(hold.into());
            resolve.amount = random.chance(300).then(|| cents(1 + random.below(5_000) as i128).into());
        } else {
            resolve.void = Some(hold.into());
        }
        vec![resolve]
    }

    /// A linked chain of two or three transfers, some of them built to fail.
    fn linked_chain(&self, random: &mut Random) -> Vec<TransferInput<'static>> {
        let length = 2 + random.below(2);
        let mut chain: Vec<_> = (0..length)
            .map(|_| {
                let (debit, credit) = self.pair(random);
                transfer(self.run.next("c"), &debit, &credit, draw_amount(random))
            })
            .collect();
        if random.chance(300) {
            // Built to fail: the last link overdraws a bounded account.
            let last = chain.last_mut().expect("chains are not empty");
            last.debit = Some(self.users[random.below(8)].clone().into());
            last.amount = Some(cents(100_000_000).into());
        }
        for link in &mut chain[..length - 1] {
            link.linked = true;
        }
        chain
    }

    /// A team of the account tree spends to the world or, sometimes, moves money to another team.
    fn team_spend(&self, random: &mut Random) -> Vec<TransferInput<'static>> {
        let run = self.run;
        let team = run.id(random.pick::<&str>(&TEAMS));
        if random.chance(300) {
            let other = run.id(random.pick::<&str>(&TEAMS));
            let other = if other == team { run.id("org:design") } else { other };
            if other == team {
                return vec![transfer(run.next("s"), &team, &run.id("world"), draw_amount(random))];
            }
            vec![transfer(run.next("m"), &team, &other, draw_amount(random))]
        } else {
            vec![transfer(run.next("s"), &team, &run.id("world"), draw_amount(random))]
        }
    }
}

/// The amount of a drawn transfer, in cents.
fn draw_amount(random: &mut Random) -> i128 {
    1 + random.below(20_000) as i128
}

fn record(run: &Run, transfers: &[TransferInput<'static>]) -> usize {
    let mut history = run.history.lock().expect("history lock");
    history.requests.push(Sent { transfers: transfers.to_vec(), answers: Vec::new(), unknown: false });
    history.requests.len() - 1
}

/// Sends request `index` (again) and records the answer.
async fn deliver(run: &Run, client: &Client, index: usize, transfers: Vec<TransferInput<'static>>) -> bool {
    let answer = client.create_transfers(transfers).await;
    let mut history = run.history.lock().expect("history lock");
    let sent = &mut history.requests[index];
    match answer {
        Ok(results) => {
            sent.answers.push(results.results.into_iter().map(|r| r.result).collect());
            sent.unknown = false;
            true
        }
        Err(error) if error.is_unknown_outcome() => {
            if sent.answers.is_empty() {
                sent.unknown = true;
            }
            false
        }
        Err(ClientError::Api { status: 503, .. }) => {
            // Refused whole, nothing applied: resend it like an unknown one.
            if sent.answers.is_empty() {
                sent.unknown = true;
            }
            false
        }
        Err(error) => {
            drop(history);
            run.violation(format!("request {index} was refused: {error}"));
            true
        }
    }
}

async fn change_bounds(run: &Run, client: &Client, random: &mut Random) {
    let (account, patch) = if random.chance(500) {
        let user = run.id(&format!("user{}", random.below(8)));
        (user, AccountPatchInput { min_balance: Some(Some(cents(-(random.below(10_000) as i128)).into())), ..AccountPatchInput::default() })
    } else {
        (
            run.id("capped"),
            AccountPatchInput {
                max_balance: Some(Some(cents(100_000 + random.below(300_000) as i128).into())),
                ..AccountPatchInput::default()
            },
        )
    };
    match client.update_account(&account, &patch).await {
        Ok(results) if ["updated", "exceeds_min_balance", "exceeds_max_balance"].contains(&results.results[0].result.as_str()) => {}
        Ok(results) => run.violation(format!("a bound change on {account} answered {}", results.results[0].result)),
        Err(error) if error.is_unknown_outcome() || error.code() == Some("queue_full") || error.code() == Some("unavailable") => {}
        Err(error) => run.violation(format!("a bound change on {account} was refused: {error}")),
    }
}

async fn worker(run: Arc<Run>, client: Client, seed: u64, deadline: Instant, ops: Arc<AtomicU64>, limit: u64) {
    let mut random = Random::new(seed);
    while Instant::now() < deadline && ops.fetch_add(1, Ordering::Relaxed) < limit {
        let transfers = request(&run, &mut random);
        if transfers.is_empty() {
            change_bounds(&run, &client, &mut random).await;
            continue;
        }
        let index = record(&run, &transfers);
        let delivered = if random.chance(50) {
            // The same request twice at once: at most one may apply it.
            run.report.lock().expect("report lock").retries_in_flight += 1;
            let (first, second) = tokio::join!(deliver(&run, &client, index, transfers.clone()), deliver(&run, &client, index, transfers));
            first || second
        } else {
            let delivered = deliver(&run, &client, index, transfers.clone()).await;
            if delivered && random.chance(40) {
                // A deliberate retry of an answered request.
                deliver(&run, &client, index, transfers).await;
            }
            delivered
        };
        if !delivered {
            // The server is down or refusing: back off a little.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Resends every request whose outcome is unknown until each has a definite answer.
async fn resolve_unknown(run: &Run, client: &Client, within: Duration) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut resolved = 0;
    loop {
        let pending: Vec<(usize, Vec<TransferInput<'static>>)> = {
            let history = run.history.lock().expect("history lock");
            history.requests.iter().enumerate().filter(|(_, s)| s.unknown).map(|(i, s)| (i, s.transfers.clone())).collect()
        };
        if pending.is_empty() {
            return Ok(resolved);
        }
        anyhow::ensure!(started.elapsed() < within, "{} requests still have no definite answer", pending.len());
        for (index, transfers) in pending {
            if deliver(run, client, index, transfers).await {
                resolved += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn wait_healthy(client: &Client, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while client.health().await.is_err() {
        anyhow::ensure!(started.elapsed() < within, "the server did not come back within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn shell(command: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("sh").arg("-c").arg(command).status()?;
    anyhow::ensure!(status.success(), "`{command}` exited with {status}");
    Ok(())
}

/// Balances folded from the journal: per account, debits and credits posted and pending.
#[derive(Default)]
struct Ledger {
    totals: HashMap<String, [i128; 4]>,
    holds: HashMap<String, (String, String, i128)>,
    last_seq: u64,
}

impl Ledger {
    fn shift(&mut self, run: &Run, debit: &str, credit: &str, posted: i128, pending: i128) {
        let debit_side = run.lineage(debit);
        let credit_side = run.lineage(credit);
        for account in debit_side.iter().filter(|a| !credit_side.contains(a)) {
            let totals = self.totals.entry(account.clone()).or_default();
            totals[0] += posted;
            totals[2] += pending;
        }
        for account in credit_side.iter().filter(|a| !debit_side.contains(a)) {
            let totals = self.totals.entry(account.clone()).or_default();
            totals[1] += posted;
            totals[3] += pending;
        }
    }

    fn apply(&mut self, run: &Run, entry: &JournalItem) {
        match entry {
            JournalItem::Transfer { transfer }
                if transfer.result == "created" && run.parents.contains_key(transfer.debit.as_deref().unwrap_or("")) =>
            {
                let (debit, credit) = (transfer.debit.clone().unwrap_or_default(), transfer.credit.clone().unwrap_or_default());
                let amount = minor(transfer.amount.as_deref().unwrap_or("0"));
                if transfer.pending {
                    self.shift(run, &debit, &credit, 0, amount);
                    self.holds.insert(transfer.id.clone(), (debit, credit, amount));
                } else if let Some(hold) = transfer.post.as_ref().or(transfer.void.as_ref()) {
                    let held = self.holds.get(hold).map_or(0, |h| h.2);
                    let posted = if transfer.post.is_some() { amount } else { 0 };
                    self.shift(run, &debit, &credit, posted, -held);
                } else {
                    self.shift(run, &debit, &credit, amount, 0);
                }
            }
            JournalItem::HoldExpired { pending_id, .. } => {
                if let Some((debit, credit, held)) = self.holds.get(pending_id).cloned() {
                    self.shift(run, &debit, &credit, 0, -held);
                }
            }
            _ => {}
        }
    }
}

/// Reads the journal from `after`, checking it has no gaps, and returns its entries.
async fn read_journal(run: &Run, client: &Client, after: u64) -> anyhow::Result<Vec<JournalItem>> {
    let mut entries = Vec::new();
    let mut next = after;
    loop {
        let page = client.journal(next, 1_000, 0).await?;
        for entry in &page.entries {
            if entry.seq() != next + 1 {
                run.violation(format!("the journal jumps from seq {next} to {}", entry.seq()));
            }
            next = entry.seq();
        }
        let done = page.entries.len() < 1_000;
        entries.extend(page.entries);
        if done {
            return Ok(entries);
        }
    }
}

/// Compares every account as of `seq` with the folded journal, and checks conservation and bounds.
async fn compare_balances(run: &Run, client: &Client, ledger: &Ledger, seq: u64) -> anyhow::Result<()> {
    let mut roots = [0i128; 4];
    for account in &run.accounts {
        let Some(view) = client.account_as_of(account, seq).await? else {
            run.violation(format!("account {account} is missing as of seq {seq}"));
            continue;
        };
        let got = [minor(&view.debits_posted), minor(&view.credits_posted), minor(&view.debits_pending), minor(&view.credits_pending)];
        let expected = ledger.totals.get(account).copied().unwrap_or_default();
        if got != expected {
            run.violation(format!("as of seq {seq}, {account} holds {got:?} (debits, credits posted; debits, credits pending) but the journal gives {expected:?}"));
        }
        let (balance, available) = (minor(&view.balance), minor(&view.available));
        if view.min_balance.as_deref().is_some_and(|min| available < minor(min)) {
            run.violation(format!(
                "as of seq {seq}, {account} is below its floor: available {} < {}",
                cents(available),
                view.min_balance.clone().unwrap_or_default()
            ));
        }
        if view.max_balance.as_deref().is_some_and(|max| balance + got[3] > minor(max)) {
            run.violation(format!("as of seq {seq}, {account} is above its ceiling"));
        }
        if run.parents.get(account).is_some_and(Option::is_none) {
            for (sum, value) in roots.iter_mut().zip(got) {
                *sum += value;
            }
        }
    }
    if roots[0] != roots[1] || roots[2] != roots[3] {
        run.violation(format!(
            "money is not conserved as of seq {seq}: debits {} credits {} posted, {} {} pending",
            cents(roots[0]),
            cents(roots[1]),
            cents(roots[2]),
            cents(roots[3])
        ));
    }
    Ok(())
}

/// Each account's balance from its own transfer listing.
async fn check_listings(run: &Run, client: &Client) -> anyhow::Result<()> {
    for account in &run.accounts {
        let subtree = |id: &str| run.lineage(id).iter().any(|a| a == account);
        let (mut balance, mut pending_debits, mut after_seq) = (0i128, 0i128, 0);
        loop {
            let page = client.account_transfers(account, after_seq, 1_000).await?;
            for transfer in &page.transfers {
                let amount = minor(transfer.amount.as_deref().unwrap_or("0"));
                let (debit, credit) = (transfer.debit.as_deref().unwrap_or(""), transfer.credit.as_deref().unwrap_or(""));
                let sign = if subtree(debit) && !subtree(credit) { -1 } else { 1 };
                if transfer.pending {
                    if transfer.state == "pending" && sign < 0 {
                        pending_debits += amount;
                    }
                } else if transfer.void.is_none() {
                    balance += sign * amount;
                }
            }
            match page.next_after_seq {
                Some(next) => after_seq = next,
                None => break,
            }
        }
        let view = client.account(account).await?.ok_or_else(|| anyhow::anyhow!("{account} vanished"))?;
        if minor(&view.balance) != balance || minor(&view.debits_pending) != pending_debits {
            run.violation(format!(
                "{account}: balance {} and pending debits {}, but its listed transfers sum to {} and {}",
                view.balance,
                view.debits_pending,
                cents(balance),
                cents(pending_debits)
            ));
        }
    }
    Ok(())
}

/// Every answer heard agrees with the journal; every transfer in the journal was sent, once.
fn check_answers(run: &Run, journal: &[JournalItem]) {
    let history = run.history.lock().expect("history lock");
    let mut decided: HashMap<&str, &str> = HashMap::new();
    for entry in journal {
        if let JournalItem::Transfer { transfer } = entry {
            if transfer.id.starts_with(&format!("{}-", run.prefix)) && decided.insert(&transfer.id, &transfer.result).is_some() {
                run.violation(format!("transfer {} appears twice in the journal", transfer.id));
            }
        }
    }
    let sent: BTreeSet<&str> = history.requests.iter().flat_map(|s| s.transfers.iter().map(|t| t.id.as_ref())).collect();
    for id in decided.keys().filter(|id| !sent.contains(*id)) {
        run.violation(format!("transfer {id} is in the journal but was never sent"));
    }
    for (number, request) in history.requests.iter().enumerate() {
        for answer in &request.answers {
            for (transfer, result) in request.transfers.iter().zip(answer) {
                let id = transfer.id.as_ref();
                let expected = decided.get(id).copied();
                let heard = if result == "exists" { "created" } else { result.as_str() };
                if expected != Some(heard) {
                    run.violation(format!("request {number}: {id} was answered {result}, but the journal says {expected:?}"));
                }
            }
        }
        if request.answers.is_empty() {
            run.violation(format!("request {number} never got a definite answer"));
        }
    }
}

pub async fn check(options: CheckOptions) -> anyhow::Result<CheckReport> {
    anyhow::ensure!(!options.nodes.is_empty(), "at least one url");
    let clients = connect(&options).await?;
    let client = clients[0].clone();
    let started = Instant::now();
    let start_seq = client.health().await?.durable_seq;
    let run = Arc::new(setup(&client, options.seed).await?);
    resolve_unknown(&run, &client, Duration::from_secs(60)).await?;
    run_workload(&options, &run, &clients, started, start_seq).await?;
    let resolved = resolve_unknown(&run, &client, Duration::from_secs(120)).await?;
    // Let every hold with a timeout expire, so the final state is settled.
    tokio::time::sleep(Duration::from_millis(2_000)).await;

    let journal = read_journal(&run, &client, start_seq).await?;
    check_settled(&run, &client, &journal, start_seq, options.seed).await?;
    Ok(final_report(&run, resolved, &journal, started))
}

/// A client for each node, each node waited for until it is healthy.
async fn connect(options: &CheckOptions) -> anyhow::Result<Vec<Client>> {
    let clients = options.nodes.clone();
    for client in &clients {
        wait_healthy(client, Duration::from_secs(60)).await?;
    }
    Ok(clients)
}

/// Runs the workers until the deadline or the request limit, meanwhile crashing the server
/// and checking balances at checkpoints on schedule.
async fn run_workload(options: &CheckOptions, run: &Arc<Run>, clients: &[Client], started: Instant, start_seq: u64) -> anyhow::Result<()> {
    let client = &clients[0];
    let deadline = Instant::now() + options.duration;
    let ops = Arc::new(AtomicU64::new(0));
    let progress = indicatif::ProgressBar::new(options.duration.as_secs()).with_style(
        indicatif::ProgressStyle::with_template("{spinner} bank workload [{bar:30}] {pos}/{len} s {msg}").expect("valid template"),
    );
    let workers: Vec<_> = (0..options.clients)
        .map(|n| {
            let client = clients[n % clients.len()].clone();
            tokio::spawn(worker(run.clone(), client, options.seed.wrapping_add(n as u64 + 1), deadline, ops.clone(), options.ops))
        })
        .collect();
    let mut next_crash = Instant::now() + options.crash_every;
    let mut next_checkpoint = Instant::now() + options.checkpoint_every;
    let mut ledger = Ledger { last_seq: start_seq, ..Ledger::default() };
    while workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.set_position(started.elapsed().as_secs().min(options.duration.as_secs()));
        progress.set_message(format!(
            "{} requests, {} violations",
            ops.load(Ordering::Relaxed),
            run.report.lock().expect("report lock").violations.len()
        ));
        if let (Some(crash), Some(restart)) = (&options.crash_cmd, &options.restart_cmd) {
            if Instant::now() >= next_crash && Instant::now() < deadline {
                crash_and_restart(run, client, crash, restart).await?;
                next_crash = Instant::now() + options.crash_every;
            }
        }
        if Instant::now() >= next_checkpoint {
            // A consistent cut while the load goes on: everything as of one seq.
            checkpoint(run, client, &mut ledger).await?;
            next_checkpoint = Instant::now() + options.checkpoint_every;
        }
    }
    progress.finish_and_clear();
    for worker in workers {
        worker.await?;
    }
    Ok(())
}

/// Kills the server, starts it again and waits until it is healthy.
async fn crash_and_restart(run: &Run, client: &Client, crash: &str, restart: &str) -> anyhow::Result<()> {
    shell(crash)?;
    shell(restart)?;
    wait_healthy(client, Duration::from_secs(120)).await?;
    run.report.lock().expect("report lock").crashes += 1;
    Ok(())
}

/// Folds the journal written since the last checkpoint into `ledger`, and compares every
/// account with it as of the newest seq.
async fn checkpoint(run: &Run, client: &Client, ledger: &mut Ledger) -> anyhow::Result<()> {
    let entries = read_journal(run, client, ledger.last_seq).await?;
    for entry in &entries {
        ledger.apply(run, entry);
    }
    ledger.last_seq = entries.last().map_or(ledger.last_seq, JournalItem::seq);
    compare_balances(run, client, ledger, ledger.last_seq).await?;
    run.report.lock().expect("report lock").checkpoints += 1;
    Ok(())
}

/// Checks the settled ledger against the whole journal of the run: balances at its end and
/// at sampled past seqs, each account's transfer listing, and every answer heard.
async fn check_settled(run: &Run, client: &Client, journal: &[JournalItem], start_seq: u64, seed: u64) -> anyhow::Result<()> {
    let (full, past_cuts) = fold_journal(run, journal, start_seq);
    compare_balances(run, client, &full, full.last_seq).await?;
    // Past balances: a sample of seqs across the run.
    let mut random = Random::new(seed ^ 0xa5);
    for _ in 0..12.min(past_cuts.len()) {
        let past = &past_cuts[random.below(past_cuts.len())];
        compare_balances(run, client, past, past.last_seq).await?;
    }
    check_listings(run, client).await?;
    check_answers(run, journal);
    Ok(())
}

/// Folds the run's journal from `start_seq`, returning the ledger at its end and the totals
/// as of each seq it can be compared at (holds left out: comparing reads only the totals).
fn fold_journal(run: &Run, journal: &[JournalItem], start_seq: u64) -> (Ledger, Vec<Ledger>) {
    let mut full = Ledger { last_seq: start_seq, ..Ledger::default() };
    let mut past_cuts = Vec::new();
    let accounts_created = run.accounts.len();
    let mut created = 0;
    for entry in journal {
        full.apply(run, entry);
        if let JournalItem::AccountCreated { id, .. } = entry {
            created += usize::from(run.parents.contains_key(id));
        }
        // Only seqs after all of this run's accounts exist are compared as of.
        if created == accounts_created && past_cuts.len() < 200_000 {
            past_cuts.push(Ledger { totals: full.totals.clone(), holds: HashMap::new(), last_seq: entry.seq() });
        }
    }
    full.last_seq = journal.last().map_or(start_seq, JournalItem::seq);
    (full, past_cuts)
}

/// The report of the run: its counters, plus the requests sent and the results first heard.
fn final_report(run: &Run, resolved: u64, journal: &[JournalItem], started: Instant) -> CheckReport {
    let mut report = std::mem::take(&mut *run.report.lock().expect("report lock"));
    let history = run.history.lock().expect("history lock");
    report.requests = history.requests.len() as u64;
    report.unknown_outcomes = resolved;
    report.journal_entries = journal.len() as u64;
    for request in &history.requests {
        if let Some(answer) = request.answers.first() {
            for result in answer {
                *report.events_by_result.entry(result.clone()).or_default() += 1;
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}
