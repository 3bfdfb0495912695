//! The relay pipeline: one OpenAI chat request through its phases, in order:
//! authenticate → parse → authorize → reserve → route → call upstream (with failover
//! until the first byte reaches the client) → relay the answer → settle.
//!
//! The relay reads in-memory state (catalogue snapshot, key cache, books) and talks only
//! to provider adapters; it never touches the database itself (a key the cache does not
//! hold is looked up by `catalog::accounts`) and never writes wire errors.

mod authenticate;
pub(crate) mod bounds;
pub mod clients;
pub mod concurrency;
pub mod error;
pub mod health;
pub mod limits;
pub mod mapping_check;
mod observe;
pub mod probe;
pub(crate) mod reserve;
mod route;
pub mod settle;
pub mod stream;
pub mod streams_end;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::StreamExt;

pub use error::RelayError;
use reserve::shared_unavailable;
use settle::{Meter, Outcome, Settlement};
use stream::MeteredStream;

use crate::catalog::accounts::AccountCache;
use crate::catalog::{Catalog, Channel, ChannelKind, KeyEntry, Model, UserEntry};
use crate::ledger::books::{Books, Reservation};
use crate::ledger::money::{Nanos, TokenCounts};
use crate::ledger::writer::LedgerWriter;
use crate::protocol::openai::charge::Charge;
use crate::protocol::openai::chunk::CompletionView;
use crate::protocol::openai::embeddings::{Encoding, in_encoding};
use crate::protocol::openai::operation::Operation;
use crate::protocol::openai::request::{InvalidRequest, RawObject, RequestFacts, Rewrite};
use crate::protocol::openai::splice::MemberSite;
use crate::providers::dialect::{Dialect, fix_finish_reasons};
use crate::providers::{self, Deadlines, FailureKind, UpstreamFailure};
use crate::shared::money::Request;

/// Tunables of the pipeline, from `Settings`.
#[derive(Clone, Debug)]
pub struct RelayPolicy {
    pub default_output_reserve_tokens: u64,
    pub deadlines: Deadlines,
    /// Upper bound on a whole answer, streamed or not, from the first attempt.
    pub total_timeout: Duration,
    /// Longest silence between two data events of a stream (comments do not count).
    pub idle_timeout: Duration,
    /// Channels tried per request, at most.
    pub max_attempts: usize,
    /// Largest non-streaming upstream body accepted.
    pub max_response_bytes: usize,
}

/// Everything the pipeline needs, shared by all requests.
#[derive(Clone)]
pub struct Relay {
    pub catalog: Arc<ArcSwap<Catalog>>,
    /// API keys and their owners in use, looked up on a miss.
    pub accounts: Arc<AccountCache>,
    pub books: Arc<Books>,
    pub writer: LedgerWriter,
    /// Upstream clients per connect timeout (channels may override it).
    pub clients: Arc<clients::UpstreamClients>,
    pub policy: Arc<RelayPolicy>,
    pub health: Arc<health::Health>,
    /// In-flight requests of channels with `max_concurrency`.
    pub slots: Arc<concurrency::ChannelSlots>,
    pub limits: Arc<limits::RateLimits>,
    /// Ended when a graceful shutdown's grace period is over: open streams end then.
    pub shutdown: streams_end::StreamsEnd,
}

/// One inbound chat request as the API layer hands it over.
pub struct RelayCall {
    pub operation: Operation,
    /// `x-tokenhub-channel`: admins may force one channel (no failover, no fallbacks).
    pub pinned_channel: Option<String>,
    pub request_id: String,
    pub credential: Credential,
    pub body: Bytes,
    /// The client's address, for IP allow lists (absent when not served over TCP).
    pub client_ip: Option<std::net::IpAddr>,
}

/// Who a call is made for.
pub enum Credential {
    /// The `sk-…` token the client sent, if any: checked in phase 1.
    Bearer(Option<String>),
    /// A caller the surface has already authenticated by other means (the web chat's
    /// session or anonymous trial); phase 1 only confirms the owner is still active.
    Resolved(Arc<KeyEntry>),
}

pub enum RelayReply {
    /// A complete `chat.completion` JSON body, and how long the gateway waited on upstreams
    /// for it (every attempt included), so the surface can report its own overhead.
    Json {
        body: Bytes,
        upstream_time: Duration,
        /// What it cost (also in the body's `usage.cost`), for the `x-tokenhub-cost-usd` header.
        charge: Option<Charge>,
    },
    /// An SSE stream, already primed with its first upstream event.
    Stream(Box<MeteredStream>),
}

impl Relay {
    /// Phase 1 on its own, for surfaces that only need to know the caller.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<(Arc<Catalog>, Arc<KeyEntry>), RelayError> {
        let (key, _) = self.caller(bearer, client_ip).await?;
        Ok((self.catalog.load_full(), key))
    }

    /// The key and its owner. A cached key is answered without awaiting anything.
    async fn caller(
        &self,
        bearer: Option<&str>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<(Arc<KeyEntry>, Arc<UserEntry>), RelayError> {
        let (secret, hash) = authenticate::bearer(bearer)?;
        let lookup = match self.accounts.cached(&hash) {
            Some(hit) => hit,
            None => self
                .accounts
                .resolve(&hash, client_ip)
                .await
                .map_err(authenticate::lookup_failed)?,
        };
        authenticate::accept(lookup, secret)
    }

    /// Relays one request of any OpenAI operation through every phase.
    pub async fn relay(&self, call: RelayCall) -> Result<RelayReply, RelayError> {
        let operation = call.operation;
        let (key, owner) = match &call.credential {
            Credential::Bearer(bearer) => self.caller(bearer.as_deref(), call.client_ip).await?,
            Credential::Resolved(key) => {
                let owner = self.accounts.user(key.user_id).await.map_err(|error| {
                    tracing::warn!(%error, "user lookup failed");
                    RelayError::KeyLookupFailed
                })?;
                (key.clone(), authenticate::active_owner(owner)?)
            }
        };
        let catalog = self.catalog.load_full();

        let mut settlement = Settlement::new(
            self.books.clone(),
            self.writer.clone(),
            call.request_id.clone(),
            operation,
            key.user_id,
            key.id,
            call.body.clone(),
        );
        let object = match RawObject::parse(&call.body) {
            Ok(object) => object,
            Err(e) => {
                let error = RelayError::InvalidRequest(InvalidRequest {
                    message: format!("We could not parse the JSON body of your request: {e}"),
                    param: None,
                });
                settlement.fail(error.status(), &error.to_string());
                return Err(error);
            }
        };
        let admitted = match self.admit(&catalog, &key, &owner, &call, &object, &mut settlement) {
            Ok((facts, model, None)) => Ok((facts, model)),
            Ok((facts, model, Some(shared))) => self
                .admit_shared(&key, shared, &mut settlement)
                .await
                .map(|()| (facts, model)),
            Err(error) => Err(error),
        };
        match admitted {
            // Boxed: held inline, its 3.7 KB state made this future and the surface
            // handler's around it that much larger, and both are copied as they are
            // built and boxed (bench/RESULTS.md, addendum 26).
            Ok((facts, model)) => {
                Box::pin(self.forward(&catalog, &key, facts, model, &object, settlement)).await
            }
            Err(error) => {
                settlement.fail(error.status(), &error.to_string());
                Err(error)
            }
        }
    }

    /// With shared state, the limits and the reservation `admit` left to Redis, decided
    /// in one round trip.
    async fn admit_shared(
        &self,
        key: &KeyEntry,
        pending: SharedAdmission,
        settlement: &mut Settlement,
    ) -> Result<(), RelayError> {
        let reservation = self
            .admit_across(Request {
                user_id: key.user_id,
                key_id: key.id,
                key_quota: key.quota,
                rpm: key.rpm_limit,
                tpm: key.tpm_limit,
                tokens: pending.tokens,
                amount: pending.worst_case,
            })
            .await?;
        if let Some(limit) = key.tpm_limit {
            let hold = limits::TokenHold {
                key_id: key.id,
                limit,
                estimated: pending.tokens,
            };
            settlement.hold_tokens(self.limits.clone(), hold);
        }
        settlement.hold(reservation);
        Ok(())
    }

    /// Reserves the worst case in the books, or with shared state across instances.
    async fn reserve(&self, key: &KeyEntry, amount: Nanos) -> Result<Reservation, RelayError> {
        reserve::reserve(&self.books, &self.accounts, key, amount).await
    }

    async fn admit_across(&self, request: Request) -> Result<Reservation, RelayError> {
        reserve::admit_across(&self.books, &self.accounts, request).await
    }

    /// Parse, authorize and reserve: everything decided before any upstream is called.
    fn admit(
        &self,
        catalog: &Catalog,
        key: &KeyEntry,
        owner: &UserEntry,
        call: &RelayCall,
        object: &RawObject<'_>,
        settlement: &mut Settlement,
    ) -> Result<(RequestFacts, Arc<Model>, Option<SharedAdmission>), RelayError> {
        let mut facts = object.facts(call.operation)?;
        settlement.name_requested_model(&facts.model);
        if let Some(pinned) = &call.pinned_channel {
            let admin = matches!(owner.role.as_str(), "admin" | "root");
            if !admin {
                return Err(RelayError::Forbidden(
                    "Only administrators may choose a channel with x-tokenhub-channel.".into(),
                ));
            }
            facts.pinned_channel = Some(pinned.clone());
        }
        let client_ip = call.client_ip;
        let model = catalog
            .model(&facts.model)
            .filter(|_| key.allows_model(&facts.model))
            .cloned();
        let Some(model) = model else {
            return Err(RelayError::ModelNotFound(facts.model));
        };
        settlement.set_model(&model.id, model.pricing.clone(), facts.stream);
        settlement.bound_usage(bounds::token_ceiling(&model, &facts));
        if key.allowed_ips.is_some() && !client_ip.is_some_and(|ip| key.allows_ip(ip)) {
            return Err(RelayError::IpNotAllowed(client_ip));
        }
        let worst_tokens = self.worst_case_tokens(&model, &facts, object.source_len());
        let tokens = worst_tokens.prompt + worst_tokens.completion;
        let worst_case = settlement.worst_case_cost(&model.pricing, worst_tokens);
        if worst_case > Nanos::ZERO && self.writer.status().spill_full() {
            return Err(RelayError::LedgerBacklog);
        }
        if self.books.shared().is_some() {
            let pending = SharedAdmission { tokens, worst_case };
            return Ok((facts, model, Some(pending)));
        }
        let hold = self
            .limits
            .admit(key.id, key.rpm_limit, key.tpm_limit, tokens, Instant::now())
            .map_err(RelayError::RateLimited)?;
        if let Some(hold) = hold {
            settlement.hold_tokens(self.limits.clone(), hold);
        }
        let reservation = self
            .books
            .reserve(key.user_id, key.id, key.quota, worst_case)
            .map_err(RelayError::Insufficient)?;
        settlement.hold(reservation);
        Ok((facts, model, None))
    }

    fn worst_case_tokens(
        &self,
        model: &Model,
        facts: &RequestFacts,
        body_len: usize,
    ) -> TokenCounts {
        bounds::worst_case_tokens(
            model,
            facts,
            body_len,
            self.policy.default_output_reserve_tokens,
        )
    }

    /// Route and call: tries the model's channels in order until one answers, then its
    /// fallback models' channels, and relays the first answer.
    async fn forward(
        &self,
        catalog: &Catalog,
        key: &KeyEntry,
        facts: RequestFacts,
        model: Arc<Model>,
        object: &RawObject<'_>,
        mut settlement: Settlement,
    ) -> Result<RelayReply, RelayError> {
        let fallbacks = catalog
            .fallbacks_of(&model.id)
            .iter()
            .take(if facts.pinned_channel.is_some() {
                0
            } else {
                usize::MAX
            })
            .filter(|id| **id != model.id && key.allows_model(id))
            .filter_map(|id| catalog.model(id).cloned());
        let mut upstream_time = Duration::ZERO;
        let mut first_error = None;
        for (position, model) in std::iter::once(model.clone()).chain(fallbacks).enumerate() {
            if position > 0 {
                if let Err(refusal) = self
                    .switch_model(key, &facts, &model, object, &mut settlement)
                    .await
                {
                    first_error.get_or_insert(refusal);
                    continue;
                }
                metrics::counter!("tokenhub_fallbacks_total", "model" => model.id.clone())
                    .increment(1);
            }
            match self
                .try_channels(
                    catalog,
                    &facts,
                    &model,
                    object,
                    &mut settlement,
                    &mut upstream_time,
                )
                .await
            {
                Ok(Answer::Stream(mut stream)) => {
                    stream.attach(settlement);
                    return Ok(RelayReply::Stream(stream));
                }
                Ok(Answer::Json(body, meter, usage_site, waited)) => {
                    let charge = settlement.finish(
                        meter,
                        Outcome {
                            status: 200,
                            error: None,
                        },
                    );
                    let (body, usage_site) = match facts.operation {
                        Operation::Embeddings => {
                            let wanted = Encoding::requested(object.get("encoding_format"));
                            match in_encoding(&body, wanted) {
                                Some(encoded) => (Bytes::from(encoded), None),
                                None => (body, usage_site),
                            }
                        }
                        Operation::Chat | Operation::Completions | Operation::Responses => {
                            (body, usage_site)
                        }
                    };
                    let body = charge
                        .and_then(|charge| charge.add_to_answer_at(&body, usage_site.as_ref()))
                        .map_or(body, Bytes::from);
                    return Ok(RelayReply::Json {
                        body,
                        upstream_time: upstream_time + waited,
                        charge,
                    });
                }
                Err(error) => {
                    // A client mistake fails the same way on any model: stop here.
                    let client_mistake =
                        matches!(&error, RelayError::Upstream(f) if !f.retryable());
                    first_error.get_or_insert(error);
                    if client_mistake {
                        break;
                    }
                }
            }
        }
        let error = first_error.unwrap_or_else(|| RelayError::NoChannel {
            model: facts.model.clone(),
            missing: Vec::new(),
        });
        settlement.fail(error.status(), &error.to_string());
        Err(error)
    }

    /// Moves the request to a fallback model: its price, its reservation.
    async fn switch_model(
        &self,
        key: &KeyEntry,
        facts: &RequestFacts,
        model: &Model,
        object: &RawObject<'_>,
        settlement: &mut Settlement,
    ) -> Result<(), RelayError> {
        let worst_tokens = self.worst_case_tokens(model, facts, object.source_len());
        let worst_case = settlement.worst_case_cost(&model.pricing, worst_tokens);
        settlement.release_reservation();
        let reservation = self.reserve(key, worst_case).await?;
        settlement.set_model(&model.id, model.pricing.clone(), facts.stream);
        settlement.bound_usage(bounds::token_ceiling(model, facts));
        settlement.hold(reservation);
        Ok(())
    }

    /// Tries one model's capable channels in route order. A channel at its concurrency
    /// cap, or whose keys are all cooling down or rejected, is skipped without using up an
    /// attempt. Within a channel its keys take turns: a failure about the key (see
    /// `UpstreamFailure::key_scoped`) moves to the channel's next key, any other retryable
    /// failure to the next channel.
    async fn try_channels(
        &self,
        catalog: &Catalog,
        facts: &RequestFacts,
        model: &Model,
        object: &RawObject<'_>,
        settlement: &mut Settlement,
        upstream_time: &mut Duration,
    ) -> Result<Answer, RelayError> {
        let serving = catalog.channels_for(&model.id);
        let capable: Vec<_> = serving
            .iter()
            .filter(|c| c.serves(facts.operation))
            .filter(|c| {
                facts
                    .pinned_channel
                    .as_ref()
                    .is_none_or(|name| *name == c.name)
            })
            .cloned()
            .collect();
        let candidates = route::order(&capable, &mut rand::rng());
        if candidates.is_empty() {
            return Err(if let Some(channel) = &facts.pinned_channel {
                RelayError::ChannelNotServing {
                    channel: channel.clone(),
                    model: model.id.clone(),
                }
            } else if serving.is_empty() {
                RelayError::NoChannel {
                    model: model.id.clone(),
                    missing: catalog.missing_credentials(&model.id).to_vec(),
                }
            } else {
                RelayError::Unsupported {
                    model: model.id.clone(),
                    operation: facts.operation,
                }
            });
        }
        let max_attempts = self.policy.max_attempts.max(1);
        let mut skipped = route::Skipped::default();
        let mut last_failure = None;
        let mut attempts = 0;
        'channels: for channel in &candidates {
            if attempts == max_attempts {
                break;
            }
            let acquired = if self.slots.is_shared() {
                self.slots
                    .acquire_shared(channel.id, channel.max_concurrency)
                    .await
                    .map_err(shared_unavailable)?
            } else {
                self.slots.acquire(channel.id, channel.max_concurrency)
            };
            let mut slot = match acquired {
                Ok(slot) => slot,
                Err(concurrency::Saturated) => {
                    skipped.saturated = true;
                    metrics::counter!("tokenhub_channel_saturated_total", "channel" => channel.name.clone())
                        .increment(1);
                    continue;
                }
            };
            let mut upstream_body_once = None;
            let mut tried_keys = 0u64;
            while attempts < max_attempts {
                let index = match self
                    .health
                    .pick(channel.id, &channel.keys, tried_keys, Instant::now())
                    .await
                {
                    health::Pick::Use(index) => index,
                    health::Pick::Unavailable { until } => {
                        skipped.unavailable(until);
                        break;
                    }
                };
                tried_keys |= 1 << index;
                attempts += 1;
                let key = channel.keys.get(index);
                let key_id = key.map_or(health::NO_KEY, |k| k.id);
                let body = upstream_body_once
                    .get_or_insert_with(|| upstream_body(object, facts, &model.id, channel))
                    .clone();
                settlement.attempt(channel.id);
                let started = Instant::now();
                let secret = key.map(|k| k.secret.as_str());
                match self.attempt(channel, secret, body, facts).await {
                    Ok(mut answer) => {
                        self.health
                            .succeeded(channel.id, index, key_id, started.elapsed());
                        if let Answer::Stream(stream) = &mut answer {
                            stream.hold_slot(slot.take());
                        }
                        return Ok(answer);
                    }
                    Err(failure) => {
                        *upstream_time += started.elapsed();
                        settlement.attempt_failed();
                        self.health
                            .failed(channel.id, index, key_id, &failure, Instant::now())
                            .await;
                        tracing::warn!(channel = %channel.name, key = index, error = %failure, "upstream attempt failed");
                        metrics::counter!("tokenhub_upstream_failures_total", "channel" => channel.name.clone()).increment(1);
                        let (retry, next_key) = (failure.retryable(), failure.key_scoped());
                        last_failure = Some(failure);
                        if !retry {
                            break 'channels;
                        }
                        if !next_key {
                            break;
                        }
                    }
                }
            }
        }
        Err(match last_failure {
            Some(failure) => RelayError::Upstream(failure),
            None => skipped.into_error(&model.id),
        })
    }

    async fn attempt(
        &self,
        channel: &Arc<Channel>,
        key: Option<&str>,
        body: Bytes,
        facts: &RequestFacts,
    ) -> Result<Answer, UpstreamFailure> {
        let timeouts = &channel.timeouts;
        let deadlines = Deadlines {
            first_byte: timeouts
                .first_token
                .unwrap_or(self.policy.deadlines.first_byte),
        };
        let total_timeout = timeouts.total.unwrap_or(self.policy.total_timeout);
        let dialect = match channel.kind {
            ChannelKind::OpenAi(dialect) => dialect,
            ChannelKind::Anthropic | ChannelKind::Gemini | ChannelKind::Demo => Dialect::Generic,
        };
        let waiting = Instant::now();
        let client = self.clients.for_connect(timeouts.connect);
        let response =
            providers::send(&client, channel, key, facts.operation, body, deadlines).await?;
        if facts.stream {
            let limits = stream::StreamLimits {
                idle: timeouts.idle.unwrap_or(self.policy.idle_timeout),
                deadline: tokio::time::Instant::now() + total_timeout,
                shutdown: self.shutdown.clone(),
            };
            let mut stream =
                MeteredStream::new(response.body, facts, Arc::clone(channel), dialect, limits);
            tokio::time::timeout(deadlines.first_byte, stream.wait_for_first_event())
                .await
                .map_err(|_| {
                    UpstreamFailure::new(FailureKind::Timeout, "upstream sent no event in time")
                })??;
            return Ok(Answer::Stream(Box::new(stream)));
        }
        let bytes = tokio::time::timeout(
            total_timeout,
            read_bounded(response.body, self.policy.max_response_bytes),
        )
        .await
        .map_err(|_| {
            UpstreamFailure::new(
                FailureKind::Timeout,
                "upstream did not finish its answer in time",
            )
        })??;
        let waited = waiting.elapsed();
        let bytes = match fix_chat_finish_reasons(facts.operation, dialect, bytes.trim_ascii()) {
            Ok(None) => bytes,
            Ok(Some(fixed)) => Bytes::from(fixed),
            // A "finish" that is really a failure: nothing was sent, another channel may answer.
            Err(message) => return Err(UpstreamFailure::new(FailureKind::Status(502), message)),
        };
        // An error in a 2xx body is the upstream's text: it may echo the key.
        let (meter, usage_site) =
            meter_answer(facts.operation, &bytes).map_err(|f| f.without_keys(channel))?;
        let start = bytes.len() - bytes.trim_ascii_start().len();
        Ok(Answer::Json(
            bytes.slice(start..),
            meter,
            usage_site,
            waited,
        ))
    }
}

// Built once a request and moved up one call: a copy of its few hundred bytes costs less
// than the allocation boxing them would.
#[expect(clippy::large_enum_variant)]
enum Answer {
    Stream(Box<MeteredStream>),
    /// Body, what was metered from it, where its `usage` lies (when metering noted it),
    /// and the time spent waiting on the upstream.
    Json(Bytes, Meter, Option<MemberSite>, Duration),
}

/// The body as the upstream must see it: the public model name replaced by the channel's,
/// streamed usage switched on so every stream can be billed, and the channel's dialect
/// fixes. Everything else verbatim.
/// What `admit` leaves to the shared state: the estimated tokens for the TPM bucket
/// and the worst-case cost to reserve.
struct SharedAdmission {
    tokens: u64,
    worst_case: Nanos,
}

fn upstream_body(
    object: &RawObject<'_>,
    facts: &RequestFacts,
    model: &str,
    channel: &Channel,
) -> Bytes {
    let upstream_model = channel.upstream_model(model);
    let mut rewrite = Rewrite::default();
    rewrite.set("model", serde_json::Value::from(upstream_model).to_string());
    // A Responses stream always ends with its usage (`response.completed`).
    if facts.stream && facts.operation != Operation::Responses {
        rewrite.set("stream_options", object.stream_options_with_usage());
    }
    if let ChannelKind::OpenAi(dialect) = channel.kind {
        dialect.adjust_request(facts, object, upstream_model, &mut rewrite);
    }
    Bytes::from(object.write_with(&rewrite))
}

/// A dialect's `finish_reason` fixes, for the chat-shaped answers they apply to.
fn fix_chat_finish_reasons(
    operation: Operation,
    dialect: Dialect,
    body: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    match operation {
        Operation::Responses => Ok(None),
        _ => fix_finish_reasons(dialect, body),
    }
}

async fn read_bounded(
    mut body: providers::ByteStream,
    limit: usize,
) -> Result<Bytes, UpstreamFailure> {
    let mut gathered = crate::protocol::chunks::Gathered::default();
    while let Some(chunk) = body.next().await {
        if gathered.push(chunk?) > limit {
            return Err(UpstreamFailure::new(
                FailureKind::Protocol,
                format!("upstream answer exceeded {limit} bytes"),
            ));
        }
    }
    Ok(gathered.finish())
}

/// Reads usage and text from a complete answer, and where its `usage` lies (positions
/// from its first byte that is not whitespace). Some upstreams pad with whitespace.
fn meter_answer(
    operation: Operation,
    body: &[u8],
) -> Result<(Meter, Option<MemberSite>), UpstreamFailure> {
    let trimmed = body.trim_ascii();
    if operation == Operation::Responses {
        return Ok((meter_native_response(trimmed)?, None));
    }
    let view = CompletionView::parse(trimmed).map_err(|e| {
        UpstreamFailure::new(
            FailureKind::Protocol,
            format!(
                "upstream answer is not an OpenAI {} answer: {e}",
                operation.path()
            ),
        )
    })?;
    let has_answer = match operation {
        Operation::Embeddings => view.data.is_some(),
        Operation::Chat | Operation::Completions => view.choices.is_some(),
        Operation::Responses => unreachable!("metered by meter_native_response"),
    };
    if view.error.is_some() || !has_answer {
        let message = crate::protocol::openai::error::upstream_error_message(trimmed)
            .unwrap_or_else(|| "upstream answer has no result".into());
        return Err(UpstreamFailure::new(FailureKind::Protocol, message));
    }
    let mut meter = Meter {
        usage: view.usage_counts(),
        service_tier: view.service_tier.as_deref().map(str::to_owned),
        ..Meter::default()
    };
    // The text is only needed to count tokens locally when the upstream reported none.
    if meter.usage.is_none() {
        view.for_each_text(|text| meter.text.push(text));
    }
    Ok((meter, view.usage_site().cloned()))
}

/// Reads usage from a native Responses answer (a Response object), which is relayed as is.
fn meter_native_response(body: &[u8]) -> Result<Meter, UpstreamFailure> {
    use crate::protocol::responses::native::NativeResponse;
    let response = NativeResponse::parse(body).map_err(|e| {
        UpstreamFailure::new(
            FailureKind::Protocol,
            format!("upstream answer is not a Response object: {e}"),
        )
    })?;
    if !response.is_answer() {
        let message = crate::protocol::openai::error::upstream_error_message(body)
            .unwrap_or_else(|| "upstream response failed".into());
        return Err(UpstreamFailure::new(FailureKind::Protocol, message));
    }
    let mut meter = Meter {
        usage: response.counts(),
        service_tier: response.service_tier.clone(),
        ..Meter::default()
    };
    if meter.usage.is_none() {
        response.for_each_text(|text| meter.text.push(text));
    }
    Ok(meter)
}
