//! Connection bounds over raw TCP: a client that connects and sends nothing (or part of
//! HTTP/2's preface) is closed at `first_bytes_timeout_ms`; an HTTP/2 connection with
//! nothing in flight is closed after `header_read_timeout_ms`, as HTTP/1 keep-alive is;
//! past `max_connections` a new connection is closed at once, and the listener serves
//! again when others close.

use std::time::{Duration, Instant};

use crate::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; how long that took.
async fn closed_after(tcp: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server must close the connection");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    started.elapsed()
}

/// `None` when the connection was refused.
async fn healthz(h: &Harness) -> Option<reqwest::StatusCode> {
    // A fresh client: a pooled connection would count against the cap.
    reqwest::Client::new()
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .ok()
        .map(|response| response.status())
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_bytes_deadline() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.first_bytes_timeout_ms = 300;
    })
    .await;
    let addr = h.gateway().addr;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let waited = closed_after(&mut silent).await;
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );

    // Half of HTTP/2's preface, then nothing: hyper alone would wait for the rest forever.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let waited = closed_after(&mut partial).await;
    assert!(waited < Duration::from_millis(2500), "{waited:?}");

    assert_eq!(healthz(&h).await, Some(reqwest::StatusCode::OK));
    h.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_the_listener_recovers() {
    const CAP: usize = 4;
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.max_connections = CAP;
    })
    .await;
    let addr = h.gateway().addr;
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the accept loop count them before the next one arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(addr).await.unwrap();
    let waited = closed_after(&mut over).await;
    assert!(
        waited < Duration::from_secs(1),
        "closed at once: {waited:?}"
    );

    // The held connections are still served.
    let first = &mut held[0];
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(held);
    let mut recovered = false;
    for _ in 0..40 {
        if healthz(&h).await == Some(reqwest::StatusCode::OK) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "served again once the others closed");
    h.shutdown().await;
}

#[tokio::test]
async fn http2_clients_are_served_after_detection() {
    let h = Harness::start(Backend::Sqlite).await;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = http2
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_a_slow_answer_is_not_cut() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.header_read_timeout_ms = 400;
    })
    .await;
    // The preface and an empty SETTINGS frame, then silence.
    let mut silent = TcpStream::connect(h.gateway().addr).await.unwrap();
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let started = Instant::now();
    let mut frames = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut frames)).await;
    assert!(
        read.is_ok(),
        "the server must close an idle HTTP/2 connection"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );

    // A non-streamed answer slower than the idle limit is in flight, so it is not cut.
    let (_, key) = h
        .user_with_key(
            "h2",
            tokenhub::ledger::money::Nanos::from_usd(1),
            Default::default(),
        )
        .await;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = http2
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(key)
        .json(
            &serde_json::json!({"model": "mock-gpt", "messages": user_says("slow"),
            "mock": {"ttfb_ms": 1200}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}
