//! Upstream URLs parsed once per channel: parsing one per request (IDNA host processing
//! included, with the `url` crate) was about 3% of the gateway's CPU under load. A
//! channel's URLs are few (one per operation, or per model for Gemini), so each is parsed
//! the first time and cloned (a reference count) afterwards, with the `Host` header it
//! implies: the HTTP client otherwise renders that header on every request (~1,700
//! instructions, bench/RESULTS.md, addendum 29).

use std::sync::RwLock;

use http::HeaderValue;

use super::{FailureKind, UpstreamFailure};
use crate::fast_map::FastMap;

/// An upstream URL and, for plain `http`, the `Host` header a request to it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub uri: http::Uri,
    /// Only for `http`, always HTTP/1.1 here, where the client would render the same
    /// value. Over `https` the protocol is chosen at connect time (ALPN), and HTTP/2 has
    /// its `:authority` instead: the client adds `Host` itself when it lands on HTTP/1.1.
    pub host: Option<HeaderValue>,
}

impl UpstreamUrl {
    fn new(uri: http::Uri) -> Result<UpstreamUrl, String> {
        let host = match uri.scheme_str() {
            Some("http") => Some(
                HeaderValue::from_str(&host_header(&uri))
                    .map_err(|_| "its host is not a valid Host header".to_string())?,
            ),
            _ => None,
        };
        Ok(UpstreamUrl { uri, host })
    }
}

/// The `Host` header for an `http` URL, as the HTTP client writes it when a request has
/// none: the host, and the port as written unless it is 80 (RFC 9110, 7.2).
fn host_header(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    match uri.port() {
        Some(port) if port.as_u16() != 80 => [host, ":", port.as_str()].concat(),
        _ => host.to_owned(),
    }
}

/// More distinct URLs than this on one channel are parsed every time instead of kept.
const MAX_KEPT: usize = 256;

/// Lives in a catalogue snapshot's `Channel`, so an edited base URL starts a new cache.
#[derive(Default)]
pub struct ParsedUrls(RwLock<FastMap<String, UpstreamUrl>>);

impl ParsedUrls {
    pub fn parse(&self, url: String) -> Result<UpstreamUrl, UpstreamFailure> {
        if let Some(parsed) = self.kept().get(&url) {
            return Ok(parsed.clone());
        }
        // The URL itself stays out of the message: it reaches the client and the usage
        // record, and an operator may have put a credential in a base URL.
        let parsed = http_uri(&url).and_then(UpstreamUrl::new).map_err(|why| {
            UpstreamFailure::new(
                FailureKind::Broken,
                format!("cannot reach upstream: the channel's base URL is not a valid URL ({why})"),
            )
        })?;
        let mut kept = self.0.write().unwrap_or_else(|e| e.into_inner());
        if kept.len() < MAX_KEPT {
            kept.insert(url, parsed.clone());
        }
        Ok(parsed)
    }

    fn kept(&self) -> std::sync::RwLockReadGuard<'_, FastMap<String, UpstreamUrl>> {
        // The map is only ever replaced whole under the lock: a poisoned one is intact.
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The one rule for an upstream (or public) URL: absolute `http` or `https` with a host,
/// and no `user:pass@` (the client sends credentials only in headers, so they would be
/// silently dropped). Config and management validation use it too, so a URL they accept
/// is one the client can call. The error never repeats the URL.
pub fn http_uri(url: &str) -> Result<http::Uri, String> {
    let parsed: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
        return Err("it must be an absolute http or https URL".into());
    }
    if parsed.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("credentials in the URL are not sent; use the channel's API key".into());
    }
    Ok(parsed)
}

/// A cache, not part of the channel's identity: two snapshots' channels compare equal
/// whatever each has parsed so far, and a cloned channel starts empty.
impl Clone for ParsedUrls {
    fn clone(&self) -> Self {
        ParsedUrls::default()
    }
}

impl PartialEq for ParsedUrls {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ParsedUrls {}

impl std::fmt::Debug for ParsedUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedUrls")
            .field("kept", &self.kept().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_answers_the_same_url_after() {
        let urls = ParsedUrls::default();
        let first = urls
            .parse("http://127.0.0.1:9/v1/chat/completions".into())
            .unwrap();
        let again = urls
            .parse("http://127.0.0.1:9/v1/chat/completions".into())
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(first.uri.path(), "/v1/chat/completions");
        assert_eq!(first.host.unwrap(), "127.0.0.1:9");
        assert_eq!(urls.kept().len(), 1);
    }

    #[test]
    fn an_invalid_url_is_a_failure_that_does_not_repeat_the_url() {
        let failure = ParsedUrls::default()
            .parse("https://user:secret@exa mple.com/v1/chat/completions".into())
            .unwrap_err();
        let message = failure.to_string();
        assert!(message.contains("base URL is not a valid URL"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        assert!(failure.retryable(), "another channel may still answer");
    }

    #[test]
    fn only_absolute_http_urls_without_credentials_pass() {
        for good in [
            "http://127.0.0.1:9/v1",
            "https://api.deepseek.com/v1/chat/completions",
        ] {
            assert!(http_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://example.com/v1",
            "/v1/chat/completions",
            "example.com/v1",
            "javascript:alert(1)",
            "https://user:secret@example.com/v1",
            "",
        ] {
            let why = http_uri(bad).unwrap_err();
            assert!(!why.contains("secret"), "{why}");
        }
        let failure = ParsedUrls::default()
            .parse("https://user:secret@example.com/v1/chat/completions".into())
            .unwrap_err();
        assert!(failure.to_string().contains("credentials"), "{failure}");
        assert!(!failure.to_string().contains("secret"), "{failure}");
    }

    #[test]
    fn the_host_header_carries_the_port_unless_it_is_the_schemes_default() {
        for (url, host) in [
            ("http://example.com/v1", "example.com"),
            ("http://example.com:80/v1", "example.com"),
            ("http://example.com:443/v1", "example.com:443"),
            ("http://127.0.0.1:9/v1", "127.0.0.1:9"),
            ("http://[::1]:8080/v1", "[::1]:8080"),
            // The host characters a URI accepts beyond letters, digits and dots.
            ("http://a-b_c~d.e:81/v1", "a-b_c~d.e:81"),
        ] {
            let parsed = ParsedUrls::default().parse(url.into()).unwrap();
            assert_eq!(parsed.host.unwrap(), host, "{url}");
        }
    }

    #[test]
    fn an_https_url_leaves_the_host_to_the_protocol_the_connection_negotiates() {
        let parsed = ParsedUrls::default().parse("https://api.deepseek.com/v1".into());
        assert_eq!(parsed.unwrap().host, None);
    }

    #[test]
    fn keeps_a_bounded_number_of_urls() {
        let urls = ParsedUrls::default();
        for i in 0..(MAX_KEPT + 10) {
            urls.parse(format!("http://127.0.0.1:9/models/m{i}"))
                .unwrap();
        }
        assert_eq!(urls.kept().len(), MAX_KEPT);
    }
}
