//! A user's own API keys: `/api/me/keys`. Every route works on the caller's keys only;
//! another user's key id answers 404, exactly like an id that does not exist.
//! Admins list every key (`/api/admin/keys`) and reach any through
//! `/api/admin/keys/{id}` (audited).

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, ManageError, Path, Query, Result};
use super::wire::{KeyView, PageParams, nullable, parse_usd};
use crate::accounts::keys::{self, KeyPatch};
use crate::accounts::{self as ops, KeyOptions, Role, audit};
use crate::api::AppState;
use crate::store::{KeyLimits, KeyQuery, Store};

/// Live keys one user may hold: keeps the snapshot and lists bounded.
const MAX_KEYS_PER_USER: usize = 200;

#[derive(Deserialize, ToSchema, Default)]
pub struct NewKeyBody {
    #[serde(default)]
    pub name: String,
    /// `null`/absent = every model.
    pub allowed_models: Option<Vec<String>>,
    /// Spend limit in decimal USD.
    pub quota_usd: Option<String>,
    /// Unix ms.
    pub expires_at: Option<i64>,
    /// IPs or CIDRs, e.g. `["10.0.0.0/8", "203.0.113.7"]`.
    pub allowed_ips: Option<Vec<String>>,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: KeyView,
    /// The full key. Shown only in this response; store it now.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyView>,
}

/// Omitted members stay as they are; `null` clears a setting.
#[derive(Deserialize, ToSchema, Default)]
pub struct KeyPatchBody {
    pub name: Option<String>,
    /// false disables the key (it stops working within the reload interval); true re-enables it.
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub quota_usd: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub expires_at: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_ips: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub tpm_limit: Option<Option<i64>>,
}

/// The keys of `user_id` that still exist (revoked ones are history only).
pub async fn list_of(store: &Store, user_id: i64) -> Result<Vec<KeyView>> {
    let limits = store.key_limits_of_user(user_id).await?;
    Ok(store
        .keys_of_user(user_id)
        .await?
        .iter()
        .filter(|key| key.status != "revoked")
        .map(|key| KeyView::new(key, &limits.get(&key.id).cloned().unwrap_or_default()))
        .collect())
}

/// The caller's keys (prefixes only).
#[utoipa::path(get, path = "/api/me/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<KeyList>> {
    Ok(Json(KeyList {
        data: list_of(&state.store, caller.user.id).await?,
    }))
}

/// Create a key; the response holds the full key, once.
#[utoipa::path(post, path = "/api/me/keys", tag = "keys", request_body = NewKeyBody,
    responses((status = 201, body = CreatedKey), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>)> {
    if list_of(&state.store, caller.user.id).await?.len() >= MAX_KEYS_PER_USER {
        return Err(ManageError::invalid(format!(
            "at most {MAX_KEYS_PER_USER} keys per account; delete some first"
        )));
    }
    if body.name.chars().count() > 128 {
        return Err(ManageError::invalid(
            "a key name has at most 128 characters",
        ));
    }
    let quota = body
        .quota_usd
        .as_deref()
        .map(|q| parse_usd("quota_usd", q))
        .transpose()?;
    let options = KeyOptions {
        name: body.name,
        allowed_models: body.allowed_models,
        quota,
        expires_at: body.expires_at,
        limits: KeyLimits {
            allowed_ips: body.allowed_ips,
            rpm: body.rpm_limit,
            tpm: body.tpm_limit,
        },
    };
    let (key, secret) = ops::issue_key(&state.store, &caller.user, options).await?;
    let limits = state.store.key_limits(key.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: KeyView::new(&key, &limits),
            secret,
        }),
    ))
}

/// One of the caller's keys.
#[utoipa::path(get, path = "/api/me/keys/{id}", tag = "keys", params(("id" = i64, Path)),
    responses((status = 200, body = KeyView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<KeyView>> {
    let key = keys::owned_key(&state.store, caller.user.id, id).await?;
    let limits = state.store.key_limits(id).await?;
    Ok(Json(KeyView::new(&key, &limits)))
}

/// Rename, disable/re-enable, or change a key's limits.
#[utoipa::path(patch, path = "/api/me/keys/{id}", tag = "keys", params(("id" = i64, Path)),
    request_body = KeyPatchBody,
    responses((status = 200, body = KeyView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<KeyPatchBody>,
) -> Result<Json<KeyView>> {
    let patch = patch_of(body)?;
    let (key, limits) = keys::update(&state.store, caller.user.id, id, patch).await?;
    Ok(Json(KeyView::new(&key, &limits)))
}

/// Delete a key: it is revoked (stops working within the reload interval); its usage
/// history stays.
#[utoipa::path(delete, path = "/api/me/keys/{id}", tag = "keys", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    keys::revoke(&state.store, caller.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn patch_of(body: KeyPatchBody) -> Result<KeyPatch> {
    let quota = match body.quota_usd {
        Some(Some(text)) => Some(Some(parse_usd("quota_usd", &text)?)),
        Some(None) => Some(None),
        None => None,
    };
    Ok(KeyPatch {
        name: body.name,
        enabled: body.enabled,
        allowed_models: body.allowed_models,
        quota,
        expires_at: body.expires_at,
        allowed_ips: body.allowed_ips,
        rpm: body.rpm_limit,
        tpm: body.tpm_limit,
    })
}

/// The owner of any live key, for admin routes.
async fn owner_of(state: &AppState, id: i64) -> Result<i64> {
    state
        .store
        .key_by_id(id)
        .await?
        .filter(|k| k.status != "revoked")
        .map(|k| k.user_id)
        .ok_or_else(|| ManageError::not_found(format!("no key with id {id}")))
}

/// Change any user's key, e.g. disable an abusive one (admin).
#[utoipa::path(patch, path = "/api/admin/keys/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body = KeyPatchBody,
    responses((status = 200, body = KeyView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn admin_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<KeyPatchBody>,
) -> Result<Json<KeyView>> {
    caller.require(Role::Admin)?;
    let owner = owner_of(&state, id).await?;
    let before = get_view(&state.store, owner, id).await?;
    let (key, limits) = keys::update(&state.store, owner, id, patch_of(body)?).await?;
    let after = KeyView::new(&key, &limits);
    let target = format!("key:{id}");
    audit::record(
        &state.store,
        &caller.actor(),
        "key.update",
        &target,
        Some(&before),
        Some(&after),
    )
    .await;
    Ok(Json(after))
}

/// Revoke any user's key (admin); its usage history stays.
#[utoipa::path(delete, path = "/api/admin/keys/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn admin_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    let owner = owner_of(&state, id).await?;
    let before = get_view(&state.store, owner, id).await?;
    keys::revoke(&state.store, owner, id).await?;
    let target = format!("key:{id}");
    audit::record(
        &state.store,
        &caller.actor(),
        "key.revoke",
        &target,
        Some(&before),
        None::<&()>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_view(store: &Store, owner: i64, id: i64) -> Result<KeyView> {
    let key = keys::owned_key(store, owner, id).await?;
    let limits = store.key_limits(id).await?;
    Ok(KeyView::new(&key, &limits))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyFilter {
    /// Substring of the owner's name, the key's name or its prefix, case-insensitive.
    pub search: Option<String>,
    /// active or disabled (revoked keys are never listed).
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OwnedKeyView {
    #[serde(flatten)]
    pub key: KeyView,
    /// The owner's user name.
    pub user_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct OwnedKeyPage {
    pub data: Vec<OwnedKeyView>,
    pub total: i64,
}

/// Every user's keys, newest first, searched by owner, key name or prefix (admin).
#[utoipa::path(get, path = "/api/admin/keys", tag = "admin", params(KeyFilter),
    responses((status = 200, body = OwnedKeyPage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn admin_list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<KeyFilter>,
) -> Result<Json<OwnedKeyPage>> {
    caller.require(Role::Admin)?;
    let (limit, offset) = PageParams {
        limit: filter.limit,
        offset: filter.offset,
    }
    .bounded();
    let query = KeyQuery {
        search: filter.search.filter(|s| !s.is_empty()),
        status: filter.status.filter(|s| !s.is_empty()),
        limit,
        offset,
    };
    let (keys, total) = state.store.search_keys(&query).await?;
    Ok(Json(OwnedKeyPage {
        data: keys
            .iter()
            .map(|listed| OwnedKeyView {
                key: KeyView::new(&listed.key, &listed.limits),
                user_name: listed.owner.clone(),
            })
            .collect(),
        total,
    }))
}
