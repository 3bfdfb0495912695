//! Password reset by email for people who cannot log in: `POST /api/auth/password-reset`
//! mails a one-use link, `POST /api/auth/password-reset/confirm` sets the new password.
//! Both are public; asking is throttled like failed logins (per address and email).

use std::sync::Arc;

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{Body, ErrorBody, ManageError, Result};
use crate::accounts::mail::Mailer;
use crate::accounts::{AccountError, password_reset};
use crate::api::AppState;
use crate::api::client_ip::ClientIp;

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetConfirm {
    /// The token from the mailed link (`/token/#reset=<token>`).
    pub token: String,
    /// At least 8 characters.
    pub new_password: String,
}

/// Mail a password reset link to the account with this address. The answer is 202
/// whether or not an account has it; 404 when this gateway has no mail server.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202), (status = "4XX", body = ErrorBody)))]
pub async fn request(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(body): Body<ResetRequest>,
) -> Result<StatusCode> {
    let Some((mailer, site)) = account_mail(&state).await? else {
        // A lasting property of this deployment, not an outage: `GET /api/me` says so
        // in `password_reset_by_email`, and nothing here will start working on a retry.
        return Err(ManageError::not_found(
            "password reset by email is not enabled on this gateway: ask an administrator to reset your password",
        ));
    };
    let ip = ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let limiter = &state.management.login_limiter;
    let email = body.email.trim().to_lowercase();
    if let Err(wait) = limiter.check(ip, &email).await {
        return Err(AccountError::RateLimited {
            retry_after_secs: crate::api::error::seconds_rounded_up(wait),
        }
        .into());
    }
    // Every request counts, so mail cannot be used to flood an inbox.
    limiter.failed(ip, &email).await;
    password_reset::request(&state.store, mailer, &email, &site).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The mailer in force and the URL links in mail start with, when this gateway can send
/// account mail. Links start with `public_url`, never the `Host` header: a forged one
/// would send the victim a link to another site. The server refuses to start with a
/// mailer but no `public_url`, and an admin cannot save SMTP settings without one.
pub(super) async fn account_mail(state: &AppState) -> Result<Option<(Arc<Mailer>, String)>> {
    let Some(site) = state.web.public_url.clone() else {
        return Ok(None);
    };
    let mailer = state.management.mail.current(&state.store).await?;
    Ok(mailer.map(|mailer| (mailer, site)))
}

/// Set a new password with a mailed reset token (once; within an hour).
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    Body(body): Body<ResetConfirm>,
) -> Result<StatusCode> {
    password_reset::confirm(&state.store, &body.token, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
