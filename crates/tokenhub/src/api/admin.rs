//! The management API under `/api/…` (plus the OpenAI-legacy billing lookups): users,
//! sessions, keys, credits, channels, models, usage and the audit log, as JSON.
//!
//! Handlers stay thin: they authenticate (`auth::Caller`), check the role, call an
//! `accounts` operation and shape the answer. Errors leave through `error::ManageError`
//! as `{"error":{"code","message"}}`. The OpenAPI document at `/api/openapi.json` is
//! generated from the handlers' annotations and from the very router that serves them
//! (`utoipa-axum`), so a mounted route cannot be missing from it.

pub mod audit;
pub mod auth;
pub mod billing;
pub mod catalogue;
pub mod channel_health;
pub mod channel_limits;
pub mod channels;
pub mod csv;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod mail;
pub mod me;
pub mod models;
pub mod password_reset;
pub mod redemptions;
pub mod session;
pub mod settings;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod verification;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::accounts::login_limit::LoginLimiter;
use crate::accounts::site_settings::SettingsCache;

/// Settings and shared state of the management API.
pub struct Management {
    /// Sign-up, trial credit and the anonymous chat trial as configured; saved admin
    /// changes override them (`accounts::site_settings`).
    pub site: SettingsCache,
    pub session_ttl_ms: i64,
    /// Adds `Secure` to the session cookie (deployments behind https).
    pub cookie_secure: bool,
    pub login_limiter: Arc<dyn LoginLimiter>,
    /// Account mail (password resets, address confirmations): the configuration's SMTP
    /// server unless an admin saved one.
    pub mail: crate::accounts::mail_settings::MailCache,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TokenHub management API",
        description = "Users, sessions, API keys, credits, channels, models, usage and audit log. \
            Authenticate with the `th_session` cookie (send `X-CSRF-Token` on changes) or \
            `Authorization: Bearer th-admin-…`. Errors: `{\"error\":{\"code\",\"message\"}}`. \
            Money: decimal USD strings. Times: Unix milliseconds."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(error::ErrorBody, error::ErrorDetail))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::signup))
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::current))
        .routes(routes!(session::change_password))
        .routes(routes!(me::get_me))
        .routes(routes!(me::redeem))
        .routes(routes!(me::set_email))
        .routes(routes!(password_reset::request))
        .routes(routes!(password_reset::confirm))
        .routes(routes!(verification::confirm))
        .routes(routes!(verification::resend))
        .routes(routes!(ledger::mine))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::get, keys::update, keys::delete))
        .routes(routes!(usage::my_usage))
        .routes(routes!(usage::my_summary))
        .routes(routes!(usage::my_export))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::adjust_balance))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::keys))
        .routes(routes!(ledger::of_user))
        .routes(routes!(keys::admin_list))
        .routes(routes!(keys::admin_update, keys::admin_delete))
        .routes(routes!(redemptions::create, redemptions::list))
        .routes(routes!(redemptions::delete))
        .routes(routes!(channels::list, channels::create))
        .routes(routes!(channels::get, channels::update, channels::delete))
        .routes(routes!(channels::upstream_models))
        .routes(routes!(channels::import_models))
        .routes(routes!(channel_health::health))
        .routes(routes!(channel_health::test))
        .routes(routes!(channel_health::check_all))
        .routes(routes!(catalogue::list))
        .routes(routes!(catalogue::attach))
        .routes(routes!(models::list, models::create))
        .routes(routes!(models::export))
        .routes(routes!(models::import))
        .routes(routes!(models::get, models::replace, models::delete))
        .routes(routes!(usage::all_usage))
        .routes(routes!(usage::all_summary))
        .routes(routes!(usage::all_export))
        .routes(routes!(audit::list))
        .routes(routes!(settings::get, settings::update))
        .routes(routes!(mail::get, mail::put, mail::delete))
        .routes(routes!(mail::test))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::delete))
        .routes(routes!(billing::subscription))
        .routes(routes!(billing::usage))
        .routes(routes!(billing::key_usage))
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

/// Unknown paths under `/api/` answer in the management error shape.
async fn unknown_route(uri: http::Uri) -> error::ManageError {
    error::ManageError::not_found(format!("no route {}", uri.path()))
}

/// Every management route, `/api/openapi.json`, and the legacy billing paths without
/// the `/v1` prefix that some clients call.
pub fn routes() -> Router<AppState> {
    let (router, doc) = documented().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route(
            "/dashboard/billing/subscription",
            get(billing::subscription),
        )
        .route("/dashboard/billing/usage", get(billing::usage))
        .route("/api/{*rest}", any(unknown_route))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_generated_with_paths_and_schemes() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        assert!(doc["paths"]["/api/me/keys/{id}"]["patch"].is_object());
        assert!(doc["components"]["securitySchemes"]["session"].is_object());
    }

    /// Answers scripts/api-fuzz.sh found outside the document: the JSON model export
    /// (only CSV was documented), an audit entry whose `after` is a masked token, and the
    /// 400 of the legacy billing usage for a malformed date.
    #[test]
    fn the_document_describes_every_answer_shape() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let export = &doc["paths"]["/api/admin/models/export"]["get"]["responses"]["200"];
        assert!(
            export["content"]["application/json"].is_object(),
            "{export}"
        );
        assert!(export["content"]["text/csv"].is_object(), "{export}");
        let audit = &doc["components"]["schemas"]["AuditView"]["properties"];
        for side in ["before", "after"] {
            assert!(
                audit[side].get("type").is_none(),
                "any JSON value: {}",
                audit[side]
            );
        }
        let billing = &doc["paths"]["/v1/dashboard/billing/usage"]["get"]["responses"];
        assert!(
            billing["400"]["content"]["application/json"].is_object(),
            "{billing}"
        );
    }
}
