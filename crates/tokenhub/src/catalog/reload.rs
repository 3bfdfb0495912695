//! Keeps the in-memory snapshot and balances in step with the database.
//!
//! Every change made through the store (CLI in another process, admin API, config
//! upserts) bumps a revision counter; a background task polls it and rebuilds the
//! snapshot when it moved. The poll is one indexed single-row read per interval, off
//! the hot path.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Notify};

use super::{AccountExtras, Catalog};
use crate::ledger::books::Books;
use crate::store::{Store, StoreResult};

#[derive(Clone)]
pub struct Reloader {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    books: Arc<Books>,
    flush_lock: Arc<Mutex<()>>,
}

impl Reloader {
    pub fn new(
        store: Store,
        catalog: Arc<ArcSwap<Catalog>>,
        books: Arc<Books>,
        flush_lock: Arc<Mutex<()>>,
    ) -> Self {
        Reloader {
            store,
            catalog,
            books,
            flush_lock,
        }
    }

    /// Rebuilds the snapshot and re-reads balances; returns the revision it reflects.
    pub async fn reload(&self) -> StoreResult<i64> {
        let revision = self.store.revision().await?;
        let models = self.store.all_models().await?;
        let channels = self.store.all_channels().await?;
        let fallbacks = self.store.all_fallbacks().await?;
        let extras = AccountExtras {
            key_limits: self.store.live_key_limits().await?,
            user_limits: self.store.user_limits_map().await?,
            unpriced_models: self.store.unpriced_model_ids().await?,
        };
        // Balances and spends are read under the writer's lock so that no committed batch
        // is counted both in the database value and in the unflushed amounts.
        let guard = self.flush_lock.lock().await;
        let users = self.store.all_users().await?;
        let keys = self.store.live_keys().await?;
        self.books.sync(
            users.iter().map(|u| (u.id, u.balance)),
            keys.iter().map(|k| (k.id, k.spent)),
        );
        drop(guard);
        let mut catalog = Catalog::build_with(&users, &keys, &models, &channels, &extras, |name| {
            std::env::var(name).ok()
        });
        catalog.set_fallbacks(fallbacks);
        self.catalog.store(Arc::new(catalog));
        // Rejected keys stay disabled: any change bumps the revision (a new user, a
        // redemption), so clearing them here would retry bad keys every few seconds. A key
        // whose text changed is a new key with fresh health (health is per key text).
        Ok(revision)
    }

    /// Polls the revision counter forever, reloading when it changes. `nudge` makes it
    /// poll at once: this instance's own management writes (a new key, a new model)
    /// then work on the very next request instead of after up to one interval.
    pub fn spawn_polling(self, interval: Duration, mut seen: i64, nudge: Arc<Notify>) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = nudge.notified() => {}
                }

                match self.store.revision().await {
                    Ok(current) if current != seen => match self.reload().await {
                        Ok(reflected) => {
                            tracing::info!(revision = reflected, "configuration reloaded");
                            seen = reflected;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "reload failed; keeping the previous snapshot")
                        }
                    },
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "cannot read the revision counter"),
                }
            }
        });
    }
}
