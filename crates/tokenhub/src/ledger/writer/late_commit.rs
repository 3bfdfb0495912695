//! On SQLite a batch's attempt runs on a blocking thread, and the writer stops waiting for
//! it after `ATTEMPT_LIMIT`: the attempt itself goes on, and may commit after the writer
//! spilled the batch and tried it again. The record must still be stored and debited once.

use std::time::{Duration, Instant};

use super::LedgerWriter;
use super::tests::{one_user, spill_at};
use crate::ledger::money::Nanos;
use crate::store::UsageRecord;

#[tokio::test]
async fn an_attempt_that_commits_after_its_time_limit_is_counted_once() {
    let (store, dir, books, user_id) = one_user().await;
    // Another connection holds the write lock for longer than an attempt may take.
    let holder = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = LedgerWriter::spawn_with(
        store.clone(),
        books.clone(),
        Default::default(),
        None,
        Some(spill_at(&dir.path().join("ledger.spill"), 0)),
    );
    let held = books.reserve(user_id, 0, None, Nanos(100)).unwrap();
    books.settle(held, Nanos(10));
    writer.submit(UsageRecord {
        request_id: "late".into(),
        user_id,
        model: "m".into(),
        cost: Nanos(10),
        status: 200,
        ..Default::default()
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.status().backlog_batches() == 0 {
        assert!(Instant::now() < deadline, "the attempt never gave up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first attempt still waits for the lock on its thread; the retry may too.
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);

    tokio::time::timeout(Duration::from_secs(30), writer.flush())
        .await
        .expect("the backlog is written once the lock is free");
    assert_eq!(store.usage_count().await.unwrap(), 1);
    assert_eq!(
        store.user_by_id(user_id).await.unwrap().unwrap().balance,
        Nanos(990)
    );
    assert_eq!(store.recomputed_balance(user_id).await.unwrap(), Nanos(990));
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert_eq!(books.balance(user_id), Nanos(990));
    assert_eq!(books.unflushed(user_id), Nanos::ZERO);
    assert_eq!(writer.status().backlog_batches(), 0);
}
