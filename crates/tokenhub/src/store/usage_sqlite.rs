//! The ledger writer's own SQLite connection: a batch is one call on a blocking thread,
//! its statements run there back to back.
//!
//! Through sqlx every statement is a hop to SQLite's worker thread and back, about ten
//! per batch (begin, inserts, rollups, debits, commit), each a futex round trip between
//! two threads: at 1,000 requests a second that was 97 µs of CPU a request, preempting
//! the serving threads on a two-core machine (bench/RESULTS.md, addenda 23 and 24).
//! Here the batch is handed over once. The statements are the same texts as the
//! PostgreSQL path's, in the same order (`usage.rs::batch_statements`), bound by the same
//! code (`Bind`), and prepared once per connection (the statement cache).

use std::path::Path;

use rusqlite::{CachedStatement, Connection, TransactionBehavior};

use super::rollups::BatchRollups;
use super::usage::{Bind, Debits, UsageRecord, batch_statements};
use super::{Backend, SQLITE_PRAGMAS};

/// Statement texts kept prepared: the insert and rollup sizes a batch uses, with room.
const STATEMENT_CACHE: usize = 64;

/// What the ledger's connection sets beyond the pool's pragmas.
///
/// A batch's multi-row statements each keep a statement journal (the pages they change,
/// to undo the statement alone). Past 64 KiB SQLite spills it to a temp file, created and
/// unlinked on every batch: at saturation, seven calls to make and remove the file and
/// about 50 writes into it a batch (bench/RESULTS.md, addendum 26). The writer never
/// undoes a statement alone (any error rolls the whole batch back) and a batch bounds the
/// journal, so on this connection it stays in memory; the pool's large sorts keep their
/// temp files.
const LEDGER_PRAGMAS: [&str; 1] = ["PRAGMA temp_store = MEMORY"];

pub(super) struct LedgerConnection {
    connection: Connection,
}

impl LedgerConnection {
    /// Opens the database file with the pool's pragmas (WAL, busy timeout, `FULL`
    /// synchronous commits, foreign keys) and its own; the migrations have already run.
    pub(super) fn open(path: &Path) -> rusqlite::Result<LedgerConnection> {
        let connection = Connection::open(path)?;
        for pragma in SQLITE_PRAGMAS.iter().chain(&LEDGER_PRAGMAS) {
            // `journal_mode` answers with a row; the others with none.
            connection
                .query_row(pragma, [], |_| Ok(()))
                .or_else(|error| match error {
                    rusqlite::Error::QueryReturnedNoRows => Ok(()),
                    error => Err(error),
                })?;
        }
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(LedgerConnection { connection })
    }

    /// Writes the records, their rollups and their debits in one transaction that takes
    /// the write lock up front (`BEGIN IMMEDIATE`, as `Store::begin_write`): all or none.
    pub(super) fn write(
        &mut self,
        records: &[UsageRecord],
        rollups: &BatchRollups,
        debits: &Debits,
    ) -> rusqlite::Result<()> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for statement in batch_statements(records, rollups, debits) {
            let mut prepared = tx.prepare_cached(statement.sql(Backend::Sqlite))?;
            statement.bind(Binder::new(&mut prepared)).execute()?;
        }
        tx.commit()
    }
}

/// Binds values to a prepared statement one position after another; the first error is
/// kept and returned by `execute`, so binding chains as it does on a sqlx query.
struct Binder<'s, 'c> {
    statement: &'s mut CachedStatement<'c>,
    next: usize,
    error: Option<rusqlite::Error>,
}

impl<'s, 'c> Binder<'s, 'c> {
    fn new(statement: &'s mut CachedStatement<'c>) -> Self {
        Binder {
            statement,
            next: 1,
            error: None,
        }
    }

    fn value(mut self, value: impl rusqlite::ToSql) -> Self {
        if self.error.is_none() {
            self.error = self.statement.raw_bind_parameter(self.next, value).err();
        }
        self.next += 1;
        self
    }

    fn execute(self) -> rusqlite::Result<()> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let parameters = self.statement.parameter_count();
        if self.next - 1 != parameters {
            return Err(rusqlite::Error::InvalidParameterCount(
                self.next - 1,
                parameters,
            ));
        }
        self.statement.raw_execute().map(drop)
    }
}

impl<'q> Bind<'q> for Binder<'_, '_> {
    fn int(self, value: i64) -> Self {
        self.value(value)
    }
    fn optional_int(self, value: Option<i64>) -> Self {
        self.value(value)
    }
    fn text(self, value: &'q str) -> Self {
        self.value(value)
    }
    fn optional_text(self, value: Option<&'q str>) -> Self {
        self.value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_connection_keeps_statement_journals_in_memory_and_commits_durably() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = LedgerConnection::open(&dir.path().join("ledger.db")).unwrap();
        let pragma = |name: &str| -> i64 {
            let sql = format!("PRAGMA {name}");
            ledger
                .connection
                .query_row(&sql, [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(pragma("temp_store"), 2, "MEMORY");
        assert_eq!(pragma("synchronous"), 2, "FULL");
    }

    #[test]
    fn a_statement_bound_with_too_few_or_too_many_values_does_not_run() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (a INTEGER NOT NULL, b TEXT)")
            .unwrap();
        let mut insert = connection
            .prepare_cached("INSERT INTO t (a, b) VALUES (?, ?)")
            .unwrap();
        // Unbound parameters would silently be NULL.
        let too_few = Binder::new(&mut insert).int(1).execute().unwrap_err();
        assert!(
            matches!(too_few, rusqlite::Error::InvalidParameterCount(1, 2)),
            "{too_few}"
        );
        let too_many = Binder::new(&mut insert).int(1).text("x").int(2).execute();
        assert!(too_many.is_err());
        Binder::new(&mut insert)
            .int(7)
            .optional_text(None)
            .execute()
            .unwrap();
        drop(insert);
        let rows: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM t WHERE a = 7 AND b IS NULL",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(rows, 1);
    }
}
