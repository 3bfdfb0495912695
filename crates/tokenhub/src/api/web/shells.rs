//! The pages driven by their own script: the console (`/token/`), the admin panel
//! (`/admin`) and the chat demo (`/chat`). The server renders the frame and what it
//! knows (catalogue, settings); the script talks to the management API and the chat
//! endpoint with the session cookie.

use std::fmt::Write;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::StatusCode;

use super::html::{Esc, Nav, Page};
use super::viewer::MaybeViewer;
use crate::accounts::Role;
use crate::accounts::site_settings;
use crate::api::AppState;

/// `/token/`: sign up or log in, then keys, balance, codes and usage.
pub async fn console(State(state): State<AppState>, viewer: MaybeViewer) -> Response {
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
         <p class=\"muted\">Loading the console…</p></div>\
         <noscript><p>The console needs JavaScript. The same operations are available \
         through the <a href=\"/api/openapi.json\">management API</a>.</p></noscript>",
        signup = if signup_open { "open" } else { "closed" },
        signed_in = viewer.0.is_some(),
        models = Esc(&models_json),
    );

    page("Console", Nav::Console, &viewer, main, Some("console.js"))
}

/// `/admin`: admins only; checked here, not just by hiding the link.
pub async fn admin(viewer: MaybeViewer) -> Response {
    let Some(signed_in) = &viewer.0 else {
        return Redirect::to("/token/?next=/admin").into_response();
    };
    if signed_in.role < Role::Admin {
        let main = "<h1>Admins only</h1><p>Your account cannot open the admin panel. \
                    <a href=\"/token/\">Back to your console</a>.</p>"
            .to_string();
        let mut response = page("Forbidden", Nav::Admin, &viewer, main, None);
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let main = format!(
        "<div id=\"admin\" data-root=\"{}\" data-model-id-max=\"{}\"><p class=\"muted\">Loading the admin panel…</p></div>\
         <noscript><p>The admin panel needs JavaScript.</p></noscript>",
        signed_in.role >= Role::Root,
        crate::catalog::MAX_MODEL_ID_LEN,
    );
    page("Admin", Nav::Admin, &viewer, main, Some("admin.js"))
}

/// `/chat`: the streaming chat demo. Free models come first; visitors who are not
/// logged in may pick only those, when the operator allows the anonymous trial.
pub async fn chat(State(state): State<AppState>, viewer: MaybeViewer) -> Response {
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
                " · free"
            } else if usable {
                ""
            } else {
                " · sign in"
            },
        );
    }
    let notice = match (signed_in, anonymous_allowed) {
        (true, _) => "Replies are billed to your balance at the listed prices.",
        (false, true) => {
            "You are not signed in: free models only, a few messages per minute. \
             <a href=\"/token/\">Sign in</a> for every model."
        }
        (false, false) => "<a href=\"/token/\">Sign in</a> to chat.",
    };
    let main = format!(
        "<div class=\"chat\" id=\"chat\" data-signed-in=\"{signed_in}\">\
         <div class=\"chat-bar\"><h1>Chat</h1><label>Model <select id=\"chat-model\">{options}</select></label>\
         <button type=\"button\" class=\"ghost\" id=\"chat-clear\">New chat</button></div>\
         <p class=\"muted small\" id=\"chat-notice\">{notice}</p>\
         <p class=\"small\" id=\"chat-account\" hidden></p>\
         <ol class=\"messages\" id=\"chat-log\" aria-label=\"Conversation\"></ol>\
         <p class=\"sr-only\" id=\"chat-status\" aria-live=\"polite\"></p>\
         <form id=\"chat-form\" class=\"composer\">\
         <label class=\"sr-only\" for=\"chat-input\">Message</label>\
         <textarea id=\"chat-input\" rows=\"2\" placeholder=\"Ask anything…\" required></textarea>\
         <button type=\"submit\" id=\"chat-send\">Send</button>\
         <button type=\"button\" id=\"chat-stop\" class=\"danger\" hidden>Stop</button></form>\
         <p class=\"muted small\" id=\"chat-meter\"></p></div>"
    );
    page("Chat", Nav::Chat, &viewer, main, Some("chat.js"))
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

pub(super) fn page(
    title: &str,
    nav: Nav,
    viewer: &MaybeViewer,
    main: String,
    script: Option<&'static str>,
) -> Response {
    Html(
        Page {
            title,
            nav,
            viewer: viewer.0.as_ref().map(|v| &v.viewer),
            main,
            script,
        }
        .render(),
    )
    .into_response()
}
