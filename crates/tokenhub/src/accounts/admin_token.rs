//! Management access tokens: `th-admin-` + 40 random base62 characters, sent as
//! `Authorization: Bearer`. Only the SHA-256 is stored. A token acts with its owner's
//! current role, so demoting or disabling the owner disarms it at once.

use super::{AccountError, Actor, Role, api_key};
use crate::store::{AdminTokenRow, Store, UserRow};

pub const PREFIX: &str = "th-admin-";
const SECRET_LEN: usize = 40;

pub fn is_admin_token(bearer: &str) -> bool {
    bearer.starts_with(PREFIX)
}

/// Issues a token for `owner` (an admin or root); returns it with its secret, shown once.
/// Only root (or the command line) may issue tokens.
pub async fn issue(
    store: &Store,
    actor: &Actor,
    owner: &UserRow,
    name: &str,
) -> Result<(AdminTokenRow, String), AccountError> {
    if actor.role != Role::Root {
        return Err(AccountError::Forbidden(
            "only root may create admin tokens".into(),
        ));
    }
    if Role::parse(&owner.role).is_none_or(|r| r < Role::Admin) || owner.status != "active" {
        return Err(AccountError::Invalid(format!(
            "'{}' is not an active admin or root account",
            owner.name
        )));
    }
    let secret = api_key::random_token(PREFIX, SECRET_LEN);
    let shown: String = secret.chars().take(PREFIX.len() + 4).collect();
    let row = store
        .create_admin_token(
            owner.id,
            name,
            &api_key::hash(&secret),
            &format!("{shown}…"),
        )
        .await?;
    Ok((row, secret))
}

/// The owner of a live token, if the owner is still an active admin or root.
pub async fn resolve(store: &Store, secret: &str) -> Result<Option<UserRow>, AccountError> {
    let Some(token) = store.live_admin_token(&api_key::hash(secret)).await? else {
        return Ok(None);
    };
    let owner = store
        .user_by_id(token.user_id)
        .await?
        .filter(|u| u.status == "active" && Role::parse(&u.role).is_some_and(|r| r >= Role::Admin));
    Ok(owner)
}
