//! Storing a finished turn: the Response and the input it was sent, linked to the response
//! it continued (`store/responses.rs`). Each row holds its own turn only, so a long
//! conversation costs storage in proportion to its length, not its square.

use serde_json::Value;

use crate::protocol::responses::items::input_items;
use crate::store::{NewStoredResponse, Store};

/// Where a finished Response is kept, when the request asked for it (`store`).
#[derive(Clone)]
pub struct Keeper {
    pub(super) store: Store,
    pub(super) user_id: i64,
    pub(super) key_id: i64,
    pub(super) expires_at: i64,
    /// The response this turn continues (`previous_response_id`).
    pub(super) previous_id: Option<String>,
    /// The request's `input`, as sent.
    pub(super) input: Value,
}

impl Keeper {
    /// Stores a translated Response. A failure is logged, not answered: the client has its
    /// Response, and only a later continuation misses it.
    pub async fn keep(self, response: &Value) {
        self.save(response, false).await;
    }

    /// Records a native channel's Response: the upstream holds its conversation; the row
    /// says whose id it is, so only its owner may continue it (`previous_response_id`).
    pub async fn keep_native(self, response: &Value) {
        self.save(response, true).await;
    }

    /// Stores `response` from a task of its own, for a stream whose client went away
    /// (its body is being dropped, where nothing can be awaited).
    pub fn keep_detached(self, response: Value) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { self.keep(&response).await });
            }
            Err(_) => tracing::warn!("no runtime to store an interrupted response on"),
        }
    }

    async fn save(&self, response: &Value, native: bool) {
        let id = response["id"].as_str().unwrap_or_default();
        if id.is_empty() {
            tracing::warn!("a response without an id cannot be stored");
            return;
        }
        let items = Value::Array(input_items(id, Some(&self.input)));
        let stored = self
            .store
            .save_response(NewStoredResponse {
                id,
                user_id: self.user_id,
                key_id: self.key_id,
                response: &response.to_string(),
                previous_id: self.previous_id.as_deref(),
                input_items: &items.to_string(),
                expires_at: self.expires_at,
                native,
            })
            .await;
        if let Err(error) = stored {
            tracing::warn!(%error, response = id, "cannot store a response");
        }
    }
}
