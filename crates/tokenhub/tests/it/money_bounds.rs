//! Money at its edges: absurd upstream usage reports, `n` choices, output past
//! `max_tokens`, batches the database refuses, credits beyond the storable bound, and the
//! repair of a SQLite database an earlier overflow corrupted. Each test reproduces an
//! attack of issue #12 and checks that the books still add up to the nano.

use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use tokenhub::accounts::{self, KeyOptions};
use tokenhub::ledger::money::{MAX_AMOUNT, MAX_REQUEST_COST, Nanos};
use tokenhub::store::{Store, UsageRecord};

use crate::harness::{Backend, Harness, backends, model, request_id, user_says};

/// $100 per 1M tokens in and out: 100,000 nano-USD a token. Context 8,192.
const EXPENSIVE: &str = "mock-expensive";
const NANO_PER_TOKEN: i64 = 100_000;

async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, _| {
        settings.models.push(model(EXPENSIVE, "100", "100"));
        settings.channels[0].models.push(EXPENSIVE.into());
    })
    .await
}

fn absurd_report(completion: u64) -> Value {
    json!({"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10})
}

/// Σ cost of records = Σ debits, and every balance = Σ credits − Σ cost.
async fn assert_books_balance(h: &Harness, user_id: i64, opening: Nanos) {
    let store = &h.gateway().store;
    h.gateway().writer.flush().await;
    let balance = h.stored_balance(user_id).await;
    let spent = store.total_usage_cost().await.unwrap();
    assert_eq!(
        balance,
        Nanos(opening.0 - spent.0),
        "balance = opening − Σ cost"
    );
    assert_eq!(store.recomputed_balance(user_id).await.unwrap(), balance);
}

#[tokio::test]
async fn an_absurd_usage_report_is_billed_at_the_bound_and_the_books_stay_readable() {
    for backend in backends() {
        let h = start(backend).await;
        let opening = Nanos::from_usd(5);
        let (user, key) = h
            .user_with_key("victim", opening, KeyOptions::default())
            .await;
        let response = h
            .chat(
                &key,
                json!({"model": EXPENSIVE, "messages": user_says("hi"),
                       "mock": {"usage_override": absurd_report(1_000_000_000_000_000)}}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let record = h.record(&request_id(&response)).await;
        // No max_tokens: at most twice the 8,192-token window is billed.
        assert_eq!(record.completion_tokens, 16_384);
        assert_eq!(record.cost, Nanos((10 + 16_384) * NANO_PER_TOKEN));
        assert_books_balance(&h, user.id, opening).await;

        // The database is still readable: a reload, the user list, a revocation, a restart.
        h.reload().await;
        assert!(!h.gateway().store.all_users().await.unwrap().is_empty());
        let again = h
            .chat(
                &key,
                json!({"model": "mock-gpt", "messages": user_says("still there?")}),
            )
            .await;
        assert_eq!(again.status(), 200);
        let balance = h.stored_balance(user.id).await;
        let store = Store::connect(&h.database_url, h.secret_key.as_ref())
            .await
            .expect("reopens");
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            balance
        );
        store.close().await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn output_past_max_tokens_is_not_billed() {
    for backend in backends() {
        let h = start(backend).await;
        let opening = Nanos::from_usd(1);
        let (user, key) = h
            .user_with_key("overrun", opening, KeyOptions::default())
            .await;
        for stream in [false, true] {
            let response = h
                .chat(
                    &key,
                    json!({"model": EXPENSIVE, "messages": user_says("hi"), "max_tokens": 100,
                           "stream": stream, "mock": {"usage_override": absurd_report(141)}}),
                )
                .await;
            assert_eq!(response.status(), 200);
            let id = request_id(&response);
            let _ = response.bytes().await;
            let record = h.record_eventually(&id).await;
            assert_eq!(record.completion_tokens, 100, "stream={stream}");
            assert_eq!(record.cost, Nanos(110 * NANO_PER_TOKEN));
        }
        assert_books_balance(&h, user.id, opening).await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn every_choice_of_n_is_reserved_so_concurrency_cannot_overspend() {
    for backend in backends() {
        let h = start(backend).await;
        // n=128, max_tokens 10: a reservation of ≥ 1,280 output tokens ($0.128) each, so a
        // $0.30 balance holds two requests at a time, whatever the concurrency.
        let opening = Nanos(300_000_000);
        let (user, key) = h
            .user_with_key("choices", opening, KeyOptions::default())
            .await;
        let request = json!({"model": EXPENSIVE, "messages": user_says("Hello there"), "n": 128,
                             "max_tokens": 10, "mock": {"ttfb_ms": 50}});
        let calls = (0..50).map(|_| h.chat(&key, request.clone()));
        let responses = futures_util::future::join_all(calls).await;
        let ok: Vec<_> = responses.iter().filter(|r| r.status() == 200).collect();
        let refused = responses.iter().filter(|r| r.status() == 429).count();
        assert_eq!(ok.len() + refused, 50);
        assert!(
            !ok.is_empty() && refused > 0,
            "ok={} refused={refused}",
            ok.len()
        );
        let balance = h.stored_balance(user.id).await;
        assert!(balance >= Nanos::ZERO, "no overdraft: {balance}");
        for response in ok {
            let record = h.record(&request_id(response)).await;
            assert!(record.completion_tokens <= 1_280, "{record:?}");
            assert!(
                record.completion_tokens > 128,
                "the mock bills n choices: {record:?}"
            );
        }
        assert_books_balance(&h, user.id, opening).await;
        // n outside OpenAI's range is the client's mistake.
        for n in [0, 129] {
            let response = h
                .chat(
                    &key,
                    json!({"model": "mock-gpt", "messages": user_says("x"), "n": n}),
                )
                .await;
            assert_eq!(response.status(), 400);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["param"], "n");
        }
        h.shutdown().await;
    }
}

fn record(request_id: &str, user_id: i64, cost: Nanos) -> UsageRecord {
    UsageRecord {
        request_id: request_id.into(),
        user_id,
        key_id: 0,
        model: "mock-gpt".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        cost,
        status: 200,
        created_at: 1,
        ..Default::default()
    }
}

/// One batch: a record the database refuses (a cost beyond the per-request bound) is
/// parked, a debit that would take a balance past the storable floor (another process's
/// books did not see it there) is cut to the room left, and every other record is
/// written, two of the largest possible costs summed exactly.
#[tokio::test]
async fn a_refused_record_is_parked_a_debit_past_the_floor_is_cut_and_the_rest_written() {
    for backend in backends() {
        let h = start(backend).await;
        let store = &h.gateway().store;
        let payer = accounts::create_user(store, "payer", "user", Nanos::from_usd(1))
            .await
            .unwrap();
        let broke = accounts::create_user(store, "broke", "user", Nanos::ZERO)
            .await
            .unwrap();
        // At the lowest storable balance behind the books' back: they still see zero.
        let pool = AnyPool::connect(&h.database_url).await.unwrap();
        sqlx::query("UPDATE users SET balance_nano = $1 WHERE id = $2")
            .bind(-MAX_AMOUNT.0)
            .bind(broke.id)
            .execute(&pool)
            .await
            .unwrap();
        // Settled as the relay settles (the books hold the cost until it is written).
        let books = &h.gateway().books;
        let writer = &h.gateway().writer;
        let beyond = Nanos(MAX_REQUEST_COST.0 + 1);
        for (id, user_id, cost) in [
            ("p1", payer.id, MAX_REQUEST_COST),
            ("refused", payer.id, beyond),
            ("floor", broke.id, Nanos(7)),
            ("p2", payer.id, MAX_REQUEST_COST),
            ("p3", payer.id, Nanos(3)),
        ] {
            let held = books.reserve(user_id, 0, None, Nanos::ZERO).unwrap();
            assert_eq!(books.settle(held, cost), cost);
            writer.submit(record(id, user_id, cost));
        }
        writer.flush().await;

        assert_eq!(store.usage_count().await.unwrap(), 4);
        let parked = store.dead_letters().await.unwrap();
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert_eq!(parked[0].0, "refused");
        let floor = store.usage_by_request_id("floor").await.unwrap().unwrap();
        assert_eq!(floor.cost, Nanos::ZERO, "cut to the room left");
        assert_eq!(
            store.user_by_id(broke.id).await.unwrap().unwrap().balance,
            Nanos(-MAX_AMOUNT.0)
        );
        let spent = Nanos(2 * MAX_REQUEST_COST.0 + 3);
        assert_eq!(store.total_usage_cost().await.unwrap(), spent);
        let payer_balance = store.user_by_id(payer.id).await.unwrap().unwrap().balance;
        assert_eq!(payer_balance, Nanos(Nanos::from_usd(1).0 - spent.0));
        assert_eq!(
            store.recomputed_balance(payer.id).await.unwrap(),
            payer_balance
        );
        // The books let go of the parked cost and of the part cut, so neither account
        // is held down in memory.
        assert_eq!(books.unflushed(payer.id), Nanos::ZERO);
        assert_eq!(books.unflushed(broke.id), Nanos::ZERO);
        pool.close().await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn credits_cannot_push_a_balance_beyond_the_bound() {
    for backend in backends() {
        let h = start(backend).await;
        let store = &h.gateway().store;
        // One adjustment is at most MAX_ADJUSTMENT, so the account starts that far below.
        let start = MAX_AMOUNT - accounts::user_admin::MAX_ADJUSTMENT;
        let user = accounts::create_user(store, "rich", "user", start)
            .await
            .unwrap();
        let top_up = accounts::user_admin::MAX_ADJUSTMENT;
        accounts::user_admin::adjust_balance(store, user.id, top_up, "top up")
            .await
            .expect("up to the bound");
        let error = accounts::user_admin::adjust_balance(store, user.id, Nanos(1), "one more")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("beyond"), "{error}");
        let error = accounts::user_admin::adjust_balance(store, user.id, Nanos(i64::MAX), "x")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("at most"), "{error}");
        assert_eq!(
            store.user_by_id(user.id).await.unwrap().unwrap().balance,
            MAX_AMOUNT
        );
        assert_eq!(store.recomputed_balance(user.id).await.unwrap(), MAX_AMOUNT);
        h.shutdown().await;
    }
}

/// A database written before migration 0008, where `spent_nano + ?` overflowed into a
/// REAL, is repaired when the gateway opens it: every money column is an integer again
/// and equals what the ledger says.
#[tokio::test]
async fn a_sqlite_database_corrupted_by_an_overflow_is_repaired_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db", dir.path().display());
    let store = Store::connect(&url, None).await.unwrap();
    let user = accounts::create_user(&store, "old", "user", Nanos::from_usd(2))
        .await
        .unwrap();
    let (key, _) = accounts::issue_key(&store, &user, KeyOptions::default())
        .await
        .unwrap();
    store
        .write_usage_batch(
            &[UsageRecord {
                key_id: key.id,
                ..record("before", user.id, Nanos(250))
            }],
            tokenhub::store::BatchAttempt::First,
        )
        .await
        .unwrap();
    store.close().await;

    // Undo migration 0008 and let an overflow corrupt both money columns, as main did.
    // (Its bound on a record's cost is a CHECK constraint since 0028, not a trigger.)
    let pool = AnyPool::connect(&url).await.unwrap();
    for trigger in [
        "users_balance_bounded_insert",
        "users_balance_bounded_update",
        "api_keys_money_bounded_insert",
        "api_keys_money_bounded_update",
        "ledger_entries_amount_bounded",
    ] {
        sqlx::query(&format!("DROP TRIGGER {trigger}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("DROP TABLE usage_dead_letters")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 8")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE api_keys SET spent_nano = spent_nano + 9223372036854775807")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET balance_nano = balance_nano + 9223372036854775807 WHERE id = $1")
        .bind(user.id)
        .execute(&pool)
        .await
        .unwrap();
    let kinds: (String, String) = {
        let row = sqlx::query(
            "SELECT (SELECT typeof(balance_nano) FROM users WHERE id = $1), \
                    (SELECT typeof(spent_nano) FROM api_keys WHERE id = $2)",
        )
        .bind(user.id)
        .bind(key.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        kinds,
        ("real".to_string(), "real".to_string()),
        "corrupted as on main"
    );
    pool.close().await;

    let store = Store::connect(&url, None).await.expect("opens and repairs");
    let repaired = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(repaired.balance, Nanos(Nanos::from_usd(2).0 - 250));
    assert_eq!(
        store.recomputed_balance(user.id).await.unwrap(),
        repaired.balance
    );
    assert_eq!(
        store.key_by_id(key.id).await.unwrap().unwrap().spent,
        Nanos(250)
    );
    assert!(!store.all_users().await.unwrap().is_empty());
    store.close().await;
}
