//! A user's own keys after creation: edit (name, status, limits), and delete (= revoke,
//! so usage history keeps its key). Every operation names the owner, and the store
//! matches on it, so one user can never reach another's key by id.

use std::net::IpAddr;
use std::str::FromStr;

use super::AccountError;
use crate::ledger::money::Nanos;
use crate::store::{KeyLimits, KeyRow, KeyUpdate, Store};

/// Bounds that keep one key's settings small (they are loaded into every snapshot).
const MAX_LIST_ENTRIES: usize = 256;

/// A change to a key; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub quota: Option<Option<Nanos>>,
    pub expires_at: Option<Option<i64>>,
    pub allowed_ips: Option<Option<Vec<String>>>,
    pub rpm: Option<Option<i64>>,
    pub tpm: Option<Option<i64>>,
}

/// Checks what a key may be given: non-negative quota, non-empty model names, valid
/// IPs/CIDRs, and positive RPM/TPM.
pub fn validate(
    quota: Option<Nanos>,
    allowed_models: Option<&[String]>,
    limits: &KeyLimits,
) -> Result<(), AccountError> {
    let invalid = |message: &str| Err(AccountError::Invalid(message.into()));
    if quota.is_some_and(|q| q < Nanos::ZERO) {
        return invalid("a key quota cannot be negative");
    }
    if let Some(models) = allowed_models {
        if models.iter().any(|m| m.trim().is_empty()) {
            return invalid("model names in an allow list must not be empty");
        }
        if models.len() > MAX_LIST_ENTRIES {
            return invalid("a model allow list has at most 256 entries");
        }
    }
    if let Some(ips) = &limits.allowed_ips {
        if ips.len() > MAX_LIST_ENTRIES {
            return invalid("an IP allow list has at most 256 entries");
        }
        if let Some(bad) = ips.iter().find(|ip| !is_ip_or_cidr(ip)) {
            return Err(AccountError::Invalid(format!(
                "'{bad}' is not an IP address or CIDR block (e.g. 10.0.0.0/8)"
            )));
        }
    }
    if limits.rpm.is_some_and(|v| v <= 0) || limits.tpm.is_some_and(|v| v <= 0) {
        return invalid("rpm_limit and tpm_limit must be positive (omit them for no limit)");
    }
    Ok(())
}

pub fn is_ip_or_cidr(text: &str) -> bool {
    ipnet::IpNet::from_str(text).is_ok() || IpAddr::from_str(text).is_ok()
}

/// A key of `owner_id`, or `NotFound` (also when it exists but belongs to someone else,
/// so ids of other users' keys are not disclosed).
pub async fn owned_key(store: &Store, owner_id: i64, key_id: i64) -> Result<KeyRow, AccountError> {
    store
        .key_by_id(key_id)
        .await?
        .filter(|k| k.user_id == owner_id && k.status != "revoked")
        .ok_or_else(|| AccountError::NotFound(format!("no key with id {key_id}")))
}

/// Applies `patch` to a key of `owner_id`; returns the key and its limits afterwards.
pub async fn update(
    store: &Store,
    owner_id: i64,
    key_id: i64,
    patch: KeyPatch,
) -> Result<(KeyRow, KeyLimits), AccountError> {
    let key = owned_key(store, owner_id, key_id).await?;
    let limits = store.key_limits(key_id).await?;
    let status = match patch.enabled {
        Some(true) => "active".to_string(),
        Some(false) => "disabled".to_string(),
        None => key.status.clone(),
    };
    let update = KeyUpdate {
        name: patch.name.unwrap_or(key.name),
        status,
        allowed_models: patch.allowed_models.unwrap_or(key.allowed_models),
        quota: patch.quota.unwrap_or(key.quota),
        expires_at: patch.expires_at.unwrap_or(key.expires_at),
        limits: KeyLimits {
            allowed_ips: patch.allowed_ips.unwrap_or(limits.allowed_ips),
            rpm: patch.rpm.unwrap_or(limits.rpm),
            tpm: patch.tpm.unwrap_or(limits.tpm),
        },
    };
    if update.name.chars().count() > 128 {
        return Err(AccountError::Invalid(
            "a key name has at most 128 characters".into(),
        ));
    }
    validate(
        update.quota,
        update.allowed_models.as_deref(),
        &update.limits,
    )?;
    store.update_key(key_id, owner_id, &update).await?;
    let key = owned_key(store, owner_id, key_id).await?;
    Ok((key, update.limits))
}

/// Revokes a key of `owner_id`: it stops working within the reload interval; its usage
/// records stay.
pub async fn revoke(store: &Store, owner_id: i64, key_id: i64) -> Result<KeyRow, AccountError> {
    let key = owned_key(store, owner_id, key_id).await?;
    store.set_key_status(key.id, "revoked").await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_limits_at_the_edges() {
        let ok = KeyLimits {
            allowed_ips: Some(vec![
                "10.0.0.0/8".into(),
                "::1".into(),
                "192.168.1.7".into(),
            ]),
            rpm: Some(1),
            tpm: Some(1),
        };
        assert!(validate(Some(Nanos::ZERO), Some(&["m".into()]), &ok).is_ok());
        let bad_ip = KeyLimits {
            allowed_ips: Some(vec!["10.0.0.0/33".into()]),
            ..Default::default()
        };
        assert!(validate(None, None, &bad_ip).is_err());
        let zero_rpm = KeyLimits {
            rpm: Some(0),
            ..Default::default()
        };
        assert!(validate(None, None, &zero_rpm).is_err());
        assert!(validate(Some(Nanos(-1)), None, &KeyLimits::default()).is_err());
        assert!(validate(None, Some(&[" ".into()]), &KeyLimits::default()).is_err());
    }
}
