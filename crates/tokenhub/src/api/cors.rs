//! CORS for the bearer-authenticated API under `/v1/` (docs/api/cors.md), so browser
//! apps can call the gateway with an `sk-` key from another origin. Never for `/api/`,
//! the web app's cookie-authenticated management API: a cross-origin page must not
//! ride a signed-in user's session.
//!
//! A step of `api::inbound` rather than a layer of its own: a path prefix check per
//! request, and headers only for requests that carry `Origin`. A preflight (`OPTIONS`
//! with `Access-Control-Request-Method`) is answered here with 204, before
//! authentication, as browsers send it without credentials.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};

/// Request headers a preflight allows when the browser names none: what the OpenAI and
/// Anthropic SDKs send (the `x-stainless-*` family is allowed by echoing the request).
const ALLOWED_HEADERS: &str = "authorization, content-type, x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, openai-organization, openai-project, openai-beta, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, x-stainless-helper-method, x-tokenhub-channel";
const ALLOWED_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// Response headers a page may read.
const EXPOSED_HEADERS: &str =
    "x-request-id, request-id, x-tokenhub-cost-usd, x-tokenhub-overhead-us, retry-after";

/// Which origins may call `/v1/` (`cors_allowed_origins`).
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
}

/// Whether `text` can be an entry of `cors_allowed_origins`: `*`, or an origin as
/// browsers send it (`http(s)://host[:port]`, a trailing `/` tolerated). Anything else
/// (no scheme, a path, credentials, `null`) would never match a request, so it is
/// refused at start instead of leaving CORS silently off for that origin.
pub fn check_origin(text: &str) -> Result<(), String> {
    let origin = text.trim();
    if origin == "*" {
        return Ok(());
    }
    let refused = |why: &str| {
        Err(format!(
            "'{origin}' is not an origin ({why}): give scheme://host[:port], e.g. https://app.example.com, or *"
        ))
    };
    let Ok(uri) = origin.parse::<http::Uri>() else {
        return refused("not a URL");
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return refused("the scheme must be http or https");
    }
    let Some(authority) = uri.authority() else {
        return refused("no host");
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return refused("a host without credentials");
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return refused("an origin has no path or query");
    }
    Ok(())
}

impl CorsPolicy {
    /// `["*"]` allows any origin; an empty list switches CORS off.
    pub fn new(allowed: &[String]) -> CorsPolicy {
        let origins: Vec<String> = allowed
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        CorsPolicy {
            any: origins.iter().any(|o| o == "*"),
            origins,
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request to `path`, if it gets one
    /// (only a browser page's request, with `Origin`, costs more than two checks).
    pub fn allow_origin(&self, path: &str, headers: &HeaderMap) -> Option<HeaderValue> {
        if self.origins.is_empty() || !path.starts_with("/v1/") {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins.contains(&text).then(|| origin.clone())
    }

    /// The answer to a preflight from an allowed `origin`, when `request` is one.
    pub fn preflight<B>(&self, request: &Request<B>, origin: HeaderValue) -> Option<Response> {
        if request.method() != Method::OPTIONS
            || !request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let allowed_headers = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(ALLOWED_HEADERS));
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        self.vary(headers);
        Some(response)
    }

    /// Adds the CORS headers for an allowed `origin` to the answer of an actual request.
    pub fn stamp(&self, origin: HeaderValue, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        self.vary(headers);
    }

    /// An answer that depends on the origin must say so to caches.
    fn vary(&self, headers: &mut HeaderMap) {
        if !self.any {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, origin: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(())
            .unwrap()
    }

    /// The preflight answer `policy` gives, if any (as `api::inbound` asks).
    fn preflight_of(policy: &CorsPolicy, request: &Request<()>) -> Option<Response> {
        let origin = policy.allow_origin(request.uri().path(), request.headers())?;
        policy.preflight(request, origin)
    }

    #[test]
    fn only_origins_as_browsers_send_them_are_accepted() {
        for good in [
            "*",
            "https://app.example.com",
            "http://localhost:5173",
            "https://a.example/",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "app.example.com",
            "ftp://app.example.com",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user:pw@app.example.com",
            "null",
            "https://",
            "https://exa mple.com",
        ] {
            let error = check_origin(bad).unwrap_err();
            assert!(error.contains(bad.trim()), "{bad}: {error}");
        }
    }

    #[test]
    fn preflights_are_answered_for_v1_only_and_for_allowed_origins() {
        let any = CorsPolicy::new(&["*".into()]);
        let answer = preflight_of(
            &any,
            &request(
                Method::OPTIONS,
                "/v1/chat/completions",
                "https://app.example",
            ),
        )
        .expect("answered");
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert_eq!(answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let allowed = answer.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("x-stainless-os"));
        assert!(
            preflight_of(
                &any,
                &request(Method::OPTIONS, "/api/me", "https://app.example")
            )
            .is_none()
        );

        let listed = CorsPolicy::new(&["https://app.example/".into()]);
        let answer = preflight_of(
            &listed,
            &request(Method::OPTIONS, "/v1/models", "https://app.example"),
        )
        .expect("answered");
        assert_eq!(
            answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        let evil = request(Method::OPTIONS, "/v1/models", "https://evil.example");
        assert!(preflight_of(&listed, &evil).is_none());
        assert!(preflight_of(&CorsPolicy::new(&[]), &evil).is_none());
    }
}
