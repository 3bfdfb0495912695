//! `/metrics` is open without `metrics_token`, and needs its bearer token with one.

use crate::harness::*;

const TOKEN: &str = "scrape-token-0123456789";

async fn scrape(h: &Harness, bearer: Option<&str>) -> (u16, String) {
    let mut request = h.http.get(format!("{}/metrics", h.base));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn without_a_token_metrics_stay_open() {
    let h = Harness::start(Backend::Sqlite).await;
    let (status, _) = scrape(&h, None).await;
    assert_eq!(status, 200);
    let (status, _) = scrape(&h, Some("anything")).await;
    assert_eq!(
        status, 200,
        "a bearer is ignored when no token is configured"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn with_a_token_only_its_bearer_may_scrape() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.metrics_token = Some(TOKEN.into());
    })
    .await;
    for bearer in [
        None,
        Some("wrong-token-0123456789"),
        Some(&TOKEN[..TOKEN.len() - 1]),
    ] {
        let (status, body) = scrape(&h, bearer).await;
        assert_eq!(status, 401, "{bearer:?}");
        assert!(
            !body.contains("tokenhub_"),
            "no metric leaks in a refusal: {body}"
        );
        assert!(body.contains("invalid_metrics_token"), "{body}");
    }
    let (status, body) = scrape(&h, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(!body.contains("invalid_metrics_token"), "{body}");
    h.shutdown().await;
}
