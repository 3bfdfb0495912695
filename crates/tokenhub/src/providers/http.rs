//! The HTTP client every upstream call goes through: hyper's pooled client over rustls
//! (HTTP/1.1, or HTTP/2 where the host offers it by ALPN), with Mozilla's root
//! certificates, and `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY` honoured as
//! curl does (an `https` upstream is reached through a `CONNECT` tunnel).
//!
//! Why not reqwest: per request it re-parses the URL into a `Uri`, copies the header map
//! and wraps the call in layers (redirects, timeouts, response URL) that the relay does not
//! use; that was about 6 % of the gateway's CPU under load. The relay hands this client
//! pre-parsed `Uri`s and sets its own deadlines.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::{Client, Error as ClientError};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// A request to an upstream: its body is always in memory (the relay has read it).
pub type UpstreamRequest = Request<Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Idle upstream connections kept per host, per client (one client per serving
/// thread): enough for the concurrency a thread sustains between bursts.
const MAX_IDLE_CONNECTIONS_PER_HOST: usize = 256;

/// A cheap handle (cloning bumps a count); connections are pooled per host and kept idle
/// for 90 s.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpsConnector<Connector>, Full<Bytes>>,
    proxies: Arc<Matcher>,
}

impl HttpClient {
    /// A client whose proxies come from the environment, read once here.
    pub fn new(connect_timeout: Duration) -> HttpClient {
        HttpClient::with_proxies(connect_timeout, Matcher::from_env())
    }

    pub fn with_proxies(connect_timeout: Duration, proxies: Matcher) -> HttpClient {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let proxies = Arc::new(proxies);
        let connector = HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(Connector {
                tcp,
                proxies: proxies.clone(),
            });
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            // After a spike (5,000 streams to one provider) every connection would stay
            // pooled for the idle timeout, with its buffers: ~200 MB held for 90 s
            // (bench/RESULTS.md, addendum 9). Beyond this many idle ones, close them.
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        HttpClient { client, proxies }
    }

    /// Sends `request` (an absolute URI) and answers once the response headers arrived.
    pub async fn send(
        &self,
        mut request: UpstreamRequest,
    ) -> Result<Response<Incoming>, SendError> {
        // A plain-http request through a proxy carries the proxy's credentials itself;
        // an https one gives them in the CONNECT (see `Connector`).
        if request.uri().scheme() == Some(&Scheme::HTTP)
            && let Some(proxy) = self.proxies.intercept(request.uri())
            && let Some(auth) = proxy.basic_auth()
        {
            request
                .headers_mut()
                .insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        self.client.request(request).await.map_err(SendError)
    }
}

/// A request that got no response.
#[derive(Debug, thiserror::Error)]
#[error("{}", root_cause(&self.0))]
pub struct SendError(ClientError);

impl SendError {
    /// The connection could not be made in the connect timeout.
    pub fn is_timeout(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&self.0);
        while let Some(error) = cause {
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                return true;
            }
            cause = error.source();
        }
        false
    }

    /// No connection could be made (refused, unresolvable, TLS handshake failed…).
    pub fn is_connect(&self) -> bool {
        self.0.is_connect()
    }
}

/// The innermost cause, which is the informative part (e.g. "Connection refused"). No
/// layer of this client puts the URL in an error, so none of these shows a credential.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// TCP to the upstream, or to its proxy: directly for plain http (the request then goes
/// in absolute form), through a `CONNECT` tunnel for https (TLS runs inside it).
#[derive(Clone, Debug)]
struct Connector {
    tcp: HttpConnector,
    proxies: Arc<Matcher>,
}

type Connecting = Pin<Box<dyn Future<Output = Result<ProxiedIo, BoxError>> + Send>>;

impl tower::Service<Uri> for Connector {
    type Response = ProxiedIo;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(())) // every call clones the (always ready) TCP connector
    }

    fn call(&mut self, destination: Uri) -> Connecting {
        let tcp = self.tcp.clone();
        let Some(proxy) = self.proxies.intercept(&destination) else {
            return Box::pin(async move {
                let io = tcp.oneshot(destination).await?;
                Ok(ProxiedIo { io, proxied: false })
            });
        };
        if destination.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(proxy.uri().clone(), tcp);
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            Box::pin(async move {
                let io = tunnel.oneshot(destination).await?;
                Ok(ProxiedIo { io, proxied: false })
            })
        } else {
            let proxy = proxy.uri().clone();
            Box::pin(async move {
                let io = tcp.oneshot(proxy).await?;
                Ok(ProxiedIo { io, proxied: true })
            })
        }
    }
}

/// A TCP connection that tells hyper whether it leads to a forwarding proxy, so that
/// requests on it are written in absolute form.
#[derive(Debug)]
struct ProxiedIo {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for ProxiedIo {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for ProxiedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxiedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-connection server that records the request head it got and answers `reply`.
    async fn one_shot(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let served = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            tcp.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (addr, served)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

    fn post(uri: &str) -> UpstreamRequest {
        Request::post(uri)
            .body(Full::new(Bytes::from("{}")))
            .unwrap()
    }

    async fn text(response: Response<Incoming>) -> String {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn plain_http_goes_through_the_proxy_in_absolute_form_with_its_credentials() {
        let (proxy, seen) = one_shot(OK).await;
        let proxies = Matcher::builder()
            .http(format!("http://user:pass@{proxy}"))
            .build();
        let client = HttpClient::with_proxies(Duration::from_secs(5), proxies);
        // Nothing listens on port 9: only the proxy can answer.
        let response = client
            .send(post("http://127.0.0.1:9/v1/chat/completions"))
            .await
            .unwrap();
        assert_eq!(text(response).await, "ok");
        let head = seen.await.unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with("post http://127.0.0.1:9/v1/chat/completions http/1.1\r\n"),
            "{head}"
        );
        // base64("user:pass")
        assert!(
            head.contains("proxy-authorization: basic dxnlcjpwyxnz\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn https_is_tunnelled_with_connect_and_no_proxy_hosts_go_direct() {
        let (proxy, seen) =
            one_shot("HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                .await;
        let (upstream, direct) = one_shot(OK).await;
        let proxies = Matcher::builder()
            .all(format!("http://{proxy}"))
            .no("localhost")
            .build();
        let client = HttpClient::with_proxies(Duration::from_secs(5), proxies);
        let refused = client
            .send(post("https://api.example.invalid/v1/chat/completions"))
            .await
            .unwrap_err();
        assert!(refused.is_connect(), "{refused}");
        let head = seen.await.unwrap();
        assert!(
            head.starts_with("CONNECT api.example.invalid:443 HTTP/1.1\r\n"),
            "{head}"
        );
        let local = upstream.replace("127.0.0.1", "localhost");
        let response = client
            .send(post(&format!("http://{local}/v1/models")))
            .await
            .unwrap();
        assert_eq!(text(response).await, "ok");
        let head = direct.await.unwrap();
        assert!(head.starts_with("POST /v1/models HTTP/1.1\r\n"), "{head}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_naming_its_cause() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = HttpClient::with_proxies(Duration::from_secs(5), Matcher::builder().build());
        let error = client
            .send(post(&format!(
                "http://127.0.0.1:{port}/v1/chat/completions"
            )))
            .await
            .unwrap_err();
        assert!(error.is_connect() && !error.is_timeout(), "{error}");
        assert!(
            error.to_string().to_lowercase().contains("refused"),
            "{error}"
        );
    }
}
