//! The web app in English and Simplified Chinese: one message catalogue per language
//! (`web/i18n/en.json`, `web/i18n/zh.json`, keyed by message id, `{name}` placeholders),
//! compiled into the binary and used by the server-rendered pages (`Lang::t`) and by the
//! scripts (`TH.t` in common.js reads the same catalogue, served as a versioned asset).
//!
//! The language of a request: the `th_lang` cookie (set by the header's switcher), else
//! the first supported language of `Accept-Language`, else English. Pages that depend on
//! it say so with `Vary: Accept-Language, Cookie`.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;

use crate::api::admin::auth::cookie;

/// The cookie that remembers the visitor's choice.
pub const LANG_COOKIE: &str = "th_lang";

/// The catalogues, as shipped: the JSON text (served to scripts) per language.
pub const CATALOGUES: [(Lang, &str); 2] = [
    (Lang::En, include_str!("../../../web/i18n/en.json")),
    (Lang::Zh, include_str!("../../../web/i18n/zh.json")),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Zh,
}

type Messages = HashMap<String, String>;

static MESSAGES: LazyLock<HashMap<Lang, Messages>> = LazyLock::new(|| {
    CATALOGUES
        .iter()
        .map(|&(lang, text)| {
            // A malformed catalogue fails the unit tests, so it never ships; an empty map
            // (every id shown as itself) keeps a broken build serving pages regardless.
            let messages = serde_json::from_str(text).unwrap_or_else(|error| {
                tracing::error!(%error, ?lang, "the message catalogue is not valid JSON");
                Messages::new()
            });
            (lang, messages)
        })
        .collect()
});

impl Lang {
    /// The short code of the catalogue, the cookie and the switcher: `en`, `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The language's name in itself, for the switcher.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "中文",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The message `id` in this language; the id itself when missing (a test keeps the
    /// catalogues complete, so that only shows in development).
    pub fn t(self, id: &str) -> &str {
        MESSAGES
            .get(&self)
            .and_then(|messages| messages.get(id))
            .map_or(id, String::as_str)
    }

    /// The message `id` with its `{name}` placeholders replaced by `params` (as given:
    /// the caller escapes values that go into HTML).
    pub fn tf(self, id: &str, params: &[(&str, &str)]) -> String {
        fill(self.t(id), params)
    }

    /// The request's language: the cookie, else `Accept-Language`, else English.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        cookie(headers, LANG_COOKIE)
            .and_then(|code| Lang::from_code(&code))
            .unwrap_or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .map_or(Lang::En, from_accept_language)
            })
    }
}

/// Replaces each `{name}` in `template` by its value in `params`.
pub fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut text = template.to_string();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// The preferred supported language of an `Accept-Language` header: the supported
/// range of highest quality, the first among equals; `zh`, `zh-CN`, `zh-Hans`… are
/// Chinese, `en-*` English, `*` and anything else are skipped, and so is a range whose
/// quality is 0 or not a number from 0 to 1 (`q=inf`, `q=NaN`); English by default.
/// One pass without allocating: the header can be as long as the header limit.
pub fn from_accept_language(header: &str) -> Lang {
    let mut best: Option<(f32, Lang)> = None;
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(supported_range) else {
            continue;
        };
        let quality = match pieces.find_map(|p| p.trim().strip_prefix("q=")) {
            Some(q) => q
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q)),
            None => Some(1.0),
        };
        let Some(quality) = quality.filter(|&q| q > 0.0) else {
            continue;
        };
        if best.is_none_or(|(top, _)| quality > top) {
            best = Some((quality, lang));
        }
    }
    best.map_or(Lang::En, |(_, lang)| lang)
}

/// The language of a language range by its primary subtag, if it is one of ours.
fn supported_range(range: &str) -> Option<Lang> {
    let primary = range.trim().split(['-', '_']).next().unwrap_or("");
    [Lang::Zh, Lang::En]
        .into_iter()
        .find(|lang| primary.eq_ignore_ascii_case(lang.code()))
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of_request(&parts.headers))
    }
}

/// Marks a response as depending on the request's language.
pub fn vary(headers: &mut HeaderMap) {
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /language/{en|zh}?next=/path`: the switcher without JavaScript. Remembers the
/// choice for a year and goes back to `next`, else to the page it was clicked on (the
/// `Referer`, same host only), else to the docs.
pub async fn switch(
    Path(code): Path<String>,
    Query(query): Query<Next>,
    headers: HeaderMap,
) -> Response {
    let target = query
        .next
        .or_else(|| same_site_referer(&headers))
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/".into());
    let mut response = Redirect::to(&target).into_response();
    if let Some(lang) = Lang::from_code(&code) {
        let value = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// A path on this site: no scheme, host or backslash tricks (`//evil`, `/\\evil`).
fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.contains('\\')
}

/// The path and query of the `Referer` when it is this site (same `Host`).
fn same_site_referer(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let (_, rest) = referer.split_once("://")?;
    let (referer_host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (referer_host == host).then(|| {
        if path.is_empty() {
            "/".into()
        } else {
            path.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn catalogue(lang: Lang) -> &'static Messages {
        &MESSAGES[&lang]
    }

    /// `{name}` placeholders of a message, sorted.
    fn placeholders(text: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        found.insert(name.to_string());
                    }
                    rest = &after[close + 1..];
                }
                None => break,
            }
        }
        found
    }

    #[test]
    fn both_catalogues_parse_and_have_the_same_ids_and_placeholders() {
        for (lang, text) in CATALOGUES {
            let parsed: Result<Messages, _> = serde_json::from_str(text);
            assert!(parsed.is_ok(), "{lang:?}: {parsed:?}");
        }
        let en = catalogue(Lang::En);
        let zh = catalogue(Lang::Zh);
        assert!(en.len() > 100, "{} messages", en.len());
        let en_ids: BTreeSet<&String> = en.keys().collect();
        let zh_ids: BTreeSet<&String> = zh.keys().collect();
        assert_eq!(
            en_ids.difference(&zh_ids).collect::<Vec<_>>(),
            Vec::<&&String>::new(),
            "missing in zh.json"
        );
        assert_eq!(
            zh_ids.difference(&en_ids).collect::<Vec<_>>(),
            Vec::<&&String>::new(),
            "missing in en.json"
        );
        for (id, english) in en {
            let chinese = &zh[id];
            assert_eq!(placeholders(english), placeholders(chinese), "{id}");
            assert!(!chinese.trim().is_empty(), "{id} is empty in zh.json");
        }
    }

    #[test]
    fn accept_language_picks_the_first_supported_language() {
        assert_eq!(from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(from_accept_language("zh"), Lang::Zh);
        assert_eq!(from_accept_language("zh-Hans-CN"), Lang::Zh);
        assert_eq!(from_accept_language("ZH_cn"), Lang::Zh);
        assert_eq!(from_accept_language("en-US,en;q=0.9"), Lang::En);
        assert_eq!(from_accept_language("fr-FR,zh;q=0.5,en;q=0.4"), Lang::Zh);
        assert_eq!(from_accept_language("en;q=0.5,zh;q=0.8"), Lang::Zh);
        assert_eq!(from_accept_language("zh;q=0,en"), Lang::En);
        assert_eq!(from_accept_language("fr, de"), Lang::En);
        assert_eq!(from_accept_language(""), Lang::En);
        assert_eq!(from_accept_language("*"), Lang::En);
    }

    #[test]
    fn accept_language_skips_qualities_outside_zero_to_one() {
        for bogus in ["inf", "NaN", "2", "-1", "x", ""] {
            let header = format!("zh;q={bogus},en;q=0.1");
            assert_eq!(from_accept_language(&header), Lang::En, "{header}");
        }
        assert_eq!(
            from_accept_language("en;q=0.5;q=0.9,zh;q=0.6"),
            Lang::Zh,
            "the first q"
        );
    }

    #[test]
    fn an_accept_language_as_long_as_the_header_limit_is_read_in_one_pass() {
        let mut header = "fr;q=0.9,".repeat(64 * 1024 / 9);
        header.push_str("en;q=0.2,zh;q=0.3,en;q=0.3");
        assert!(header.len() > 64 * 1024);
        assert_eq!(from_accept_language(&header), Lang::Zh);
        let commas = ",".repeat(64 * 1024);
        assert_eq!(from_accept_language(&commas), Lang::En);
        let qualities = format!("zh{}", ";q=0.5".repeat(10_000));
        assert_eq!(from_accept_language(&qualities), Lang::Zh);
    }

    #[test]
    fn the_cookie_wins_over_accept_language() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("zh-CN"));
        assert_eq!(Lang::of_request(&headers), Lang::Zh);
        headers.insert(header::COOKIE, HeaderValue::from_static("th_lang=en"));
        assert_eq!(Lang::of_request(&headers), Lang::En);
        headers.insert(header::COOKIE, HeaderValue::from_static("th_lang=xx"));
        assert_eq!(
            Lang::of_request(&headers),
            Lang::Zh,
            "an unknown code is ignored"
        );
    }

    #[test]
    fn the_switcher_returns_to_local_pages_only() {
        assert!(is_local_path("/pricing?x=1"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("https://evil.example/"));
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("gw.example:3000"));
        headers.insert(
            header::REFERER,
            HeaderValue::from_static("http://gw.example:3000/token/?next=/admin"),
        );
        assert_eq!(
            same_site_referer(&headers).as_deref(),
            Some("/token/?next=/admin")
        );
        headers.insert(
            header::REFERER,
            HeaderValue::from_static("http://evil.example/x"),
        );
        assert_eq!(same_site_referer(&headers), None);
    }

    #[test]
    fn placeholders_are_filled_and_missing_ids_show_themselves() {
        assert_eq!(
            fill("{n} of {total}", &[("n", "3"), ("total", "9")]),
            "3 of 9"
        );
        assert_eq!(Lang::Zh.t("no.such.message"), "no.such.message");
        assert_eq!(Lang::En.t("nav.docs"), "Docs");
        assert_eq!(Lang::Zh.t("nav.docs"), "文档");
    }

    /// Every message id the Rust pages and the scripts name (in `t("…")`, `TH.plural`,
    /// a ternary choosing between two ids…) is in the catalogue; a counted one (`plural`)
    /// has its `.one` and `.other` forms.
    #[test]
    fn every_message_id_in_use_is_in_the_catalogue() {
        let en = catalogue(Lang::En);
        let mut seen = 0;
        for (file, source) in sources() {
            for id in ids_in_use(source) {
                seen += 1;
                let known = en.contains_key(&id)
                    || (en.contains_key(&format!("{id}.one"))
                        && en.contains_key(&format!("{id}.other")));
                assert!(known, "{file}: unknown message id {id:?}");
            }
        }
        assert!(seen > 300, "only {seen} ids found: is the scan broken?");
    }

    /// No user-visible English is left in the scripts outside the catalogue: a string
    /// literal with two or more words of letters (prose) must be a message id, an
    /// attribute or a selector in the allow list.
    #[test]
    fn no_english_prose_is_left_in_the_scripts() {
        let mut found = Vec::new();
        for (file, source) in scripts() {
            for literal in string_literals(source) {
                if looks_like_prose(&literal) {
                    found.push(format!("{file}: {literal:?}"));
                }
            }
        }
        assert!(
            found.is_empty(),
            "English left outside the catalogue:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_prose_scan_finds_english_and_ignores_code() {
        for prose in [
            "Refresh",
            "Stopped.",
            "Create key",
            "no model (refused before)",
            "Key “a” created.",
        ] {
            assert!(looks_like_prose(prose), "{prose}");
        }
        for code in [
            "POST",
            "HTTP  ",
            "Content-Type",
            "X-CSRF-Token",
            ":scope > .notice",
            "/api/admin/users? )}",
            "small ghost",
            "notice ok",
            "DEEPSEEK_API_KEY",
            "gpt-4o-mini, gpt-4o",
            "Escape",
            "console.create_key",
            "",
        ] {
            assert!(!looks_like_prose(code), "{code}");
        }
        assert_eq!(
            string_literals("el(\"b\", {}, `Hello ${name}`, 'x'); // \"Comment\""),
            ["b", "Hello  ", "x"]
        );
    }

    fn scripts() -> [(&'static str, &'static str); 5] {
        [
            ("common.js", include_str!("../../../web/common.js")),
            ("docs.js", include_str!("../../../web/docs.js")),
            ("console.js", include_str!("../../../web/console.js")),
            ("chat.js", include_str!("../../../web/chat.js")),
            ("admin.js", include_str!("../../../web/admin.js")),
        ]
    }

    fn sources() -> Vec<(&'static str, &'static str)> {
        let mut all = scripts().to_vec();
        all.extend([
            ("html.rs", include_str!("html.rs")),
            ("pages.rs", include_str!("pages.rs")),
            ("shells.rs", include_str!("shells.rs")),
            ("web.rs", include_str!("../web.rs")),
        ]);
        all
    }

    /// The message namespaces: a string literal `"<namespace>.<name>"` is a message id.
    const NAMESPACES: &[&str] = &[
        "admin",
        "chart",
        "chat",
        "common",
        "console",
        "count",
        "docs",
        "frame",
        "nav",
        "not_found",
        "price",
    ];

    /// The string literals of a source (Rust or JavaScript) shaped like message ids.
    fn ids_in_use(source: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for namespace in NAMESPACES {
            let opening = format!("\"{namespace}.");
            for (at, _) in source.match_indices(&opening) {
                let rest = &source[at + 1..];
                let Some(end) = rest.find('"') else { continue };
                let id = &rest[..end];
                let shaped = id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
                // Asset names (`admin.js`) share the namespaces' spelling.
                if shaped && !id.ends_with(".js") && !id.ends_with(".css") {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }

    /// Double-quoted and backtick string literals of a script (comments skipped), with
    /// template substitutions blanked out.
    fn string_literals(source: &str) -> Vec<String> {
        let mut literals = Vec::new();
        for line in source.lines() {
            let code = line.trim_start();
            if code.starts_with("//") || code.starts_with('*') || code.starts_with("/*") {
                continue;
            }
            let mut chars = code.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '/' && chars.peek() == Some(&'/') {
                    break;
                }
                if c == '"' || c == '`' || c == '\'' {
                    let mut literal = String::new();
                    let mut depth = 0;
                    while let Some(inner) = chars.next() {
                        match inner {
                            '\\' => {
                                chars.next();
                            }
                            '$' if c == '`' && chars.peek() == Some(&'{') => {
                                depth += 1;
                                literal.push(' ');
                            }
                            '}' if depth > 0 => depth -= 1,
                            _ if depth > 0 => {}
                            q if q == c => break,
                            other => literal.push(other),
                        }
                    }
                    literals.push(literal);
                }
            }
        }
        literals
    }

    /// Prose: two or more words with a capital or sentence punctuation, or one capitalized
    /// word ("Refresh"). Paths, selectors, header and key names, identifiers (`a_b`,
    /// `gpt-4o`) and all-capitals (`POST`, `HTTP`) are not.
    fn looks_like_prose(literal: &str) -> bool {
        const NAMES: &[&str] = &["Enter", "Escape", "AbortError", "Accept"];
        let text = literal.trim();
        if text.is_empty() || text.starts_with(['/', ':', '.', '#', '[']) || NAMES.contains(&text) {
            return false;
        }
        let words: Vec<&str> = text
            .split_whitespace()
            .map(|token| token.trim_matches(|c: char| ".,:;!?…“”\"()'".contains(c)))
            .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_alphabetic() || c == '\''))
            .collect();
        let capital = text.starts_with(|c: char| c.is_ascii_uppercase());
        let sentence = text.contains(' ') && text.contains(['.', ':', '?', '!', ',', '…', '(']);
        match words.as_slice() {
            [] => false,
            [word] => {
                !text.contains(' ')
                    && capital
                    && word.len() > 3
                    && word[1..].chars().all(|c| c.is_ascii_lowercase())
            }
            _ => capital || sentence,
        }
    }
}
