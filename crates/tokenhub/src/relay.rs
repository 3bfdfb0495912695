//! The relay pipeline: one OpenAI chat request through its phases, in order:
//! authenticate → parse → authorize → reserve → route → call upstream (with failover
//! until the first byte reaches the client) → relay the answer → settle.
//!
//! The relay reads only in-memory state (catalogue snapshot, books) and talks only to
//! provider adapters; it never touches the database or writes wire errors itself.

mod authenticate;
pub mod error;
mod route;
pub mod settle;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::StreamExt;

pub use error::RelayError;
use settle::{Meter, Outcome, Settlement};
use stream::MeteredStream;

use crate::catalog::{Catalog, KeyEntry, Model};
use crate::ledger::books::Books;
use crate::ledger::money::TokenCounts;
use crate::ledger::writer::LedgerWriter;
use crate::protocol::openai::chunk::CompletionView;
use crate::protocol::openai::request::{ChatRequestFacts, InvalidRequest, RawObject};
use crate::providers::{self, Deadlines, FailureKind, UpstreamFailure};

/// Tunables of the pipeline, from `Settings`.
#[derive(Clone, Debug)]
pub struct RelayPolicy {
    pub default_output_reserve_tokens: u64,
    pub deadlines: Deadlines,
    /// Upper bound on reading a whole non-streaming answer.
    pub total_timeout: Duration,
    /// Channels tried per request, at most.
    pub max_attempts: usize,
    /// Largest non-streaming upstream body accepted.
    pub max_response_bytes: usize,
}

/// Everything the pipeline needs, shared by all requests.
#[derive(Clone)]
pub struct Relay {
    pub catalog: Arc<ArcSwap<Catalog>>,
    pub books: Arc<Books>,
    pub writer: LedgerWriter,
    pub http: reqwest::Client,
    pub policy: Arc<RelayPolicy>,
}

/// One inbound chat request as the API layer hands it over.
pub struct ChatCall {
    pub request_id: String,
    pub bearer: Option<String>,
    pub body: Bytes,
}

pub enum ChatReply {
    /// A complete `chat.completion` JSON body.
    Json(Bytes),
    /// An SSE stream, already primed with its first upstream event.
    Stream(Box<MeteredStream>),
}

impl Relay {
    /// Phase 1 on its own, for surfaces that only need to know the caller.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
    ) -> Result<(Arc<Catalog>, Arc<KeyEntry>), RelayError> {
        let catalog = self.catalog.load_full();
        let key = authenticate::api_key(&catalog, bearer)?;
        Ok((catalog, key))
    }

    pub async fn chat_completions(&self, call: ChatCall) -> Result<ChatReply, RelayError> {
        let (catalog, key) = self.authenticate(call.bearer.as_deref())?;
        let mut settlement = Settlement::new(
            self.books.clone(),
            self.writer.clone(),
            call.request_id,
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
        match self.admit(&catalog, &key, &object, call.body.len(), &mut settlement) {
            Ok((facts, model)) => {
                self.forward(&catalog, facts, &model, &object, settlement)
                    .await
            }
            Err(error) => {
                settlement.fail(error.status(), &error.to_string());
                Err(error)
            }
        }
    }

    /// Parse, authorize and reserve: everything decided before any upstream is called.
    fn admit(
        &self,
        catalog: &Catalog,
        key: &KeyEntry,
        object: &RawObject<'_>,
        body_len: usize,
        settlement: &mut Settlement,
    ) -> Result<(ChatRequestFacts, Arc<Model>), RelayError> {
        let facts = object.chat_facts()?;
        let model = catalog
            .model(&facts.model)
            .filter(|_| key.allows_model(&facts.model))
            .cloned();
        let Some(model) = model else {
            return Err(RelayError::ModelNotFound(facts.model));
        };
        settlement.set_model(&model.id, model.prices, facts.stream);
        let worst_case = self.worst_case(&model, &facts, body_len);
        let reservation = self
            .books
            .reserve(key.user_id, key.id, key.quota, worst_case)
            .map_err(RelayError::Insufficient)?;
        settlement.hold(reservation);
        Ok((facts, model))
    }

    /// The most this request is expected to cost: prompt estimated from the body size
    /// (≥ the real count for typical text: about 3 bytes per token), plus the output the
    /// client allows, or the configured default, capped by the context window.
    fn worst_case(
        &self,
        model: &Model,
        facts: &ChatRequestFacts,
        body_len: usize,
    ) -> crate::ledger::money::Nanos {
        let prompt = (body_len as u64).div_ceil(3);
        let mut output = facts
            .max_output_tokens
            .unwrap_or(self.policy.default_output_reserve_tokens);
        if model.context > 0 {
            output = output.min(model.context);
        }
        model.prices.cost(TokenCounts {
            prompt,
            cached: 0,
            cache_write: 0,
            completion: output,
        })
    }

    /// Route and call: tries channels in order until one answers, then relays its answer.
    async fn forward(
        &self,
        catalog: &Catalog,
        facts: ChatRequestFacts,
        model: &Model,
        object: &RawObject<'_>,
        mut settlement: Settlement,
    ) -> Result<ChatReply, RelayError> {
        let candidates = route::order(catalog.channels_for(&model.id), &mut rand::rng());
        if candidates.is_empty() {
            let error = RelayError::NoChannel {
                model: model.id.clone(),
                missing: catalog.missing_credentials(&model.id).to_vec(),
            };
            settlement.fail(error.status(), &error.to_string());
            return Err(error);
        }
        let mut last_failure = None;
        for channel in candidates.iter().take(self.policy.max_attempts.max(1)) {
            let upstream_body = upstream_body(object, &facts, channel.upstream_model(&model.id));
            settlement.attempt(channel.id);
            let attempt = self.attempt(channel, upstream_body, &facts).await;
            match attempt {
                Ok(Answer::Stream(mut stream)) => {
                    stream.attach(settlement);
                    return Ok(ChatReply::Stream(stream));
                }
                Ok(Answer::Json(bytes, meter)) => {
                    settlement.finish(
                        meter,
                        Outcome {
                            status: 200,
                            error: None,
                        },
                    );
                    return Ok(ChatReply::Json(bytes));
                }
                Err(failure) => {
                    settlement.attempt_failed();
                    tracing::warn!(channel = %channel.name, error = %failure, "upstream attempt failed");
                    metrics::counter!("tokenhub_upstream_failures_total", "channel" => channel.name.clone()).increment(1);
                    let retry = failure.retryable();
                    last_failure = Some(failure);
                    if !retry {
                        break;
                    }
                }
            }
        }
        let failure = last_failure
            .unwrap_or_else(|| UpstreamFailure::new(FailureKind::Connect, "no channel answered"));
        let error = RelayError::Upstream(failure);
        settlement.fail(error.status(), &error.to_string());
        Err(error)
    }

    async fn attempt(
        &self,
        channel: &crate::catalog::Channel,
        body: Bytes,
        facts: &ChatRequestFacts,
    ) -> Result<Answer, UpstreamFailure> {
        let deadlines = self.policy.deadlines;
        let response = providers::send_chat(&self.http, channel, body, deadlines).await?;
        if facts.stream {
            let mut stream = MeteredStream::new(response.body, facts.client_wants_usage);
            tokio::time::timeout(deadlines.first_byte, stream.wait_for_first_event())
                .await
                .map_err(|_| {
                    UpstreamFailure::new(FailureKind::Timeout, "upstream sent no event in time")
                })??;
            return Ok(Answer::Stream(Box::new(stream)));
        }
        let bytes = tokio::time::timeout(
            self.policy.total_timeout,
            read_bounded(response.body, self.policy.max_response_bytes),
        )
        .await
        .map_err(|_| {
            UpstreamFailure::new(
                FailureKind::Timeout,
                "upstream did not finish its answer in time",
            )
        })??;
        let meter = meter_completion(&bytes)?;
        let start = bytes.len() - bytes.trim_ascii_start().len();
        Ok(Answer::Json(bytes.slice(start..), meter))
    }
}

enum Answer {
    Stream(Box<MeteredStream>),
    Json(Bytes, Meter),
}

/// The body as the upstream must see it: the public model name replaced by the channel's,
/// and streamed usage switched on so every stream can be billed. Everything else verbatim.
fn upstream_body(object: &RawObject<'_>, facts: &ChatRequestFacts, upstream_model: &str) -> Bytes {
    let model = serde_json::Value::from(upstream_model).to_string();
    let bytes = if facts.stream {
        object.write_with(&[
            ("model", &model),
            ("stream_options", &object.stream_options_with_usage()),
        ])
    } else {
        object.write_with(&[("model", &model)])
    };
    Bytes::from(bytes)
}

async fn read_bounded(
    mut body: providers::ByteStream,
    limit: usize,
) -> Result<Bytes, UpstreamFailure> {
    let mut collected = Vec::new();
    while let Some(chunk) = body.next().await {
        collected.extend_from_slice(&chunk?);
        if collected.len() > limit {
            return Err(UpstreamFailure::new(
                FailureKind::Protocol,
                format!("upstream answer exceeded {limit} bytes"),
            ));
        }
    }
    Ok(Bytes::from(collected))
}

/// Reads usage and text from a complete answer. Some upstreams pad with whitespace.
fn meter_completion(body: &[u8]) -> Result<Meter, UpstreamFailure> {
    let trimmed = body.trim_ascii();
    let view = CompletionView::parse(trimmed).map_err(|e| {
        UpstreamFailure::new(
            FailureKind::Protocol,
            format!("upstream answer is not a chat completion: {e}"),
        )
    })?;
    if view.error.is_some() || view.choices.is_none() {
        let message = crate::protocol::openai::error::upstream_error_message(trimmed)
            .unwrap_or_else(|| "upstream answer has no choices".into());
        return Err(UpstreamFailure::new(FailureKind::Protocol, message));
    }
    let mut meter = Meter {
        usage: view.usage_counts(),
        ..Meter::default()
    };
    view.for_each_text(|text| meter.text.push_str(text));
    Ok(meter)
}
