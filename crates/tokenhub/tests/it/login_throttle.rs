//! Password guessing is throttled per (account, address) pair and per address, so an
//! attacker elsewhere cannot lock the owner out, and a password change counts like a
//! login. Other client addresses are loopback aliases (Linux routes 127.0.0.0/8 to lo).

use std::net::IpAddr;

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn login(h: &Harness, client: &reqwest::Client, name: &str, password: &str) -> StatusCode {
    let credentials = json!({"username": name, "password": password});
    h.auth_session(client.clone(), "login", credentials)
        .await
        .status
}

#[tokio::test]
async fn wrong_passwords_from_elsewhere_do_not_lock_the_owner_out() {
    let h = Harness::start(Backend::Sqlite).await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(
            login(&h, &attacker, "root", "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&h, &attacker, "root", "root-password").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker's address is locked out of this account, even with the password"
    );
    let owner = client_from("127.0.0.1");
    assert_eq!(
        login(&h, &owner, "root", "root-password").await,
        StatusCode::OK,
        "the owner, elsewhere, is not"
    );

    // Spraying other names from the attacker's address hits the per-address bound.
    let mut statuses = Vec::new();
    for n in 0..20 {
        statuses.push(login(&h, &attacker, &format!("user{n}"), "guess").await);
    }
    assert_eq!(statuses[..15], [StatusCode::UNAUTHORIZED; 15]);
    assert!(
        statuses[15..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(
        login(&h, &owner, "root", "root-password").await,
        StatusCode::OK
    );
    h.shutdown().await;
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let h = Harness::start(Backend::Sqlite).await;
    let owner = client_from("127.0.0.3");
    let erin = json!({"username": "erin", "password": "erin-password"});
    let csrf = h.auth_session(owner.clone(), "signup", erin).await.csrf;
    let change = |current: &'static str| {
        let (owner, url, csrf) = (
            owner.clone(),
            format!("{}/api/auth/password", h.base),
            csrf.clone(),
        );
        async move {
            owner
                .put(url)
                .header("x-csrf-token", csrf)
                .json(&json!({"current_password": current, "new_password": "erin-new-password"}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..5 {
        assert_eq!(change("guess").await.status(), StatusCode::FORBIDDEN);
    }
    let refused = change("erin-password").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    // The same count guards the login form from that address.
    assert_eq!(
        login(&h, &owner, "erin", "erin-password").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The password was not changed.
    assert_eq!(
        login(&h, &client_from("127.0.0.4"), "erin", "erin-password").await,
        StatusCode::OK
    );
    h.shutdown().await;
}

/// Behind a trusted proxy the client is the `X-Forwarded-For` hop; an IPv6 client is its
/// /64, so rotating addresses inside it buys nothing.
#[tokio::test]
async fn an_ipv6_network_behind_a_trusted_proxy_is_one_client() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let signup = |n: u32, network: &'static str| {
        let (http, url) = (h.http.clone(), format!("{}/api/auth/signup", h.base));
        async move {
            http.post(url)
                .header("x-forwarded-for", format!("{network}::{n:x}"))
                .json(
                    &json!({"username": format!("u{network}{n}").replace(':', ""),
                    "password": "long-enough-password"}),
                )
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for n in 1..=5 {
        assert_eq!(signup(n, "2001:db8:1:2").await, StatusCode::CREATED);
    }
    assert_eq!(
        signup(6, "2001:db8:1:2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(signup(1, "2001:db8:1:3").await, StatusCode::CREATED);

    // Wrong passwords from one /64 do not lock out the owner in another.
    let login_from = |address: &'static str, password: &'static str| {
        let (http, url) = (h.http.clone(), format!("{}/api/auth/login", h.base));
        async move {
            http.post(url)
                .header("x-forwarded-for", address)
                .json(&json!({"username": "root", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for n in 1..=5 {
        let address = ["2001:db8:9:9::1", "2001:db8:9:9::2", "2001:db8:9:9::3"][n % 3];
        assert_eq!(login_from(address, "guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from("2001:db8:9:9::abcd", "root-password").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from("2001:db8:7:7::1", "root-password").await,
        StatusCode::OK
    );
    h.shutdown().await;
}
