//! Account operations shared by the CLI and the management API: users, sessions, credits,
//! redemption codes, API keys and their limits, channels and models, and the audit log.
//! Each mutating operation is one store call (one transaction) that bumps the revision
//! when the relay must see it, so a running gateway picks it up within its reload interval.

pub mod admin_token;
pub mod api_key;
pub mod audit;
pub mod catalog_admin;
pub mod keys;
pub mod login_limit;
pub mod mail;
pub mod mail_settings;
pub mod password;
pub mod password_reset;
pub mod redemption;
pub mod session;
pub mod site_settings;

pub mod user_admin;
pub mod verification;

use crate::ledger::money::Nanos;
use crate::store::{KeyLimits, KeyRow, LedgerKind, NewKey, Store, StoreError, UserRow};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no user named '{0}'")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Wrong credentials (deliberately vague: it does not say which part was wrong).
    #[error("{0}")]
    Unauthenticated(String),
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// An upstream (e.g. a channel's `/models`) could not be read.
    #[error("{0}")]
    Upstream(String),
}

pub const ROLES: &[&str] = &["user", "admin", "root"];

/// Roles in increasing power: every admin endpoint needs `Admin`, some need `Root`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    Admin,
    Root,
}

impl Role {
    pub fn parse(role: &str) -> Option<Role> {
        match role {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "root" => Some(Role::Root),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Root => "root",
        }
    }
}

/// Who performs an operation: recorded in the audit log and checked by role rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `None` for the command line (the operator of the machine).
    pub user_id: Option<i64>,
    pub name: String,
    pub role: Role,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            user_id: None,
            name: "cli".into(),
            role: Role::Root,
        }
    }

    pub fn of(user: &UserRow) -> Actor {
        Actor {
            user_id: Some(user.id),
            name: user.name.clone(),
            role: Role::parse(&user.role).unwrap_or(Role::User),
        }
    }
}

pub async fn create_user(
    store: &Store,
    name: &str,
    role: &str,
    balance: Nanos,
) -> Result<UserRow, AccountError> {
    validate_user_name(name)?;
    if !ROLES.contains(&role) {
        return Err(AccountError::Invalid(format!(
            "role must be one of {}",
            ROLES.join(", ")
        )));
    }
    if balance < Nanos::ZERO {
        return Err(AccountError::Invalid(
            "an opening balance cannot be negative".into(),
        ));
    }
    Ok(store.create_user(name, role, None, balance).await?)
}

/// System accounts (`~anonymous`, which owns the chat trial's usage) are named with a
/// `~`, which user names cannot contain.
pub fn is_system_user(name: &str) -> bool {
    name.starts_with('~')
}

pub fn validate_user_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(
            "a user name is 1-64 characters of letters, digits, '_', '-', '.', '@'".into(),
        ))
    }
}

pub async fn user_named(store: &Store, name: &str) -> Result<UserRow, AccountError> {
    store
        .user_by_name(name)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))
}

/// Credits (or, with a negative amount, debits) a user, recorded in the ledger.
pub async fn credit(
    store: &Store,
    name: &str,
    amount: Nanos,
    reason: &str,
) -> Result<UserRow, AccountError> {
    let user = user_named(store, name).await?;
    if amount.is_zero() {
        return Err(AccountError::Invalid("the amount must not be zero".into()));
    }
    store
        .credit_user(user.id, amount, LedgerKind::Admin, reason)
        .await?;
    user_named(store, name).await
}

/// What a new key may do; the owner is given separately.
#[derive(Clone, Debug, Default)]
pub struct KeyOptions {
    pub name: String,
    pub allowed_models: Option<Vec<String>>,
    pub quota: Option<Nanos>,
    pub expires_at: Option<i64>,
    pub limits: KeyLimits,
}

/// Creates a key and returns it with its secret, which is never stored or shown again.
pub async fn issue_key(
    store: &Store,
    owner: &UserRow,
    options: KeyOptions,
) -> Result<(KeyRow, String), AccountError> {
    verification::require_confirmed(store, owner.id).await?;
    keys::validate(
        options.quota,
        options.allowed_models.as_deref(),
        &options.limits,
    )?;
    let secret = api_key::generate();
    let key = NewKey {
        user_id: owner.id,
        name: options.name,
        key_hash: api_key::hash(&secret),
        key_prefix: api_key::display_prefix(&secret),
        allowed_models: options.allowed_models,
        quota: options.quota,
        expires_at: options.expires_at,
        limits: options.limits,
    };
    Ok((store.create_key(&key).await?, secret))
}

/// Creates the root user on an empty database. Returns the generated password, if one was
/// generated (the caller shows it once).
pub async fn ensure_root(
    store: &Store,
    password: Option<&str>,
) -> Result<Option<String>, AccountError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none().then(password::generate);
    let chosen = password.or(generated.as_deref()).unwrap_or_default();
    let hash = password::hash(chosen).map_err(AccountError::Invalid)?;
    match store
        .create_user("root", "root", Some(&hash), Nanos::ZERO)
        .await
    {
        Ok(_) => Ok(generated),
        // Another instance starting on the same database created it first.
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn root_is_created_once() {
        let (store, _dir) = temp_store().await;
        let generated = ensure_root(&store, None).await.unwrap();
        assert!(generated.is_some_and(|p| p.len() >= 20));
        assert_eq!(ensure_root(&store, Some("x")).await.unwrap(), None);
        assert_eq!(user_named(&store, "root").await.unwrap().role, "root");
    }

    #[tokio::test]
    async fn validates_inputs() {
        let (store, _dir) = temp_store().await;
        assert!(
            create_user(&store, "bad name", "user", Nanos::ZERO)
                .await
                .is_err()
        );
        assert!(
            create_user(&store, "ok", "wizard", Nanos::ZERO)
                .await
                .is_err()
        );
        assert!(create_user(&store, "ok", "user", Nanos(-1)).await.is_err());
        let user = create_user(&store, "ok", "user", Nanos(10)).await.unwrap();
        assert!(matches!(
            credit(&store, "nobody", Nanos(1), "x").await,
            Err(AccountError::NoSuchUser(_))
        ));
        assert_eq!(
            credit(&store, "ok", Nanos(5), "gift")
                .await
                .unwrap()
                .balance,
            Nanos(15)
        );
        let quota = KeyOptions {
            quota: Some(Nanos(-1)),
            ..Default::default()
        };
        assert!(issue_key(&store, &user, quota).await.is_err());
        let (key, secret) = issue_key(&store, &user, KeyOptions::default())
            .await
            .unwrap();
        assert_eq!(key.key_hash, api_key::hash(&secret));
    }
}
