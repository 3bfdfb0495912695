//! Inbound request hygiene, with a raw TCP client that trickles bytes: a client must send
//! its headers within `header_read_timeout_ms` and its body within `body_read_timeout_ms`;
//! bodies over `max_body_bytes` are refused. A normal client on the same server is served.

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn strict_gateway() -> Harness {
    Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.header_read_timeout_ms = 400;
        settings.body_read_timeout_ms = 400;
        settings.max_body_bytes = 4096;
    })
    .await
}

/// Writes `pieces` one by one, `gap` apart, stopping when the server closes; then reads
/// whatever the server answered until it closes the connection.
async fn trickle(
    addr: std::net::SocketAddr,
    pieces: &[&[u8]],
    gap: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    for piece in pieces {
        if tcp.write_all(piece).await.is_err() {
            break;
        }
        tokio::time::sleep(gap).await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server must close the connection");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn headers_trickled_past_the_header_timeout_lose_the_connection() {
    let h = strict_gateway().await;
    let addr = h.gateway().addr;
    // 30 header lines, 100 ms apart: 3 s if the server let it run.
    let mut pieces: Vec<Vec<u8>> =
        vec![b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n".to_vec()];
    pieces.extend((0..30).map(|i| format!("X-Slow-{i}: y\r\n").into_bytes()));
    let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let (answer, elapsed) = trickle(addr, &pieces, Duration::from_millis(100)).await;
    assert!(
        elapsed < Duration::from_millis(2500),
        "closed at the header timeout, not when the client gave up: {elapsed:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");

    // The server still serves a normal client.
    let response = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_body_trickled_past_the_body_timeout_gets_408_and_nothing_is_billed() {
    let h = strict_gateway().await;
    let (user, key) = h
        .user_with_key("slow", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let body = json!({"model": "mock-gpt", "messages": user_says("hello")}).to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut pieces: Vec<&[u8]> = vec![head.as_bytes()];
    pieces.extend(body.as_bytes().chunks(4));
    let (answer, elapsed) = trickle(h.gateway().addr, &pieces, Duration::from_millis(100)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    let json_start = answer.find('{').expect("a JSON error body");
    let error: Value = serde_json::from_str(answer[json_start..].trim()).unwrap();
    assert_eq!(error["error"]["code"], "request_timeout");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(h.mock.journal().is_empty(), "no upstream was called");
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1));

    // The same body sent at once is served.
    let response = h
        .chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says("hello")}),
        )
        .await;
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_configured_limit_are_refused_declared_or_chunked() {
    let h = strict_gateway().await;
    let (_, key) = h
        .user_with_key("big", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let big = json!({"model": "mock-gpt", "messages": user_says(&"x".repeat(5000))});
    let declared = h.chat(&key, big.clone()).await;
    assert_eq!(declared.status(), 413);

    // Without a declared length (chunked), the limit applies while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .to_string()
        .into_bytes()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let chunked = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    let error: Value = chunked.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(h.mock.journal().is_empty());
    h.shutdown().await;
}
