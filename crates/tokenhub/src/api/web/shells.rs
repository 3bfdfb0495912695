//! The pages driven by their own script: the console (`/token/`), the admin panel
//! (`/admin`) and the chat demo (`/chat`). The server renders the frame and what it
//! knows (catalogue, settings); the script talks to the management API and the chat
//! endpoint with the session cookie.

use std::fmt::Write;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::StatusCode;

use super::html::{Esc, Nav, Page};
use super::i18n::Lang;
use super::viewer::MaybeViewer;
use crate::accounts::Role;
use crate::accounts::site_settings;
use crate::api::AppState;

/// `/token/`: sign up or log in, then keys, balance, codes and usage.
pub async fn console(State(state): State<AppState>, lang: Lang, viewer: MaybeViewer) -> Response {
    let site = settings(&state).await;
    let signup_open = site.as_ref().is_some_and(|s| s.signup_open);
    // Sign-up then asks for an address, which must be confirmed by mail.
    let verify_email = site.as_ref().is_some_and(|s| s.email_verification);
    let catalog = state.relay.catalog.load_full();
    let model_ids: Vec<&str> = catalog
        .routable_models()
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    let models_json = serde_json::to_string(&model_ids).unwrap_or_else(|_| "[]".into());
    let main = format!(
        "<div id=\"console\" data-signup=\"{signup}\" data-verify-email=\"{verify_email}\" data-signed-in=\"{signed_in}\" data-models=\"{models}\">\
         <p class=\"muted\">{loading}</p></div>\
         <noscript><p>{noscript}</p></noscript>",
        signup = if signup_open { "open" } else { "closed" },
        signed_in = viewer.0.is_some(),
        models = Esc(&models_json),
        loading = lang.t("console.loading"),
        noscript = lang.t("console.noscript"),
    );

    page(
        lang,
        lang.t("nav.console"),
        Nav::Console,
        &viewer,
        main,
        Some("console.js"),
    )
}

/// `/admin`: admins only; checked here, not just by hiding the link.
pub async fn admin(lang: Lang, viewer: MaybeViewer) -> Response {
    let Some(signed_in) = &viewer.0 else {
        return Redirect::to("/token/?next=/admin").into_response();
    };
    if signed_in.role < Role::Admin {
        let main = format!(
            "<h1>{}</h1><p>{}</p>",
            lang.t("admin.only_title"),
            lang.t("admin.only_text")
        );
        let title = lang.t("admin.forbidden");
        let mut response = page(lang, title, Nav::Admin, &viewer, main, None);
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let main = format!(
        "<div id=\"admin\" data-root=\"{}\" data-model-id-max=\"{}\"><p class=\"muted\">{}</p></div>\
         <noscript><p>{}</p></noscript>",
        signed_in.role >= Role::Root,
        crate::catalog::MAX_MODEL_ID_LEN,
        lang.t("admin.loading"),
        lang.t("admin.noscript"),
    );
    page(
        lang,
        lang.t("nav.admin"),
        Nav::Admin,
        &viewer,
        main,
        Some("admin.js"),
    )
}

/// `/chat`: the streaming chat demo. Free models come first; visitors who are not
/// logged in may pick only those, when the operator allows the anonymous trial.
pub async fn chat(State(state): State<AppState>, lang: Lang, viewer: MaybeViewer) -> Response {
    let anonymous_allowed = settings(&state).await.is_some_and(|s| s.anonymous_chat);
    let signed_in = viewer.0.is_some();
    let catalog = state.relay.catalog.load_full();
    let mut models = catalog.routable_models();
    models.sort_by_key(|m| !m.prices.is_free());
    let mut options = String::new();
    for model in &models {
        let free = model.prices.is_free();
        let usable = signed_in || (free && anonymous_allowed);
        let _ = write!(
            options,
            "<option value=\"{id}\" data-in=\"{input}\" data-cached=\"{cached}\" data-out=\"{output}\"{disabled}>{id}{note}</option>",
            id = Esc(&model.id),
            input = model.prices.input.0.0,
            cached = model.prices.cached_input.0.0,
            output = model.prices.output.0.0,
            disabled = if usable { "" } else { " disabled" },
            note = if free {
                lang.t("chat.option_free")
            } else if usable {
                ""
            } else {
                lang.t("chat.option_sign_in")
            },
        );
    }
    let notice = match (signed_in, anonymous_allowed) {
        (true, _) => lang.t("chat.notice_billed"),
        (false, true) => lang.t("chat.notice_anonymous"),
        (false, false) => lang.t("chat.notice_sign_in"),
    };
    let main = format!(
        "<div class=\"chat\" id=\"chat\" data-signed-in=\"{signed_in}\">\
         <div class=\"chat-bar\"><h1>{title}</h1><label>{model} <select id=\"chat-model\">{options}</select></label>\
         <button type=\"button\" class=\"ghost\" id=\"chat-clear\">{new_chat}</button></div>\
         <p class=\"muted small\" id=\"chat-notice\">{notice}</p>\
         <p class=\"small\" id=\"chat-account\" hidden></p>\
         <ol class=\"messages\" id=\"chat-log\" aria-label=\"{conversation}\"></ol>\
         <p class=\"sr-only\" id=\"chat-status\" aria-live=\"polite\"></p>\
         <form id=\"chat-form\" class=\"composer\">\
         <label class=\"sr-only\" for=\"chat-input\">{message}</label>\
         <textarea id=\"chat-input\" rows=\"2\" placeholder=\"{placeholder}\" required></textarea>\
         <button type=\"submit\" id=\"chat-send\">{send}</button>\
         <button type=\"button\" id=\"chat-stop\" class=\"danger\" hidden>{stop}</button></form>\
         <p class=\"muted small\" id=\"chat-meter\"></p></div>",
        title = lang.t("nav.chat"),
        model = lang.t("chat.model"),
        new_chat = lang.t("chat.new_chat"),
        conversation = lang.t("chat.conversation"),
        message = lang.t("chat.message"),
        placeholder = lang.t("chat.placeholder"),
        send = lang.t("chat.send"),
        stop = lang.t("chat.stop"),
    );
    page(
        lang,
        lang.t("nav.chat"),
        Nav::Chat,
        &viewer,
        main,
        Some("chat.js"),
    )
}

/// The settings in force; `None` (everything closed) when they cannot be read.
pub(super) async fn settings(state: &AppState) -> Option<site_settings::SiteSettings> {
    state
        .management
        .site
        .current(&state.store)
        .await
        .inspect_err(|error| tracing::warn!(%error, "cannot read the site settings"))
        .ok()
}

/// A page in `lang`, marked as depending on the request's language.
pub(super) fn page(
    lang: Lang,
    title: &str,
    nav: Nav,
    viewer: &MaybeViewer,
    main: String,
    script: Option<&'static str>,
) -> Response {
    let mut response = Html(
        Page {
            lang,
            title,
            nav,
            viewer: viewer.0.as_ref().map(|v| &v.viewer),
            main,
            script,
        }
        .render(),
    )
    .into_response();
    super::i18n::vary(response.headers_mut());
    response
}
