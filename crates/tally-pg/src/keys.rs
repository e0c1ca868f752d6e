//! The PostgreSQL store's API keys, in `tally.api_keys`: every node reads the same table, so
//! a key made or revoked through any node (or by `tally keys --database-url`) holds on all of
//! them within `KEYS_REFRESH_MS`.

use crate::{rows, PgError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tally_core::limits::KEYS_MAX;
use tally_ledger::keys::{KeyRecord, KeyStore, Scope};
use tally_ledger::{LedgerError, LedgerFuture};
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

const COLUMNS: &str = "id, name, scope, prefixes, created_at, expires_at, revoked_at, digest";

#[derive(Clone)]
pub struct PgKeys {
    pool: Pool,
}

fn unavailable(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("the key table: {error}"))
}

impl PgKeys {
    /// Keys of the ledger at `url`, over one connection of their own (so busy readers never
    /// hold up a revocation), once its schema is current.
    pub async fn connect(url: &str) -> Result<PgKeys, PgError> {
        let client = crate::connect(url).await?;
        crate::schema::check_version(&client).await?;
        let manager =
            Manager::from_config(crate::connection_config(url)?, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(1).build().map_err(|e| PgError::Pool(e.to_string()))?;
        Ok(PgKeys { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        self.pool.get().await.map_err(unavailable)
    }
}

fn record(row: &tokio_postgres::Row) -> Result<KeyRecord, LedgerError> {
    let optional = |column: &str| -> Result<Option<u64>, LedgerError> {
        row.try_get::<_, Option<i64>>(column).map_err(unavailable)?.map(|v| rows::unsigned(v, column).map_err(unavailable)).transpose()
    };
    let digest: Vec<u8> = row.try_get("digest").map_err(unavailable)?;
    Ok(KeyRecord {
        id: row.try_get("id").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        scope: row.try_get::<_, String>("scope").map_err(unavailable)?.parse::<Scope>().map_err(unavailable)?,
        prefixes: row.try_get("prefixes").map_err(unavailable)?,
        created_at_ms: rows::unsigned(row.try_get("created_at").map_err(unavailable)?, "created_at").map_err(unavailable)?,
        expires_at_ms: optional("expires_at")?,
        revoked_at_ms: optional("revoked_at")?,
        digest: digest.try_into().map_err(|_| unavailable("a digest is not 32 bytes"))?,
    })
}

impl KeyStore for PgKeys {
    fn keys(&self) -> LedgerFuture<'_, Vec<KeyRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            let sql = format!("SELECT {COLUMNS} FROM tally.api_keys ORDER BY created_at, id LIMIT {KEYS_MAX}");
            client.query_typed(&sql, &[]).await.map_err(unavailable)?.iter().map(record).collect()
        })
    }

    fn add(&self, key: KeyRecord) -> LedgerFuture<'_, ()> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(unavailable)?;
            // Nodes adding keys at once take turns, so the count below stays true.
            transaction.batch_execute("LOCK TABLE tally.api_keys IN SHARE ROW EXCLUSIVE MODE").await.map_err(unavailable)?;
            let count: i64 = transaction.query_one("SELECT count(*) FROM tally.api_keys", &[]).await.map_err(unavailable)?.get(0);
            if count >= KEYS_MAX as i64 {
                return Err(LedgerError::Unavailable(format!("a ledger holds at most {KEYS_MAX} keys")));
            }
            let big = |v: u64| rows::big(v);
            transaction
                .execute(
                    &format!("INSERT INTO tally.api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
                    &[
                        &key.id,
                        &key.name,
                        &key.scope.name(),
                        &key.prefixes,
                        &big(key.created_at_ms),
                        &key.expires_at_ms.map(big),
                        &key.revoked_at_ms.map(big),
                        &key.digest.as_slice(),
                    ],
                )
                .await
                .map_err(unavailable)?;
            transaction.commit().await.map_err(unavailable)
        })
    }

    fn revoke(&self, id: &str, at_ms: u64) -> LedgerFuture<'_, Option<KeyRecord>> {
        let id = id.to_owned();
        Box::pin(async move {
            let client = self.client().await?;
            let sql = format!("UPDATE tally.api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING {COLUMNS}");
            client
                .query_typed_opt(&sql, &[(&id, Type::TEXT), (&rows::big(at_ms), Type::INT8)])
                .await
                .map_err(unavailable)?
                .as_ref()
                .map(record)
                .transpose()
        })
    }
}
