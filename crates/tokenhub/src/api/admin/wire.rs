//! JSON shapes shared by the management handlers. Money is a decimal USD string
//! (`"4.999981"`, exact, never a float); times are Unix milliseconds.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::error::ManageError;
use crate::ledger::money::Nanos;
use crate::store::{KeyLimits, KeyRow, UserDetail, UserRow};

pub fn usd(amount: Nanos) -> String {
    amount.to_usd_string()
}

/// Parses a decimal USD string from a request field named `field`.
pub fn parse_usd(field: &str, text: &str) -> Result<Nanos, ManageError> {
    text.trim()
        .parse()
        .map_err(|e| ManageError::invalid(format!("{field}: {e}")))
}

/// For PATCH bodies: tells a missing member (`None`) from an explicit `null`
/// (`Some(None)`), so `null` can clear a limit while omission leaves it alone.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    /// user, admin or root.
    pub role: String,
    /// active, disabled or deleted.
    pub status: String,
    /// Decimal USD.
    pub balance_usd: String,
    /// Default requests-per-minute limit for keys without their own.
    pub rpm_limit: Option<i64>,
    /// Default tokens-per-minute limit for keys without their own.
    pub tpm_limit: Option<i64>,
    pub created_at: Option<i64>,
    /// A system account (`~anonymous`): its role and status cannot change.
    pub system: bool,
}

impl UserView {
    pub fn from_detail(detail: &UserDetail) -> UserView {
        UserView {
            created_at: Some(detail.created_at),
            rpm_limit: detail.limits.rpm,
            tpm_limit: detail.limits.tpm,
            ..UserView::from_row(&detail.user)
        }
    }

    pub fn from_row(user: &UserRow) -> UserView {
        UserView {
            id: user.id,
            name: user.name.clone(),
            role: user.role.clone(),
            status: user.status.clone(),
            balance_usd: usd(user.balance),
            rpm_limit: None,
            tpm_limit: None,
            created_at: None,
            system: crate::accounts::is_system_user(&user.name),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the key, e.g. `sk-AbCd…`; the full key is never shown again.
    pub prefix: String,
    /// active or disabled.
    pub status: String,
    /// `null` = every model.
    pub allowed_models: Option<Vec<String>>,
    /// Spend limit of the key in USD; `null` = none (the balance still applies).
    pub quota_usd: Option<String>,
    pub spent_usd: String,
    pub expires_at: Option<i64>,
    /// Client IPs/CIDRs allowed; `null` = any.
    pub allowed_ips: Option<Vec<String>>,
    /// `null` = the owner's default.
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub created_at: i64,
}

impl KeyView {
    pub fn new(key: &KeyRow, limits: &KeyLimits) -> KeyView {
        KeyView {
            id: key.id,
            user_id: key.user_id,
            name: key.name.clone(),
            prefix: key.key_prefix.clone(),
            status: key.status.clone(),
            allowed_models: key.allowed_models.clone(),
            quota_usd: key.quota.map(usd),
            spent_usd: usd(key.spent),
            expires_at: key.expires_at,
            allowed_ips: limits.allowed_ips.clone(),
            rpm_limit: limits.rpm,
            tpm_limit: limits.tpm,
            created_at: key.created_at,
        }
    }
}

/// `limit` and `offset` of list endpoints.
#[derive(Deserialize, utoipa::IntoParams, Clone, Copy)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

impl PageParams {
    pub fn bounded(&self) -> (i64, i64) {
        (
            self.limit.unwrap_or(50).clamp(1, 500),
            self.offset.unwrap_or(0).max(0),
        )
    }
}
