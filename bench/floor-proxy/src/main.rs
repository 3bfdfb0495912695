//! `floor-proxy --listen ADDR --upstream http://HOST:PORT`: the benchmark floor.
//!
//! A bare HTTP/1.1 forwarding proxy: method, path, headers and body go to one fixed
//! upstream over a pooled keep-alive client, and the response is streamed back frame
//! by frame. No parsing, no auth, no logging: whatever the gateway costs on top of this
//! is the gateway's own overhead.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Upstream = Client<HttpConnector, Incoming>;

fn args() -> anyhow::Result<(SocketAddr, Uri)> {
    let (mut listen, mut upstream) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().context("--listen ADDR")?),
            "--upstream" => upstream = Some(value.parse().context("--upstream URL")?),
            _ => bail!("usage: floor-proxy --listen ADDR --upstream http://HOST:PORT"),
        }
    }
    Ok((
        listen.context("--listen is required")?,
        upstream.context("--upstream is required")?,
    ))
}

async fn forward(
    client: Upstream,
    upstream: Uri,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let mut parts = upstream.into_parts();
    parts.path_and_query = req.uri().path_and_query().cloned();
    *req.uri_mut() = Uri::from_parts(parts).expect("upstream URI with a request path");
    client.request(req).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (listen, upstream) = args()?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(connector);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!("floor-proxy listening on http://{}", listener.local_addr()?);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue; // e.g. EMFILE: keep serving the connections we have
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(client.clone(), upstream.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
