//! Phase 1: who is calling. The bearer token is hashed and looked up in the snapshot.

use std::sync::Arc;

use super::RelayError;
use crate::accounts::api_key;
use crate::catalog::{Catalog, KeyEntry};
use crate::store::now_ms;

pub fn api_key(catalog: &Catalog, bearer: Option<&str>) -> Result<Arc<KeyEntry>, RelayError> {
    let Some(secret) = bearer.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(RelayError::Unauthenticated(
            "You didn't provide an API key. Provide it in the Authorization header as 'Bearer sk-…'.".into(),
        ));
    };
    let Some(key) = catalog.key(&api_key::hash(secret)) else {
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
    owner_active(catalog, key.user_id)?;
    Ok(key.clone())
}

pub fn owner_active(catalog: &Catalog, user_id: i64) -> Result<(), RelayError> {
    if catalog.user(user_id).is_some_and(|user| user.active) {
        Ok(())
    } else {
        Err(RelayError::Unauthenticated(
            "The account that owns this API key is disabled.".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::money::Nanos;
    use crate::store::{KeyRow, UserRow};

    fn catalog(key_status: &str, expires_at: Option<i64>, user_status: &str) -> Catalog {
        let user = UserRow {
            id: 1,
            name: "u".into(),
            role: "user".into(),
            status: user_status.into(),
            balance: Nanos(0),
        };
        let key = KeyRow {
            id: 7,
            user_id: 1,
            name: String::new(),
            key_hash: api_key::hash("sk-good"),
            key_prefix: String::new(),
            status: key_status.into(),
            allowed_models: None,
            quota: None,
            spent: Nanos(0),
            expires_at,
            created_at: 0,
        };
        Catalog::build(&[user], &[key], &[], &[], |_| None)
    }

    fn message(result: Result<Arc<KeyEntry>, RelayError>) -> String {
        result
            .map(|k| k.id.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn accepts_a_live_key_and_explains_every_refusal() {
        assert_eq!(
            message(api_key(&catalog("active", None, "active"), Some("sk-good"))),
            "7"
        );
        assert!(
            message(api_key(&catalog("active", None, "active"), None)).contains("didn't provide")
        );
        assert!(
            message(api_key(&catalog("active", None, "active"), Some("sk-bad")))
                .contains("Incorrect API key")
        );
        assert!(
            message(api_key(
                &catalog("disabled", None, "active"),
                Some("sk-good")
            ))
            .contains("disabled")
        );
        assert!(
            message(api_key(
                &catalog("active", Some(1), "active"),
                Some("sk-good")
            ))
            .contains("expired")
        );
        assert!(
            message(api_key(
                &catalog("active", None, "disabled"),
                Some("sk-good")
            ))
            .contains("account")
        );
    }
}
