//! `stream-probe`: the streaming client of the benchmark (scenarios 3 and 5).
//!
//! Sends streaming chat requests and records, per stream, when every SSE event
//! completed: time to first event (TTFT), the gaps between events, and how many
//! events arrived in one body frame (coalescing). Two modes:
//!
//! - `--duration-s D --concurrency C`: C workers loop for D seconds (scenario 3).
//! - `--streams N`: N streams held open at once, opened `--open-concurrency` at a
//!   time; with `--rss-pid PID` it reads that process's VmRSS before, when all N
//!   are open, and at its peak (scenario 5).
//!
//! Prints one JSON object on stdout. Every wait is bounded by `--timeout-s`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::Semaphore;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone)]
struct Opts {
    url: hyper::Uri,
    key: Option<String>,
    body: Bytes,
    concurrency: usize,
    duration: Option<Duration>,
    streams: usize,
    open_concurrency: usize,
    rss_pid: Option<u32>,
    timeout: Duration,
    gap_events: usize,
    expect_gap_ms: f64,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        url: "http://127.0.0.1:1/".parse()?,
        key: None,
        body: Bytes::new(),
        concurrency: 64,
        duration: None,
        streams: 0,
        open_concurrency: 200,
        rss_pid: None,
        timeout: Duration::from_secs(120),
        gap_events: 20,
        expect_gap_ms: 5.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => o.url = v.parse().context("--url")?,
            "--key" => o.key = Some(v),
            "--body-file" => o.body = std::fs::read(&v).with_context(|| v.clone())?.into(),
            "--concurrency" => o.concurrency = v.parse()?,
            "--duration-s" => o.duration = Some(Duration::from_secs_f64(v.parse()?)),
            "--streams" => o.streams = v.parse()?,
            "--open-concurrency" => o.open_concurrency = v.parse()?,
            "--rss-pid" => o.rss_pid = Some(v.parse()?),
            "--timeout-s" => o.timeout = Duration::from_secs_f64(v.parse()?),
            "--gap-events" => o.gap_events = v.parse()?,
            "--expect-gap-ms" => o.expect_gap_ms = v.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    if o.duration.is_none() && o.streams == 0 {
        bail!("give --duration-s or --streams");
    }
    Ok(o)
}

/// What one stream saw.
#[derive(Default)]
struct Stream {
    ok: bool,
    error: Option<String>,
    ttft_us: Option<u64>,
    /// Gaps between consecutive events among the first `gap_events + 1`, in µs.
    gaps_us: Vec<u64>,
    events: usize,
    frames: usize,
    /// Frames that completed more than one SSE event.
    coalesced_frames: usize,
}

async fn one_stream(
    client: &HttpClient,
    o: &Opts,
    opened: Option<(&Semaphore, &AtomicUsize)>,
) -> Stream {
    let mut s = Stream::default();
    let permit = match opened {
        Some((sem, _)) => Some(sem.acquire().await.expect("semaphore never closed")),
        None => None,
    };
    let mut req = Request::post(o.url.clone()).header("content-type", "application/json");
    if let Some(key) = &o.key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let req = req.body(Full::new(o.body.clone())).expect("valid request");
    let start = Instant::now();
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            s.error = Some(format!("request: {e}"));
            return s;
        }
    };
    if !resp.status().is_success() {
        s.error = Some(format!("status {}", resp.status()));
        return s;
    }
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let mut last_event: Option<Instant> = None;
    let mut done = false;
    let mut permit = permit;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Err(e)) => {
                s.error = Some(format!("body: {e}"));
                return s;
            }
            Some(Ok(f)) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        s.frames += 1;
        pending.extend_from_slice(&data);
        let mut in_frame = 0;
        while let Some(end) = find(&pending, b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            in_frame += 1;
            s.events += 1;
            if s.events == 1 {
                s.ttft_us = Some(now.duration_since(start).as_micros() as u64);
                if let Some((_, open)) = opened {
                    open.fetch_add(1, Ordering::SeqCst);
                }
                permit.take();
            } else if s.events <= o.gap_events + 1
                && let Some(prev) = last_event
            {
                s.gaps_us.push(now.duration_since(prev).as_micros() as u64);
            }
            last_event = Some(now);
            if event.starts_with(b"data: [DONE]") {
                done = true;
            }
        }
        if in_frame > 1 {
            s.coalesced_frames += 1;
        }
    }
    s.ok = done;
    if !done {
        s.error = Some("stream ended without [DONE]".into());
    }
    s
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn pct(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Arc::new(opts()?);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
    let rss_before = o.rss_pid.and_then(rss_kib);
    let started = Instant::now();
    let results: Vec<Stream>;
    let mut rss_all_open = None;
    let mut rss_peak = rss_before;
    let mut open_at_peak = 0;
    if let Some(duration) = o.duration {
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for _ in 0..o.concurrency {
            let (client, o) = (client.clone(), o.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                while Instant::now() < deadline {
                    out.push(one_stream(&client, &o, None).await);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            match tokio::time::timeout(o.timeout, t).await {
                Ok(Ok(v)) => all.extend(v),
                _ => bail!("a worker did not finish within --timeout-s"),
            }
        }
        results = all;
    } else {
        let sem = Arc::new(Semaphore::new(o.open_concurrency));
        let open = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..o.streams {
            let (client, o, sem, open, finished) = (
                client.clone(),
                o.clone(),
                sem.clone(),
                open.clone(),
                finished.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let s = one_stream(&client, &o, Some((&sem, &open))).await;
                finished.fetch_add(1, Ordering::SeqCst);
                s
            }));
        }
        // Sample the target's RSS while streams are open.
        let deadline = started + o.timeout;
        while (finished.load(Ordering::SeqCst) as usize) < o.streams && Instant::now() < deadline {
            let n_open = open.load(Ordering::SeqCst) - finished.load(Ordering::SeqCst) as usize;
            if let Some(pid) = o.rss_pid
                && let Some(rss) = rss_kib(pid)
            {
                if rss_peak.is_none_or(|p| rss > p) {
                    rss_peak = Some(rss);
                }
                if n_open > open_at_peak {
                    open_at_peak = n_open;
                }
                if rss_all_open.is_none() && open.load(Ordering::SeqCst) == o.streams {
                    rss_all_open = Some(rss);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut all = Vec::new();
        for t in tasks {
            match tokio::time::timeout(Duration::from_secs(5), t).await {
                Ok(Ok(s)) => all.push(s),
                _ => all.push(Stream {
                    error: Some("timed out".into()),
                    ..Stream::default()
                }),
            }
        }
        results = all;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = results.iter().filter(|s| s.ok).count();
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for e in results.iter().filter_map(|s| s.error.as_ref()) {
        *errors.entry(e.clone()).or_default() += 1;
    }
    let mut ttft: Vec<u64> = results.iter().filter_map(|s| s.ttft_us).collect();
    ttft.sort_unstable();
    let mut gaps: Vec<u64> = results
        .iter()
        .flat_map(|s| s.gaps_us.iter().copied())
        .collect();
    gaps.sort_unstable();
    let expect_us = o.expect_gap_ms * 1000.0;
    let short = gaps
        .iter()
        .filter(|&&g| (g as f64) < expect_us * 0.5)
        .count();
    let long = gaps
        .iter()
        .filter(|&&g| (g as f64) > expect_us * 2.0)
        .count();
    let out = json!({
        "streams": results.len(),
        "streams_ok": ok,
        "errors": errors,
        "elapsed_s": elapsed,
        "streams_per_s": ok as f64 / elapsed,
        "ttft_us": {
            "p50": pct(&ttft, 50.0), "p99": pct(&ttft, 99.0), "p999": pct(&ttft, 99.9),
            "min": ttft.first(), "max": ttft.last(),
        },
        "events": results.iter().map(|s| s.events).sum::<usize>(),
        "frames": results.iter().map(|s| s.frames).sum::<usize>(),
        "coalesced_frames": results.iter().map(|s| s.coalesced_frames).sum::<usize>(),
        "gaps_us": {
            "count": gaps.len(), "min": gaps.first(), "p1": pct(&gaps, 1.0),
            "p50": pct(&gaps, 50.0), "p99": pct(&gaps, 99.0), "max": gaps.last(),
            "short": short, "long": long,
        },
        "rss_kib": {
            "before": rss_before, "all_open": rss_all_open, "peak": rss_peak,
            "open_at_peak": open_at_peak,
        },
    });
    println!("{out}");
    Ok(())
}
