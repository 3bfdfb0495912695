//! Phase 1: who is calling. The bearer token is hashed and looked up in the key cache
//! (`catalog::accounts`): a cached key is checked without I/O; only an unknown hash waits
//! for a database lookup.

use std::sync::Arc;

use super::RelayError;
use crate::accounts::api_key;
use crate::catalog::accounts::{Lookup, LookupError};
use crate::catalog::{KeyEntry, UserEntry};
use crate::store::now_ms;

/// The trimmed secret and its hash, or why there is none.
pub fn bearer(bearer: Option<&str>) -> Result<(&str, String), RelayError> {
    let Some(secret) = bearer.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(RelayError::Unauthenticated(
            "You didn't provide an API key. Provide it in the Authorization header as 'Bearer sk-…'.".into(),
        ));
    };
    Ok((secret, api_key::hash(secret)))
}

/// Accepts a looked-up key, or explains the refusal.
pub fn accept(lookup: Lookup, secret: &str) -> Result<(Arc<KeyEntry>, Arc<UserEntry>), RelayError> {
    let Lookup::Found(key, owner) = lookup else {
        return Err(RelayError::Unauthenticated(format!(
            "Incorrect API key provided: {}.",
            api_key::display_prefix(secret)
        )));
    };
    if !key.enabled {
        return Err(RelayError::Unauthenticated(
            "This API key is disabled.".into(),
        ));
    }
    if key.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(RelayError::Unauthenticated(
            "This API key has expired.".into(),
        ));
    }
    let owner = active_owner(Some(owner))?;
    Ok((key, owner))
}

/// The owner, if it exists and is active.
pub fn active_owner(owner: Option<Arc<UserEntry>>) -> Result<Arc<UserEntry>, RelayError> {
    owner.filter(|user| user.active).ok_or_else(|| {
        RelayError::Unauthenticated("The account that owns this API key is disabled.".into())
    })
}

pub fn lookup_failed(error: LookupError) -> RelayError {
    match error {
        LookupError::Throttled(retry_after) => RelayError::KeyLookupThrottled { retry_after },
        LookupError::Store(error) => {
            tracing::warn!(%error, "key lookup failed");
            RelayError::KeyLookupFailed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(key_enabled: bool, expires_at: Option<i64>, user_active: bool) -> Lookup {
        let owner = UserEntry {
            id: 1,
            name: "u".into(),
            role: "user".into(),
            active: user_active,
            rpm_limit: None,
            tpm_limit: None,
        };
        let key = KeyEntry {
            id: 7,
            user_id: 1,
            name: String::new(),
            enabled: key_enabled,
            allowed_models: None,
            quota: None,
            expires_at,
            allowed_ips: None,
            rpm_limit: None,
            tpm_limit: None,
        };
        Lookup::Found(Arc::new(key), Arc::new(owner))
    }

    fn message(lookup: Lookup) -> String {
        accept(lookup, "sk-good")
            .map(|(k, _)| k.id.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn accepts_a_live_key_and_explains_every_refusal() {
        assert_eq!(message(found(true, None, true)), "7");
        assert!(
            bearer(None)
                .unwrap_err()
                .to_string()
                .contains("didn't provide")
        );
        assert_eq!(bearer(Some(" sk-x ")).unwrap().0, "sk-x");
        assert!(message(Lookup::Missing).contains("Incorrect API key"));
        assert!(message(found(false, None, true)).contains("disabled"));
        assert!(message(found(true, Some(1), true)).contains("expired"));
        assert!(message(found(true, None, false)).contains("account"));
    }
}
