//! Channel health and the test actions: `/api/admin/channels/{id}/health`, `…/test`, and
//! `/api/admin/channels/check`, which tests every model mapping of every channel (admin). Health is this gateway process's view: circuit state, cooldown, EWMA latency,
//! successes and failures since start.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, ManageError, Path, Result};
use crate::accounts::Role;
use crate::api::AppState;
use crate::relay::probe::ProbeError;
use crate::store::ChannelRow;

#[derive(Serialize, ToSchema)]
pub struct HealthView {
    pub channel_id: i64,
    /// `closed` (healthy), `open` (skipped until the cooldown ends), `half_open` (the next
    /// request probes it), `disabled` (its credential was rejected) or `not_serving` (it
    /// is switched off or has no API key; `disabled_reason` says which and what to do).
    pub state: String,
    pub cooldown_remaining_ms: Option<u64>,
    pub disabled_reason: Option<String>,
    /// Moving average of the time to an answer, in milliseconds.
    pub ewma_latency_ms: Option<f64>,
    pub successes: u64,
    pub failures: u64,
    /// successes / (successes + failures), when there were any.
    pub success_rate: Option<f64>,
    /// Each upstream key's own circuit, in the channel's order (empty without keys).
    pub keys: Vec<KeyHealthView>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyHealthView {
    /// Position of the key in the channel's list.
    pub index: usize,
    /// e.g. `sk-…abcd`; the key itself is never shown.
    pub masked: String,
    /// `closed`, `open`, `half_open` or `disabled` (the upstream rejected it).
    pub state: String,
    pub cooldown_remaining_ms: Option<u64>,
    /// Why the key is disabled: the upstream's status and message.
    pub disabled_reason: Option<String>,
    pub successes: u64,
    pub failures: u64,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct TestRequest {
    /// Public model to test with; default: the first model the channel serves.
    pub model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TestResult {
    pub ok: bool,
    pub model: String,
    /// The id the upstream was asked for (the channel's `model_map` of `model`).
    pub upstream_model: String,
    /// The upstream does not serve `upstream_model` (unknown or retired id): fix the
    /// channel's `model_map`; the error names both ids and quotes the upstream.
    pub model_rejected: bool,
    pub latency_ms: u64,
    /// The upstream's HTTP status when it answered with an error.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// One result per upstream key (every key is tested).
    pub keys: Vec<KeyTestView>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyTestView {
    pub index: usize,
    pub masked: String,
    pub ok: bool,
    pub latency_ms: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The channel's health as this gateway sees it.
#[utoipa::path(get, path = "/api/admin/channels/{id}/health", tag = "catalog",
    params(("id" = i64, Path)),
    responses((status = 200, body = HealthView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<HealthView>> {
    caller.require(Role::Admin)?;
    let row = stored_channel(&state, id).await?;
    // The channel's current keys come from the snapshot; a channel that is not routed
    // (disabled, or without a key) is reported as not serving, with the reason.
    let routed = state.relay.catalog.load().channel(id);
    let keys = routed
        .as_ref()
        .map(|channel| channel.keys.clone())
        .unwrap_or_default();
    let mut report = state.relay.health.report(id, &keys, Instant::now()).await;
    if routed.is_none() {
        report.state = "not_serving";
        report.disabled_reason = Some(not_serving_reason(&row));
    }
    let total = report.successes + report.failures;
    Ok(Json(HealthView {
        channel_id: report.channel_id,
        state: report.state.to_string(),
        cooldown_remaining_ms: report.cooldown_remaining_ms,
        disabled_reason: report.disabled_reason,
        ewma_latency_ms: report.ewma_latency_ms,
        successes: report.successes,
        failures: report.failures,
        success_rate: (total > 0).then(|| report.successes as f64 / total as f64),
        keys: report
            .keys
            .into_iter()
            .map(|key| KeyHealthView {
                index: key.index,
                masked: key.masked,
                state: key.state.to_string(),
                cooldown_remaining_ms: key.cooldown_remaining_ms,
                disabled_reason: key.disabled_reason,
                successes: key.successes,
                failures: key.failures,
            })
            .collect(),
    }))
}

async fn stored_channel(state: &AppState, id: i64) -> Result<ChannelRow> {
    state
        .store
        .all_channels()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ManageError::not_found(format!("no channel with id {id}")))
}

/// Why a stored channel is not in the routing snapshot, as the fix the operator makes:
/// switched off, or without a key (naming the preset's environment variable).
fn not_serving_reason(row: &ChannelRow) -> String {
    let has_stored_key = row.api_key.as_deref().is_some_and(|k| !k.trim().is_empty());
    match (&row.api_key_env, has_stored_key) {
        _ if !row.enabled => "disabled: enable it to serve requests".into(),
        (Some(env), false) => format!("no API key: set {env} or add a key in the channel form"),
        (None, false) => "no API key: add one in the channel form".into(),
        (_, true) => "not loaded yet: the gateway picks changes up at its next reload".into(),
    }
}

/// Sends a one-token request through the channel and reports latency and result. A
/// passing test closes an open circuit. Nothing is billed.
#[utoipa::path(post, path = "/api/admin/channels/{id}/test", tag = "catalog",
    params(("id" = i64, Path)), request_body = TestRequest,
    responses((status = 200, body = TestResult), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<TestRequest>,
) -> Result<Json<TestResult>> {
    caller.require(Role::Admin)?;
    let row = stored_channel(&state, id).await?;
    let result = state
        .relay
        .probe_channel(id, body.model.as_deref())
        .await
        .map_err(|e| match e {
            ProbeError::NotUsable(_) => ManageError::invalid(not_serving_reason(&row)),
            other => ManageError::invalid(other.to_string()),
        })?;
    Ok(Json(TestResult {
        ok: result.ok,
        model: result.model,
        upstream_model: result.upstream_model,
        model_rejected: result.model_rejected,
        latency_ms: result.latency_ms,
        status: result.status,
        error: result.error,
        keys: result
            .keys
            .into_iter()
            .map(|key| KeyTestView {
                index: key.index,
                masked: key.masked,
                ok: key.ok,
                latency_ms: key.latency_ms,
                status: key.status,
                error: key.error,
            })
            .collect(),
    }))
}

/// One mapping's result in a check of all channels.
#[derive(Serialize, ToSchema)]
pub struct MappingCheckView {
    pub channel_id: i64,
    pub channel: String,
    /// The public model name.
    pub model: String,
    /// The id the upstream was asked for.
    pub upstream_model: String,
    pub ok: bool,
    /// The upstream does not serve `upstream_model` (unknown or retired id).
    pub model_rejected: bool,
    pub status: Option<u16>,
    /// Names both ids and quotes the upstream when the model is not served.
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckAllResult {
    /// Whether every mapping passed.
    pub ok: bool,
    pub mappings: Vec<MappingCheckView>,
}

/// Sends a one-token request for every model mapping of every channel with a key (with
/// its first key, one at a time) and reports each, so a retired upstream id shows up
/// before clients hit it. Nothing is billed and channel health is left alone.
#[utoipa::path(post, path = "/api/admin/channels/check", tag = "catalog",
    responses((status = 200, body = CheckAllResult), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn check_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckAllResult>> {
    caller.require(Role::Admin)?;
    let relay = &state.relay;
    let catalog = relay.catalog.load_full();
    let checks = crate::relay::mapping_check::check_all(
        &catalog,
        &relay.clients,
        relay.policy.deadlines.first_byte,
    )
    .await;
    let mappings: Vec<MappingCheckView> = checks
        .into_iter()
        .map(|c| MappingCheckView {
            channel_id: c.channel_id,
            channel: c.channel,
            model: c.model,
            upstream_model: c.upstream_model,
            ok: c.ok,
            model_rejected: c.model_rejected,
            status: c.status,
            error: c.error,
        })
        .collect();
    Ok(Json(CheckAllResult {
        ok: mappings.iter().all(|m| m.ok),
        mappings,
    }))
}
