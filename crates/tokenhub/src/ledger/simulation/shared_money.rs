//! Money shared across processes in Redis: the faults the driver injects there (Redis
//! losing its data, a lost reply, the end of a dead instance's lease), the heartbeats
//! that repair them, and the audit of what Redis holds against the books and the
//! database.

use std::collections::{BTreeMap, HashMap};

use super::{Failure, FaultKind, Sim};
use crate::ledger::books::Refusal;
use crate::ledger::money::Nanos;
use crate::shared::money::{Account, Admission, Request};
use crate::shared::{Loss, SharedError};
use crate::store::MoneyAudit;

impl Sim<'_> {
    /// The current process's heartbeat.
    pub(super) fn heartbeat(&mut self) -> Result<(), Failure> {
        let index = self.current;
        match self.process().heartbeat() {
            Ok(rebuilt) => self.operation(
                "heartbeat",
                format!("process {index}: holds written back: {rebuilt}"),
            ),
            // Redis answered too late: the process is marked for a rebuild.
            Err(error) => self.operation("heartbeat failed", format!("process {index}: {error}")),
        }
        Ok(())
    }

    fn beat_all(&mut self) {
        for index in 0..self.processes.len() {
            if self.processes[index].is_some() {
                self.current = index;
                // A failed beat is logged as an operation; the next one repairs it.
                let _ = self.heartbeat();
            }
        }
    }

    /// A lease's time passes: every live process beats (writing its holds back if Redis
    /// lost them), the leases of crashed instances end, and Redis's data is settled.
    pub(super) fn lease_passes(&mut self) -> Result<(), Failure> {
        let current = self.current;
        self.beat_all();
        self.current = current;
        let redis = self.redis().expect("leases pass only with shared state");
        let dead = std::mem::take(&mut self.dead_instances);
        for instance in &dead {
            redis
                .expire(instance)
                .map_err(|e| self.broken("end a lease", e))?;
            self.faults.count(FaultKind::LeaseEnded);
        }
        redis
            .end_settling()
            .map_err(|e| self.broken("settle Redis", e))?;
        self.operation(
            "a lease passes",
            format!("{} dead instances' leases end", dead.len()),
        );
        Ok(())
    }

    /// Redis restarts empty: every key of the deployment is gone at once.
    pub(super) fn redis_flush(&mut self) -> Result<(), Failure> {
        let redis = self.redis().expect("Redis flushes only with shared state");
        let removed = redis.flush().map_err(|e| self.broken("flush Redis", e))?;
        self.faults.count(FaultKind::RedisFlush);
        self.operation("Redis loses its data", format!("{removed} keys"));
        Ok(())
    }

    /// The next money script (any process's: admission, settlement, commit or rebuild)
    /// is lost, before Redis runs it or after (its reply).
    pub(super) fn lost_redis_script(&mut self) -> Result<(), Failure> {
        let redis = self
            .redis()
            .expect("scripts are lost only with shared state");
        let at = if self.rng.chance(500) {
            Loss::Request
        } else {
            Loss::Reply
        };
        redis.arm_loss(at);
        self.operation("arm a lost Redis script", format!("{at:?}"));
        Ok(())
    }

    /// Once drained and reloaded, after a heartbeat of every process (which the gateway
    /// runs every third of a lease): Redis holds the database's amounts, and for each
    /// live process exactly what its books hold; and it decides to the nano-dollar.
    pub(super) fn check_shared_money(&mut self, audit: &MoneyAudit) -> Result<(), Failure> {
        if let Some(redis) = self.redis() {
            redis.disarm();
        }
        let current = self.current;
        self.beat_all();
        self.current = current;
        // A settlement's correction may still be on its way to Redis, on its own task.
        for (_, process) in self.live_processes() {
            if let Some(shared) = process.books.shared() {
                process.block_on(shared.updates_landed());
            }
        }
        let holds = self.books_holds();
        for user in 0..self.model.users.len() {
            let id = self.model.users[user].id;
            let stored = audit.users.get(&id).map_or(Nanos::ZERO, |u| u.balance);
            self.check_money_hash(Account::User(id), stored, &holds)?;
        }
        for key in 0..self.model.keys.len() {
            let id = self.model.keys[key].id;
            let stored = audit.keys.get(&id).map_or(Nanos::ZERO, |k| k.spent);
            self.check_money_hash(Account::Key(id), stored, &holds)?;
        }
        for user in 0..self.model.users.len() {
            self.probe_exactness(user)?;
        }
        Ok(())
    }

    /// What each live process's books hold, by instance id and account.
    fn books_holds(&self) -> BTreeMap<String, HashMap<String, i128>> {
        self.live_processes()
            .filter_map(|(_, process)| {
                let instance = process.instance()?;
                let holds = process
                    .books
                    .holds()
                    .into_iter()
                    .map(|(account, held)| (format!("{account:?}"), i128::from(held.0)))
                    .collect();
                Some((instance, holds))
            })
            .collect()
    }

    fn check_money_hash(
        &mut self,
        account: Account,
        stored: Nanos,
        holds: &BTreeMap<String, HashMap<String, i128>>,
    ) -> Result<(), Failure> {
        let redis = self.redis().expect("with shared state");
        let hash = redis
            .money(account)
            .map_err(|e| self.broken("read Redis", e))?;
        if let Some((amount, _)) = hash.amount.filter(|_| !hash.ended_holds) {
            // A crashed instance may have committed a batch and died before sharing it:
            // until its lease ends, Redis's amount lags the database by that cost, which
            // its hold still covers (so nothing more is available than in the database).
            let covered: i128 = hash
                .live_holds
                .iter()
                .filter(|(instance, _)| self.dead_instances.contains(*instance))
                .map(|(_, held)| *held)
                .sum();
            let lag = match account {
                Account::User(_) => amount - i128::from(stored.0),
                Account::Key(_) => i128::from(stored.0) - amount,
            };
            self.check(
                "Redis amounts converge to the database",
                lag == 0 || (0..=covered).contains(&lag),
                || format!("{account:?}: Redis {amount}, database {stored:?}, crashed instances hold {covered}"),
            )?;
        }
        let name = format!("{account:?}");
        for (instance, books) in holds {
            let expected = books.get(&name).copied().unwrap_or(0);
            let held = hash.live_holds.get(instance).copied().unwrap_or(0);
            self.check(
                "Redis holds what each process's books hold",
                held == expected,
                || format!("{account:?}: instance {instance} holds {held} in Redis, {expected} in its books"),
            )?;
        }
        let strays: Vec<&String> = hash
            .live_holds
            .keys()
            .filter(|i| !holds.contains_key(*i) && !self.dead_instances.contains(*i))
            .collect();
        self.check(
            "only live instances' holds count",
            strays.is_empty(),
            || format!("{account:?}: holds of unknown instances {strays:?}"),
        )
    }

    /// Asks Redis for one nano-dollar more than it has available (for the user, and for
    /// a key within its quota): refused, saying exactly what is available. Doubles would
    /// round both beyond 2^53 and admit it.
    fn probe_exactness(&mut self, user: usize) -> Result<(), Failure> {
        let redis = self.redis().expect("with shared state");
        let user_id = self.model.users[user].id;
        let hash = redis
            .money(Account::User(user_id))
            .map_err(|e| self.broken("read Redis", e))?;
        let Some((amount, _)) = hash.amount else {
            return Ok(());
        };
        let available = amount - hash.held();
        let keys = self.model.users[user].keys.clone();
        let Ok(probe) = i64::try_from(available + 1) else {
            return Ok(());
        };
        if probe > 0 {
            let request = probe_request(user_id, self.model.keys[keys[0]].id, None, probe);
            let decided = self.admit_probe(request)?;
            let exact = Some(Refusal::Balance {
                available: Nanos(probe - 1),
                needed: Nanos(probe),
            });
            self.check(
                "Redis refuses a nano-dollar beyond the available, exactly",
                decided.is_none() || decided == exact,
                || format!("user {user_id}: available {available}, asked {probe}: {decided:?}"),
            )?;
        }
        for key in keys {
            let (key_id, quota) = (self.model.keys[key].id, self.model.keys[key].quota);
            let Some(quota) = quota else { continue };
            let spend = redis
                .money(Account::Key(key_id))
                .map_err(|e| self.broken("read Redis", e))?;
            let Some((spent, _)) = spend.amount else {
                continue;
            };
            let remaining = i128::from(quota.0.max(0)) - spent - spend.held();
            let Ok(probe) = i64::try_from(remaining + 1) else {
                continue;
            };
            if probe <= 0 || i128::from(probe) > available {
                continue;
            }
            let request = probe_request(user_id, key_id, Some(quota), probe);
            let decided = self.admit_probe(request)?;
            let exact = Some(Refusal::KeyQuota {
                remaining: Nanos(probe - 1),
                needed: Nanos(probe),
            });
            self.check(
                "Redis refuses a nano-dollar beyond the key's quota, exactly",
                decided.is_none() || decided == exact,
                || format!("key {key_id}: remaining {remaining}, asked {probe}: {decided:?}"),
            )?;
        }
        Ok(())
    }

    /// Runs one admission of a probe; `None` when Redis could not decide it (settling
    /// after a loss, an amount not loaded, a lost reply).
    fn admit_probe(&mut self, request: Request) -> Result<Option<Refusal>, Failure> {
        let process = self.process();
        let Some(shared) = process.books.shared().cloned() else {
            return Ok(None);
        };
        let decided = process.block_on(shared.admit_request(request));
        self.operation("probe Redis", format!("{request:?}: {decided:?}"));
        match decided {
            Ok(Admission::Refused(refusal)) => Ok(Some(refusal)),
            Ok(Admission::Admitted) => Err(self.failure(
                "Redis refuses a nano-dollar beyond the available, exactly",
                format!("{request:?} was admitted"),
            )),
            Ok(Admission::Missing(_) | Admission::Rebuilding | Admission::Limited(_)) => Ok(None),
            // No loss is armed during an audit: only the connection may fail, never the
            // script (a script error refuses every such request with a 503).
            Err(SharedError::Unavailable(error))
                if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() =>
            {
                Ok(None)
            }
            Err(error) => Err(self.failure(
                "Redis decides every admission",
                format!("{request:?}: {error}"),
            )),
        }
    }
}

fn probe_request(user_id: i64, key_id: i64, quota: Option<Nanos>, amount: i64) -> Request {
    Request {
        user_id,
        key_id,
        key_quota: quota,
        rpm: None,
        tpm: None,
        tokens: 0,
        amount: Nanos(amount),
    }
}
