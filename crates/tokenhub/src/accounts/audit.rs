//! The audit trail of admin actions. Written right after the action commits; a failed
//! audit write is logged loudly but does not undo (or hide) the action it describes.

use serde::Serialize;

use super::Actor;
use crate::store::{AuditEntry, Store};

pub async fn record<B: Serialize, A: Serialize>(
    store: &Store,
    actor: &Actor,
    action: &str,
    target: &str,
    before: Option<&B>,
    after: Option<&A>,
) {
    let json = |value: Option<String>| value.filter(|v| v != "null");
    let entry = AuditEntry {
        id: 0,
        actor_id: actor.user_id,
        actor_name: actor.name.clone(),
        action: action.into(),
        target: target.into(),
        before: json(before.and_then(|b| serde_json::to_string(b).ok())),
        after: json(after.and_then(|a| serde_json::to_string(a).ok())),
        created_at: 0,
    };
    if let Err(error) = store.append_audit(&entry).await {
        tracing::error!(%error, action, target, actor = %actor.name, "audit entry not written");
    }
}
