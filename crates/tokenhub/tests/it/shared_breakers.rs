//! Two instances' breakers and login throttles on one Redis this test starts: one
//! breaker and one count for both, one probe between them, a dead prober's lease ends,
//! and with Redis gone each instance decides alone instead of refusing traffic.
//!
//! Skipped, with the reason printed, without a `redis-server` binary.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenhub::accounts::login_limit::{LoginLimiter, LoginLimits};
use tokenhub::providers::{FailureKind, UpstreamFailure};
use tokenhub::relay::health::{BreakerPolicy, Health, NO_KEY, Pick};
use tokenhub::shared::SharedState;

use crate::cluster::{RedisServer, free_port, redis_available};

const CHANNEL: i64 = 1;

fn policy() -> BreakerPolicy {
    BreakerPolicy {
        threshold: 5,
        window: Duration::from_secs(60),
        cooldown: Duration::from_millis(400),
    }
}

fn failure(kind: FailureKind) -> UpstreamFailure {
    UpstreamFailure::new(kind, "boom")
}

async fn pick(health: &Health) -> Pick {
    health.pick(CHANNEL, &[], 0, Instant::now()).await
}

async fn fail(health: &Health, kind: FailureKind) {
    health
        .failed(CHANNEL, 0, NO_KEY, &failure(kind), Instant::now())
        .await;
}

/// Waits (a notice is on its way) until `health` shows `state`.
async fn until_state(health: &Health, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let report = health.report(CHANNEL, &[], Instant::now()).await;
        if report.state == state {
            return;
        }
        assert!(Instant::now() < deadline, "still {report:?}, not {state}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The median time of 400 picks of `channel`'s one key.
async fn pick_times(health: &Health, channel: i64) -> Duration {
    let mut times = Vec::new();
    for _ in 0..400 {
        let started = Instant::now();
        let picked = health.pick(channel, &[], 0, Instant::now()).await;
        times.push(started.elapsed());
        assert_eq!(picked, Pick::Use(0));
    }
    times.sort();
    times[times.len() / 2]
}

async fn two_instances(redis: &RedisServer) -> [Arc<SharedState>; 2] {
    let prefix = format!("th-breakers-{}:", uuid::Uuid::new_v4().simple());
    let one = SharedState::connect(&redis.url(), &prefix).await.unwrap();
    let two = SharedState::connect(&redis.url(), &prefix).await.unwrap();
    [one, two]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_breaker_one_probe_for_every_instance() {
    if !redis_available() {
        eprintln!("skipping the shared breakers test: no redis-server binary");
        return;
    }
    let redis = RedisServer::start(free_port());
    let [one, two] = two_instances(&redis).await;
    let (one, two) = (Health::shared(policy(), one), Health::shared(policy(), two));

    // Failures on both instances add up to one threshold.
    for _ in 0..2 {
        fail(&one, FailureKind::Status(500)).await;
    }
    assert_eq!(
        pick(&two).await,
        Pick::Use(0),
        "2 failures of 5: still closed"
    );
    for _ in 0..3 {
        fail(&two, FailureKind::Timeout).await;
    }
    assert!(matches!(pick(&two).await, Pick::Unavailable { .. }));
    until_state(&one, "open").await;
    assert!(
        matches!(pick(&one).await, Pick::Unavailable { .. }),
        "the other instance's failures opened it here too"
    );

    // Cooldown over: one probe between both, asked at once.
    tokio::time::sleep(policy().cooldown).await;
    until_state(&one, "half_open").await;
    let (a, b) = tokio::join!(pick(&one), pick(&two));
    let probes = [a, b].iter().filter(|p| **p == Pick::Use(0)).count();
    assert_eq!(probes, 1, "{a:?} {b:?}");
    assert!(matches!(pick(&one).await, Pick::Unavailable { .. }));
    assert!(matches!(pick(&two).await, Pick::Unavailable { .. }));

    // The prober died without an answer: its lease ends after a cooldown, then the
    // other instance may probe; its success closes the breaker everywhere.
    tokio::time::sleep(policy().cooldown + Duration::from_millis(50)).await;
    assert_eq!(
        pick(&two).await,
        Pick::Use(0),
        "a new probe after the lease"
    );
    two.succeeded(CHANNEL, 0, NO_KEY, Duration::from_millis(20));
    until_state(&one, "closed").await;
    assert_eq!(pick(&one).await, Pick::Use(0));

    // A rejected key is disabled for every instance, with the reason.
    fail(&one, FailureKind::Status(401)).await;
    until_state(&two, "disabled").await;
    let report = two.report(CHANNEL, &[], Instant::now()).await;
    assert!(
        report
            .disabled_reason
            .as_deref()
            .unwrap_or("")
            .contains("401"),
        "{report:?}"
    );
    assert_eq!(pick(&two).await, Pick::Unavailable { until: None });
    // A passing channel test on one instance re-enables it on the other.
    one.succeeded(CHANNEL, 0, NO_KEY, Duration::from_millis(20));
    until_state(&two, "closed").await;

    // The cost on the request path: a healthy key is picked without Redis; a key that
    // failed lately asks Redis each time (bench/RESULTS.md).
    let healthy = pick_times(&one, 2).await;
    one.failed(
        2,
        0,
        NO_KEY,
        &failure(FailureKind::Status(500)),
        Instant::now(),
    )
    .await;
    let watched = pick_times(&one, 2).await;
    eprintln!("breaker pick p50: healthy key {healthy:?}, key with a recent failure {watched:?}");
    assert!(healthy < watched, "a healthy key must not wait for Redis");

    // Redis gone: routing goes on, each instance's own breaker decides.
    drop(redis);
    assert_eq!(pick(&one).await, Pick::Use(0), "fails open");
    for _ in 0..5 {
        fail(&one, FailureKind::Status(502)).await;
    }
    assert!(
        matches!(pick(&one).await, Pick::Unavailable { .. }),
        "the local breaker opens at the threshold"
    );
    assert_eq!(
        one.report(CHANNEL, &[], Instant::now()).await.state,
        "open",
        "the view falls back to this instance's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_counts_are_shared_and_fall_back_to_memory() {
    if !redis_available() {
        eprintln!("skipping the shared login throttle test: no redis-server binary");
        return;
    }
    let redis = RedisServer::start(free_port());
    let [one, two] = two_instances(&redis).await;
    let limits = LoginLimits::default();
    let (one, two) = (
        LoginLimiter::new(limits, Some(one)),
        LoginLimiter::new(limits, Some(two)),
    );
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..3 {
        one.failed(ip, "alice").await;
    }
    for _ in 0..2 {
        two.failed(ip, "Alice").await;
    }
    let wait = one.check(ip, "alice").await.expect_err("5 failures in all");
    assert!(wait > limits.window - Duration::from_secs(5), "{wait:?}");
    assert!(two.check(ip, "alice").await.is_err());
    assert!(two.check(ip, "bob").await.is_ok(), "another account");
    two.succeeded(ip, "alice").await;
    assert!(
        one.check(ip, "alice").await.is_ok(),
        "a success clears the pair"
    );

    // Redis gone: each instance throttles with its own counts.
    drop(redis);
    assert!(one.check(ip, "carol").await.is_ok());
    for _ in 0..5 {
        one.failed(ip, "carol").await;
    }
    assert!(one.check(ip, "carol").await.is_err());
}
