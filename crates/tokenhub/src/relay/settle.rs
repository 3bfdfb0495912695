//! Settlement: the one place a request's cost is decided and its usage record emitted.
//!
//! A `Settlement` is created as soon as a request is authenticated and travels with the
//! request (into the response stream, for streams). It is settled exactly once: by an
//! explicit call on every normal path, or by `Drop` when the client went away, a future
//! was cancelled or a panic unwinds the request. Settling releases the reservation,
//! books the cost in memory and hands the record to the ledger writer.
//!
//! Settling must never panic: `Drop` may run while a panic unwinds, where a second
//! panic aborts the process. Its only heavy step, the local token count, is bounded and
//! panic-free (`tokens`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::ledger::books::{Books, Reservation};
use crate::ledger::money::{Nanos, TokenCeiling, TokenCounts};
use crate::ledger::price_tiers::{PriceChoice, Pricing, STANDARD};
use crate::ledger::writer::LedgerWriter;
use crate::protocol::openai::charge::Charge;
use crate::protocol::openai::operation::Operation;
use crate::relay::limits::{RateLimits, TokenHold};
use crate::store::{UsageRecord, now_ms};
use crate::tokens;

/// What was learned from the upstream's answer so far.
#[derive(Debug, Default)]
pub struct Meter {
    pub usage: Option<TokenCounts>,
    /// Generated text seen so far (bounded), for a local count if no usage arrives.
    pub text: tokens::TextSample,
    pub first_token_at: Option<Instant>,
    pub error: Option<String>,
    /// The `service_tier` the upstream said served the request.
    pub service_tier: Option<String>,
}

pub struct Settlement {
    books: Arc<Books>,
    writer: LedgerWriter,
    reservation: Option<Reservation>,
    /// Estimated tokens taken from the key's TPM bucket, corrected when settling.
    token_hold: Option<(Arc<RateLimits>, TokenHold)>,
    record: UsageRecord,
    /// The model's prices and tiers, and the prices in force when the request started.
    pricing: Arc<Pricing>,
    at_start: PriceChoice,
    /// The most tokens of each class the request can be billed for (`relay::bounds`).
    ceiling: TokenCeiling,
    request_body: Bytes,
    operation: Operation,
    started: Instant,
    upstream_contacted: bool,
    settled: bool,
}

/// How the request ended.
pub struct Outcome {
    pub status: u16,
    pub error: Option<String>,
}

impl Settlement {
    pub fn new(
        books: Arc<Books>,
        writer: LedgerWriter,
        request_id: String,
        operation: Operation,
        user_id: i64,
        key_id: i64,
        body: Bytes,
    ) -> Self {
        crate::meters::METERS.requests_in_flight.increment(1.0);
        Settlement {
            books,
            writer,
            reservation: None,
            token_hold: None,
            record: UsageRecord {
                request_id,
                user_id,
                key_id,
                model: String::new(),
                channel_id: None,
                prompt_tokens: 0,
                cached_tokens: 0,
                cache_write_tokens: 0,
                cache_write_1h_tokens: 0,
                explicit_cached_tokens: 0,
                price_tier: STANDARD.to_string(),
                completion_tokens: 0,
                cost: Default::default(),
                status: 0,
                error: None,
                stream: false,
                estimated: false,
                latency_ms: 0,
                ttft_ms: None,
                created_at: now_ms(),
            },
            pricing: Arc::default(),
            at_start: PriceChoice {
                tier: STANDARD.to_string(),
                prices: Default::default(),
            },
            ceiling: TokenCeiling::UNBOUNDED,
            request_body: body,
            operation,
            started: Instant::now(),
            upstream_contacted: false,
            settled: false,
        }
    }

    /// Records the model the client asked for, before it is known to exist: a request
    /// refused for an unknown or forbidden model is listed under the name it used, not
    /// under an empty one. Long names are cut to what a model id may be.
    pub fn name_requested_model(&mut self, requested: &str) {
        let mut end = requested.len().min(crate::catalog::MAX_MODEL_ID_LEN);
        while !requested.is_char_boundary(end) {
            end -= 1;
        }
        self.record.model = requested[..end].to_string();
    }

    /// Bills the request to `model`, at the prices in force when the request started
    /// (not when it settles: a stream may outlast a price window).
    pub fn set_model(&mut self, model: &str, pricing: Arc<Pricing>, stream: bool) {
        self.record.model = model.to_string();
        self.at_start = pricing.at_start(self.record.created_at);
        self.pricing = pricing;
        self.record.stream = stream;
    }

    pub fn bound_usage(&mut self, ceiling: TokenCeiling) {
        self.ceiling = ceiling;
    }

    /// The most the request may cost at `model`'s prices, for its reservation.
    pub fn worst_case_cost(&self, pricing: &Pricing, tokens: TokenCounts) -> Nanos {
        let at_start = pricing.at_start(self.record.created_at);
        pricing.worst_case_cost(&at_start.prices, tokens.prompt, tokens.completion)
    }

    pub fn hold(&mut self, reservation: Reservation) {
        self.release_reservation();
        self.reservation = Some(reservation);
    }

    /// Gives back the money held so far (the request moves to another model).
    pub fn release_reservation(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            self.books.settle(reservation, Nanos::ZERO);
        }
    }

    pub fn hold_tokens(&mut self, limits: Arc<RateLimits>, hold: TokenHold) {
        self.token_hold = Some((limits, hold));
    }

    /// The prompt counted locally, for when the upstream reports no usage.
    pub fn estimate_prompt(&self) -> u64 {
        tokens::count_prompt(
            self.operation,
            &self.request_body,
            tokens::Budget::SERVING_THREAD,
        )
    }

    /// Marks that a channel was called, so a cancelled request may owe its prompt.
    pub fn attempt(&mut self, channel_id: i64) {
        self.record.channel_id = Some(channel_id);
        self.upstream_contacted = true;
    }

    /// A failed attempt that produced nothing billable (an error status, no connection).
    pub fn attempt_failed(&mut self) {
        self.upstream_contacted = false;
    }

    /// Settles a request that failed before any output was produced: it costs nothing.
    pub fn fail(mut self, status: u16, error: &str) {
        self.upstream_contacted = false;
        let _free = self.finish(
            Meter::default(),
            Outcome {
                status,
                error: Some(error.to_string()),
            },
        );
    }

    /// Settles with what the meter saw. Without reported usage, tokens are counted locally
    /// (prompt from the request, completion from the text seen) and marked estimated.
    /// Returns what the request cost and the owner's balance after it (`None` when it was
    /// settled before), for the answer's `usage.cost`.
    pub fn finish(&mut self, meter: Meter, outcome: Outcome) -> Option<Charge> {
        if self.settled {
            return None;
        }
        self.settled = true;
        crate::meters::METERS.requests_in_flight.decrement(1.0);
        let (counts, estimated) = match meter.usage {
            Some(counts) => (counts, false),
            None if self.upstream_contacted => {
                let prompt = self.estimate_prompt();
                (
                    TokenCounts {
                        prompt,
                        cached: 0,
                        cache_write: 0,
                        completion: meter.text.count(),
                        ..Default::default()
                    },
                    true,
                )
            }
            None => (TokenCounts::default(), false),
        };
        let counts = self.within_ceiling(counts);
        let choice = meter
            .service_tier
            .as_deref()
            .and_then(|tier| self.pricing.for_service_tier(tier))
            .unwrap_or(&self.at_start);
        let priced = choice.prices.cost(counts);
        let price_tier = choice.tier.clone();
        let cost = self.book(priced);
        let record = &mut self.record;
        record.price_tier = price_tier;
        record.explicit_cached_tokens = counts.explicit_cached;
        record.cache_write_1h_tokens = counts.cache_write_1h;
        record.prompt_tokens = counts.prompt;
        record.cached_tokens = counts.cached;
        record.cache_write_tokens = counts.cache_write;
        record.completion_tokens = counts.completion;
        record.cost = cost;
        record.estimated = estimated;
        record.status = outcome.status;
        record.error = outcome.error.or(meter.error);
        record.latency_ms = elapsed_ms(self.started, Instant::now());
        record.ttft_ms = meter.first_token_at.map(|at| elapsed_ms(self.started, at));
        if let Some((limits, hold)) = self.token_hold.take() {
            limits.settle(hold, counts.prompt.saturating_add(counts.completion));
        }
        let charge = Charge::new(cost, self.books.balance(record.user_id));
        // Settled once (`self.settled`): the record is handed over, not copied.
        let record = std::mem::take(record);
        super::observe::settled(&record, charge.cost_usd());
        self.writer.submit(record);
        Some(charge)
    }
}

impl Settlement {
    /// Settles the reservation with the `priced` cost and returns what was booked: less
    /// only where the bill would carry the key's spend or the user's balance past the
    /// storable bound (`Books::settle`), logged and counted like a usage clamp.
    fn book(&mut self, priced: Nanos) -> Nanos {
        let request_id = &self.record.request_id;
        let Some(reservation) = self.reservation.take() else {
            // Not an assertion: this may run while a panic unwinds.
            if !priced.is_zero() && self.upstream_contacted {
                tracing::error!(request_id = %request_id, "cost without a reservation");
            }
            return priced;
        };
        let booked = self.books.settle(reservation, priced);
        if booked < priced {
            tracing::warn!(
                request_id = %request_id,
                model = %self.record.model,
                priced = ?priced,
                billed = ?booked,
                "cost beyond the storable bound of the key's spend or the balance; billed at the bound"
            );
            metrics::counter!("tokenhub_cost_clamped_total").increment(1);
        }
        booked
    }

    /// Usage clamped to what the request may be billed for. An upstream reporting more
    /// (a bug, or output past the client's `max_tokens`) is logged and counted.
    fn within_ceiling(&self, counts: TokenCounts) -> TokenCounts {
        let (clamped, cut) = counts.clamped(self.ceiling);
        if cut {
            tracing::warn!(
                request_id = %self.record.request_id,
                model = %self.record.model,
                reported = ?counts,
                billed = ?clamped,
                "usage beyond what the request allows; billed at the bound"
            );
            metrics::counter!("tokenhub_usage_clamped_total").increment(1);
        }
        clamped
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        if !self.settled {
            let _abandoned = self.finish(Meter::default(), Outcome::abandoned("request"));
        }
    }
}

impl Outcome {
    /// A request or stream dropped unsettled: the client left, or a panic unwinds it.
    pub fn abandoned(what: &str) -> Outcome {
        if std::thread::panicking() {
            return Outcome {
                status: 500,
                error: Some(format!("the gateway failed while serving the {what}")),
            };
        }
        Outcome {
            status: 499,
            error: Some(format!("client closed the {what}")),
        }
    }
}

fn elapsed_ms(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;
    use crate::ledger::money::{Nanos, PerMillion};
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_request_unwound_by_a_panic_is_settled_once_and_releases_its_reservation() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("panicky", "user", None, Nanos::from_usd(1))
            .await
            .unwrap();
        let books = Arc::new(Books::default());
        books.sync([(user.id, Nanos::from_usd(1))], []);
        let writer = LedgerWriter::spawn(store.clone(), books.clone(), Default::default());
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(1_000_000)
        );
        let mut settlement = Settlement::new(
            books.clone(),
            writer.clone(),
            "req-unwound".into(),
            Operation::Chat,
            user.id,
            0,
            Bytes::from(body),
        );
        let standard = crate::ledger::money::Prices::uniform(PerMillion(Nanos::from_usd(1)));
        let prices = Arc::new(crate::ledger::price_tiers::Pricing::new(standard, &[]));
        settlement.set_model("m", prices, false);
        settlement.hold(books.reserve(user.id, 0, None, Nanos::from_usd(1)).unwrap());
        settlement.attempt(1);
        assert_eq!(books.available(user.id), Nanos::ZERO);

        let unwound = catch_unwind(AssertUnwindSafe(move || {
            let _in_flight = settlement;
            panic!("a bug in the middle of a request");
        }));
        assert!(unwound.is_err(), "the panic reached catch_unwind: no abort");

        writer.flush().await;
        let record = store
            .usage_by_request_id("req-unwound")
            .await
            .unwrap()
            .expect("one record");
        assert_eq!(record.status, 500);
        assert!(record.estimated && record.prompt_tokens > 1_000_000 / 16);
        assert_eq!(
            record.cost,
            standard.cost(TokenCounts {
                prompt: record.prompt_tokens,
                ..TokenCounts::default()
            })
        );
        assert_eq!(books.available(user.id), Nanos::from_usd(1) - record.cost);
    }
}
