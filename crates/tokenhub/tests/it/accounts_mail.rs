//! Account mail set up by the operator (#17): optional email verification at sign-up, and
//! SMTP settings saved in the admin panel over the configuration's, with the password
//! sealed at rest. Mail goes to a local SMTP sink (`support/smtp.rs`).

use crate::harness::*;
use crate::smtp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SETTINGS: &str = "/api/admin/settings";
const MY_KEYS: &str = "/api/me/keys";

fn new_key() -> Option<Value> {
    Some(json!({"name": "laptop"}))
}

#[tokio::test]
async fn under_email_verification_a_new_account_waits_for_the_mailed_link() {
    for backend in backends() {
        let (h, mut mail) = Harness::start_with_mail(backend).await;
        let earlier = h.signup_session("earlier", "earlier-password").await;
        assert_eq!(earlier.status, StatusCode::CREATED);
        let root = h.root_session().await;
        let on = Some(json!({"email_verification": true}));
        let (status, _) = h.call_as(&root, Method::PATCH, SETTINGS, on).await;
        assert_eq!(status, StatusCode::OK);
        let console = h
            .http
            .get(format!("{}/token/", h.base))
            .send()
            .await
            .unwrap();
        assert!(
            console
                .text()
                .await
                .unwrap()
                .contains("data-verify-email=\"true\""),
            "the sign-up form asks for an address"
        );

        let no_email = h.signup_session("eve", "eve-password").await;
        assert_eq!(
            no_email.status,
            StatusCode::BAD_REQUEST,
            "{}",
            no_email.body
        );
        let eve = h
            .signup_with_email("eve", "eve-password", "Eve@Example.com")
            .await;
        assert_eq!(eve.status, StatusCode::CREATED, "{}", eve.body);
        let (_, pending) = h.call_as(&eve, Method::GET, "/api/me", None).await;
        assert_eq!(pending["email_verification_pending"], true);
        assert_eq!(pending["live_balance_usd"], "0", "the trial waits");
        let (status, error) = h.call_as(&eve, Method::POST, MY_KEYS, new_key()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("confirm your email address"),
            "{error}"
        );

        let message = smtp::next_mail(&mut mail).await;
        assert!(message.contains("To: eve@example.com"), "{message}");
        let (page, token) = smtp::link_token(&message, "#verify=");
        assert_eq!(
            page, "https://gateway.example/token/",
            "built from public_url"
        );
        assert!(token.starts_with("thv_"), "{token}");
        let resend = eve
            .http
            .post(format!("{}/api/me/email/verification", h.base))
            .header("x-csrf-token", &eve.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(resend.status(), StatusCode::TOO_MANY_REQUESTS, "throttled");
        assert!(resend.headers().contains_key("retry-after"));

        let confirm = || {
            h.http
                .post(format!("{}/api/auth/verify-email", h.base))
                .json(&json!({"token": token}))
                .send()
        };
        assert_eq!(confirm().await.unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(
            confirm().await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "a link works once"
        );
        let (_, confirmed) = h.call_as(&eve, Method::GET, "/api/me", None).await;
        assert_eq!(confirmed["email_verification_pending"], false);
        assert_eq!(confirmed["live_balance_usd"], "1", "the trial, once");
        let (status, _) = h.call_as(&eve, Method::POST, MY_KEYS, new_key()).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = h.call_as(&earlier, Method::POST, MY_KEYS, new_key()).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "accounts made before are not asked"
        );
        assert!(
            mail.try_recv().is_err(),
            "one mail: the throttled resend sent none"
        );
        h.shutdown().await;
    }
}

fn sink_host_port(url: &str) -> (String, u16) {
    let (host, port) = url.trim_start_matches("smtp://").rsplit_once(':').unwrap();
    (host.to_string(), port.parse().unwrap())
}

#[tokio::test]
async fn admin_smtp_settings_override_the_configuration_and_keep_the_password_sealed() {
    for backend in backends() {
        let (h, mut config_mail) = Harness::start_with_mail(backend).await;
        let (admin_url, mut admin_mail) = smtp::sink().await;
        let root = h.root_session().await;
        let (status, view) = h.call_as(&root, Method::GET, "/api/admin/mail", None).await;
        assert_eq!(
            (status, view["source"].as_str()),
            (StatusCode::OK, Some("config"))
        );
        let test = json!({"to": "ops@example.com"});
        let sent = h
            .call_as(
                &root,
                Method::POST,
                "/api/admin/mail/test",
                Some(test.clone()),
            )
            .await;
        assert_eq!(sent.0, StatusCode::NO_CONTENT, "{}", sent.1);
        assert!(
            smtp::next_mail(&mut config_mail)
                .await
                .contains("TokenHub test mail")
        );

        let (host, port) = sink_host_port(&admin_url);
        let with_login = json!({"host": host, "port": port, "username": "mailer",
            "password": "smtp-secret-1", "from": MAIL_SENDER, "tls": "none"});
        let (status, view) = h
            .call_as(&root, Method::PUT, "/api/admin/mail", Some(with_login))
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["source"], "admin");
        assert_eq!(view["saved"]["password_set"], true);
        assert!(
            !view.to_string().contains("smtp-secret-1"),
            "never returned: {view}"
        );
        let stored = h.gateway().store.site_settings().await.unwrap();
        assert!(
            stored
                .values()
                .all(|value| !value.contains("smtp-secret-1")),
            "sealed at rest"
        );
        // The sink offers no login: the test mail's failure is the server's answer.
        let refused = h
            .call_as(
                &root,
                Method::POST,
                "/api/admin/mail/test",
                Some(test.clone()),
            )
            .await;
        assert_eq!(refused.0, StatusCode::BAD_GATEWAY, "{}", refused.1);

        let no_login = json!({"host": host, "port": port, "username": "", "password": "",
            "from": MAIL_SENDER, "tls": "none"});
        let (status, view) = h
            .call_as(&root, Method::PUT, "/api/admin/mail", Some(no_login))
            .await;
        assert_eq!(
            (status, view["saved"]["password_set"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        let sent = h
            .call_as(
                &root,
                Method::POST,
                "/api/admin/mail/test",
                Some(test.clone()),
            )
            .await;
        assert_eq!(sent.0, StatusCode::NO_CONTENT, "{}", sent.1);
        assert!(
            smtp::next_mail(&mut admin_mail)
                .await
                .contains("To: ops@example.com")
        );
        // Password resets go through the admin's server too.
        let reset = h
            .http
            .post(format!("{}/api/auth/password-reset", h.base))
            .json(&json!({"email": "nobody@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(reset.status(), StatusCode::ACCEPTED);

        let (status, view) = h
            .call_as(&root, Method::DELETE, "/api/admin/mail", None)
            .await;
        assert_eq!(
            (status, view["source"].as_str()),
            (StatusCode::OK, Some("config"))
        );
        let sent = h
            .call_as(&root, Method::POST, "/api/admin/mail/test", Some(test))
            .await;
        assert_eq!(sent.0, StatusCode::NO_CONTENT, "{}", sent.1);
        assert!(
            smtp::next_mail(&mut config_mail)
                .await
                .contains("To: ops@example.com")
        );
        assert!(admin_mail.try_recv().is_err());
        h.shutdown().await;
    }
}

#[tokio::test]
async fn without_mail_verification_cannot_be_turned_on_and_smtp_needs_a_public_url() {
    let h = Harness::start(Backend::Sqlite).await;
    let root = h.root_session().await;
    let on = Some(json!({"email_verification": true}));
    let (status, _) = h.call_as(&root, Method::PATCH, SETTINGS, on).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, view) = h.call_as(&root, Method::GET, "/api/admin/mail", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (view["source"].as_str(), view["public_url_set"].as_bool()),
        (Some("none"), Some(false))
    );
    let smtp = json!({"host": "127.0.0.1", "port": 25, "from": MAIL_SENDER, "tls": "none"});
    let (status, error) = h
        .call_as(&root, Method::PUT, "/api/admin/mail", Some(smtp.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("public_url"),
        "{error}"
    );
    let user = h.signup_session("plain", "plain-password").await;
    let test = json!({"to": "ops@example.com"});
    for (method, path, body) in [
        (Method::GET, "/api/admin/mail", None),
        (Method::PUT, "/api/admin/mail", Some(smtp)),
        (Method::DELETE, "/api/admin/mail", None),
        (Method::POST, "/api/admin/mail/test", Some(test)),
    ] {
        let (status, _) = h.call_as(&user, method.clone(), path, body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path}: admins only"
        );
    }
    let anonymous = h
        .http
        .post(format!("{}/api/me/email/verification", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    h.shutdown().await;
}

#[tokio::test]
async fn a_test_mail_to_an_unreachable_smtp_server_fails_promptly_and_says_why() {
    let (h, _mail) = Harness::start_with_mail(Backend::Sqlite).await;
    let root = h.root_session().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = json!({"host": "127.0.0.1", "port": closed_port, "from": MAIL_SENDER,
        "tls": "none"});
    let (status, view) = h
        .call_as(&root, Method::PUT, "/api/admin/mail", Some(unreachable))
        .await;
    assert_eq!(status, StatusCode::OK, "saving does not connect: {view}");
    let started = std::time::Instant::now();
    let test = Some(json!({"to": "ops@example.com"}));
    let (status, error) = h
        .call_as(&root, Method::POST, "/api/admin/mail/test", test)
        .await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("SMTP server 127.0.0.1:{closed_port}"))
            && message.contains("refused"),
        "names the server and the reason: {message}"
    );
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    h.shutdown().await;
}
