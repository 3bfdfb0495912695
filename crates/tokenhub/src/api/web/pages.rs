//! The server-rendered pages: the API documentation (`/`) and the price list
//! (`/pricing`), both read from the live catalogue snapshot.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;
use http::HeaderMap;

use super::html::{Esc, Nav, Page};
use super::viewer::MaybeViewer;
use crate::api::AppState;
use crate::catalog::Model;
use crate::ledger::money::PerMillion;
use crate::providers::presets;

/// A price as the seed page writes it (`$2.50`, `$0.01`, `$0.042`: at least two
/// decimals), or `Free`: the web app's one money format (`html::usd`).
pub fn price(per_million: PerMillion) -> String {
    if per_million.0.is_zero() {
        "Free".into()
    } else {
        super::html::usd(per_million.0)
    }
}

fn is_free(model: &Model) -> bool {
    model.prices.input.0.is_zero() && model.prices.output.0.is_zero()
}

/// A context window as vendors quote it: `64K` for 65,536 (binary up to 64Ki), `128K`
/// for 128,000, `131K` for 131,072 (Qwen quotes 131,072 tokens; the seed shows 131K).
fn context(tokens: u64) -> String {
    match tokens {
        0 => "—".into(),
        t if t >= 1_000_000 && t % 100_000 == 0 => {
            format!("{}M", (t as f64 / 1e6 * 10.0).round() / 10.0)
        }
        t if t % 1000 == 0 => format!("{}K", t / 1000),
        t if t % 1024 == 0 && t <= 65_536 => format!("{}K", t / 1024),
        t if t >= 1000 => format!("{}K", (t + 500) / 1000),
        t => t.to_string(),
    }
}

/// The URL clients put in `base_url`, with the seed's trailing slash: the configured
/// public URL, else this request's host.
fn base_url(configured: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(url) = configured {
        return format!("{}/v1/", url.trim_end_matches('/'));
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:3000");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}/v1/", if https { "https" } else { "http" })
}

/// The price list's rows: input, cached input and output prices, sortable.
fn price_rows(models: &[&std::sync::Arc<Model>]) -> String {
    let mut rows = String::new();
    for model in models {
        let free = if is_free(model) {
            " data-free=\"1\""
        } else {
            ""
        };
        let _ = write!(
            rows,
            "<tr{free}><td><code>{id}</code></td><td>{provider}</td>\
             <td class=\"num\" data-sort=\"{ctx_raw}\">{ctx}</td>\
             <td class=\"num\" data-sort=\"{in_raw}\">{input}</td>",
            id = Esc(&model.id),
            provider = Esc(&model.provider),
            ctx_raw = model.context,
            ctx = context(model.context),
            in_raw = model.prices.input.0.0,
            input = price(model.prices.input),
        );
        let _ = write!(
            rows,
            "<td class=\"num\" data-sort=\"{}\">{}</td>",
            model.prices.cached_input.0.0,
            price(model.prices.cached_input)
        );
        let _ = write!(
            rows,
            "<td class=\"num\" data-sort=\"{}\">{}</td></tr>",
            model.prices.output.0.0,
            price(model.prices.output)
        );
    }
    rows
}

/// The seed page's three samples, all streaming, with this deployment's base URL.
fn samples(base: &str, key: &str, model: &str) -> [(&'static str, &'static str, String); 3] {
    let python = format!(
        "from openai import OpenAI\n\nclient = OpenAI(\n    api_key=\"{key}\",\n    base_url=\"{base}\"\n)\n\n\
         response = client.chat.completions.create(\n    model=\"{model}\",\n    messages=[\n        \
         {{\"role\": \"system\", \"content\": \"You are a helpful AI.\"}},\n        \
         {{\"role\": \"user\", \"content\": \"Hello!\"}}\n    ],\n    temperature=0.7,\n    stream=True\n)\n\n\
         for chunk in response:\n    print(chunk.choices[0].delta.content or \"\", end=\"\")"
    );
    let node = format!(
        "import OpenAI from 'openai';\n\nconst client = new OpenAI({{\n    apiKey: \"{key}\",\n    baseURL: \"{base}\"\n}});\n\n\
         const stream = await client.chat.completions.create({{\n    model: \"{model}\",\n    \
         messages: [{{ role: \"user\", content: \"Hello\" }}],\n    stream: true,\n}});\n\n\
         for await (const chunk of stream) {{\n    process.stdout.write(chunk.choices[0]?.delta?.content || \"\");\n}}"
    );
    let curl = format!(
        "curl {base}chat/completions \\\n  -H \"Content-Type: application/json\" \\\n  \
         -H \"Authorization: Bearer {key}\" \\\n  -d '{{\n    \"model\": \"{model}\",\n    \"messages\": [\n      \
         {{\"role\": \"system\", \"content\": \"You are a helpful AI.\"}},\n      \
         {{\"role\": \"user\", \"content\": \"Hello!\"}}\n    ],\n    \"temperature\": 0.7,\n    \"stream\": true\n  }}'"
    );
    [
        ("python", "Python (OpenAI SDK)", python),
        ("node", "JavaScript (Node.js)", node),
        ("curl", "curl", curl),
    ]
}

fn sample_blocks(base: &str, key: &str, model: &str) -> String {
    let mut html = String::new();
    for (id, title, code) in samples(base, key, model) {
        let _ = write!(
            html,
            "<h3 id=\"sample-{id}\">{title}</h3><div class=\"sample\">\
             <button class=\"copy\" data-copy-from=\"code-{id}\">Copy</button>\
             <pre><code id=\"code-{id}\">{}</code></pre></div>",
            Esc(&code)
        );
    }
    html
}

/// `1 model`, `13 models`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `/`: the seed page's sections in its order (base URL, authentication, models, chat
/// completions with three streaming samples, streaming, live demo, getting a key, help),
/// with this deployment's models and settings.
pub async fn docs(
    State(state): State<AppState>,
    headers: HeaderMap,
    viewer: MaybeViewer,
) -> Html<String> {
    let catalog = state.relay.catalog.load_full();
    let mut models = catalog.routable_models();
    // The built-in models in the seed's order, then the operator's by id.
    models.sort_by_key(|m| {
        (
            presets::builtin_rank(&m.id).unwrap_or(usize::MAX),
            m.id.clone(),
        )
    });
    let base = base_url(state.web.public_url.as_deref(), &headers);
    let site = super::shells::settings(&state).await;
    // Only this page needs the viewer's keys; it reads them itself.
    let key_hint = match &viewer.0 {
        Some(v) => v.key_hint(&state).await,
        None => None,
    };
    let key = key_hint
        .clone()
        .unwrap_or_else(|| "sk-your-tokenhub-key".into());
    let sample_model = ["deepseek-chat"]
        .into_iter()
        .chain(models.iter().filter(|m| !is_free(m)).map(|m| m.id.as_str()))
        .find(|id| models.iter().any(|m| m.id == *id))
        .or(models.first().map(|m| m.id.as_str()))
        .unwrap_or("deepseek-chat");
    let key_call = match &viewer.0 {
        Some(_) if key_hint.is_some() => format!(
            "<p>The samples use your key <code>{}</code> — paste the full secret you saved \
             when you created it. <a href=\"/token/#keys\">Create another key</a></p>",
            Esc(&key)
        ),
        Some(_) => {
            "<p>You have no API key yet. <a href=\"/token/#keys\">Get your API key →</a></p>".into()
        }
        None => "<p><a href=\"/token/\">Get your API key →</a></p>".into(),
    };
    let mut main = String::new();
    let _ = write!(
        main,
        "<section class=\"hero\"><h1>TokenHub API Documentation</h1>\
         <p class=\"lead\">Fully OpenAI-compatible API · One line of code to switch</p>\
         <p>Requests are routed to {served} across providers, metered per token and billed \
         from your balance.</p></section>\
         <section><h2 id=\"base-url-title\">Base URL</h2>\
         <div class=\"baseurl\"><code id=\"base-url\">{base}</code>\
         <button class=\"copy\" data-copy-from=\"base-url\">Copy</button></div></section>\
         <section><h2 id=\"auth\">Authentication</h2>\
         <p>Pass your API Key in the Authorization header:</p>\
         <pre><code id=\"auth-header\">Authorization: Bearer {key}</code></pre>\
         <p>The Anthropic-compatible <code>/v1/messages</code> endpoint also accepts \
         <code>x-api-key</code>. Each key can have an expiry, a spending quota, a model list \
         and an IP allow list.</p>{key_call}</section>",
        served = count(models.len(), "model"),
        base = Esc(&base),
        key = Esc(&key),
    );
    let more = presets::catalogue_size().saturating_sub(models.len()) / 100 * 100;
    let _ = write!(
        main,
        "<section><h2 id=\"models\">Available Models</h2>\
         <div class=\"table-wrap\"><table class=\"models\" id=\"model-table\"><thead><tr>\
         <th scope=\"col\">Model Name</th><th scope=\"col\">Provider</th>\
         <th scope=\"col\" class=\"num\">Context</th>\
         <th scope=\"col\" class=\"num\">Price (per 1M tokens)</th></tr></thead>\
         <tbody>{rows}</tbody></table></div>{empty}{more}\
         <p class=\"muted small\">The price is for input tokens; output and cached-input prices \
         are on the <a href=\"/pricing\">price list</a>.</p></section>",
        rows = seed_rows(&models),
        empty = if models.is_empty() {
            "<p class=\"muted\">No model is available yet: an administrator adds channels and models in the admin panel.</p>"
        } else {
            ""
        },
        more = if more > 0 {
            format!(
                "<p id=\"more-models\">{more}+ more models available. Visit \
                 <a href=\"/admin#catalogue\">admin panel</a> for the full list.</p>"
            )
        } else {
            String::new()
        },
    );
    let _ = write!(
        main,
        "<section><h2 id=\"chat-completions\">Chat Completions</h2>\
         <p class=\"endpoint\"><span class=\"method\">POST</span><code>/v1/chat/completions</code></p>\
         {samples}</section>",
        samples = sample_blocks(&base, &key, sample_model),
    );
    main.push_str(
        "<section><h2 id=\"streaming\">Streaming</h2>\
         <p>Set <code>stream: true</code> to receive Server-Sent Events (SSE) responses. \
         Fully compatible with OpenAI's streaming format.</p>\
         <p>Each chunk is forwarded the moment it arrives. \
         Add <code>\"stream_options\": {\"include_usage\": true}</code> to receive a final \
         chunk with token usage. If you disconnect mid-stream, the upstream request is \
         cancelled and only the tokens already delivered are billed.</p></section>\
         <section><h2 id=\"endpoints\">Endpoints</h2><table class=\"plain\"><tbody>\
         <tr><td><code>POST /v1/chat/completions</code></td><td>Chat, streaming or not, tools, vision.</td></tr>\
         <tr><td><code>POST /v1/completions</code></td><td>Legacy text completions.</td></tr>\
         <tr><td><code>POST /v1/embeddings</code></td><td>Embeddings, billed by input tokens.</td></tr>\
         <tr><td><code>GET /v1/models</code></td><td>The models your key may call.</td></tr>\
         <tr><td><code>POST /v1/messages</code></td><td>Anthropic Messages API (Claude Code, the Anthropic SDKs).</td></tr>\
         </tbody></table></section>\
         <section><h2 id=\"errors\">Errors and limits</h2>\
         <p>Errors use OpenAI's shape: <code>{\"error\": {\"message\", \"type\", \"param\", \"code\"}}</code>. \
         <code>401</code> bad key, <code>403</code> address not allowed for the key, \
         <code>404</code> unknown model or one the key may not use (as OpenAI answers: \
         <code>model_not_found</code>), <code>429</code> rate limited (see <code>Retry-After</code> \
         and <code>x-ratelimit-*</code> headers) or balance/quota exhausted \
         (<code>insufficient_quota</code>), <code>5xx</code> every upstream failed. \
         Each response carries <code>x-request-id</code>.</p></section>",
    );
    let trial = site
        .as_ref()
        .filter(|s| s.signup_open && !s.trial_credit.is_zero())
        .map(|s| {
            format!(
                " New accounts get <strong id=\"trial-credit\">{}</strong> of free credit.",
                price(PerMillion(s.trial_credit))
            )
        })
        .unwrap_or_default();
    let _ = write!(
        main,
        "<section><h2 id=\"live-demo\">Live Demo</h2>\
         <p>Try it without coding: <a id=\"free-trial\" href=\"/token/#signup\">Free Trial →</a> \
         or use the <a id=\"chat-demo\" href=\"/chat\">Chat Demo →</a>{trial}</p></section>\
         <section><h2 id=\"get-key\">Get an API Key</h2><ol id=\"key-steps\">\
         <li>Go to <a href=\"/token/\">/token/</a> and create an account</li>\
         <li>Generate a new API key</li><li>Use it with the code above</li></ol></section>"
    );
    if let Some(contact) = site
        .as_ref()
        .map(|s| s.support_contact.as_str())
        .filter(|c| !c.is_empty())
    {
        let _ = write!(
            main,
            "<section><h2 id=\"help\">Need Help?</h2>\
             <p id=\"support\">Contact us via {}</p></section>",
            Esc(contact)
        );
    }
    Html(
        Page {
            title: "API documentation",
            nav: Nav::Docs,
            viewer: viewer.0.as_ref().map(|v| &v.viewer),
            main,
            script: Some("docs.js"),
        }
        .render(),
    )
}

/// The seed's four columns: name, provider, context, input price per 1M tokens.
fn seed_rows(models: &[&std::sync::Arc<Model>]) -> String {
    let mut rows = String::new();
    for model in models {
        let _ = write!(
            rows,
            "<tr><td><code>{id}</code></td><td>{provider}</td>\
             <td class=\"num\">{ctx}</td><td class=\"num\">{input}</td></tr>",
            id = Esc(&model.id),
            provider = Esc(&model.provider),
            ctx = context(model.context),
            input = price(model.prices.input),
        );
    }
    rows
}

/// `/pricing`: every enabled model, sortable and filterable in the page.
pub async fn pricing(State(state): State<AppState>, viewer: MaybeViewer) -> Html<String> {
    let catalog = state.relay.catalog.load_full();
    let models = catalog.priced_models();
    let mut providers: Vec<&str> = models.iter().map(|m| m.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    let mut options = String::from("<option value=\"\">All providers</option>");
    for provider in providers {
        let _ = write!(options, "<option>{}</option>", Esc(provider));
    }
    let main = format!(
        "<h1>Pricing</h1><p class=\"lead\">Pay per token, in USD per 1M tokens. Cached input \
         applies to prompt tokens the provider served from its cache. Free models cost nothing.</p>\
         <form class=\"filters\" role=\"search\" data-filter-table=\"price-table\">\
         <label>Search <input type=\"search\" name=\"q\" placeholder=\"Model name\"></label>\
         <label>Provider <select name=\"provider\">{options}</select></label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"free\"> Free only</label></form>\
         <div class=\"table-wrap\"><table class=\"models sortable\" id=\"price-table\"><thead><tr>\
         <th scope=\"col\" aria-sort=\"ascending\"><button>Model</button></th>\
         <th scope=\"col\"><button>Provider</button></th>\
         <th scope=\"col\" class=\"num\"><button>Context</button></th>\
         <th scope=\"col\" class=\"num\"><button>Input</button></th>\
         <th scope=\"col\" class=\"num\"><button>Cached input</button></th>\
         <th scope=\"col\" class=\"num\"><button>Output</button></th></tr></thead>\
         <tbody>{rows}</tbody></table></div><p class=\"muted\" id=\"price-count\">{count} models</p>",
        rows = price_rows(&models),
        count = models.len(),
    );
    Html(
        Page {
            title: "Pricing",
            nav: Nav::Pricing,
            viewer: viewer.0.as_ref().map(|v| &v.viewer),
            main,
            script: Some("docs.js"),
        }
        .render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::money::Nanos;

    #[test]
    fn prices_and_contexts_read_like_a_price_list() {
        assert_eq!(price(PerMillion(Nanos::ZERO)), "Free");
        assert_eq!(price(PerMillion(Nanos(2_500_000_000))), "$2.50");
        assert_eq!(price(PerMillion(Nanos(3_000_000_000))), "$3.00");
        assert_eq!(price(PerMillion(Nanos(10_000_000))), "$0.01");
        assert_eq!(price(PerMillion(Nanos(42_000_000))), "$0.042");
        assert_eq!(context(128_000), "128K");
        assert_eq!(context(131_072), "131K");
        assert_eq!(context(65_536), "64K");
        assert_eq!(context(32_768), "32K");
        assert_eq!(context(1_000_000), "1M");
        assert_eq!(count(1, "model"), "1 model");
        assert_eq!(count(13, "model"), "13 models");
        assert_eq!(context(0), "—");
    }

    #[test]
    fn the_base_url_prefers_the_configuration() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "gw.example:8080".parse().unwrap());
        assert_eq!(base_url(None, &headers), "http://gw.example:8080/v1/");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(None, &headers), "https://gw.example:8080/v1/");
        assert_eq!(
            base_url(Some("https://api.example/"), &headers),
            "https://api.example/v1/"
        );
    }
}
