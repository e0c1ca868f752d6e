//! `tally keys`: make, list and revoke API keys, on a stopped embedded ledger (`--data-dir`,
//! taking its lock), on a PostgreSQL ledger (`--database-url`, running or not), or through a
//! running server (`--url`, with an admin key in `TALLY_API_KEY`).

use crate::remote;
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::sync::Arc;
use tally_api::{KeyInfo, KeyInput};
use tally_ledger::keys::{KeySpec, KeyStore, Scope};
use tally_server::auth::key_info;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Make a key and print it, alone on the first line: it cannot be shown again.
    Create {
        /// read (GETs), write (also accounts and transfers) or admin (also assets and keys).
        #[arg(long)]
        scope: Scope,
        /// Confine the key to accounts and transfers whose ids start with this (repeatable).
        #[arg(long = "accounts", value_name = "PREFIX")]
        accounts: Vec<String>,
        #[arg(long, default_value = "")]
        name: String,
        /// The key stops working after this long: 90d, 12h, 30m or 45s.
        #[arg(long, value_parser = parse_duration_ms, value_name = "DURATION")]
        expires: Option<u64>,
    },
    /// List the keys (never the keys themselves).
    List,
    /// Revoke a key by its id: refused everywhere within a second.
    Revoke { id: String },
}

#[derive(clap::Args)]
pub struct Target {
    /// The stopped embedded ledger whose keys to change.
    #[arg(long, default_value = "./tally-data", env = "TALLY_DATA_DIR", global = true)]
    pub data_dir: PathBuf,
    /// A PostgreSQL ledger instead.
    #[arg(long, env = "TALLY_DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// A running server instead, with an admin key in TALLY_API_KEY.
    #[arg(long, global = true)]
    pub url: Option<String>,
}

fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: expected a number and a unit, such as 90d"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => return Err(format!("{text:?}: the unit must be d, h, m or s")),
    };
    number.checked_mul(unit_ms).filter(|&ms| ms > 0).ok_or_else(|| format!("{text:?}: out of range"))
}

/// Prints `lines` in one write. A reader that stops early (`| head -n 1`, to take the key)
/// is not a failure: the key was made either way.
fn say(lines: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

fn describe(key: &KeyInfo) -> String {
    let accounts = if key.accounts.is_empty() { "all accounts".to_owned() } else { key.accounts.join(",") };
    let state = match (key.revoked_at_ms, key.expires_at_ms) {
        (Some(at), _) => format!("revoked at {at}"),
        (None, Some(at)) => format!("expires at {at}"),
        (None, None) => "no expiry".to_owned(),
    };
    format!("{}\t{}\t{}\t{}\t{:?}", key.id, key.scope, accounts, state, key.name)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let Target { data_dir, database_url, url } = args.target;
        if let Some(url) = url {
            return through_server(&url, args.action).await;
        }
        let (store, _lock): (Arc<dyn KeyStore>, _) = match database_url {
            Some(url) => (Arc::new(tally_pg::keys::PgKeys::connect(&url).await?), None),
            None => {
                let lock = tally_engine::engine::lock_directory(&data_dir)
                    .context("the ledger is running: change its keys with --url and an admin key in TALLY_API_KEY")?;
                (Arc::new(tally_engine::keys::FileKeys::open(&data_dir)?), Some(lock))
            }
        };
        match args.action {
            Action::Create { scope, accounts, name, expires } => {
                let now = tally_server::auth::now_ms();
                let spec = KeySpec { name, scope, prefixes: accounts, expires_at_ms: expires.map(|ms| now + ms) };
                let key = spec.generate(now).map_err(|(field, message)| anyhow::anyhow!("--{field}: {message}"))?;
                store.add(key.record.clone()).await?;
                say(&[key.text, describe(&key_info(&key.record))])?;
            }
            Action::List => {
                say(&store.keys().await?.iter().map(|key| describe(&key_info(key))).collect::<Vec<_>>())?;
            }
            Action::Revoke { id } => match store.revoke(&id, tally_server::auth::now_ms()).await? {
                Some(key) => say(&[describe(&key_info(&key))])?,
                None => bail!("no key {id}"),
            },
        }
        Ok(())
    })
}

async fn through_server(url: &str, action: Action) -> anyhow::Result<()> {
    let client = remote::client(url)?;
    match action {
        Action::Create { scope, accounts, name, expires } => {
            let input = KeyInput { scope: Some(scope.name().to_owned()), accounts, name: Some(name), expires_in_ms: expires };
            let key = client.create_key(&input).await?;
            say(&[key.key, describe(&key.info)])?;
        }
        Action::List => {
            say(&client.keys().await?.keys.iter().map(describe).collect::<Vec<_>>())?;
        }
        Action::Revoke { id } => say(&[describe(&client.revoke_key(&id).await?)])?,
    }
    Ok(())
}
