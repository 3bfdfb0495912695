//! The batched ledger writer: the only path by which request costs reach the database.
//!
//! Settled requests send their `UsageRecord` here (never blocking, never failing); one
//! task writes them in batches, one transaction each, retrying a failed batch until it
//! commits. `flush()` returns once everything sent before it is committed, which is how
//! graceful shutdown (and tests) know nothing is left in memory.
//!
//! With a spill file (`ledger/spill.rs`, what `serve` uses), a batch the database does not
//! take at once is appended to the file, and so is every batch formed after it, until the
//! backlog is replayed in order; a crash meanwhile loses at most the batch being formed.
//! Without one (unit tests, the ledger simulation), a failed batch is retried in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use crate::ledger::books::Books;
use crate::ledger::money::Nanos;
use crate::ledger::spill::{Spill, SpilledBatch};
use crate::shared::money::{Account, Reading};
use crate::store::{BatchAttempt, Store, StoreError, UsageRecord, UsageWriter, Written};

#[cfg(test)]
mod late_commit;
#[cfg(test)]
mod shared_crash;
mod supervise;

/// How long one write of a batch may take before the batch goes to the spill file (a
/// database that stopped answering mid-statement would otherwise hold the writer, and
/// every record behind it only in memory, until TCP gives up).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(3);

/// The longest wait between two replays of the backlog while the database is away.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the writer holds that the database has not taken: read by readiness and by the
/// relay, which refuses paid requests once the spill file is beyond its bound.
#[derive(Debug, Default)]
pub struct LedgerStatus {
    spilled_bytes: AtomicU64,
    backlog_batches: AtomicU64,
    /// Set while the writer task waits to restart after a panic (`writer/supervise.rs`).
    writer_down: AtomicBool,
    /// Zero: no bound.
    spill_limit: u64,
}

impl LedgerStatus {
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Batches waiting for the database (in the spill file, or in memory without one).
    pub fn backlog_batches(&self) -> u64 {
        self.backlog_batches.load(Ordering::Relaxed)
    }

    pub fn spill_limit(&self) -> u64 {
        self.spill_limit
    }

    /// False while the writer task is down (it panicked and waits to restart): records
    /// queue in memory meanwhile.
    pub fn writer_running(&self) -> bool {
        !self.writer_down.load(Ordering::Relaxed)
    }

    /// True once the spill file outgrew its bound: a paid request would be served
    /// without a durable record of its cost.
    pub fn spill_full(&self) -> bool {
        self.spill_limit > 0 && self.spilled_bytes() > self.spill_limit
    }
}

/// Where the writer puts what the database does not take, and how much of it is allowed.
pub struct SpillOptions {
    pub spill: Spill,
    /// Batches a previous run left in the file; replayed first, in order.
    pub recovered: Vec<SpilledBatch>,
    pub max_bytes: u64,
}

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
    /// How long to wait before retrying a failed batch (a simulation does not wait
    /// seconds of real time between its attempts).
    fn retry_delay(&self, planned: Duration) -> Duration {
        planned
    }
}

/// A cheap handle for sending records to the writer task.
#[derive(Clone)]
pub struct LedgerWriter {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<LedgerStatus>,
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
        Self::spawn_with(store, books, flush_lock, faults, None)
    }

    /// `spawn` with a spill file for outages (and optional faults).
    pub fn spawn_with(
        store: Store,
        books: Arc<Books>,
        flush_lock: Arc<Mutex<()>>,
        faults: Option<Arc<dyn WriteFaults>>,
        spill: Option<SpillOptions>,
    ) -> LedgerWriter {
        let (commands, receiver) = mpsc::unbounded_channel();
        let status = Arc::new(LedgerStatus {
            spill_limit: spill.as_ref().map_or(0, |s| s.max_bytes),
            ..LedgerStatus::default()
        });
        let writer = Writer {
            io: WriterIo {
                usage: store.usage_writer(),
                books,
                flush_lock,
                faults,
                accounted: 0,
            },
            status: status.clone(),
            backlog: Backlog::new(spill),
            in_flight: InFlight::default(),
        };
        tokio::spawn(supervise::supervise(writer, receiver));
        LedgerWriter { commands, status }
    }

    /// What the writer holds that the database has not taken yet.
    pub fn status(&self) -> &Arc<LedgerStatus> {
        &self.status
    }

    /// Queues a record. Unbounded on purpose: a record is money, and dropping one is worse
    /// than holding memory while the database is briefly unavailable.
    pub fn submit(&self, record: UsageRecord) {
        crate::meters::METERS.ledger_queue_depth.increment(1.0);
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

/// A batch waiting for the database, and whether its costs are among the books'
/// unflushed amounts (a batch recovered from a previous run's spill file is not).
struct Pending {
    records: Vec<UsageRecord>,
    in_books: bool,
    /// What it takes in the spill file (0 if it is not there).
    bytes: u64,
}

/// Batches the database did not take, oldest first, with their spill file.
struct Backlog {
    pending: VecDeque<Pending>,
    /// Flushes waiting for the backlog to be committed.
    waiters: Vec<oneshot::Sender<()>>,
    spill: Option<Spill>,
    retry_at: Instant,
    backoff: Duration,
}

impl Backlog {
    fn new(options: Option<SpillOptions>) -> Backlog {
        let (spill, recovered) = match options {
            Some(options) => (Some(options.spill), options.recovered),
            None => (None, Vec::new()),
        };
        if !recovered.is_empty() {
            tracing::warn!(
                batches = recovered.len(),
                "replaying usage records spilled by a previous run"
            );
        }
        Backlog {
            pending: recovered
                .into_iter()
                .map(|batch| Pending {
                    records: batch.records,
                    in_books: false,
                    bytes: batch.bytes,
                })
                .collect(),
            waiters: Vec::new(),
            spill,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(50),
        }
    }

    /// Puts a batch behind the others, on disk first when there is a spill file.
    fn push(&mut self, records: Vec<UsageRecord>, status: &LedgerStatus) {
        let mut bytes = 0;
        if let Some(spill) = &mut self.spill {
            match spill.append(&records) {
                Ok(written) => bytes = written,
                // Still kept in memory: the records are lost only if the process dies too.
                Err(error) => {
                    tracing::error!(%error, records = records.len(), "usage batch not spilled to disk");
                }
            }
        }
        self.pending.push_back(Pending {
            records,
            in_books: true,
            bytes,
        });
        self.publish(status);
    }

    /// What readiness and admission read: the batches waiting, and the bytes of the
    /// spill file they take (committed batches no longer count, though the file only
    /// shrinks once it is empty).
    fn publish(&self, status: &LedgerStatus) {
        status
            .backlog_batches
            .store(self.pending.len() as u64, Ordering::Relaxed);
        let bytes = self.pending.iter().map(|p| p.bytes).sum();
        status.spilled_bytes.store(bytes, Ordering::Relaxed);
    }

    fn failed(&mut self) {
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The oldest batches, joined up to `MAX_BATCH` records (at least one batch), if
    /// their costs are alike in the books; and how many batches they are.
    fn oldest(&self) -> (Vec<UsageRecord>, usize, bool) {
        let Some(first) = self.pending.front() else {
            return (Vec::new(), 0, true);
        };
        let mut records = first.records.clone();
        let mut batches = 1;
        for next in self.pending.iter().skip(1) {
            if next.in_books != first.in_books || records.len() + next.records.len() > MAX_BATCH {
                break;
            }
            records.extend(next.records.iter().cloned());
            batches += 1;
        }
        (records, batches, first.in_books)
    }

    /// The oldest `records` were committed (or parked) and the books took their costs,
    /// by a replay that gave up or panicked before it could say so.
    fn forget_oldest(&mut self, mut records: usize, status: &LedgerStatus) {
        if records == 0 {
            return;
        }
        while records > 0 {
            let Some(oldest) = self.pending.front_mut() else {
                break;
            };
            if oldest.records.len() <= records {
                records -= oldest.records.len();
                self.pending.pop_front();
            } else {
                oldest.records.drain(..records);
                records = 0;
            }
        }
        if self.pending.is_empty() {
            self.committed(0, status);
        } else {
            self.publish(status);
        }
    }

    /// The oldest `batches` are committed.
    fn committed(&mut self, batches: usize, status: &LedgerStatus) {
        self.pending.drain(..batches);
        self.retry_at = Instant::now();
        self.backoff = Duration::from_millis(50);
        self.publish(status);
        if !self.pending.is_empty() {
            return;
        }
        if let Some(spill) = &mut self.spill {
            if let Err(error) = spill.clear() {
                tracing::error!(%error, "could not remove the replayed spill file");
            }
            tracing::info!("usage backlog committed; the spill file is empty");
        }
        for done in self.waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The writer task's state. It outlives a panic of the task (`writer/supervise.rs`):
/// the backlog and the batch in flight are taken up again by the restarted task.
struct Writer {
    io: WriterIo,
    status: Arc<LedgerStatus>,
    backlog: Backlog,
    in_flight: InFlight,
}

/// What committing needs, apart from the records (so a `Committer` may borrow it while
/// the records in flight are borrowed too).
struct WriterIo {
    usage: UsageWriter,
    books: Arc<Books>,
    flush_lock: Arc<Mutex<()>>,
    faults: Option<Arc<dyn WriteFaults>>,
    /// How many leading records of the batch in flight the books have taken (committed or
    /// parked). A batch is committed in order, the left half of a split first, so these
    /// are always a prefix of it.
    accounted: usize,
}

/// The records the writer is committing now, held where a panic cannot drop them.
#[derive(Default)]
struct InFlight {
    /// A new batch (`write_now`), and the flushes that wait for it.
    batch: Vec<UsageRecord>,
    waiters: Vec<oneshot::Sender<()>>,
    /// Or the oldest batches of the backlog, which stay there until committed.
    replaying: bool,
}

impl Writer {
    async fn run(&mut self, receiver: &mut mpsc::UnboundedReceiver<Command>) {
        self.backlog.publish(&self.status);
        let mut open = true;
        while open || !self.backlog.pending.is_empty() {
            if self.backlog.pending.is_empty() {
                let Some((batch, waiters)) = next_batch(receiver).await else {
                    return;
                };
                self.write_now(batch, waiters).await;
                continue;
            }
            // Only `recv_many` may be cancelled by the replay's timer (it is cancel-safe);
            // the batch window after it runs outside the `select!`, or the records it
            // gathered would be dropped with it.
            let mut commands = Vec::with_capacity(MAX_BATCH);
            tokio::select! {
                received = receiver.recv_many(&mut commands, MAX_BATCH), if open => {
                    if received == 0 {
                        open = false;
                        continue;
                    }
                    let (batch, waiters) = complete_batch(commands, receiver).await;
                    if !batch.is_empty() {
                        self.backlog.push(batch, &self.status);
                    }
                    self.backlog.waiters.extend(waiters);
                }
                () = tokio::time::sleep_until(self.backlog.retry_at) => self.replay_oldest().await,
            }
        }
    }

    /// Normal operation: commit the batch; if the database does not take it and there
    /// is a spill file, the batch starts the backlog.
    async fn write_now(&mut self, batch: Vec<UsageRecord>, waiters: Vec<oneshot::Sender<()>>) {
        self.in_flight = InFlight {
            batch,
            waiters,
            replaying: false,
        };
        self.io.accounted = 0;
        let written = if self.backlog.spill.is_none() {
            self.io
                .committer()
                .commit(&self.in_flight.batch, BatchAttempt::First, true)
                .await;
            Ok(())
        } else {
            self.io
                .committer()
                .attempt(&self.in_flight.batch, BatchAttempt::First, true)
                .await
        };
        let InFlight { batch, waiters, .. } = std::mem::take(&mut self.in_flight);
        if let Err(error) = written {
            tracing::error!(%error, records = batch.len(), "usage batch not committed; spilling to disk until the database answers");
            self.requeue(batch, waiters);
            self.backlog.failed();
            return;
        }
        if !waiters.is_empty() {
            // A flush precedes closing the store (shutdown), which waits for every
            // connection to come back.
            self.io.usage.release();
        }
        for done in waiters {
            let _ = done.send(());
        }
    }

    /// Commits the oldest batches of the backlog, joined up to `MAX_BATCH` records: the
    /// backlog drains faster than an outage's small batches arrive. Records are
    /// idempotent by request id on a retry, so how they are grouped does not matter.
    async fn replay_oldest(&mut self) {
        let (records, batches, in_books) = self.backlog.oldest();
        if batches == 0 {
            return;
        }
        self.in_flight.replaying = true;
        self.io.accounted = 0;
        let result = self
            .io
            .committer()
            .attempt(&records, BatchAttempt::Retry, in_books)
            .await;
        self.in_flight.replaying = false;
        match result {
            Ok(()) => {
                self.backlog.committed(batches, &self.status);
                if self.backlog.pending.is_empty() {
                    self.io.usage.release();
                }
            }
            Err(error) => {
                tracing::warn!(%error, backlog = self.backlog.pending.len(), "usage backlog not replayed yet");
                let accounted = std::mem::take(&mut self.io.accounted);
                self.backlog.forget_oldest(accounted, &self.status);
                self.backlog.failed();
            }
        }
    }

    /// Puts the records of `batch` that the books have not taken back in the backlog
    /// (an attempt may give up, or panic, after the books took some: its deadline can
    /// pass while committed costs are shared); `waiters` are answered once it is empty.
    fn requeue(&mut self, mut batch: Vec<UsageRecord>, waiters: Vec<oneshot::Sender<()>>) {
        let accounted = std::mem::take(&mut self.io.accounted).min(batch.len());
        let rest = batch.split_off(accounted);
        if !rest.is_empty() {
            self.backlog.push(rest, &self.status);
        }
        if self.backlog.pending.is_empty() {
            for done in waiters {
                let _ = done.send(());
            }
        } else {
            self.backlog.waiters.extend(waiters);
        }
    }
}

impl WriterIo {
    fn committer(&mut self) -> Committer<'_> {
        Committer {
            usage: &mut self.usage,
            books: &self.books,
            flush_lock: &self.flush_lock,
            faults: self.faults.as_deref(),
            accounted: &mut self.accounted,
        }
    }
}

/// Waits for the next records and gathers a batch: under load, a short wait gathers
/// many records into one transaction instead of one tiny transaction per request (each
/// statement is a hop to SQLite's thread). A flush, or a full batch, is served at once.
/// None once every sender is gone.
async fn next_batch(
    receiver: &mut mpsc::UnboundedReceiver<Command>,
) -> Option<(Vec<UsageRecord>, Vec<oneshot::Sender<()>>)> {
    let mut commands = Vec::with_capacity(MAX_BATCH);
    if receiver.recv_many(&mut commands, MAX_BATCH).await == 0 {
        return None;
    }
    Some(complete_batch(commands, receiver).await)
}

/// The batch window after the first records arrived, then the batch and its flushes.
async fn complete_batch(
    mut commands: Vec<Command>,
    receiver: &mut mpsc::UnboundedReceiver<Command>,
) -> (Vec<UsageRecord>, Vec<oneshot::Sender<()>>) {
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
    for command in commands {
        match command {
            Command::Record(record) => batch.push(*record),
            Command::Flush(done) => waiters.push(done),
        }
    }
    (batch, waiters)
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
    /// `WriterIo::accounted`: counts the records whose costs the books took.
    accounted: &'a mut usize,
}

impl Committer<'_> {
    /// Commits `batch`, however long the database takes to come back. A batch the
    /// database refuses while it answers is split in halves until the refused record is
    /// alone; that record is parked (see `park`) so every other record is written and
    /// debited.
    async fn commit(&mut self, batch: &[UsageRecord], mut attempt: BatchAttempt, in_books: bool) {
        if batch.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(50);
        let started = std::time::Instant::now();
        let mut refusals = 0;
        loop {
            let mut error = match self
                .try_commit(batch, batch, attempt, started, in_books)
                .await
            {
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
                    Box::pin(self.commit(left, BatchAttempt::Retry, in_books)).await;
                    Box::pin(self.commit(right, BatchAttempt::Retry, in_books)).await;
                    return;
                }
                match self.commit_within_bound(&batch[0], started, in_books).await {
                    Some(Ok(())) => return,
                    // A bill cut to the room left is billable: retried, never parked
                    // (the next attempt reads the room again).
                    Some(Err(cut_error)) => error = cut_error,
                    None => {
                        refusals += 1;
                        if refusals >= REFUSALS_BEFORE_PARKING
                            && self.park(&batch[0], &error, in_books).await
                        {
                            return;
                        }
                    }
                }
            } else {
                refusals = 0;
            }
            tracing::error!(%error, records = batch.len(), "usage batch not committed; retrying");
            let delay = self
                .faults
                .map_or(backoff, |faults| faults.retry_delay(backoff));
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One bounded attempt (for a writer with a spill file): a batch the database refuses
    /// while it answers is split and parked as `commit` does; anything else is an error
    /// the caller answers by keeping the batch in the backlog.
    async fn attempt(
        &mut self,
        batch: &[UsageRecord],
        attempt: BatchAttempt,
        in_books: bool,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let tried = tokio::time::timeout(
            ATTEMPT_LIMIT,
            self.try_commit(batch, batch, attempt, started, in_books),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer within {} s",
                ATTEMPT_LIMIT.as_secs()
            )))
        });
        match tried {
            Ok(()) => Ok(()),
            Err(error) if error.is_refusal() && self.database_answers().await => {
                metrics::counter!("tokenhub_usage_write_failures_total").increment(1);
                self.commit(batch, BatchAttempt::Retry, in_books).await;
                Ok(())
            }
            Err(error) => {
                metrics::counter!("tokenhub_usage_write_failures_total").increment(1);
                Err(error)
            }
        }
    }

    async fn database_answers(&mut self) -> bool {
        self.faults.is_none_or(|faults| faults.database_answers())
            && self.usage.database_answers().await
    }

    /// A record refused alone because its debit would carry its key's spend or its
    /// user's balance past the storable bound: each process clamps a bill to the room it
    /// sees (`Books::settle`), and several processes' clamps together may pass the bound
    /// (ledger simulation, seed 1797921379005780708 step 397941 with --shared redis).
    /// The bill is cut to the room the database has now and written; the books and the
    /// shared holds let go of the whole cost. `None` when the record fits (it is
    /// refused for another reason, and parked as any other).
    async fn commit_within_bound(
        &mut self,
        record: &UsageRecord,
        started: std::time::Instant,
        in_books: bool,
    ) -> Option<Result<(), StoreError>> {
        let room = match self.usage.room_for(record.user_id, record.key_id).await {
            Ok(room) => room,
            Err(error) => return Some(Err(error)),
        };
        if record.cost <= room {
            return None;
        }
        let cut = UsageRecord {
            cost: room.max(Nanos::ZERO),
            ..record.clone()
        };
        tracing::warn!(
            request_id = %record.request_id,
            priced = %record.cost,
            billed = %cut.cost,
            "a bill cut at the storable bound"
        );
        let held = std::slice::from_ref(record);
        Some(
            self.try_commit(
                std::slice::from_ref(&cut),
                held,
                BatchAttempt::Retry,
                started,
                in_books,
            )
            .await,
        )
    }

    /// Writes `batch`; `held` is the same records as the books hold them, whose costs
    /// differ only where `commit_within_bound` cut a bill.
    async fn try_commit(
        &mut self,
        batch: &[UsageRecord],
        held: &[UsageRecord],
        attempt: BatchAttempt,
        started: std::time::Instant,
        in_books: bool,
    ) -> Result<(), crate::store::StoreError> {
        let guard = self.flush_lock.lock().await;
        if let Some(faults) = self.faults {
            faults.before_write(batch)?;
        }
        let written = self.usage.write(batch, attempt).await?;
        if let Some(faults) = self.faults {
            faults.after_commit(batch)?;
        }
        let (users, keys) = costs_by_owner(held);
        match (written, in_books) {
            (Written::Now, true) if !bills_cut(batch, held) => self.books.flushed(&users, &keys),
            (Written::Now, true) => {
                let (stored_users, stored_keys) = costs_by_owner(batch);
                self.books.flushed(&stored_users, &stored_keys);
                let cut = |all: &HashMap<i64, Nanos>, stored: &HashMap<i64, Nanos>| {
                    all.iter()
                        .map(|(id, cost)| (*id, *cost - stored[id]))
                        .collect::<HashMap<_, _>>()
                };
                self.books
                    .abandoned(&cut(&users, &stored_users), &cut(&keys, &stored_keys));
            }
            // A batch from a previous run's spill file: the books never counted its costs,
            // so they take the stored amounts as the database now has them.
            (_, false) => {
                let (balances, spends) = self
                    .usage
                    .stored_amounts(users.keys().copied(), keys.keys().copied())
                    .await?;
                self.books.sync(balances, spends);
            }
            // An earlier attempt committed the batch, and a reload since (between two
            // attempts) may already have counted it in the stored amounts: moving the
            // costs to `stored` again would count them twice (found by the ledger
            // simulation, seed 99). The stored amounts are read again under this lock,
            // and the costs leave `unflushed` only.
            (Written::Earlier, true) => {
                let (balances, spends) = self
                    .usage
                    .stored_amounts(users.keys().copied(), keys.keys().copied())
                    .await?;
                self.books.sync(balances, spends);
                self.books.abandoned(&users, &keys);
            }
        }
        *self.accounted += batch.len();
        // Shared under the lock too: a rebuild of the holds (`restore_shared_holds`) then
        // never reads the books after this commit and Redis before its share, which would
        // take the cost off the hold twice.
        if in_books {
            self.share(&users, &keys).await;
        } else {
            // This instance never held these costs in the shared state: only the new
            // stored amounts are passed on.
            let unheld = |costs: &HashMap<i64, Nanos>| {
                costs
                    .keys()
                    .map(|id| (*id, Nanos::ZERO))
                    .collect::<HashMap<_, _>>()
            };
            self.share(&unheld(&users), &unheld(&keys)).await;
        }
        drop(guard);
        metrics::counter!("tokenhub_usage_records_written_total").increment(batch.len() as u64);
        crate::meters::METERS
            .ledger_queue_depth
            .decrement(batch.len() as f64);
        metrics::histogram!("tokenhub_ledger_flush_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Moves a record the database refuses to the dead-letter table. Its cost was never
    /// debited, so the books forget it too (Σ cost of records = Σ debits still holds);
    /// it stays visible to the operator in the table, the log and the metric.
    async fn park(
        &mut self,
        record: &UsageRecord,
        error: &crate::store::StoreError,
        in_books: bool,
    ) -> bool {
        let reason = error.to_string();
        if let Err(park_error) = self.usage.park(record, &reason).await {
            tracing::error!(error = %park_error, request_id = %record.request_id, "could not park a refused usage record");
            return false;
        }
        *self.accounted += 1;
        if in_books {
            let (users, keys) = costs_by_owner(std::slice::from_ref(record));
            // Under the writer's lock, as a commit's share (see `commit`).
            let guard = self.flush_lock.lock().await;
            self.books.abandoned(&users, &keys);
            self.share(&users, &keys).await;
            drop(guard);
        }
        tracing::error!(
            request_id = %record.request_id,
            user_id = record.user_id,
            cost = %record.cost,
            error = %reason,
            "usage record refused by the database; parked in usage_dead_letters"
        );
        metrics::counter!("tokenhub_usage_dead_letters_total").increment(1);
        crate::meters::METERS.ledger_queue_depth.decrement(1.0);
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

fn bills_cut(written: &[UsageRecord], held: &[UsageRecord]) -> bool {
    written.iter().zip(held).any(|(w, h)| w.cost != h.cost)
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

    /// A store with one user holding 1,000 nano-USD, and books that know it.
    pub(super) async fn one_user() -> (Store, tempfile::TempDir, Arc<Books>, i64) {
        let (store, dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000))
            .await
            .unwrap();
        let books = Arc::new(Books::default());
        books.sync([(user.id, Nanos(1_000))], []);
        (store, dir, books, user.id)
    }

    /// A writer for `one_user`, with the faults `faults` makes from the books and the
    /// user's id.
    pub(super) async fn writer_for_one_user(
        faults: impl FnOnce(&Arc<Books>, i64) -> Arc<dyn WriteFaults>,
    ) -> (Store, tempfile::TempDir, Arc<Books>, LedgerWriter, i64) {
        let (store, dir, books, user_id) = one_user().await;
        let writer = LedgerWriter::spawn_with_faults(
            store.clone(),
            books.clone(),
            Default::default(),
            Some(faults(&books, user_id)),
        );
        (store, dir, books, writer, user_id)
    }

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
        let (store, _dir, books, writer, user_id) = writer_for_one_user(|_, _| {
            Arc::new(Script {
                transient: StdMutex::new(REFUSALS_BEFORE_PARKING + 1),
                ..Script::default()
            })
        })
        .await;
        let held = books.reserve(user_id, 0, None, Nanos(100)).unwrap();
        books.settle(held, Nanos(40));
        writer.submit(record(user_id, 40));
        writer.flush().await;
        assert_eq!(store.usage_count().await.unwrap(), 1);
        assert!(store.dead_letters().await.unwrap().is_empty());
        assert_eq!(
            store.user_by_id(user_id).await.unwrap().unwrap().balance,
            Nanos(960)
        );
        assert_eq!(books.balance(user_id), Nanos(960));
    }

    /// Two processes each clamp a bill to the room their own books see (`Books::settle`);
    /// together they pass the storable bound. The second debit is refused by the database,
    /// and its bill is cut to the room left rather than parked, which would serve the
    /// request for free (ledger simulation, seed 1797921379005780708 step 397941).
    #[tokio::test]
    async fn a_bill_past_the_storable_bound_is_cut_to_the_room_left_not_parked() {
        use crate::ledger::money::MAX_AMOUNT;
        let (store, _dir) = temp_store().await;
        let opening = Nanos(30 - MAX_AMOUNT.0);
        let user = store.create_user("u", "user", None, opening).await.unwrap();
        let process = || {
            let books = Arc::new(Books::default());
            books.sync([(user.id, opening)], []);
            let writer = LedgerWriter::spawn(store.clone(), books.clone(), Default::default());
            (books, writer)
        };
        let ((first, first_writer), (second, second_writer)) = (process(), process());
        for (books, writer, request_id) in [
            (&first, &first_writer, "r1"),
            (&second, &second_writer, "r2"),
        ] {
            let held = books.reserve(user.id, 0, None, Nanos::ZERO).unwrap();
            assert_eq!(
                books.settle(held, Nanos(20)),
                Nanos(20),
                "each sees room for 30"
            );
            writer.submit(UsageRecord {
                request_id: request_id.into(),
                ..record(user.id, 20)
            });
            writer.flush().await;
        }
        assert!(store.dead_letters().await.unwrap().is_empty());
        let stored = store.user_by_id(user.id).await.unwrap().unwrap().balance;
        assert_eq!(stored, Nanos(-MAX_AMOUNT.0));
        assert_eq!(store.usage_count().await.unwrap(), 2);
        for (request_id, billed) in [("r1", 20), ("r2", 10)] {
            let record = store
                .usage_by_request_id(request_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(record.cost, Nanos(billed), "{request_id}");
        }
        assert_eq!(store.total_usage_cost().await.unwrap(), opening - stored);
        // The second process's books never saw the first's debit: they hold what they
        // wrote themselves, with nothing of the cut part left unflushed.
        assert_eq!(second.balance(user.id), opening - Nanos(10));
        assert_eq!(second.available(user.id), opening - Nanos(10));
    }

    /// Fails the first `left` writes of a bill that was cut (a cost other than `priced`)
    /// as a timeout would.
    struct CutTimesOut {
        priced: Nanos,
        left: StdMutex<u32>,
    }

    impl WriteFaults for CutTimesOut {
        fn before_write(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
            if batch.iter().any(|r| r.cost != self.priced) && take(&self.left) {
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            Ok(())
        }

        fn after_commit(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
            Ok(())
        }

        fn retry_delay(&self, _: Duration) -> Duration {
            Duration::from_millis(1)
        }
    }

    /// A cut bill whose write fails (more often than a refused record may be before it is
    /// parked) is retried until written: parking it would serve the request for free.
    #[tokio::test]
    async fn a_cut_bill_that_fails_to_commit_is_retried_not_parked() {
        use crate::ledger::money::MAX_AMOUNT;
        let (store, _dir) = temp_store().await;
        let opening = Nanos(10 - MAX_AMOUNT.0);
        let user = store.create_user("u", "user", None, opening).await.unwrap();
        let books = Arc::new(Books::default());
        // The books missed another process's debits: they see room for the whole bill.
        books.sync([(user.id, Nanos::ZERO)], []);
        let faults = Arc::new(CutTimesOut {
            priced: Nanos(20),
            left: StdMutex::new(REFUSALS_BEFORE_PARKING + 2),
        });
        let writer = LedgerWriter::spawn_with_faults(
            store.clone(),
            books.clone(),
            Default::default(),
            Some(faults),
        );
        let held = books.reserve(user.id, 0, None, Nanos::ZERO).unwrap();
        assert_eq!(books.settle(held, Nanos(20)), Nanos(20));
        writer.submit(record(user.id, 20));
        writer.flush().await;
        assert!(store.dead_letters().await.unwrap().is_empty());
        let written = store.usage_by_request_id("r1").await.unwrap().unwrap();
        assert_eq!(written.cost, Nanos(10));
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            Nanos(-MAX_AMOUNT.0)
        );
        assert_eq!(books.unflushed(user.id), Nanos::ZERO);
    }

    /// The database is away: every attempt fails and the writer cannot reach it.
    #[derive(Default)]
    struct Outage {
        down: std::sync::atomic::AtomicBool,
    }

    impl WriteFaults for Outage {
        fn before_write(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            Ok(())
        }

        fn after_commit(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
            Ok(())
        }

        fn database_answers(&self) -> bool {
            !self.down.load(Ordering::SeqCst)
        }
    }

    pub(super) fn spill_at(path: &std::path::Path, max_bytes: u64) -> SpillOptions {
        let (spill, recovered) = Spill::recover(path.to_path_buf()).unwrap();
        SpillOptions {
            spill,
            recovered,
            max_bytes,
        }
    }

    /// During an outage the records go to the spill file (and past its bound the status
    /// says so); when the database returns they are committed in order, once, and the
    /// file is removed.
    #[tokio::test]
    async fn an_outage_spills_to_disk_and_the_backlog_is_replayed() {
        let (store, dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000_000))
            .await
            .unwrap();
        let books = Arc::new(Books::default());
        books.sync([(user.id, Nanos(1_000_000))], []);
        let outage = Arc::new(Outage::default());
        outage.down.store(true, Ordering::SeqCst);
        let path = dir.path().join("ledger.spill");
        let writer = LedgerWriter::spawn_with(
            store.clone(),
            books.clone(),
            Default::default(),
            Some(outage.clone()),
            Some(spill_at(&path, 1_000)),
        );
        for n in 0..50 {
            let held = books.reserve(user.id, 0, None, Nanos(100)).unwrap();
            books.settle(held, Nanos(10));
            writer.submit(UsageRecord {
                request_id: format!("r{n}"),
                ..record(user.id, 10)
            });
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let flushed = writer.flush();
        tokio::pin!(flushed);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut flushed)
                .await
                .is_err(),
            "nothing can be committed during the outage"
        );
        assert!(path.exists());
        assert!(writer.status().spill_full(), "{:?}", writer.status());
        assert_eq!(store.usage_count().await.unwrap(), 0);

        outage.down.store(false, Ordering::SeqCst);
        flushed.await;
        assert_eq!(store.usage_count().await.unwrap(), 50);
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            Nanos(1_000_000 - 500)
        );
        assert_eq!(books.balance(user.id), Nanos(1_000_000 - 500));
        assert_eq!(books.unflushed(user.id), Nanos::ZERO);
        assert!(!path.exists(), "the replayed file is removed");
        assert!(!writer.status().spill_full());
        assert_eq!(writer.status().backlog_batches(), 0);
    }

    /// A previous run died with batches in its spill file, one of them committed before
    /// the crash: each is counted once, and the books take the stored balance.
    #[tokio::test]
    async fn a_previous_runs_spill_file_is_replayed_once() {
        let (store, dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000))
            .await
            .unwrap();
        let path = dir.path().join("ledger.spill");
        let batch = |ids: &[&str]| -> Vec<UsageRecord> {
            ids.iter()
                .map(|id| UsageRecord {
                    request_id: (*id).into(),
                    ..record(user.id, 10)
                })
                .collect()
        };
        let (mut spill, _) = Spill::recover(path.clone()).unwrap();
        spill.append(&batch(&["a", "b"])).unwrap();
        spill.append(&batch(&["c"])).unwrap();
        drop(spill);
        // The first batch reached the database before the crash.
        store
            .write_usage_batch(&batch(&["a", "b"]), BatchAttempt::First)
            .await
            .unwrap();

        let books = Arc::new(Books::default());
        books.sync([(user.id, Nanos(980))], []);
        let writer = LedgerWriter::spawn_with(
            store.clone(),
            books.clone(),
            Default::default(),
            None,
            Some(spill_at(&path, 0)),
        );
        writer.flush().await;
        assert_eq!(store.usage_count().await.unwrap(), 3);
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            Nanos(970)
        );
        assert_eq!(books.balance(user.id), Nanos(970));
        assert!(!path.exists());
    }

    /// Seed 99: a batch committed, its reply was lost, and a reload read the committed
    /// balance before the retry found the batch written: the cost is counted once.
    #[tokio::test]
    async fn a_lost_reply_and_a_reload_before_the_retry_count_the_batch_once() {
        let (store, _dir, books, writer, user_id) = writer_for_one_user(|books, user_id| {
            let reloaded = books.clone();
            Arc::new(Script {
                lost_replies: StdMutex::new(1),
                // The reload sees the committed debit in the database.
                between: StdMutex::new(Some(Box::new(move || {
                    reloaded.sync([(user_id, Nanos(960))], []);
                }))),
                ..Script::default()
            })
        })
        .await;
        let held = books.reserve(user_id, 0, None, Nanos(100)).unwrap();
        books.settle(held, Nanos(40));
        writer.submit(record(user_id, 40));
        writer.flush().await;
        assert_eq!(store.usage_count().await.unwrap(), 1);
        assert_eq!(
            store.user_by_id(user_id).await.unwrap().unwrap().balance,
            Nanos(960)
        );
        assert_eq!(books.balance(user_id), Nanos(960), "counted once");
        assert_eq!(books.unflushed(user_id), Nanos::ZERO);
    }
}
