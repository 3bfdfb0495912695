//! The server-rendered pages: the API documentation (`/`) and the price list
//! (`/pricing`), both read from the live catalogue snapshot.

use std::fmt::Write;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http::HeaderMap;

use super::html::{Esc, Nav, Page};
use super::i18n::Lang;
use super::viewer::MaybeViewer;
use crate::api::AppState;
use crate::catalog::Model;
use crate::ledger::money::PerMillion;
use crate::providers::presets;

/// A price as the seed page writes it (`$2.50`, `$0.01`, `$0.042`: at least two
/// decimals), or `Free` (translated): the web app's one money format (`html::usd`).
pub fn price(lang: Lang, per_million: PerMillion) -> String {
    if per_million.0.is_zero() {
        lang.t("price.free").into()
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
fn price_rows(lang: Lang, models: &[&std::sync::Arc<Model>]) -> String {
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
            input = price(lang, model.prices.input),
        );
        let _ = write!(
            rows,
            "<td class=\"num\" data-sort=\"{}\">{}</td>",
            model.prices.cached_input.0.0,
            price(lang, model.prices.cached_input)
        );
        let _ = write!(
            rows,
            "<td class=\"num\" data-sort=\"{}\">{}</td></tr>",
            model.prices.output.0.0,
            price(lang, model.prices.output)
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

fn sample_blocks(lang: Lang, base: &str, key: &str, model: &str) -> String {
    let mut html = String::new();
    for (id, title, code) in samples(base, key, model) {
        let _ = write!(
            html,
            "<h3 id=\"sample-{id}\">{title}</h3><div class=\"sample\">\
             <button class=\"copy\" data-copy-from=\"code-{id}\">{copy}</button>\
             <pre><code id=\"code-{id}\">{}</code></pre></div>",
            Esc(&code),
            copy = lang.t("common.copy"),
        );
    }
    html
}

/// `1 model`, `13 models` (`count.models.one` / `count.models.other`).
fn count_models(lang: Lang, n: usize) -> String {
    let id = if n == 1 {
        "count.models.one"
    } else {
        "count.models.other"
    };
    lang.tf(id, &[("n", &n.to_string())])
}

/// `/`: the seed page's sections in its order (base URL, authentication, models, chat
/// completions with three streaming samples, streaming, live demo, getting a key, help),
/// with this deployment's models and settings.
pub async fn docs(
    State(state): State<AppState>,
    headers: HeaderMap,
    lang: Lang,
    viewer: MaybeViewer,
) -> Response {
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
            "<p>{}</p>",
            lang.tf(
                "docs.key_in_samples",
                &[("key", &format!("<code>{}</code>", Esc(&key)))]
            )
        ),
        Some(_) => format!("<p>{}</p>", lang.t("docs.no_key_yet")),
        None => format!(
            "<p><a href=\"/token/\">{}</a></p>",
            lang.t("docs.get_your_key")
        ),
    };
    let mut main = String::new();
    let _ = write!(
        main,
        "<section class=\"hero\"><h1>{title}</h1>\
         <p class=\"lead\">{lead}</p>\
         <p>{routed}</p></section>\
         <section><h2 id=\"base-url-title\">{base_title}</h2>\
         <div class=\"baseurl\"><code id=\"base-url\">{base}</code>\
         <button class=\"copy\" data-copy-from=\"base-url\">{copy}</button></div></section>\
         <section><h2 id=\"auth\">{auth_title}</h2>\
         <p>{auth_intro}</p>\
         <pre><code id=\"auth-header\">Authorization: Bearer {key}</code></pre>\
         <p>{auth_more}</p>{key_call}</section>",
        title = lang.t("docs.title"),
        lead = lang.t("docs.lead"),
        routed = lang.tf(
            "docs.routed",
            &[("models", &count_models(lang, models.len()))]
        ),
        base_title = lang.t("docs.base_url"),
        copy = lang.t("common.copy"),
        auth_title = lang.t("docs.auth"),
        auth_intro = lang.t("docs.auth_intro"),
        auth_more = lang.t("docs.auth_more"),
        base = Esc(&base),
        key = Esc(&key),
    );
    let more = presets::catalogue_size().saturating_sub(models.len()) / 100 * 100;
    let _ = write!(
        main,
        "<section><h2 id=\"models\">{title}</h2>\
         <div class=\"table-wrap\"><table class=\"models\" id=\"model-table\"><thead><tr>\
         <th scope=\"col\">{name}</th><th scope=\"col\">{provider}</th>\
         <th scope=\"col\" class=\"num\">{context}</th>\
         <th scope=\"col\" class=\"num\">{price}</th></tr></thead>\
         <tbody>{rows}</tbody></table></div>{empty}{more}\
         <p class=\"muted small\">{note}</p></section>",
        title = lang.t("docs.models"),
        name = lang.t("docs.model_name"),
        provider = lang.t("price.provider"),
        context = lang.t("price.context"),
        price = lang.t("docs.price_per_million"),
        note = lang.t("docs.price_note"),
        rows = seed_rows(lang, &models),
        empty = if models.is_empty() {
            format!("<p class=\"muted\">{}</p>", lang.t("docs.no_models"))
        } else {
            String::new()
        },
        more = if more > 0 {
            format!(
                "<p id=\"more-models\">{}</p>",
                lang.tf("docs.more_models", &[("n", &more.to_string())])
            )
        } else {
            String::new()
        },
    );
    let _ = write!(
        main,
        "<section><h2 id=\"chat-completions\">{title}</h2>\
         <p class=\"endpoint\"><span class=\"method\">POST</span><code>/v1/chat/completions</code></p>\
         {samples}</section>",
        title = lang.t("docs.chat_completions"),
        samples = sample_blocks(lang, &base, &key, sample_model),
    );
    let _ = write!(
        main,
        "<section><h2 id=\"streaming\">{streaming}</h2>\
         <p>{streaming_1}</p><p>{streaming_2}</p></section>\
         <section><h2 id=\"endpoints\">{endpoints}</h2><table class=\"plain\"><tbody>\
         <tr><td><code>POST /v1/chat/completions</code></td><td>{chat}</td></tr>\
         <tr><td><code>POST /v1/completions</code></td><td>{completions}</td></tr>\
         <tr><td><code>POST /v1/embeddings</code></td><td>{embeddings}</td></tr>\
         <tr><td><code>GET /v1/models</code></td><td>{list}</td></tr>\
         <tr><td><code>POST /v1/messages</code></td><td>{messages}</td></tr>\
         </tbody></table></section>\
         <section><h2 id=\"errors\">{errors}</h2><p>{errors_text}</p></section>",
        streaming = lang.t("docs.streaming"),
        streaming_1 = lang.t("docs.streaming_1"),
        streaming_2 = lang.t("docs.streaming_2"),
        endpoints = lang.t("docs.endpoints"),
        chat = lang.t("docs.endpoint_chat"),
        completions = lang.t("docs.endpoint_completions"),
        embeddings = lang.t("docs.endpoint_embeddings"),
        list = lang.t("docs.endpoint_models"),
        messages = lang.t("docs.endpoint_messages"),
        errors = lang.t("docs.errors"),
        errors_text = lang.t("docs.errors_text"),
    );
    let trial = site
        .as_ref()
        .filter(|s| s.signup_open && !s.trial_credit.is_zero())
        .map(|s| {
            lang.tf(
                "docs.trial_credit",
                &[(
                    "amount",
                    &format!(
                        "<strong id=\"trial-credit\">{}</strong>",
                        price(lang, PerMillion(s.trial_credit))
                    ),
                )],
            )
        })
        .unwrap_or_default();
    let _ = write!(
        main,
        "<section><h2 id=\"live-demo\">{demo}</h2><p>{try_it}{trial}</p></section>\
         <section><h2 id=\"get-key\">{get_key}</h2><ol id=\"key-steps\">\
         <li>{step_1}</li><li>{step_2}</li><li>{step_3}</li></ol></section>",
        demo = lang.t("docs.live_demo"),
        try_it = lang.t("docs.try_it"),
        get_key = lang.t("docs.get_key"),
        step_1 = lang.t("docs.step_1"),
        step_2 = lang.t("docs.step_2"),
        step_3 = lang.t("docs.step_3"),
    );
    if let Some(contact) = site
        .as_ref()
        .map(|s| s.support_contact.as_str())
        .filter(|c| !c.is_empty())
    {
        let _ = write!(
            main,
            "<section><h2 id=\"help\">{}</h2>\
             <p id=\"support\">{}</p></section>",
            lang.t("docs.help"),
            lang.tf("docs.contact", &[("contact", &Esc(contact).to_string())]),
        );
    }
    page(
        Page {
            lang,
            title: lang.t("docs.page_title"),
            nav: Nav::Docs,
            viewer: viewer.0.as_ref().map(|v| &v.viewer),
            main,
            script: Some("docs.js"),
        }
        .render(),
    )
}

/// A rendered page, marked as depending on the request's language.
fn page(html: String) -> Response {
    let mut response = Html(html).into_response();
    super::i18n::vary(response.headers_mut());
    response
}

/// The seed's four columns: name, provider, context, input price per 1M tokens.
fn seed_rows(lang: Lang, models: &[&std::sync::Arc<Model>]) -> String {
    let mut rows = String::new();
    for model in models {
        let _ = write!(
            rows,
            "<tr><td><code>{id}</code></td><td>{provider}</td>\
             <td class=\"num\">{ctx}</td><td class=\"num\">{input}</td></tr>",
            id = Esc(&model.id),
            provider = Esc(&model.provider),
            ctx = context(model.context),
            input = price(lang, model.prices.input),
        );
    }
    rows
}

/// `/pricing`: every enabled model, sortable and filterable in the page.
pub async fn pricing(State(state): State<AppState>, lang: Lang, viewer: MaybeViewer) -> Response {
    let catalog = state.relay.catalog.load_full();
    let models = catalog.priced_models();
    let mut providers: Vec<&str> = models.iter().map(|m| m.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    let mut options = format!(
        "<option value=\"\">{}</option>",
        lang.t("price.all_providers")
    );
    for provider in providers {
        let _ = write!(options, "<option>{}</option>", Esc(provider));
    }
    let main = format!(
        "<h1>{title}</h1><p class=\"lead\">{lead}</p>\
         <form class=\"filters\" role=\"search\" data-filter-table=\"price-table\">\
         <label>{search} <input type=\"search\" name=\"q\" placeholder=\"{search_hint}\"></label>\
         <label>{provider} <select name=\"provider\">{options}</select></label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"free\"> {free_only}</label></form>\
         <div class=\"table-wrap\"><table class=\"models sortable\" id=\"price-table\"><thead><tr>\
         <th scope=\"col\" aria-sort=\"ascending\"><button>{model}</button></th>\
         <th scope=\"col\"><button>{provider}</button></th>\
         <th scope=\"col\" class=\"num\"><button>{context}</button></th>\
         <th scope=\"col\" class=\"num\"><button>{input}</button></th>\
         <th scope=\"col\" class=\"num\"><button>{cached}</button></th>\
         <th scope=\"col\" class=\"num\"><button>{output}</button></th></tr></thead>\
         <tbody>{rows}</tbody></table></div><p class=\"muted\" id=\"price-count\">{count}</p>",
        title = lang.t("nav.pricing"),
        lead = lang.t("price.lead"),
        search = lang.t("price.search"),
        search_hint = lang.t("price.model_name"),
        provider = lang.t("price.provider"),
        free_only = lang.t("price.free_only"),
        model = lang.t("price.model"),
        context = lang.t("price.context"),
        input = lang.t("price.input"),
        cached = lang.t("price.cached_input"),
        output = lang.t("price.output"),
        rows = price_rows(lang, &models),
        count = count_models(lang, models.len()),
    );
    page(
        Page {
            lang,
            title: lang.t("nav.pricing"),
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
        assert_eq!(price(Lang::En, PerMillion(Nanos::ZERO)), "Free");
        assert_eq!(price(Lang::Zh, PerMillion(Nanos::ZERO)), "免费");
        assert_eq!(price(Lang::Zh, PerMillion(Nanos(2_500_000_000))), "$2.50");
        assert_eq!(price(Lang::En, PerMillion(Nanos(3_000_000_000))), "$3.00");
        assert_eq!(price(Lang::En, PerMillion(Nanos(10_000_000))), "$0.01");
        assert_eq!(price(Lang::En, PerMillion(Nanos(42_000_000))), "$0.042");
        assert_eq!(context(128_000), "128K");
        assert_eq!(context(131_072), "131K");
        assert_eq!(context(65_536), "64K");
        assert_eq!(context(32_768), "32K");
        assert_eq!(context(1_000_000), "1M");
        assert_eq!(count_models(Lang::En, 1), "1 model");
        assert_eq!(count_models(Lang::En, 13), "13 models");
        assert_eq!(count_models(Lang::Zh, 13), "13 个模型");
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
