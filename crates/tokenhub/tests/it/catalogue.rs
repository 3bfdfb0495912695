//! The seed page and the catalogue (issue 16): the docs page against the seed page (a copy
//! in tests/fixtures/seed-page.txt: CI runs without shared/), migration 0016 on rows an
//! operator did and did not edit, the import of each file format (admin API and CLI), and
//! the admin catalogue's attach.

use std::process::Command;

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokenhub::config::ChannelConfig;
use tokenhub::ledger::money::Nanos;
use tokenhub::providers::presets;

const BIN: &str = env!("CARGO_BIN_EXE_tokenhub");
const SEED_PAGE: &str = include_str!("../fixtures/seed-page.txt");
const SEED_BASE: &str = "https://loyap-innovation.com/v1/";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/catalogue/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The seed page's text between the line `from` and the line `to` (both exclusive).
fn seed_between(from: &str, to: &str) -> String {
    let start = SEED_PAGE
        .find(&format!("\n{from}\n"))
        .unwrap_or_else(|| panic!("the seed page has no line '{from}'"))
        + from.len()
        + 2;
    let rest = &SEED_PAGE[start..];
    let end = start
        + rest
            .find(&format!("\n{to}\n"))
            .or_else(|| rest.strip_suffix(&format!("\n{to}")).map(str::len))
            .unwrap_or_else(|| panic!("the seed page has no line '{to}' after '{from}'"));
    SEED_PAGE[start..end].trim_matches('\n').to_string()
}

/// The seed's model table: `deepseek-chatDeepSeek64K$0.27` → (name, provider, context, price).
fn seed_table() -> Vec<[String; 4]> {
    let rows = seed_between(
        "Model NameProviderContextPrice (per 1M tokens)",
        "500+ more models available. Visit admin panel for the full list.",
    );
    rows.lines()
        .map(|line| {
            let name_end = line
                .find(|c: char| c.is_ascii_uppercase())
                .expect("a provider");
            let price_at = line.rfind(['$', 'F']).expect("a price");
            let (name, rest) = (&line[..name_end], &line[name_end..price_at]);
            let context_at = rest
                .rfind(|c: char| !(c.is_ascii_digit() || c == 'K'))
                .map_or(0, |i| i + 1);
            [
                name.to_string(),
                rest[..context_at].to_string(),
                rest[context_at..].to_string(),
                line[price_at..].to_string(),
            ]
        })
        .collect()
}

fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The inner HTML of the element whose opening tag contains `marker`.
fn element<'a>(html: &'a str, marker: &str, tag: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the page"));
    let open_end = at + html[at..].find('>').unwrap() + 1;
    let close = open_end + html[open_end..].find(&format!("</{tag}>")).unwrap();
    &html[open_end..close]
}

fn rendered_table(html: &str) -> Vec<[String; 4]> {
    let body = element(html, "id=\"model-table\"", "table");
    let body = &body[body.find("<tbody>").unwrap()..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td")
                .skip(1)
                .map(|cell| text_of(&format!("<td{cell}")))
                .collect();
            [
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
            ]
        })
        .collect()
}

/// A deployment serving exactly the seed's 12 models (through one channel on the mock),
/// at the seed's public URL, with a support contact.
async fn seed_deployment(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        settings.channels.clear();
        settings.models.clear();
        let seeded: Vec<&str> = presets::BUILTIN_MODELS[..12].to_vec();
        settings
            .channels
            .push(channel("seed", mock_url, &seeded, 0));
        settings.channels.push(ChannelConfig {
            kind: "demo".into(),
            base_url: String::new(),
            api_key: None,
            enabled: false,
            ..channel("demo", "", &[presets::DEMO_MODEL], 0)
        });
        settings.public_url = Some("https://loyap-innovation.com".into());
        settings.accounts.support_contact = "WeChat: TokenHub_Support".into();
    })
    .await
}

#[tokio::test]
async fn the_docs_page_is_the_seed_page_with_its_models_samples_and_sections() {
    for backend in backends() {
        let h = seed_deployment(backend).await;
        let html = h
            .http
            .get(&h.base)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();

        // The table: the seed's 12 rows, in its order, cell for cell.
        let seed = seed_table();
        assert_eq!(seed.len(), 12, "{seed:?}");
        assert_eq!(rendered_table(&html), seed, "{backend:?}");
        let header = text_of(element(&html, "id=\"model-table\"", "thead"));
        assert_eq!(header, "Model NameProviderContextPrice (per 1M tokens)");

        // The sections, in the seed's order.
        let sections = [
            "Base URL",
            "Authentication",
            "Available Models",
            "Chat Completions",
            "Streaming",
            "Live Demo",
            "Get an API Key",
            "Need Help?",
        ];
        let mut last = 0;
        for title in sections {
            assert!(SEED_PAGE.contains(&format!("\n{title}\n")), "{title}");
            let at = html
                .find(&format!("\">{title}</h2>"))
                .unwrap_or_else(|| panic!("no section '{title}'"));
            assert!(at > last, "'{title}' is out of the seed's order");
            last = at;
        }

        // Base URL and authentication, as the seed writes them.
        assert_eq!(seed_between("Base URL", "Authentication"), SEED_BASE);
        assert_eq!(
            text_of(element(&html, "id=\"base-url\"", "code")),
            SEED_BASE
        );
        let auth = seed_between(
            "Pass your API Key in the Authorization header:",
            "Get your API key →",
        );
        assert_eq!(text_of(element(&html, "id=\"auth-header\"", "code")), auth);
        assert!(text_of(&html).contains("Get your API key →"));

        // The three samples, all streaming, character for character.
        for (id, title, next) in [
            ("python", "Python (OpenAI SDK)", "JavaScript (Node.js)"),
            ("node", "JavaScript (Node.js)", "curl"),
            ("curl", "curl", "Streaming"),
        ] {
            let rendered = text_of(element(&html, &format!("id=\"code-{id}\""), "code"));
            assert_eq!(rendered, seed_between(title, next), "{id}");
            assert!(
                html.contains(&format!(">{title}</h3>")),
                "sample heading {title}"
            );
        }
        assert!(text_of(&html).contains("POST/v1/chat/completions"));

        // Streaming, the live demo, the key steps and support.
        let page_text = text_of(&html);
        let streaming = seed_between("Streaming", "Live Demo");
        assert!(page_text.contains(&streaming), "{streaming}");
        let demo = seed_between("Live Demo", "Get an API Key");
        assert!(page_text.contains(&demo), "{demo}");
        assert!(html.contains("id=\"free-trial\" href=\"/token/#signup\""));
        assert!(html.contains("id=\"chat-demo\" href=\"/chat\""));
        assert_eq!(
            text_of(element(&html, "id=\"trial-credit\"", "strong")),
            "$1.00"
        );
        let steps: Vec<String> = seed_between("Get an API Key", "Need Help?")
            .lines()
            .map(|l| l.trim().split_once(". ").unwrap().1.to_string())
            .collect();
        let rendered_steps: Vec<String> = element(&html, "id=\"key-steps\"", "ol")
            .split("<li>")
            .skip(1)
            .map(text_of)
            .collect();
        assert_eq!(rendered_steps, steps);
        let support = seed_between("Need Help?", "← Back to TokenHub");
        assert_eq!(text_of(element(&html, "id=\"support\"", "p")), support);

        // "500+ more models": the shipped catalogue beyond what is served.
        let more = text_of(element(&html, "id=\"more-models\"", "p"));
        let (count, rest) = more.split_once("+ ").unwrap();
        assert!(count.parse::<usize>().unwrap() >= 500, "{more}");
        assert_eq!(
            rest,
            "more models available. Visit admin panel for the full list."
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn without_a_support_contact_the_help_section_is_hidden_and_one_model_is_singular() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        settings.channels.clear();
        settings.models.clear();
        settings.channels.push(ChannelConfig {
            kind: "demo".into(),
            base_url: String::new(),
            api_key: None,
            enabled: false,
            ..channel("demo", "", &[presets::DEMO_MODEL], 0)
        });
        settings
            .channels
            .push(channel("one", mock_url, &["gpt-4o"], 0));
    })
    .await;
    let html = h
        .http
        .get(&h.base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Need Help?"), "hidden when empty");
    assert!(
        text_of(&html).contains("Requests are routed to 1 model across"),
        "not '1 models'"
    );
    assert_eq!(
        rendered_table(&html),
        vec![["gpt-4o", "OpenAI (via proxy)", "128K", "$2.50"].map(String::from)]
    );
    h.shutdown().await;
}

async fn stored_model(h: &Harness, id: &str) -> tokenhub::store::ModelRow {
    h.gateway()
        .store
        .all_models()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("no model {id}"))
}

#[tokio::test]
async fn migration_0016_moves_unedited_seed_rows_to_the_seed_prices_and_leaves_edits() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let pool = AnyPool::connect(&h.database_url).await.unwrap();
        // Rows as the previous built-in catalogue wrote them, and one an operator edited.
        for statement in [
            "UPDATE models SET input_price_nano = 1000000000, output_price_nano = 3200000000, \
             cached_input_price_nano = 200000000, context = 131072 WHERE id = 'glm-5'",
            "UPDATE models SET input_price_nano = 400000000, output_price_nano = 1200000000, \
             cached_input_price_nano = 80000000, explicit_cached_price_nano = 40000000, \
             cache_write_price_nano = 500000000 WHERE id = 'qwen-plus'",
            "UPDATE models SET input_price_nano = 600000000, output_price_nano = 3000000000, \
             cached_input_price_nano = 100000000, context = 131072 WHERE id = 'kimi-k2.5'",
            "UPDATE models SET provider = 'OpenAI', context = 131072 WHERE id = 'gpt-4o'",
            // Edited: the output price is the operator's; the row stays as it is.
            "UPDATE models SET input_price_nano = 110000000, output_price_nano = 300000000 \
             WHERE id = 'doubao-pro'",
            // Edited cache price only: the prices move, the edited cache price stays.
            "UPDATE models SET input_price_nano = 280000000, output_price_nano = 420000000, \
             cached_input_price_nano = 30000000 WHERE id = 'deepseek-v3.2'",
            "DELETE FROM _sqlx_migrations WHERE version = 16",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        // A restart applies 0016 again.
        let again = h.start_another(|_, _| {}).await;
        let builtin = presets::builtin_models();
        let expected = |id: &str| builtin.iter().find(|m| m.id == id).unwrap().clone();
        for id in ["glm-5", "qwen-plus", "kimi-k2.5", "gpt-4o"] {
            let mut stored = stored_model(&h, id).await;
            stored.created = 0;
            assert_eq!(stored, expected(id), "{backend:?} {id}");
        }
        let edited = stored_model(&h, "doubao-pro").await;
        assert_eq!(
            (edited.input_price, edited.output_price),
            (Nanos(110_000_000), Nanos(300_000_000)),
            "an operator's prices are left alone"
        );
        let v32 = stored_model(&h, "deepseek-v3.2").await;
        assert_eq!(
            (v32.input_price, v32.output_price, v32.cached_input_price),
            (
                Nanos(270_000_000),
                Nanos(405_000_000),
                Some(Nanos(30_000_000))
            )
        );
        drop(again);
        pool.close().await;
        h.shutdown().await;
    }
}

async fn call(
    h: &Harness,
    session: &Session,
    method: Method,
    path: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = session
        .http
        .request(method, format!("{}{path}", h.base))
        .header("X-CSRF-Token", &session.csrf);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn import(h: &Harness, session: &Session, file: &str) -> Value {
    let (status, counts) = call(
        h,
        session,
        Method::POST,
        "/api/admin/models/import",
        Some(fixture(file)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}: {counts}");
    counts
}

fn counts(value: &Value) -> [u64; 4] {
    ["added", "updated", "unchanged", "skipped"].map(|k| value[k].as_u64().unwrap())
}

#[tokio::test]
async fn each_format_imports_with_counts_of_added_updated_and_unchanged_models() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let session = h.root_session().await;

        // Ours: glm-5 as stored, qwen-max repriced, one new model.
        let ours = import(&h, &session, "tokenhub.json").await;
        assert_eq!(ours["format"], "tokenhub");
        assert_eq!(counts(&ours), [1, 1, 1, 0], "{ours}");
        let qwen = stored_model(&h, "qwen-max").await;
        assert_eq!(qwen.input_price, Nanos(300_000_000));
        assert_eq!(qwen.rules.explicit_cached_input, Some(Nanos(30_000_000)));
        assert_eq!(stored_model(&h, "house-model").await.input_price, Nanos(1));

        // LiteLLM: gpt-4o unchanged, deepseek-chat repriced (its peak tier kept), a chat
        // and an embedding model added; the image model and the spec are skipped.
        let tiers_before = stored_model(&h, "deepseek-chat").await.rules.tiers;
        assert!(!tiers_before.is_empty());
        let litellm = import(&h, &session, "litellm.json").await;
        assert_eq!(litellm["format"], "litellm");
        assert_eq!(counts(&litellm), [2, 1, 1, 2], "{litellm}");
        let deepseek = stored_model(&h, "deepseek-chat").await;
        assert_eq!(
            (
                deepseek.input_price,
                deepseek.output_price,
                deepseek.cached_input_price
            ),
            (
                Nanos(280_000_000),
                Nanos(420_000_000),
                Some(Nanos(28_000_000))
            )
        );
        assert_eq!(
            deepseek.rules.tiers, tiers_before,
            "what the file lacks stays"
        );
        assert_eq!(deepseek.provider, "DeepSeek");
        let small = stored_model(&h, "mistral-small-latest").await;
        assert_eq!(
            (small.provider.as_str(), small.context, small.input_price),
            ("Mistral", 32_000, Nanos(100_000_000))
        );
        assert_eq!(
            stored_model(&h, "text-embedding-3-small").await.input_price,
            Nanos(20_000_000)
        );

        // OpenRouter: two added, the variable-price router skipped.
        let openrouter = import(&h, &session, "openrouter.json").await;
        assert_eq!(openrouter["format"], "openrouter");
        assert_eq!(counts(&openrouter), [2, 0, 0, 1], "{openrouter}");
        let mini = stored_model(&h, "openai/gpt-4o-mini").await;
        assert_eq!(
            (mini.input_price, mini.output_price, mini.cached_input_price),
            (
                Nanos(150_000_000),
                Nanos(600_000_000),
                Some(Nanos(75_000_000))
            )
        );
        assert_eq!(mini.provider, "openai");

        // The same file again changes nothing.
        let again = import(&h, &session, "openrouter.json").await;
        assert_eq!(counts(&again), [0, 0, 2, 1], "{again}");
        let (status, refused) = call(
            &h,
            &session,
            Method::POST,
            "/api/admin/models/import",
            Some("{\"not\": \"a catalogue\"}".into()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        h.shutdown().await;
    }
}

#[tokio::test]
async fn the_cli_imports_a_file_and_prints_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/cli.db", dir.path().display());
    let file = format!(
        "{}/tests/fixtures/catalogue/litellm.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = || {
        let (database, file) = (database.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["models", "import", &file])
                .env("TOKENHUB_DATABASE_URL", database)
                .env("TOKENHUB_ROOT_PASSWORD", "cli-test")
                .env("TOKENHUB_LOG", "warn")
                .output()
                .unwrap()
        })
    };
    // A store the CLI opened has no built-in rows (only `serve` seeds), so all are new.
    let first = run().await.unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "litellm format: 4 added, 0 updated, 0 unchanged, 2 skipped"
    );
    let second = run().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "litellm format: 0 added, 0 updated, 4 unchanged, 2 skipped"
    );
}

#[tokio::test]
async fn admins_see_the_whole_catalogue_and_serve_a_model_by_attaching_it() {
    let h = Harness::start(Backend::Sqlite).await;
    let session = h.root_session().await;
    let (status, list) = call(&h, &session, Method::GET, "/api/admin/catalogue", None).await;
    assert_eq!(status, StatusCode::OK);
    let data = list["data"].as_array().unwrap();
    assert!(data.len() >= 500, "{} models", data.len());
    let find = |data: &[Value], id: &str| data.iter().find(|m| m["id"] == id).cloned().unwrap();
    let mock = find(data, "mock-gpt");
    assert_eq!(
        (mock["priced"].clone(), mock["served"].clone()),
        (json!(true), json!(true))
    );
    let unserved = find(data, "mistral-small-latest");
    assert_eq!(
        (unserved["priced"].clone(), unserved["served"].clone()),
        (json!(false), json!(false))
    );
    assert!(
        unserved["source"]
            .as_str()
            .unwrap()
            .contains("mistral/mistral-small-latest")
    );
    assert_eq!(unserved["input_modalities"], json!(["text", "image"]));

    let channel_id = h.channel_id("mock").await;
    let attach = json!({"model": "mistral-small-latest", "channel_id": channel_id});
    let anonymous = reqwest::Client::new()
        .post(format!("{}/api/admin/catalogue/attach", h.base))
        .json(&attach)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let user = h.signup_session("plain-user", "plain-password").await;
    let refused = call(
        &h,
        &user,
        Method::POST,
        "/api/admin/catalogue/attach",
        Some(attach.to_string()),
    )
    .await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN, "{}", refused.1);
    let (status, attached) = call(
        &h,
        &session,
        Method::POST,
        "/api/admin/catalogue/attach",
        Some(json!({"model": "mistral-small-latest", "channel_id": channel_id}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{attached}");
    assert_eq!(attached["priced"], true);
    h.reload().await;
    let (_, list) = call(&h, &session, Method::GET, "/api/admin/catalogue", None).await;
    let now = find(list["data"].as_array().unwrap(), "mistral-small-latest");
    assert_eq!(now["served"], true, "{now}");
    assert_eq!(now["channels"], json!(["mock"]));
    let (key_owner, key) = h
        .user_with_key("catalogue-user", Nanos::from_usd(1), Default::default())
        .await;
    let answer = h
        .chat(
            &key,
            json!({"model": "mistral-small-latest", "messages": user_says("hi")}),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK, "served once attached");
    drop(key_owner);
    let (status, _) = call(
        &h,
        &session,
        Method::POST,
        "/api/admin/catalogue/attach",
        Some(json!({"model": "no-such-model", "channel_id": channel_id}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.shutdown().await;
}
