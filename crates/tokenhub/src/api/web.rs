//! The web app, served by the gateway itself from assets compiled into the binary:
//! the API documentation (`/`), the price list (`/pricing`), the self-service console
//! (`/token/`), the admin panel (`/admin`) and the streaming chat demo (`/chat`).
//!
//! Pages are server-rendered frames (`pages`, `shells`, escaped through `html::Esc`);
//! the console, admin panel and chat are driven by small scripts written here
//! (`crates/tokenhub/web/*.js`, no third-party code) that call the management API and
//! `POST /chat/completions` (`chat`). Every response carries a strict Content Security
//! Policy: scripts and styles only from this origin, no inline script.

mod assets;
pub mod chat;
mod html;
mod i18n;
mod pages;
mod shells;
mod viewer;

use std::net::IpAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use super::AppState;
use super::error::ApiError;
use crate::relay::limits::RateLimits;
use viewer::MaybeViewer;

/// The web app's settings and state.
pub struct Web {
    /// The URL clients use to reach this gateway (`public_url`), shown in the docs;
    /// `None`: derived from each request's `Host`.
    pub public_url: Option<String>,
    /// The system user that owns anonymous chat usage; `None` disables the trial.
    pub anonymous_user_id: Option<i64>,
    /// Anonymous chat requests per client address.
    chat_limits: RateLimits,
    /// Admissions since idle addresses were last forgotten.
    admissions: std::sync::atomic::AtomicU32,
}

/// Idle addresses are forgotten every this many anonymous requests.
const FORGET_EVERY: u32 = 1024;

impl Web {
    /// With `shared` (Redis), the anonymous budget per address holds across instances.
    pub fn new(
        public_url: Option<String>,
        anonymous_user_id: Option<i64>,
        shared: Option<std::sync::Arc<crate::shared::SharedState>>,
    ) -> Web {
        Web {
            public_url,
            anonymous_user_id,
            chat_limits: RateLimits::new(shared, "chat"),
            admissions: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Counts one anonymous chat request from `ip` against `rpm`.
    async fn admit_anonymous(&self, ip: Option<IpAddr>, rpm: u32) -> Result<(), ApiError> {
        let bucket = ip.map_or(0, address_bucket);
        let seen = self
            .admissions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if seen % FORGET_EVERY == FORGET_EVERY - 1 {
            self.chat_limits.forget_idle(Instant::now());
        }

        self.chat_limits
            .admit_shared(bucket, Some(u64::from(rpm)), None, 0)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "anonymous chat budget unavailable");
                ApiError::from(crate::relay::RelayError::SharedStateUnavailable)
            })?
            .map(|_| ())
            .map_err(|limited| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "requests",
                    Some("rate_limit_exceeded"),
                    None,
                    format!(
                        "The chat demo allows {rpm} messages per minute without an account; \
                         try again in {} s, or sign in.",
                        limited.retry_after.as_secs().max(1)
                    ),
                )
                .with_retry_after(limited.retry_after)
            })
    }
}

/// One limiter bucket per client address (IPv6 per /64: one subscriber's network), no two
/// sharing one: a /64 is its 64-bit network number, an IPv4 address 1 + its 32 bits, which
/// only /64s in the reserved ::/8 could equal. Those (loopback, unspecified, IPv4-compatible)
/// share bucket 0; an IPv4-mapped address counts as its IPv4 address.
fn address_bucket(ip: IpAddr) -> i64 {
    /// Networks below this are in ::/8.
    const FIRST_OUTSIDE_RESERVED: u64 = 1 << 56;
    match ip.to_canonical() {
        IpAddr::V4(v4) => 1 + i64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let network = (u128::from(v6) >> 64) as u64;
            if network < FIRST_OUTSIDE_RESERVED {
                0
            } else {
                // Reinterpreted, not truncated: every network keeps its own bucket.
                network as i64
            }
        }
    }
}

pub fn routes() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::docs))
        .route("/pricing", get(pages::pricing))
        .route("/token", get(|| async { Redirect::permanent("/token/") }))
        .route("/token/", get(shells::console))
        .route("/admin", get(shells::admin))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/chat", get(shells::chat))
        .route("/language/{code}", get(i18n::switch))
        .route("/assets/{name}", get(assets::serve))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/assets/favicon.svg") }),
        )
        .layer(compression());
    // The chat stream stays uncompressed: an encoder would hold tokens back.
    let chat = Router::new().route("/chat/completions", post(chat::complete));
    pages
        .merge(chat)
        .layer(axum::middleware::from_fn(security_headers))
}

/// gzip or brotli, as the client accepts, for pages, assets and management JSON (never
/// the relayed `/v1` traffic, which streams). Event streams and tiny bodies stay as
/// they are (the layer's default predicate).
pub fn compression() -> CompressionLayer {
    // Brotli's default (quality 11) costs milliseconds per page; 5 compresses about as
    // well as gzip -9 at a fraction of the time.
    CompressionLayer::new().quality(CompressionLevel::Precise(5))
}

/// Unknown URLs: an HTML page for browsers (they ask for `text/html`), the OpenAI-shaped
/// JSON error for API clients.
pub async fn not_found(
    viewer: MaybeViewer,
    lang: i18n::Lang,
    headers: http::HeaderMap,
    uri: http::Uri,
) -> Response {
    if !wants_html(&headers) {
        return super::error::not_found(uri).await.into_response();
    }
    let path = format!("<code>{}</code>", html::Esc(uri.path()));
    let main = format!(
        "<h1>{title}</h1><p>{nothing}</p>\
         <p><a href=\"/\">{docs}</a> · <a href=\"/pricing\">{pricing}</a> · \
         <a href=\"/chat\">{chat}</a> · <a href=\"/token/\">{console}</a></p>",
        title = lang.t("not_found.title"),
        nothing = lang.tf("not_found.nothing_at", &[("path", &path)]),
        docs = lang.t("docs.page_title"),
        pricing = lang.t("nav.pricing"),
        chat = lang.t("nav.chat"),
        console = lang.t("nav.console"),
    );
    let title = lang.t("not_found.title");
    let mut response = shells::page(lang, title, html::Nav::None, &viewer, main, None);
    *response.status_mut() = StatusCode::NOT_FOUND;
    secure(response.headers_mut());
    response
}

/// A browser navigating asks for HTML first; API clients ask for JSON or anything.
fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await.into_response();
    secure(response.headers_mut());
    response
}

/// No framing, no sniffing, no inline or foreign script, and no referrer leaking
/// key prefixes to other sites.
fn secure(headers: &mut http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_to_separate_buckets() {
        let bucket = |ip: &str| address_bucket(ip.parse().unwrap());
        assert_ne!(bucket("10.0.0.1"), bucket("10.0.0.2"));
        assert_eq!(bucket("2001:db8::1"), bucket("2001:db8::ffff:2"), "one /64");
        assert_ne!(
            bucket("2001:db8::1"),
            bucket("2001:db8:0:1::1"),
            "the next /64"
        );
        // The network numbers 0x2001_0db8_0000_0000 and 0x6001_0db8_0000_0000 differ in
        // bit 62 only; 0xa001… in bit 63 only.
        let networks = ["2001:db8::1", "6001:db8::1", "a001:db8::1", "e001:db8::1"];
        let buckets: std::collections::HashSet<i64> =
            networks.iter().map(|ip| bucket(ip)).collect();
        assert_eq!(buckets.len(), networks.len(), "{buckets:?}");
        for v4 in ["0.0.0.0", "10.0.0.1", "255.255.255.255"] {
            assert!(bucket(v4) > 0 && bucket(v4) <= 1 << 32, "{v4}");
            assert!(
                !buckets.contains(&bucket(v4)),
                "{v4}: not an IPv6 network's"
            );
        }
        assert_eq!(bucket("::ffff:10.0.0.1"), bucket("10.0.0.1"), "mapped");
        assert_eq!(bucket("::1"), 0, "reserved ::/8");
    }

    #[tokio::test]
    async fn anonymous_chat_is_limited_per_address() {
        let web = Web::new(None, Some(1), None);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(web.admit_anonymous(Some(one), 2).await.is_ok());
        assert!(web.admit_anonymous(Some(one), 2).await.is_ok());
        assert!(web.admit_anonymous(Some(one), 2).await.is_err());
        assert!(web.admit_anonymous(Some(two), 2).await.is_ok());
    }
}
