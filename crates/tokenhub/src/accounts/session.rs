//! Sign-up, password login and cookie sessions.
//!
//! A session is a random 256-bit token (cookie) stored as its SHA-256, with its own CSRF
//! token that state-changing requests must echo in `X-CSRF-Token`. Password hashing
//! (argon2id, deliberately slow) runs on the blocking pool, never on a runtime worker.

use std::sync::OnceLock;

use super::{AccountError, api_key, password, validate_user_name};
use crate::ledger::money::Nanos;
use crate::store::{Credit, LedgerKind, SessionRow, Store, StoreError, UserRow, now_ms};

const TOKEN_LEN: usize = 43;
pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 256;

/// What the client receives when a session starts; the token goes in the cookie only.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

pub(crate) fn validate_password(password: &str) -> Result<(), AccountError> {
    let length = password.chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&length) {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )))
    }
}

pub(crate) async fn hash_password(password: &str) -> Result<String, AccountError> {
    let owned = password.to_string();
    tokio::task::spawn_blocking(move || password::hash(&owned))
        .await
        .map_err(|e| AccountError::Invalid(e.to_string()))?
        .map_err(AccountError::Invalid)
}

async fn verify_password(password: &str, stored: String) -> bool {
    let owned = password.to_string();
    tokio::task::spawn_blocking(move || password::verify(&owned, &stored))
        .await
        .unwrap_or(false)
}

/// Creates a `user` account with a password and the trial credit (ledger kind `trial`).
pub async fn sign_up(
    store: &Store,
    name: &str,
    password: &str,
    trial_credit: Nanos,
) -> Result<UserRow, AccountError> {
    validate_user_name(name)?;
    validate_password(password)?;
    let hash = hash_password(password).await?;
    let trial = Credit {
        amount: trial_credit.max(Nanos::ZERO),
        kind: LedgerKind::Trial,
        reason: "sign-up trial credit",
    };
    match store
        .create_user_with(name, "user", Some(&hash), trial)
        .await
    {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict(_)) => Err(AccountError::Conflict(format!(
            "the user name '{name}' is taken"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The active user with this name and password. Unknown names cost the same argon2
/// verification as wrong passwords, so timing does not reveal which names exist.
pub async fn check_password(
    store: &Store,
    name: &str,
    password: &str,
) -> Result<UserRow, AccountError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let wrong = || AccountError::Unauthenticated("wrong user name or password".into());
    let user = store.user_by_name(name).await?;
    let stored = match &user {
        Some(user) => store.password_hash(user.id).await?,
        None => None,
    };
    let stored = match stored {
        Some(stored) => stored,
        None => {
            // The first call hashes (argon2): on the blocking pool, like every hash.
            let dummy = tokio::task::spawn_blocking(|| {
                DUMMY
                    .get_or_init(|| password::hash("not a password").unwrap_or_default())
                    .clone()
            })
            .await
            .unwrap_or_default();
            verify_password(password, dummy).await;
            return Err(wrong());
        }
    };
    if !verify_password(password, stored).await {
        return Err(wrong());
    }
    match user {
        Some(user) if user.status == "active" => Ok(user),
        _ => Err(wrong()),
    }
}

/// Changes a password after checking the current one. Every other session of the user
/// ends (a stolen cookie dies with the old password); `keep_token` (the caller's own
/// session, if any) stays.
pub async fn change_password(
    store: &Store,
    user: &UserRow,
    current: &str,
    new: &str,
    keep_token: Option<&str>,
) -> Result<(), AccountError> {
    check_password(store, &user.name, current).await?;
    validate_password(new)?;
    let hash = hash_password(new).await?;
    store.set_password_hash(user.id, &hash).await?;
    let keep = keep_token.map(api_key::hash).unwrap_or_default();
    Ok(store.delete_other_sessions(user.id, &keep).await?)
}

/// Sets a password without the current one (an admin's reset): every session of the
/// user ends, so whoever held one signs in again with the new password.
pub async fn set_password(store: &Store, user_id: i64, new: &str) -> Result<(), AccountError> {
    validate_password(new)?;
    let hash = hash_password(new).await?;
    store.set_password_hash(user_id, &hash).await?;
    Ok(store.delete_other_sessions(user_id, "").await?)
}

pub async fn start(store: &Store, user_id: i64, ttl_ms: i64) -> Result<NewSession, AccountError> {
    let session = NewSession {
        token: api_key::random_token("", TOKEN_LEN),
        csrf_token: api_key::random_token("", TOKEN_LEN),
        expires_at: now_ms().saturating_add(ttl_ms),
    };
    store
        .create_session(
            &api_key::hash(&session.token),
            user_id,
            &session.csrf_token,
            session.expires_at,
        )
        .await?;
    Ok(session)
}

/// The session for a cookie token and its user, if both are live.
pub async fn resolve(
    store: &Store,
    token: &str,
) -> Result<Option<(UserRow, SessionRow)>, AccountError> {
    let Some(session) = store.live_session(&api_key::hash(token)).await? else {
        return Ok(None);
    };
    let user = store
        .user_by_id(session.user_id)
        .await?
        .filter(|u| u.status == "active");
    Ok(user.map(|user| (user, session)))
}

pub async fn end(store: &Store, token: &str) -> Result<(), AccountError> {
    Ok(store.delete_session(&api_key::hash(token)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn sign_up_credits_trial_and_logs_in() {
        let (store, _dir) = temp_store().await;
        let user = sign_up(&store, "eve", "long enough", Nanos::from_usd(1))
            .await
            .unwrap();
        assert_eq!(user.balance, Nanos::from_usd(1));
        assert_eq!(
            store.recomputed_balance(user.id).await.unwrap(),
            user.balance
        );
        assert!(matches!(
            sign_up(&store, "eve", "long enough", Nanos::ZERO).await,
            Err(AccountError::Conflict(_))
        ));
        assert!(
            sign_up(&store, "short", "1234567", Nanos::ZERO)
                .await
                .is_err()
        );
        assert!(check_password(&store, "eve", "long enough").await.is_ok());
        assert!(check_password(&store, "eve", "wrong pass").await.is_err());
        assert!(
            check_password(&store, "nobody", "long enough")
                .await
                .is_err()
        );

        let session = start(&store, user.id, 60_000).await.unwrap();
        let (found, row) = resolve(&store, &session.token).await.unwrap().unwrap();
        assert_eq!((found.id, row.csrf_token), (user.id, session.csrf_token));
        end(&store, &session.token).await.unwrap();
        assert!(resolve(&store, &session.token).await.unwrap().is_none());
        let expired = start(&store, user.id, -1).await.unwrap();
        assert!(resolve(&store, &expired.token).await.unwrap().is_none());
    }
}
