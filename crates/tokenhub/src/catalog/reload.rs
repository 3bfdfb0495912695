//! Keeps the in-memory state in step with the database through the change feed.
//!
//! Every mutation made through the store (CLI in another process, admin API, another
//! instance, config upserts) writes a row to `changes` in its own transaction. A
//! background task reads the rows after the last one it applied, every
//! `reload_interval_ms` (one indexed read), and applies each change alone: a key or user
//! change drops that cache entry, a balance change re-reads that balance, and a catalogue
//! change rebuilds the small catalogue (models, channels, fallbacks). Nothing reads every
//! key or user.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Notify};

use super::Catalog;
use super::accounts::AccountCache;
use crate::ledger::money::Nanos;
use crate::shared::SharedState;
use crate::shared::money::{Account, Reading};
use crate::store::{Change, ChangeRow, Store, StoreResult, now_ms};

/// Rows read per query; a longer backlog is read in several.
const CHANGES_PER_READ: i64 = 1000;
/// How long change rows are kept; an instance that has not read the feed for half of it
/// may have missed pruned rows, and starts over from an empty cache.
const CHANGE_RETENTION: Duration = Duration::from_secs(3600);
/// How often old change rows are pruned (by every instance; the delete is idempotent).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Reloader {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    accounts: Arc<AccountCache>,
    position: Arc<Mutex<Position>>,
    /// With Redis: balance and spend changes (credits) go to the shared reservations.
    shared: Option<Arc<SharedState>>,
}

/// How far the feed has been applied.
struct Position {
    seen: i64,
    read_at: Instant,
}

impl Reloader {
    /// Builds the catalogue and starts the feed at its current end: start-up reads models,
    /// channels and one number, never the keys.
    pub async fn start(
        store: Store,
        catalog: Arc<ArcSwap<Catalog>>,
        accounts: Arc<AccountCache>,
        shared: Option<Arc<SharedState>>,
    ) -> StoreResult<Reloader> {
        let seen = store.last_change_id().await?;
        let reloader = Reloader {
            store,
            catalog,
            accounts,
            shared,
            position: Arc::new(Mutex::new(Position {
                seen,
                read_at: Instant::now(),
            })),
        };
        reloader.rebuild_catalog().await?;
        Ok(reloader)
    }

    /// Applies every change written so far (tests call it to skip the poll interval).
    pub async fn reload(&self) -> StoreResult<()> {
        let mut position = self.position.lock().await;
        if position.read_at.elapsed() > CHANGE_RETENTION / 2 {
            tracing::warn!("the change feed was not read for a long time; starting over");
            position.seen = self.store.last_change_id().await?;
            self.accounts.clear();
            self.rebuild_catalog().await?;
            position.read_at = Instant::now();
            return Ok(());
        }
        loop {
            let rows = self
                .store
                .changes_after(position.seen, CHANGES_PER_READ)
                .await?;
            let Some(last) = rows.last() else { break };
            let last = last.id;
            self.apply(&rows).await?;
            position.seen = last;
            if (rows.len() as i64) < CHANGES_PER_READ {
                break;
            }
        }
        position.read_at = Instant::now();
        Ok(())
    }

    async fn apply(&self, rows: &[ChangeRow]) -> StoreResult<()> {
        let mut catalog_changed = false;
        for row in rows {
            match row.change {
                Some(Change::Key(id)) => {
                    if let Some(hash) = self.store.key_hash_of(id).await? {
                        self.accounts.key_changed(&hash);
                    }
                    self.share(Account::Key(id)).await;
                }
                Some(Change::User(id)) => {
                    self.accounts.user_changed(id);
                    self.accounts.balance_changed(id).await?;
                    self.share(Account::User(id)).await;
                }
                Some(Change::Balance(id)) => {
                    self.accounts.balance_changed(id).await?;
                    self.share(Account::User(id)).await;
                }
                Some(Change::Catalog) => catalog_changed = true,
                None => {
                    // Written by a newer version: assume anything changed.
                    self.accounts.clear();
                    catalog_changed = true;
                }
            }
        }
        if catalog_changed {
            self.rebuild_catalog().await?;
            tracing::info!("catalogue reloaded");
        }
        Ok(())
    }

    /// Hands a changed balance or spend to the shared reservations (every instance does;
    /// the version keeps only the newest), so a credit is spendable everywhere at once.
    async fn share(&self, account: Account) {
        let Some(shared) = &self.shared else { return };
        let reading = Reading::from_result(self.accounts.money_reading(account).await);
        shared.note(shared.update_money(account, reading, Nanos::ZERO).await);
    }

    async fn rebuild_catalog(&self) -> StoreResult<()> {
        let models = self.store.all_models().await?;
        let channels = self.store.all_channels().await?;
        let fallbacks = self.store.all_fallbacks().await?;
        let unpriced = self.store.unpriced_model_ids().await?;
        let mut catalog = Catalog::build_with(&models, &channels, &unpriced, |name| {
            std::env::var(name).ok()
        });
        catalog.set_fallbacks(fallbacks);
        self.catalog.store(Arc::new(catalog));
        // Rejected upstream keys stay disabled: health is per key text, so an edited key
        // is a new key with fresh health, and a rebuild forgets nothing.
        Ok(())
    }

    /// Reads the feed forever, every `interval` or at once when `nudge` fires (this
    /// instance's own management writes then work on the very next request). Every
    /// `money_every` it also refreshes the balances it holds.
    pub fn spawn_polling(self, interval: Duration, money_every: Duration, nudge: Arc<Notify>) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut money_at = Instant::now();
            let mut pruned_at = Instant::now();
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = nudge.notified() => {}
                }
                if let Err(error) = self.reload().await {
                    tracing::warn!(%error, "cannot read the change feed; will retry");
                }
                if money_at.elapsed() >= money_every {
                    money_at = Instant::now();
                    if let Err(error) = self.accounts.refresh_money().await {
                        tracing::warn!(%error, "cannot refresh balances; will retry");
                    }
                }
                if pruned_at.elapsed() >= PRUNE_EVERY {
                    pruned_at = Instant::now();
                    let before = now_ms() - CHANGE_RETENTION.as_millis() as i64;
                    if let Err(error) = self.store.prune_changes(before).await {
                        tracing::warn!(%error, "cannot prune the change feed");
                    }
                }
            }
        });
    }
}
