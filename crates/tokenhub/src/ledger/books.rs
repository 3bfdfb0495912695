//! In-memory balances and reservations: the hot path's only view of money.
//!
//! Per user: `stored` (the database balance as last synced), `unflushed` (costs settled
//! here that the writer has not committed yet) and `reserved` (worst-case costs of
//! requests in flight). Available = stored − unflushed − reserved. Keys have the same
//! three numbers for their spend against an optional quota.
//!
//! Overspend bound: a request is admitted only if its reservation fits, so the balance
//! can go below zero only by what admitted requests cost beyond their reservations.
//!
//! Entries follow the active set: a user's numbers enter when one of its keys is looked
//! up (`catalog::accounts`) and leave with `forget_idle` once the user has left the key
//! cache, has not been used for a sweep period and holds no unflushed or reserved money.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::fast_map::FastMap;
use crate::ledger::money::{MAX_AMOUNT, Nanos};
use crate::shared::SharedState;
use crate::shared::money::Account as SharedAccount;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Account {
    stored: Nanos,
    unflushed: Nanos,
    reserved: Nanos,
    /// Used since the last sweep.
    touched: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct KeySpend {
    stored: Nanos,
    unflushed: Nanos,
    reserved: Nanos,
    /// The owner: a key's numbers leave with its user's.
    user_id: i64,
}

impl Account {
    fn idle(&self) -> bool {
        self.unflushed.is_zero() && self.reserved.is_zero()
    }
}

#[derive(Default)]
struct Ledgers {
    users: FastMap<i64, Account>,
    keys: FastMap<i64, KeySpend>,
}

#[derive(Default)]
pub struct Books {
    inner: Mutex<Ledgers>,
    /// With Redis, reservations are decided across instances (`shared/money.rs`); these
    /// books then keep this instance's part, which settlements move in Redis too.
    shared: Option<Arc<SharedState>>,
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Balance { available: Nanos, needed: Nanos },
    KeyQuota { remaining: Nanos, needed: Nanos },
}

/// Money held for one request until it settles. Settle it exactly once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reservation must be settled"]
pub struct Reservation {
    user_id: i64,
    key_id: i64,
    amount: Nanos,
}

impl Reservation {
    pub fn amount(&self) -> Nanos {
        self.amount
    }
}

impl Books {
    pub fn new(shared: Option<Arc<SharedState>>) -> Books {
        Books {
            inner: Mutex::default(),
            shared,
        }
    }

    pub fn shared(&self) -> Option<&Arc<SharedState>> {
        self.shared.as_ref()
    }

    fn ledgers(&self) -> std::sync::MutexGuard<'_, Ledgers> {
        // A panic while holding this lock leaves plain numbers behind, never a broken
        // invariant worth stopping the gateway for.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the stored balances and spends with the database's (see `Reloader`).
    pub fn sync(
        &self,
        users: impl IntoIterator<Item = (i64, Nanos)>,
        keys: impl IntoIterator<Item = (i64, Nanos)>,
    ) {
        let mut ledgers = self.ledgers();
        for (id, balance) in users {
            ledgers.users.entry(id).or_default().stored = balance;
        }
        for (id, spent) in keys {
            ledgers.keys.entry(id).or_default().stored = spent;
        }
    }

    /// Takes in a user's stored balance and one of its keys' spend, read from the database
    /// under the writer's lock (a key cache miss).
    pub fn load(&self, user_id: i64, balance: Nanos, key: Option<(i64, Nanos)>) {
        let mut ledgers = self.ledgers();
        let account = ledgers.users.entry(user_id).or_default();
        account.stored = balance;
        account.touched = true;
        if let Some((key_id, spent)) = key {
            let spend = ledgers.keys.entry(key_id).or_default();
            spend.stored = spent;
            spend.user_id = user_id;
        }
    }

    pub fn holds_user(&self, user_id: i64) -> bool {
        self.ledgers().users.contains_key(&user_id)
    }

    /// The users and keys held, for a refresh of their stored amounts.
    pub fn held(&self) -> (Vec<i64>, Vec<i64>) {
        let ledgers = self.ledgers();
        (
            ledgers.users.keys().copied().collect(),
            ledgers.keys.keys().copied().collect(),
        )
    }

    /// Drops users (and their keys) that `still_cached` no longer holds, that were not
    /// used since the last sweep and hold no unflushed or reserved money; returns how many.
    /// Money in flight is never dropped, so nothing is forgotten that the writer or a
    /// settlement will still move.
    pub fn forget_idle(&self, still_cached: impl Fn(i64) -> bool) -> usize {
        let mut ledgers = self.ledgers();
        let mut gone = std::collections::HashSet::new();
        ledgers.users.retain(|id, account| {
            let keep = std::mem::take(&mut account.touched) || !account.idle() || still_cached(*id);
            if !keep {
                gone.insert(*id);
            }
            keep
        });
        ledgers.keys.retain(|_, spend| {
            !gone.contains(&spend.user_id)
                || !spend.unflushed.is_zero()
                || !spend.reserved.is_zero()
        });
        gone.len()
    }

    /// Holds `amount` against the user's balance and the key's quota, or says why not.
    /// A zero amount (free model) is always admitted.
    pub fn reserve(
        &self,
        user_id: i64,
        key_id: i64,
        key_quota: Option<Nanos>,
        amount: Nanos,
    ) -> Result<Reservation, Refusal> {
        let mut ledgers = self.ledgers();
        if amount > Nanos::ZERO {
            let account = ledgers.users.get(&user_id).copied().unwrap_or_default();
            let available = account.stored - account.unflushed - account.reserved;
            if available < amount {
                return Err(Refusal::Balance {
                    available,
                    needed: amount,
                });
            }
            // A key's spend is stored within MAX_AMOUNT like every amount: past it the
            // database refuses the debit and the writer parks the record, serving the
            // request for free. So a key without a quota has that one (found by the
            // ledger simulation, seed 1769916737715584613, at step 336310).
            let quota = key_quota.map_or(MAX_AMOUNT, |quota| quota.min(MAX_AMOUNT));
            let spend = ledgers.keys.get(&key_id).copied().unwrap_or_default();
            let remaining = quota - spend.stored - spend.unflushed - spend.reserved;
            if remaining < amount {
                return Err(Refusal::KeyQuota {
                    remaining,
                    needed: amount,
                });
            }
        }
        Ok(Self::take(&mut ledgers, user_id, key_id, amount))
    }

    /// Books a reservation the shared state already admitted across instances.
    pub fn reserved_elsewhere(&self, user_id: i64, key_id: i64, amount: Nanos) -> Reservation {
        Self::take(&mut self.ledgers(), user_id, key_id, amount)
    }

    fn take(ledgers: &mut Ledgers, user_id: i64, key_id: i64, amount: Nanos) -> Reservation {
        let account = ledgers.users.entry(user_id).or_default();
        account.reserved += amount;
        account.touched = true;
        let spend = ledgers.keys.entry(key_id).or_default();
        spend.reserved += amount;
        spend.user_id = user_id;
        Reservation {
            user_id,
            key_id,
            amount,
        }
    }

    /// What this instance holds (reserved plus unflushed) per user and key: written back
    /// to Redis after it lost its data.
    pub fn holds(&self) -> Vec<(SharedAccount, Nanos)> {
        self.holds_through().0
    }

    /// `holds`, with the last hold change they include (`SharedState::next_hold_change`).
    pub fn holds_through(&self) -> (Vec<(SharedAccount, Nanos)>, u64) {
        let ledgers = self.ledgers();
        let through = self.shared.as_ref().map_or(0, |s| s.hold_changes());
        let users = ledgers
            .users
            .iter()
            .map(|(id, a)| (SharedAccount::User(*id), a.reserved + a.unflushed));
        let keys = ledgers
            .keys
            .iter()
            .map(|(id, k)| (SharedAccount::Key(*id), k.reserved + k.unflushed));
        (users.chain(keys).collect(), through)
    }

    /// Releases the reservation and books the actual cost as not yet written; returns
    /// the cost booked, which the usage record must carry.
    ///
    /// The cost is clamped so that neither the key's spend nor the user's balance leaves
    /// the storable bound (`MAX_AMOUNT`): a request admitted within it may still cost
    /// more than its reservation (a prompt beyond its estimate), and past the bound the
    /// database would refuse the debit and the writer park the record, serving the whole
    /// request for free (ledger simulation, seed 1789175032345228637). Clamping the bill
    /// rather than reserving for the worst possible one keeps admission unchanged for
    /// every key far from the bound and costs only the last request at it its overrun.
    /// Other instances' unflushed costs (Redis) are not seen here; theirs clamp likewise.
    pub fn settle(&self, reservation: Reservation, cost: Nanos) -> Nanos {
        let mut ledgers = self.ledgers();
        let account = ledgers.users.entry(reservation.user_id).or_default();
        account.reserved -= reservation.amount;
        let balance_room = MAX_AMOUNT + account.stored - account.unflushed - account.reserved;
        let spend = ledgers.keys.entry(reservation.key_id).or_default();
        spend.reserved -= reservation.amount;
        let spend_room = MAX_AMOUNT - spend.stored - spend.unflushed - spend.reserved;
        let cost = cost
            .min(balance_room.max(Nanos::ZERO))
            .min(spend_room.max(Nanos::ZERO));
        spend.unflushed += cost;
        let account = ledgers.users.entry(reservation.user_id).or_default();
        account.unflushed += cost;
        account.touched = true;
        let numbered = self.shared.as_ref().map(|s| s.next_hold_change());
        drop(ledgers);
        let change = cost - reservation.amount;
        if let Some(shared) = self.shared.as_ref().filter(|_| !change.is_zero()) {
            let update = shared.clone();
            shared.spawn_hold_update(numbered.unwrap_or_default(), async move {
                let accounts = [
                    SharedAccount::User(reservation.user_id),
                    SharedAccount::Key(reservation.key_id),
                ];
                update.move_holds(&accounts, change).await
            });
        }
        cost
    }

    /// Called by the writer after a batch committed: the costs moved from unflushed to stored.
    pub fn flushed(&self, users: &HashMap<i64, Nanos>, keys: &HashMap<i64, Nanos>) {
        let mut ledgers = self.ledgers();
        for (id, cost) in users {
            let account = ledgers.users.entry(*id).or_default();
            account.unflushed -= *cost;
            account.stored -= *cost;
        }
        for (id, cost) in keys {
            let spend = ledgers.keys.entry(*id).or_default();
            spend.unflushed -= *cost;
            spend.stored += *cost;
        }
    }

    /// Called by the writer for records the database refused and that were parked instead
    /// of written, and for a batch found committed earlier after the stored amounts were
    /// read again: their costs leave `unflushed` without reaching `stored`.
    pub fn abandoned(&self, users: &HashMap<i64, Nanos>, keys: &HashMap<i64, Nanos>) {
        let mut ledgers = self.ledgers();
        for (id, cost) in users {
            ledgers.users.entry(*id).or_default().unflushed -= *cost;
        }
        for (id, cost) in keys {
            ledgers.keys.entry(*id).or_default().unflushed -= *cost;
        }
    }

    /// What the user could spend right now (for balance endpoints and tests).
    pub fn available(&self, user_id: i64) -> Nanos {
        let account = self
            .ledgers()
            .users
            .get(&user_id)
            .copied()
            .unwrap_or_default();
        account.stored - account.unflushed - account.reserved
    }

    /// Balance after every settled cost, ignoring reservations in flight.
    pub fn balance(&self, user_id: i64) -> Nanos {
        let account = self
            .ledgers()
            .users
            .get(&user_id)
            .copied()
            .unwrap_or_default();
        account.stored - account.unflushed
    }

    /// Costs settled for the user that the writer has not committed yet: the database
    /// balance minus this is the balance right now (for balance endpoints).
    pub fn unflushed(&self, user_id: i64) -> Nanos {
        self.ledgers()
            .users
            .get(&user_id)
            .map_or(Nanos::ZERO, |account| account.unflushed)
    }

    /// Unflushed spend of a key, the same way.
    pub fn key_unflushed(&self, key_id: i64) -> Nanos {
        self.ledgers()
            .keys
            .get(&key_id)
            .map_or(Nanos::ZERO, |spend| spend.unflushed)
    }

    /// What the user holds for its requests in flight.
    pub fn reserved(&self, user_id: i64) -> Nanos {
        self.ledgers()
            .users
            .get(&user_id)
            .map_or(Nanos::ZERO, |account| account.reserved)
    }

    /// What a key holds for its requests in flight.
    pub fn key_reserved(&self, key_id: i64) -> Nanos {
        self.ledgers()
            .keys
            .get(&key_id)
            .map_or(Nanos::ZERO, |spend| spend.reserved)
    }

    /// Key spend after every settled cost, ignoring reservations in flight.
    pub fn key_spent(&self, key_id: i64) -> Nanos {
        let spend = self
            .ledgers()
            .keys
            .get(&key_id)
            .copied()
            .unwrap_or_default();
        spend.stored + spend.unflushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_bound_concurrent_spend() {
        let books = Books::default();
        books.sync([(1, Nanos(100))], [(10, Nanos(0))]);
        let a = books.reserve(1, 10, None, Nanos(60)).unwrap();
        assert_eq!(
            books.reserve(1, 10, None, Nanos(60)),
            Err(Refusal::Balance {
                available: Nanos(40),
                needed: Nanos(60)
            })
        );
        books.settle(a, Nanos(30));
        assert_eq!(books.available(1), Nanos(70));
        let b = books.reserve(1, 10, None, Nanos(60)).unwrap();
        books.settle(b, Nanos(60));
        assert_eq!(books.balance(1), Nanos(10));
    }

    #[test]
    fn key_quota_is_checked_with_its_spend() {
        let books = Books::default();
        books.sync([(1, Nanos(1000))], [(10, Nanos(90))]);
        assert_eq!(
            books.reserve(1, 10, Some(Nanos(100)), Nanos(20)),
            Err(Refusal::KeyQuota {
                remaining: Nanos(10),
                needed: Nanos(20)
            })
        );
        let ok = books.reserve(1, 10, Some(Nanos(100)), Nanos(10)).unwrap();
        books.settle(ok, Nanos(10));
        assert_eq!(books.key_spent(10), Nanos(100));
    }

    /// Seed 1769916737715584613 of the ledger simulation: a key without a quota had
    /// spent almost `MAX_AMOUNT`, and its next request was admitted, refused by the
    /// database and parked (served for free).
    #[test]
    fn a_key_without_a_quota_spends_no_more_than_the_storable_bound() {
        let books = Books::default();
        let spent = MAX_AMOUNT - Nanos(10);
        books.sync([(1, MAX_AMOUNT)], [(10, spent)]);
        assert_eq!(
            books.reserve(1, 10, None, Nanos(11)),
            Err(Refusal::KeyQuota {
                remaining: Nanos(10),
                needed: Nanos(11)
            })
        );
        let fits = books.reserve(1, 10, None, Nanos(10)).unwrap();
        books.settle(fits, Nanos(10));
        assert_eq!(books.key_spent(10), MAX_AMOUNT);
        assert!(
            books
                .reserve(1, 10, Some(Nanos(i64::MAX)), Nanos(1))
                .is_err()
        );
    }

    /// Seed 1789175032345228637 of the ledger simulation (step 358,257): a request
    /// admitted within the storable bound cost more than its reservation (its prompt
    /// beyond the estimate), carrying the key's spend past `MAX_AMOUNT`; the database
    /// refused the debit and the writer parked the record (served for free).
    #[test]
    fn an_overrun_is_billed_up_to_the_storable_bound() {
        let books = Books::default();
        books.sync([(1, MAX_AMOUNT)], [(10, MAX_AMOUNT - Nanos(100))]);
        let other = books.reserve(1, 10, None, Nanos(30)).unwrap();
        let overrun = books.reserve(1, 10, None, Nanos(50)).unwrap();
        assert_eq!(books.settle(overrun, Nanos(500)), Nanos(70));
        assert_eq!(books.key_spent(10), MAX_AMOUNT - Nanos(30));
        assert_eq!(books.settle(other, Nanos(30)), Nanos(30));
        assert_eq!(books.key_spent(10), MAX_AMOUNT);
        assert_eq!(books.balance(1), MAX_AMOUNT - Nanos(100));

        // The balance's lower bound the same way (a request reserving nothing is
        // admitted even when the user is broke).
        let broke = Books::default();
        broke.sync([(2, Nanos(10 - MAX_AMOUNT.0))], [(20, Nanos::ZERO)]);
        let held = broke.reserve(2, 20, None, Nanos::ZERO).unwrap();
        assert_eq!(broke.settle(held, Nanos(50)), Nanos(10));
        assert_eq!(broke.balance(2), Nanos(-MAX_AMOUNT.0));
        assert_eq!(broke.key_spent(20), Nanos(10));
    }

    #[test]
    fn free_requests_pass_even_when_broke() {
        let books = Books::default();
        books.sync([(1, Nanos(-5))], []);
        let free = books.reserve(1, 10, Some(Nanos(0)), Nanos::ZERO).unwrap();
        books.settle(free, Nanos::ZERO);
        assert_eq!(books.balance(1), Nanos(-5));
    }

    #[test]
    fn flushing_moves_cost_from_unflushed_to_stored() {
        let books = Books::default();
        books.sync([(1, Nanos(100))], [(10, Nanos(0))]);
        let r = books.reserve(1, 10, None, Nanos(50)).unwrap();
        books.settle(r, Nanos(40));
        books.flushed(
            &HashMap::from([(1, Nanos(40))]),
            &HashMap::from([(10, Nanos(40))]),
        );
        // A later sync with the database's value (60) changes nothing: no double count.
        books.sync([(1, Nanos(60))], [(10, Nanos(40))]);
        assert_eq!(books.balance(1), Nanos(60));
        assert_eq!(books.key_spent(10), Nanos(40));
    }

    #[test]
    fn only_idle_uncached_unused_users_are_forgotten_with_their_keys() {
        let books = Books::default();
        books.load(1, Nanos(100), Some((10, Nanos(5))));
        books.load(2, Nanos(100), Some((20, Nanos(0))));
        books.load(3, Nanos(100), None);
        let unflushed = books.reserve(2, 20, None, Nanos(10)).unwrap();
        books.settle(unflushed, Nanos(10));
        let _in_flight = books.reserve(3, 30, None, Nanos(10)).unwrap();
        // Loaded or used since the last sweep: all kept, and no longer marked used.
        assert_eq!(books.forget_idle(|_| false), 0);
        // User 1 is idle and uncached; 2 has unflushed money; 3 a reservation.
        assert_eq!(books.forget_idle(|_| false), 1);
        let (users, keys) = books.held();
        let mut users = users;
        users.sort();
        assert_eq!(users, [2, 3]);
        assert!(!keys.contains(&10));
        // Still cached: kept however idle.
        books.load(1, Nanos(100), None);
        books.forget_idle(|_| true);
        assert_eq!(books.forget_idle(|id| id == 1), 0);
        assert_eq!(books.available(1), Nanos(100));
    }
}
