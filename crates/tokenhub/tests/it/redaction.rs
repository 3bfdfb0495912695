//! An upstream that echoes the key it was sent (issue #12, item 9): the key must reach
//! none of the client's answer, the usage record, the channel health view, the channel
//! test result or the log.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use crate::harness::*;
use mock_upstream::{Defaults, MockServer};
use serde_json::{Value, json};
use tokenhub::accounts::{self, Actor, KeyOptions};
use tokenhub::ledger::money::Nanos;

/// No vendor's shape: only the channel's own key list can recognise it.
const SECRET: &str = "opaque-channel-secret-5f3a9c71";

/// The relay's log line for a failed attempt, which quotes the upstream's message.
const REDACTED_FAILURE: &str = "upstream attempt failed";

/// What the process logs from here on, for every test of the binary (a global
/// subscriber: the gateway logs on its own serving threads). Only the lines this test
/// looks for are kept, so the other tests' logging does not pile up in memory.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("tokenhub=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        log
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(bytes);
        if line.contains(SECRET) || line.contains(REDACTED_FAILURE) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} leaks the key: {text}");
}

/// The shown text must still say what happened, with the credential replaced.
fn assert_redacted(what: &str, text: &str) {
    assert_clean(what, text);
    assert!(text.contains("[redacted]"), "{what}: {text}");
}

#[tokio::test]
async fn an_echoed_key_reaches_no_client_record_view_or_log() {
    let log = captured_log();
    let echoing = MockServer::start_with(Defaults {
        echo_key: true,
        ..Defaults::default()
    })
    .await
    .expect("mock starts");
    let echo_url = echoing.base_url();
    // One channel per status: a 429 cools the key down and a 401 disables it, so each
    // status gets a key whose health nothing else has touched.
    let statuses = [500u16, 429, 401];
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        for status in statuses {
            let model = format!("echo-{status}");
            let mut echo = channel(&format!("echo-{status}"), &echo_url, &[&model], 10);
            echo.api_key = Some(SECRET.into());
            settings.channels.push(echo);
            settings.models.push(model_of(&model));
        }
    })
    .await;
    let (_, key) = h
        .user_with_key("victim", Nanos::from_usd(1), KeyOptions::default())
        .await;

    for status in statuses {
        for stream in [false, true] {
            let body = json!({
                "model": format!("echo-{status}"), "messages": user_says("hi"),
                "max_tokens": 5, "stream": stream, "mock": {"fail_status": status},
            });
            let response = h.chat(&key, body).await;
            assert!(!response.status().is_success(), "{}", response.status());
            let id = request_id(&response);
            let text = response.text().await.unwrap();
            let record = h.record(&id).await;
            let recorded = record.error.unwrap_or_default();
            if status == 401 {
                // A rejected key is reported as the operator's problem, in the gateway's words.
                assert_clean("the client's answer", &text);
                assert_clean("the usage record", &recorded);
            } else {
                assert_redacted("the client's answer", &text);
                assert_redacted("the usage record", &recorded);
            }
            if status != 500 {
                break; // the key is cooling down or disabled: a second request would not reach it
            }
        }
    }

    // The echoing mock really was sent the key, so there was something to leak.
    assert!(
        echoing
            .journal()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {SECRET}"))),
        "the upstream received the channel's key"
    );

    let root = h
        .gateway()
        .store
        .user_by_name("root")
        .await
        .unwrap()
        .unwrap();
    let (_, admin) = accounts::admin_token::issue(&h.gateway().store, &Actor::cli(), &root, "t")
        .await
        .expect("admin token");
    let rejected = h.channel_id("echo-401").await;
    let health = admin_call(
        &h,
        &admin,
        "GET",
        &format!("/api/admin/channels/{rejected}/health"),
    )
    .await;
    assert_redacted("the channel health view", &health.to_string());
    assert_eq!(health["state"], "disabled", "{health}");
    let test = admin_call(
        &h,
        &admin,
        "POST",
        &format!("/api/admin/channels/{rejected}/test"),
    )
    .await;
    assert_eq!(test["ok"], false, "{test}");
    assert_redacted("the channel test result", &test.to_string());

    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        logged.contains(REDACTED_FAILURE) && logged.contains("[redacted]"),
        "the failures were logged"
    );
    assert_clean("the log", &logged);
    h.shutdown().await;
}

fn model_of(id: &str) -> tokenhub::config::ModelConfig {
    model(id, "1", "2")
}

async fn admin_call(h: &Harness, token: &str, method: &str, path: &str) -> Value {
    let request = match method {
        "POST" => h.http.post(format!("{}{path}", h.base)).json(&json!({})),
        _ => h.http.get(format!("{}{path}", h.base)),
    };
    let response = request.bearer_auth(token).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{method} {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Errors inside a 2xx answer (an in-band stream event, an `error` body with status 200)
/// are upstream text too.
#[tokio::test]
async fn an_in_band_error_carrying_the_key_is_redacted() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        let mut keyed = channel("keyed", mock, &["keyed-gpt"], 10);
        keyed.api_key = Some(SECRET.into());
        settings.channels.push(keyed);
        settings.models.push(model_of("keyed-gpt"));
    })
    .await;
    let (_, key) = h
        .user_with_key("in-band", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let echoed = format!("quota exceeded for key {SECRET} (x-api-key: {SECRET})");

    let stream = json!({
        "model": "keyed-gpt", "messages": user_says("hi"), "max_tokens": 5, "stream": true,
        "mock": {"mid_stream_error": true, "error_message": echoed},
    });
    let response = h.chat(&key, stream).await;
    assert_eq!(response.status(), 200, "the stream had started");
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert_redacted("the streamed error event", &text);
    let event = sse_data(&text)
        .into_iter()
        .find(|data| data.contains("\"error\""))
        .expect("the error event is forwarded");
    let event: Value = serde_json::from_str(&event).expect("still JSON");
    assert_eq!(
        event["error"]["type"], "server_error",
        "the rest is the upstream's"
    );
    let record = h.record_eventually(&id).await;
    assert_redacted(
        "the usage record",
        record.error.as_deref().unwrap_or_default(),
    );

    let whole = json!({
        "model": "keyed-gpt", "messages": user_says("hi"), "max_tokens": 5,
        "mock": {"fail_status": 200, "fail_body": {"error": {"message": echoed}}},
    });
    let response = h.chat(&key, whole).await;
    assert!(!response.status().is_success(), "{}", response.status());
    let id = request_id(&response);
    assert_redacted(
        "the answer to an error body",
        &response.text().await.unwrap(),
    );
    let record = h.record(&id).await;
    assert_redacted(
        "its usage record",
        record.error.as_deref().unwrap_or_default(),
    );
    h.shutdown().await;
}
