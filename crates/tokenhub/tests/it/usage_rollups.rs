//! Usage history at scale (issue 13): the hourly rollups the ledger writer keeps in the
//! records' transaction. Σ rollup cost = Σ record cost after real traffic and a writer
//! retry; every summary equals the computation over raw records, also for ranges that do
//! not start or end on the hour; the retention purge deletes records and keeps rollups.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;
use tokenhub::ledger::writer::{LedgerWriter, WriteFaults};
use tokenhub::store::{
    BatchAttempt, GroupBy, StatusFilter, Store, StoreError, UsageAggregate, UsageFilter,
    UsageRecord,
};

use crate::harness::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Loses the reply of the first commit: the writer retries a batch already committed.
#[derive(Default)]
struct LoseFirstReply(Mutex<bool>);

impl WriteFaults for LoseFirstReply {
    fn before_write(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
        Ok(())
    }

    fn after_commit(&self, _: &[UsageRecord]) -> Result<(), StoreError> {
        let mut lost = self.0.lock().unwrap();
        if *lost {
            return Ok(());
        }
        *lost = true;
        Err(StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

fn record(n: i64, user_id: i64, key_id: i64, created_at: i64) -> UsageRecord {
    UsageRecord {
        request_id: format!("synthetic-{n}"),
        user_id,
        key_id,
        model: ["m-a", "m-b", "m-c"][(n % 3) as usize].into(),
        channel_id: (n % 4 != 0).then_some(n % 2 + 1),
        prompt_tokens: (n % 17) as u64 * 10,
        cached_tokens: (n % 5) as u64,
        completion_tokens: (n % 11) as u64 * 3,
        cost: Nanos(1_000 + n * 7 % 913),
        status: [200, 200, 200, 429, 502][(n % 5) as usize],
        latency_ms: (n * 37 % 9_000) as u64,
        price_tier: "standard".into(),
        created_at,
        ..Default::default()
    }
}

/// The same aggregates computed from every raw record in Rust (no rollups, no SQL sums).
fn raw_aggregates(
    records: &[UsageRecord],
    filter: &UsageFilter,
    group: GroupBy,
) -> BTreeMap<String, (i64, i64, i64, i64, Nanos)> {
    let mut groups = BTreeMap::new();
    for r in records.iter().filter(|r| {
        filter.user_id.is_none_or(|u| r.user_id == u)
            && filter.key_id.is_none_or(|k| r.key_id == k)
            && filter.model.as_ref().is_none_or(|m| &r.model == m)
            && filter.channel_id.is_none_or(|c| r.channel_id == Some(c))
            && filter.from.is_none_or(|from| r.created_at >= from)
            && filter.to.is_none_or(|to| r.created_at < to)
            && match filter.status {
                None => true,
                Some(StatusFilter::Ok) => r.status < 400,
                Some(StatusFilter::Error) => r.status >= 400,
                Some(StatusFilter::Code(code)) => r.status == code,
            }
    }) {
        let key = match group {
            GroupBy::Day => {
                let date = time::OffsetDateTime::from_unix_timestamp(r.created_at / 1000)
                    .unwrap()
                    .date();
                format!(
                    "{:04}-{:02}-{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                )
            }
            GroupBy::Model => r.model.clone(),
            GroupBy::User => r.user_id.to_string(),
            GroupBy::Key => r.key_id.to_string(),
        };
        let entry = groups.entry(key).or_insert((0, 0, 0, 0, Nanos::ZERO));
        entry.0 += 1;
        entry.1 += i64::from(r.status >= 400);
        entry.2 += r.prompt_tokens as i64;
        entry.3 += r.completion_tokens as i64;
        entry.4 += r.cost;
    }
    groups
}

fn by_group(aggregates: Vec<UsageAggregate>) -> BTreeMap<String, (i64, i64, i64, i64, Nanos)> {
    aggregates
        .into_iter()
        .map(|a| {
            (
                a.group,
                (
                    a.requests,
                    a.errors,
                    a.prompt_tokens,
                    a.completion_tokens,
                    a.cost,
                ),
            )
        })
        .collect()
}

async fn assert_sums_agree(store: &Store) {
    let records = store.total_usage_cost().await.unwrap();
    assert!(records > Nanos::ZERO);
    assert_eq!(
        store.rollup_table_costs().await.unwrap(),
        [records; 5],
        "Σ rollups = Σ records, in every rollup table (running totals: each key's last row)"
    );
}

#[tokio::test]
async fn rollup_cost_equals_record_cost_after_mixed_traffic_and_a_writer_retry() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (user, key) = h
            .user_with_key("roller", Nanos(1_000_000_000), KeyOptions::default())
            .await;
        for (n, model) in ["mock-gpt", "mock-free", "alias-model", "no-such-model"]
            .iter()
            .enumerate()
        {
            let body = json!({"model": model, "stream": n % 2 == 0,
                "messages": [{"role": "user", "content": "hello there"}]});
            h.chat(&key, body).await.bytes().await.unwrap();
        }
        let store = h.gateway().store.clone();
        h.gateway().writer.flush().await;
        assert_sums_agree(&store).await;

        // A second writer whose first commit loses its reply: the retry finds the batch
        // committed (`Written::Earlier`) and the rollups count it once.
        let books = h.gateway().books.clone();
        let writer = LedgerWriter::spawn_with_faults(
            store.clone(),
            books.clone(),
            Default::default(),
            Some(Arc::new(LoseFirstReply::default())),
        );
        let now = tokenhub::store::now_ms();
        for n in 0..5 {
            let held = books.reserve(user.id, 0, None, Nanos(5_000)).unwrap();
            let r = record(n, user.id, 0, now);
            books.settle(held, r.cost);
            writer.submit(r);
        }
        writer.flush().await;
        assert_eq!(
            store
                .usage_by_request_id("synthetic-4")
                .await
                .unwrap()
                .map(|r| r.cost),
            Some(record(4, user.id, 0, now).cost)
        );
        assert_sums_agree(&store).await;
        // Delivered again as a retry, the batch is found and not counted again.
        let batch: Vec<UsageRecord> = (0..5).map(|n| record(n, user.id, 0, now)).collect();
        store
            .write_usage_batch(&batch, BatchAttempt::Retry)
            .await
            .unwrap();
        assert_sums_agree(&store).await;
        assert_eq!(
            store.recomputed_balance(user.id).await.unwrap(),
            h.stored_balance(user.id).await
        );
        h.shutdown().await;
    }
}

/// A gateway whose own purge job keeps every record (these tests write old ones).
async fn keeping_records(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, _| settings.usage.retention_days = 0).await
}

/// The two groups with the most requests (then cost) lead, and the rest sum exactly to
/// `others`.
async fn assert_top_groups_cut_from(
    store: &Store,
    filter: &UsageFilter,
    group: GroupBy,
    all: &[UsageAggregate],
) {
    let top = store.top_usage_aggregates(filter, group, 2).await.unwrap();
    let mut ranked = all.to_vec();
    ranked.sort_by_key(|g| std::cmp::Reverse((g.requests, g.cost)));
    let rest = ranked.split_off(ranked.len().min(2));
    assert_eq!(top.total_groups, all.len(), "{filter:?} {group:?}");
    assert_eq!(
        top.groups
            .iter()
            .map(|g| (g.requests, g.cost))
            .collect::<Vec<_>>(),
        ranked
            .iter()
            .map(|g| (g.requests, g.cost))
            .collect::<Vec<_>>(),
        "{filter:?} {group:?}"
    );
    let others = top.others.map(|o| (o.group, o.requests, o.errors, o.cost));
    let summed = (!rest.is_empty()).then(|| {
        let sum = |f: fn(&UsageAggregate) -> i64| rest.iter().map(f).sum::<i64>();
        (
            "others".to_string(),
            sum(|g| g.requests),
            sum(|g| g.errors),
            Nanos(sum(|g| g.cost.0)),
        )
    });
    assert_eq!(others, summed, "{filter:?} {group:?}");
}

#[tokio::test]
async fn summaries_equal_the_computation_over_raw_records() {
    for backend in backends() {
        let h = keeping_records(backend).await;
        let store = h.gateway().store.clone();
        // Three days of records at uneven times, three users, five keys.
        let start = 20_000 * DAY + 5 * HOUR + 123;
        let records: Vec<UsageRecord> = (0..600)
            .map(|n| record(n, n % 3 + 1, n % 5 + 1, start + n * 431_117))
            .chain(
                // A key used on the first and third days only.
                [
                    (1_000, 0),
                    (1_001, 1),
                    (1_002, 2 * DAY),
                    (1_003, 2 * DAY + 1),
                ]
                .map(|(n, at)| record(n, 1, 9, start + at)),
            )
            .collect();
        // Out of time order: every other batch first, then the rest newest first, so a
        // key's running totals get records of days before, between and after its rows.
        let batches: Vec<&[UsageRecord]> = records.chunks(97).collect();
        let (even, odd): (Vec<_>, Vec<_>) =
            batches.iter().enumerate().partition(|(n, _)| n % 2 == 0);
        for (_, batch) in even.into_iter().chain(odd.into_iter().rev()) {
            store
                .write_usage_batch(batch, BatchAttempt::First)
                .await
                .unwrap();
        }
        assert_sums_agree(&store).await;
        let unaligned_from = start + 7 * HOUR + 1_234;
        let unaligned_to = start + 50 * HOUR + 77;
        let first_day = start - start % DAY;
        let filters = [
            UsageFilter::default(),
            // Whole days: grouped by user from the per-user daily rollups, by key from the
            // running totals per key (from and to, from only, to only, a day before any
            // record; key 9 has none on the second day).
            UsageFilter {
                from: Some(first_day + DAY),
                to: Some(first_day + 3 * DAY),
                ..UsageFilter::default()
            },
            UsageFilter {
                from: Some(first_day + DAY),
                ..UsageFilter::default()
            },
            UsageFilter {
                to: Some(first_day + 2 * DAY),
                ..UsageFilter::default()
            },
            UsageFilter {
                from: Some(first_day - DAY),
                to: Some(first_day),
                ..UsageFilter::default()
            },
            // One user's days: by day or user from the per-user daily rollups.
            UsageFilter {
                user_id: Some(2),
                ..UsageFilter::default()
            },
            UsageFilter {
                user_id: Some(3),
                from: Some(first_day + DAY),
                ..UsageFilter::default()
            },
            UsageFilter {
                key_id: Some(3),
                from: Some(first_day + DAY),
                to: Some(first_day + 2 * DAY),
                ..UsageFilter::default()
            },
            // Whole days but an hour's part of a day: hourly rollups.
            UsageFilter {
                user_id: Some(1),
                from: Some(first_day + DAY + 5 * HOUR),
                ..UsageFilter::default()
            },
            UsageFilter {
                from: Some(unaligned_from),
                to: Some(unaligned_to),
                ..UsageFilter::default()
            },
            UsageFilter {
                user_id: Some(2),
                from: Some(unaligned_from),
                ..UsageFilter::default()
            },
            UsageFilter {
                key_id: Some(4),
                to: Some(unaligned_to),
                status: Some(StatusFilter::Ok),
                ..UsageFilter::default()
            },
            UsageFilter {
                model: Some("m-b".into()),
                channel_id: Some(2),
                status: Some(StatusFilter::Error),
                ..UsageFilter::default()
            },
            UsageFilter {
                status: Some(StatusFilter::Code(429)),
                from: Some(start + 30 * HOUR),
                to: Some(start + 30 * HOUR + 999_999),
                ..UsageFilter::default()
            },
        ];
        for filter in &filters {
            for group in [GroupBy::Day, GroupBy::Model, GroupBy::User, GroupBy::Key] {
                let aggregates = store.usage_aggregates(filter, group).await.unwrap();
                assert!(
                    aggregates
                        .iter()
                        .all(|a| a.latency_p50_ms.is_some() && a.latency_p95_ms.is_some()),
                    "{backend:?}: percentiles from the histograms"
                );
                assert_top_groups_cut_from(&store, filter, group, &aggregates).await;
                assert_eq!(
                    by_group(aggregates),
                    raw_aggregates(&records, filter, group),
                    "{backend:?} {filter:?} {group:?}"
                );
            }
        }
        h.shutdown().await;
    }
}

#[tokio::test]
async fn the_retention_purge_deletes_old_records_and_keeps_rollups() {
    for backend in backends() {
        let h = keeping_records(backend).await;
        let store = h.gateway().store.clone();
        let user = tokenhub::accounts::create_user(&store, "old", "user", Nanos(10_000_000))
            .await
            .unwrap();
        let now = tokenhub::store::now_ms();
        // 120 days of records, one every 12 hours.
        let records: Vec<UsageRecord> = (0..240)
            .map(|n| record(n, user.id, 1, now - 120 * DAY + n * 12 * HOUR))
            .collect();
        store
            .write_usage_batch(&records, BatchAttempt::First)
            .await
            .unwrap();
        let everything = UsageFilter::default();
        let before = by_group(
            store
                .usage_aggregates(&everything, GroupBy::Day)
                .await
                .unwrap(),
        );
        let balance = store.recomputed_balance(user.id).await.unwrap();

        let cutoff = now - 90 * DAY;
        let purged = tokenhub::ledger::retention::purge_before(&store, cutoff)
            .await
            .unwrap();
        let old = records.iter().filter(|r| r.created_at < cutoff).count();
        assert_eq!(purged, old as u64);
        assert_eq!(store.usage_count().await.unwrap(), (240 - old) as i64);
        assert!(
            store
                .usage_by_request_id("synthetic-0")
                .await
                .unwrap()
                .is_none()
        );
        // Summaries, Σ rollup cost and the recomputed balance are as before the purge.
        assert_eq!(
            by_group(
                store
                    .usage_aggregates(&everything, GroupBy::Day)
                    .await
                    .unwrap()
            ),
            before
        );
        let total = records.iter().fold(Nanos::ZERO, |sum, r| sum + r.cost);
        assert_eq!(store.rollup_table_costs().await.unwrap(), [total; 5]);
        assert_eq!(store.recomputed_balance(user.id).await.unwrap(), balance);
        h.shutdown().await;
    }
}

/// The listing counts matching records up to 10,000 (or the end of the page asked for)
/// and says when more match, so a page of a large history does not count all of it.
#[tokio::test]
async fn the_listing_counts_up_to_a_cap_and_says_when_more_match() {
    for backend in backends() {
        let h = keeping_records(backend).await;
        let store = h.gateway().store.clone();
        let user = tokenhub::accounts::create_user(&store, "many", "user", Nanos(10_000_000))
            .await
            .unwrap();
        let now = tokenhub::store::now_ms();
        let records: Vec<UsageRecord> = (0..10_003)
            .map(|n| record(n, user.id, 1, now - 10_003 + n))
            .collect();
        for batch in records.chunks(2_000) {
            store
                .write_usage_batch(batch, BatchAttempt::First)
                .await
                .unwrap();
        }
        let root = tokenhub::accounts::user_named(&store, "root")
            .await
            .unwrap();
        let (_, token) = tokenhub::accounts::admin_token::issue(
            &store,
            &tokenhub::accounts::Actor::cli(),
            &root,
            "ops",
        )
        .await
        .unwrap();
        let listing = |query: &'static str| {
            let request = h
                .http
                .get(format!("{}/api/admin/usage?{query}", h.base))
                .bearer_auth(&token);
            async move {
                let page: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
                (
                    page["total"].as_i64().unwrap(),
                    page["total_capped"].as_bool().unwrap(),
                    page["data"].as_array().unwrap().len(),
                )
            }
        };
        assert_eq!(listing("limit=50").await, (10_000, true, 50));
        // Past the cap, the count reaches the end of the page asked for.
        assert_eq!(listing("limit=50&offset=9950").await, (10_000, true, 50));
        assert_eq!(listing("limit=10&offset=9995").await, (10_003, false, 8));
        // A filter matching fewer records counts them exactly.
        assert_eq!(listing("status=502&limit=5").await, (2_000, false, 5));
        h.shutdown().await;
    }
}
