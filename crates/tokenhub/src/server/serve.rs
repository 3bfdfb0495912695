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
//! A connection's requests go to `api::App`: the relayed routes' fast path, or the router.
//! The accept loop does what `axum::serve` does (HTTP/1.1 and HTTP/2 per connection, the
//! client's address as `ConnectInfo`, a graceful stop that lets open connections finish)
//! plus what it cannot: a header read timeout. `axum::serve` gives hyper no timer, so a
//! client that never finishes its headers would hold a connection forever.
//!
//! Every connection is bounded too (see `ConnectionPolicy`): at most `max_connections`
//! are open (beyond it a new one is accepted and closed at once, so the listener keeps
//! working and descriptors stay available), and a client must send its first bytes
//! within `first_bytes_timeout`. Those bytes also tell HTTP/2 (its preface) from
//! HTTP/1: hyper's own detection waits for them without any deadline. HTTP/2 gets
//! bounded streams, header lists and stream resets.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::App;

mod idle;

/// Serves `app` on `threads` serving threads until `stop` resolves, then waits for
/// every open connection to finish. This task accepts and deals connections to the
/// threads in turn: threads racing on the listening socket let one of them take a whole
/// burst of new connections while the other idled.
pub async fn serve_on_threads(
    listener: TcpListener,
    threads: usize,
    app: App,
    policy: ConnectionPolicy,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(OpenConnections::new(policy.max_connections));
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
                        runtime.spawn(return_freed_memory());
                        runtime.block_on(serve_thread(incoming, app, policy, stopping));
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
            Ok((tcp, remote)) => {
                let Some(slot) = open.take() else {
                    open.refuse(tcp, remote);
                    continue;
                };
                if dealt[turn].send((tcp, remote, slot)).is_err() {
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

/// How often a serving thread hands the memory it freed back to the system.
const RETURN_FREED_MEMORY_EVERY: Duration = Duration::from_secs(5);

/// mimalloc keeps a thread's freed pages for reuse until that thread calls into it
/// again: after a spike of 5,000 streams the gateway's RSS stayed far above idle
/// (bench/RESULTS.md, addendum 9). Collecting the thread's heap every few seconds
/// returns them; it walks only this thread's pages, so it costs little.
async fn return_freed_memory() {
    let mut every = tokio::time::interval(RETURN_FREED_MEMORY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        crate::allocator::return_this_threads_freed_memory();
    }
}

/// One serving thread: serves the connections dealt to it until the server stops, then
/// waits for them to finish.
async fn serve_thread(
    mut incoming: mpsc::UnboundedReceiver<Accepted>,
    app: App,
    policy: ConnectionPolicy,
    stopping: CancellationToken,
) {
    let connections = TaskTracker::new();
    while let Some((tcp, remote, slot)) = incoming.recv().await {
        match TcpStream::from_std(tcp) {
            Ok(tcp) => {
                connections.spawn(connection(
                    tcp,
                    remote,
                    app.clone(),
                    policy,
                    stopping.clone(),
                    slot,
                ));
            }
            Err(error) => tracing::warn!(%error, %remote, "cannot serve an accepted connection"),
        }
    }
    connections.close();
    connections.wait().await;
}

/// `_slot` counts the connection as open until this task ends.
async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    app: App,
    policy: ConnectionPolicy,
    stopping: CancellationToken,
    _slot: ConnectionSlot,
) {
    // Without TCP_NODELAY, Nagle's algorithm holds small SSE events back until the
    // client's delayed ACK (~40 ms), releasing them in bursts.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::warn!(%error, "cannot set TCP_NODELAY on a client connection");
    }
    let protocol = tokio::select! {
        detected = tokio::time::timeout(policy.first_bytes_timeout, detect_protocol(&tcp)) => detected,
        () = stopping.cancelled() => return,
    };
    let protocol = match protocol {
        Ok(Ok(protocol)) => protocol,
        Ok(Err(error)) => {
            tracing::debug!(%error, %remote, "connection closed before its first bytes");
            return;
        }
        Err(_) => {
            metrics::counter!("tokenhub_connections_silent_total").increment(1);
            tracing::debug!(%remote, "connection sent nothing in time; closed");
            return;
        }
    };
    let activity = idle::Activity::new();
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let in_flight = requests.request_started();
        let answer = app.serve(request, remote);
        async move {
            let response = answer.await;
            Ok::<_, std::convert::Infallible>(
                response.map(|body| axum::body::Body::new(idle::Tracked::new(body, in_flight))),
            )
        }
    });
    let builder = http_builder(&policy, protocol);
    let io = TokioIo::new(idle::Watched::new(tcp, activity.clone()));
    let served = builder.serve_connection(io, service);
    let mut served = pin!(served);
    let idle_http2 = async {
        match protocol {
            // Like HTTP/1's idle keep-alive, which hyper's header timer ends.
            Protocol::Http2 => activity.idle_for(policy.header_read_timeout).await,
            Protocol::Http1 => std::future::pending().await,
        }
    };
    let idle = tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            return;
        }
        () = stopping.cancelled() => false,
        () = idle_http2 => {
            metrics::counter!("tokenhub_connections_idle_closed_total").increment(1);
            true
        }
    };
    // Finish the requests in flight, take no new ones (HTTP/2: GOAWAY).
    served.as_mut().graceful_shutdown();
    let finished = async {
        if let Err(error) = served.await {
            tracing::debug!(%error, %remote, "connection ended with an error");
        }
    };
    if idle {
        // Nothing is in flight: a client that ignores the GOAWAY gets no longer than this.
        let _ = tokio::time::timeout(policy.header_read_timeout, finished).await;
    } else {
        finished.await;
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

/// How long and how many: the bounds every inbound connection lives within.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionPolicy {
    /// An HTTP/1 client must send its headers within this (and idle keep-alive ends then).
    pub header_read_timeout: Duration,
    /// Any client must send its first bytes within this after connecting.
    pub first_bytes_timeout: Duration,
    /// Open connections at most, over all serving threads.
    pub max_connections: usize,
}

/// Streams one HTTP/2 connection may have open at once.
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// Largest header list of an HTTP/2 request (decoded), as HTTP/1's header buffer allows.
const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// Streams a client may reset before the server has accepted them (the rapid-reset
/// attack), and streams the server may reset for a client's protocol errors, before
/// the connection is closed.
const HTTP2_MAX_PENDING_RESETS: usize = 20;
const HTTP2_MAX_ERROR_RESETS: usize = 256;

type Accepted = (std::net::TcpStream, SocketAddr, ConnectionSlot);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// HTTP/2's connection preface: a connection that starts otherwise is HTTP/1.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits for the client's first bytes (without consuming them) and tells the protocol.
async fn detect_protocol(tcp: &TcpStream) -> std::io::Result<Protocol> {
    let mut start = [0; HTTP2_PREFACE.len()];
    loop {
        let seen = tcp.peek(&mut start).await?;
        if seen == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if start[..seen] != HTTP2_PREFACE[..seen] {
            return Ok(Protocol::Http1);
        }
        if seen == HTTP2_PREFACE.len() {
            return Ok(Protocol::Http2);
        }
        // Part of the preface: `peek` would return the same bytes at once, so wait a
        // little for the rest (real clients send the preface in one segment).
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn http_builder(policy: &ConnectionPolicy, protocol: Protocol) -> Builder<TokioExecutor> {
    let builder = Builder::new(TokioExecutor::new());
    let mut builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
    };
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(policy.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(HTTP2_MAX_ERROR_RESETS);
    builder
}

/// The count of open connections, shared by the accept loop and the serving threads.
struct OpenConnections {
    open: AtomicUsize,
    max: usize,
    refused: AtomicU64,
}

/// One open connection; dropping it (when the connection's task ends) frees its place.
struct ConnectionSlot(Arc<OpenConnections>);

impl OpenConnections {
    fn new(max: usize) -> OpenConnections {
        OpenConnections {
            open: AtomicUsize::new(0),
            max: max.max(1),
            refused: AtomicU64::new(0),
        }
    }

    fn take(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()?;
        metrics::gauge!("tokenhub_connections_open").increment(1.0);
        Some(ConnectionSlot(self.clone()))
    }

    /// Closes a connection over the cap at once: its descriptor is back before the next
    /// accept, and the client sees the connection closed rather than hanging.
    fn refuse(&self, tcp: std::net::TcpStream, remote: SocketAddr) {
        drop(tcp);
        metrics::counter!("tokenhub_connections_refused_total").increment(1);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed);
        if refused.is_multiple_of(1000) {
            tracing::warn!(%remote, max_connections = self.max, refused = refused + 1,
                "connection refused: max_connections are open");
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("tokenhub_connections_open").decrement(1.0);
    }
}
