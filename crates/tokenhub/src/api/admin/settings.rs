//! Operator settings changed at runtime: `/api/admin/settings` (admins).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, Result};
use super::wire::{parse_usd, usd};
use crate::accounts::Role;
use crate::accounts::site_settings::{self, SiteSettings};
use crate::api::AppState;

#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    /// `open` or `closed`.
    pub signup: String,
    /// Credited to each new account (decimal USD).
    pub trial_credit_usd: String,
    /// Whether visitors who are not logged in may use `/chat` with free models.
    pub anonymous_chat: bool,
    /// Anonymous chat requests per minute per client address (1-600).
    pub anonymous_chat_rpm: u32,
    /// Shown under "Need help?" on the docs page ("WeChat: TokenHub_Support"); empty hides it.
    pub support_contact: String,
    /// Whether sign-up asks for an email address that must be confirmed by a mailed link
    /// before the account creates keys or receives the trial credit.
    pub email_verification: bool,
}

impl From<&SiteSettings> for SettingsView {
    fn from(s: &SiteSettings) -> Self {
        SettingsView {
            signup: if s.signup_open { "open" } else { "closed" }.into(),
            trial_credit_usd: usd(s.trial_credit),
            anonymous_chat: s.anonymous_chat,
            anonymous_chat_rpm: s.anonymous_chat_rpm,
            support_contact: s.support_contact.clone(),
            email_verification: s.email_verification,
        }
    }
}

/// A partial change: omitted members keep their value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// `open` or `closed`.
    pub signup: Option<String>,
    pub trial_credit_usd: Option<String>,
    pub anonymous_chat: Option<bool>,
    pub anonymous_chat_rpm: Option<u32>,
    pub support_contact: Option<String>,
    /// Turning it on needs working mail (an SMTP server and `public_url`).
    pub email_verification: Option<bool>,
}

/// The settings in force.
#[utoipa::path(get, path = "/api/admin/settings", tag = "admin",
    responses((status = 200, body = SettingsView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Json<SettingsView>> {
    caller.require(Role::Admin)?;
    let current = site_settings::load(&state.store, state.management.site.defaults()).await?;
    Ok(Json(SettingsView::from(&current)))
}

/// Change settings; they apply at once on every gateway sharing the database.
#[utoipa::path(patch, path = "/api/admin/settings", tag = "admin", request_body = SettingsChange,
    responses((status = 200, body = SettingsView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Body(change): Body<SettingsChange>,
) -> Result<Json<SettingsView>> {
    caller.require(Role::Admin)?;
    let before = site_settings::load(&state.store, state.management.site.defaults()).await?;
    let mut after = before.clone();
    if let Some(signup) = change.signup {
        after.signup_open = match signup.as_str() {
            "open" => true,
            "closed" => false,
            other => {
                return Err(super::error::ManageError::invalid(format!(
                    "signup: '{other}' is not 'open' or 'closed'"
                )));
            }
        };
    }
    if let Some(credit) = change.trial_credit_usd {
        after.trial_credit = parse_usd("trial_credit_usd", &credit)?;
    }
    if let Some(on) = change.anonymous_chat {
        after.anonymous_chat = on;
    }
    if let Some(rpm) = change.anonymous_chat_rpm {
        after.anonymous_chat_rpm = rpm;
    }
    if let Some(contact) = change.support_contact {
        after.support_contact = contact.trim().to_string();
    }
    if let Some(on) = change.email_verification {
        if on && super::password_reset::account_mail(&state).await?.is_none() {
            return Err(super::error::ManageError::invalid(
                "email verification needs mail: save SMTP settings first (public_url must be set)",
            ));
        }
        after.email_verification = on;
    }
    site_settings::save(&state.store, &caller.actor(), &before, &after).await?;
    state.management.site.forget().await;
    Ok(Json(SettingsView::from(&after)))
}
