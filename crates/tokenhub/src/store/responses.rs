//! Stored Responses (migration 0015): what `GET /v1/responses/{id}` answers and what
//! `previous_response_id` continues. Every read and delete is scoped to the owner: another
//! user's id is indistinguishable from an unknown one.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

/// One stored response, as its owner reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub id: String,
    /// The Response object, as JSON text.
    pub response: String,
    /// The conversation's chat messages through this turn, as a JSON array (empty when
    /// `native`).
    pub conversation: String,
    /// A native channel's response (migration 0021): the upstream holds the conversation,
    /// and this row only says whose the id is.
    pub native: bool,
}

/// A response to keep.
pub struct NewStoredResponse<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub key_id: i64,
    pub response: &'a str,
    pub conversation: &'a str,
    pub expires_at: i64,
    pub native: bool,
}

impl Store {
    pub async fn save_response(&self, new: NewStoredResponse<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO stored_responses \
             (id, user_id, key_id, response, conversation, created_at, expires_at, native) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.key_id)
        .bind(new.response)
        .bind(new.conversation)
        .bind(now_ms())
        .bind(new.expires_at)
        .bind(i64::from(new.native))
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
        let row = sqlx::query(
            "SELECT id, response, conversation, native FROM stored_responses \
             WHERE id = $1 AND user_id = $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(user_id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredResponse {
                id: row.try_get("id")?,
                response: row.try_get("response")?,
                conversation: row.try_get("conversation")?,
                native: row.try_get::<i64, _>("native")? != 0,
            })
        })
        .transpose()
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
