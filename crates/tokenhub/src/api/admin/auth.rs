//! Who is calling the management API, and may they.
//!
//! Two credentials are accepted: a session cookie (`th_session`, from login or sign-up)
//! or `Authorization: Bearer th-admin-…` (an admin access token). An `sk-` API key is
//! refused outright: keys call models, never the management API. A cookie request that
//! changes state (any method but GET/HEAD/OPTIONS) must carry `X-CSRF-Token` equal to its
//! session's token; a cross-site form can send the cookie but cannot read or set that
//! header. Bearer requests need no CSRF token: browsers never add them by themselves.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, Method, header};

use super::error::{Code, ManageError};
use crate::accounts::{Actor, Role, admin_token, session};
use crate::api::AppState;
use crate::api::api_key::api_key;
use crate::store::UserRow;

pub const SESSION_COOKIE: &str = "th_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    Session { token: String, csrf_token: String },
    AdminToken,
}

/// An authenticated management caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: UserRow,
    pub role: Role,
    pub via: Via,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::of(&self.user)
    }

    /// Refuses callers below `role`.
    pub fn require(&self, role: Role) -> Result<(), ManageError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ManageError::forbidden(format!(
                "this needs the {} role",
                role.as_str()
            )))
        }
    }
}

/// The value of one cookie, if present.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Equality that takes the same time wherever the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ManageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ManageError> {
        let store = &state.store;
        let unauthenticated = |m: &str| ManageError::new(Code::Unauthenticated, m);
        if let Some(token) = api_key(&parts.headers, false) {
            if !admin_token::is_admin_token(&token) {
                return Err(unauthenticated(
                    "API keys cannot call the management API; log in, or use an admin token (th-admin-…)",
                ));
            }
            let Some(user) = admin_token::resolve(store, &token).await? else {
                return Err(unauthenticated("unknown or revoked admin token"));
            };
            let role = Role::parse(&user.role).unwrap_or(Role::User);
            return Ok(Caller {
                user,
                role,
                via: Via::AdminToken,
            });
        }
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(unauthenticated("log in first (no session cookie)"));
        };
        let Some((user, row)) = session::resolve(store, &token).await? else {
            return Err(unauthenticated("your session has expired; log in again"));
        };
        if changes_state(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !constant_time_eq(sent, row.csrf_token.as_bytes()) {
                return Err(ManageError::new(
                    Code::CsrfFailed,
                    "missing or wrong X-CSRF-Token header (see GET /api/auth/session)",
                ));
            }
        }
        let role = Role::parse(&user.role).unwrap_or(Role::User);
        Ok(Caller {
            user,
            role,
            via: Via::Session {
                token,
                csrf_token: row.csrf_token,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_and_compares_tokens() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; th_session=abc ; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(changes_state(&Method::POST) && !changes_state(&Method::GET));
    }
}
