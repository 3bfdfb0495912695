//! Who is looking at a page: the session user, if the cookie is valid. Pages never fail
//! for a bad or missing cookie; they render for a visitor instead.

use axum::extract::FromRequestParts;
use http::request::Parts;

use super::html::Viewer;
use crate::accounts::Role;
use crate::api::AppState;
use crate::api::admin::auth::Caller;

pub struct SignedIn {
    pub viewer: Viewer,
    pub user_id: i64,
    pub role: Role,
}

pub struct MaybeViewer(pub Option<SignedIn>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, state).await else {
            return Ok(MaybeViewer(None));
        };
        Ok(MaybeViewer(Some(SignedIn {
            viewer: Viewer {
                name: caller.user.name.clone(),
                is_admin: caller.role >= Role::Admin,
            },
            user_id: caller.user.id,
            role: caller.role,
        })))
    }
}

impl SignedIn {
    /// The displayed prefix of the user's newest active key, for code samples.
    pub async fn key_hint(&self, state: &AppState) -> Option<String> {
        match state.store.keys_of_user(self.user_id).await {
            Ok(keys) => keys
                .into_iter()
                .filter(|k| k.status == "active")
                .max_by_key(|k| k.created_at)
                .map(|k| k.key_prefix),
            Err(error) => {
                tracing::warn!(%error, "cannot list the viewer's keys");
                None
            }
        }
    }
}
