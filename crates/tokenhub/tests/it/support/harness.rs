//! Test harness: a real gateway and a real mock upstream on ephemeral loopback ports.
//!
//! The database is a fresh SQLite file per harness, or, with `Backend::Postgres`, a fresh
//! PostgreSQL database created on the server named by `TOKENHUB_TEST_POSTGRES_URL`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use mock_upstream::MockServer;
use serde_json::Value;
use sqlx::Connection;
use tokenhub::accounts::{self, KeyOptions};
use tokenhub::config::{ChannelConfig, ModelConfig, Settings};
use tokenhub::ledger::money::Nanos;
use tokenhub::server::{self, RunningGateway};
use tokenhub::store::{SecretKey, UsageRecord, UserRow};

/// `TOKENHUB_SECRET_KEY` of PostgreSQL harnesses.
pub const TEST_SECRET_KEY: &str =
    "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run can test: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    match std::env::var("TOKENHUB_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            eprintln!(
                "TOKENHUB_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test"
            );
            vec![Backend::Sqlite]
        }
    }
}

/// $1 per 1M input tokens, $2 per 1M output tokens: cost in nano-USD = prompt·1000 + completion·2000.
pub const INPUT_NANO_PER_TOKEN: i64 = 1000;
pub const OUTPUT_NANO_PER_TOKEN: i64 = 2000;

pub fn cost_of(prompt: u64, completion: u64) -> Nanos {
    Nanos(prompt as i64 * INPUT_NANO_PER_TOKEN + completion as i64 * OUTPUT_NANO_PER_TOKEN)
}

pub fn model(id: &str, input: &str, output: &str) -> ModelConfig {
    ModelConfig {
        id: id.into(),
        provider: "Mock".into(),
        context: 8192,
        input_usd_per_mtok: input.into(),
        output_usd_per_mtok: output.into(),
        cached_input_usd_per_mtok: None,
        cache_write_usd_per_mtok: None,
        cache_write_1h_usd_per_mtok: None,
        explicit_cached_input_usd_per_mtok: None,
        price_tiers: Vec::new(),
        fallbacks: None,
    }
}

pub fn channel(name: &str, base_url: &str, models: &[&str], priority: i64) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind: "openai".into(),
        base_url: base_url.into(),
        api_key: Some("mock-upstream-key".into()),
        api_key_env: None,
        models: models.iter().map(|m| m.to_string()).collect(),
        model_map: BTreeMap::new(),
        priority,
        weight: 1,
        enabled: true,
        api_keys: Vec::new(),
        connect_timeout_ms: None,
        first_token_timeout_ms: None,
        idle_timeout_ms: None,
        total_timeout_ms: None,
        max_concurrency: None,
        responses_native: false,
    }
}

pub struct Harness {
    pub gateway: Option<RunningGateway>,
    pub mock: MockServer,
    pub http: reqwest::Client,
    pub base: String,
    pub database_url: String,
    /// The key that seals channel keys: given on PostgreSQL (which requires one), `None`
    /// on SQLite (the key file next to the database).
    pub secret_key: Option<SecretKey>,
    /// Declared after `gateway`, so a dropped harness's gateway goes first.
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

/// A PostgreSQL database made for one harness, dropped with it (also when the test
/// panics): without this every run left a few hundred MB of `th_test_*` databases behind.
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime, which must not be blocked on: a thread
        // with its own small runtime does the work, and is waited for.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                // FORCE ends the connections a gateway that was not shut down still holds.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

impl Harness {
    /// A gateway whose channel `mock` serves `mock-gpt` ($1/$2), `alias-model` (→ mock-gpt)
    /// and the free `mock-free`.
    pub async fn start(backend: Backend) -> Harness {
        Harness::start_with(backend, |_, _| {}).await
    }

    /// Like `start`, letting the test adjust settings (the mock's base URL is given).
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Settings, &str)) -> Harness {
        let mock = MockServer::start().await.expect("mock upstream starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, database) = database_url(backend, &dir).await;
        let mut settings = base_settings(&database_url, &mock.base_url());
        adjust(&mut settings, &mock.base_url());
        let secret_key = settings
            .secret_key
            .as_ref()
            .map(|key| SecretKey::parse(key.expose()).expect("a valid test key"));
        let gateway = server::start(settings, std::future::pending())
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Harness {
            gateway: Some(gateway),
            mock,
            http,
            base,
            database_url,
            secret_key,
            _database: database,
            _dir: dir,
        }
    }

    /// Another gateway on the same database and mock (a second instance, or this one
    /// restarted), with the same settings as `start` plus `adjust`.
    pub async fn start_another(&self, adjust: impl FnOnce(&mut Settings, &str)) -> RunningGateway {
        let mut settings = base_settings(&self.database_url, &self.mock.base_url());
        adjust(&mut settings, &self.mock.base_url());
        server::start(settings, std::future::pending())
            .await
            .expect("gateway starts")
    }

    pub fn gateway(&self) -> &RunningGateway {
        self.gateway.as_ref().expect("gateway is running")
    }

    /// Creates a user with `balance` and one key; the running gateway knows both on return.
    pub async fn user_with_key(
        &self,
        name: &str,
        balance: Nanos,
        options: KeyOptions,
    ) -> (UserRow, String) {
        let store = &self.gateway().store;
        let user = accounts::create_user(store, name, "user", balance)
            .await
            .expect("user");
        let (_, secret) = accounts::issue_key(store, &user, options)
            .await
            .expect("key");
        self.reload().await;
        (user, secret)
    }

    /// A channel's id by name.
    pub async fn channel_id(&self, name: &str) -> i64 {
        self.gateway()
            .store
            .all_channels()
            .await
            .expect("store")
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no channel named {name}"))
            .id
    }

    /// A channel's health now, with its keys as the running gateway knows them.
    pub async fn health_of(&self, name: &str) -> tokenhub::relay::health::HealthReport {
        let id = self.channel_id(name).await;
        let keys = self
            .gateway()
            .catalog
            .load()
            .channel(id)
            .map(|c| c.keys.clone())
            .unwrap_or_default();
        self.gateway()
            .health
            .report(id, &keys, std::time::Instant::now())
            .await
    }

    pub async fn reload(&self) {
        self.gateway().reloader.reload().await.expect("reload");
    }

    pub async fn chat(&self, key: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// `POST {path}` with a key and a JSON body.
    pub async fn post(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// `GET {path}` with a key.
    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("gateway answers")
    }

    /// The usage record of a request, after the writer has flushed.
    pub async fn record(&self, request_id: &str) -> UsageRecord {
        self.gateway().writer.flush().await;
        self.gateway()
            .store
            .usage_by_request_id(request_id)
            .await
            .expect("store")
            .unwrap_or_else(|| panic!("no usage record for {request_id}"))
    }

    /// The usage record of a request, waiting for it to be settled (streams settle when they end).
    pub async fn record_eventually(&self, request_id: &str) -> UsageRecord {
        for _ in 0..100 {
            self.gateway().writer.flush().await;
            if let Some(record) = self
                .gateway()
                .store
                .usage_by_request_id(request_id)
                .await
                .expect("store")
            {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no usage record for {request_id} after 2 s");
    }

    pub async fn stored_balance(&self, user_id: i64) -> Nanos {
        self.gateway().writer.flush().await;
        self.gateway()
            .store
            .user_by_id(user_id)
            .await
            .unwrap()
            .unwrap()
            .balance
    }

    /// Root's session (its password is `base_settings`'s).
    pub async fn root_session(&self) -> Session {
        let root = self.login_session("root", "root-password").await;
        assert_eq!(
            root.status,
            reqwest::StatusCode::OK,
            "root logs in: {}",
            root.body
        );
        root
    }

    /// Logs `name` in from a fresh cookie client; `status` says whether it worked.
    pub async fn login_session(&self, name: &str, password: &str) -> Session {
        let credentials = serde_json::json!({"username": name, "password": password});
        self.auth_session(cookie_client(), "login", credentials)
            .await
    }

    /// Signs `name` up from a fresh cookie client; `status` says whether it worked.
    pub async fn signup_session(&self, name: &str, password: &str) -> Session {
        let credentials = serde_json::json!({"username": name, "password": password});
        self.auth_session(cookie_client(), "signup", credentials)
            .await
    }

    /// A gateway whose account mail goes to a local SMTP sink (`smtp.rs`), from
    /// `MAIL_SENDER`, with links built from `https://gateway.example`.
    pub async fn start_with_mail(backend: Backend) -> (Harness, crate::smtp::Mailbox) {
        let (smtp_url, mail) = crate::smtp::sink().await;
        let h = Harness::start_with(backend, |settings, _| {
            settings.public_url = Some("https://gateway.example".into());
            settings.accounts.smtp_url = Some(smtp_url.as_str().into());
            settings.accounts.smtp_from = Some(MAIL_SENDER.into());
        })
        .await;
        (h, mail)
    }

    /// Signs `name` up with an address (what sign-up under email verification asks).
    pub async fn signup_with_email(&self, name: &str, password: &str, email: &str) -> Session {
        let credentials =
            serde_json::json!({"username": name, "password": password, "email": email});
        self.auth_session(cookie_client(), "signup", credentials)
            .await
    }

    /// Sends `method path` (with `body` as JSON, if any) as `session`, with its CSRF
    /// token; the status and the JSON answer (`Null` when there is none).
    pub async fn call_as(
        &self,
        session: &Session,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = session
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &session.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts `body` to `/api/auth/{route}` (`login` or `signup`) from `http`.
    pub async fn auth_session(&self, http: reqwest::Client, route: &str, body: Value) -> Session {
        let response = http
            .post(format!("{}/api/auth/{route}", self.base))
            .json(&body)
            .send()
            .await
            .expect("gateway answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let csrf = body["csrf_token"].as_str().unwrap_or_default().to_string();
        Session {
            http,
            csrf,
            status,
            body,
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The sender `Harness::start_with_mail` configures.
pub const MAIL_SENDER: &str = "TokenHub <noreply@example.com>";

/// A client signed in with a cookie, and the CSRF token its changes must send.
pub struct Session {
    pub http: reqwest::Client,
    /// Empty when the login or sign-up failed.
    pub csrf: String,
    /// The answer to the login or sign-up.
    pub status: reqwest::StatusCode,
    pub body: Value,
}

/// A client that keeps cookies, as a browser does.
pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// What every harness gateway runs with: the mock channel `mock` serving `mock-gpt`
/// ($1/$2), `alias-model` (→ mock-gpt) and the free `mock-free`.
pub fn base_settings(database_url: &str, mock_url: &str) -> Settings {
    // PostgreSQL needs a sealing key (SQLite makes a key file beside the database); every
    // instance on one test database shares it.
    let secret_key = database_url
        .starts_with("postgres")
        .then_some(TEST_SECRET_KEY);
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.into(),
        secret_key: secret_key.map(Into::into),
        reload_interval_ms: 50,
        upstream_first_byte_timeout_ms: 3000,
        root_password: Some("root-password".into()),
        // Its pings would land in the mock's journal, which tests read.
        startup_model_check: false,
        ..Settings::default()
    };
    let mut mock_channel = channel(
        "mock",
        mock_url,
        &["mock-gpt", "alias-model", "mock-free"],
        0,
    );
    mock_channel
        .model_map
        .insert("alias-model".into(), "mock-gpt".into());
    settings.channels.push(mock_channel);
    settings.models.push(model("mock-gpt", "1", "2"));
    settings.models.push(model("alias-model", "1", "2"));
    settings.models.push(model("mock-free", "0", "0"));
    settings
}

pub async fn database_url(
    backend: Backend,
    dir: &tempfile::TempDir,
) -> (String, Option<TestDatabase>) {
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}/tokenhub.db", dir.path().display()),
            None,
        ),
        Backend::Postgres => {
            let (url, database) = fresh_postgres_database().await;
            (url, Some(database))
        }
    }
}

/// A new, empty database on `TOKENHUB_TEST_POSTGRES_URL`'s server, dropped with the guard.
pub async fn fresh_postgres_database() -> (String, TestDatabase) {
    let admin_url =
        std::env::var("TOKENHUB_TEST_POSTGRES_URL").expect("TOKENHUB_TEST_POSTGRES_URL");
    let name = format!("th_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (server, _) = admin_url.rsplit_once('/').expect("URL names a database");
    let url = format!("{server}/{name}");
    (url, TestDatabase { admin_url, name })
}

pub fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_string()
}

/// Splits an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(str::to_string)
        .collect()
}

/// Concatenated `delta.content` of every chunk.
pub fn streamed_text(data: &[String]) -> String {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

pub fn user_says(text: &str) -> Value {
    serde_json::json!([{"role": "user", "content": text}])
}

/// A `usage` object without the gateway's cost members (`usage.cost`, `usage.tokenhub`),
/// for tests about the token counts; `tests/it/fidelity.rs` checks the cost.
pub fn without_cost(usage: &Value) -> Value {
    let mut usage = usage.clone();
    if let Some(object) = usage.as_object_mut() {
        object.remove("cost");
        object.remove("tokenhub");
    }
    usage
}

/// `usage.cost`, `usage.tokenhub` and the header (when given) all say the record's cost,
/// and the balance is what the owner has left after it.
pub fn assert_charge(usage: &Value, header: Option<&str>, cost: Nanos, balance: Nanos) {
    let exact = cost.to_usd_string();
    assert_eq!(usage["cost"].to_string(), exact, "{usage}");
    assert_eq!(usage["tokenhub"]["cost_usd"], exact.as_str(), "{usage}");
    assert_eq!(
        usage["tokenhub"]["balance_usd"],
        balance.to_usd_string().as_str(),
        "{usage}"
    );
    if let Some(header) = header {
        assert_eq!(header, exact);
    }
}

pub fn cost_header(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-tokenhub-cost-usd")
        .map(|v| v.to_str().unwrap().to_string())
}
