//! In-memory balances and reservations: the hot path's only view of money.
//!
//! Per user: `stored` (the database balance as last synced), `unflushed` (costs settled
//! here that the writer has not committed yet) and `reserved` (worst-case costs of
//! requests in flight). Available = stored − unflushed − reserved. Keys have the same
//! three numbers for their spend against an optional quota.
//!
//! Overspend bound: a request is admitted only if its reservation fits, so the balance
//! can go below zero only by what admitted requests cost beyond their reservations.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ledger::money::Nanos;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Account {
    stored: Nanos,
    unflushed: Nanos,
    reserved: Nanos,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct KeySpend {
    stored: Nanos,
    unflushed: Nanos,
    reserved: Nanos,
}

#[derive(Default)]
struct Ledgers {
    users: HashMap<i64, Account>,
    keys: HashMap<i64, KeySpend>,
}

#[derive(Default)]
pub struct Books {
    inner: Mutex<Ledgers>,
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
            if let Some(quota) = key_quota {
                let spend = ledgers.keys.get(&key_id).copied().unwrap_or_default();
                let remaining = quota - spend.stored - spend.unflushed - spend.reserved;
                if remaining < amount {
                    return Err(Refusal::KeyQuota {
                        remaining,
                        needed: amount,
                    });
                }
            }
        }
        ledgers.users.entry(user_id).or_default().reserved += amount;
        ledgers.keys.entry(key_id).or_default().reserved += amount;
        Ok(Reservation {
            user_id,
            key_id,
            amount,
        })
    }

    /// Releases the reservation and books the actual cost as not yet written.
    pub fn settle(&self, reservation: Reservation, cost: Nanos) {
        let mut ledgers = self.ledgers();
        let account = ledgers.users.entry(reservation.user_id).or_default();
        account.reserved -= reservation.amount;
        account.unflushed += cost;
        let spend = ledgers.keys.entry(reservation.key_id).or_default();
        spend.reserved -= reservation.amount;
        spend.unflushed += cost;
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
    /// of written: their costs leave `unflushed` without reaching `stored`.
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
}
