//! What admins do to users, with the role rules: only root touches root accounts or
//! grants root; the last active root can be neither demoted, disabled nor deleted; nobody
//! deletes or disables themselves (so an operator cannot lock themselves out by mistake);
//! system accounts (`~anonymous`) keep their role and status; a balance adjustment is at
//! most [`MAX_ADJUSTMENT`] and never takes a balance below zero.

use super::{AccountError, Actor, Role, password, session};
use crate::ledger::money::{NANOS_PER_USD, Nanos};

/// The largest credit or debit one adjustment may make: a typo of a few zeros is refused
/// rather than booked.
pub const MAX_ADJUSTMENT: Nanos = Nanos(100_000 * NANOS_PER_USD);
use crate::store::{Credit, LedgerKind, Store, StoreError, UserDetail, UserLimits, UserRow};

/// A change to a user; `None` leaves a field as it is (`Some(None)` clears a limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub role: Option<Role>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    pub rpm: Option<Option<i64>>,
    pub tpm: Option<Option<i64>>,
}

/// A live (not deleted) user by id.
pub async fn live_user(store: &Store, id: i64) -> Result<UserDetail, AccountError> {
    store
        .user_detail(id)
        .await?
        .filter(|u| u.user.status != "deleted")
        .ok_or_else(|| AccountError::NotFound(format!("no user with id {id}")))
}

fn role_of(user: &UserRow) -> Role {
    Role::parse(&user.role).unwrap_or(Role::User)
}

fn keep_system_account(target: &UserRow) -> Result<(), AccountError> {
    if super::is_system_user(&target.name) {
        return Err(AccountError::Conflict(format!(
            "{} is a system account (it owns the anonymous chat usage): it cannot be \
             disabled, deleted or given another role",
            target.name
        )));
    }
    Ok(())
}

fn may_manage(actor: &Actor, target: &UserRow) -> Result<(), AccountError> {
    if role_of(target) == Role::Root && actor.role != Role::Root {
        return Err(AccountError::Forbidden(
            "only root may change a root account".into(),
        ));
    }
    Ok(())
}

async fn keep_a_root(store: &Store, target: &UserRow) -> Result<(), AccountError> {
    if role_of(target) == Role::Root && store.count_users_with_role("root").await? <= 1 {
        return Err(AccountError::Conflict(
            "the last root account cannot be demoted, disabled or deleted".into(),
        ));
    }
    Ok(())
}

/// Creates a user with an optional password and opening balance (ledger kind `initial`).
pub async fn create(
    store: &Store,
    actor: &Actor,
    name: &str,
    password_text: Option<&str>,
    role: Role,
    balance: Nanos,
) -> Result<UserRow, AccountError> {
    if role == Role::Root && actor.role != Role::Root {
        return Err(AccountError::Forbidden(
            "only root may create root accounts".into(),
        ));
    }
    super::validate_user_name(name)?;
    if balance < Nanos::ZERO {
        return Err(AccountError::Invalid(
            "an opening balance cannot be negative".into(),
        ));
    }
    let hash = match password_text {
        Some(text) => {
            if text.chars().count() < session::MIN_PASSWORD_LEN {
                return Err(AccountError::Invalid(format!(
                    "a password has at least {} characters",
                    session::MIN_PASSWORD_LEN
                )));
            }
            let owned = text.to_string();
            let hashed = tokio::task::spawn_blocking(move || password::hash(&owned))
                .await
                .map_err(|e| AccountError::Invalid(e.to_string()))?
                .map_err(AccountError::Invalid)?;
            Some(hashed)
        }
        None => None,
    };
    let opening = Credit {
        amount: balance,
        kind: LedgerKind::Initial,
        reason: "opening balance",
    };
    match store
        .create_user_with(name, role.as_str(), hash.as_deref(), opening)
        .await
    {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict(m)) => Err(AccountError::Conflict(m)),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(
    store: &Store,
    actor: &Actor,
    id: i64,
    patch: UserPatch,
) -> Result<UserDetail, AccountError> {
    let current = live_user(store, id).await?;
    may_manage(actor, &current.user)?;
    let role = patch.role.unwrap_or(role_of(&current.user));
    if role == Role::Root && actor.role != Role::Root {
        return Err(AccountError::Forbidden("only root may grant root".into()));
    }
    let status = patch.status.unwrap_or(current.user.status.clone());
    if !matches!(status.as_str(), "active" | "disabled") {
        return Err(AccountError::Invalid(
            "status is 'active' or 'disabled'".into(),
        ));
    }
    if role != role_of(&current.user) || status != current.user.status {
        keep_system_account(&current.user)?;
    }
    let demoted_or_disabled = role != role_of(&current.user) || status != "active";
    if demoted_or_disabled {
        keep_a_root(store, &current.user).await?;
        if actor.user_id == Some(id) && status != "active" {
            return Err(AccountError::Conflict("you cannot disable yourself".into()));
        }
    }
    let limits = UserLimits {
        rpm: patch.rpm.unwrap_or(current.limits.rpm),
        tpm: patch.tpm.unwrap_or(current.limits.tpm),
    };
    if limits.rpm.is_some_and(|v| v <= 0) || limits.tpm.is_some_and(|v| v <= 0) {
        return Err(AccountError::Invalid(
            "rpm_limit and tpm_limit must be positive (null for no limit)".into(),
        ));
    }
    if role != role_of(&current.user) || status != current.user.status {
        store
            .set_user_role_status(id, role.as_str(), &status)
            .await?;
    }
    if limits != current.limits {
        store.set_user_limits(id, limits).await?;
    }
    live_user(store, id).await
}

/// Deletes a user: keys revoked, sessions ended; the row, ledger and usage stay.
pub async fn delete(store: &Store, actor: &Actor, id: i64) -> Result<UserDetail, AccountError> {
    let current = live_user(store, id).await?;
    may_manage(actor, &current.user)?;
    if actor.user_id == Some(id) {
        return Err(AccountError::Conflict("you cannot delete yourself".into()));
    }
    keep_system_account(&current.user)?;
    keep_a_root(store, &current.user).await?;
    store.delete_user(id).await?;
    Ok(current)
}

/// Sets a user's password (a reset by an admin; only root resets root). System accounts
/// have none to set.
pub async fn reset_password(
    store: &Store,
    actor: &Actor,
    id: i64,
    new: &str,
) -> Result<UserDetail, AccountError> {
    let current = live_user(store, id).await?;
    may_manage(actor, &current.user)?;
    keep_system_account(&current.user)?;
    session::set_password(store, id, new).await?;
    Ok(current)
}

/// Credits (positive) or debits (negative) a user, with a reason, in the ledger.
pub async fn adjust_balance(
    store: &Store,
    id: i64,
    amount: Nanos,
    reason: &str,
) -> Result<UserDetail, AccountError> {
    let current = live_user(store, id).await?;
    if amount.is_zero() {
        return Err(AccountError::Invalid("the amount must not be zero".into()));
    }
    if amount.0.unsigned_abs() > MAX_ADJUSTMENT.0.unsigned_abs() {
        return Err(AccountError::Invalid(format!(
            "one adjustment is at most ${} either way; split larger ones",
            MAX_ADJUSTMENT.to_usd_string()
        )));
    }
    if amount < Nanos::ZERO && current.user.balance.0 + amount.0 < 0 {
        return Err(AccountError::Invalid(format!(
            "a debit of ${} would take the balance (${}) below zero",
            Nanos(-amount.0).to_usd_string(),
            current.user.balance.to_usd_string()
        )));
    }
    if reason.trim().is_empty() {
        return Err(AccountError::Invalid(
            "a balance adjustment needs a reason".into(),
        ));
    }
    store
        .credit_user(id, amount, LedgerKind::Admin, reason.trim())
        .await?;
    live_user(store, id).await
}
