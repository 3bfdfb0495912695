//! Email verification at sign-up (`accounts::verification`): `POST /api/auth/verify-email`
//! confirms an address with the mailed token (public: the token is the proof), and
//! `POST /api/me/email/verification` mails a new link to the caller.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, ManageError, Result};
use super::password_reset::account_mail;
use crate::accounts::verification;
use crate::api::AppState;

#[derive(Deserialize, ToSchema)]
pub struct VerifyEmail {
    /// The token from the mailed link (`/token/#verify=<token>`).
    pub token: String,
}

/// Confirm an account's email address with a mailed token (once; within 24 hours). The
/// first confirmation credits the trial.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", request_body = VerifyEmail,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    Body(body): Body<VerifyEmail>,
) -> Result<StatusCode> {
    let site = state.management.site.current(&state.store).await?;
    verification::confirm(&state.store, &body.token, site.trial_credit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a new confirmation link to the caller's address (at most once a minute).
#[utoipa::path(post, path = "/api/me/email/verification", tag = "me",
    responses((status = 202), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn resend(State(state): State<AppState>, caller: Caller) -> Result<StatusCode> {
    let Some((mailer, site)) = account_mail(&state).await? else {
        return Err(ManageError::not_found(
            "this gateway cannot send mail: ask an administrator to confirm your account",
        ));
    };
    verification::resend(&state.store, mailer, &site, caller.user.id).await?;
    Ok(StatusCode::ACCEPTED)
}
