//! Sign-up, login, logout and the current session: `/api/auth/…`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, SESSION_COOKIE, Via};
use super::error::{Body, Code, ErrorBody, ManageError, Result};
use super::password_reset::account_mail;
use super::wire::UserView;
use crate::accounts::{AccountError, session, verification};

use crate::api::AppState;
use crate::api::client_ip::ClientIp;
use crate::store::UserRow;

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    /// A user name or an email address (letters, digits, `_ - . @`).
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SignUp {
    /// Letters, digits, `_ - . @`.
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// Required when the gateway asks new accounts to confirm their address (the admin
    /// setting `email_verification`): a link is mailed to it. Otherwise ignored (set it
    /// later with `PUT /api/me/email`).
    pub email: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub user: UserView,
    /// Send this as `X-CSRF-Token` with every state-changing request made with the cookie.
    /// `null` for admin-token callers (they need none).
    pub csrf_token: Option<String>,
    pub expires_at: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

fn session_cookie(state: &AppState, token: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.management.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    );
    // Tokens are base62, so the value is always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn start_session(state: &AppState, user: UserRow, status: StatusCode) -> Result<Response> {
    let ttl = state.management.session_ttl_ms;
    let new = session::start(&state.store, user.id, ttl).await?;
    let detail = state.store.user_detail(user.id).await?;
    let view = SessionView {
        user: detail
            .as_ref()
            .map_or_else(|| UserView::from_row(&user), UserView::from_detail),
        csrf_token: Some(new.csrf_token),
        expires_at: Some(new.expires_at),
    };
    let cookie = session_cookie(state, &new.token, ttl / 1000);
    Ok((status, [(header::SET_COOKIE, cookie)], Json(view)).into_response())
}

/// Create an account (when sign-up is open) and log in. New accounts get the trial credit;
/// when the gateway asks for email verification, only once the mailed link is followed.
#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = SignUp,
    responses((status = 201, body = SessionView), (status = "4XX", body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(body): Body<SignUp>,
) -> Result<Response> {
    // Without connect info (in-process tests) every caller shares one throttling bucket.
    let ip = ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let site = state.management.site.current(&state.store).await?;
    if !site.signup_open {
        return Err(ManageError::forbidden(
            "sign-up is closed on this gateway; ask an administrator for an account",
        ));
    }
    // Every sign-up is counted like a failed login of a pseudo-account (`~` cannot start a
    // real name) from the caller's network: it costs an argon2 hash and creates credit,
    // so one address (IPv6: one /64) gets a few per window.
    let limiter = &state.management.login_limiter;
    let bucket = "~signup";
    if let Err(wait) = limiter.check(ip, bucket).await {
        return Err(AccountError::RateLimited {
            retry_after_secs: crate::api::error::seconds_rounded_up(wait),
        }
        .into());
    }
    limiter.failed(ip, bucket).await;
    let name = body.username.trim();
    let user = if site.email_verification {
        let Some((mailer, public_url)) = account_mail(&state).await? else {
            return Err(ManageError::new(
                Code::Unavailable,
                "sign-up needs an email address confirmed by mail, and this gateway cannot send mail now: try again later",
            ));
        };
        let email = body.email.as_deref().unwrap_or_default();
        verification::sign_up(
            &state.store,
            mailer,
            &public_url,
            name,
            &body.password,
            email,
        )
        .await?
    } else {
        session::sign_up(&state.store, name, &body.password, site.trial_credit).await?
    };
    start_session(&state, user, StatusCode::CREATED).await
}

/// Log in with a password; sets the `th_session` cookie.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = SessionView), (status = "4XX", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(body): Body<Credentials>,
) -> Result<Response> {
    // Without connect info (in-process tests) every caller shares one throttling bucket.
    let ip = ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let name = body.username.trim();
    let limiter = &state.management.login_limiter;
    if let Err(wait) = limiter.check(ip, name).await {
        return Err(AccountError::RateLimited {
            retry_after_secs: crate::api::error::seconds_rounded_up(wait),
        }
        .into());
    }
    match session::check_password(&state.store, name, &body.password).await {
        Ok(user) => {
            limiter.succeeded(ip, name).await;
            start_session(&state, user, StatusCode::OK).await
        }
        Err(error) => {
            if matches!(error, AccountError::Unauthenticated(_)) {
                limiter.failed(ip, name).await;
            }
            Err(error.into())
        }
    }
}

/// End the current session and clear its cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = [])))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    if let Via::Session { token, .. } = &caller.via {
        session::end(&state.store, token).await?;
    }
    let cookie = session_cookie(&state, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The caller and, for cookie sessions, the CSRF token to send with changes.
#[utoipa::path(get, path = "/api/auth/session", tag = "auth",
    responses((status = 200, body = SessionView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn current(State(state): State<AppState>, caller: Caller) -> Result<Json<SessionView>> {
    let detail = state.store.user_detail(caller.user.id).await?;
    let user = detail
        .as_ref()
        .map_or_else(|| UserView::from_row(&caller.user), UserView::from_detail);
    let csrf_token = match caller.via {
        Via::Session { csrf_token, .. } => Some(csrf_token),
        Via::AdminToken => None,
    };
    Ok(Json(SessionView {
        user,
        csrf_token,
        expires_at: None,
    }))
}

/// Change the caller's own password. Wrong current passwords count like failed logins
/// of the same account from the same address: a stolen session must not become a way
/// to guess the password fast.
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    caller: Caller,
    Body(body): Body<PasswordChange>,
) -> Result<StatusCode> {
    let ip = ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let limiter = &state.management.login_limiter;
    let name = caller.user.name.as_str();
    if let Err(wait) = limiter.check(ip, name).await {
        return Err(AccountError::RateLimited {
            retry_after_secs: crate::api::error::seconds_rounded_up(wait),
        }
        .into());
    }
    let keep = match &caller.via {
        Via::Session { token, .. } => Some(token.as_str()),
        Via::AdminToken => None,
    };
    let changed = session::change_password(
        &state.store,
        &caller.user,
        &body.current_password,
        &body.new_password,
        keep,
    )
    .await;
    match changed {
        Ok(()) => {
            limiter.succeeded(ip, name).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Err(AccountError::Unauthenticated(_)) => {
            limiter.failed(ip, name).await;
            Err(ManageError::forbidden("the current password is wrong"))
        }
        Err(other) => Err(other.into()),
    }
}
