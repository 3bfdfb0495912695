//! A stored conversation read back: a response and the ones it continues, walked through
//! their `previous_response_id` links in one query, at most `MAX_TURNS` of them. A link to
//! a response that is gone (deleted, or past its retention) answers OpenAI's
//! `previous_response_not_found`, naming the missing one.

use http::StatusCode;
use serde_json::Value;

use super::storage_failed;
use crate::api::error::ApiError;
use crate::protocol::responses::items::Turn;
use crate::store::{Store, StoredResponse};

/// The most turns a conversation is rebuilt from: a bound on what one request reads.
pub const MAX_TURNS: i64 = 1_000;

/// A stored response and the turns of its conversation.
pub struct Chain {
    /// The response asked for.
    pub head: StoredResponse,
    /// Its conversation's turns, oldest first, ending with its own.
    pub turns: Vec<Turn>,
}

/// The user's response `id` with its conversation; `None` when the user has no such
/// response. Unless `through_native`, a native response is read alone (the upstream
/// holds its conversation).
pub async fn load(
    store: &Store,
    user_id: i64,
    id: &str,
    through_native: bool,
) -> Result<Option<Chain>, ApiError> {
    let rows = store
        .response_chain(user_id, id, MAX_TURNS, through_native)
        .await
        .map_err(storage_failed)?;
    let Some(oldest) = rows.last() else {
        return Ok(None);
    };
    let walked_on = oldest.input_items.is_some() && (through_native || !oldest.native);
    if walked_on && let Some(missing) = &oldest.previous_id {
        return Err(if rows.len() as i64 >= MAX_TURNS {
            too_long()
        } else {
            previous_not_found(missing)
        });
    }
    let turns = rows.iter().rev().map(turn).collect::<Result<_, _>>()?;
    let head = rows.into_iter().next().expect("one row at least");
    Ok(Some(Chain { head, turns }))
}

fn turn(row: &StoredResponse) -> Result<Turn, ApiError> {
    let response = parsed(row, &row.response)?;
    Ok(match &row.input_items {
        Some(items) => Turn::Own {
            input: array(row, items)?,
            response,
        },
        None => Turn::Whole {
            conversation: array(row, &row.conversation)?,
            response,
        },
    })
}

fn array(row: &StoredResponse, text: &str) -> Result<Vec<Value>, ApiError> {
    match parsed(row, text)? {
        Value::Array(items) => Ok(items),
        _ => Err(unreadable(row, "not a JSON array")),
    }
}

fn parsed(row: &StoredResponse, text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|error| unreadable(row, error))
}

fn unreadable(row: &StoredResponse, error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, response = row.id, "a stored response is unreadable");
    storage_failed(error)
}

/// OpenAI's answer for a `previous_response_id` that names nothing the caller owns.
pub fn previous_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("previous_response_not_found"),
        Some("previous_response_id"),
        format!("Previous response with id '{id}' not found."),
    )
}

fn too_long() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("conversation_too_long"),
        Some("previous_response_id"),
        format!(
            "This conversation is longer than {MAX_TURNS} responses; start a new one \
             with its history as input."
        ),
    )
}
