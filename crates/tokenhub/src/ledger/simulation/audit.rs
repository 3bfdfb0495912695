//! The invariants: after every step on the books (memory only), and every few hundred
//! steps, once the writer has drained, against the database. And the crash.

use std::collections::HashMap;

use super::model::Pending;
use super::{Failure, FaultKind, Process, Sim};
use crate::catalog::accounts::Lookup;
use crate::ledger::money::{MAX_AMOUNT, Nanos};
use crate::store::{KeyMoney, MoneyAudit, UserMoney};

/// One audit in this many sums whole tables (and the last one does).
const FULL_AUDIT_EVERY: u64 = 20;

impl Sim<'_> {
    /// After every step: what the books hold agrees with the requests in flight, and no
    /// balance is below what reservations and known overruns allow.
    pub(super) fn check_memory(&mut self) -> Result<(), Failure> {
        for index in 0..self.processes.len() {
            self.check_process_memory(index)?;
        }
        Ok(())
    }

    /// One process's books against the requests it has in flight.
    fn check_process_memory(&mut self, index: usize) -> Result<(), Failure> {
        let mut reserved_by_user: HashMap<usize, i128> = HashMap::new();
        for request in self.in_flight.iter().filter(|r| r.instance == index) {
            *reserved_by_user.entry(request.user).or_default() += i128::from(request.amount.0);
        }
        let Some(books) = self.processes[index].as_ref().map(|p| p.books.clone()) else {
            return Ok(());
        };
        for user in 0..self.model.users.len() {
            let id = self.model.users[user].id;
            // Read apart, not as balance − available: another thread of the process (its
            // writer, reloader or refresh) may move the stored amount between two reads
            // (seed 1798392264158561770, step 86,322); reservations move on this one only.
            let (balance, unflushed) = (books.balance(id), books.unflushed(id));
            let reserved = i128::from(books.reserved(id).0);
            let expected = reserved_by_user.get(&user).copied().unwrap_or(0);
            self.check(
                "reservations = requests in flight",
                reserved == expected,
                || {
                    format!(
                        "user {id}: books reserve {reserved}, requests in flight hold {expected}"
                    )
                },
            )?;
            self.check("unflushed never negative", unflushed >= Nanos::ZERO, || {
                format!("user {id}: unflushed {unflushed:?}")
            })?;
            let allowance = self.model.users[user].allowance;
            let floor = -(reserved + allowance);
            // With shared state a process admits against Redis, which may know a credit
            // its books have not read yet: the floor is checked across processes, on the
            // database, at each audit.
            let admits_alone = self.redis().is_none();
            self.check(
                "no balance below −(reservations in flight)",
                !admits_alone || i128::from(balance.0) >= floor,
                || format!("user {id}: balance {balance:?} below {floor} (reserved {reserved}, allowance {allowance})"),
            )?;
        }
        Ok(())
    }

    /// Drains the writer, applies the change feed, and checks the books and the model
    /// against the database.
    pub(super) fn audit(&mut self) -> Result<(), Failure> {
        self.flush();
        if self.processes.len() == 1 {
            // With several, each process's books lag the others' commits until a reload.
            self.check_books_before_reload()?;
        }
        for (_, process) in self.live_processes() {
            process.reload(true).map_err(|e| self.broken("reload", e))?;
        }
        self.reloaded();
        self.collect_outcomes()?;
        let unresolved = self
            .model
            .pending
            .keys()
            .take(3)
            .cloned()
            .collect::<Vec<_>>();
        let missing = self.model.pending.len();
        self.check(
            "every settled request is written or parked once the writer drained",
            missing == 0,
            || format!("{missing} records missing, e.g. {unresolved:?}"),
        )?;
        self.audits += 1;
        let full = self.audits.is_multiple_of(FULL_AUDIT_EVERY) || self.step >= self.config.steps;
        let audit = if full {
            let store = self.process().store.clone();
            self.process()
                .block_on(store.money_audit())
                .map_err(|e| self.broken("audit", e))?
        } else {
            self.light_money_audit()?
        };
        let committed = self.model.committed;
        self.check(
            "no request billed twice",
            !full || audit.records == audit.distinct_requests && audit.records == committed,
            || {
                format!(
                    "{} records, {} request ids, {committed} expected",
                    audit.records, audit.distinct_requests
                )
            },
        )?;
        let (mut costs, mut debits) = (0_i128, 0_i128);
        for money in audit.users.values() {
            costs += i128::from(money.costs.0);
            debits += i128::from(money.credits.0) - i128::from(money.balance.0);
        }
        self.check("Σ cost of records = Σ debits", costs == debits, || {
            format!("records cost {costs}, balances were debited {debits}")
        })?;
        for user in 0..self.model.users.len() {
            let expected = &self.model.users[user];
            let (id, credits, committed, allowance) = (
                expected.id,
                expected.credits,
                expected.committed_cost,
                expected.allowance,
            );
            let stored = audit.users.get(&id).copied().unwrap_or_default();
            self.check(
                "balance = Σ credits − Σ committed cost",
                i128::from(stored.balance.0)
                    == i128::from(stored.credits.0) - i128::from(stored.costs.0)
                    && i128::from(stored.credits.0) == credits
                    && i128::from(stored.costs.0) == committed,
                || format!("user {id}: stored {stored:?}; expected credits {credits}, costs {committed}"),
            )?;
            let in_flight: i128 = self
                .in_flight
                .iter()
                .filter(|r| r.user == user)
                .map(|r| i128::from(r.amount.0))
                .sum();
            let floor = -(in_flight + allowance);
            self.check(
                "no balance below −(reservations in flight, on any process)",
                i128::from(stored.balance.0) >= floor,
                || {
                    format!(
                        "user {id}: database balance {:?} below {floor}",
                        stored.balance
                    )
                },
            )?;
            let books: Vec<_> = self
                .live_processes()
                .map(|(_, p)| p.books.clone())
                .collect();
            for books in books.iter().filter(|books| books.holds_user(id)) {
                let (balance, unflushed) = (books.balance(id), books.unflushed(id));
                self.check(
                    "the books agree with the database once drained",
                    balance == stored.balance && unflushed.is_zero(),
                    || {
                        format!(
                            "user {id}: books {balance:?} (unflushed {unflushed:?}), database {:?}",
                            stored.balance
                        )
                    },
                )?;
            }
        }
        for key in 0..self.model.keys.len() {
            let expected = &self.model.keys[key];
            let stored = audit.keys.get(&expected.id).copied().unwrap_or_default();
            let (id, committed) = (expected.id, expected.committed_cost);
            self.check(
                "key spend = Σ cost of its records",
                stored.spent == stored.costs && i128::from(stored.costs.0) == committed,
                || format!("key {id}: stored {stored:?}, expected {committed}"),
            )?;
            for index in 0..self.processes.len() {
                self.check_key_books(index, key, stored.spent)?;
            }
        }
        if self.redis().is_some() {
            self.check_shared_money(&audit)?;
        }
        Ok(())
    }

    /// One process's view of a key, once drained and reloaded: its spend and its quota.
    fn check_key_books(&mut self, index: usize, key: usize, spent: Nanos) -> Result<(), Failure> {
        let Some(process) = self.processes[index].as_ref() else {
            return Ok(());
        };
        let expected = &self.model.keys[key];
        let (id, hash, quota) = (expected.id, expected.hash.clone(), expected.quota);
        let books = process.books.clone();
        let found = process
            .block_on(process.accounts.resolve(&hash, None))
            .map_err(|e| self.broken("key lookup", format!("{e:?}")))?;
        let (_, held_keys) = books.held();
        if held_keys.contains(&id) {
            let books_spent = books.key_spent(id);
            self.check(
                "the books agree with the database once drained",
                books_spent == spent,
                || format!("key {id}: books spent {books_spent:?}, database {spent:?}"),
            )?;
        }
        let Lookup::Found(entry, _) = found else {
            return Err(self.failure("keys stay found", format!("key {id} missing")));
        };
        self.check(
            "a quota change reaches the books after a reload",
            entry.quota == quota,
            || {
                format!(
                    "key {id}: cached quota {:?}, written {quota:?}",
                    entry.quota
                )
            },
        )
    }

    /// The stored balances and spends, with the credits and costs the simulation knows
    /// in place of the sums over whole tables (which grow with the run: a full audit
    /// every `FULL_AUDIT_EVERY` keeps a long run linear). Every record was matched with
    /// its request by `collect_outcomes` already.
    fn light_money_audit(&mut self) -> Result<MoneyAudit, Failure> {
        let users: Vec<i64> = self.model.users.iter().map(|u| u.id).collect();
        let keys: Vec<i64> = self.model.keys.iter().map(|k| k.id).collect();
        let store = self.process().store.clone();
        let (balances, spends) = self
            .process()
            .block_on(async {
                Ok::<_, crate::store::StoreError>((
                    store.balances_of(&users).await?,
                    store.spends_of(&keys).await?,
                ))
            })
            .map_err(|e| self.broken("read balances", e))?;
        let nanos = |sum: i128| Nanos(i64::try_from(sum).unwrap_or(i64::MAX));
        let mut audit = MoneyAudit {
            records: self.model.committed,
            distinct_requests: self.model.committed,
            ..MoneyAudit::default()
        };
        for user in &self.model.users {
            let money = UserMoney {
                balance: balances.get(&user.id).copied().unwrap_or_default(),
                credits: nanos(user.credits),
                costs: nanos(user.committed_cost),
            };
            audit.users.insert(user.id, money);
        }
        for key in &self.model.keys {
            let money = KeyMoney {
                spent: spends.get(&key.id).copied().unwrap_or_default(),
                costs: nanos(key.committed_cost),
            };
            audit.keys.insert(key.id, money);
        }
        Ok(audit)
    }

    /// Once drained, and before a reload re-reads them: the books' stored amounts are
    /// the database's, except balances credited since the last reload (the feed has not
    /// brought the credit yet). A reload would hide a cost counted twice.
    fn check_books_before_reload(&mut self) -> Result<(), Failure> {
        if self.model.books_may_lag {
            return Ok(());
        }
        let books = self.process().books.clone();
        let (users, keys) = books.held();
        let store = self.process().store.clone();
        let (balances, spends) = self
            .process()
            .block_on(async {
                Ok::<_, crate::store::StoreError>((
                    store.balances_of(&users).await?,
                    store.spends_of(&keys).await?,
                ))
            })
            .map_err(|e| self.broken("read balances", e))?;
        for user in 0..self.model.users.len() {
            let id = self.model.users[user].id;
            let Some(stored) = balances.get(&id).copied() else {
                continue;
            };
            if self.model.users[user].credited_since_reload {
                continue;
            }
            let balance = books.balance(id);
            self.check(
                "the books count each committed cost once",
                balance == stored,
                || format!("user {id}: books {balance:?}, database {stored:?}"),
            )?;
        }
        for (id, stored) in spends {
            let spent = books.key_spent(id);
            self.check(
                "the books count each committed cost once",
                spent == stored,
                || format!("key {id}: books spent {spent:?}, database {stored:?}"),
            )?;
        }
        Ok(())
    }

    /// Reads the records and parked records written since the last look, and matches
    /// them with the requests settled.
    fn collect_outcomes(&mut self) -> Result<(), Failure> {
        let store = self.process().store.clone();
        let (billed, parked) = self
            .process()
            .block_on(async {
                Ok::<_, crate::store::StoreError>((
                    store.billed_after(self.last_record).await?,
                    store.parked_after(self.last_parked).await?,
                ))
            })
            .map_err(|e| self.broken("read records", e))?;
        let mut cut = Vec::new();
        for record in billed {
            self.last_record = record.id;
            let known = match self.model.pending.remove(&record.request_id) {
                Some(pending) => Some(pending),
                None => self.model.lost.remove(&record.request_id).inspect(|_| {
                    self.model.late_commits += 1;
                }),
            };
            let Some(pending) = known else {
                return Err(self.failure(
                    "no request billed twice",
                    format!(
                        "record {} is not a settled request awaiting its record",
                        record.request_id
                    ),
                ));
            };
            let (user, key) = (
                &self.model.users[pending.user],
                &self.model.keys[pending.key],
            );
            // Less only where the writer cut the bill at the storable bound, which the
            // loop's end checks.
            let matches = record.cost <= pending.cost
                && record.cost >= Nanos::ZERO
                && record.user_id == user.id
                && record.key_id == key.id;
            self.check(
                "a record bills what its settlement decided",
                matches,
                || format!("{record:?}, expected {pending:?}"),
            )?;
            self.check(
                "no request both parked and billed",
                !self.model.parked_ids.contains(&record.request_id),
                || record.request_id.clone(),
            )?;
            let billed = Pending {
                cost: record.cost,
                ..pending
            };
            if billed.cost < pending.cost {
                cut.push((record.request_id.clone(), billed));
            }
            self.model.commit(billed);
        }
        self.check_bills_cut_at_the_bound(&cut)?;
        for user in &mut self.model.users {
            user.raised_since_collect = 0;
        }
        for (id, request_id, why) in parked {
            self.last_parked = id;
            let refused = self.faults.is_refused(&request_id);
            let was_pending = self.model.pending.remove(&request_id).is_some()
                || self.model.lost.remove(&request_id).is_some();
            self.check(
                "only a record the database refuses is parked",
                refused && was_pending,
                || format!("{request_id} parked: {why} (refusal injected: {refused}, awaiting its record: {was_pending})"),
            )?;
            self.model.parked += 1;
            self.model.parked_ids.insert(request_id);
        }
        Ok(())
    }

    /// A bill the writer cut (`Committer::commit_within_bound`) left the key's spend at
    /// the storable bound, or the user's balance at its floor: every record committed
    /// before it was collected with it or earlier, so the model's sums are the database's
    /// at that commit, except credits since the last collection, which may have lifted
    /// the balance (later bills only lower it).
    fn check_bills_cut_at_the_bound(&mut self, cut: &[(String, Pending)]) -> Result<(), Failure> {
        for (request_id, billed) in cut {
            let spent = self.model.keys[billed.key].committed_cost;
            let user = &self.model.users[billed.user];
            let (balance, raised) = (user.balance(), user.raised_since_collect);
            self.check(
                "a bill is cut only at the storable bound",
                spent == i128::from(MAX_AMOUNT.0) || balance - raised <= -i128::from(MAX_AMOUNT.0),
                || format!("{request_id} billed {:?}: key spent {spent}, user balance {balance} less credits since {raised}", billed.cost),
            )?;
        }
        Ok(())
    }

    /// The current process dies: its books, caches, requests in flight and every record
    /// it had not committed are gone. A new process starts on the same database (with
    /// shared state: as a new instance; the dead one's holds count until its lease ends).
    pub(super) fn crash(&mut self) -> Result<(), Failure> {
        let index = self.current;
        let in_flight = self
            .in_flight
            .iter()
            .filter(|r| r.instance == index)
            .count();
        self.operation(
            "crash",
            format!("process {index}: {in_flight} requests in flight"),
        );
        self.faults.count(FaultKind::Crash);
        let committed_before = self.model.committed;
        // The runtime goes first, so no record reaches the writer from a dropped request.
        let dead = self.processes[index].take();
        self.dead_instances
            .extend(dead.as_ref().and_then(Process::instance));
        drop(dead);
        self.in_flight.retain(|request| request.instance != index);
        let process = self.start_process()?;
        self.processes[index] = Some(process);
        // The other processes' writers commit on their own threads: drain them, so the
        // count below and the outcomes collected describe the same moment. In an outage
        // they cannot drain (a commit that timed out may still land), so there the count
        // may only run ahead of the model; the next audit, after the drain, is exact.
        let drained = self.processes.len() == 1 || !self.in_outage();
        if self.processes.len() > 1 && drained {
            self.flush();
        }
        self.collect_outcomes()?;
        self.model.books_may_lag = true;
        let lost: Vec<String> = self
            .model
            .pending
            .iter()
            .filter(|(_, pending)| pending.instance == index)
            .map(|(request_id, _)| request_id.clone())
            .collect();
        self.lost_in_crashes += lost.len() as u64;
        for request_id in lost {
            if let Some(pending) = self.model.pending.remove(&request_id) {
                self.model.lost.insert(request_id, pending);
            }
        }
        let store = self.process().store.clone();
        let records = self
            .process()
            .block_on(store.usage_count())
            .map_err(|e| self.broken("audit", e))?;
        let committed = self.model.committed;
        let counted = match drained {
            true => records == committed,
            false => records >= committed,
        };
        self.check(
            "nothing committed is lost in a crash",
            counted && committed >= committed_before,
            || format!("{records} records after the crash, {committed} known committed"),
        )
    }
}
