//! A database outage under load (issue 14). PostgreSQL is reached through a loopback TCP
//! proxy the test cuts (open connections closed, new ones refused) for 10 s; the shared
//! server itself is never stopped. Meanwhile: the management API and `/readyz` answer
//! 503 within 2 s; usage records go to each instance's spill file; one instance is killed
//! with `kill -9` and restarted after the outage. Afterwards every answered request has
//! its usage record, and Σ cost = Σ debits.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mock_upstream::MockServer;
use serde_json::{Value, json};
use sqlx::Connection;
use tokenhub::ledger::money::Nanos;
use tokenhub::store::{SecretKey, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::harness::{TEST_SECRET_KEY, fresh_postgres_database};
use crate::processes::{Process, command, free_port, run_cli, spawn, write_config};

/// Forwards loopback connections to PostgreSQL until cut.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(CancellationToken::new()));
        let (accepting, tokens) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    drop(inbound); // refused: closed at once
                    continue;
                }
                let cut = tokens.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream) => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            connections,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().unwrap().cancel();
    }

    fn restore(&self) {
        *self.connections.lock().unwrap() = CancellationToken::new();
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db` with `host:port` replaced by `addr`, and that address.
fn through(url: &str, addr: SocketAddr) -> (String, SocketAddr) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, host) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let target = host.parse().expect("a host:port address");
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    (format!("{scheme}://{user}{addr}/{path}"), target)
}

/// Sends chats to one instance while `running`, pausing while `paused`; keeps the
/// request id of every 200.
fn load(
    base: String,
    key: String,
    running: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut n = 0u64;
        while running.load(Ordering::SeqCst) {
            if paused.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            n += 1;
            let body = json!({"model": "mock-gpt", "stream": n.is_multiple_of(2),
                "messages": [{"role": "user", "content": format!("request {n}")}]});
            let sent = http
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(&key)
                .timeout(Duration::from_secs(5))
                .json(&body)
                .send()
                .await;
            let Ok(response) = sent else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let id = response
                .headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap().to_string());
            // The body in full: a stream is answered once it ended.
            let ok = response.status() == 200;
            if response.bytes().await.is_ok() && ok {
                answered.lock().unwrap().push(id.expect("x-request-id"));
            } else {
                // As a client honouring Retry-After would, only sooner.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

struct Instance {
    process: Process,
    running: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

// Two threads: the proxy must forward while the test waits on anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_with_a_kill_9_loses_no_answered_request() {
    if std::env::var("TOKENHUB_TEST_POSTGRES_URL").is_err() {
        eprintln!("TOKENHUB_TEST_POSTGRES_URL is not set: skipping the database outage test");
        return;
    }
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.base_url());
    let (direct_url, _database) = fresh_postgres_database().await;
    let (_, target) = through(&direct_url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(target).await;
    let (proxied_url, _) = through(&direct_url, proxy.addr);

    run_cli(
        &direct_url,
        &config,
        &["users", "create", "outage", "--balance-usd", "100"],
    );
    let key = run_cli(
        &direct_url,
        &config,
        &["keys", "create", "--user", "outage"],
    );
    let admin = run_cli(&direct_url, &config, &["admin-tokens", "create"]);

    let start_instance = |name: &str, port: u16| {
        let mut gateway = command(&proxied_url, &config, port);
        gateway.env(
            "TOKENHUB_LEDGER_SPILL_PATH",
            dir.path().join(format!("{name}.spill")),
        );
        if name == "b" {
            // A few hundred records: b's spill fills during the outage.
            gateway.env("TOKENHUB_LEDGER_SPILL_MAX_BYTES", "100000");
        }
        spawn(gateway, dir.path(), port)
    };
    let answered = Arc::new(Mutex::new(Vec::new()));
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let mut process = start_instance(name, free_port());
        process.wait_ready(Duration::from_secs(30)).await;
        let (running, paused) = (
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicBool::new(false)),
        );
        let workers = (0..4)
            .map(|_| {
                load(
                    process.base(),
                    key.clone(),
                    running.clone(),
                    paused.clone(),
                    answered.clone(),
                )
            })
            .collect();
        instances.push(Instance {
            process,
            running,
            paused,
            workers,
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    proxy.cut();
    let outage = Instant::now();
    let before_outage = answered.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = reqwest::Client::new();
    let b = instances[1].process.base();
    let asked = Instant::now();
    let users = http
        .get(format!("{b}/api/admin/users"))
        .bearer_auth(&admin)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 503, "{:?}", users.text().await);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "503 after {:?}",
        asked.elapsed()
    );
    let asked = Instant::now();
    let ready = http.get(format!("{b}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(asked.elapsed() < Duration::from_secs(2));
    let detail: Value = ready.json().await.unwrap();
    assert!(
        detail["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("database"),
        "{detail}"
    );

    // b's spill is beyond its bound by now: it refuses paid requests rather than serve
    // them unbilled, and says why in /readyz.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refused = http
        .post(format!("{b}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ledger_backlog_full", "{body}");
    let detail: Value = http
        .get(format!("{b}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        detail["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("ledger backlog")),
        "{detail}"
    );

    // kill -9 instance a in the middle of the outage. Its load stops a moment before, so
    // what it answered is older than a batch window (the loss bound) when it dies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    instances[0].paused.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    instances[0].process.kill_9();
    let spilled = std::fs::metadata(dir.path().join("a.spill"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(spilled > 0, "instance a spilled nothing before the kill");
    let during_outage = answered.lock().unwrap().len() - before_outage;
    assert!(during_outage > 0, "nothing was answered during the outage");

    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    proxy.restore();
    // Instance a comes back on its port and spill file, and replays it.
    let port = instances[0].process.port;
    instances[0].process = start_instance("a", port);
    instances[0]
        .process
        .wait_ready(Duration::from_secs(30))
        .await;
    instances[0].paused.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Its idle keep-alive connections would hold a graceful stop for its grace period.
    drop(http);
    for instance in &mut instances {
        instance.running.store(false, Ordering::SeqCst);
        for worker in instance.workers.drain(..) {
            worker.await.unwrap();
        }
        let stopping = Instant::now();
        instance.process.stop(Duration::from_secs(90)).await;
        eprintln!(
            "instance on port {} stopped in {:?}",
            instance.process.port,
            stopping.elapsed()
        );
    }

    let store = Store::connect(
        &direct_url,
        Some(&SecretKey::parse(TEST_SECRET_KEY).unwrap()),
    )
    .await
    .unwrap();
    let answered = answered.lock().unwrap().clone();
    let mut db = sqlx::PgConnection::connect(&direct_url).await.unwrap();
    let recorded: HashSet<String> = sqlx::query_scalar("SELECT request_id FROM usage_records")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    eprintln!(
        "answered {} requests ({during_outage} during the outage, before the kill); {} spilled bytes on a",
        answered.len(),
        spilled
    );
    assert!(
        missing.is_empty(),
        "{} answered requests have no usage record: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let user = store.user_by_name("outage").await.unwrap().unwrap();
    let spent = store.total_usage_cost().await.unwrap();
    assert!(spent > Nanos::ZERO);
    assert_eq!(
        user.balance,
        Nanos::from_usd(100) - spent,
        "Σ cost = Σ debits"
    );
    assert!(
        !dir.path().join("a.spill").exists(),
        "replayed spill files are removed"
    );
    assert!(!dir.path().join("b.spill").exists());
    store.close().await;
}
