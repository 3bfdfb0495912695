//! The web app in English and Simplified Chinese: the language of a page comes from the
//! `th_lang` cookie, else `Accept-Language`, else English; the switcher's `/language/`
//! route remembers a choice; pages say `Vary: Accept-Language, Cookie`; the scripts get
//! the same catalogue as a versioned asset. What the pages show in a browser is tested
//! in Chromium (clients/browser/test_i18n.mjs).

use crate::harness::*;
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The page at `path` as `accept_language` (and `cookie`) asks for it: its `Vary` header and HTML.
async fn page(
    h: &Harness,
    path: &str,
    accept_language: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = client()
        .get(format!("{}{path}", h.base))
        .header("accept", "text/html")
        .header("accept-language", accept_language);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let vary = response
        .headers()
        .get("vary")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, vary, response.text().await.unwrap())
}

/// The text of the element that starts at the first `marker` and ends at `</tag>`.
fn element<'a>(html: &'a str, marker: &str, tag: &str) -> &'a str {
    let start = html.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let end = html[start..].find(&format!("</{tag}>")).unwrap() + start;
    &html[start..end]
}

#[tokio::test]
async fn every_page_follows_accept_language_and_the_cookie_wins() {
    let h = Harness::start(Backend::Sqlite).await;
    let pages = [
        ("/", "TokenHub API 文档", "TokenHub API Documentation"),
        ("/pricing", "<h1>价格</h1>", "<h1>Pricing</h1>"),
        ("/token/", "正在加载控制台…", "Loading the console…"),
        ("/chat", "<h1>聊天</h1>", "<h1>Chat</h1>"),
        (
            "/no-such-page",
            "<h1>页面未找到</h1>",
            "<h1>Page not found</h1>",
        ),
    ];
    for (path, chinese, english) in pages {
        let (status, vary, html) = page(&h, path, "zh-CN,zh;q=0.9,en;q=0.8", None).await;
        let expected = if path == "/no-such-page" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{path}");
        assert_eq!(vary, "Accept-Language, Cookie", "{path}");
        assert!(html.contains("<html lang=\"zh-CN\">"), "{path}");
        assert!(html.contains(chinese), "{path} in Chinese");
        assert!(html.contains("/assets/messages-zh.js?v="), "{path}");
        assert!(
            html.contains(">English</a>"),
            "{path}: the switcher offers English"
        );

        let (_, _, html) = page(&h, path, "en-US,en;q=0.9", None).await;
        assert!(
            html.contains("<html lang=\"en\">") && html.contains(english),
            "{path}"
        );
        assert!(html.contains("/assets/messages-en.js?v="), "{path}");

        let (_, _, html) = page(&h, path, "zh-CN", Some("th_lang=en")).await;
        assert!(html.contains(english), "{path}: the cookie wins");
        let (_, _, html) = page(&h, path, "fr-FR", Some("th_lang=zh")).await;
        assert!(html.contains(chinese), "{path}: the cookie wins");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn the_chinese_docs_page_keeps_the_models_and_the_code_samples() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, _, english) = page(&h, "/", "en", None).await;
    let (_, _, chinese) = page(&h, "/", "zh-CN", None).await;
    for marker in [
        "id=\"code-python\"",
        "id=\"code-node\"",
        "id=\"code-curl\"",
        "id=\"auth-header\"",
        "id=\"base-url\"",
    ] {
        assert_eq!(
            element(&chinese, marker, "code"),
            element(&english, marker, "code"),
            "{marker}"
        );
    }
    let rows = |html: &str| {
        element(html, "id=\"model-table\"", "table")
            .split("<tbody>")
            .nth(1)
            .unwrap()
            .to_string()
    };
    // The same models and prices; only "Free" is translated.
    assert_eq!(
        rows(&chinese).replace("免费", "Free"),
        rows(&english),
        "the same models and prices"
    );
    assert!(chinese.contains("<h2 id=\"models\">可用模型</h2>"));
    assert!(chinese.contains("价格（每百万 token）"));
    h.shutdown().await;
}

#[tokio::test]
async fn the_switcher_remembers_the_choice_and_returns_to_a_local_page() {
    let h = Harness::start(Backend::Sqlite).await;
    let http = client();
    let switched = http
        .get(format!("{}/language/zh?next=/pricing", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(switched.headers()["location"], "/pricing");
    let cookie = switched.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("th_lang=zh; Path=/; Max-Age=31536000"),
        "{cookie}"
    );
    // The client keeps the cookie: the next pages are Chinese whatever it accepts.
    let html = http
        .get(format!("{}/pricing", h.base))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">"));

    // Without `next`: back to the page it was clicked on, on this site only.
    let host = h.base.trim_start_matches("http://").to_string();
    let back = http
        .get(format!("{}/language/en", h.base))
        .header("referer", format!("http://{host}/token/#keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.headers()["location"], "/token/#keys");
    for (next, referer) in [
        ("?next=//evil.example/", "http://evil.example/x"),
        ("?next=https://evil.example/", ""),
        ("", "http://evil.example/x"),
    ] {
        let mut request = http.get(format!("{}/language/en{next}", h.base));
        if !referer.is_empty() {
            request = request.header("referer", referer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["location"], "/", "{next} {referer}");
    }
    // An unknown language changes nothing.
    let unknown = http
        .get(format!("{}/language/xx?next=/chat", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.headers()["location"], "/chat");
    assert!(unknown.headers().get("set-cookie").is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn the_scripts_get_the_catalogue_as_a_versioned_asset() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, _, html) = page(&h, "/", "zh", None).await;
    let url = html
        .split('"')
        .find(|s| s.starts_with("/assets/messages-zh.js?v="))
        .expect("a versioned catalogue script");
    let response = client()
        .get(format!("{}{url}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let script = response.text().await.unwrap();
    assert!(script.starts_with("\"use strict\";\nself.TH_MESSAGES = {"));
    assert!(
        script.contains("\"nav.docs\": \"文档\""),
        "{}",
        &script[..200]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_absurd_accept_language_or_an_unknown_cookie_falls_back_quickly_without_failing() {
    let h = Harness::start(Backend::Sqlite).await;
    // 64 KiB of ranges with q-values, under the header limit, none of them ours.
    let long = "x-klingon;q=0.9;q=0.8,".repeat(64 * 1024 / 22);
    let started = std::time::Instant::now();
    let (status, _, html) = page(&h, "/", &long, Some("th_lang=klingon")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"en\">"), "English by default");
    let (status, _, html) = page(&h, "/pricing", &format!("{long}zh;q=0.1"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<html lang=\"zh-CN\">"),
        "the one range we serve"
    );
    let cookie = format!("th_lang={}", "z".repeat(32 * 1024));
    let (status, _, html) = page(&h, "/chat", "zh-CN", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<html lang=\"zh-CN\">"),
        "an unknown cookie is ignored"
    );
    // Generous for a loaded debug build; the parse itself is one pass (unit-tested).
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    h.shutdown().await;
}
