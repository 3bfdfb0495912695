//! The batched ledger writer: the only path by which request costs reach the database.
//!
//! Settled requests send their `UsageRecord` here (never blocking, never failing); one
//! task writes them in batches, one transaction each, retrying a failed batch until it
//! commits. `flush()` returns once everything sent before it is committed, which is how
//! graceful shutdown (and tests) know nothing is left in memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::ledger::books::Books;
use crate::ledger::money::Nanos;
use crate::shared::money::{Account, Reading};
use crate::store::{BatchAttempt, Store, StoreError, UsageRecord, UsageWriter, Written};

/// Records per transaction, at most. Larger batches gain little (per-batch costs are
/// already shared by ~80 records at saturation) and bound the size of the SQL text the
/// store keeps prepared per batch shape.
const MAX_BATCH: usize = 128;

/// How long the first record of a batch may wait for company. It is also the most a
/// crash can add to the window of settled-but-unwritten records.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

enum Command {
    Record(Box<UsageRecord>),
    Flush(oneshot::Sender<()>),
}

/// A seam for fault injection, used by this module's tests (and by the ledger simulation):
/// around each real write it may fail the attempt before anything is written (a refused
/// or timed-out commit), or after the batch committed (the acknowledgement was lost), and
/// it may make the database look unreachable. Production writers have none.
pub trait WriteFaults: Send + Sync {
    /// An error fails this attempt; nothing is written.
    fn before_write(&self, batch: &[UsageRecord]) -> Result<(), StoreError>;
    /// Called once the batch committed; an error makes the writer believe it did not.
    fn after_commit(&self, batch: &[UsageRecord]) -> Result<(), StoreError>;
    /// False during a simulated outage: the writer's health check fails too.
    fn database_answers(&self) -> bool {
        true
    }
}

/// A cheap handle for sending records to the writer task.
#[derive(Clone)]
pub struct LedgerWriter {
    commands: mpsc::UnboundedSender<Command>,
}

impl LedgerWriter {
    /// Starts the writer task. `flush_lock` is shared with the reloader so that a balance
    /// read from the database and the in-memory unflushed costs always agree.
    pub fn spawn(store: Store, books: Arc<Books>, flush_lock: Arc<Mutex<()>>) -> LedgerWriter {
        Self::spawn_with_faults(store, books, flush_lock, None)
    }

    /// `spawn` with injected faults (see [`WriteFaults`]); for the ledger simulation.
    pub fn spawn_with_faults(
        store: Store,
        books: Arc<Books>,
        flush_lock: Arc<Mutex<()>>,
        faults: Option<Arc<dyn WriteFaults>>,
    ) -> LedgerWriter {
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(store, books, flush_lock, faults, receiver));
        LedgerWriter { commands }
    }

    /// Queues a record. Unbounded on purpose: a record is money, and dropping one is worse
    /// than holding memory while the database is briefly unavailable.
    pub fn submit(&self, record: UsageRecord) {
        metrics::gauge!("tokenhub_ledger_queue_depth").increment(1.0);
        if self
            .commands
            .send(Command::Record(Box::new(record)))
            .is_err()
        {
            tracing::error!("ledger writer is gone; a usage record could not be queued");
        }
    }

    /// Waits until every record submitted before this call is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(
    store: Store,
    books: Arc<Books>,
    flush_lock: Arc<Mutex<()>>,
    faults: Option<Arc<dyn WriteFaults>>,
    mut receiver: mpsc::UnboundedReceiver<Command>,
) {
    let mut usage = store.usage_writer();
    let mut commands = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut commands, MAX_BATCH).await > 0 {
        // Under load, a short wait gathers many records into one transaction instead of
        // one tiny transaction per request (each statement is a hop to SQLite's thread).
        // A flush, or a full batch, is served at once.
        let flushing = commands.iter().any(|c| matches!(c, Command::Flush(_)));
        if !flushing && commands.len() < MAX_BATCH {
            tokio::time::sleep(BATCH_WINDOW).await;
            while commands.len() < MAX_BATCH {
                let Ok(command) = receiver.try_recv() else {
                    break;
                };
                commands.push(command);
            }
        }
        let mut batch = Vec::with_capacity(commands.len());
        let mut waiters = Vec::new();
        for command in commands.drain(..) {
            match command {
                Command::Record(record) => batch.push(*record),
                Command::Flush(done) => waiters.push(done),
            }
        }
        let mut committer = Committer {
            usage: &mut usage,
            books: &books,
            flush_lock: &flush_lock,
            faults: faults.as_deref(),
        };
        committer.commit(&batch, BatchAttempt::First).await;
        if !waiters.is_empty() {
            // A flush precedes closing the store (shutdown), which waits for every
            // connection to come back.
            usage.release();
        }
        for done in waiters {
            let _ = done.send(());
        }
    }
}

/// How often the database must refuse a record on its own, while answering other
/// queries, before the record is parked.
const REFUSALS_BEFORE_PARKING: u32 = 3;

/// What committing a batch needs; shared by the halves of a split batch.
struct Committer<'a> {
    usage: &'a mut UsageWriter,
    books: &'a Books,
    flush_lock: &'a Mutex<()>,
    faults: Option<&'a dyn WriteFaults>,
}

impl Committer<'_> {
    /// Commits `batch`, however long the database takes to come back. A batch the
    /// database refuses while it answers is split in halves until the refused record is
    /// alone; that record is parked (see `park`) so every other record is written and
    /// debited.
    async fn commit(&mut self, batch: &[UsageRecord], mut attempt: BatchAttempt) {
        if batch.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(50);
        let started = std::time::Instant::now();
        let mut refusals = 0;
        loop {
            let error = match self.try_commit(batch, attempt, started).await {
                Ok(()) => return,
                Err(error) => error,
            };
            // Any attempt after a failure may find its batch committed (a lost reply).
            attempt = BatchAttempt::Retry;
            metrics::counter!("tokenhub_usage_write_failures_total").increment(1);
            // Only a refusal of the data is split and, once alone, parked. A transient
            // error (a timeout, a lost connection, a locked database) is retried however
            // often it recurs: parking a record the database could take would bill
            // nothing for a served request (found by the ledger simulation, seed 1).
            if error.is_refusal() && self.database_answers().await {
                if batch.len() > 1 {
                    tracing::warn!(%error, records = batch.len(), "usage batch refused; splitting it");
                    let (left, right) = batch.split_at(batch.len() / 2);
                    Box::pin(self.commit(left, BatchAttempt::Retry)).await;
                    Box::pin(self.commit(right, BatchAttempt::Retry)).await;
                    return;
                }
                refusals += 1;
                if refusals >= REFUSALS_BEFORE_PARKING && self.park(&batch[0], &error).await {
                    return;
                }
            } else {
                refusals = 0;
            }
            tracing::error!(%error, records = batch.len(), "usage batch not committed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn database_answers(&mut self) -> bool {
        self.faults.is_none_or(|faults| faults.database_answers())
            && self.usage.database_answers().await
    }

    async fn try_commit(
        &mut self,
        batch: &[UsageRecord],
        attempt: BatchAttempt,
        started: std::time::Instant,
    ) -> Result<(), crate::store::StoreError> {
        let guard = self.flush_lock.lock().await;
        if let Some(faults) = self.faults {
            faults.before_write(batch)?;
        }
        let written = self.usage.write(batch, attempt).await?;
        if let Some(faults) = self.faults {
            faults.after_commit(batch)?;
        }
        let (users, keys) = costs_by_owner(batch);
        match written {
            Written::Now => self.books.flushed(&users, &keys),
            // An earlier attempt committed the batch, and a reload since (between two
            // attempts) may already have counted it in the stored amounts: moving the
            // costs to `stored` again would count them twice (found by the ledger
            // simulation, seed 99). The stored amounts are read again under this lock,
            // and the costs leave `unflushed` only.
            Written::Earlier => {
                let (balances, spends) = self
                    .usage
                    .stored_amounts(users.keys().copied(), keys.keys().copied())
                    .await?;
                self.books.sync(balances, spends);
                self.books.abandoned(&users, &keys);
            }
        }
        drop(guard);
        self.share(&users, &keys).await;
        metrics::counter!("tokenhub_usage_records_written_total").increment(batch.len() as u64);
        metrics::gauge!("tokenhub_ledger_queue_depth").decrement(batch.len() as f64);
        metrics::histogram!("tokenhub_ledger_flush_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Moves a record the database refuses to the dead-letter table. Its cost was never
    /// debited, so the books forget it too (Σ cost of records = Σ debits still holds);
    /// it stays visible to the operator in the table, the log and the metric.
    async fn park(&mut self, record: &UsageRecord, error: &crate::store::StoreError) -> bool {
        let reason = error.to_string();
        if let Err(park_error) = self.usage.park(record, &reason).await {
            tracing::error!(error = %park_error, request_id = %record.request_id, "could not park a refused usage record");
            return false;
        }
        let (users, keys) = costs_by_owner(std::slice::from_ref(record));
        self.books.abandoned(&users, &keys);
        self.share(&users, &keys).await;
        tracing::error!(
            request_id = %record.request_id,
            user_id = record.user_id,
            cost = %record.cost,
            error = %reason,
            "usage record refused by the database; parked in usage_dead_letters"
        );
        metrics::counter!("tokenhub_usage_dead_letters_total").increment(1);
        metrics::gauge!("tokenhub_ledger_queue_depth").decrement(1.0);
        true
    }
}

impl Committer<'_> {
    /// With shared state: the committed (or parked) costs leave this instance's holds in
    /// Redis, together with the balances and spends read after the commit (a newer
    /// version replaces the older; see `shared/money.rs`). A failure marks the shared
    /// state for a rebuild from the books.
    async fn share(&mut self, users: &HashMap<i64, Nanos>, keys: &HashMap<i64, Nanos>) {
        let Some(shared) = self.books.shared().cloned() else {
            return;
        };
        let store = self.usage.store().clone();
        for (id, cost) in users {
            let reading = Reading::from_result(store.balance_version(*id).await);
            let moved = shared
                .update_money(Account::User(*id), reading, Nanos::ZERO - *cost)
                .await;
            shared.note(moved);
        }
        for (id, cost) in keys {
            let reading = Reading::from_result(store.spent_version(*id).await);
            let moved = shared
                .update_money(Account::Key(*id), reading, Nanos::ZERO - *cost)
                .await;
            shared.note(moved);
        }
    }
}

fn costs_by_owner(batch: &[UsageRecord]) -> (HashMap<i64, Nanos>, HashMap<i64, Nanos>) {
    let mut users: HashMap<i64, Nanos> = HashMap::new();
    let mut keys: HashMap<i64, Nanos> = HashMap::new();
    for record in batch {
        *users.entry(record.user_id).or_default() += record.cost;
        *keys.entry(record.key_id).or_default() += record.cost;
    }
    (users, keys)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::store::test_support::temp_store;

    /// Fails the next `transient` attempts before writing, and loses the reply of the
    /// next `lost_replies` commits, running `between` (a reload) in the gap.
    #[derive(Default)]
    struct Script {
        transient: StdMutex<u32>,
        lost_replies: StdMutex<u32>,
        between: StdMutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    fn take(counter: &StdMutex<u32>) -> bool {
        let mut left = counter.lock().unwrap();
        let fire = *left > 0;
        *left = left.saturating_sub(1);
        fire
    }

    impl WriteFaults for Script {
        fn before_write(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
            if take(&self.transient) {
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            Ok(())
        }

        fn after_commit(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
            if take(&self.lost_replies) {
                if let Some(reload) = self.between.lock().unwrap().take() {
                    reload();
                }
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            Ok(())
        }
    }

    fn record(user_id: i64, cost: i64) -> UsageRecord {
        UsageRecord {
            request_id: "r1".into(),
            user_id,
            model: "m".into(),
            cost: Nanos(cost),
            status: 200,
            ..Default::default()
        }
    }

    /// Seeds 1 and 5 of the ledger simulation: a commit that times out again and again
    /// while the database answers is retried until it commits, never parked (parking
    /// would serve the request for free).
    #[tokio::test]
    async fn a_commit_that_keeps_timing_out_is_retried_not_parked() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000))
            .await
            .unwrap();
        let books = Arc::new(Books::default());
        books.sync([(user.id, Nanos(1_000))], []);
        let script = Arc::new(Script {
            transient: StdMutex::new(REFUSALS_BEFORE_PARKING + 1),
            ..Script::default()
        });
        let writer = LedgerWriter::spawn_with_faults(
            store.clone(),
            books.clone(),
            Default::default(),
            Some(script),
        );
        let held = books.reserve(user.id, 0, None, Nanos(100)).unwrap();
        books.settle(held, Nanos(40));
        writer.submit(record(user.id, 40));
        writer.flush().await;
        assert_eq!(store.usage_count().await.unwrap(), 1);
        assert!(store.dead_letters().await.unwrap().is_empty());
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            Nanos(960)
        );
        assert_eq!(books.balance(user.id), Nanos(960));
    }

    /// Seed 99: a batch committed, its reply was lost, and a reload read the committed
    /// balance before the retry found the batch written: the cost is counted once.
    #[tokio::test]
    async fn a_lost_reply_and_a_reload_before_the_retry_count_the_batch_once() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000))
            .await
            .unwrap();
        let books = Arc::new(Books::default());
        books.sync([(user.id, Nanos(1_000))], []);
        let reloaded = books.clone();
        let user_id = user.id;
        let script = Arc::new(Script {
            lost_replies: StdMutex::new(1),
            // The reload sees the committed debit in the database.
            between: StdMutex::new(Some(Box::new(move || {
                reloaded.sync([(user_id, Nanos(960))], []);
            }))),
            ..Script::default()
        });
        let writer = LedgerWriter::spawn_with_faults(
            store.clone(),
            books.clone(),
            Default::default(),
            Some(script),
        );
        let held = books.reserve(user.id, 0, None, Nanos(100)).unwrap();
        books.settle(held, Nanos(40));
        writer.submit(record(user.id, 40));
        writer.flush().await;
        assert_eq!(store.usage_count().await.unwrap(), 1);
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            Nanos(960)
        );
        assert_eq!(books.balance(user.id), Nanos(960), "counted once");
        assert_eq!(books.unflushed(user.id), Nanos::ZERO);
    }
}
