//! The schema, in its own PostgreSQL schema `tally`, and the versioned migrations that create
//! and upgrade it.
//!
//! Several nodes may start at once against one database. Each migration runs in one
//! transaction that first inserts its version into `tally.migrations`: the primary key makes
//! a second node's insert wait for the first node's transaction and then fail with a unique
//! violation, so exactly one node applies each migration and the others see it applied.
//! PostgreSQL runs DDL inside transactions, so a migration is all or nothing. No advisory
//! locks are needed.

use crate::{is_retryable, PgError};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// Every migration in order; a migration's version is its position plus one. Never edit a
/// released migration: add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tally.ledger (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq bigint NOT NULL,
    last_timestamp bigint NOT NULL
) WITH (fillfactor = 10);
INSERT INTO tally.ledger (singleton, last_seq, last_timestamp) VALUES (true, 0, 0);

CREATE TABLE tally.assets (
    code text COLLATE "C" PRIMARY KEY,
    scale smallint NOT NULL,
    seq bigint NOT NULL UNIQUE,
    timestamp bigint NOT NULL
);

CREATE TABLE tally.accounts (
    id text COLLATE "C" PRIMARY KEY,
    asset text COLLATE "C" NOT NULL,
    parent text COLLATE "C",
    -- The ancestors, nearest first: what a transfer must lock besides the account itself.
    lineage text[] COLLATE "C" NOT NULL,
    depth smallint NOT NULL,
    min_balance numeric(39, 0),
    max_balance numeric(39, 0),
    metadata text,
    created_min_balance numeric(39, 0),
    created_max_balance numeric(39, 0),
    created_metadata text,
    debits_posted numeric(39, 0) NOT NULL,
    credits_posted numeric(39, 0) NOT NULL,
    debits_pending numeric(39, 0) NOT NULL,
    credits_pending numeric(39, 0) NOT NULL,
    version bigint NOT NULL,
    created_seq bigint NOT NULL UNIQUE,
    timestamp bigint NOT NULL
-- Room on every page, so that the constant updates of totals stay heap-only (HOT): no index
-- entry per update, and index lookups do not wade through dead versions.
) WITH (fillfactor = 50);
CREATE INDEX accounts_by_parent ON tally.accounts (parent, id) WHERE parent IS NOT NULL;

-- The totals and version right after every change: balances as of any seq in one lookup.
-- Accounts are named by their creation seq here: a short fixed-width key for a table that
-- grows by two rows per transfer.
CREATE TABLE tally.account_changes (
    account_seq bigint NOT NULL,
    seq bigint NOT NULL,
    version bigint NOT NULL,
    debits_posted numeric(39, 0) NOT NULL,
    credits_posted numeric(39, 0) NOT NULL,
    debits_pending numeric(39, 0) NOT NULL,
    credits_pending numeric(39, 0) NOT NULL,
    PRIMARY KEY (account_seq, seq)
);

CREATE TABLE tally.settings_changes (
    seq bigint PRIMARY KEY,
    account text COLLATE "C" NOT NULL,
    timestamp bigint NOT NULL,
    min_balance numeric(39, 0),
    max_balance numeric(39, 0),
    metadata text
);
CREATE INDEX settings_changes_by_account ON tally.settings_changes (account, seq);

CREATE TABLE tally.transfers (
    id text COLLATE "C" PRIMARY KEY,
    seq bigint NOT NULL UNIQUE,
    timestamp bigint NOT NULL,
    fingerprint bigint NOT NULL,
    result smallint NOT NULL,
    kind smallint NOT NULL,
    debit text COLLATE "C",
    credit text COLLATE "C",
    amount numeric(39, 0) NOT NULL,
    related text COLLATE "C",
    hold_state smallint NOT NULL,
    expires_at bigint,
    metadata text
);
-- Open holds with a timeout, by when they expire.
CREATE INDEX open_holds_by_expiry ON tally.transfers (expires_at) WHERE expires_at IS NOT NULL AND hold_state = 0;

CREATE TABLE tally.expiries (
    seq bigint PRIMARY KEY,
    hold text COLLATE "C" NOT NULL,
    timestamp bigint NOT NULL
);

-- Every batch's requests as the embedded journal records them: replaying these rebuilds the
-- ledger exactly, which is how `tally verify` checks the tables and `tally export` dumps them.
CREATE TABLE tally.batches (
    last_seq bigint PRIMARY KEY,
    first_seq bigint NOT NULL,
    payload bytea NOT NULL
);
-- Stored as is: compressing every batch on the commit path costs more than the space saves.
ALTER TABLE tally.batches ALTER COLUMN payload SET STORAGE EXTERNAL;
"#,
    r#"
-- Closed accounts. A constant default makes these instant: no table is rewritten.
ALTER TABLE tally.accounts ADD COLUMN closed boolean NOT NULL DEFAULT false;
ALTER TABLE tally.settings_changes ADD COLUMN closed boolean NOT NULL DEFAULT false;

-- Holds renewed as leases: each renewal is a journal entry; the hold's row keeps its latest
-- expiry in transfers.expires_at.
CREATE TABLE tally.renewals (
    seq bigint PRIMARY KEY,
    hold text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    timestamp bigint NOT NULL
);
"#,
    r#"
-- API keys: only a digest of each key is kept. Revoked keys stay, marked.
CREATE TABLE tally.api_keys (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    scope text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    prefixes text[] NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint,
    revoked_at bigint,
    digest bytea NOT NULL CHECK (length(digest) = 32)
);
"#,
    r#"
-- Which API key made each journal entry: runs of seqs, a run's key holding from its
-- first seq until the next run begins (NULL: no key). Each batch starts a run.
CREATE TABLE tally.key_runs (
    first_seq bigint PRIMARY KEY,
    key text COLLATE "C"
);
"#,
    r#"
-- The roots of the account trees, in id order, for listings of roots.
CREATE INDEX accounts_roots ON tally.accounts (id) WHERE parent IS NULL;
"#,
];

/// The schema version this build runs on.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// How many times creating the bootstrap objects is retried when another node races it.
const BOOTSTRAP_ATTEMPTS: usize = 10;

/// Brings the schema up to `SCHEMA_VERSION`; safe to run from several nodes at once. Returns
/// how many migrations this call applied.
pub async fn migrate(client: &mut Client) -> Result<usize, PgError> {
    bootstrap(client).await?;
    let mut applied = 0;
    loop {
        let current: i32 = client.query_typed_one("SELECT coalesce(max(version), 0) FROM tally.migrations", &[]).await?.try_get(0)?;
        if current > SCHEMA_VERSION {
            return Err(PgError::SchemaTooNew { found: current, supported: SCHEMA_VERSION });
        }
        if current == SCHEMA_VERSION {
            return Ok(applied);
        }
        let version = current + 1;
        let transaction = client.transaction().await?;
        match transaction.execute("INSERT INTO tally.migrations (version) VALUES ($1)", &[&version]).await {
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
            other => other?,
        };
        transaction.batch_execute(MIGRATIONS[current as usize]).await?;
        transaction.commit().await?;
        tracing::info!(version, "applied schema migration");
        applied += 1;
    }
}

/// The schema and the migrations table. `IF NOT EXISTS` still races in PostgreSQL (two
/// creators can both pass the check), so a unique violation means another node won: retry.
async fn bootstrap(client: &Client) -> Result<(), PgError> {
    let statements = "CREATE SCHEMA IF NOT EXISTS tally;
        CREATE TABLE IF NOT EXISTS tally.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())";
    for attempt in 1..=BOOTSTRAP_ATTEMPTS {
        match client.batch_execute(statements).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < BOOTSTRAP_ATTEMPTS && (is_retryable(&error) || error.code() == Some(&SqlState::UNIQUE_VIOLATION)) => {
                tokio::time::sleep(std::time::Duration::from_millis(10 * attempt as u64)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    unreachable!("the last attempt returns")
}

/// Checks that the schema is exactly the version this build runs on.
pub async fn check_version(client: &Client) -> Result<(), PgError> {
    let found: i32 = match client.query_typed_one("SELECT coalesce(max(version), 0) FROM tally.migrations", &[]).await {
        Ok(row) => row.try_get(0)?,
        Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => 0,
        Err(error) => return Err(error.into()),
    };
    match found {
        found if found == SCHEMA_VERSION => Ok(()),
        found if found > SCHEMA_VERSION => Err(PgError::SchemaTooNew { found, supported: SCHEMA_VERSION }),
        found => Err(PgError::SchemaTooOld { found, supported: SCHEMA_VERSION }),
    }
}
