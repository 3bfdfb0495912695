//! The server side of issue #17's web fixes: unknown URLs for browsers and API clients,
//! compression where it is harmless, the system account and balance-adjustment rules,
//! refused requests keeping the model they named, and keyless channels saying what to
//! set. Their pages are tested in Chromium (clients/browser/test_fixes.mjs).

use crate::harness::*;
use crate::smtp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

#[tokio::test]
async fn unknown_urls_are_a_page_for_browsers_and_json_for_api_clients() {
    let h = Harness::start(Backend::Sqlite).await;
    let url = format!("{}/no/such/page", h.base);
    let browser = h
        .http
        .get(&url)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::NOT_FOUND);
    assert!(
        browser.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        browser.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = browser.text().await.unwrap();
    assert!(page.contains("Page not found") && page.contains("/no/such/page"));

    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut request = h.http.get(&url);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let api = request.send().await.unwrap();
        assert_eq!(api.status(), StatusCode::NOT_FOUND);
        let error: Value = api.json().await.unwrap();
        assert_eq!(error["error"]["code"], "unknown_url", "{accept:?}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn pages_and_management_json_are_compressed_but_streams_and_v1_are_not() {
    let h = Harness::start(Backend::Sqlite).await;
    let encoding = |r: &reqwest::Response| {
        r.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string())
    };
    for (accept, expected) in [("br", "br"), ("gzip", "gzip"), ("gzip, br", "br")] {
        let page = h
            .http
            .get(format!("{}/pricing", h.base))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(encoding(&page).as_deref(), Some(expected), "{accept}");
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
    }
    let plain = h
        .http
        .get(format!("{}/pricing", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(encoding(&plain), None, "nothing asked, nothing compressed");
    let plain_len = plain.bytes().await.unwrap().len();
    let br = h
        .http
        .get(format!("{}/pricing", h.base))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    assert!(br * 3 < plain_len, "brotli {br} B vs {plain_len} B");

    let admin = h.root_session().await.http;
    let models = admin
        .get(format!("{}/api/admin/models", h.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(encoding(&models).as_deref(), Some("gzip"));

    let (_, key) = h
        .user_with_key("zip", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let relayed = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(&key)
        .header("accept-encoding", "gzip, br")
        .json(&json!({"model": "mock-gpt", "messages": user_says("hi"), "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), StatusCode::OK);
    assert_eq!(
        encoding(&relayed),
        None,
        "the relayed stream is never held back"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn the_anonymous_system_account_keeps_its_role_and_status() {
    let h = Harness::start(Backend::Sqlite).await;
    let Session {
        http: admin, csrf, ..
    } = h.root_session().await;
    let users: Value = admin
        .get(format!("{}/api/admin/users?search=anonymous", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anonymous = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "~anonymous")
        .expect("the system account is listed");
    assert_eq!(anonymous["system"], true);
    let url = format!("{}/api/admin/users/{}", h.base, anonymous["id"]);
    for change in [json!({"status": "disabled"}), json!({"role": "admin"})] {
        let refused = admin
            .patch(&url)
            .header("x-csrf-token", &csrf)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::CONFLICT, "{change}");
    }
    let deleted = admin
        .delete(&url)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::CONFLICT);
    // Its limits remain the operator's to set.
    let limited = admin
        .patch(&url)
        .header("x-csrf-token", &csrf)
        .json(&json!({"rpm_limit": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test]
async fn balance_adjustments_are_bounded_and_never_overdraw() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (user, _) = h
            .user_with_key("adjusted", Nanos::from_usd(5), KeyOptions::default())
            .await;
        let Session {
            http: admin, csrf, ..
        } = h.root_session().await;
        let url = format!("{}/api/admin/users/{}/balance", h.base, user.id);
        let adjust = |amount: &str| {
            admin
                .post(&url)
                .header("x-csrf-token", &csrf)
                .json(&json!({"amount_usd": amount, "reason": "test"}))
                .send()
        };
        assert_eq!(
            adjust("100001").await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            adjust("-5.000000001").await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(5));
        assert_eq!(adjust("100000").await.unwrap().status(), StatusCode::OK);
        assert_eq!(adjust("-100000").await.unwrap().status(), StatusCode::OK);
        assert_eq!(adjust("-5").await.unwrap().status(), StatusCode::OK);
        assert_eq!(h.stored_balance(user.id).await, Nanos::ZERO);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn refused_requests_are_recorded_under_the_model_they_named() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, key) = h
            .user_with_key("asker", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let refused = h
            .chat(
                &key,
                json!({"model": "no-such-model", "messages": user_says("x")}),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        let record = h.record_eventually(&request_id(&refused)).await;
        assert_eq!(
            (record.model.as_str(), record.status),
            ("no-such-model", 404)
        );

        let long = "m".repeat(500);
        let refused = h
            .chat(&key, json!({"model": long, "messages": user_says("x")}))
            .await;
        let record = h.record_eventually(&request_id(&refused)).await;
        assert_eq!(record.model.len(), tokenhub::catalog::MAX_MODEL_ID_LEN);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_channel_without_its_key_is_not_serving_and_names_the_variable() {
    let h = Harness::start(Backend::Sqlite).await;
    let Session {
        http: admin, csrf, ..
    } = h.root_session().await;
    let created: Value = admin
        .post(format!("{}/api/admin/channels", h.base))
        .header("x-csrf-token", &csrf)
        .json(
            &json!({"name": "keyless", "type": "deepseek", "base_url": "https://api.deepseek.com",
            "api_key_env": "TOKENHUB_TEST_NEVER_SET_KEY", "models": ["mock-gpt"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().expect("created");
    h.reload().await;
    let health: Value = admin
        .get(format!("{}/api/admin/channels/{id}/health", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["state"], "not_serving");
    let reason = health["disabled_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no API key: set TOKENHUB_TEST_NEVER_SET_KEY"),
        "{reason}"
    );
    let test = admin
        .post(format!("{}/api/admin/channels/{id}/test", h.base))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(test.status(), StatusCode::BAD_REQUEST);
    let error: Value = test.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no API key: set TOKENHUB_TEST_NEVER_SET_KEY")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn admins_search_every_key_by_owner_name_and_prefix() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (ada, _) = h
            .user_with_key("ada-lovelace", Nanos::from_usd(1), KeyOptions::default())
            .await;
        h.user_with_key("bob", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let Session {
            http: admin, csrf, ..
        } = h.root_session().await;
        let search = |q: String| {
            let admin = admin.clone();
            let url = format!("{}/api/admin/keys?search={q}", h.base);
            async move {
                admin
                    .get(url)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let found = search("LOVELACE".into()).await;
        assert_eq!(found["total"], 1, "{found}");
        let key = &found["data"][0];
        assert_eq!(
            (key["user_name"].as_str(), key["user_id"].as_i64()),
            (Some("ada-lovelace"), Some(ada.id))
        );
        let prefix = key["prefix"].as_str().unwrap().to_string();
        assert_eq!(search(prefix.clone()).await["data"][0]["id"], key["id"]);
        assert_eq!(search(String::new()).await["total"], 2);

        let disabled = admin
            .patch(format!("{}/api/admin/keys/{}", h.base, key["id"]))
            .header("x-csrf-token", &csrf)
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(disabled.status(), StatusCode::OK);
        let active: Value = admin
            .get(format!("{}/api/admin/keys?status=active", h.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(active["total"], 1);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_a_mailed_one_use_link() {
    for backend in backends() {
        let (h, mut mail) = Harness::start_with_mail(backend).await;
        let Session {
            http: ada,
            csrf,
            status,
            ..
        } = h.signup_session("ada", "first-password").await;
        assert_eq!(status, StatusCode::CREATED);
        let me: Value = ada
            .put(format!("{}/api/me/email", h.base))
            .header("x-csrf-token", &csrf)
            .json(&json!({"email": "Ada@Example.com"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                me["email"].as_str(),
                me["password_reset_by_email"].as_bool()
            ),
            (Some("ada@example.com"), Some(true))
        );

        let ask = |email: &str| {
            h.http
                .post(format!("{}/api/auth/password-reset", h.base))
                .json(&json!({"email": email}))
                .send()
        };
        assert_eq!(
            ask("nobody@example.com").await.unwrap().status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            ask("ADA@example.com").await.unwrap().status(),
            StatusCode::ACCEPTED
        );
        let message = smtp::next_mail(&mut mail).await;
        assert!(message.contains("To: ada@example.com"), "{message}");
        let (page, token) = smtp::link_token(&message, "#reset=");
        assert_eq!(
            page, "https://gateway.example/token/",
            "the link uses public_url"
        );
        assert!(token.starts_with("thr_"), "{token}");
        // Following the link opens the console, whose script shows the reset form.
        let page = page.replace("https://gateway.example", &h.base);
        let console = h.http.get(&page).send().await.unwrap();
        assert_eq!(console.status(), StatusCode::OK);
        let html = console.text().await.unwrap();
        assert!(html.contains("console.js"), "{html}");
        let script = h
            .http
            .get(format!("{}/assets/console.js", h.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            script.contains("#reset="),
            "the console handles reset links"
        );
        assert!(mail.try_recv().is_err(), "no mail for an unknown address");

        let confirm = |password: &str| {
            h.http
                .post(format!("{}/api/auth/password-reset/confirm", h.base))
                .json(&json!({"token": token, "new_password": password}))
                .send()
        };
        assert_eq!(
            confirm("short").await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            confirm("second-password").await.unwrap().status(),
            StatusCode::NO_CONTENT,
            "a refused password leaves the link usable"
        );
        assert_eq!(
            confirm("third-password").await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "once"
        );

        let old_session = ada.get(format!("{}/api/me", h.base)).send().await.unwrap();
        assert_eq!(
            old_session.status(),
            StatusCode::UNAUTHORIZED,
            "every session ended"
        );
        assert_eq!(
            h.login_session("ada", "first-password").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            h.login_session("ada", "second-password").await.status,
            StatusCode::OK
        );
        // Asking is throttled like logging in (5 per address and account per window), so
        // nobody can flood an inbox through the gateway.
        for _ in 0..5 {
            let status = ask("flood@example.com").await.unwrap().status();
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        assert_eq!(
            ask("flood@example.com").await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        h.shutdown().await;
    }
    let h = Harness::start(Backend::Sqlite).await;
    let refused = h
        .http
        .post(format!("{}/api/auth/password-reset", h.base))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::NOT_FOUND,
        "no SMTP server configured"
    );
    h.shutdown().await;
}
