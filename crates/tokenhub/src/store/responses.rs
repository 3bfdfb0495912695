//! Stored Responses (migrations 0015, 0021, 0024): what `GET /v1/responses/{id}` answers
//! and what `previous_response_id` continues. Every read and delete is scoped to the owner:
//! another user's id is indistinguishable from an unknown one.
//!
//! A row holds its own turn (input items and Response) and the id of the response it
//! continued; `response_chain` reads a conversation's rows back in one query.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

/// One stored response, as its owner reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub id: String,
    /// The Response object, as JSON text.
    pub response: String,
    /// Rows written before migration 0024 only: the conversation's chat messages through
    /// this turn, as a JSON array (empty when `native`). Empty in newer rows.
    pub conversation: String,
    /// A native channel's response (migration 0021): the upstream holds the conversation,
    /// and this row says whose the id is.
    pub native: bool,
    /// The response this one continued (`previous_response_id`).
    pub previous_id: Option<String>,
    /// This turn's input as Responses items (a JSON array); `None` in rows written before
    /// migration 0024, whose `conversation` holds every turn instead.
    pub input_items: Option<String>,
}

/// A response to keep.
pub struct NewStoredResponse<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub key_id: i64,
    pub response: &'a str,
    pub previous_id: Option<&'a str>,
    /// This turn's input as Responses items (a JSON array).
    pub input_items: &'a str,
    pub expires_at: i64,
    pub native: bool,
}

const COLUMNS: &str = "id, response, conversation, native, previous_id, input_items";

impl Store {
    pub async fn save_response(&self, new: NewStoredResponse<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO stored_responses \
             (id, user_id, key_id, response, conversation, created_at, expires_at, native, \
              previous_id, input_items) \
             VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9)",
        )
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.key_id)
        .bind(new.response)
        .bind(now_ms())
        .bind(new.expires_at)
        .bind(i64::from(new.native))
        .bind(new.previous_id)
        .bind(new.input_items)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's unexpired response with this id, if any.
    pub async fn stored_response(
        &self,
        user_id: i64,
        id: &str,
    ) -> StoreResult<Option<StoredResponse>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM stored_responses \
             WHERE id = $1 AND user_id = $2 AND expires_at > $3"
        ))
        .bind(id)
        .bind(user_id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_response).transpose()
    }

    /// The user's unexpired response `id` and the ones it continues, newest first, at most
    /// `max_turns` of them. The walk stops at a row written before migration 0024 (it holds
    /// the conversation before it) and, unless `through_native`, after a native row (the
    /// upstream holds its conversation). When the last row returned still names a previous
    /// one, that one is gone (deleted or expired) or the limit was reached.
    pub async fn response_chain(
        &self,
        user_id: i64,
        id: &str,
        max_turns: i64,
        through_native: bool,
    ) -> StoreResult<Vec<StoredResponse>> {
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE chain ({COLUMNS}, depth) AS ( \
                 SELECT {COLUMNS}, 1 FROM stored_responses \
                  WHERE id = $1 AND user_id = $2 AND expires_at > $3 \
                 UNION ALL \
                 SELECT s.id, s.response, s.conversation, s.native, s.previous_id, \
                        s.input_items, c.depth + 1 \
                   FROM stored_responses s JOIN chain c ON s.id = c.previous_id \
                  WHERE s.user_id = $2 AND s.expires_at > $3 AND c.depth < $4 \
                    AND c.input_items IS NOT NULL AND (c.native = 0 OR $5 = 1)) \
             SELECT {COLUMNS} FROM chain ORDER BY depth"
        ))
        .bind(id)
        .bind(user_id)
        .bind(now_ms())
        .bind(max_turns)
        .bind(i64::from(through_native))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_response).collect()
    }

    /// Deletes the user's response with this id; false when there was none to delete.
    pub async fn delete_response(&self, user_id: i64, id: &str) -> StoreResult<bool> {
        let deleted = sqlx::query(
            "DELETE FROM stored_responses WHERE id = $1 AND user_id = $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(user_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Deletes every response past its retention; returns how many.
    pub async fn purge_expired_responses(&self) -> StoreResult<u64> {
        let deleted = sqlx::query("DELETE FROM stored_responses WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

fn stored_response(row: &sqlx::any::AnyRow) -> StoreResult<StoredResponse> {
    Ok(StoredResponse {
        id: row.try_get("id")?,
        response: row.try_get("response")?,
        conversation: row.try_get("conversation")?,
        native: row.try_get::<i64, _>("native")? != 0,
        previous_id: row.try_get("previous_id")?,
        input_items: row.try_get("input_items")?,
    })
}
