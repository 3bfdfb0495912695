//! `load-probe`: a fixed number of non-streaming requests at full speed (the load of
//! `scripts/perf-check.sh`).
//!
//! `--requests N --concurrency C`: C workers on C kept-alive connections send the same
//! POST until N have been answered. Prints one JSON object on stdout: requests, errors
//! (transport errors and non-2xx answers), seconds, req/s and latency percentiles (µs).
//! A load generator of its own keeps CI free of an `oha` install.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Opts {
    url: hyper::Uri,
    key: Option<String>,
    body: Bytes,
    requests: usize,
    concurrency: usize,
    timeout: Duration,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        url: "http://127.0.0.1:1/".parse()?,
        key: None,
        body: Bytes::new(),
        requests: 20_000,
        concurrency: 64,
        timeout: Duration::from_secs(120),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => o.url = v.parse().context("--url")?,
            "--key" => o.key = Some(v),
            "--body-file" => o.body = std::fs::read(&v).with_context(|| v.clone())?.into(),
            "--requests" => o.requests = v.parse()?,
            "--concurrency" => o.concurrency = v.parse()?,
            "--timeout-s" => o.timeout = Duration::from_secs_f64(v.parse()?),
            _ => bail!("unknown flag {flag}"),
        }
    }
    if o.concurrency == 0 || o.requests == 0 {
        bail!("--requests and --concurrency must be positive");
    }
    Ok(o)
}

/// One request answered: Ok(latency) for a 2xx with its whole body read.
async fn one(client: &HttpClient, o: &Opts) -> anyhow::Result<Duration> {
    let mut req = Request::post(o.url.clone()).header("content-type", "application/json");
    if let Some(key) = &o.key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let started = Instant::now();
    let response = client.request(req.body(Full::new(o.body.clone()))?).await?;
    let status = response.status();
    response.into_body().collect().await?;
    if !status.is_success() {
        bail!("status {status}");
    }
    Ok(started.elapsed())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Arc::new(opts()?);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(o.concurrency)
        .build(connector);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(o.concurrency);
    for _ in 0..o.concurrency {
        let (o, client, next) = (o.clone(), client.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0usize, None);
            while next.fetch_add(1, Ordering::Relaxed) < o.requests {
                match one(&client, &o).await {
                    Ok(took) => latencies.push(took.as_micros() as u64),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| error.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    for worker in workers {
        let (l, e, f) = tokio::time::timeout(o.timeout, worker)
            .await
            .context("load-probe timed out")??;
        latencies.extend(l);
        errors += e;
        first_error = first_error.or(f);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let report = json!({
        "requests": o.requests,
        "ok": latencies.len(),
        "errors": errors,
        "first_error": first_error,
        "seconds": seconds,
        "rps": latencies.len() as f64 / seconds,
        "p50_us": percentile(&latencies, 0.50),
        "p99_us": percentile(&latencies, 0.99),
    });
    println!("{report}");
    Ok(())
}
