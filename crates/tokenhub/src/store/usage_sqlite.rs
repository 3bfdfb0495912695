//! The ledger writer's own SQLite connection: a batch is one call on a blocking thread,
//! its statements run there back to back.
//!
//! Through sqlx every statement is a hop to SQLite's worker thread and back, about ten
//! per batch (begin, inserts, rollups, debits, commit), each a futex round trip between
//! two threads: at 1,000 requests a second that was 97 µs of CPU a request, preempting
//! the serving threads on a two-core machine (bench/RESULTS.md, addenda 23 and 24).
//! Here the batch is handed over once. The statements are the same texts as the
//! PostgreSQL path's, in the same order (`usage.rs::batch_statements`), bound by the same
//! code (`Bind`), and prepared once per connection.

use std::collections::hash_map::Entry;
use std::path::Path;

use rusqlite::{Connection, Statement, Transaction, TransactionBehavior};

use super::rollups::BatchRollups;
use super::usage::{Bind, Debits, UsageRecord, batch_statements};
use super::{Backend, SQLITE_PRAGMAS};
use crate::fast_map::FastMap;

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

/// The batch statements prepared so far, by the address and length of their text.
///
/// rusqlite's own cache (`prepare_cached`) keys a statement by its text, so every batch
/// hashed each statement's whole text twice (to take it, to give it back), and a
/// rollup's upsert runs to a few KiB: 4,000 instructions a request at saturation, 24,000
/// a batch of one (bench/RESULTS.md, addendum 27). Every text is a `&'static str` from a
/// fixed set (`usage.rs::batch_statements`): static text is never freed, so no other
/// text can come to lie where it does, and the length tells apart two texts the
/// compiler might lay out from one address (one the start of the other). The map holds
/// at most that set.
type Prepared<'c> = FastMap<(usize, usize), Statement<'c>>;

self_cell::self_cell!(
    /// The connection, and the statements prepared on it (which borrow it).
    struct PreparedConnection {
        owner: Connection,
        #[not_covariant]
        dependent: Prepared,
    }
);

pub(super) struct LedgerConnection {
    connection: PreparedConnection,
}

// SAFETY: a `Statement` is not `Send` because it borrows its `Connection`, whose
// `RefCell` must not be touched from two threads at once. Here the connection and every
// statement borrowing it move together, owned by this value alone, so no two threads
// ever hold them; SQLite itself allows a connection and its statements to be used from
// one thread after another (rusqlite opens connections only in a thread-safe mode, which
// is what makes `Connection: Send`).
unsafe impl Send for LedgerConnection {}

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
        Ok(LedgerConnection {
            connection: PreparedConnection::new(connection, |_| FastMap::default()),
        })
    }

    /// Writes the records, their rollups and their debits in one transaction that takes
    /// the write lock up front (`BEGIN IMMEDIATE`, as `Store::begin_write`): all or none.
    pub(super) fn write(
        &mut self,
        records: &[UsageRecord],
        rollups: &BatchRollups,
        debits: &Debits,
    ) -> rusqlite::Result<()> {
        self.connection.with_dependent_mut(|connection, prepared| {
            // Unchecked: the kept statements borrow the connection, so it is not `&mut`;
            // this connection runs nothing but these transactions, one at a time.
            let tx = Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
            for statement in batch_statements(records, rollups, debits) {
                let sql = statement.sql(Backend::Sqlite);
                let kept = match prepared.entry((sql.as_ptr().addr(), sql.len())) {
                    Entry::Occupied(kept) => kept.into_mut(),
                    Entry::Vacant(slot) => slot.insert(connection.prepare(sql)?),
                };
                statement.bind(Binder::new(kept)).execute()?;
            }
            tx.commit()
        })
    }

    /// How many statements are kept prepared.
    #[cfg(test)]
    pub(super) fn prepared(&self) -> usize {
        self.connection.with_dependent(|_, prepared| prepared.len())
    }
}

/// Binds values to a prepared statement one position after another; the first error is
/// kept and returned by `execute`, so binding chains as it does on a sqlx query.
struct Binder<'s, 'c> {
    statement: &'s mut Statement<'c>,
    next: usize,
    error: Option<rusqlite::Error>,
}

impl<'s, 'c> Binder<'s, 'c> {
    fn new(statement: &'s mut Statement<'c>) -> Self {
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
        let pragma =
            |name: &str| number(ledger.connection.borrow_owner(), &format!("PRAGMA {name}"));
        assert_eq!(pragma("temp_store"), 2, "MEMORY");
        assert_eq!(pragma("synchronous"), 2, "FULL");
    }

    /// The one integer `sql` selects.
    fn number(connection: &Connection, sql: &str) -> i64 {
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// Applies the embedded SQLite migrations numbered `versions`, in order.
    fn migrate(connection: &Connection, versions: impl std::ops::RangeBounds<i64>) {
        for migration in super::super::SQLITE_MIGRATIONS.iter() {
            if versions.contains(&migration.version) {
                connection.execute_batch(&migration.sql).unwrap();
            }
        }
    }

    #[test]
    fn the_cost_bound_becomes_a_check_and_the_rebuilt_table_keeps_rows_ids_and_sequence() {
        let connection = Connection::open_in_memory().unwrap();
        migrate(&connection, ..=27);
        let insert = |request_id: &str, cost: &dyn rusqlite::ToSql| {
            connection.execute(
                "INSERT INTO usage_records (request_id, user_id, key_id, model, prompt_tokens, \
                 cached_tokens, completion_tokens, cost_nano, status, stream, estimated, \
                 latency_ms, created_at, price_tier) \
                 VALUES (?1, 1, 2, 'm', 3, 0, 4, ?2, 200, 0, 0, 5, 6, 'tier')",
                rusqlite::params![request_id, cost],
            )
        };
        for n in 1..=5 {
            insert(&format!("r{n}"), &(n * 100)).unwrap();
        }
        // Retention removed the newest: the sequence is past the largest id left.
        connection
            .execute("DELETE FROM usage_records WHERE id > 3", [])
            .unwrap();
        let rows = |connection: &Connection| -> Vec<(i64, String, i64, String)> {
            let mut select = connection
                .prepare(
                    "SELECT id, request_id, cost_nano, price_tier FROM usage_records ORDER BY id",
                )
                .unwrap();
            select
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let before = rows(&connection);

        migrate(&connection, 28..=28);
        assert_eq!(rows(&connection), before);
        let triggers = "SELECT COUNT(*) FROM sqlite_master \
                        WHERE type = 'trigger' AND tbl_name = 'usage_records'";
        assert_eq!(number(&connection, triggers), 0);
        insert("r6", &600).unwrap();
        let id = "SELECT id FROM usage_records WHERE request_id = 'r6'";
        assert_eq!(
            number(&connection, id),
            6,
            "ids 4 and 5 were handed out before"
        );
        for refused in [
            &-1_i64 as &dyn rusqlite::ToSql,
            &1_000_000_000_000_001_i64,
            &1.5_f64,
            &"x",
        ] {
            let error = insert("bad", refused).unwrap_err();
            assert_eq!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation),
                "{error}"
            );
            assert!(
                error.to_string().contains("usage_records_cost_bounded"),
                "{error}"
            );
        }
        insert("most", &1_000_000_000_000_000_i64).unwrap();
        let indexes: Vec<String> = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_records' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            indexes,
            [
                "usage_records_key_time",
                "usage_records_time",
                "usage_records_user_time"
            ]
        );
    }

    #[test]
    fn a_statement_bound_with_too_few_or_too_many_values_does_not_run() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (a INTEGER NOT NULL, b TEXT)")
            .unwrap();
        let mut insert = connection
            .prepare("INSERT INTO t (a, b) VALUES (?, ?)")
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
        let rows = "SELECT COUNT(*) FROM t WHERE a = 7 AND b IS NULL";
        assert_eq!(number(&connection, rows), 1);
    }
}
