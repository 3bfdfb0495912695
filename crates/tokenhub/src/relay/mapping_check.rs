//! Checks that every mapping (public model → upstream id) of every channel with a key
//! is still served, so a vendor retiring an id shows up at start-up and in
//! `tokenhub channels check`, not as client errors. One ping per mapping with the
//! channel's first key, one at a time; nothing is billed and channel health is left
//! alone (a retired id of one model says nothing about the channel's other models).

use std::sync::Arc;
use std::time::Duration;

use super::probe::{self, NOT_SERVED};
use crate::catalog::{Catalog, Channel};
use crate::providers::{Deadlines, FailureKind};
use crate::relay::clients::UpstreamClients;

/// One mapping's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MappingCheck {
    pub channel_id: i64,
    pub channel: String,
    pub model: String,
    pub upstream_model: String,
    pub ok: bool,
    /// The upstream does not serve `upstream_model` (unknown or retired id).
    pub model_rejected: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Checks every mapping of every usable channel that has a key.
pub async fn check_all(
    catalog: &Catalog,
    clients: &UpstreamClients,
    first_byte: Duration,
) -> Vec<MappingCheck> {
    let mut results = Vec::new();
    for channel in catalog.channels() {
        if channel.keys.is_empty() {
            continue;
        }
        for model in catalog.models_of(channel.id) {
            results.push(check_one(&channel, &model, clients, first_byte).await);
        }
    }
    results
}

async fn check_one(
    channel: &Arc<Channel>,
    model: &str,
    clients: &UpstreamClients,
    first_byte: Duration,
) -> MappingCheck {
    let upstream_model = channel.upstream_model(model).to_string();
    let client = clients.for_connect(channel.timeouts.connect);
    let deadlines = Deadlines {
        first_byte: channel.timeouts.first_token.unwrap_or(first_byte),
    };
    let secret = channel.keys.first().map(|k| k.secret.as_str());
    let outcome = probe::ping(
        &client,
        channel,
        secret,
        probe::ping_body(&upstream_model),
        deadlines,
    )
    .await;
    let (status, error) = match outcome {
        Ok(()) => (None, None),
        Err(failure) => match failure.kind {
            FailureKind::Status(NOT_SERVED) => (
                Some(NOT_SERVED),
                Some(probe::not_served_message(
                    model,
                    &upstream_model,
                    failure.message(),
                )),
            ),
            FailureKind::Status(status) => (Some(status), Some(failure.message().to_string())),
            _ => (None, Some(failure.message().to_string())),
        },
    };
    MappingCheck {
        channel_id: channel.id,
        channel: channel.name.clone(),
        model: model.to_string(),
        ok: error.is_none(),
        model_rejected: status == Some(NOT_SERVED),
        upstream_model,
        status,
        error,
    }
}

/// The start-up check: in the background, bounded by `limit` overall, each rejected
/// mapping logged as a warning with the upstream's message. Serving does not wait.
pub fn spawn_startup_check(
    catalog: Arc<arc_swap::ArcSwap<Catalog>>,
    clients: Arc<UpstreamClients>,
    first_byte: Duration,
    limit: Duration,
) {
    tokio::spawn(async move {
        let snapshot = catalog.load_full();
        let checks = check_all(&snapshot, &clients, first_byte);
        let Ok(results) = tokio::time::timeout(limit, checks).await else {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "start-up model check did not finish in time; run `tokenhub channels check`"
            );
            return;
        };
        for check in results.iter().filter(|c| !c.ok) {
            tracing::warn!(
                channel = %check.channel,
                model = %check.model,
                upstream_model = %check.upstream_model,
                status = check.status,
                model_rejected = check.model_rejected,
                error = check.error.as_deref().unwrap_or(""),
                "start-up model check: mapping failed"
            );
        }
        let failed = results.iter().filter(|c| !c.ok).count();
        tracing::info!(
            checked = results.len(),
            failed,
            "start-up model check finished"
        );
    });
}
