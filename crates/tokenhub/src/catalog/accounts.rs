//! API keys and their owners, looked up on a miss and kept in a bounded cache.
//!
//! A key the cache holds (with its owner) is a synchronous hit: two concurrent-map reads,
//! no I/O, no allocation. An unknown hash is looked up in the database (one indexed read
//! by `key_hash`, joined with the owner), once however many requests wait for it, within
//! the `LookupBudget`; a key that does not exist is remembered as missing for
//! `negative_ttl`. Keys and users that are not used are evicted when the cache is full
//! (moka's TinyLFU), so memory follows the active set, not the number of keys.
//!
//! The change feed (`reload.rs`) keeps the cache true: a changed key is dropped (the next
//! request reads it again), a changed user is dropped, and every cached key of that user
//! then misses once, because a hit requires the owner entry it was loaded with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tokio::sync::OnceCell;

use super::lookup_budget::LookupBudget;
use super::{KeyEntry, UserEntry};
use crate::ledger::books::Books;
use crate::shared::money::Reading;
use crate::store::{KeyAuth, Store, StoreResult, UserAuth};

/// What the cache knows about a key hash.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// A live (active or disabled) key and the owner entry it was loaded with.
    Found(Arc<KeyEntry>, Arc<UserEntry>),
    /// No such key, or a revoked one.
    Missing,
}

/// Why an uncached key could not be looked up.
#[derive(Clone, Debug)]
pub enum LookupError {
    /// The lookup budget is spent: retry after this long.
    Throttled(Duration),
    /// The database did not answer.
    Store(String),
}

/// Sizes and rates, from `KeyCacheSettings`.
#[derive(Clone, Copy, Debug)]
pub struct CachePolicy {
    pub capacity: u64,
    pub negative_ttl: Duration,
    pub lookups_per_address_per_s: u32,
    pub lookups_per_s: u32,
}

#[cfg(test)]
impl CachePolicy {
    /// A small cache whose lookup budget never gets in a test's way.
    pub fn for_tests() -> CachePolicy {
        CachePolicy {
            capacity: 100,
            negative_ttl: std::time::Duration::from_secs(1),
            lookups_per_address_per_s: 1_000,
            lookups_per_s: 1_000,
        }
    }
}

pub struct AccountCache {
    store: Store,
    books: Arc<Books>,
    /// The writer's lock: a balance read and the unflushed amounts never count the same
    /// batch twice (see `ledger::writer`).
    flush_lock: Arc<tokio::sync::Mutex<()>>,
    keys: Cache<String, Lookup>,
    users: Cache<i64, Arc<UserEntry>>,
    /// Lookups in progress, so concurrent misses of one hash make one query.
    inflight: Mutex<HashMap<String, Arc<OnceCell<Lookup>>>>,
    budget: LookupBudget,
    /// Bumped by every applied change, under `apply`: a lookup that started before a
    /// change does not cache what it read.
    generation: Mutex<u64>,
    /// Database lookups made for keys, for tests and metrics.
    lookups: AtomicU64,
}

/// Missing keys expire after the negative TTL; found ones stay until evicted or changed.
struct NegativeExpiry(Duration);

impl NegativeExpiry {
    fn ttl(&self, value: &Lookup) -> Option<Duration> {
        match value {
            Lookup::Missing => Some(self.0),
            Lookup::Found(..) => None,
        }
    }
}

impl moka::Expiry<String, Lookup> for NegativeExpiry {
    fn expire_after_create(&self, _: &String, value: &Lookup, _: Instant) -> Option<Duration> {
        self.ttl(value)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Lookup,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.ttl(value)
    }
}

impl AccountCache {
    /// A balance or key spend with its version, for the shared reservations when Redis
    /// does not hold it (first use, or after Redis lost its data).
    pub async fn money_reading(
        &self,
        account: crate::shared::money::Account,
    ) -> StoreResult<Option<crate::store::Versioned>> {
        use crate::shared::money::Account;
        match account {
            Account::User(id) => self.store.balance_version(id).await,
            Account::Key(id) => self.store.spent_version(id).await,
        }
    }

    /// With shared state, after Redis lost this instance's holds (its data set, or an
    /// update whose fate is unknown): writes them back from the books, with the amounts
    /// read again from the database. Runs under the writer's lock, so that no commit
    /// moves the books between their reading and the write-back.
    pub async fn restore_shared_holds(&self) {
        let Some(shared) = self.books.shared() else {
            return;
        };
        let _guard = self.flush_lock.lock().await;
        let mut readings = HashMap::new();
        for (account, _) in self.books.holds() {
            readings.insert(
                account,
                Reading::from_result(self.money_reading(account).await),
            );
        }
        let reading = |account| readings.get(&account).copied().unwrap_or(Reading::None);
        let rebuilt = shared
            .rebuild_holds(|| self.books.holds_through(), reading)
            .await;
        shared.note(rebuilt);
    }

    pub fn new(
        store: Store,
        books: Arc<Books>,
        flush_lock: Arc<tokio::sync::Mutex<()>>,
        policy: CachePolicy,
    ) -> AccountCache {
        AccountCache {
            store,
            books,
            flush_lock,
            keys: Cache::builder()
                .max_capacity(policy.capacity)
                .expire_after(NegativeExpiry(policy.negative_ttl))
                .build(),
            users: Cache::builder().max_capacity(policy.capacity).build(),
            inflight: Mutex::new(HashMap::new()),
            budget: LookupBudget::new(policy.lookups_per_address_per_s, policy.lookups_per_s),
            generation: Mutex::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// The cached answer for a hash, without I/O: `None` means "look it up".
    pub fn cached(&self, key_hash: &str) -> Option<Lookup> {
        match self.keys.get(key_hash)? {
            Lookup::Missing => Some(Lookup::Missing),
            Lookup::Found(key, owner) => {
                let current = self.users.get(&key.user_id)?;
                Arc::ptr_eq(&current, &owner).then_some(Lookup::Found(key, owner))
            }
        }
    }

    /// The cached answer, or one database lookup shared by every concurrent caller.
    pub async fn resolve(
        &self,
        key_hash: &str,
        client: Option<IpAddr>,
    ) -> Result<Lookup, LookupError> {
        if let Some(hit) = self.cached(key_hash) {
            return Ok(hit);
        }
        let cell = {
            let mut inflight = lock(&self.inflight);
            inflight.entry(key_hash.to_string()).or_default().clone()
        };
        // A lookup that finished between our miss and taking the cell has filled the cache.
        if let Some(hit) = self.cached(key_hash) {
            return Ok(hit);
        }
        let result = cell
            .get_or_try_init(|| async {
                self.budget.take(client, Instant::now()).map_err(|wait| {
                    metrics::counter!("tokenhub_key_lookups_throttled_total").increment(1);
                    LookupError::Throttled(wait)
                })?;
                self.load_key(key_hash)
                    .await
                    .map_err(|e| LookupError::Store(e.to_string()))
            })
            .await
            .cloned();
        let mut inflight = lock(&self.inflight);
        if inflight
            .get(key_hash)
            .is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            inflight.remove(key_hash);
        }
        result
    }

    /// A user by id (the web chat's session user), cached like a key's owner.
    pub async fn user(&self, user_id: i64) -> StoreResult<Option<Arc<UserEntry>>> {
        if let Some(user) = self.users.get(&user_id) {
            return Ok(Some(user));
        }
        let generation = self.generation();
        let guard = self.flush_lock.lock().await;
        let Some(auth) = self.store.user_auth(user_id).await? else {
            return Ok(None);
        };
        self.books.load(user_id, auth.user.balance, None);
        let user = self.cache_user(&auth, generation);
        drop(guard);
        Ok(Some(user))
    }

    /// Database lookups made so far (for tests and the benchmark).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Keys and users held now (after pending evictions).
    pub fn sizes(&self) -> (u64, u64) {
        self.keys.run_pending_tasks();
        self.users.run_pending_tasks();
        (self.keys.entry_count(), self.users.entry_count())
    }

    async fn load_key(&self, key_hash: &str) -> StoreResult<Lookup> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tokenhub_key_lookups_total").increment(1);
        let generation = self.generation();
        let found = self
            .store
            .key_auth(key_hash)
            .await?
            .filter(|auth| auth.key.status != "revoked");
        let Some(auth) = found else {
            self.cache_key(key_hash, Lookup::Missing, generation);
            return Ok(Lookup::Missing);
        };
        // The money is read again under the writer's lock (the join above ran without
        // it), so a batch committing meanwhile is counted once.
        let guard = self.flush_lock.lock().await;
        let (user_id, key_id) = (auth.key.user_id, auth.key.id);
        let balances = self.store.balances_of(&[user_id]).await?;
        let spends = self.store.spends_of(&[key_id]).await?;
        if let (Some(balance), Some(spent)) = (balances.get(&user_id), spends.get(&key_id)) {
            self.books.load(user_id, *balance, Some((key_id, *spent)));
        }
        let owner = self.cache_user(&auth.owner, generation);
        drop(guard);
        let found = Lookup::Found(Arc::new(key_entry(&auth, &owner)), owner);
        self.cache_key(key_hash, found.clone(), generation);
        Ok(found)
    }

    /// The owner entry to use: the cached one when nothing changed (so the user's other
    /// cached keys stay hits), else a new one.
    fn cache_user(&self, auth: &UserAuth, generation: u64) -> Arc<UserEntry> {
        let fresh = user_entry(auth);
        let current = lock(&self.generation);
        if let Some(cached) = self.users.get(&fresh.id).filter(|c| **c == fresh) {
            return cached;
        }
        let fresh = Arc::new(fresh);
        if *current == generation {
            self.users.insert(fresh.id, fresh.clone());
        }
        fresh
    }

    fn cache_key(&self, key_hash: &str, lookup: Lookup, generation: u64) {
        let current = lock(&self.generation);
        if *current == generation {
            self.keys.insert(key_hash.to_string(), lookup);
        }
    }

    fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Forgets a key (changed, created or revoked): its next request reads it again.
    pub fn key_changed(&self, key_hash: &str) {
        let mut generation = lock(&self.generation);
        *generation += 1;
        self.keys.invalidate(key_hash);
    }

    /// Forgets a user (status, role, limits, or all its keys revoked); every cached key of
    /// the user misses once.
    pub fn user_changed(&self, user_id: i64) {
        let mut generation = lock(&self.generation);
        *generation += 1;
        self.users.invalidate(&user_id);
    }

    /// Forgets everything (the change feed was lost): every key is read again on use.
    pub fn clear(&self) {
        let mut generation = lock(&self.generation);
        *generation += 1;
        self.keys.invalidate_all();
        self.users.invalidate_all();
    }

    /// Re-reads the stored balance of a user held in the books (a credit).
    pub async fn balance_changed(&self, user_id: i64) -> StoreResult<()> {
        let _guard = self.flush_lock.lock().await;
        if !self.books.holds_user(user_id) {
            return Ok(());
        }
        let balances = self.store.balances_of(&[user_id]).await?;
        self.books.sync(balances, []);
        Ok(())
    }

    /// Drops the money of users that left the cache and are idle, then re-reads the
    /// stored amounts of the rest (other instances' debits reach this one this way).
    pub async fn refresh_money(&self) -> StoreResult<()> {
        let _guard = self.flush_lock.lock().await;
        self.users.run_pending_tasks();
        self.books.forget_idle(|id| self.users.contains_key(&id));
        let (users, keys) = self.books.held();
        let balances = self.store.balances_of(&users).await?;
        let spends = self.store.spends_of(&keys).await?;
        self.books.sync(balances, spends);
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn user_entry(auth: &UserAuth) -> UserEntry {
    UserEntry {
        id: auth.user.id,
        name: auth.user.name.clone(),
        role: auth.user.role.clone(),
        active: auth.user.status == "active",
        rpm_limit: positive(auth.limits.rpm),
        tpm_limit: positive(auth.limits.tpm),
    }
}

fn key_entry(auth: &KeyAuth, owner: &UserEntry) -> KeyEntry {
    let key = &auth.key;
    KeyEntry {
        id: key.id,
        user_id: key.user_id,
        name: key.name.clone(),
        enabled: key.status == "active",
        allowed_models: key
            .allowed_models
            .as_ref()
            .map(|m| m.iter().cloned().collect()),
        quota: key.quota,
        expires_at: key.expires_at,
        allowed_ips: auth.limits.allowed_ips.as_deref().map(parse_nets),
        rpm_limit: positive(auth.limits.rpm).or(owner.rpm_limit),
        tpm_limit: positive(auth.limits.tpm).or(owner.tpm_limit),
    }
}

fn parse_nets(texts: &[String]) -> Vec<ipnet::IpNet> {
    texts
        .iter()
        .filter_map(|text| {
            ipnet::IpNet::from_str(text)
                .ok()
                .or_else(|| IpAddr::from_str(text).ok().map(ipnet::IpNet::from))
        })
        .collect()
}

fn positive(limit: Option<i64>) -> Option<u64> {
    limit.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::money::Nanos;
    use crate::store::{KeyLimits, KeyRow, UserLimits, UserRow};

    fn auth(own: KeyLimits, status: &str) -> KeyAuth {
        KeyAuth {
            key: KeyRow {
                id: 2,
                user_id: 1,
                name: String::new(),
                key_hash: "h".into(),
                key_prefix: String::new(),
                status: status.into(),
                allowed_models: Some(vec!["a".into()]),
                quota: None,
                spent: Nanos::ZERO,
                expires_at: None,
                created_at: 0,
            },
            limits: own,
            owner: UserAuth {
                user: UserRow {
                    id: 1,
                    name: "u".into(),
                    role: "user".into(),
                    status: "active".into(),
                    balance: Nanos::ZERO,
                },
                limits: UserLimits {
                    rpm: Some(60),
                    tpm: Some(1000),
                },
            },
        }
    }

    #[test]
    fn keys_inherit_their_owners_limits_and_read_their_address_list() {
        let inherited = auth(KeyLimits::default(), "active");
        let owner = user_entry(&inherited.owner);
        let key = key_entry(&inherited, &owner);
        assert_eq!((key.rpm_limit, key.tpm_limit), (Some(60), Some(1000)));
        assert!(key.enabled && key.allows_model("a") && !key.allows_model("b"));
        assert!(key.allows_ip("8.8.8.8".parse().unwrap()));
        let own = auth(
            KeyLimits {
                allowed_ips: Some(vec!["10.0.0.0/8".into(), "::1".into()]),
                rpm: Some(5),
                tpm: None,
            },
            "disabled",
        );
        let key = key_entry(&own, &owner);
        assert_eq!((key.rpm_limit, key.tpm_limit), (Some(5), Some(1000)));
        assert!(!key.enabled);
        assert!(key.allows_ip("10.1.2.3".parse().unwrap()));
        assert!(key.allows_ip("::1".parse().unwrap()));
        assert!(!key.allows_ip("11.0.0.1".parse().unwrap()));
    }
}
