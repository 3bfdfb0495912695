//! The web app's CSS, JavaScript and icon, compiled into the binary (no CDN, works
//! offline). Pages link them as `/assets/NAME?v=HASH`: a versioned URL is cached for a
//! year, because a new build changes the hash and so the URL. The message catalogues
//! are served as scripts too (`messages-en.js`, `messages-zh.js`: CSP-safe, cached).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::i18n::{CATALOGUES, Lang};

struct Asset {
    content_type: &'static str,
    body: Cow<'static, [u8]>,
    /// A hash of the content: the ETag and the `v` of versioned URLs.
    version: String,
}

macro_rules! embed {
    ($($name:literal => $type:literal),* $(,)?) => {
        &[$(($name, $type, include_bytes!(concat!("../../../web/", $name)) as &[u8])),*]
    };
}

const FILES: &[(&str, &str, &[u8])] = embed! {
    "app.css" => "text/css; charset=utf-8",
    "common.js" => "text/javascript; charset=utf-8",
    "docs.js" => "text/javascript; charset=utf-8",
    "console.js" => "text/javascript; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "chat.js" => "text/javascript; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
};

/// The script that hands a catalogue to common.js (`TH.t`).
fn messages_script(catalogue: &str) -> Vec<u8> {
    format!(
        "\"use strict\";\nself.TH_MESSAGES = {};\n",
        catalogue.trim()
    )
    .into_bytes()
}

/// The asset name of a language's catalogue script.
pub fn messages_asset(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "messages-en.js",
        Lang::Zh => "messages-zh.js",
    }
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    let files = FILES
        .iter()
        .map(|&(name, content_type, body)| (name, content_type, Cow::Borrowed(body)));
    let catalogues = CATALOGUES.iter().map(|&(lang, text)| {
        (
            messages_asset(lang),
            "text/javascript; charset=utf-8",
            Cow::Owned(messages_script(text)),
        )
    });
    files
        .chain(catalogues)
        .map(|(name, content_type, body)| {
            // FNV-1a: stable across builds and platforms, unlike std's default hasher.
            let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
            hash.write(&body);
            let version = format!("{:016x}", hash.finish());
            (
                name,
                Asset {
                    content_type,
                    body,
                    version,
                },
            )
        })
        .collect()
});

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The versioned URL of an asset.
pub fn url(name: &str) -> String {
    match ASSETS.get(name) {
        Some(asset) => format!("/assets/{name}?v={}", asset.version),
        None => format!("/assets/{name}"),
    }
}

#[derive(Deserialize)]
pub struct Version {
    v: Option<String>,
}

pub async fn serve(
    Path(name): Path<String>,
    Query(query): Query<Version>,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = ASSETS.get(name.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", asset.version);
    let cache = if query.v.as_deref() == Some(asset.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body.clone(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_versioned_url() {
        for (name, _, body) in FILES {
            assert!(!body.is_empty(), "{name} is empty");
            let url = url(name);
            assert!(url.starts_with(&format!("/assets/{name}?v=")), "{url}");
        }
        assert_eq!(url("missing.js"), "/assets/missing.js");
        for (lang, _) in CATALOGUES {
            let name = messages_asset(lang);
            let body = &ASSETS[name].body;
            assert!(
                body.starts_with(b"\"use strict\";\nself.TH_MESSAGES = {"),
                "{name}"
            );
            assert!(url(name).starts_with(&format!("/assets/{name}?v=")));
        }
    }
}
