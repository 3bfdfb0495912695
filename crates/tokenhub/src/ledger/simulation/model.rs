//! What the simulation expects the money to be, from what it did and saw: every credit
//! it made, every request it settled and what each must cost. The real state (books and
//! database) is checked against it.

use std::collections::{HashMap, HashSet};

use crate::ledger::money::Nanos;

pub struct UserModel {
    pub id: i64,
    /// Σ of the credits and debits the database accepted (opening balance included).
    pub credits: i128,
    /// Σ cost of this user's records found committed.
    pub committed_cost: i128,
    /// How far below zero the balance may legitimately go: debits, a negative opening
    /// balance, and what settled requests cost beyond their reservations.
    pub allowance: i128,
    pub keys: Vec<usize>,
    /// Credited since the books last applied the change feed: their stored balance may
    /// lag the database's until the next reload.
    pub credited_since_reload: bool,
    /// Σ of the credits (not the debits) the database accepted since the records were
    /// last collected: how far they may have lifted a balance a bill was cut at.
    pub raised_since_collect: i128,
}

impl UserModel {
    /// A credit (or, negative, a debit) the database accepted.
    pub fn credited(&mut self, amount: i128) {
        self.credits += amount;
        self.raised_since_collect += amount.max(0);
        self.credited_since_reload = true;
    }

    /// The balance the database should hold once every record seen so far is committed.
    pub fn balance(&self) -> i128 {
        self.credits - self.committed_cost
    }
}

pub struct KeyModel {
    pub id: i64,
    pub hash: String,
    /// The quota last written; the books may hold the previous one until a reload.
    pub quota: Option<Nanos>,
    /// Σ cost of this key's records found committed.
    pub committed_cost: i128,
}

/// A settled request whose record has not been seen in the database yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub user: usize,
    pub key: usize,
    pub cost: Nanos,
    /// The process that settled it: its crash loses the record if not committed yet.
    pub instance: usize,
}

#[derive(Default)]
pub struct Model {
    pub users: Vec<UserModel>,
    pub keys: Vec<KeyModel>,
    /// Settled, record not yet seen committed or parked.
    pub pending: HashMap<String, Pending>,
    /// Settled before a crash and not found after it; may still appear (a commit that
    /// was on its way when the process died).
    pub lost: HashMap<String, Pending>,
    /// Records seen committed, and parked.
    pub committed: i64,
    pub parked: i64,
    /// Records found committed after the crash that was thought to lose them.
    pub late_commits: u64,
    /// Since a crash and until a reload, a commit of the dead process may have landed
    /// after the new one loaded a balance or spend.
    pub books_may_lag: bool,
    /// Request ids parked (none may be billed too).
    pub parked_ids: HashSet<String>,
}

impl Model {
    pub fn commit(&mut self, pending: Pending) {
        self.committed += 1;
        self.users[pending.user].committed_cost += i128::from(pending.cost.0);
        self.keys[pending.key].committed_cost += i128::from(pending.cost.0);
    }
}
