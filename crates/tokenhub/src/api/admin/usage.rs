//! Usage records and aggregates: `/api/me/usage…` (the caller's own, always) and
//! `/api/admin/usage…` (everyone's, admin). Listings page newest first; exports are CSV.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::csv;
use super::error::{ErrorBody, ManageError, Query, Result};
use super::wire::{PageParams, usd};
use crate::accounts::Role;
use crate::api::AppState;
use crate::store::{
    GroupBy, StatusFilter, TopAggregates, UsageAggregate, UsageFilter, UsageRecord,
};

/// Rows in one CSV export at most.
const MAX_EXPORT_ROWS: i64 = 100_000;

/// A listing counts matching records up to this many (or to the end of the page asked
/// for, if further): counting every match of a large history reads every match.
const LISTING_COUNT_CAP: i64 = 10_000;

#[derive(Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Admin routes only (ignored on `/api/me/…`).
    pub user_id: Option<i64>,
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub channel_id: Option<i64>,
    /// `ok` (< 400), `error` (≥ 400) or an HTTP status such as `429`.
    pub status: Option<String>,
    /// Unix ms, inclusive.
    pub from: Option<i64>,
    /// Unix ms, exclusive.
    pub to: Option<i64>,
    /// Listing: 1-500, default 50. Summary by model, user or key: how many groups to
    /// answer, those with the most requests (1-1000, default 100); the rest are summed
    /// in `others`.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// Summary: `day` (default), `model`, `user` or `key`.
    pub group_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub id: i64,
    pub request_id: String,
    pub user_id: i64,
    pub key_id: i64,
    pub model: String,
    pub channel_id: Option<i64>,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache, billed at the cache-write price.
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written to a 1-hour cache (its own price).
    pub cache_write_1h_tokens: u64,
    /// The part of `cached_tokens` read from an explicit cache (its own price).
    pub explicit_cached_tokens: u64,
    /// Which prices applied: `standard`, or the name of one of the model's price tiers.
    #[schema(example = "standard")]
    pub price_tier: String,
    pub completion_tokens: u64,
    pub cost_usd: String,
    pub status: u16,
    pub error: Option<String>,
    pub stream: bool,
    /// Tokens counted locally because the upstream reported none.
    pub estimated: bool,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub created_at: i64,
}

impl UsageView {
    fn new(id: i64, r: UsageRecord) -> UsageView {
        UsageView {
            id,
            request_id: r.request_id,
            user_id: r.user_id,
            key_id: r.key_id,
            model: r.model,
            channel_id: r.channel_id,
            prompt_tokens: r.prompt_tokens,
            cached_tokens: r.cached_tokens,
            cache_write_tokens: r.cache_write_tokens,
            cache_write_1h_tokens: r.cache_write_1h_tokens,
            explicit_cached_tokens: r.explicit_cached_tokens,
            price_tier: r.price_tier,
            completion_tokens: r.completion_tokens,
            cost_usd: usd(r.cost),
            status: r.status,
            error: r.error,
            stream: r.stream,
            estimated: r.estimated,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            created_at: r.created_at,
        }
    }
}

impl UsageView {
    /// A user's own record: an operator-side failure reads as a plain sentence (the
    /// stored detail, with environment variable names or socket errors, is for admins).
    fn for_end_user(mut self) -> Self {
        if let Some(plain) = crate::api::error::plain_failure(self.status) {
            self.error = self.error.map(|_| plain.to_string());
        }
        self
    }
}

#[derive(Serialize, ToSchema)]
pub struct UsagePage {
    pub data: Vec<UsageView>,
    /// Records matching the filter, counted up to 10,000 or to the end of this page,
    /// whichever is further; see `total_capped`.
    pub total: i64,
    /// More records match than `total` (a lower bound then: show it as "10,000+").
    pub total_capped: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AggregateView {
    /// The day (`YYYY-MM-DD`, UTC), model id, user id or key id.
    pub group: String,
    pub requests: i64,
    pub errors: i64,
    /// errors / requests.
    pub error_rate: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: String,
    /// From the hourly latency histogram: the upper bound of the bucket holding the
    /// percentile (see docs/usage-history.md).
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

impl From<UsageAggregate> for AggregateView {
    fn from(a: UsageAggregate) -> Self {
        AggregateView {
            error_rate: if a.requests > 0 {
                a.errors as f64 / a.requests as f64
            } else {
                0.0
            },
            group: a.group,
            requests: a.requests,
            errors: a.errors,
            prompt_tokens: a.prompt_tokens,
            completion_tokens: a.completion_tokens,
            cost_usd: usd(a.cost),
            latency_p50_ms: a.latency_p50_ms,
            latency_p95_ms: a.latency_p95_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AggregateList {
    pub group_by: String,
    /// By day: every day with usage, oldest first. By model, user or key: the `limit`
    /// groups with the most requests (then the highest cost), most first.
    pub data: Vec<AggregateView>,
    /// How many groups matched (`data` holds them all when by day).
    pub total_groups: usize,
    /// The groups beyond `data`, summed (group `others`); absent when `data` holds all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub others: Option<AggregateView>,
}

/// A summary by model, user or key answers this many groups unless `limit` says.
const SUMMARY_GROUPS: i64 = 100;
const MAX_SUMMARY_GROUPS: usize = 1_000;

/// The end of year 9999 UTC: later (or negative) times are typos, and hour arithmetic on
/// them would overflow.
const LATEST_TIME_MS: i64 = 253_402_300_799_999;

/// The filter a caller may apply: a user's own records only, unless `all` (admin).
fn filter(params: &UsageParams, own: Option<i64>) -> Result<UsageFilter> {
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some("ok") => Some(StatusFilter::Ok),
        Some("error") => Some(StatusFilter::Error),
        Some(code) => Some(StatusFilter::Code(code.parse().map_err(|_| {
            ManageError::invalid("status is ok, error or an HTTP status code")
        })?)),
    };
    for (name, time) in [("from", params.from), ("to", params.to)] {
        if time.is_some_and(|ms| !(0..=LATEST_TIME_MS).contains(&ms)) {
            return Err(ManageError::invalid(format!(
                "{name} is a time in Unix milliseconds, from 0 to {LATEST_TIME_MS}"
            )));
        }
    }
    Ok(UsageFilter {
        user_id: own.or(params.user_id),
        key_id: params.key_id,
        model: params.model.clone().filter(|m| !m.is_empty()),
        channel_id: params.channel_id,
        status,
        from: params.from,
        to: params.to,
    })
}

fn group_by(params: &UsageParams, admin: bool) -> Result<(GroupBy, &'static str)> {
    Ok(match params.group_by.as_deref().unwrap_or("day") {
        "day" => (GroupBy::Day, "day"),
        "model" => (GroupBy::Model, "model"),
        "key" => (GroupBy::Key, "key"),
        "user" if admin => (GroupBy::User, "user"),
        other => {
            return Err(ManageError::invalid(format!(
                "group_by '{other}' is not one of day, model, key{}",
                if admin { ", user" } else { "" }
            )));
        }
    })
}

async fn page(state: &AppState, params: &UsageParams, own: Option<i64>) -> Result<Json<UsagePage>> {
    let (limit, offset) = PageParams {
        limit: params.limit,
        offset: params.offset,
    }
    .bounded();
    let filter = filter(params, own)?;
    let records = state.store.usage_page(&filter, limit, offset).await?;
    let count_cap = LISTING_COUNT_CAP.max(offset.saturating_add(limit));
    let count = state.store.usage_count_capped(&filter, count_cap).await?;
    Ok(Json(UsagePage {
        data: records
            .into_iter()
            .map(|(id, r)| UsageView::new(id, r))
            .map(|view| match own {
                Some(_) => view.for_end_user(),
                None => view,
            })
            .collect(),
        total: count.total,
        total_capped: count.capped,
    }))
}

async fn summary(
    state: &AppState,
    params: &UsageParams,
    own: Option<i64>,
) -> Result<Json<AggregateList>> {
    let (group, name) = group_by(params, own.is_none())?;
    let filter = filter(params, own)?;
    let top = match group {
        GroupBy::Day => {
            let days = state.store.usage_aggregates(&filter, group).await?;
            TopAggregates {
                total_groups: days.len(),
                groups: days,
                others: None,
            }
        }
        _ => {
            let limit = params.limit.unwrap_or(SUMMARY_GROUPS);
            let top = usize::try_from(limit)
                .ok()
                .filter(|top| (1..=MAX_SUMMARY_GROUPS).contains(top))
                .ok_or_else(|| {
                    ManageError::invalid(format!(
                        "limit must be between 1 and {MAX_SUMMARY_GROUPS} for a summary by {name}"
                    ))
                })?;
            state
                .store
                .top_usage_aggregates(&filter, group, top)
                .await?
        }
    };
    Ok(Json(AggregateList {
        group_by: name.into(),
        data: top.groups.into_iter().map(AggregateView::from).collect(),
        total_groups: top.total_groups,
        others: top.others.map(AggregateView::from),
    }))
}

async fn export(state: &AppState, params: &UsageParams, own: Option<i64>) -> Result<Response> {
    let records = state
        .store
        .usage_page(&filter(params, own)?, MAX_EXPORT_ROWS, 0)
        .await?;
    let mut out = String::new();
    csv::write_row(
        &mut out,
        &[
            "id",
            "request_id",
            "created_at",
            "user_id",
            "key_id",
            "model",
            "channel_id",
            "status",
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "completion_tokens",
            "cost_usd",
            "stream",
            "estimated",
            "latency_ms",
            "ttft_ms",
            "error",
            "cache_write_1h_tokens",
            "explicit_cached_tokens",
            "price_tier",
        ],
    );
    for (id, r) in records {
        csv::write_row(
            &mut out,
            &[
                id.to_string(),
                r.request_id,
                csv::time(r.created_at),
                r.user_id.to_string(),
                r.key_id.to_string(),
                r.model,
                r.channel_id.map(|c| c.to_string()).unwrap_or_default(),
                r.status.to_string(),
                r.prompt_tokens.to_string(),
                r.cached_tokens.to_string(),
                r.cache_write_tokens.to_string(),
                r.completion_tokens.to_string(),
                usd(r.cost),
                r.stream.to_string(),
                r.estimated.to_string(),
                r.latency_ms.to_string(),
                r.ttft_ms.map(|t| t.to_string()).unwrap_or_default(),
                match (own, crate::api::error::plain_failure(r.status)) {
                    (Some(_), Some(plain)) if r.error.is_some() => plain.to_string(),
                    _ => r.error.unwrap_or_default(),
                },
                r.cache_write_1h_tokens.to_string(),
                r.explicit_cached_tokens.to_string(),
                r.price_tier,
            ],
        );
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"usage.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

/// The caller's usage records, newest first.
#[utoipa::path(get, path = "/api/me/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsagePage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn my_usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Json<UsagePage>> {
    page(&state, &params, Some(caller.user.id)).await
}

/// The caller's usage totals per day, model or key.
#[utoipa::path(get, path = "/api/me/usage/summary", tag = "usage", params(UsageParams),
    responses((status = 200, body = AggregateList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn my_summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Json<AggregateList>> {
    summary(&state, &params, Some(caller.user.id)).await
}

/// The caller's usage records as CSV (at most 100,000, newest first).
#[utoipa::path(get, path = "/api/me/usage/export", tag = "usage", params(UsageParams),
    responses((status = 200, body = String, content_type = "text/csv"), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn my_export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Response> {
    export(&state, &params, Some(caller.user.id)).await
}

/// Everyone's usage records, newest first (admin).
#[utoipa::path(get, path = "/api/admin/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsagePage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn all_usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Json<UsagePage>> {
    caller.require(Role::Admin)?;
    page(&state, &params, None).await
}

/// Usage totals per day, model, user or key (admin).
#[utoipa::path(get, path = "/api/admin/usage/summary", tag = "usage", params(UsageParams),
    responses((status = 200, body = AggregateList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn all_summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Json<AggregateList>> {
    caller.require(Role::Admin)?;
    summary(&state, &params, None).await
}

/// Everyone's usage records as CSV (admin; at most 100,000, newest first).
#[utoipa::path(get, path = "/api/admin/usage/export", tag = "usage", params(UsageParams),
    responses((status = 200, body = String, content_type = "text/csv"), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn all_export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Response> {
    caller.require(Role::Admin)?;
    export(&state, &params, None).await
}
