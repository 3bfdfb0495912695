//! Upstream channel keys are sealed in the database (issue #12): never in plain text in
//! the SQLite files or the PostgreSQL row, plain rows sealed at start, a wrong key
//! refuses to start, and requests still reach the upstream with the right key.

use crate::harness::*;
use serde_json::json;
use sqlx::Row;
use tokenhub::ledger::money::Nanos;
use tokenhub::server;
use tokenhub::store::{SecretKey, Store};

const UPSTREAM_KEY: &str = "sealed-upstream-key-8c1e5f0a";
const LEGACY_KEY: &str = "legacy-plain-key-77b2d9e4";

async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock| {
        let mut sealed = channel("sealed", mock, &["sealed-gpt"], 10);
        sealed.api_key = Some(UPSTREAM_KEY.into());
        settings.channels.push(sealed);
        settings.models.push(model("sealed-gpt", "1", "2"));
    })
    .await
}

fn sqlite_file(h: &Harness) -> std::path::PathBuf {
    std::path::PathBuf::from(h.database_url.trim_start_matches("sqlite://"))
}

/// Every byte SQLite keeps for the database: the file, its write-ahead log and index.
fn sqlite_bytes(h: &Harness) -> Vec<u8> {
    let file = sqlite_file(h);
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        all.extend(std::fs::read(path).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn stored_key(h: &Harness) -> String {
    let pool = sqlx::AnyPool::connect(&h.database_url).await.unwrap();
    let row = sqlx::query("SELECT api_key FROM channels WHERE name = 'sealed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let stored = row.try_get("api_key").unwrap();
    pool.close().await;
    stored
}

async fn set_stored_key(h: &Harness, text: &str) {
    let pool = sqlx::AnyPool::connect(&h.database_url).await.unwrap();
    sqlx::query("UPDATE channels SET api_key = $1 WHERE name = 'sealed'")
        .bind(text)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// A chat on `sealed-gpt` succeeds, and the upstream was sent `expected`.
async fn reaches_upstream_with(h: &Harness, key: &str, expected: &str) {
    let before = h.mock.journal().len();
    let body = json!({"model": "sealed-gpt", "messages": user_says("hi"), "max_tokens": 5});
    let response = h.chat(key, body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent: Vec<String> = h
        .mock
        .journal()
        .iter()
        .skip(before)
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(sent, [format!("Bearer {expected}")]);
}

#[tokio::test]
async fn channel_keys_are_sealed_and_still_reach_the_upstream() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, key) = h
            .user_with_key("sealer", Nanos::from_usd(1), Default::default())
            .await;
        reaches_upstream_with(&h, &key, UPSTREAM_KEY).await;

        let stored = stored_key(&h).await;
        assert!(stored.starts_with("enc:v1:"), "{backend:?}: {stored}");
        assert!(!stored.contains(UPSTREAM_KEY), "{backend:?}: {stored}");
        if backend == Backend::Sqlite {
            assert!(
                !contains(&sqlite_bytes(&h), UPSTREAM_KEY),
                "the key is in the SQLite files in plain text"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mut key_file = sqlite_file(&h).into_os_string();
                key_file.push(".key");
                let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{key_file:?}");
                let text = std::fs::read_to_string(&key_file).unwrap();
                SecretKey::parse(&text).expect("the key file holds a valid key");
            }
        }

        // As a version before sealing left it: a plain key, sealed by the next start.
        set_stored_key(&h, LEGACY_KEY).await;
        let secret_key = h.secret_key.clone();
        let reopened = Store::connect(&h.database_url, secret_key.as_ref())
            .await
            .expect("a restart seals plain keys");
        let stored = stored_key(&h).await;
        assert!(stored.starts_with("enc:v1:"), "{backend:?}: {stored}");
        let channels = reopened.all_channels().await.unwrap();
        let sealed = channels.iter().find(|c| c.name == "sealed").unwrap();
        assert_eq!(sealed.api_key.as_deref(), Some(LEGACY_KEY));
        reopened.close().await;
        h.reload().await;
        reaches_upstream_with(&h, &key, LEGACY_KEY).await;
        if backend == Backend::Sqlite {
            assert!(
                !contains(&sqlite_bytes(&h), LEGACY_KEY),
                "plain key left on disk"
            );
        }
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_wrong_secret_key_refuses_to_start() {
    for backend in backends() {
        let h = start(backend).await;
        let wrong = "0".repeat(64);
        let settings = tokenhub::config::Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: h.database_url.as_str().into(),
            secret_key: Some(wrong.into()),
            root_password: Some("root-password".into()),
            ..Default::default()
        };
        let refused = server::start(settings, std::future::pending()).await;
        let error = refused
            .err()
            .expect("a wrong key must not start")
            .to_string();
        assert!(
            error.contains("TOKENHUB_SECRET_KEY"),
            "{backend:?}: {error}"
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn postgres_without_a_secret_key_refuses_to_start() {
    let Some(url) = std::env::var("TOKENHUB_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("TOKENHUB_TEST_POSTGRES_URL is not set: skipping");
        return;
    };
    let error = Store::connect(&url, None).await.unwrap_err().to_string();
    assert!(error.contains("TOKENHUB_SECRET_KEY is not set"), "{error}");
}
