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

/// `$2.50` per 1M tokens, or `Free`.
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

fn context(tokens: u64) -> String {
    match tokens {
        0 => "—".into(),
        t if t % 1000 == 0 && t >= 1000 => format!("{}K", t / 1000),
        t if t % 1024 == 0 && t >= 1024 => format!("{}K", t / 1024),

        t => t.to_string(),
    }
}

/// The URL clients put in `base_url`: the configured public URL, else this request's host.
fn base_url(configured: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(url) = configured {
        return format!("{}/v1", url.trim_end_matches('/'));
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:3000");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}/v1", if https { "https" } else { "http" })
}

fn model_rows(models: &[&std::sync::Arc<Model>], with_cached: bool) -> String {
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
        if with_cached {
            let _ = write!(
                rows,
                "<td class=\"num\" data-sort=\"{}\">{}</td>",
                model.prices.cached_input.0.0,
                price(model.prices.cached_input)
            );
        }
        let _ = write!(
            rows,
            "<td class=\"num\" data-sort=\"{}\">{}</td></tr>",
            model.prices.output.0.0,
            price(model.prices.output)
        );
    }
    rows
}

fn samples(base: &str, key: &str, model: &str) -> String {
    let python = format!(
        "from openai import OpenAI\n\nclient = OpenAI(\n    base_url=\"{base}\",\n    api_key=\"{key}\",\n)\n\
         stream = client.chat.completions.create(\n    model=\"{model}\",\n    \
         messages=[{{\"role\": \"user\", \"content\": \"Hello!\"}}],\n    stream=True,\n)\n\
         for chunk in stream:\n    if chunk.choices:\n        print(chunk.choices[0].delta.content or \"\", end=\"\")\n"
    );
    let node = format!(
        "import OpenAI from \"openai\";\n\nconst client = new OpenAI({{\n  baseURL: \"{base}\",\n  apiKey: \"{key}\",\n}});\n\n\
         const completion = await client.chat.completions.create({{\n  model: \"{model}\",\n  \
         messages: [{{ role: \"user\", content: \"Hello!\" }}],\n}});\n\
         console.log(completion.choices[0].message.content);\n"
    );
    let curl = format!(
        "curl {base}/chat/completions \\\n  -H \"Authorization: Bearer {key}\" \\\n  \
         -H \"Content-Type: application/json\" \\\n  \
         -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'\n"
    );
    let mut html = String::from(
        "<div class=\"tabs\" data-tabs><div role=\"tablist\" aria-label=\"Language\">\
         <button role=\"tab\" aria-selected=\"true\" aria-controls=\"sample-python\" id=\"tab-python\">Python</button>\
         <button role=\"tab\" aria-selected=\"false\" aria-controls=\"sample-node\" id=\"tab-node\">Node.js</button>\
         <button role=\"tab\" aria-selected=\"false\" aria-controls=\"sample-curl\" id=\"tab-curl\">curl</button></div>",
    );
    for (id, code) in [("python", python), ("node", node), ("curl", curl)] {
        let _ = write!(
            html,
            "<div role=\"tabpanel\" id=\"sample-{id}\" aria-labelledby=\"tab-{id}\" class=\"sample\">\
             <button class=\"copy\" data-copy-from=\"code-{id}\">Copy</button>\
             <pre><code id=\"code-{id}\">{}</code></pre></div>",
            Esc(&code)
        );
    }
    html.push_str("</div>");
    html
}

/// `/`: how to call this gateway, with the live model table.
pub async fn docs(
    State(state): State<AppState>,
    headers: HeaderMap,
    viewer: MaybeViewer,
) -> Html<String> {
    let catalog = state.relay.catalog.load_full();
    let models = catalog.routable_models();
    let base = base_url(state.web.public_url.as_deref(), &headers);
    // Only this page needs the viewer's keys; it reads them itself.
    let key_hint = match &viewer.0 {
        Some(v) => v.key_hint(&state).await,
        None => None,
    };
    let key = key_hint.clone().unwrap_or_else(|| "sk-…".into());
    let sample_model = models
        .iter()
        .find(|m| !is_free(m))
        .or(models.first())
        .map_or("gpt-4o-mini", |m| m.id.as_str());
    let key_call = match &viewer.0 {
        Some(_) if key_hint.is_some() => format!(
            "<p>Your samples use your key <code>{}</code> — paste the full secret you saved \
             when you created it. <a class=\"button small\" href=\"/token/#keys\">Create another key</a></p>",
            Esc(&key)
        ),
        Some(_) => "<p>You have no API key yet. \
             <a class=\"button\" href=\"/token/#keys\">Create a key</a></p>"
            .into(),
        None => "<p><a class=\"button\" href=\"/token/\">Sign up and create a key</a> \
             — new accounts get trial credit. Or try the models in the <a href=\"/chat\">chat</a>.</p>"
            .into(),
    };
    let mut main = String::new();
    let _ = write!(
        main,
        "<section class=\"hero\"><h1>One OpenAI-compatible API for every model</h1>\
         <p class=\"lead\">Point any OpenAI SDK, LangChain or curl at TokenHub: change only the \
         base URL and the API key. Requests are routed to {count} models across providers, \
         metered per token and billed from your balance.</p>\
         <div class=\"baseurl\"><span>Base URL</span><code id=\"base-url\">{base}</code>\
         <button class=\"copy\" data-copy-from=\"base-url\">Copy</button></div>{key_call}</section>",
        count = models.len(),
        base = Esc(&base),
    );
    let _ = write!(
        main,
        "<section><h2 id=\"auth\">Authentication</h2>\
         <p>Send your API key as a bearer token on every request:</p>\
         <pre><code>Authorization: Bearer sk-…</code></pre>\
         <p>The Anthropic-compatible <code>/v1/messages</code> endpoint also accepts \
         <code>x-api-key: sk-…</code>. Keys are created in the <a href=\"/token/\">console</a>; \
         each can have an expiry, a spending quota, a model list and an IP allow list.</p></section>\
         <section><h2 id=\"quickstart\">Quick start</h2>{samples}</section>",
        samples = samples(&base, &key, sample_model),
    );
    let _ = write!(
        main,
        "<section><h2 id=\"models\">Models</h2><p>Prices in USD per 1M tokens. \
         <a href=\"/pricing\">Full price list</a>.</p>\
         <div class=\"table-wrap\"><table class=\"models\" id=\"model-table\"><thead><tr>\
         <th scope=\"col\">Model</th><th scope=\"col\">Provider</th><th scope=\"col\" class=\"num\">Context</th>\
         <th scope=\"col\" class=\"num\">Input</th><th scope=\"col\" class=\"num\">Output</th></tr></thead>\
         <tbody>{rows}</tbody></table></div>{empty}</section>",
        rows = model_rows(&models, false),
        empty = if models.is_empty() {
            "<p class=\"muted\">No model is available yet: an administrator adds channels and models in the admin panel.</p>"
        } else {
            ""
        },
    );
    main.push_str(
        "<section><h2 id=\"endpoints\">Endpoints</h2><table class=\"plain\"><tbody>\
         <tr><td><code>POST /v1/chat/completions</code></td><td>Chat, streaming or not, tools, vision.</td></tr>\
         <tr><td><code>POST /v1/completions</code></td><td>Legacy text completions.</td></tr>\
         <tr><td><code>POST /v1/embeddings</code></td><td>Embeddings, billed by input tokens.</td></tr>\
         <tr><td><code>GET /v1/models</code></td><td>The models your key may call.</td></tr>\
         <tr><td><code>POST /v1/messages</code></td><td>Anthropic Messages API (Claude Code, the Anthropic SDKs).</td></tr>\
         </tbody></table></section>\
         <section><h2 id=\"streaming\">Streaming</h2>\
         <p>With <code>\"stream\": true</code> the answer arrives as server-sent events, \
         exactly as OpenAI sends them, each chunk forwarded the moment it arrives. \
         Add <code>\"stream_options\": {\"include_usage\": true}</code> to receive a final \
         chunk with token usage. If you disconnect mid-stream, the upstream request is \
         cancelled and only the tokens already delivered are billed.</p></section>\
         <section><h2 id=\"errors\">Errors and limits</h2>\
         <p>Errors use OpenAI's shape: <code>{\"error\": {\"message\", \"type\", \"param\", \"code\"}}</code>. \
         <code>401</code> bad key, <code>403</code> address not allowed for the key, \
         <code>404</code> unknown model or one the key may not use (as OpenAI answers: \
         <code>model_not_found</code>), <code>429</code> rate limited (see <code>Retry-After</code> \
         and <code>x-ratelimit-*</code> headers) or balance/quota exhausted \
         (<code>insufficient_quota</code>), <code>5xx</code> every upstream failed. \
         Each response carries <code>x-request-id</code>.</p></section>",
    );
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
        rows = model_rows(&models, true),
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
        assert_eq!(context(128_000), "128K");
        assert_eq!(context(131_072), "128K");
        assert_eq!(context(0), "—");
    }

    #[test]
    fn the_base_url_prefers_the_configuration() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "gw.example:8080".parse().unwrap());
        assert_eq!(base_url(None, &headers), "http://gw.example:8080/v1");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(None, &headers), "https://gw.example:8080/v1");
        assert_eq!(
            base_url(Some("https://api.example/"), &headers),
            "https://api.example/v1"
        );
    }
}
