//! Issue 19, finding 1: the presets must map every public name to an id the vendor
//! serves today, and a mapping the upstream rejects must be reported clearly: by the
//! admin channel test, by the start-up check and by `tokenhub channels check`. All
//! against the strict mock, which refuses retired ids the way each vendor does.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts;
use tokenhub::config::ChannelConfig;
use tokenhub::providers::presets;
use tokenhub::relay::clients::UpstreamClients;
use tokenhub::relay::mapping_check;

const BIN: &str = env!("CARGO_BIN_EXE_tokenhub");

/// Every preset channel, pointed at the mock with a key, its mappings as shipped.
fn presets_at(mock_url: &str) -> Vec<ChannelConfig> {
    presets::preset_channels()
        .into_iter()
        .filter(|preset| preset.kind != "demo")
        .map(|preset| {
            let models: Vec<&str> = preset.models.iter().map(String::as_str).collect();
            let mut config = channel(&preset.name, mock_url, &models, 0);
            config.kind = preset.kind.clone();
            config.model_map = preset.model_map.clone();
            config
        })
        .collect()
}

#[tokio::test]
async fn every_preset_mapping_is_served_by_the_strict_mock() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        settings.channels.extend(presets_at(mock_url));
    })
    .await;
    let catalog = h.gateway().catalog.load_full();
    let clients = UpstreamClients::new(Duration::from_secs(5));
    let checks = mapping_check::check_all(&catalog, &clients, Duration::from_secs(5)).await;
    let presets: Vec<_> = checks.iter().filter(|c| c.channel != "mock").collect();
    assert_eq!(
        presets.len(),
        12,
        "every public name of the seed: {checks:#?}"
    );
    let failed: Vec<_> = presets.iter().filter(|c| !c.ok).collect();
    assert!(
        failed.is_empty(),
        "mappings the vendors no longer serve: {failed:#?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_retired_mapping_is_named_with_both_ids_and_the_upstreams_words() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        let mut retired = channel("old-deepseek", mock_url, &["deepseek-chat"], 0);
        retired.kind = "deepseek".into();
        settings.channels.push(retired);
    })
    .await;
    let catalog = h.gateway().catalog.load_full();
    let clients = UpstreamClients::new(Duration::from_secs(5));
    let checks = mapping_check::check_all(&catalog, &clients, Duration::from_secs(5)).await;
    let retired = checks
        .iter()
        .find(|c| c.channel == "old-deepseek")
        .expect("checked");
    assert!(!retired.ok && retired.model_rejected, "{retired:?}");
    assert_eq!(
        retired.status,
        Some(404),
        "DeepSeek's 400 'Model Not Exist' read as missing"
    );
    let error = retired.error.as_deref().unwrap();
    assert!(
        error.contains("'deepseek-chat'") && error.contains("Model Not Exist"),
        "{error}"
    );
    assert!(checks.iter().filter(|c| c.channel == "mock").all(|c| c.ok));

    // The admin channel test says the same.
    let store = &h.gateway().store;
    let root = accounts::user_named(store, "root").await.unwrap();
    let (_, token) = accounts::admin_token::issue(store, &accounts::Actor::cli(), &root, "ops")
        .await
        .unwrap();
    let id = h.channel_id("old-deepseek").await;
    let tested: Value = h
        .http
        .post(format!("{}/api/admin/channels/{id}/test", h.base))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["model_rejected"], true);
    assert_eq!(tested["model"], "deepseek-chat");
    assert_eq!(tested["upstream_model"], "deepseek-chat");
    let message = tested["error"].as_str().unwrap();
    assert!(
        message.contains("public name 'deepseek-chat'") && message.contains("Model Not Exist"),
        "{message}"
    );
    // And the admin "test all" lists every mapping, this one as rejected.
    let all: Value = h
        .http
        .post(format!("{}/api/admin/channels/check", h.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["ok"], false);
    let mappings = all["mappings"].as_array().unwrap();
    let rejected: Vec<&Value> = mappings.iter().filter(|m| m["ok"] == false).collect();
    assert_eq!(rejected.len(), 1, "{all}");
    assert_eq!(rejected[0]["channel"], "old-deepseek");
    assert_eq!(rejected[0]["model_rejected"], true);
    assert!(
        mappings
            .iter()
            .any(|m| m["channel"] == "mock" && m["ok"] == true)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn channels_check_lists_the_rejected_mappings_and_exits_non_zero() {
    let mock = mock_upstream::MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenhub.toml");
    let url = mock.base_url();
    std::fs::write(
        &config,
        format!(
            r#"
[[channels]]
name = "kimi"
type = "moonshot"
base_url = "{url}"
api_key = "k"
models = ["kimi-k2.5", "kimi-old"]
model_map = {{ "kimi-old" = "moonshot-v1-auto" }}

[[models]]
id = "kimi-old"
provider = "Moonshot AI"
input_usd_per_mtok = "1"
output_usd_per_mtok = "2"
"#
        ),
    )
    .unwrap();
    let database = format!("sqlite://{}/check.db", dir.path().display());
    // Off this thread: the mock answers on the test's runtime.
    let run = |config: std::path::PathBuf| {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["--config"])
                .arg(config)
                .args(["channels", "check"])
                .env("TOKENHUB_DATABASE_URL", database)
                .env("TOKENHUB_ROOT_PASSWORD", "check-test")
                .env("TOKENHUB_LOG", "warn")
                .output()
                .unwrap()
        })
    };
    let output = run(config.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok\tkimi\tkimi-k2.5 -> kimi-k2.5")),
        "{stdout}"
    );
    let failed = lines.iter().find(|l| l.starts_with("FAIL")).unwrap();
    assert!(
        failed.contains("kimi-old -> moonshot-v1-auto") && failed.contains("Not found the model"),
        "{failed}"
    );

    // Remapped to a live id, the same check passes.
    let fixed = std::fs::read_to_string(&config)
        .unwrap()
        .replace("moonshot-v1-auto", "moonshot-v1-8k");
    std::fs::write(&config, fixed).unwrap();
    let output = run(config).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_startup_check_pings_each_mapping_in_the_background() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        settings.startup_model_check = true;
        let mut retired = channel("old-deepseek", mock_url, &["deepseek-chat"], 0);
        retired.kind = "deepseek".into();
        retired
            .model_map
            .insert("deepseek-chat".into(), "deepseek-reasoner".into());
        settings.channels.push(retired);
    })
    .await;
    // The gateway already serves while the check runs.
    let (_, key) = h
        .user_with_key(
            "sc",
            tokenhub::ledger::money::Nanos::from_usd(1),
            Default::default(),
        )
        .await;
    assert_eq!(
        h.chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says("hi")})
        )
        .await
        .status(),
        200
    );
    let pinged = |model: &str| {
        h.mock
            .journal()
            .iter()
            .any(|r| r.body["model"] == model && r.body["max_tokens"] == 1)
    };
    for _ in 0..100 {
        if pinged("deepseek-reasoner") && pinged("mock-gpt") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        pinged("deepseek-reasoner"),
        "the retired mapping was checked"
    );
    assert!(pinged("mock-gpt"));
    assert!(
        !pinged("alias-model"),
        "a mapping is pinged as its upstream id"
    );
    h.shutdown().await;
}
