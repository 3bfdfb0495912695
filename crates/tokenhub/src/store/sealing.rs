//! Channel keys in the database are sealed (`secret_box.rs`): the start-up checks that
//! the key is the database's and seals what an older version stored plain.

use sqlx::Row;

use super::secret_box::SecretBox;
use super::{Backend, Store, StoreError, StoreResult, now_ms};

/// What the check row seals; any text would do, it only has to open.
const CHECK_TEXT: &str = "tokenhub secret key check";

impl Store {
    /// A channel key as stored: sealed.
    pub(super) fn seal_channel_key(&self, plain: Option<&str>) -> Option<String> {
        plain.map(|key| self.secrets.seal(key))
    }

    /// A stored channel key as the catalogue needs it: plain.
    pub(super) fn open_channel_key(
        &self,
        channel: &str,
        stored: Option<String>,
    ) -> StoreResult<Option<String>> {
        stored
            .map(|text| {
                self.secrets
                    .open(&text)
                    .map_err(|_| wrong_key(&format!("the key of channel '{channel}'")))
            })
            .transpose()
    }

    /// Refuses a key other than the one the database was first sealed with. The first
    /// start seals the check row; of several instances starting at once, one row wins
    /// and the others must open it like any later start.
    pub(super) async fn check_secret_key(&self) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO secret_key_check (id, sealed, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.secrets.seal(CHECK_TEXT))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let sealed: String = sqlx::query("SELECT sealed FROM secret_key_check WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("sealed")?;
        match self.secrets.open(&sealed) {
            Ok(text) if text == CHECK_TEXT && SecretBox::is_sealed(&sealed) => Ok(()),
            _ => Err(wrong_key("the database's check value")),
        }
    }

    /// Seals channel keys stored plain (by a version before sealing, or by hand). Each
    /// row is replaced only if it still holds the plain text read, so instances starting
    /// together, or a concurrent edit, never lose a key; running it again changes nothing.
    /// The replaced plain text is then wiped from the file too (see `wipe_old_versions`).
    pub(super) async fn seal_plain_channel_keys(&self) -> StoreResult<u64> {
        let rows = sqlx::query("SELECT id, name, api_key FROM channels WHERE api_key IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            // Zero a replaced value's bytes in its page, instead of leaving them in free space.
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
        }
        let mut sealed = 0;
        for row in rows {
            let (id, name): (i64, String) = (row.try_get("id")?, row.try_get("name")?);
            let stored: String = row.try_get("api_key")?;
            if SecretBox::is_sealed(&stored) {
                self.open_channel_key(&name, Some(stored))?;
                continue;
            }
            sealed +=
                sqlx::query("UPDATE channels SET api_key = $1 WHERE id = $2 AND api_key = $3")
                    .bind(self.secrets.seal(&stored))
                    .bind(id)
                    .bind(&stored)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
        }
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA secure_delete = OFF")
                .execute(&mut *conn)
                .await?;
        }
        if sealed > 0 {
            wipe_old_versions(self.backend, &mut conn).await?;
            // Running instances re-read their channels (the text they hold may be a key
            // written plain by hand since they last did).
            let mut tx = self.begin_write().await?;
            super::changes::record(&mut tx, super::changes::Change::Catalog).await?;
            tx.commit().await?;
            tracing::info!(
                channels = sealed,
                "sealed upstream keys stored in plain text"
            );
        }
        Ok(sealed)
    }
}

/// An updated row's old version outlives the update: in SQLite's write-ahead log, in a
/// PostgreSQL dead tuple. Checkpointing and truncating the log, or rewriting the (small)
/// channels table, leaves the plain keys nowhere in the live files. Backups taken before
/// still hold them.
async fn wipe_old_versions(backend: Backend, conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    let statement = match backend {
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
        Backend::Postgres => "VACUUM FULL channels",
    };
    sqlx::query(statement).execute(conn).await?;
    Ok(())
}

pub(super) fn wrong_key(what: &str) -> StoreError {
    StoreError::SecretKey(format!(
        "{what} cannot be opened with this secret key: TOKENHUB_SECRET_KEY (or, without it, \
         the key file next to the SQLite database) is not the key this database was sealed \
         with. Start with the right key; the gateway will not send undecryptable keys upstream."
    ))
}

#[cfg(test)]
mod tests {
    use crate::store::secret_box::SecretKey;
    use crate::store::test_support::temp_store;
    use crate::store::{ChannelLimits, ChannelRow, Store};

    fn channel(name: &str, key: &str) -> ChannelRow {
        ChannelRow {
            id: 0,
            name: name.into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:9".into(),
            api_key: Some(key.into()),
            api_key_env: None,
            models: vec!["m".into()],
            model_map: Default::default(),
            priority: 0,
            weight: 1,
            enabled: true,
            limits: ChannelLimits::default(),
            responses_native: false,
        }
    }

    fn database_file(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}/t.db", dir.path().display())
    }

    fn bytes_of(dir: &tempfile::TempDir) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("t.db") && !path.to_string_lossy().ends_with(".key")
            {
                match std::fs::read(&path) {
                    Ok(bytes) => all.extend(bytes),
                    // A -wal, -shm or lock file removed as the last connection closed: its
                    // pages are in the database file by then, which is read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
        all
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[tokio::test]
    async fn keys_are_sealed_on_disk_and_plain_when_loaded() {
        let (store, dir) = temp_store().await;
        let created = store
            .create_channel(&channel("c", "sk-plain-secret-0123456789"))
            .await
            .unwrap();
        assert_eq!(
            created.api_key.as_deref(),
            Some("sk-plain-secret-0123456789")
        );
        let stored: String = sqlx::query_scalar("SELECT api_key FROM channels WHERE name = 'c'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(stored.starts_with("enc:v1:"), "{stored}");
        store.close().await;
        assert!(!contains(&bytes_of(&dir), "sk-plain-secret-0123456789"));
    }

    #[tokio::test]
    async fn plain_rows_are_sealed_at_start_once() {
        let (store, dir) = temp_store().await;
        store.create_channel(&channel("old", "x")).await.unwrap();
        // As a version before sealing left it.
        sqlx::query("UPDATE channels SET api_key = 'sk-old-plain-key-42' WHERE name = 'old'")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(store.seal_plain_channel_keys().await.unwrap(), 1);
        assert_eq!(
            store.seal_plain_channel_keys().await.unwrap(),
            0,
            "idempotent"
        );
        store.close().await;
        let again = Store::connect(&database_file(&dir), None).await.unwrap();
        let old = again.all_channels().await.unwrap();
        let old = old.iter().find(|c| c.name == "old").unwrap();
        assert_eq!(old.api_key.as_deref(), Some("sk-old-plain-key-42"));
        again.close().await;
        assert!(!contains(&bytes_of(&dir), "sk-old-plain-key-42"));
    }

    #[tokio::test]
    async fn a_wrong_key_refuses_to_start() {
        let (store, dir) = temp_store().await;
        store
            .create_channel(&channel("c", "sk-some-key-000"))
            .await
            .unwrap();
        store.close().await;
        let wrong = SecretKey::generate();
        let error = Store::connect(&database_file(&dir), Some(&wrong))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("TOKENHUB_SECRET_KEY"), "{error}");
        // The key file is the database's key: given explicitly, it works.
        let file = std::fs::read_to_string(dir.path().join("t.db.key")).unwrap();
        let right = SecretKey::parse(&file).unwrap();
        let store = Store::connect(&database_file(&dir), Some(&right))
            .await
            .unwrap();
        assert_eq!(store.all_channels().await.unwrap().len(), 1);
    }
}
