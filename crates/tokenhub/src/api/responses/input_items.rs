//! `GET /v1/responses/{id}/input_items`: the items a stored response was answered from, in
//! OpenAI's list shape (`object: "list"`, `data`, `first_id`, `last_id`, `has_more`),
//! paged with `limit` (1 to 100, default 20), `order` (`desc`, the default, or `asc`) and
//! `after` (an item id). As OpenAI lists them, a continued response's items include the
//! earlier turns' inputs and outputs. The caller's own responses only: another user's id
//! is a 404, as an unknown one is.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{chain, not_found};
use crate::api::AppState;
use crate::api::api_key::ApiCaller;
use crate::api::error::ApiError;
use crate::protocol::responses::items::listed_items;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    order: Option<String>,
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid_request(rejection.status(), rejection.body_text())
    })?;
    let chain = chain::load(&state.store, caller.key.user_id, &id, true)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let page = page(listed_items(&chain.turns), &query)?;
    Ok(axum::Json(page).into_response())
}

/// One page of `items` (in conversation order) as OpenAI lists it.
fn page(mut items: Vec<Value>, query: &ListQuery) -> Result<Value, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    match query.order.as_deref() {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(other) => {
            return Err(invalid(
                "order",
                format!("order must be 'asc' or 'desc', not '{other}'"),
            ));
        }
    }
    let start = match &query.after {
        None => 0,
        Some(after) => {
            let at = items.iter().position(|item| item["id"] == after.as_str());
            at.map(|at| at + 1).ok_or_else(|| {
                invalid(
                    "after",
                    format!("No input item with id '{after}' in this response."),
                )
            })?
        }
    };
    let rest = items.split_off(start.min(items.len()));
    let has_more = rest.len() > limit;
    let data: Vec<Value> = rest.into_iter().take(limit).collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map(|item| item["id"].clone()),
        "last_id": data.last().map(|item| item["id"].clone()),
        "has_more": has_more,
    }))
}

fn invalid(param: &str, message: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        Some(param),
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|k| json!({"id": format!("i{k}")})).collect()
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn pages_newest_first_by_default_and_after_an_item() {
        let query = ListQuery {
            limit: Some(2),
            ..ListQuery::default()
        };
        let first = page(items(5), &query).unwrap();
        assert_eq!(ids(&first), ["i4", "i3"]);
        assert_eq!(
            (&first["first_id"], &first["last_id"], &first["has_more"]),
            (&json!("i4"), &json!("i3"), &json!(true))
        );
        let next = ListQuery {
            limit: Some(2),
            after: Some("i1".into()),
            order: Some("asc".into()),
        };
        let last = page(items(5), &next).unwrap();
        assert_eq!(ids(&last), ["i2", "i3"]);
        assert_eq!(last["has_more"], true);
        let end = ListQuery {
            after: Some("i3".into()),
            order: Some("asc".into()),
            ..ListQuery::default()
        };
        let end = page(items(5), &end).unwrap();
        assert_eq!((ids(&end), &end["has_more"]), (vec!["i4"], &json!(false)));
    }

    #[test]
    fn an_empty_list_has_null_ids_and_bad_parameters_are_400() {
        let empty = page(Vec::new(), &ListQuery::default()).unwrap();
        assert_eq!(empty["first_id"], Value::Null);
        assert_eq!(empty["object"], "list");
        for query in [
            ListQuery {
                limit: Some(0),
                ..ListQuery::default()
            },
            ListQuery {
                limit: Some(101),
                ..ListQuery::default()
            },
            ListQuery {
                order: Some("up".into()),
                ..ListQuery::default()
            },
            ListQuery {
                after: Some("nope".into()),
                ..ListQuery::default()
            },
        ] {
            let error = page(items(3), &query).unwrap_err();
            assert_eq!(error.into_response().status(), StatusCode::BAD_REQUEST);
        }
    }
}
