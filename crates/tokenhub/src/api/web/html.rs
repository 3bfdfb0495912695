//! HTML building blocks: escaping and the page frame every page shares.
//!
//! Pages are assembled with `format!`, so every value that did not come from this
//! crate's own literals goes through [`Esc`] (text and attribute values alike).

use std::fmt::{self, Display, Write};

use super::assets;
use super::i18n::Lang;

/// Displays a string with `& < > " '` escaped: safe in element text and in quoted
/// attribute values.
pub struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// The one money format of the web app (`usd` in common.js is the same rule): "$1.00",
/// "$0.000123" — at least 2 decimals, at most 6, cut rather than rounded.
pub fn usd(amount: crate::ledger::money::Nanos) -> String {
    let text = amount.to_usd_string();
    let (sign, digits) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |d| ("-", d));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let cut = &fraction[..fraction.len().min(6)];
    let shown = format!("{:0<2}", cut.trim_end_matches('0'));
    format!("{sign}${whole}.{shown}")
}

/// The navigation entries, to mark the current one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Docs,
    Pricing,
    Chat,
    Console,
    Admin,
    /// A page outside the navigation (the 404 page).
    None,
}

/// Who is looking at a page, when logged in.
pub struct Viewer {
    pub name: String,
    pub is_admin: bool,
}

/// One page: its title, body and the script that drives it.
pub struct Page<'a> {
    /// The language of the frame and of the catalogue handed to the scripts.
    pub lang: Lang,
    /// Already translated.
    pub title: &'a str,
    pub nav: Nav,
    pub viewer: Option<&'a Viewer>,
    /// Already-escaped HTML for `<main>`.
    pub main: String,
    /// An asset name under `/assets/`, loaded as a module after `common.js`.
    pub script: Option<&'static str>,
}

impl Page<'_> {
    pub fn render(&self) -> String {
        let lang = self.lang;
        let mut html = String::with_capacity(self.main.len() + 2048);
        let _ = write!(
            html,
            "<!doctype html>\n<html lang=\"{tag}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · TokenHub</title>\
             <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\
             <link rel=\"stylesheet\" href=\"{css}\">\
             <script src=\"{messages}\" defer></script>\
             <script src=\"{common}\" defer></script>",
            tag = lang.tag(),
            title = Esc(self.title),
            icon = assets::url("favicon.svg"),
            css = assets::url("app.css"),
            messages = assets::url(assets::messages_asset(lang)),
            common = assets::url("common.js"),
        );
        if let Some(script) = self.script {
            let _ = write!(
                html,
                "<script src=\"{}\" defer></script>",
                assets::url(script)
            );
        }
        html.push_str("</head><body>");
        let _ = write!(
            html,
            "<a class=\"skip\" href=\"#main\">{}</a>",
            lang.t("frame.skip")
        );
        self.header(&mut html);
        let _ = write!(html, "<main id=\"main\">{}</main>", self.main);
        let _ = write!(
            html,
            "<footer><p>TokenHub · {tagline} · \
             <a href=\"/\">{docs}</a> · <a href=\"/pricing\">{pricing}</a> · \
             <a href=\"/api/openapi.json\">{api}</a></p></footer></body></html>",
            tagline = lang.t("frame.tagline"),
            docs = lang.t("frame.api_docs"),
            pricing = lang.t("nav.pricing"),
            api = lang.t("frame.management_api"),
        );
        html
    }

    fn header(&self, html: &mut String) {
        let lang = self.lang;
        let _ = write!(
            html,
            "<header class=\"top\"><a class=\"brand\" href=\"/\">\
             <span class=\"logo\" aria-hidden=\"true\">◆</span> TokenHub</a>\
             <nav aria-label=\"{}\"><ul>",
            lang.t("frame.main_nav")
        );
        let mut entries = vec![
            (Nav::Docs, "/", "nav.docs"),
            (Nav::Pricing, "/pricing", "nav.pricing"),
            (Nav::Chat, "/chat", "nav.chat"),
            (Nav::Console, "/token/", "nav.console"),
        ];
        if self.viewer.is_some_and(|v| v.is_admin) {
            entries.push((Nav::Admin, "/admin", "nav.admin"));
        }
        for (nav, href, label) in entries {
            let current = if nav == self.nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                html,
                "<li><a href=\"{href}\"{current}>{}</a></li>",
                lang.t(label)
            );
        }
        html.push_str("</ul></nav>");
        self.switcher(html);
        match self.viewer {
            Some(viewer) => {
                let _ = write!(
                    html,
                    "<span class=\"who\">{signed_in}</span>\
                     <button type=\"button\" class=\"ghost small\" id=\"header-logout\">{log_out}</button>",
                    signed_in = lang.tf(
                        "frame.signed_in_as",
                        &[("name", &format!("<b>{}</b>", Esc(&viewer.name)))]
                    ),
                    log_out = lang.t("frame.log_out"),
                );
            }
            None => {
                let _ = write!(
                    html,
                    "<a class=\"button small\" href=\"/token/\">{}</a>",
                    lang.t("frame.sign_in")
                );
            }
        }
        html.push_str("</header>");
    }

    /// A link to the page in the other language: works without JavaScript (the
    /// `/language/` redirect); common.js switches in place, keeping the URL's hash.
    fn switcher(&self, html: &mut String) {
        let other = match self.lang {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        };
        let _ = write!(
            html,
            "<a class=\"lang-switch\" id=\"lang-switch\" href=\"/language/{code}\" \
             data-lang=\"{code}\" hreflang=\"{tag}\" lang=\"{tag}\" title=\"{title}\">{name}</a>",
            code = other.code(),
            tag = other.tag(),
            title = other.t("frame.switch_language"),
            name = other.own_name(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_to_six_decimals() {
        use crate::ledger::money::Nanos;
        assert_eq!(usd(Nanos(1_000_000_000)), "$1.00");
        assert_eq!(usd(Nanos(2_500_000_000)), "$2.50");
        assert_eq!(usd(Nanos(123_456_789)), "$0.123456");
        assert_eq!(usd(Nanos(-150)), "-$0.00");
        assert_eq!(usd(Nanos(-1_500_000_000)), "-$1.50");
    }

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            Esc("<img src=x onerror='a&b'>\"").to_string(),
            "&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;&quot;"
        );
        assert_eq!(Esc("plain — text").to_string(), "plain — text");
    }

    #[test]
    fn the_frame_escapes_the_viewer_and_marks_the_current_page() {
        let viewer = Viewer {
            name: "<script>x</script>".into(),
            is_admin: false,
        };
        let html = Page {
            lang: Lang::En,
            title: "Pricing",
            nav: Nav::Pricing,
            viewer: Some(&viewer),
            main: String::new(),
            script: None,
        }
        .render();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("<a href=\"/pricing\" aria-current=\"page\">"));
        assert!(!html.contains("/admin"), "admins only");
        assert!(html.contains("<html lang=\"en\">"));
        assert!(
            html.contains("href=\"/language/zh\""),
            "the switcher offers Chinese"
        );
    }

    #[test]
    fn the_chinese_frame_is_translated_and_loads_the_chinese_catalogue() {
        let html = Page {
            lang: Lang::Zh,
            title: "价格",
            nav: Nav::Pricing,
            viewer: None,
            main: String::new(),
            script: None,
        }
        .render();
        assert!(html.contains("<html lang=\"zh-CN\">"));
        assert!(html.contains("/assets/messages-zh.js?v="));
        assert!(html.contains(">文档</a>"));
        assert!(html.contains("href=\"/language/en\""));
        assert!(!html.contains(">Docs<"));
    }
}
