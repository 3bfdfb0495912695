//! The serving threads and their accept loops.
//!
//! Each serving thread runs a single-threaded runtime; accepted connections are dealt to
//! the threads in turn, and a connection, its requests and their upstream connections
//! (see `relay::clients`) stay on its thread. On one work-stealing runtime a
//! request hopped between threads: reading a request body wakes the connection's own
//! task, and tokio answers a task's self-wake by waking an idle worker to steal, which
//! then took the upstream answer on the other thread. Those hand-offs (three or more
//! context switches a request) cost more than the gateway's own work.
//!
//! The accept loop does what `axum::serve` does (HTTP/1.1 and HTTP/2 per connection, the
//! client's address as `ConnectInfo`, a graceful stop that lets open connections finish)
//! plus what it cannot: a header read timeout. `axum::serve` gives hyper no timer, so a
//! client that never finishes its headers would hold a connection forever.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Serves `app` on `threads` serving threads until `stop` resolves, then waits for
/// every open connection to finish. This task accepts and deals connections to the
/// threads in turn: threads racing on the listening socket let one of them take a whole
/// burst of new connections while the other idled.
pub async fn serve_on_threads(
    listener: TcpListener,
    threads: usize,
    app: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = CancellationToken::new();
    let mut dealt = Vec::new();
    let mut finished = Vec::new();
    for index in 0..threads.max(1) {
        let (deal, incoming) = mpsc::unbounded_channel();
        let (done, finish) = oneshot::channel();
        let (app, stopping) = (app.clone(), stopping.clone());
        std::thread::Builder::new()
            .name(format!("tokenhub-http-{index}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| {
                        runtime.block_on(serve_thread(
                            incoming,
                            app,
                            header_read_timeout,
                            stopping,
                        ));
                    });
                let _ = done.send(served);
            })?;
        dealt.push(deal);
        finished.push(finish);
    }
    let mut stop = pin!(stop);
    for turn in (0..dealt.len()).cycle() {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        match accepted.and_then(|(tcp, remote)| Ok((tcp.into_std()?, remote))) {
            Ok(connection) => {
                if dealt[turn].send(connection).is_err() {
                    // Only if that thread's loop ended, which it does on shutdown alone.
                    tracing::error!(thread = turn, "a serving thread is gone; connection closed");
                }
            }
            Err(error) => {
                // Per-connection errors (reset before accept) and descriptor exhaustion
                // are transient; wait a little on the latter instead of spinning.
                tracing::warn!(%error, "accept failed");
                if !is_connection_error(&error) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    stopping.cancel();
    drop(dealt);
    let mut result = Ok(());
    for finish in finished {
        let served = finish
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("a serving thread panicked")));
        if let Err(error) = served {
            tracing::error!(%error, "a serving thread could not start");
            result = result.and(Err(error));
        }
    }
    result
}

/// One serving thread: serves the connections dealt to it until the server stops, then
/// waits for them to finish.
async fn serve_thread(
    mut incoming: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    app: Router,
    header_read_timeout: Duration,
    stopping: CancellationToken,
) {
    let connections = TaskTracker::new();
    while let Some((tcp, remote)) = incoming.recv().await {
        match TcpStream::from_std(tcp) {
            Ok(tcp) => {
                connections.spawn(connection(
                    tcp,
                    remote,
                    app.clone(),
                    header_read_timeout,
                    stopping.clone(),
                ));
            }
            Err(error) => tracing::warn!(%error, %remote, "cannot serve an accepted connection"),
        }
    }
    connections.close();
    connections.wait().await;
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    stopping: CancellationToken,
) {
    // Without TCP_NODELAY, Nagle's algorithm holds small SSE events back until the
    // client's delayed ACK (~40 ms), releasing them in bursts.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::warn!(%error, "cannot set TCP_NODELAY on a client connection");
    }
    let service = app.map_request(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let served = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
    let mut served = pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        }
        () = stopping.cancelled() => {
            // Finish the requests in flight, take no new ones.
            served.as_mut().graceful_shutdown();
            if let Err(error) = served.await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        }
    }
}

fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
