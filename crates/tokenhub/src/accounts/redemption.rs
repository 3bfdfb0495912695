//! Redemption codes: an admin creates N codes worth $X; a user redeems a code once.
//! Codes are `THC-` + 24 random base62 characters (≈143 bits), shown once at creation.

use super::{AccountError, Actor, Role, api_key};
use crate::ledger::money::Nanos;
use crate::store::{NewCodes, RedeemRefusal, RedemptionRow, Store};

const PREFIX: &str = "THC-";
const SECRET_LEN: usize = 24;
pub const MAX_CODES_PER_BATCH: usize = 1000;

/// Creates `count` codes; returns each with its secret (the only time it is visible).
pub async fn create(
    store: &Store,
    actor: &Actor,
    count: usize,
    amount: Nanos,
    batch: &str,
    expires_at: Option<i64>,
) -> Result<Vec<(RedemptionRow, String)>, AccountError> {
    if actor.role < Role::Admin {
        return Err(AccountError::Forbidden("only admins create codes".into()));
    }
    if !(1..=MAX_CODES_PER_BATCH).contains(&count) {
        return Err(AccountError::Invalid(format!(
            "count must be between 1 and {MAX_CODES_PER_BATCH}"
        )));
    }
    if amount <= Nanos::ZERO {
        return Err(AccountError::Invalid(
            "a code's amount must be positive".into(),
        ));
    }
    let secrets: Vec<String> = (0..count)
        .map(|_| api_key::random_token(PREFIX, SECRET_LEN))
        .collect();
    let codes: Vec<(String, String)> = secrets
        .iter()
        .map(|s| {
            let shown: String = s.chars().take(PREFIX.len() + 4).collect();
            (api_key::hash(s), format!("{shown}…"))
        })
        .collect();
    let new = NewCodes {
        codes: &codes,
        amount,
        batch,
        created_by: actor.user_id,
        expires_at,
    };
    let ids = store.create_redemption_codes(&new).await?;
    let rows = store.redemption_codes_by_id(&ids).await?;
    Ok(rows.into_iter().zip(secrets).collect())
}

/// Credits the code's amount to `user_id`; at most one caller ever succeeds per code.
pub async fn redeem(store: &Store, user_id: i64, code: &str) -> Result<Nanos, AccountError> {
    match store
        .redeem_code(&api_key::hash(code.trim()), user_id)
        .await?
    {
        Ok(amount) => Ok(amount),
        Err(RedeemRefusal::Unknown) => {
            Err(AccountError::NotFound(RedeemRefusal::Unknown.to_string()))
        }
        Err(refusal) => Err(AccountError::Conflict(refusal.to_string())),
    }
}
