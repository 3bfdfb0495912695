//! Balance lookups with an API key, for clients that already use them:
//! OpenAI's legacy `/v1/dashboard/billing/{subscription,usage}` and `/api/usage/key`.
//! They authenticate like the relay (the snapshot), and read live spend from the books.
//! The legacy shapes carry floats (USD, cents) because clients expect them; every other
//! management response carries exact decimal strings.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{Code, ErrorBody, ManageError, Query};
use super::wire::usd;
use crate::api::AppState;
use crate::api::api_key::{ApiCaller, api_key};
use crate::api::client_ip::ClientIp;
use crate::catalog::KeyEntry;
use crate::ledger::money::Nanos;
use crate::store::{GroupBy, UsageFilter};

/// What a key can still spend, and what it has spent, right now.
struct Standing {
    spent: Nanos,
    balance: Nanos,
    /// min(balance, quota − spent), never below zero.
    remaining: Nanos,
}

async fn standing(state: &AppState, key: &KeyEntry) -> Result<Standing, ManageError> {
    let books = &state.relay.books;
    let user = state
        .store
        .user_by_id(key.user_id)
        .await?
        .ok_or_else(|| ManageError::not_found("the key's owner no longer exists"))?;
    let balance = user.balance - books.unflushed(key.user_id);
    let stored_spent = state
        .store
        .key_by_id(key.id)
        .await?
        .map_or(Nanos::ZERO, |k| k.spent);
    let spent = stored_spent + books.key_unflushed(key.id);
    let mut remaining = balance;
    if let Some(quota) = key.quota {
        remaining = remaining.min(quota - spent);
    }
    Ok(Standing {
        spent,
        balance,
        remaining: remaining.max(Nanos::ZERO),
    })
}

async fn authenticate(
    state: &AppState,
    client: ClientIp,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<KeyEntry>, crate::relay::RelayError> {
    state
        .relay
        .authenticate(api_key(headers, false).as_deref(), client.0)
        .await
        .map(|(_, key)| key)
}

fn cents(amount: Nanos) -> f64 {
    amount.as_usd_f64() * 100.0
}

#[derive(Serialize, ToSchema)]
pub struct Subscription {
    pub object: &'static str,
    pub has_payment_method: bool,
    /// Spent + remaining, USD: `hard_limit_usd − total_usage/100` is what is left.
    pub hard_limit_usd: f64,
    pub soft_limit_usd: f64,
    pub system_hard_limit_usd: f64,
    /// Unix seconds; 0 = no expiry.
    pub access_until: i64,
}

/// OpenAI-legacy subscription shape for the calling key (`Authorization: Bearer sk-…`).
#[utoipa::path(get, path = "/v1/dashboard/billing/subscription", tag = "compatibility",
    responses((status = 200, body = Subscription), (status = 401, description = "OpenAI-shaped error")),
    security(("api_key" = [])))]
pub async fn subscription(
    State(state): State<AppState>,
    ApiCaller { key, .. }: ApiCaller,
) -> Response {
    match standing(&state, &key).await {
        Ok(standing) => {
            let limit = (standing.spent + standing.remaining).as_usd_f64();
            Json(Subscription {
                object: "billing_subscription",
                has_payment_method: false,
                hard_limit_usd: limit,
                soft_limit_usd: limit,
                system_hard_limit_usd: limit,
                access_until: key.expires_at.map_or(0, |ms| ms / 1000),
            })
            .into_response()
        }
        Err(error) => error.into_response(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DateRange {
    /// `YYYY-MM-DD` (UTC), inclusive.
    pub start_date: Option<String>,
    /// `YYYY-MM-DD` (UTC), exclusive.
    pub end_date: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DailyCost {
    /// Unix seconds of the day's start.
    pub timestamp: i64,
    /// Cents.
    pub cost: f64,
}

#[derive(Serialize, ToSchema)]
pub struct BillingUsage {
    pub object: &'static str,
    /// Cents spent by the calling key in the range.
    pub total_usage: f64,
    pub daily_costs: Vec<DailyCost>,
}

fn day_ms(text: &str) -> Result<i64, ManageError> {
    let invalid = || ManageError::invalid(format!("'{text}' is not a YYYY-MM-DD date"));
    let mut parts = text.trim().splitn(3, '-').map(str::parse::<i32>);
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let day = u8::try_from(day).map_err(|_| invalid())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
    Ok(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// OpenAI-legacy usage shape (`total_usage` in cents) for the calling key.
#[utoipa::path(get, path = "/v1/dashboard/billing/usage", tag = "compatibility", params(DateRange),
    responses((status = 200, body = BillingUsage), (status = 401, description = "OpenAI-shaped error"),
        (status = 400, body = ErrorBody, description = "a date that is not YYYY-MM-DD")),
    security(("api_key" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    ApiCaller { key, .. }: ApiCaller,
    Query(range): Query<DateRange>,
) -> Response {
    let result = async {
        let filter = UsageFilter {
            key_id: Some(key.id),
            from: range.start_date.as_deref().map(day_ms).transpose()?,
            to: range.end_date.as_deref().map(day_ms).transpose()?,
            ..UsageFilter::default()
        };
        let days = state.store.usage_aggregates(&filter, GroupBy::Day).await?;
        let total = days.iter().fold(Nanos::ZERO, |sum, d| sum + d.cost);
        let daily_costs = days
            .iter()
            .map(|d| DailyCost {
                timestamp: day_ms(&d.group).map_or(0, |ms| ms / 1000),
                cost: cents(d.cost),
            })
            .collect();
        Ok::<_, ManageError>(BillingUsage {
            object: "list",
            total_usage: cents(total),
            daily_costs,
        })
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyUsage {
    pub key_id: i64,
    pub name: String,
    pub prefix: String,
    /// The key's spend limit; `null` = none.
    pub quota_usd: Option<String>,
    pub spent_usd: String,
    /// What this key can still spend: min(owner's balance, quota − spent).
    pub remaining_usd: String,
    /// The owner's balance right now.
    pub balance_usd: String,
    /// Unix ms; `null` = never.
    pub expires_at: Option<i64>,
    pub allowed_models: Option<Vec<String>>,
}

/// Quota, spend, remaining balance and expiry of the calling key (`Bearer sk-…`).
#[utoipa::path(get, path = "/api/usage/key", tag = "compatibility",
    responses((status = 200, body = KeyUsage), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn key_usage(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
) -> Result<Json<KeyUsage>, ManageError> {
    let key = authenticate(&state, client, &headers)
        .await
        .map_err(|e| ManageError::new(Code::Unauthenticated, e.to_string()))?;
    let standing = standing(&state, &key).await?;
    let row = state
        .store
        .key_by_id(key.id)
        .await?
        .ok_or_else(|| ManageError::not_found("key not found"))?;
    let mut allowed_models: Option<Vec<String>> = key
        .allowed_models
        .as_ref()
        .map(|m| m.iter().cloned().collect());
    if let Some(models) = allowed_models.as_mut() {
        models.sort();
    }
    Ok(Json(KeyUsage {
        key_id: key.id,
        name: row.name,
        prefix: row.key_prefix,
        quota_usd: key.quota.map(usd),
        spent_usd: usd(standing.spent),
        remaining_usd: usd(standing.remaining),
        balance_usd: usd(standing.balance),
        expires_at: key.expires_at,
        allowed_models,
    }))
}
