//! The shared-state scripts against a real Redis this test starts (`redis-server` on a
//! free port, no persistence): admission, versioned readings, an instance's lease, and
//! the round trip one admission adds to a request (printed; bench/RESULTS.md).
//!
//! Skipped, with the reason printed, without a `redis-server` binary.

use std::time::{Duration, Instant};

use tokenhub::ledger::books::Refusal;
use tokenhub::ledger::money::Nanos;
use tokenhub::shared::money::{Account, Admission, Reading, Request};
use tokenhub::shared::{SharedState, Tuning};
use tokenhub::store::Versioned;

use crate::cluster::{RedisServer, free_port, redis_available};

fn request(user_id: i64, amount: i64) -> Request {
    Request {
        user_id,
        key_id: user_id * 10,
        key_quota: None,
        rpm: None,
        tpm: None,
        tokens: 0,
        amount: Nanos(amount),
    }
}

fn reading(amount: i64, version: i64) -> Reading {
    Reading::Read(Versioned {
        amount: Nanos(amount),
        version,
    })
}

#[tokio::test]
async fn admissions_are_shared_versioned_and_leased() {
    if !redis_available() {
        eprintln!("skipping the shared state test: no redis-server binary");
        return;
    }
    let redis = RedisServer::start(free_port());
    let prefix = format!("th-unit-{}:", uuid::Uuid::new_v4().simple());
    let one = SharedState::connect(&redis.url(), &prefix).await.unwrap();
    let two = SharedState::connect(&redis.url(), &prefix).await.unwrap();
    one.spawn_heartbeat(|| async {});
    two.spawn_heartbeat(|| async {});

    // An amount Redis does not hold is read first.
    let first = one.admit_request(request(1, 100)).await.unwrap();
    assert!(
        matches!(first, Admission::Missing(Account::User(1))),
        "{first:?}"
    );
    one.update_money(Account::User(1), reading(250, 1), Nanos::ZERO)
        .await
        .unwrap();

    // Two instances draw on one balance.
    assert!(matches!(
        one.admit_request(request(1, 100)).await.unwrap(),
        Admission::Admitted
    ));
    assert!(matches!(
        two.admit_request(request(1, 100)).await.unwrap(),
        Admission::Admitted
    ));
    let refused = one.admit_request(request(1, 100)).await.unwrap();
    assert!(
        matches!(
            refused,
            Admission::Refused(Refusal::Balance {
                available: Nanos(50),
                ..
            })
        ),
        "{refused:?}"
    );

    // An older reading is ignored; a newer one replaces it.
    one.update_money(Account::User(1), reading(10_000, 0), Nanos::ZERO)
        .await
        .unwrap();
    let still = one.admit_request(request(1, 60)).await.unwrap();
    assert!(matches!(still, Admission::Refused(_)), "{still:?}");
    // Instance one's request settles at 40 and its batch commits: −40, with the new reading.
    one.update_money(Account::User(1), Reading::None, Nanos(40 - 100))
        .await
        .unwrap();
    one.update_money(Account::User(1), reading(210, 2), Nanos(-40))
        .await
        .unwrap();
    // 210 stored − 100 held by instance two.
    let refused = one.admit_request(request(1, 111)).await.unwrap();
    assert!(
        matches!(
            refused,
            Admission::Refused(Refusal::Balance {
                available: Nanos(110),
                ..
            })
        ),
        "{refused:?}"
    );

    // A key's quota, and its RPM.
    let mut quota = request(2, 30);
    quota.key_quota = Some(Nanos(50));
    one.update_money(Account::User(2), reading(1_000, 1), Nanos::ZERO)
        .await
        .unwrap();
    let missing = one.admit_request(quota).await.unwrap();
    assert!(
        matches!(missing, Admission::Missing(Account::Key(20))),
        "{missing:?}"
    );
    one.update_money(Account::Key(20), reading(0, 1), Nanos::ZERO)
        .await
        .unwrap();
    assert!(matches!(
        one.admit_request(quota).await.unwrap(),
        Admission::Admitted
    ));
    let over = two.admit_request(quota).await.unwrap();
    assert!(
        matches!(
            over,
            Admission::Refused(Refusal::KeyQuota {
                remaining: Nanos(20),
                ..
            })
        ),
        "{over:?}"
    );
    let mut rpm = request(3, 0);
    rpm.rpm = Some(2);
    assert!(matches!(
        one.admit_request(rpm).await.unwrap(),
        Admission::Admitted
    ));
    assert!(matches!(
        two.admit_request(rpm).await.unwrap(),
        Admission::Admitted
    ));
    assert!(matches!(
        one.admit_request(rpm).await.unwrap(),
        Admission::Limited(_)
    ));

    // Instance two dies: its hold of 100 on user 1 is gone within its lease, and the
    // amount with it (two may have died between a commit and its share), read again.
    drop(two);
    let died = Instant::now();
    loop {
        match one.admit_request(request(1, 200)).await.unwrap() {
            Admission::Admitted => break,
            Admission::Missing(Account::User(1)) => one
                .load_money(Account::User(1), reading(210, 2))
                .await
                .unwrap(),
            _ => {}
        }
        assert!(
            died.elapsed() < Duration::from_secs(5),
            "the dead instance's hold stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "a dead instance's hold was released after {:?}",
        died.elapsed()
    );

    // What one admission (limits and reservation) adds to a request: one round trip.
    one.update_money(Account::User(4), reading(i64::MAX / 4, 1), Nanos::ZERO)
        .await
        .unwrap();
    let mut timed = request(4, 1);
    (timed.rpm, timed.tpm, timed.tokens) = (Some(1_000_000), Some(1_000_000_000), 10);
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        let admitted = one.admit_request(timed).await.unwrap();
        samples.push(started.elapsed());
        assert!(matches!(admitted, Admission::Admitted));
    }
    samples.sort();
    let (p50, p99) = (samples[1000], samples[1980]);
    eprintln!("one shared admission: p50 {p50:?}, p99 {p99:?}");
    assert!(p50 < Duration::from_millis(20), "p50 {p50:?}");
}

/// Amounts beyond 2^53 nano-dollars (about $9M), where a double no longer holds every
/// integer: the scripts compare them to the nano. Compared as doubles, a balance of
/// `MAX_AMOUNT` − 1 read as `MAX_AMOUNT` and admitted one nano-dollar more than it.
#[tokio::test]
async fn amounts_beyond_two_to_the_53_are_compared_to_the_nano() {
    if !redis_available() {
        eprintln!("skipping the shared state test: no redis-server binary");
        return;
    }
    let redis = RedisServer::start(free_port());
    let prefix = format!("th-unit-{}:", uuid::Uuid::new_v4().simple());
    let one = SharedState::connect(&redis.url(), &prefix).await.unwrap();
    let balance = 1_000_000_000_000_000_000 - 1;
    one.update_money(Account::User(1), reading(balance, 1), Nanos::ZERO)
        .await
        .unwrap();
    let refused = one.admit_request(request(1, balance + 1)).await.unwrap();
    assert!(
        matches!(refused, Admission::Refused(Refusal::Balance { available, .. }) if available == Nanos(balance)),
        "{refused:?}"
    );

    // Holds beyond 2^53 are summed exactly.
    let first = (1 << 53) + 1;
    let admitted = one.admit_request(request(1, first)).await.unwrap();
    assert!(matches!(admitted, Admission::Admitted), "{admitted:?}");
    let rest = balance - first;
    let refused = one.admit_request(request(1, rest + 1)).await.unwrap();
    assert!(
        matches!(refused, Admission::Refused(Refusal::Balance { available, .. }) if available == Nanos(rest)),
        "{refused:?}"
    );
    let admitted = one.admit_request(request(1, rest)).await.unwrap();
    assert!(matches!(admitted, Admission::Admitted), "{admitted:?}");

    // A key's quota the same way, and a negative balance reported to the nano.
    let quota = 1_000_000_000_000_000_000 - 3;
    let spent = (1 << 53) + 5;
    one.update_money(Account::User(2), reading(i64::MAX / 2, 1), Nanos::ZERO)
        .await
        .unwrap();
    one.update_money(Account::Key(20), reading(spent, 1), Nanos::ZERO)
        .await
        .unwrap();
    let mut over = request(2, quota - spent + 1);
    over.key_quota = Some(Nanos(quota));
    let refused = one.admit_request(over).await.unwrap();
    assert!(
        matches!(refused, Admission::Refused(Refusal::KeyQuota { remaining, .. }) if remaining == Nanos(quota - spent)),
        "{refused:?}"
    );
    let debt = -((1 << 53) + 7);
    one.update_money(Account::User(3), reading(debt, 1), Nanos::ZERO)
        .await
        .unwrap();
    let refused = one.admit_request(request(3, 1)).await.unwrap();
    assert!(
        matches!(refused, Admission::Refused(Refusal::Balance { available, .. }) if available == Nanos(debt)),
        "{refused:?}"
    );
}

/// After Redis lost its data, an amount read again from the database does not know what
/// other instances hold until they have written it back: nothing paid is admitted until
/// a heartbeat re-creates the data set's epoch and, after that loss, for one lease.
#[tokio::test]
async fn after_redis_loses_its_data_money_waits_one_lease_for_the_holds() {
    if !redis_available() {
        eprintln!("skipping the shared state test: no redis-server binary");
        return;
    }
    let redis = RedisServer::start(free_port());
    let prefix = format!("th-unit-{}:", uuid::Uuid::new_v4().simple());
    let lease = Duration::from_millis(600);
    let tuning = Tuning {
        lease,
        faults: None,
    };
    let one = SharedState::connect_tuned(&redis.url(), &prefix, tuning.clone())
        .await
        .unwrap();
    let two = SharedState::connect_tuned(&redis.url(), &prefix, tuning)
        .await
        .unwrap();
    one.update_money(Account::User(1), reading(100, 1), Nanos::ZERO)
        .await
        .unwrap();
    let admitted = two.admit_request(request(1, 60)).await.unwrap();
    assert!(matches!(admitted, Admission::Admitted), "{admitted:?}");

    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    one.update_money(Account::User(1), reading(100, 1), Nanos::ZERO)
        .await
        .unwrap();
    let early = one.admit_request(request(1, 50)).await.unwrap();
    assert!(matches!(early, Admission::Rebuilding), "{early:?}");
    assert!(one.heartbeat().await.unwrap(), "the loss is noticed");
    let settling = one.admit_request(request(1, 50)).await.unwrap();
    assert!(matches!(settling, Admission::Rebuilding), "{settling:?}");
    assert!(two.heartbeat().await.unwrap(), "the loss is noticed");
    two.restore_holds([(Account::User(1), Nanos(60), reading(100, 1))])
        .await
        .unwrap();

    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(!one.heartbeat().await.unwrap());
    assert!(!two.heartbeat().await.unwrap());
    let refused = one.admit_request(request(1, 50)).await.unwrap();
    assert!(
        matches!(
            refused,
            Admission::Refused(Refusal::Balance {
                available: Nanos(40),
                ..
            })
        ),
        "{refused:?}"
    );
    let admitted = one.admit_request(request(1, 40)).await.unwrap();
    assert!(matches!(admitted, Admission::Admitted), "{admitted:?}");
}

/// End to end: after Redis lost its data a paid request is refused (503
/// `shared_state_unavailable`) until the holds are back, and the refusal says when to
/// retry, on the OpenAI and the Anthropic surface alike.
#[tokio::test]
async fn the_refusal_while_redis_rebuilds_says_when_to_retry() {
    use crate::harness::{Backend, Harness, user_says};
    use serde_json::json;
    if !redis_available() {
        eprintln!("skipping the shared state test: no redis-server binary");
        return;
    }
    let redis = RedisServer::start(free_port());
    let url = redis.url();
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.redis_url = Some(url.as_str().into());
        settings.redis_prefix = format!("th-it-{}:", uuid::Uuid::new_v4().simple());
    })
    .await;
    let (_, key) = h
        .user_with_key(
            "ada",
            Nanos::from_usd(1),
            tokenhub::accounts::KeyOptions::default(),
        )
        .await;
    let chat = json!({"model": "mock-gpt", "messages": user_says("hi")});
    assert_eq!(h.chat(&key, chat.clone()).await.status(), 200);

    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let refused = h.chat(&key, chat).await;
    let messages = h
        .http
        .post(format!("{}/v1/messages", h.base))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "mock-gpt", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    for (surface, response) in [("openai", refused), ("anthropic", messages)] {
        assert_eq!(response.status(), 503, "{surface}");
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait >= 1, "{surface}");
        let body = response.text().await.unwrap();
        if surface == "openai" {
            assert!(body.contains("shared_state_unavailable"), "{body}");
        }
    }
    h.shutdown().await;
}
