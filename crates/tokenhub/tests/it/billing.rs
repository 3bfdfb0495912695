//! Billing that matches each provider's invoice: Anthropic's 1-hour cache writes, OpenAI's
//! `service_tier`, DashScope's context cache and UTC price windows, each through a real
//! gateway and the mock speaking that provider's dialect. Every test checks the usage
//! record's exact cost and price tier, and that Σ cost of records = Σ debits.

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::config::ModelConfig;
use tokenhub::ledger::money::Nanos;
use tokenhub::ledger::price_tiers::PriceTier;
use tokenhub::store::UsageRecord;

/// Ten words, plus 3 per message by the mock's counting rule.
const WORDS: &str = "one two three four five six seven eight nine ten";
const PROMPT: u64 = 13;
const REPLY: &str = "fine thanks";
const COMPLETION: u64 = 2;
const BALANCE_USD: i64 = 1;

/// The exact cost of token classes at their prices (nano-USD per 1M tokens): one sum,
/// rounded up once.
fn exact_cost(classes: &[(u64, i64)]) -> Nanos {
    let numerator: i128 = classes
        .iter()
        .map(|(tokens, per_million)| i128::from(*tokens) * i128::from(*per_million))
        .sum();
    Nanos(i64::try_from((numerator + 999_999) / 1_000_000).unwrap())
}

fn usd(text: &str) -> i64 {
    text.parse::<Nanos>().unwrap().0
}

fn ask(model: &str, knobs: Value) -> Value {
    let mut knobs = knobs;
    knobs["reply"] = json!(REPLY);
    json!({"model": model, "messages": [{"role": "user", "content": WORDS}], "mock": knobs})
}

fn tiers(json: Value) -> Vec<PriceTier> {
    serde_json::from_value(json).unwrap()
}

/// Sends `body`, expects 200, and returns the request's usage record.
async fn billed(h: &Harness, key: &str, body: Value) -> UsageRecord {
    let stream = body["stream"] == true;
    let response = h.chat(key, body).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert!(!stream || text.contains("[DONE]"), "{text}");
    h.record_eventually(&id).await
}

/// Σ cost of the records = what left the user's balance, in memory and in the database.
async fn assert_debits_match(h: &Harness, user_id: i64, records: &[UsageRecord]) {
    let spent: Nanos = records.iter().map(|r| r.cost).sum();
    let left = Nanos::from_usd(BALANCE_USD) - spent;
    assert_eq!(h.stored_balance(user_id).await, left);
    assert_eq!(
        h.gateway().store.recomputed_balance(user_id).await.unwrap(),
        left
    );
}

/// The tokens of a record: (prompt, cached, explicit cached, cache writes, 1-hour writes,
/// completion).
fn tokens(record: &UsageRecord) -> (u64, u64, u64, u64, u64, u64) {
    (
        record.prompt_tokens,
        record.cached_tokens,
        record.explicit_cached_tokens,
        record.cache_write_tokens,
        record.cache_write_1h_tokens,
        record.completion_tokens,
    )
}

const CLAUDE: &str = "claude-sonnet-4";

/// An Anthropic channel (the mock's Messages dialect) at Sonnet 4's prices, the 1-hour
/// write price left unset: 2× input by default.
async fn anthropic(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        let mut claude = channel("claude", &format!("{mock_url}/v1"), &[CLAUDE], 0);
        claude.kind = "anthropic".into();
        claude
            .model_map
            .insert(CLAUDE.into(), "claude-sonnet-4-6".into());
        settings.channels.push(claude);
        settings.models.push(ModelConfig {
            cached_input_usd_per_mtok: Some("0.30".into()),
            cache_write_usd_per_mtok: Some("3.75".into()),
            ..model(CLAUDE, "3", "15")
        });
    })
    .await
}

#[tokio::test]
async fn one_hour_cache_writes_are_billed_at_twice_the_input_price() {
    for backend in backends() {
        let h = anthropic(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(BALANCE_USD), KeyOptions::default())
            .await;
        let knobs =
            json!({"cache_read_tokens": 3, "cache_write_tokens": 4, "cache_write_1h_tokens": 5});
        // 1 plain input + 3 read + 4 written for 5 minutes + 5 for an hour, 2 output:
        // 1·3000 + 3·300 + 4·3750 + 5·6000 + 2·15000 nano-USD.
        let expected = Nanos(3_000 + 900 + 15_000 + 30_000 + 30_000);
        assert_eq!(
            exact_cost(&[
                (1, usd("3")),
                (3, usd("0.30")),
                (4, usd("3.75")),
                (5, usd("6")),
                (2, usd("15"))
            ]),
            expected
        );
        let mut records = Vec::new();
        for stream in [false, true] {
            let mut body = ask(CLAUDE, knobs.clone());
            body["stream"] = json!(stream);
            let record = billed(&h, &key, body).await;
            assert_eq!(
                tokens(&record),
                (PROMPT, 3, 0, 9, 5, COMPLETION),
                "stream {stream}"
            );
            assert_eq!(
                (record.cost, record.price_tier.as_str()),
                (expected, "standard")
            );
            records.push(record);
        }

        // An Anthropic client on /v1/messages sees the writes by lifetime, billed the same.
        let response = h
            .http
            .post(format!("{}/v1/messages", h.base))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .json(
                &json!({"model": CLAUDE, "max_tokens": 100, "mock": knobs.clone(),
                "messages": [{"role": "user", "content": WORDS}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let message: Value = response.json().await.unwrap();
        assert_eq!(
            message["usage"]["cache_creation"],
            json!({"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 5})
        );
        assert_eq!(message["usage"]["cache_creation_input_tokens"], 9);
        let record = h.record(&id).await;
        assert_eq!(record.cache_write_1h_tokens, 5);
        records.push(record);

        assert_debits_match(&h, user.id, &records).await;
        h.shutdown().await;
    }
}

const GPT: &str = "tiered-gpt";

/// An OpenAI channel whose model has priority (2×) and flex (0.5×) prices.
async fn openai_tiers(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        settings
            .channels
            .push(channel("openai", mock_url, &[GPT], 0));
        settings.models.push(ModelConfig {
            cached_input_usd_per_mtok: Some("0.125".into()),
            price_tiers: tiers(json!([
                {"name": "priority", "service_tier": "priority", "multiplier": "2"},
                {"name": "flex", "service_tier": "flex", "multiplier": "0.5"}
            ])),
            ..model(GPT, "1.25", "10")
        });
    })
    .await
}

#[tokio::test]
async fn the_service_tier_the_upstream_reports_decides_the_price() {
    for backend in backends() {
        let h = openai_tiers(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(BALANCE_USD), KeyOptions::default())
            .await;
        // 13 prompt tokens (4 cached) and 2 output at $1.25 / $0.125 / $10 per 1M, times
        // the tier's multiplier.
        let at = |multiplier: i64, divisor: i64| {
            exact_cost(&[
                (9, usd("1.25") * multiplier / divisor),
                (4, usd("0.125") * multiplier / divisor),
                (2, usd("10") * multiplier / divisor),
            ])
        };
        let cases = [
            (Some("priority"), false, at(2, 1), "priority"),
            (Some("flex"), true, at(1, 2), "flex"),
            (Some("default"), false, at(1, 1), "standard"),
            (None, true, at(1, 1), "standard"),
        ];
        assert_eq!(cases[0].2, Nanos(2 * (11_250 + 500 + 20_000)));
        assert_eq!(cases[1].2, Nanos(5_625 + 250 + 10_000));
        let mut records = Vec::new();
        for (tier, stream, cost, label) in cases {
            let mut knobs = json!({"cached_tokens": 4});
            if let Some(tier) = tier {
                knobs["service_tier"] = json!(tier);
            }
            let mut body = ask(GPT, knobs);
            body["stream"] = json!(stream);
            let record = billed(&h, &key, body).await;
            assert_eq!(
                tokens(&record),
                (PROMPT, 4, 0, 0, 0, COMPLETION),
                "{tier:?}"
            );
            assert_eq!(
                (record.cost, record.price_tier.as_str()),
                (cost, label),
                "{tier:?}"
            );
            records.push(record);
        }
        assert_debits_match(&h, user.id, &records).await;
        h.shutdown().await;
    }
}

/// A reservation holds what the dearest tier the upstream may pick would cost, so a
/// balance that covers only the standard price is refused before any upstream is called.
#[tokio::test]
async fn reservations_hold_the_price_of_the_dearest_service_tier() {
    let h = openai_tiers(Backend::Sqlite).await;
    let body = json!({"model": GPT, "max_tokens": 10,
        "messages": [{"role": "user", "content": WORDS}], "mock": {"reply": REPLY}});
    // The reservation's estimate: one token per 3 body bytes, plus max_tokens of output,
    // every prompt token at the dearest prompt class (priority input, $2.50).
    let estimated_prompt = serde_json::to_vec(&body).unwrap().len().div_ceil(3) as u64;
    let at_priority = exact_cost(&[(estimated_prompt, usd("2.5")), (10, usd("20"))]);
    let at_standard = exact_cost(&[(estimated_prompt, usd("1.25")), (10, usd("10"))]);
    assert!(at_standard < at_priority);
    let (_, short) = h
        .user_with_key("short", at_priority - Nanos(1), KeyOptions::default())
        .await;
    let refused = h.chat(&short, body.clone()).await;
    assert_eq!(refused.status(), 429);
    let refusal: Value = refused.json().await.unwrap();
    assert_eq!(refusal["error"]["code"], "insufficient_quota", "{refusal}");
    assert!(h.mock.journal().is_empty(), "refused before the upstream");
    let (_, enough) = h
        .user_with_key("enough", at_priority, KeyOptions::default())
        .await;
    assert_eq!(h.chat(&enough, body).await.status(), 200);
    h.shutdown().await;
}

const QWEN: &str = "qwen-plus";

#[tokio::test]
async fn dashscope_cache_hits_and_explicit_creation_are_billed_at_their_shares_of_input() {
    for backend in backends() {
        // The catalogue's own qwen-plus, served by a DashScope-dialect channel on the mock.
        let h = Harness::start_with(backend, |settings, mock_url| {
            let mut dashscope = channel("dashscope", mock_url, &[QWEN], 0);
            dashscope.kind = "qwen".into();
            settings.channels.push(dashscope);
        })
        .await;
        let preset = tokenhub::providers::presets::builtin_models()
            .into_iter()
            .find(|m| m.id == QWEN)
            .unwrap();
        let (input, output) = (preset.input_price.0, preset.output_price.0);
        assert!(input > 0);
        // Alibaba Model Studio, "Context cache": implicit hits 20 % of input, explicit hits
        // 10 %, explicit cache creation 125 %.
        let share = |percent: i64| (input * percent + 99) / 100;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(BALANCE_USD), KeyOptions::default())
            .await;
        let cases = [
            (
                "implicit hit",
                json!({"cached_tokens": 8}),
                (PROMPT, 8, 0, 0, 0, COMPLETION),
                exact_cost(&[(5, input), (8, share(20)), (COMPLETION, output)]),
            ),
            (
                "explicit creation",
                json!({"usage_style": "dashscope_explicit", "cache_write_tokens": 10}),
                (PROMPT, 0, 0, 10, 0, COMPLETION),
                exact_cost(&[(3, input), (10, share(125)), (COMPLETION, output)]),
            ),
            (
                "explicit hit",
                json!({"usage_style": "dashscope_explicit", "cached_tokens": 10}),
                (PROMPT, 10, 10, 0, 0, COMPLETION),
                exact_cost(&[(3, input), (10, share(10)), (COMPLETION, output)]),
            ),
        ];
        let mut records = Vec::new();
        for (case, knobs, expected_tokens, cost) in cases {
            let record = billed(&h, &key, ask(QWEN, knobs)).await;
            assert_eq!(tokens(&record), expected_tokens, "{case}");
            assert_eq!(
                (record.cost, record.price_tier.as_str()),
                (cost, "standard"),
                "{case}"
            );
            records.push(record);
        }
        if input == 110_000_000 && output == 330_000_000 {
            // At the seed page's price ($0.11 input, $0.33 output): 5·110 + 8·22 + 2·330,
            // 3·110 + 10·137.5 + 2·330, 3·110 + 10·11 + 2·330 nano-USD.
            let costs: Vec<i64> = records.iter().map(|r| r.cost.0).collect();
            assert_eq!(costs, [1_386, 2_365, 1_100]);
        }
        assert_debits_match(&h, user.id, &records).await;
        h.shutdown().await;
    }
}

/// `"HH:MM-HH:MM"` for the UTC minutes `[now + from, now + to)`, wrapping past midnight.
fn window_around_now(from_minutes: i64, to_minutes: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 60;
    let clock = |minutes: i64| {
        let of_day = (now + minutes).rem_euclid(24 * 60);
        format!("{:02}:{:02}", of_day / 60, of_day % 60)
    };
    format!("{}-{}", clock(from_minutes), clock(to_minutes))
}

#[tokio::test]
async fn the_price_window_in_force_when_a_request_starts_applies() {
    for backend in backends() {
        // Two models at $1 / $2: one with an off-peak window (half price) around now, one
        // whose window opens in two hours.
        let h = Harness::start_with(backend, |settings, mock_url| {
            settings.channels.push(channel(
                "deepseek",
                mock_url,
                &["now-off-peak", "later-off-peak"],
                0,
            ));
            for (id, window) in [
                ("now-off-peak", window_around_now(-60, 60)),
                ("later-off-peak", window_around_now(120, 180)),
            ] {
                settings.models.push(ModelConfig {
                    price_tiers: tiers(json!([
                        {"name": "off_peak", "utc": window, "multiplier": "0.5"}
                    ])),
                    ..model(id, "1", "2")
                });
            }
        })
        .await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(BALANCE_USD), KeyOptions::default())
            .await;
        let mut records = Vec::new();
        for (model_id, stream, cost, label) in [
            (
                "now-off-peak",
                false,
                Nanos(13 * 500 + 2 * 1_000),
                "off_peak",
            ),
            (
                "now-off-peak",
                true,
                Nanos(13 * 500 + 2 * 1_000),
                "off_peak",
            ),
            (
                "later-off-peak",
                false,
                Nanos(13 * 1_000 + 2 * 2_000),
                "standard",
            ),
        ] {
            let mut body = ask(model_id, json!({}));
            body["stream"] = json!(stream);
            let record = billed(&h, &key, body).await;
            assert_eq!(tokens(&record), (PROMPT, 0, 0, 0, 0, COMPLETION));
            assert_eq!(
                (record.cost, record.price_tier.as_str()),
                (cost, label),
                "{model_id}"
            );
            records.push(record);
        }
        assert_debits_match(&h, user.id, &records).await;
        h.shutdown().await;
    }
}
