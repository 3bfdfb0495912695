//! The caller's own account: profile with live balance, and redeeming codes.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, ManageError, Result};
use super::wire::{UserView, usd};
use crate::accounts::redemption;
use crate::api::AppState;

#[derive(Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    /// The stored balance minus costs settled but not yet written (decimal USD).
    pub live_balance_usd: String,
    /// Where password reset links are mailed; `null`: none set.
    pub email: Option<String>,
    /// Whether this gateway can mail reset links (an SMTP server is configured).
    pub password_reset_by_email: bool,
    /// The account signed up while email verification was required and has not yet
    /// followed the mailed link: it cannot create keys, and its trial credit waits.
    pub email_verification_pending: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct EmailChange {
    /// The new address; `null` removes it.
    pub email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct Redeem {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    pub credited_usd: String,
    pub balance_usd: String,
}

pub async fn me_view(state: &AppState, caller: &Caller) -> Result<MeView> {
    let detail = super::users::live_detail(state, caller.user.id).await?;
    let live = detail.user.balance - state.relay.books.unflushed(caller.user.id);
    Ok(MeView {
        user: UserView::from_detail(&detail),
        live_balance_usd: usd(live),
        email: state.store.user_email(caller.user.id).await?,
        password_reset_by_email: super::password_reset::account_mail(state).await?.is_some(),
        email_verification_pending: state.store.verification_pending(caller.user.id).await?,
    })
}

/// The caller's account and balance.
#[utoipa::path(get, path = "/api/me", tag = "me",
    responses((status = 200, body = MeView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get_me(State(state): State<AppState>, caller: Caller) -> Result<Json<MeView>> {
    Ok(Json(me_view(&state, &caller).await?))
}

/// Redeem a code: its amount is credited once (ledger kind `redemption`).
#[utoipa::path(post, path = "/api/me/redeem", tag = "me", request_body = Redeem,
    responses((status = 200, body = Redeemed), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn redeem(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Redeem>,
) -> Result<Json<Redeemed>> {
    let amount = redemption::redeem(&state.store, caller.user.id, &body.code).await?;
    let detail = super::users::live_detail(&state, caller.user.id).await?;
    Ok(Json(Redeemed {
        credited_usd: usd(amount),
        balance_usd: usd(detail.user.balance),
    }))
}

/// Set or remove the caller's email address (where password reset links go).
#[utoipa::path(put, path = "/api/me/email", tag = "me", request_body = EmailChange,
    responses((status = 200, body = MeView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn set_email(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<EmailChange>,
) -> Result<Json<MeView>> {
    let email = body
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if email.is_some_and(|e| !crate::accounts::mail::valid_email(e)) {
        return Err(ManageError::invalid("this is not an email address"));
    }
    state.store.set_user_email(caller.user.id, email).await?;
    Ok(Json(me_view(&state, &caller).await?))
}
