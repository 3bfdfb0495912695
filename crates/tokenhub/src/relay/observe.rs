//! A settled request's one log line and its metrics.
//!
//! Metric handles are kept per model: looking a labelled metric up in the recorder on
//! every request means allocating its labels and hashing them each time, which showed
//! in profiles. The handles stay valid for the process (the Prometheus recorder is
//! installed once, before the first request).

use std::sync::{Arc, LazyLock, Mutex, RwLock};

use metrics::{Counter, Histogram};

use crate::fast_map::FastMap;
use crate::ledger::money::UsdText;
use crate::store::UsageRecord;

/// Models with kept handles, at most; requests for others look their metrics up each time.
const MAX_MODELS: usize = 4096;

struct ModelMeters {
    prompt_tokens: Counter,
    completion_tokens: Counter,
    cost: Counter,
    duration: Histogram,
    time_to_first_token: Histogram,
    /// `tokenhub_requests_total` by status, in the order statuses were first seen.
    requests: Mutex<Vec<(u16, Counter)>>,
}

impl ModelMeters {
    fn new(model: &str) -> ModelMeters {
        let model = model.to_owned();
        ModelMeters {
            prompt_tokens: metrics::counter!("tokenhub_tokens_total", "model" => model.clone(), "kind" => "prompt"),
            completion_tokens: metrics::counter!("tokenhub_tokens_total", "model" => model.clone(), "kind" => "completion"),
            cost: metrics::counter!("tokenhub_cost_nano_usd_total", "model" => model.clone()),
            duration: metrics::histogram!("tokenhub_request_duration_seconds", "model" => model.clone()),
            time_to_first_token: metrics::histogram!("tokenhub_time_to_first_token_seconds", "model" => model),
            requests: Mutex::default(),
        }
    }

    fn requests(&self, model: &str, status: u16) -> Counter {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, counter)) = requests.iter().find(|(seen, _)| *seen == status) {
            return counter.clone();
        }
        let counter = metrics::counter!("tokenhub_requests_total", "model" => model.to_owned(), "status" => status.to_string());
        requests.push((status, counter.clone()));
        counter
    }
}

static METERS: LazyLock<RwLock<FastMap<String, Arc<ModelMeters>>>> = LazyLock::new(RwLock::default);

fn meters(model: &str) -> Arc<ModelMeters> {
    if let Some(meters) = METERS.read().unwrap_or_else(|e| e.into_inner()).get(model) {
        return meters.clone();
    }
    let meters = Arc::new(ModelMeters::new(model));
    let mut kept = METERS.write().unwrap_or_else(|e| e.into_inner());
    if kept.len() < MAX_MODELS {
        return kept.entry(model.to_owned()).or_insert(meters).clone();
    }
    meters
}

/// Records a settled request: metrics, then its log line (`cost_usd`: the record's cost
/// as the answer carries it, rendered once by its `Charge`).
pub fn settled(record: &UsageRecord, cost_usd: UsdText) {
    let meters = meters(&record.model);
    meters.requests(&record.model, record.status).increment(1);
    meters.prompt_tokens.increment(record.prompt_tokens);
    meters.completion_tokens.increment(record.completion_tokens);
    meters
        .cost
        .increment(u64::try_from(record.cost.0).unwrap_or(0));
    meters.duration.record(record.latency_ms as f64 / 1000.0);
    if let Some(ttft) = record.ttft_ms {
        meters.time_to_first_token.record(ttft as f64 / 1000.0);
    }
    tracing::info!(
        request_id = %record.request_id,
        user_id = record.user_id,
        key_id = record.key_id,
        model = %record.model,
        channel_id = ?record.channel_id,
        status = record.status,
        stream = record.stream,
        prompt_tokens = record.prompt_tokens,
        cached_tokens = record.cached_tokens,
        cache_write_tokens = record.cache_write_tokens,
        cache_write_1h_tokens = record.cache_write_1h_tokens,
        explicit_cached_tokens = record.explicit_cached_tokens,
        price_tier = %record.price_tier,
        completion_tokens = record.completion_tokens,
        cost_usd = %cost_usd,
        estimated = record.estimated,
        latency_ms = record.latency_ms,
        ttft_ms = ?record.ttft_ms,
        error = ?record.error,
        "relay request settled"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_client_makes_up_keep_at_most_max_models_handles() {
        for n in 0..MAX_MODELS + 100 {
            let name = format!("made-up-model-{n}");
            let handles = meters(&name);
            handles.requests(&name, 404).increment(1);
        }
        let kept = METERS.read().unwrap_or_else(|e| e.into_inner()).len();
        assert!(kept <= MAX_MODELS, "{kept}");
        assert!(
            METERS
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key("made-up-model-0")
        );
    }
}
