//! The operations: what a gateway's users, admins and failures do to the money.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::model::{KeyModel, Pending, UserModel};
use super::{DEFAULT_OUTPUT, FaultKind, InFlight, Process, Sim};
use crate::accounts::{Actor, Role, redemption};
use crate::catalog::Model as CatalogModel;
use crate::catalog::accounts::Lookup;
use crate::ledger::books::Refusal;
use crate::ledger::money::{MAX_AMOUNT, NANOS_PER_USD, Nanos, PerMillion, Prices, TokenCounts};
use crate::ledger::price_tiers::{PriceTier, PriceTierSpec, Pricing};
use crate::protocol::openai::operation::Operation;
use crate::protocol::openai::request::RequestFacts;
use crate::relay::RelayError;
use crate::relay::bounds::{token_ceiling, worst_case_tokens};
use crate::relay::reserve;
use crate::relay::settle::{Meter, Outcome, Settlement};
use crate::store::{BatchAttempt, KeyLimits, KeyUpdate, LedgerKind, NewKey, Written};

const USERS: usize = 6;
const KEYS_PER_USER: usize = 2;
/// Most requests in flight at once; beyond it the driver settles.
const MAX_IN_FLIGHT: usize = 200;

#[derive(Clone, Copy, Debug)]
enum Op {
    Reserve,
    Settle,
    Cancel,
    PassTime,
    Credit,
    Debit,
    Redeem,
    QuotaChange,
    Reload,
    Flush,
    WriterRestart,
    Crash,
    Outage,
    DuplicateBatch,
    /// With shared state: one process's heartbeat (its holds written back if lost).
    Heartbeat,
    /// With shared state: a lease's time passes (every process beats, dead ones' leases
    /// end, Redis's data settles after a loss).
    LeasePasses,
    /// With shared state: Redis restarted empty (or was flushed).
    RedisFlush,
    /// With shared state: a money script lost before Redis runs it, or its reply.
    LostRedisScript,
}

/// Relative weights of the operations, out of their sum.
const WEIGHTS: [(Op, u64); 14] = [
    (Op::Reserve, 34_000),
    (Op::Settle, 32_000),
    (Op::Cancel, 4_000),
    (Op::PassTime, 1_000),
    (Op::Credit, 3_000),
    (Op::Debit, 1_000),
    (Op::Redeem, 400),
    (Op::QuotaChange, 1_500),
    (Op::Reload, 3_000),
    (Op::Flush, 800),
    (Op::WriterRestart, 300),
    (Op::Crash, 40),
    (Op::Outage, 150),
    (Op::DuplicateBatch, 300),
];

/// Drawn besides `WEIGHTS` with shared state (the draws of a run without it stay as
/// they were, so its seeds replay).
const SHARED_WEIGHTS: [(Op, u64); 4] = [
    (Op::Heartbeat, 2_000),
    (Op::LeasePasses, 300),
    (Op::RedisFlush, 40),
    (Op::LostRedisScript, 800),
];

fn usd(dollars: i64) -> Nanos {
    Nanos(dollars * NANOS_PER_USD)
}

impl Sim<'_> {
    pub(super) fn setup(&mut self) -> Result<(), Failure> {
        for _ in 0..self.shared.instances() {
            let process = self.start_process()?;
            self.processes.push(Some(process));
        }
        self.catalog = catalog();
        let mut openings = vec![
            Nanos::ZERO,
            usd(5),
            usd(100),
            usd(10_000),
            MAX_AMOUNT,
            usd(-1),
        ];
        if self.redis().is_some() {
            // Beyond 2^53 nano-dollars, where a double is no longer exact: the scripts
            // must compare these to the nano (`shared/money.rs`).
            openings.extend([
                Nanos((1 << 53) + 1),
                MAX_AMOUNT - Nanos(1),
                Nanos(987_654_321_987_654_321),
            ]);
        }
        let quotas = [
            None,
            None,
            Some(usd(1)),
            Some(usd(50)),
            Some(Nanos::ZERO),
            Some(MAX_AMOUNT),
        ];
        for u in 0..USERS {
            let opening = *self.rng.pick(&openings);
            let name = format!("sim-user-{u}");
            let store = self.process().store.clone();
            let user = self
                .process()
                .block_on(store.create_user(&name, "user", None, opening))
                .map_err(|e| self.broken("create user", e))?;
            let mut keys = Vec::new();
            for k in 0..KEYS_PER_USER {
                let new = NewKey {
                    user_id: user.id,
                    name: format!("key-{k}"),
                    key_hash: format!("sim-key-{}-{u}-{k}", self.config.seed),
                    key_prefix: "sk-sim".into(),
                    quota: *self.rng.pick(&quotas),
                    ..NewKey::default()
                };
                let key = self
                    .process()
                    .block_on(store.create_key(&new))
                    .map_err(|e| self.broken("create key", e))?;
                keys.push(self.model.keys.len());
                self.model.keys.push(KeyModel {
                    id: key.id,
                    hash: new.key_hash.clone(),
                    quota: key.quota,
                    committed_cost: 0,
                });
            }
            self.model.users.push(UserModel {
                id: user.id,
                credits: i128::from(opening.0),
                committed_cost: 0,
                allowance: i128::from((-opening.0).max(0)),
                keys,
                credited_since_reload: false,
                raised_since_collect: 0,
            });
        }
        Ok(())
    }

    pub(super) fn start_process(&self) -> Result<Process, Failure> {
        Process::start(
            &self.config.database_url,
            &self.secret,
            self.faults.clone(),
            self.shared,
        )
        .map_err(|e| self.broken("start a process", e))
    }

    pub(super) fn random_operation(&mut self) -> Result<(), Failure> {
        if self.processes.len() > 1 {
            self.current = self.rng.below(self.processes.len() as u64) as usize;
        }
        let shared: &[(Op, u64)] = if self.redis().is_some() {
            &SHARED_WEIGHTS
        } else {
            &[]
        };
        let weights = WEIGHTS.iter().chain(shared).copied();
        let total: u64 = weights.clone().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        let mut op = Op::Reserve;
        for (candidate, weight) in weights {
            if roll < weight {
                op = candidate;
                break;
            }
            roll -= weight;
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            op = Op::Settle;
        }
        if self.in_flight.is_empty() && matches!(op, Op::Settle | Op::Cancel) {
            op = Op::Reserve;
        }
        let store_down = self.in_outage();
        match op {
            Op::Reserve => self.reserve(),
            Op::Settle => self.settle(None),
            Op::Cancel => self.cancel(),
            Op::PassTime => {
                let micros = self.rng.between(0, 2_000);
                self.operation("pass time", format!("{micros} µs"));
                self.process().pass_time(Duration::from_micros(micros));
                Ok(())
            }
            // The database is down for every client, not only the writer.
            Op::Credit
            | Op::Debit
            | Op::Redeem
            | Op::QuotaChange
            | Op::Reload
            | Op::Flush
            | Op::DuplicateBatch
                if store_down =>
            {
                self.operation("skipped: database down", format!("{op:?}"));
                Ok(())
            }
            Op::Credit => self.credit(false),
            Op::Debit => self.credit(true),
            Op::Redeem => self.redeem(),
            Op::QuotaChange => self.change_quota(),
            Op::Reload => {
                let money = self.rng.chance(300);
                self.operation("reload", format!("refresh money: {money}"));
                let process = self.process();
                process
                    .reload(money)
                    .map_err(|e| self.broken("reload", e))?;
                self.reloaded();
                Ok(())
            }
            Op::Flush => {
                self.operation("flush", String::new());
                self.flush();
                Ok(())
            }
            // A writer keeps its connection between batches, and an old one lives while
            // requests it serves are in flight: two at a time leave the small SQLite pool
            // (5) room for everything else.
            Op::WriterRestart if !self.process().old_writers.is_empty() => {
                self.operation("skipped: a restarted writer still drains", String::new());
                Ok(())
            }
            Op::WriterRestart => {
                self.operation("writer restart", String::new());
                self.faults.count(FaultKind::WriterRestart);
                self.process_mut().restart_writer();
                Ok(())
            }
            Op::Crash => self.crash(),
            Op::Outage => {
                if !store_down {
                    let until = self.step + self.rng.between(5, 300);
                    self.operation("outage", format!("until step {until}"));
                    self.faults.count(FaultKind::Outage);
                    self.faults.set_outage(true);
                    self.outage_until = Some(until);
                }
                Ok(())
            }
            Op::DuplicateBatch => self.duplicate_batch(),
            Op::Heartbeat => self.heartbeat(),
            Op::LeasePasses => self.lease_passes(),
            Op::RedisFlush => self.redis_flush(),
            Op::LostRedisScript => self.lost_redis_script(),
        }
    }

    /// The change feed was applied: every credit made so far is in the books.
    pub(super) fn reloaded(&mut self) {
        for user in &mut self.model.users {
            user.credited_since_reload = false;
        }
        self.model.books_may_lag = false;
    }

    /// Waits until every process's writers committed (or parked) what they were sent.
    pub(super) fn flush(&mut self) {
        for index in 0..self.processes.len() {
            let in_use: Vec<u64> = self
                .in_flight
                .iter()
                .filter(|f| f.instance == index)
                .map(|f| f.writer_generation)
                .collect();
            if let Some(process) = self.processes[index].as_mut() {
                process.flush(|generation| in_use.contains(&generation));
            }
        }
    }

    fn reserve(&mut self) -> Result<(), Failure> {
        let user = self.rng.below(self.model.users.len() as u64) as usize;
        let key = *self.rng.pick(&self.model.users[user].keys);
        let (user_id, key_id) = (self.model.users[user].id, self.model.keys[key].id);
        let hash = self.model.keys[key].hash.clone();
        let lookup = if self.in_outage() {
            self.process().accounts.cached(&hash)
        } else {
            let accounts = self.process().accounts.clone();
            let resolved = self.process().block_on(accounts.resolve(&hash, None));
            Some(resolved.map_err(|e| self.broken("key lookup", format!("{e:?}")))?)
        };
        let entry = match lookup {
            Some(Lookup::Found(entry, _)) => entry,
            Some(Lookup::Missing) => {
                return Err(self.failure("keys stay found", format!("key {key_id} missing")));
            }
            None => {
                self.operation("refused: key not cached, database down", String::new());
                return Ok(());
            }
        };
        let m = self.rng.below(self.catalog.len() as u64) as usize;
        let facts = self.request_facts(&self.catalog[m].id.clone());
        let body = self.body(&facts);
        let model = &self.catalog[m];
        let worst = worst_case_tokens(model, &facts, body.len(), DEFAULT_OUTPUT);
        let ceiling = token_ceiling(model, &facts);
        let request_id = format!("sim-{}-{}", self.config.seed, self.next_request);
        self.next_request += 1;
        // Drawn whatever the outcome, so the stream of draws does not depend on it.
        let contacted = self.rng.chance(900);
        let process = self.process();
        let mut settlement = Settlement::new(
            process.books.clone(),
            process.writer.clone(),
            request_id.clone(),
            facts.operation,
            user_id,
            key_id,
            body,
        );
        settlement.set_model(&model.id, model.pricing.clone(), facts.stream);
        settlement.bound_usage(ceiling);
        let amount = settlement.worst_case_cost(&model.pricing, worst);
        let books = process.books.clone();
        let before = books.available(user_id);
        let reserved_before = books.balance(user_id) - before;
        let detail = format!(
            "{request_id} user {user_id} key {key_id} model {} n {} max_tokens {:?} worst {worst:?}: {amount:?}",
            model.id, facts.choices, facts.max_output_tokens,
        );
        let accounts = process.accounts.clone();
        let decided = process.block_on(reserve::reserve(&books, &accounts, &entry, amount));
        // Only with shared state do other processes hold money this one cannot see.
        let alone = self.redis().is_none();
        match decided {
            Ok(reservation) => {
                self.operation("reserve", detail);
                let after = books.available(user_id);
                let reserved_after = books.balance(user_id) - after;
                self.check(
                    "a reservation holds exactly its amount",
                    reserved_after == reserved_before + amount,
                    || format!("reserved {reserved_before:?} → {reserved_after:?} for {amount:?}"),
                )?;
                self.check(
                    "admitted only within the balance",
                    !alone || amount.is_zero() || after >= Nanos::ZERO,
                    || format!("available {after:?} after reserving {amount:?}"),
                )?;
                if let Some(quota) = entry.quota.filter(|_| alone && !amount.is_zero()) {
                    let held: i128 = self
                        .in_flight
                        .iter()
                        .filter(|f| f.key == key)
                        .map(|f| i128::from(f.amount.0))
                        .sum::<i128>()
                        + i128::from(amount.0);
                    let spent = books.key_spent(key_id);
                    let remaining = i128::from(quota.0) - i128::from(spent.0) - held;
                    self.check(
                        "admitted only within the key's quota",
                        remaining >= 0,
                        || format!("key {key_id}: quota {quota:?}, spent {spent:?}, held {held}"),
                    )?;
                }
                settlement.hold(reservation);
                if contacted {
                    settlement.attempt(1);
                }
                let writer_generation = self.process().writer_generation;
                self.in_flight.push(InFlight {
                    request_id,
                    user,
                    key,
                    amount,
                    settlement,
                    worst,
                    ceiling,
                    model: m,
                    contacted,
                    output_limited: facts.max_output_tokens.is_some(),
                    writer_generation,
                    instance: self.current,
                });
            }
            Err(RelayError::Insufficient(refusal)) => {
                self.operation("reserve refused", format!("{detail}: {refusal:?}"));
                let consistent = match refusal {
                    Refusal::Balance { available, needed } => {
                        (!alone || available == before) && available < needed
                    }
                    Refusal::KeyQuota { remaining, needed } => remaining < needed,
                };
                self.check("a refusal says why", consistent, || format!("{refusal:?}"))?;
                self.refused(settlement, request_id, user, key, 402);
            }
            Err(error) => {
                // Redis unavailable, lost its data, or a reply lost: refused with a 503.
                self.operation(
                    "reserve refused: shared state",
                    format!("{detail}: {error}"),
                );
                let expected = matches!(error, RelayError::SharedStateUnavailable);
                self.check("a refusal says why", expected, || format!("{error:?}"))?;
                self.refused(settlement, request_id, user, key, 503);
            }
        }
        Ok(())
    }

    /// A refused request still leaves its one record, at no cost.
    fn refused(
        &mut self,
        settlement: Settlement,
        request_id: String,
        user: usize,
        key: usize,
        status: u16,
    ) {
        {
            let _runtime = self.process().enter();
            settlement.fail(status, "refused");
        }
        let instance = self.current;
        self.model.pending.insert(
            request_id,
            Pending {
                user,
                key,
                cost: Nanos::ZERO,
                instance,
            },
        );
    }

    fn request_facts(&mut self, model: &str) -> RequestFacts {
        let operation = match self.rng.below(20) {
            0 => Operation::Embeddings,
            1 | 2 => Operation::Completions,
            _ => Operation::Chat,
        };
        let max_output_tokens = match self.rng.below(10) {
            0..=2 => None,
            3..=7 => Some(self.rng.between(0, 4096)),
            8 => Some(self.rng.between(4096, 1 << 22)),
            _ => Some(*self.rng.pick(&[u64::MAX, i64::MAX as u64, 1 << 40])),
        };
        let choices = match self.rng.below(20) {
            0..=13 => 1,
            14..=17 => self.rng.between(2, 8),
            18 => 128,
            _ => *self.rng.pick(&[u64::from(u32::MAX), u64::MAX]),
        };
        RequestFacts {
            operation,
            model: model.to_string(),
            stream: self.rng.chance(500),
            client_wants_usage: false,
            max_output_tokens,
            choices,
            pinned_channel: None,
        }
    }

    fn body(&mut self, facts: &RequestFacts) -> Bytes {
        let length = if self.rng.chance(30) {
            self.rng.between(50_000, 200_000)
        } else {
            self.rng.between(0, 2_000)
        } as usize;
        let words = "lorem ipsum dolor sit amet ".repeat(length / 27 + 1);
        let text = &words[..length];
        Bytes::from(format!(
            r#"{{"model":"{}","messages":[{{"role":"user","content":"{text}"}}]}}"#,
            facts.model
        ))
    }

    /// Settles a request in flight with usage below (0), at (1) or above (2) its
    /// reservation; `mode` forces one.
    pub(super) fn settle(&mut self, mode: Option<u64>) -> Result<(), Failure> {
        let index = self.rng.below(self.in_flight.len() as u64) as usize;
        let mut request = self.in_flight.swap_remove(index);
        self.current = request.instance;
        let mode = mode.unwrap_or_else(|| self.rng.below(3));
        let counts = self.usage(&request.worst, mode);
        let tier = match self.rng.below(20) {
            0..=3 => Some("priority".to_string()),
            4 => Some("flex".to_string()),
            _ => None,
        };
        let pricing = self.catalog[request.model].pricing.clone();
        let (billed, _) = counts.clamped(request.ceiling);
        let prices = tier
            .as_deref()
            .and_then(|t| pricing.for_service_tier(t))
            .map_or(pricing.standard, |choice| choice.prices);
        let expected = prices.cost(billed);
        if self.rng.chance(2) {
            self.faults.refuse(&request.request_id);
        }
        let user_id = self.model.users[request.user].id;
        let books = self.process().books.clone();
        let before = books.available(user_id);
        // Inside the runtime, as in the gateway: the settlement's Redis update is spawned.
        let runtime = self.process().enter();
        let charge = request.settlement.finish(
            Meter {
                usage: Some(counts),
                service_tier: tier.clone(),
                ..Meter::default()
            },
            Outcome {
                status: 200,
                error: None,
            },
        );
        drop(runtime);
        let after = books.available(user_id);
        let amount = request.amount;
        let priced = expected;
        let expected = charge.map_or(priced, |charge| charge.cost);
        let key_id = self.model.keys[request.key].id;
        // At the bound, counting what the requests still in flight hold. One process
        // never passes it, but with several the stored amounts carry the others' costs,
        // each clamped to its own process's room (`Books::settle`), so together they may
        // pass it by what the others had in flight (seed 1797921379005780708, step
        // 418692 with --shared redis: spent exactly the bound, 1 nano still reserved).
        let held = books.key_spent(key_id) + books.key_reserved(key_id);
        let available = books.available(user_id);
        self.check(
            "the bill is the price, or less only at the storable bound",
            expected == priced
                || (expected < priced
                    && (held >= MAX_AMOUNT || available <= Nanos(-MAX_AMOUNT.0))),
            || format!("priced {priced:?}, billed {expected:?}; key holds {held:?}, available {available:?}"),
        )?;
        self.operation(
            "settle",
            format!(
                "{} usage {} {counts:?} tier {tier:?}: reserved {amount:?}, costs {expected:?}",
                request.request_id,
                ["below", "at", "above"][mode as usize]
            ),
        );
        let moved = i128::from(after.0) - i128::from(before.0);
        // With several processes, their writers run beside the driver and may move the
        // stored amount meanwhile (`Process`).
        let alone = self.processes.len() == 1;
        self.check(
            "settling moves exactly the cost",
            !alone || moved == i128::from(amount.0) - i128::from(expected.0),
            || format!("available {before:?} → {after:?}; reserved {amount:?}, cost {expected:?}"),
        )?;
        self.check(
            "usage within the reservation costs at most it",
            mode == 2 || expected <= amount,
            || format!("cost {expected:?} > reservation {amount:?} for {counts:?}"),
        )?;
        // With max_tokens set, only a prompt beyond its estimate may cost more than the
        // reservation: the output billed is the output reserved, at most.
        let bound = pricing.worst_case_cost(
            &pricing.standard,
            billed.prompt.max(request.worst.prompt),
            request.worst.completion,
        );
        self.check(
            "the output billed never exceeds what the client allowed",
            !request.output_limited || expected <= bound,
            || {
                format!(
                    "cost {expected:?} > {bound:?} for {billed:?}, reserved {:?}",
                    request.worst
                )
            },
        )?;
        self.close(
            request.request_id,
            request.user,
            request.key,
            amount,
            expected,
        );
        Ok(())
    }

    fn usage(&mut self, worst: &TokenCounts, mode: u64) -> TokenCounts {
        let (prompt, completion) = match mode {
            0 => (
                self.rng.between(0, worst.prompt),
                self.rng.between(0, worst.completion),
            ),
            1 => (worst.prompt, worst.completion),
            _ => {
                let prompt = if self.rng.chance(100) {
                    u64::MAX
                } else {
                    worst.prompt.saturating_mul(self.rng.between(2, 10))
                };
                let completion = if self.rng.chance(100) {
                    u64::MAX
                } else {
                    worst
                        .completion
                        .saturating_add(self.rng.between(1, 1 << 20))
                };
                (prompt, completion)
            }
        };
        let cached = if self.rng.chance(300) {
            self.rng.between(0, prompt)
        } else {
            0
        };
        let cache_write = if self.rng.chance(300) {
            self.rng.between(0, prompt - cached)
        } else {
            0
        };
        let mut counts = TokenCounts {
            prompt,
            cached,
            cache_write,
            completion,
            explicit_cached: self.rng.between(0, cached),
            cache_write_1h: self.rng.between(0, cache_write),
        };
        if mode == 2 && self.rng.chance(100) {
            // An absurd breakdown: more cache tokens than the prompt.
            counts.cached = u64::MAX;
            counts.cache_write = u64::MAX;
        }
        counts
    }

    /// A client went away: the request is dropped unsettled, as a disconnect drops it.
    fn cancel(&mut self) -> Result<(), Failure> {
        let index = self.rng.below(self.in_flight.len() as u64) as usize;
        let InFlight {
            request_id,
            user,
            key,
            amount,
            mut settlement,
            contacted,
            instance,
            ..
        } = self.in_flight.swap_remove(index);
        self.current = instance;
        let user_id = self.model.users[user].id;
        let books = self.process().books.clone();
        let before = books.available(user_id);
        let runtime = self.process().enter();
        // What dropping it does (`impl Drop for Settlement`), with the charge kept.
        let charge = settlement.finish(Meter::default(), Outcome::abandoned("request"));
        drop(runtime);
        let after = books.available(user_id);
        let cost = i128::from(charge.map_or(0, |charge| charge.cost.0));
        let moved = i128::from(after.0) - i128::from(before.0);
        self.check(
            "settling moves exactly the cost",
            self.processes.len() > 1 || moved == i128::from(amount.0) - cost,
            || format!("available {before:?} → {after:?}; reserved {amount:?}, cost {cost}"),
        )?;
        self.operation(
            "cancel",
            format!(
                "{request_id} upstream contacted {contacted}: reserved {amount:?}, costs {cost}"
            ),
        );
        self.check(
            "a disconnect bills at most the prompt sent",
            cost >= 0 && (contacted || cost == 0),
            || format!("available {before:?} → {after:?}; reserved {amount:?}"),
        )?;
        self.close(request_id, user, key, amount, Nanos(cost as i64));
        Ok(())
    }

    /// A settled request: its record is on its way to the database.
    fn close(&mut self, request_id: String, user: usize, key: usize, amount: Nanos, cost: Nanos) {
        let overrun = i128::from(cost.0) - i128::from(amount.0);
        self.model.users[user].allowance += overrun.max(0);
        let instance = self.current;
        self.model.pending.insert(
            request_id,
            Pending {
                user,
                key,
                cost,
                instance,
            },
        );
    }
}

use super::Failure;

/// The synthetic models: free, cheap with a dearer service tier, dear with a dearer
/// cache write, a price at the storable maximum, a nano-dollar price, and context
/// windows from unknown (0) to 2M.
fn catalog() -> Vec<CatalogModel> {
    let price = |dollars: &str| PerMillion(dollars.parse::<Nanos>().expect("a price"));
    let priority = PriceTier::try_from(PriceTierSpec {
        name: "priority".into(),
        service_tier: Some("priority".into()),
        multiplier: Some("2".into()),
        ..PriceTierSpec::default()
    })
    .expect("a valid tier");
    let model = |id: &str, context: u64, prices: Prices, tiers: &[PriceTier]| CatalogModel {
        id: id.into(),
        provider: "sim".into(),
        context,
        prices,
        pricing: Arc::new(Pricing::new(prices, tiers)),
        created: 0,
    };
    vec![
        model("free", 8_192, Prices::default(), &[]),
        model(
            "cheap",
            128_000,
            Prices {
                cached_input: price("0.075"),
                output: price("0.6"),
                ..Prices::uniform(price("0.15"))
            },
            std::slice::from_ref(&priority),
        ),
        model(
            "dear",
            200_000,
            Prices {
                cache_write_input: price("18.75"),
                cache_write_1h_input: price("30"),
                cached_input: price("1.5"),
                output: price("75"),
                ..Prices::uniform(price("15"))
            },
            &[],
        ),
        model(
            "maximal",
            0,
            Prices::uniform(PerMillion(MAX_AMOUNT)),
            std::slice::from_ref(&priority),
        ),
        model("tiny", 4_096, Prices::uniform(PerMillion(Nanos(1))), &[]),
        model("window-2m", 2_000_000, Prices::uniform(price("1")), &[]),
    ]
}

/// Admin and user operations on money that go through the store.
impl Sim<'_> {
    fn credit(&mut self, debit: bool) -> Result<(), Failure> {
        let user = self.rng.below(self.model.users.len() as u64) as usize;
        let magnitude = match self.rng.below(40) {
            0 => MAX_AMOUNT.0,
            1 => i64::MAX,
            2 => 1,
            _ => self.rng.between(10_000_000, 100 * NANOS_PER_USD as u64) as i64,
        };
        let amount = if debit {
            magnitude.checked_neg().unwrap_or(i64::MIN)
        } else {
            magnitude
        };
        let amount = if debit && magnitude == i64::MAX && self.rng.chance(500) {
            i64::MIN
        } else {
            amount
        };
        let user_id = self.model.users[user].id;
        let store = self.process().store.clone();
        let result = self.process().block_on(store.credit_user(
            user_id,
            Nanos(amount),
            LedgerKind::Admin,
            "simulation",
        ));
        let name = if debit { "debit" } else { "credit" };
        self.operation(name, format!("user {user_id} {amount} nano: {result:?}"));
        match result {
            Ok(()) => {
                self.model.users[user].credited(i128::from(amount));
                self.model.users[user].allowance += i128::from(amount).min(0).abs();
                Ok(())
            }
            Err(error) => self.check(
                "an out-of-range credit is refused whole",
                matches!(error, crate::store::StoreError::OutOfRange(_)),
                || format!("{error}"),
            ),
        }
    }

    /// One code redeemed by two users at once: it credits at most one.
    fn redeem(&mut self) -> Result<(), Failure> {
        let amount = if self.rng.chance(50) {
            MAX_AMOUNT
        } else {
            Nanos(self.rng.between(10_000_000, 50 * NANOS_PER_USD as u64) as i64)
        };
        let first = self.rng.below(self.model.users.len() as u64) as usize;
        let second = self.rng.below(self.model.users.len() as u64) as usize;
        let (first_id, second_id) = (self.model.users[first].id, self.model.users[second].id);
        let store = self.process().store.clone();
        let root = Actor {
            user_id: None,
            name: "simulation".into(),
            role: Role::Root,
        };
        let (one, other) = self
            .process()
            .block_on(async {
                let created = redemption::create(&store, &root, 1, amount, "sim", None).await?;
                let secret = &created[0].1;
                Ok::<_, crate::accounts::AccountError>(tokio::join!(
                    redemption::redeem(&store, first_id, secret),
                    redemption::redeem(&store, second_id, secret)
                ))
            })
            .map_err(|e| self.broken("create a code", e))?;
        self.operation(
            "redeem twice at once",
            format!("{amount:?} by users {first_id} and {second_id}: {one:?} / {other:?}"),
        );
        self.check(
            "a code credits at most once",
            !(one.is_ok() && other.is_ok()),
            || "both redemptions credited".into(),
        )?;
        for (user, result) in [(first, one), (second, other)] {
            if let Ok(credited) = result {
                self.check("a code credits its amount", credited == amount, || {
                    format!("{credited:?} for a code of {amount:?}")
                })?;
                self.model.users[user].credited(i128::from(credited.0));
            }
        }
        Ok(())
    }

    fn change_quota(&mut self) -> Result<(), Failure> {
        let key = self.rng.below(self.model.keys.len() as u64) as usize;
        let quota = match self.rng.below(8) {
            0 | 1 => None,
            2 => Some(Nanos::ZERO),
            3 => Some(MAX_AMOUNT),
            4 => Some(Nanos(i64::MAX)),
            5 => Some(Nanos(-1)),
            _ => Some(Nanos(self.rng.between(0, 100 * NANOS_PER_USD as u64) as i64)),
        };
        let key_id = self.model.keys[key].id;
        let store = self.process().store.clone();
        let result = self.process().block_on(async {
            let row = store
                .key_by_id(key_id)
                .await?
                .ok_or_else(|| crate::store::StoreError::NotFound(format!("key {key_id}")))?;
            let update = KeyUpdate {
                name: row.name,
                status: row.status,
                allowed_models: row.allowed_models,
                quota,
                expires_at: row.expires_at,
                limits: KeyLimits::default(),
            };
            store.update_key(key_id, row.user_id, &update).await
        });
        self.operation(
            "quota change",
            format!("key {key_id} → {quota:?}: {result:?}"),
        );
        match result {
            Ok(()) => {
                self.model.keys[key].quota = quota;
                Ok(())
            }
            // The schema may refuse a quota outside the storable range.
            Err(error) if error.is_refusal() => Ok(()),
            Err(error) => Err(self.broken("quota change", error)),
        }
    }

    /// A committed batch reaches the database again, as a retry and as new.
    fn duplicate_batch(&mut self) -> Result<(), Failure> {
        let batch = self.faults.last_committed();
        if batch.is_empty() {
            return Ok(());
        }
        self.faults.count(FaultKind::DuplicateBatch);
        let store = self.process().store.clone();
        let (retried, again) = self.process().block_on(async {
            (
                store.write_usage_batch(&batch, BatchAttempt::Retry).await,
                store.write_usage_batch(&batch, BatchAttempt::First).await,
            )
        });
        self.operation(
            "duplicate batch",
            format!(
                "{} records from {}: {retried:?} / {again:?}",
                batch.len(),
                batch[0].request_id
            ),
        );
        self.check(
            "a batch delivered again is not written again",
            matches!(retried, Ok(Written::Earlier)) && again.is_err_and(|e| e.is_refusal()),
            || "a duplicate batch was written".into(),
        )
    }
}
