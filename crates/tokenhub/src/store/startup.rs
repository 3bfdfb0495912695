//! The start-up lock: instances started together on one database take turns at the
//! work that writes shared rows on start (migrations, the root account, the built-in
//! catalogue, the configuration file, the system users). Each step is also idempotent
//! on its own; the lock makes their combination race-free (two instances applying two
//! versions of a configuration file one statement at a time would interleave).
//!
//! PostgreSQL: a session advisory lock held by one pooled connection, closed (never
//! returned to the pool) when the guard drops, so a crashed instance releases it with
//! its connection. SQLite: an exclusive lock on a file next to the database, released
//! when the file closes (also at a crash). An in-memory database needs none.

use std::path::PathBuf;

use sqlx::Any;
use sqlx::pool::PoolConnection;

use super::{Backend, Store, StoreError, StoreResult};

/// "TokenHub" in ASCII: the advisory lock key the start-up work holds.
const STARTUP_LOCK_KEY: i64 = 0x546F_6B65_6E48_7562;

/// Held while an instance does its start-up writes; dropping it releases the lock.
pub struct StartupLock {
    _connection: Option<PoolConnection<Any>>,
    _file: Option<std::fs::File>,
}

impl Store {
    /// Waits for the start-up lock (other instances starting on the same database).
    pub async fn startup_lock(&self) -> StoreResult<StartupLock> {
        let mut lock = StartupLock {
            _connection: None,
            _file: None,
        };
        match self.backend {
            Backend::Postgres => {
                let mut connection = self.pool.acquire().await?;
                // Closing the connection is what releases the lock, on every path.
                connection.close_on_drop();
                // Waiting for another instance's start-up is not a slow statement.
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *connection)
                    .await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(STARTUP_LOCK_KEY)
                    .execute(&mut *connection)
                    .await?;
                lock._connection = Some(connection);
            }
            Backend::Sqlite => {
                if let Some(path) = self.lock_file.clone() {
                    lock._file = Some(lock_file(path).await?);
                }
            }
        }
        Ok(lock)
    }
}

async fn lock_file(path: PathBuf) -> StoreResult<std::fs::File> {
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Database(sqlx::Error::Io(std::io::Error::other(e))))?;
    locked.map_err(|e| StoreError::Database(sqlx::Error::Io(e)))
}
