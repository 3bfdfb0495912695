//! The accept loop. It does what `axum::serve` does (HTTP/1.1 and HTTP/2 per connection,
//! the client's address as `ConnectInfo`, a graceful stop that lets open connections
//! finish) plus what it cannot: a header read timeout. `axum::serve` gives hyper no
//! timer, so a client that never finishes its headers would hold a connection forever.

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
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Serves `app` until `stop` resolves, then waits for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut stop = pin!(stop);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Per-connection errors (reset before accept) and descriptor exhaustion
                    // are transient; wait a little on the latter instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    if !is_connection_error(&error) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut stop => break,
        };
        connections.spawn(connection(
            tcp,
            remote,
            app.clone(),
            header_read_timeout,
            stopping.clone(),
        ));
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
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
