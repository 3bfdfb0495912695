//! The streaming response: upstream SSE events pass to the client as they arrive, each
//! in its own write, unchanged unless the gateway must act on it:
//! - the usage chunk the gateway asked for on the client's behalf is withheld when the
//!   client did not ask for usage itself;
//! - a client that asked for usage gets one even when the upstream put it elsewhere
//!   (inside a choice) or reported none (counted locally);
//! - a stream that breaks or ends without `[DONE]` ends with an OpenAI error event, so
//!   the client can tell a broken answer from a finished one.
//!
//! Settlement happens when the stream ends, or in `Drop` if the client disconnects.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::concurrency::SlotPermit;
use super::settle::{Meter, Outcome, Settlement};
use super::streams_end::{EndWatch, StreamsEnd};
use crate::catalog::Channel;
use crate::protocol::openai::charge::Charge;
use crate::protocol::openai::chunk::{CompletionView, usage_chunk_json};
use crate::protocol::openai::error::upstream_error_message;
use crate::protocol::openai::operation::Operation;
use crate::protocol::openai::request::RequestFacts;
use crate::protocol::openai::splice::MemberSite;
use crate::protocol::sse::{SseDecoder, SseEvent};
use crate::providers::dialect::{Dialect, fix_finish_reasons};
use crate::providers::{ByteStream, FailureKind, UpstreamFailure};

mod native;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// When a stream must end even though the upstream has not.
pub struct StreamLimits {
    /// Longest silence between data events (comments do not reset it).
    pub idle: Duration,
    /// The whole answer's deadline.
    pub deadline: tokio::time::Instant,
    /// Ended when a graceful shutdown's grace period is over.
    pub shutdown: StreamsEnd,
}

pub struct MeteredStream {
    upstream: ByteStream,
    decoder: SseDecoder,
    ready: VecDeque<Bytes>,
    meter: Meter,
    settlement: Option<Settlement>,
    operation: Operation,
    /// Whose keys an upstream error event must not carry to the client or the record.
    channel: Arc<Channel>,
    dialect: Dialect,
    /// The gateway ended the answer with its own error event (an upstream "finish" that
    /// was really a failure); nothing the upstream sends afterwards is forwarded.
    failed: bool,
    client_wants_usage: bool,
    usage_forwarded: bool,
    saw_data: bool,
    saw_finish: bool,
    saw_done: bool,
    ended: bool,
    /// id, created and model of the first chunk, for chunks the gateway writes itself.
    identity: Option<(String, i64, String)>,
    idle_limit: Duration,
    /// When the last data event came.
    last_data_at: tokio::time::Instant,
    deadline: tokio::time::Instant,
    /// One timer for both limits, set for the earlier of the deadline and the end of the
    /// allowed silence. It is not moved on every event (a timer-wheel update per event):
    /// when it fires early, it is set again from `last_data_at`. (Each timer is also
    /// polled on every pending read: one instead of two, ~280 instructions an event.)
    limit: Pin<Box<tokio::time::Sleep>>,
    shutdown: EndWatch,
    /// The stream's place on a channel with `max_concurrency`, freed when it ends.
    slot: Option<SlotPermit>,
    /// A native Responses stream's progress (`stream/native.rs`).
    native: native::NativeProgress,
}

impl MeteredStream {
    pub fn new(
        upstream: ByteStream,
        facts: &RequestFacts,
        channel: Arc<Channel>,
        dialect: Dialect,
        limits: StreamLimits,
    ) -> MeteredStream {
        let now = tokio::time::Instant::now();
        MeteredStream {
            upstream,
            decoder: SseDecoder::default(),
            ready: VecDeque::new(),
            meter: Meter::default(),
            settlement: None,
            operation: facts.operation,
            channel,
            dialect,
            failed: false,
            client_wants_usage: facts.client_wants_usage,
            usage_forwarded: false,
            saw_data: false,
            saw_finish: false,
            saw_done: false,
            ended: false,
            identity: None,
            idle_limit: limits.idle,
            last_data_at: now,
            deadline: limits.deadline,
            limit: Box::pin(tokio::time::sleep_until(
                (now + limits.idle).min(limits.deadline),
            )),
            shutdown: limits.shutdown.watch(),
            slot: None,
            native: native::NativeProgress::default(),
        }
    }

    /// Keeps the channel's concurrency slot taken until the stream ends.
    pub fn hold_slot(&mut self, slot: Option<SlotPermit>) {
        self.slot = slot;
    }

    /// Reads until the first data event, so that a channel that fails before producing
    /// anything can still be replaced by another. Nothing has reached the client yet.
    pub async fn wait_for_first_event(&mut self) -> Result<(), UpstreamFailure> {
        while !self.saw_data {
            match self.upstream.next().await {
                Some(Ok(bytes)) => self.absorb(bytes)?,
                Some(Err(failure)) => return Err(failure),
                None => {
                    self.drain_decoder_tail();
                    if !self.saw_data {
                        return Err(UpstreamFailure::new(
                            FailureKind::Protocol,
                            "upstream closed the stream before any event",
                        ));
                    }
                }
            }
        }
        if let Some(error) = self.meter.error.take() {
            // An error as the very first event: nothing was shown, another channel may answer.
            return Err(UpstreamFailure::new(FailureKind::Status(502), error));
        }
        Ok(())
    }

    /// From here on the client sees this stream; its end settles the request.
    pub fn attach(&mut self, settlement: Settlement) {
        crate::meters::METERS.streams_open.increment(1.0);
        self.settlement = Some(settlement);
    }

    fn absorb(&mut self, bytes: Bytes) -> Result<(), UpstreamFailure> {
        self.decoder.push(bytes);
        loop {
            match self.decoder.next_event() {
                Ok(Some(event)) => self.on_event(event),
                Ok(None) => return Ok(()),
                Err(too_large) => {
                    return Err(UpstreamFailure::new(
                        FailureKind::Protocol,
                        too_large.to_string(),
                    ));
                }
            }
        }
    }

    fn drain_decoder_tail(&mut self) {
        if let Some(event) = self.decoder.finish() {
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: SseEvent) {
        let Some(data) = &event.data else {
            self.ready.push_back(event.raw); // comments keep idle connections alive
            return;
        };
        if &data[..] == b"[DONE]" {
            if self.failed {
                return; // the gateway already ended this answer with an error event
            }
            self.saw_done = true;
            self.supply_usage_if_owed();
            self.ready.push_back(Bytes::from_static(DONE));
            return;
        }
        self.saw_data = true;
        self.last_data_at = tokio::time::Instant::now();
        if self.operation == Operation::Responses {
            return self.on_native_event(event);
        }
        let Ok(view) = CompletionView::parse(data) else {
            self.ready.push_back(event.raw);
            return;
        };
        if self.identity.is_none() {
            let id = view
                .id
                .as_deref()
                .unwrap_or("chatcmpl-tokenhub")
                .to_string();
            let model = view.model.as_deref().unwrap_or_default().to_string();
            self.identity = Some((id, view.created.unwrap_or(0), model));
        }
        let mut redacted_error = None;
        if view.error.is_some() {
            let (message, redacted) = self.redact_error_event(data);
            self.meter.error = Some(message);
            redacted_error = redacted;
        }
        if let Some(tier) = &view.service_tier {
            self.meter.service_tier = Some(tier.to_string());
        }
        if let Some(counts) = view.usage_counts() {
            self.meter.usage = Some(counts);
        }
        view.for_each_text(|text| self.meter.text.push(text));
        if self.meter.first_token_at.is_none() && !self.meter.text.is_empty() {
            self.meter.first_token_at = Some(Instant::now());
        }
        let mut raw = redacted_error.unwrap_or(event.raw);
        if view.has_finish_reason() {
            match fix_finish_reasons(self.dialect, data) {
                Ok(None) => {}
                Ok(Some(fixed)) => raw = SseEvent::data_bytes(&fixed),
                Err(message) => {
                    self.meter.error = Some(message.clone());
                    self.failed = true;
                    self.ready.push_back(error_event(&message));
                    return;
                }
            }
            self.saw_finish = true;
        }
        if view.is_usage_only() {
            if !self.client_wants_usage {
                return;
            }
            self.usage_forwarded = true;
            raw = self.with_charge(data, view.usage_site()).unwrap_or(raw);
        } else if !self.client_wants_usage {
            raw = without_null_usage(raw);
        }
        self.ready.push_back(raw);
    }

    /// Settles at the usage chunk the client reads (its usage is final), so the chunk can
    /// carry what the request cost: the event with `usage.cost` added.
    fn with_charge(&mut self, data: &[u8], usage_site: Option<&MemberSite>) -> Option<Bytes> {
        let charge = self.settle(None)?;
        let chunk = charge.add_to_answer_at(data, usage_site)?;
        Some(SseEvent::data_bytes(&chunk))
    }

    /// Settles with what was metered so far, once.
    fn settle(&mut self, error: Option<String>) -> Option<Charge> {
        let mut settlement = self.settlement.take()?;
        crate::meters::METERS.streams_open.decrement(1.0);
        let meter = std::mem::take(&mut self.meter);
        settlement.finish(meter, Outcome { status: 200, error })
    }

    /// An upstream's in-band error may echo its key: its message for the record, and the
    /// event to forward instead when anything had to be redacted (the rest of the event
    /// stays as the upstream wrote it).
    fn redact_error_event(&self, data: &[u8]) -> (String, Option<Bytes>) {
        let text = String::from_utf8_lossy(data);
        let redacted = self.channel.redact(&text);
        let message = upstream_error_message(redacted.as_bytes())
            .unwrap_or_else(|| "upstream error event".into());
        let event = (redacted != text).then(|| SseEvent::data_bytes(redacted.as_bytes()));
        (message, event)
    }

    /// A client that asked for usage gets a usage chunk before `[DONE]`, whatever the upstream did.
    fn supply_usage_if_owed(&mut self) {
        if !self.client_wants_usage || self.usage_forwarded {
            return;
        }
        let counts = self
            .meter
            .usage
            .unwrap_or_else(|| crate::ledger::money::TokenCounts {
                prompt: self
                    .settlement
                    .as_ref()
                    .map_or(0, Settlement::estimate_prompt),
                cached: 0,
                cache_write: 0,
                completion: self.meter.text.count(),
                ..Default::default()
            });
        let (id, created, model) = self.identity.clone().unwrap_or_default();
        let object = self.operation.chunk_object();
        let chunk = usage_chunk_json(&id, object, created, &model, counts);
        let chunk = self
            .settle(None)
            .and_then(|charge| charge.add_to_answer(&chunk))
            .map_or(chunk, Bytes::from);
        self.ready.push_back(SseEvent::data_bytes(&chunk));
        self.usage_forwarded = true;
    }

    /// The upstream is finished (cleanly or not): close the client's stream properly.
    fn end(&mut self, failure: Option<UpstreamFailure>) {
        self.ended = true;
        // The upstream is done with: the channel may take another request now, not only
        // once the client has read the last bytes.
        self.slot = None;
        let error = match failure {
            Some(failure) => Some(failure.into_message()),
            None if self.saw_done => None,
            None if self.saw_finish && self.meter.error.is_none() => {
                // Some upstreams end without `[DONE]`; the answer is complete, so finish it for them.
                self.supply_usage_if_owed();
                self.ready.push_back(Bytes::from_static(DONE));
                None
            }
            None if self.meter.error.is_some() => None, // the upstream's own error event was forwarded
            None => Some("upstream stream ended before the answer was complete".to_string()),
        };
        if let Some(message) = &error {
            let event = self.error_event(message);
            self.ready.push_back(event);
        }
        let _settled = self.settle(error);
    }
}

/// A chunk without the `"usage":null` an upstream adds to every chunk once usage is
/// asked for: the gateway asked on behalf of a client that did not, and OpenAI writes
/// no `usage` member at all then. Only the compact form OpenAI writes is recognised.
fn without_null_usage(raw: Bytes) -> Bytes {
    const NULL_USAGE: &[u8] = br#","usage":null"#;
    // Built once: building a searcher per event cost more than the search (~900
    // instructions an event; bench/RESULTS.md, addendum 16).
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(NULL_USAGE));
    match FINDER.find(&raw) {
        None => raw,
        Some(at) => {
            let mut edited = Vec::with_capacity(raw.len() - NULL_USAGE.len());
            edited.extend_from_slice(&raw[..at]);
            edited.extend_from_slice(&raw[at + NULL_USAGE.len()..]);
            Bytes::from(edited)
        }
    }
}

impl MeteredStream {
    /// Which limit, if any, has run out while the upstream is silent.
    fn poll_limits(&mut self, cx: &mut Context<'_>) -> Option<&'static str> {
        if self.shutdown.poll_ended(cx) {
            return Some("the gateway is shutting down");
        }
        while self.limit.as_mut().poll(cx).is_ready() {
            let now = tokio::time::Instant::now();
            if self.deadline <= now {
                return Some("the answer took longer than the gateway's total timeout");
            }
            let silent_until = self.last_data_at + self.idle_limit;
            if silent_until <= now {
                return Some("the upstream went silent in the middle of the answer");
            }
            self.limit.as_mut().reset(silent_until.min(self.deadline));
        }
        None
    }
}

impl MeteredStream {
    /// The event a broken answer ends with, in the stream's own protocol.
    fn error_event(&self, message: &str) -> Bytes {
        match self.operation {
            Operation::Responses => self.native_error_event(message),
            _ => error_event(message),
        }
    }
}

fn error_event(message: &str) -> Bytes {
    let body = serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": "upstream_error"}});
    SseEvent::data_bytes(body.to_string().as_bytes())
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| this.poll_events(cx)));
        polled.unwrap_or_else(|_| {
            // A bug in metering must not cost the client its answer's end or the request
            // its settlement: end the stream with an error event, settled as it stands.
            tracing::error!("the metered stream panicked; ended with an error event");
            this.ready.clear();
            this.end(Some(UpstreamFailure::new(
                FailureKind::Protocol,
                "the gateway failed while relaying the answer",
            )));
            Poll::Ready(this.ready.pop_front().map(Ok))
        })
    }
}

impl MeteredStream {
    fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let this = self;
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match this.upstream.poll_next_unpin(cx) {
                Poll::Pending => {
                    let Some(reason) = this.poll_limits(cx) else {
                        return Poll::Pending;
                    };
                    this.end(Some(UpstreamFailure::new(FailureKind::Timeout, reason)));
                }
                Poll::Ready(Some(Ok(bytes))) => {
                    if let Err(failure) = this.absorb(bytes) {
                        this.end(Some(failure));
                    }
                }
                Poll::Ready(Some(Err(failure))) => this.end(Some(failure)),
                Poll::Ready(None) => {
                    this.drain_decoder_tail();
                    this.end(None);
                }
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(mut settlement) = self.settlement.take() {
            crate::meters::METERS.streams_open.decrement(1.0);
            let meter = std::mem::take(&mut self.meter);
            let _abandoned = settlement.finish(meter, Outcome::abandoned("stream"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ledger::books::Books;
    use crate::ledger::money::{Nanos, PerMillion};
    use crate::ledger::writer::LedgerWriter;
    use crate::protocol::openai::request::RawObject;
    use crate::store::test_support::temp_store;

    pub(super) fn test_channel() -> Arc<Channel> {
        Arc::new(Channel {
            id: 1,
            name: "c1".into(),
            kind: crate::catalog::ChannelKind::OpenAi(Dialect::Generic),
            base_url: String::new(),
            keys: Vec::new(),
            model_map: Default::default(),
            priority: 0,
            weight: 1,
            timeouts: Default::default(),
            max_concurrency: None,
            urls: Default::default(),
            responses_native: false,
        })
    }

    /// A chat request that asked for a stream.
    fn chat_stream_facts() -> RequestFacts {
        let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        RawObject::parse(body)
            .unwrap()
            .facts(Operation::Chat)
            .unwrap()
    }

    /// One chunk of generated text, as an upstream sends it.
    fn content_event() -> Bytes {
        Bytes::from_static(
            b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n",
        )
    }

    /// A stream whose events never stop coming is ended at its deadline by the timer it
    /// shares with the idle limit.
    #[tokio::test]
    async fn the_deadline_ends_a_stream_that_is_never_silent() {
        let (facts, event) = (chat_stream_facts(), content_event());
        let frames = futures_util::stream::unfold((), move |()| {
            let event = event.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok(event), ()))
            }
        });
        let limits = StreamLimits {
            idle: Duration::from_millis(400),
            deadline: tokio::time::Instant::now() + Duration::from_millis(1_050),
            shutdown: StreamsEnd::default(),
        };
        let started = tokio::time::Instant::now();
        let stream = MeteredStream::new(
            Box::pin(frames),
            &facts,
            test_channel(),
            Dialect::Generic,
            limits,
        );
        let relayed: Vec<Bytes> = stream.map(|item| item.unwrap()).collect().await;
        let (error, events) = relayed.split_last().unwrap();
        assert!(String::from_utf8_lossy(error).contains("total timeout"));
        assert!(events.len() >= 8, "an event every 100 ms: {}", events.len());
        assert!(events.iter().all(|e| e.starts_with(b"data: {\"id\"")));
        let ended_after = started.elapsed();
        assert!(
            (Duration::from_millis(1_050)..Duration::from_secs(5)).contains(&ended_after),
            "ended at the deadline, never for silence: {ended_after:?}"
        );
    }

    /// Events closer together than the idle limit keep a stream alive however long it
    /// runs in total; silence longer than the limit ends it.
    #[tokio::test]
    async fn the_idle_limit_counts_from_the_last_data_event() {
        let (facts, event) = (chat_stream_facts(), content_event());
        let frames = futures_util::stream::unfold(0, move |sent| {
            let event = event.clone();
            async move {
                if sent > 0 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                (sent < 5).then_some((Ok(event), sent + 1))
            }
        });
        let upstream: ByteStream = Box::pin(frames.chain(futures_util::stream::pending()));
        let limits = StreamLimits {
            idle: Duration::from_millis(400),
            deadline: tokio::time::Instant::now() + Duration::from_secs(60),
            shutdown: StreamsEnd::default(),
        };
        let started = tokio::time::Instant::now();
        let stream = MeteredStream::new(upstream, &facts, test_channel(), Dialect::Generic, limits);
        let relayed: Vec<Bytes> = stream.map(|item| item.unwrap()).collect().await;
        assert_eq!(
            relayed.len(),
            6,
            "five events, then the gateway's error event"
        );
        assert!(relayed[..5].iter().all(|e| e.starts_with(b"data: {\"id\"")));
        assert!(String::from_utf8_lossy(&relayed[5]).contains("went silent"));
        let ended_after = started.elapsed();
        assert!(
            ended_after >= Duration::from_millis(1000),
            "4 gaps of 150 ms, then 400 ms of silence: {ended_after:?}"
        );
    }

    /// A user with $1 whose request is being relayed: what a stream test settles into.
    pub(super) struct Fixture {
        pub store: crate::store::Store,
        pub books: Arc<Books>,
        pub writer: LedgerWriter,
        pub user_id: i64,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        pub async fn new() -> Fixture {
            let (store, dir) = temp_store().await;
            let user = store
                .create_user("streamer", "user", None, Nanos::from_usd(1))
                .await
                .unwrap();
            let books = Arc::new(Books::default());
            books.sync([(user.id, Nanos::from_usd(1))], []);
            let writer = LedgerWriter::spawn(store.clone(), books.clone(), Default::default());
            Fixture {
                store,
                books,
                writer,
                user_id: user.id,
                _dir: dir,
            }
        }

        /// A stream of `body`'s request over `upstream`, primed and attached to the
        /// settlement of `request_id` (model "m" at $1 per million tokens).
        pub async fn stream(
            &self,
            upstream: ByteStream,
            operation: Operation,
            body: &'static [u8],
            request_id: &str,
        ) -> MeteredStream {
            let facts = RawObject::parse(body).unwrap().facts(operation).unwrap();
            let limits = StreamLimits {
                idle: Duration::from_secs(5),
                deadline: tokio::time::Instant::now() + Duration::from_secs(5),
                shutdown: StreamsEnd::default(),
            };
            let mut stream =
                MeteredStream::new(upstream, &facts, test_channel(), Dialect::Generic, limits);
            stream.wait_for_first_event().await.unwrap();
            let mut settlement = Settlement::new(
                self.books.clone(),
                self.writer.clone(),
                request_id.into(),
                operation,
                self.user_id,
                0,
                Bytes::from_static(body),
            );
            let standard = crate::ledger::money::Prices::uniform(PerMillion(Nanos::from_usd(1)));
            let prices = Arc::new(crate::ledger::price_tiers::Pricing::new(standard, &[]));
            settlement.set_model("m", prices, true);
            let hold = self
                .books
                .reserve(self.user_id, 0, None, Nanos::from_usd(1));
            settlement.hold(hold.unwrap());
            settlement.attempt(1);
            stream.attach(settlement);
            stream
        }
    }

    #[tokio::test]
    async fn a_panic_while_relaying_ends_the_stream_with_an_error_and_settles() {
        let fixture = Fixture::new().await;
        let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let first = Bytes::from_static(
            b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
        );
        let mut events = 0;
        let upstream: ByteStream = Box::pin(futures_util::stream::poll_fn(move |_| {
            events += 1;
            assert!(events == 1, "a bug in the middle of the stream");
            Poll::Ready(Some(Ok(first.clone())))
        }));
        let stream = fixture
            .stream(upstream, Operation::Chat, body, "req-stream-panic")
            .await;

        let relayed: Vec<Bytes> = stream.map(|item| item.unwrap()).collect().await;
        let last = String::from_utf8_lossy(relayed.last().unwrap()).into_owned();
        assert!(String::from_utf8_lossy(&relayed[0]).contains("Hello"));
        assert!(last.contains("the gateway failed while relaying"), "{last}");
        fixture.writer.flush().await;
        let record = fixture
            .store
            .usage_by_request_id("req-stream-panic")
            .await
            .unwrap()
            .expect("settled once");
        assert!(record.estimated && record.completion_tokens == 1);
        assert_eq!(
            fixture.books.available(fixture.user_id),
            Nanos::from_usd(1) - record.cost
        );
    }
}
