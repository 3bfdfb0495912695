//! The `[database]` and `[ledger]` settings: the connection pool, how long a caller waits
//! for the database, and where usage records go while it is unreachable.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `database.pool_size` | `TOKENHUB_DATABASE_POOL_SIZE` | `16` connections per instance on PostgreSQL (at least 3: the ledger writer and the start-up lock each hold one); SQLite uses 5 |
//! | `database.acquire_timeout_ms` | `TOKENHUB_DATABASE_ACQUIRE_TIMEOUT_MS` | `1500`: a caller waits this long for a connection, then fails (the management API answers 503) |
//! | `database.statement_timeout_ms` | `TOKENHUB_DATABASE_STATEMENT_TIMEOUT_MS` | `30000`: PostgreSQL cancels a statement running longer (0: no limit) |
//! | `ledger.spill_path` | `TOKENHUB_LEDGER_SPILL_PATH` | none: `<database file>.spill` on SQLite, `tokenhub-ledger-<port>.spill` in the working directory on PostgreSQL |
//! | `ledger.spill_max_bytes` | `TOKENHUB_LEDGER_SPILL_MAX_BYTES` | `268435456` (256 MiB): beyond it paid requests are refused with 503 until the database takes the backlog |

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, set};

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub pool_size: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

/// The smallest pool on PostgreSQL: the ledger writer keeps one connection, the start-up
/// lock holds one, and the start-up work needs a third.
pub const MIN_POOL_SIZE: u32 = 3;

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            pool_size: 16,
            acquire_timeout_ms: 1_500,
            statement_timeout_ms: 30_000,
        }
    }
}

impl DatabaseSettings {
    pub(super) fn apply_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        set(var, "TOKENHUB_DATABASE_POOL_SIZE", &mut self.pool_size)?;
        set(
            var,
            "TOKENHUB_DATABASE_ACQUIRE_TIMEOUT_MS",
            &mut self.acquire_timeout_ms,
        )?;
        set(
            var,
            "TOKENHUB_DATABASE_STATEMENT_TIMEOUT_MS",
            &mut self.statement_timeout_ms,
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.pool_size < MIN_POOL_SIZE {
            return Err(ConfigError::Invalid {
                name: "database.pool_size".into(),
                message: format!("must be at least {MIN_POOL_SIZE}"),
            });
        }
        if self.acquire_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                name: "database.acquire_timeout_ms".into(),
                message: "must be at least 1 ms".into(),
            });
        }
        Ok(())
    }

    pub fn pool(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            size: self.pool_size,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSettings {
    pub spill_path: Option<PathBuf>,
    pub spill_max_bytes: u64,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            spill_path: None,
            spill_max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl LedgerSettings {
    pub(super) fn apply_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(path) = var("TOKENHUB_LEDGER_SPILL_PATH").filter(|p| !p.trim().is_empty()) {
            self.spill_path = Some(PathBuf::from(path.trim()));
        }
        set(
            var,
            "TOKENHUB_LEDGER_SPILL_MAX_BYTES",
            &mut self.spill_max_bytes,
        )
    }

    /// The spill file this instance uses: the configured one, or one derived from the
    /// database (SQLite) or the listening port (PostgreSQL, where several instances may
    /// share a host and each needs its own file).
    pub fn spill_file(&self, database_url: &str, port: u16) -> PathBuf {
        if let Some(path) = &self.spill_path {
            return path.clone();
        }
        match crate::store::sqlite_file(database_url) {
            Some(path) => PathBuf::from(format!("{path}.spill")),
            None => PathBuf::from(format!("tokenhub-ledger-{port}.spill")),
        }
    }
}
