//! The web app's server side: pages, assets, security headers, the admin page's role
//! check and the chat demo's endpoint (anonymous trial and session billing). What the
//! pages do in a browser is tested in headless Chromium by scripts/web-tests.sh.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenhub::ledger::money::Nanos;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

#[tokio::test]
async fn pages_and_assets_are_served_with_strict_headers() {
    let h = Harness::start(Backend::Sqlite).await;
    let http = no_redirects();
    for path in ["/", "/pricing", "/token/", "/chat"] {
        let response = http.get(format!("{}{path}", h.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let html = response.text().await.unwrap();
        assert!(html.contains("mock-gpt"), "{path} lists the catalogue");
    }
    let html = http
        .get(&h.base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let css = html
        .split('"')
        .find(|s| s.starts_with("/assets/app.css?v="))
        .expect("a versioned stylesheet link");
    let asset = http.get(format!("{}{css}", h.base)).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = asset.headers()["etag"].clone();
    let again = http
        .get(format!("{}{css}", h.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = http
        .get(format!("{}/assets/nope.js", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let admin = http.get(format!("{}/admin", h.base)).send().await.unwrap();
    assert_eq!(admin.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.headers()["location"], "/token/?next=/admin");
    let token = http.get(format!("{}/token", h.base)).send().await.unwrap();
    assert_eq!(token.headers()["location"], "/token/");
    h.shutdown().await;
}

/// A session through the API (`signup` or `login`): the client holding the cookie, the
/// CSRF token and the user's id.
async fn session(
    h: &Harness,
    route: &str,
    name: &str,
    password: &str,
) -> (reqwest::Client, String, i64) {
    let http = no_redirects();
    let session: Value = http
        .post(format!("{}/api/auth/{route}", h.base))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    (http, csrf, session["user"]["id"].as_i64().unwrap())
}

async fn sign_up(h: &Harness, name: &str) -> (reqwest::Client, String, i64) {
    session(h, "signup", name, "long-enough-password").await
}

async fn root(h: &Harness) -> (reqwest::Client, String, i64) {
    session(h, "login", "root", "root-password").await
}

#[tokio::test]
async fn the_admin_page_needs_the_admin_role() {
    let h = Harness::start(Backend::Sqlite).await;
    let (user, _, _) = sign_up(&h, "carol").await;
    let page = user.get(format!("{}/admin", h.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains("Admins only"));
    let (root, _, _) = root(&h).await;
    let page = root.get(format!("{}/admin", h.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("data-root=\"true\""));
    h.shutdown().await;
}

#[tokio::test]
async fn the_chat_bills_the_signed_in_user_and_needs_the_csrf_token() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (http, csrf, user_id) = sign_up(&h, "dora").await;
        h.reload().await;
        let body = json!({"model": "mock-gpt", "messages": user_says("hello web chat"),
            "stream": true, "stream_options": {"include_usage": true}});
        let url = format!("{}/chat/completions", h.base);
        let refused = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_session");

        let response = http
            .post(&url)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = request_id(&response);
        let text = response.text().await.unwrap();
        assert_eq!(
            streamed_text(&sse_data(&text)),
            "Hello from mock-upstream! You said: hello web chat"
        );
        let record = h.record_eventually(&id).await;
        assert_eq!((record.user_id, record.key_id), (user_id, 0));
        let cost = cost_of(record.prompt_tokens, record.completion_tokens);
        assert!(cost > Nanos::ZERO);
        assert_eq!(record.cost, cost);
        assert_eq!(h.stored_balance(user_id).await, Nanos::from_usd(1) - cost);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn visitors_chat_with_free_models_only_within_a_per_address_limit() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.accounts.anonymous_chat_rpm = 2;
    })
    .await;
    let http = no_redirects();
    let url = format!("{}/chat/completions", h.base);
    let ask = |model: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(&url)
                .json(&json!({"model": model, "messages": user_says("hi")}))
                .send()
                .await
                .unwrap()
        }
    };

    // Unreadable bodies get the relay's 400s, before any rate limiting.
    for (body, param) in [("{not json", None), ("{\"messages\": []}", Some("model"))] {
        let bad = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = bad.json().await.unwrap();
        assert_eq!(error["error"]["param"].as_str(), param, "{body}");
    }

    let paid = ask("mock-gpt").await;
    assert_eq!(paid.status(), StatusCode::FORBIDDEN);
    let error: Value = paid.json().await.unwrap();
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["error"]["param"].as_str()
        ),
        (Some("sign_in_required"), Some("model"))
    );

    let free = ask("mock-free").await;
    assert_eq!(free.status(), StatusCode::OK);
    let record = h.record(&request_id(&free)).await;
    let owner = h
        .gateway()
        .store
        .user_by_name("~anonymous")
        .await
        .unwrap()
        .expect("the anonymous system user");
    assert_eq!(
        (record.user_id, record.key_id, record.cost),
        (owner.id, 0, Nanos::ZERO)
    );

    let second = ask("mock-free").await;
    assert_eq!(second.status(), StatusCode::OK);
    let limited = ask("mock-free").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));

    // The operator turns the trial off at runtime.
    let (root, csrf, _) = root(&h).await;
    let saved = root
        .patch(format!("{}/api/admin/settings", h.base))
        .header("x-csrf-token", csrf)
        .json(&json!({"anonymous_chat": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let off = ask("mock-free").await;
    assert_eq!(off.status(), StatusCode::UNAUTHORIZED);
    let chat_page = http.get(format!("{}/chat", h.base)).send().await.unwrap();
    let html = chat_page.text().await.unwrap();
    assert!(html.contains("Sign in</a> to chat"));
    h.shutdown().await;
}
