//! Storage: the database is the source of truth for users, keys, catalogue, ledger and usage.
//!
//! One code path serves SQLite (embedded default) and PostgreSQL through `sqlx::Any`:
//! every statement here is written in the SQL both accept, with `$N` placeholders in
//! order. Each backend has its own embedded migrations (`migrations/sqlite`,
//! `migrations/postgres`) because DDL differs. Money is nano-USD `i64`, time is Unix ms.
//!
//! Nothing on the request hot path calls this module: the relay reads in-memory
//! snapshots and hands usage to the batched ledger writer.

mod audit;
mod auth;
mod catalog;
mod catalog_admin;
mod changes;
mod email;
mod fallbacks;
mod instances;
mod key_search;
mod keys;
mod ledger_query;
mod limits;
mod links;
mod money_versions;
mod reconcile;
mod redemptions;
mod responses;
mod rollups;
mod sealing;
pub mod secret_box;
mod sessions;
mod site_settings;

mod sql;
pub mod sqlite_memory;
mod startup;
mod usage;
mod usage_query;
mod usage_sqlite;
mod user_admin;
mod users;
mod verification;

use std::path::Path;

pub use audit::AuditEntry;
pub use auth::{KeyAuth, UserAuth};
pub use catalog::{ChannelLimits, ChannelRow, ModelRow, UnreadableModel};
pub use changes::{Change, ChangeRow, SeedSource};
pub use instances::PeerInstance;
pub use key_search::{KeyQuery, ListedKey};
pub use keys::{KeyRow, KeyUpdate, NewKey};
pub use ledger_query::LedgerEntry;
pub use limits::{KeyLimits, UserLimits};
pub use links::MailedLink;
pub use money_versions::Versioned;
pub use reconcile::{BilledRecord, KeyMoney, MoneyAudit, UserMoney};
pub use redemptions::{NewCodes, RedeemRefusal, RedemptionRow};
pub use responses::{NewStoredResponse, StoredResponse};
pub use sessions::{AdminTokenRow, SessionRow};
pub use usage::{BatchAttempt, UsageRecord, UsageWriter, Written};
pub use usage_query::{
    CappedCount, GroupBy, StatusFilter, TopAggregates, UsageAggregate, UsageFilter,
};
pub use user_admin::{UserDetail, UserQuery};
pub use users::{Credit, LedgerKind, UserRow};

pub use secret_box::SecretKey;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
pub use startup::StartupLock;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the ledger writer's own SQLite connection (`usage_sqlite.rs`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create database directory {0}: {1}")]
    CreateDir(String, std::io::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached in time (no connection within the acquire
    /// timeout, a connection lost, a statement cancelled by its timeout or a shutdown).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// An amount that would leave the storable range (see `ledger::money::MAX_AMOUNT`).
    #[error("{0}")]
    OutOfRange(String),
    /// The secret key is missing, malformed, or not the one the database was sealed with.
    #[error("{0}")]
    SecretKey(String),
}

impl StoreError {
    /// Whether the database refused the data itself (a constraint, a value out of range),
    /// so the same statement cannot succeed later. Anything else (a timeout, a lost
    /// connection, a busy or locked database) may pass on another attempt.
    pub fn is_refusal(&self) -> bool {
        match self {
            StoreError::OutOfRange(_) => true,
            StoreError::Database(sqlx::Error::Database(error)) => refuses_the_data(error.as_ref()),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => {
                sqlite_refuses(error.extended_code)
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the database is unreachable or overloaded rather than refusing anything:
    /// callers answer 503 and may retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(error) => database_unavailable(error),
            _ => false,
        }
    }
}

fn database_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            // 08: connection exception; 57: operator intervention (a statement timeout,
            // a shutdown); 53: insufficient resources (too many connections).
            .is_some_and(|pg| ["08", "57", "53"].iter().any(|c| pg.code().starts_with(c))),
        _ => false,
    }
}

fn refuses_the_data(error: &dyn sqlx::error::DatabaseError) -> bool {
    if error.kind() != sqlx::error::ErrorKind::Other {
        return true; // unique, foreign key, not null, check
    }
    if let Some(sqlite) = error.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        let code = sqlx::error::DatabaseError::code(sqlite).and_then(|code| code.parse().ok());
        return code.is_some_and(sqlite_refuses);
    }
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // SQLSTATE class 22: data exception (bigint out of range); 23: integrity constraint.
        return postgres.code().starts_with("22") || postgres.code().starts_with("23");
    }
    false
}

/// Whether a SQLite result code refuses the data: primary codes (the low byte) 18
/// TOOBIG, 19 CONSTRAINT (a trigger's RAISE(ABORT) among them), 20 MISMATCH.
fn sqlite_refuses(code: i32) -> bool {
    matches!(code & 0xff, 18..=20)
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Seals upstream channel keys on write, opens them on load (`sealing.rs`).
    secrets: secret_box::SecretBox,
    /// SQLite: the database file, which the ledger writer opens a connection of its own to.
    file: Option<std::path::PathBuf>,
    /// SQLite: the file instances lock while they start (`startup.rs`).
    lock_file: Option<std::path::PathBuf>,
}

/// Every SQLite connection's settings, pooled or the ledger writer's own. WAL lets the
/// CLI write while the server reads; the busy timeout makes concurrent writers wait
/// instead of failing with "database is locked"; `synchronous = FULL`, not NORMAL: a
/// committed credit must survive a power loss (docs/operations.md, "Durability of the
/// SQLite file").
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
];

/// The connection pool's size and how long callers wait on the database.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Connections on PostgreSQL (SQLite always uses 5).
    pub size: u32,
    /// How long a caller waits for a connection (including connecting) before failing.
    pub acquire_timeout: std::time::Duration,
    /// PostgreSQL's `statement_timeout` for every connection; zero for none.
    pub statement_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        let database = crate::config::DatabaseSettings::default();
        database.pool()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects (creating a SQLite file and its directory if needed), runs migrations,
    /// checks that `secret_key` is the database's and seals channel keys still stored
    /// plain. Without `secret_key`, a SQLite database uses (or creates) the key file next
    /// to it; PostgreSQL, shared by instances that must agree on one key, refuses to start.
    pub async fn connect(url: &str, secret_key: Option<&SecretKey>) -> StoreResult<Store> {
        Self::connect_with(url, secret_key, PoolSettings::default()).await
    }

    /// `connect` with the pool's size and timeouts. Migrations and the key check run
    /// under the start-up lock, so instances starting together take turns.
    pub async fn connect_with(
        url: &str,
        secret_key: Option<&SecretKey>,
        settings: PoolSettings,
    ) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let key = match secret_key {
            Some(key) => key.clone(),
            None => default_secret_key(backend, &url)?,
        };
        let options: AnyConnectOptions = url.parse()?;
        let statement_timeout = settings.statement_timeout;
        let pool = AnyPoolOptions::new()
            // SQLite: one writer at a time anyway; the ledger writer has a connection of
            // its own besides these (`usage_sqlite.rs`).
            .max_connections(if backend == Backend::Sqlite {
                5
            } else {
                settings.size
            })
            .acquire_timeout(settings.acquire_timeout)
            // A connection to a local file does not go stale the way a network one does;
            // the ping would be one more hop to SQLite's thread on every acquire.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(pragma).await?;
                        }
                    } else if !statement_timeout.is_zero() {
                        let set =
                            format!("SET statement_timeout = {}", statement_timeout.as_millis());
                        conn.execute(set.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Store {
            pool,
            backend,
            secrets: secret_box::SecretBox::new(&key),
            file: sqlite_file(&url).map(Into::into),
            lock_file: sqlite_file(&url).map(|path| format!("{path}.startup-lock").into()),
        };
        let lock = store.startup_lock().await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&store.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&store.pool).await?,
        }
        store.check_secret_key().await?;
        store.seal_plain_channel_keys().await?;
        drop(lock);
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails at once
    /// with "database is locked" when another writer committed in between, instead of
    /// waiting for the busy timeout.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// The SQLite database file a URL names, if it names one: not `:memory:`, nor a path
/// with `mode=memory` (an in-memory database by that name, not the file).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!path.is_empty() && !in_memory).then_some(path)
}

/// The database file of a `sqlite:` URL (none for PostgreSQL or an in-memory database).
pub fn sqlite_file(url: &str) -> Option<&str> {
    url.starts_with("sqlite:")
        .then(|| sqlite_path(url))
        .flatten()
}

/// The key when `TOKENHUB_SECRET_KEY` is not set.
fn default_secret_key(backend: Backend, url: &str) -> StoreResult<SecretKey> {
    match backend {
        Backend::Postgres => Err(StoreError::SecretKey(
            "TOKENHUB_SECRET_KEY is not set: a PostgreSQL database needs it (the same on every \
             instance) to seal upstream channel keys; generate one with `openssl rand -hex 32`"
                .into(),
        )),
        Backend::Sqlite => {
            let path = sqlite_path(url).ok_or_else(|| StoreError::UnsupportedUrl(url.into()))?;
            secret_box::load_or_create_key_file(&secret_box::key_file_for(Path::new(path)))
                .map_err(StoreError::SecretKey)
        }
    }
}

/// Makes `sqlite://relative/path.db` create its file and directory on first use. An
/// in-memory database is refused: the ledger writer writes through a connection of its
/// own, which must open the same database.
fn prepare_sqlite_url(url: &str) -> StoreResult<String> {
    let Some(path) = sqlite_path(url) else {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    };
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::CreateDir(dir.display().to_string(), e))?;
    }
    Ok(if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    })
}

pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn only_a_refusal_of_the_data_is_a_refusal() {
        assert!(StoreError::OutOfRange("too much".into()).is_refusal());
        let transient = [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
            sqlx::Error::WorkerCrashed,
        ];
        for error in transient {
            assert!(!StoreError::Database(error).is_refusal());
        }
    }

    #[test]
    fn the_ledger_connections_sqlite_errors_are_refusals_only_for_the_data() {
        let failure = |code: i32| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        // CONSTRAINT_UNIQUE, CONSTRAINT_TRIGGER (RAISE(ABORT)), TOOBIG, MISMATCH.
        for code in [2067, 1811, 18, 20] {
            assert!(failure(code).is_refusal(), "{code}");
        }
        // BUSY, LOCKED, IOERR_WRITE, FULL, CANTOPEN: another attempt may pass.
        for code in [5, 6, 778, 13, 14] {
            assert!(!failure(code).is_refusal(), "{code}");
        }
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_the_urls_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let named = format!("sqlite://{}/t.db?mode=memory", dir.path().display());
        for url in ["sqlite::memory:", "sqlite://:memory:", named.as_str()] {
            let error = super::Store::connect(url, None).await.unwrap_err();
            assert!(
                matches!(error, StoreError::UnsupportedUrl(_)),
                "{url}: {error}"
            );
            assert!(error.to_string().contains("sqlite://PATH"), "{error}");
        }
        let file = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        assert!(super::Store::connect(&file, None).await.is_ok());
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{NewKey, Store};
    use crate::ledger::money::Nanos;

    /// A fresh SQLite store in a temporary directory that lives as long as the returned guard.
    pub async fn temp_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db", dir.path().display());
        (Store::connect(&url, None).await.expect("connect"), dir)
    }

    /// A user "u" holding `balance` and one key of it with `quota`: (user id, key id).
    pub async fn user_with_key(store: &Store, balance: Nanos, quota: Nanos) -> (i64, i64) {
        let user = store
            .create_user("u", "user", None, balance)
            .await
            .expect("create user");
        let key = NewKey {
            user_id: user.id,
            key_hash: "h".into(),
            key_prefix: "p".into(),
            quota: Some(quota),
            ..Default::default()
        };
        let key = store.create_key(&key).await.expect("create key");
        (user.id, key.id)
    }
}
