//! Keeps the writer task alive. A panic in it (a bug: the database's errors are retried
//! inside, never raised) would leave every later record queued with nobody to write it.
//! The supervisor catches it, reports the writer down (`/readyz`, the log, a metric),
//! waits, and runs the writer again on the same queue, state and backlog. The records in
//! flight go back to the backlog, less those whose costs the books already took; the
//! rest are retried by request id, so a batch the panic interrupted after its commit is
//! neither written nor debited twice.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Command, Writer};

/// The first wait before a restart; it doubles after each panic up to `MAX_RESTART_DELAY`.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// A run this long ends the doubling: the next panic waits `FIRST_RESTART_DELAY` again.
const STEADY_RUN: Duration = Duration::from_secs(60);

/// Runs the writer until every sender is gone and its backlog is committed, restarting
/// it after each panic.
pub(super) async fn supervise(mut writer: Writer, mut receiver: mpsc::UnboundedReceiver<Command>) {
    let mut delay = FIRST_RESTART_DELAY;
    loop {
        let started = Instant::now();
        let run = std::panic::AssertUnwindSafe(writer.run(&mut receiver))
            .catch_unwind()
            .await;
        if run.is_ok() {
            return;
        }
        if started.elapsed() >= STEADY_RUN {
            delay = FIRST_RESTART_DELAY;
        }
        writer.status.writer_down.store(true, Ordering::Relaxed);
        metrics::counter!("tokenhub_ledger_writer_restarts_total").increment(1);
        tracing::error!(
            restart_in_ms = delay.as_millis() as u64,
            backlog_batches = writer.backlog.pending.len(),
            "the ledger writer panicked; usage records wait in memory until it restarts"
        );
        let wait = writer
            .io
            .faults
            .as_ref()
            .map_or(delay, |faults| faults.retry_delay(delay));
        tokio::time::sleep(wait).await;
        writer.take_up_after_panic();
        writer.status.writer_down.store(false, Ordering::Relaxed);
        tracing::warn!("the ledger writer restarted");
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
}

impl Writer {
    /// Puts what the panicked run was committing back in the backlog.
    fn take_up_after_panic(&mut self) {
        // The restarted writer takes a fresh connection.
        self.io.usage.release();
        let in_flight = std::mem::take(&mut self.in_flight);
        if in_flight.replaying {
            let accounted = std::mem::take(&mut self.io.accounted);
            self.backlog.forget_oldest(accounted, &self.status);
        } else {
            self.requeue(in_flight.batch, in_flight.waiters);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::super::tests::writer_for_one_user;
    use super::super::{LedgerWriter, WriteFaults};
    use crate::ledger::books::Books;
    use crate::ledger::money::Nanos;
    use crate::store::{Store, StoreError, UsageRecord};

    /// Says whether a fault fires for this batch.
    type BatchTest = Box<dyn Fn(&[UsageRecord]) -> bool + Send + Sync>;

    /// Panics once, before a write or after a commit, at the first batch its test
    /// names; refuses (as the database refuses a value) every batch `refuse_when` names.
    #[derive(Default)]
    struct Faults {
        panic_before_write: StdMutex<Option<BatchTest>>,
        panic_after_commit: StdMutex<Option<BatchTest>>,
        refuse_when: Option<BatchTest>,
    }

    /// Panics the first time `when` holds for `batch`, and never again.
    fn panic_once(when: &StdMutex<Option<BatchTest>>, batch: &[UsageRecord]) {
        let mut when = when.lock().unwrap();
        if when.as_ref().is_some_and(|fires| fires(batch)) {
            *when = None;
            drop(when);
            panic!("injected writer panic");
        }
    }

    impl WriteFaults for Faults {
        fn before_write(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
            panic_once(&self.panic_before_write, batch);
            if self
                .refuse_when
                .as_ref()
                .is_some_and(|refuse| refuse(batch))
            {
                return Err(StoreError::OutOfRange("refused by the test".into()));
            }
            Ok(())
        }

        fn after_commit(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
            panic_once(&self.panic_after_commit, batch);
            Ok(())
        }

        /// A restart window long enough for the test to see the writer down.
        fn retry_delay(&self, _planned: Duration) -> Duration {
            Duration::from_millis(300)
        }
    }

    fn always() -> Option<BatchTest> {
        Some(Box::new(|_: &[UsageRecord]| true))
    }

    async fn writer_with(
        faults: Faults,
    ) -> (Store, tempfile::TempDir, Arc<Books>, LedgerWriter, i64) {
        writer_for_one_user(|_, _| Arc::new(faults)).await
    }

    /// Settles requests `ids` of 10 nano each and sends their records.
    fn settle(books: &Books, writer: &LedgerWriter, user_id: i64, ids: std::ops::Range<usize>) {
        for n in ids {
            let held = books.reserve(user_id, 0, None, Nanos(100)).unwrap();
            books.settle(held, Nanos(10));
            writer.submit(UsageRecord {
                request_id: format!("r{n}"),
                user_id,
                model: "m".into(),
                cost: Nanos(10),
                status: 200,
                ..Default::default()
            });
        }
    }

    /// Every record stored once, the database and the books agreeing on the balance.
    async fn assert_counted_once(store: &Store, books: &Books, user_id: i64, count: usize) {
        assert_eq!(store.usage_count().await.unwrap(), count as i64);
        let spent = Nanos(10 * count as i64);
        let stored = store.user_by_id(user_id).await.unwrap().unwrap().balance;
        assert_eq!(stored, Nanos(1_000) - spent);
        assert_eq!(books.balance(user_id), Nanos(1_000) - spent);
        assert_eq!(books.unflushed(user_id), Nanos::ZERO);
    }

    #[tokio::test]
    async fn a_panic_before_the_write_restarts_the_writer_and_keeps_every_record() {
        let (store, _dir, books, writer, user_id) = writer_with(Faults {
            panic_before_write: StdMutex::new(always()),
            ..Faults::default()
        })
        .await;
        settle(&books, &writer, user_id, 0..3);
        let mut seen_down = false;
        for _ in 0..200 {
            seen_down |= !writer.status().writer_running();
            if seen_down && writer.status().writer_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen_down, "the status said the writer was down");
        // Records sent after the restart are written too.
        settle(&books, &writer, user_id, 3..5);
        writer.flush().await;
        assert!(writer.status().writer_running());
        assert_counted_once(&store, &books, user_id, 5).await;
    }

    /// The batch committed, then the task panicked before the books took it: the retry
    /// finds it stored and counts it once.
    #[tokio::test]
    async fn a_panic_after_the_commit_counts_the_batch_once() {
        let (store, _dir, books, writer, user_id) = writer_with(Faults {
            panic_after_commit: StdMutex::new(always()),
            ..Faults::default()
        })
        .await;
        settle(&books, &writer, user_id, 0..4);
        writer.flush().await;
        assert_counted_once(&store, &books, user_id, 4).await;
    }

    /// A refused batch is split; its left half is committed and taken by the books, then
    /// the right half panics: only the right half is retried after the restart.
    #[tokio::test]
    async fn a_panic_midway_through_a_split_batch_retries_only_what_is_left() {
        let (store, _dir, books, writer, user_id) = writer_with(Faults {
            panic_before_write: StdMutex::new(Some(Box::new(|batch: &[UsageRecord]| {
                batch.len() == 2 && batch[0].request_id == "r2"
            }))),
            refuse_when: Some(Box::new(|batch: &[UsageRecord]| batch.len() == 4)),
            ..Faults::default()
        })
        .await;
        settle(&books, &writer, user_id, 0..4);
        writer.flush().await;
        assert_counted_once(&store, &books, user_id, 4).await;
    }
}
