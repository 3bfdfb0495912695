//! Why a relay request did not succeed. The API layer turns these into wire errors; the
//! relay only says what happened and whose fault it was.

use crate::catalog::MissingCredential;
use crate::ledger::books::Refusal;
use crate::protocol::openai::request::InvalidRequest;
use crate::providers::UpstreamFailure;
use crate::relay::limits::{LimitKind, Limited};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Unauthenticated(String),
    /// The key is not in memory and this address (or all addresses together) used up its
    /// database lookups of unknown keys. Not a 401: the key may well be valid and new.
    #[error("Too many requests with API keys this gateway does not know yet; retry in {} s.", .retry_after.as_secs().max(1))]
    KeyLookupThrottled { retry_after: std::time::Duration },
    /// The key is not in memory and the database did not answer its lookup.
    #[error("Cannot check this API key right now; retry shortly.")]
    KeyLookupFailed,
    /// The limits or money this request needs are shared across instances (Redis) and
    /// Redis did not answer: refused rather than admitted unchecked (docs/redis.md).
    #[error("The gateway cannot check your limits and balance right now; retry shortly.")]
    SharedStateUnavailable,
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    #[error("{}", describe_refusal(.0))]
    Insufficient(Refusal),
    #[error("{}", describe_missing(.model, .missing))]
    NoChannel {
        model: String,
        missing: Vec<MissingCredential>,
    },
    #[error("{0}")]
    Upstream(UpstreamFailure),
    #[error("Model `{model}` is not available on /v1/{}: none of its channels supports it.", .operation.path())]
    Unsupported {
        model: String,
        operation: crate::protocol::openai::operation::Operation,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("Channel `{channel}` is not a usable channel for model `{model}`.")]
    ChannelNotServing { channel: String, model: String },
    #[error("This API key may not be used from {}.", .0.map_or("an unknown address".to_string(), |ip| ip.to_string()))]
    IpNotAllowed(Option<std::net::IpAddr>),
    #[error("{}", describe_limit(.0))]
    RateLimited(Limited),
    #[error("Every channel serving `{model}` is cooling down after failures; retry in {} s.", .retry_after.as_secs().max(1))]
    CoolingDown {
        model: String,
        retry_after: std::time::Duration,
    },
    /// The upstream rejected every key of every channel serving the model (401/403). Only
    /// the operator can fix it; nothing was sent.
    #[error(
        "Model `{model}` is not available: the upstream rejected the keys of every channel serving it. The operator must replace them."
    )]
    KeysRejected { model: String },
    /// The database is away and the usage records waiting for it fill the spill file:
    /// a paid request would be served without a durable record of its cost.
    #[error(
        "The gateway cannot record usage right now (its database is unavailable and the local backlog is full); paid requests are refused until it recovers. Retry shortly."
    )]
    LedgerBacklog,
    /// Every channel that could serve the request is at its `max_concurrency`. Nothing was
    /// sent upstream; the client may retry shortly.
    #[error("Every channel serving `{model}` is at its concurrency limit; retry in {} s.", .retry_after.as_secs().max(1))]
    Saturated {
        model: String,
        retry_after: std::time::Duration,
    },
}

impl RelayError {
    /// The status the client receives; recorded in the usage record too.
    pub fn status(&self) -> u16 {
        use crate::providers::FailureKind;
        match self {
            RelayError::Unauthenticated(_) => 401,
            RelayError::InvalidRequest(_) => 400,
            RelayError::ModelNotFound(_) => 404,
            RelayError::Unsupported { .. } => 400,
            RelayError::Insufficient(_)
            | RelayError::RateLimited(_)
            | RelayError::KeyLookupThrottled { .. }
            | RelayError::Saturated { .. } => 429,
            RelayError::IpNotAllowed(_) | RelayError::Forbidden(_) => 403,
            RelayError::ChannelNotServing { .. } => 400,
            RelayError::NoChannel { .. }
            | RelayError::KeyLookupFailed
            | RelayError::SharedStateUnavailable
            | RelayError::LedgerBacklog
            | RelayError::CoolingDown { .. }
            | RelayError::KeysRejected { .. } => 503,
            RelayError::Upstream(failure) => match failure.kind {
                FailureKind::Status(status @ (400 | 413 | 422 | 429)) => status,
                FailureKind::Status(503) => 503,
                FailureKind::Timeout => 504,
                FailureKind::Status(_)
                | FailureKind::Connect
                | FailureKind::Protocol
                | FailureKind::Broken => 502,
            },
        }
    }
}

impl RelayError {
    /// How long a client should wait before retrying: the gateway's figure when it has
    /// one, else `RETRY_SOON` for every 503 and 429 but an exhausted balance or key quota,
    /// which no wait refills.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let known = match self {
            RelayError::CoolingDown { retry_after, .. }
            | RelayError::Saturated { retry_after, .. }
            | RelayError::KeyLookupThrottled { retry_after } => Some(*retry_after),
            RelayError::LedgerBacklog => Some(std::time::Duration::from_secs(5)),
            RelayError::RateLimited(limited) => Some(limited.retry_after),
            RelayError::Upstream(failure) => failure.retry_after,
            RelayError::Insufficient(_) => return None,
            _ => None,
        };
        known.or_else(|| default_retry_after(self.status()))
    }
}

/// The wait a 503 or 429 answer names when nothing better is known (`Retry-After`).
pub const RETRY_SOON: std::time::Duration = std::time::Duration::from_secs(1);

/// `RETRY_SOON` for a 503 or 429 (a refusal for now), nothing for any other status.
pub fn default_retry_after(status: u16) -> Option<std::time::Duration> {
    matches!(status, 429 | 503).then_some(RETRY_SOON)
}

fn describe_limit(limited: &Limited) -> String {
    let (what, unit) = match limited.kind {
        LimitKind::Requests => ("requests", "requests"),
        LimitKind::Tokens => ("tokens", "tokens"),
    };
    format!(
        "Rate limit reached for {what} per minute (RPM/TPM) on this API key: limit {} {unit}, remaining {}. Please try again in {:.1}s.",
        limited.limit,
        limited.remaining,
        limited.retry_after.as_secs_f64()
    )
}

fn describe_refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Balance { available, needed } => format!(
            "You exceeded your current quota: this request may cost up to {needed} and your available balance is {available}. Add credit to continue."
        ),
        Refusal::KeyQuota { remaining, needed } => format!(
            "This API key's spending quota is exhausted: this request may cost up to {needed} and the key has {remaining} left."
        ),
    }
}

fn describe_missing(model: &str, missing: &[MissingCredential]) -> String {
    if missing.is_empty() {
        return format!(
            "No channel is configured to serve model `{model}`. Ask the operator to add one."
        );
    }
    let hints: Vec<String> = missing
        .iter()
        .map(|m| match &m.env_var {
            Some(var) => format!("channel '{}' needs {var} to be set", m.channel),
            None => format!("channel '{}' has no API key", m.channel),
        })
        .collect();
    format!(
        "Model `{model}` is not available yet: {}.",
        hints.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::money::Nanos;
    use crate::providers::FailureKind;

    #[test]
    fn statuses_follow_openai() {
        assert_eq!(RelayError::Unauthenticated("x".into()).status(), 401);
        assert_eq!(RelayError::ModelNotFound("m".into()).status(), 404);
        let refusal = Refusal::Balance {
            available: Nanos(0),
            needed: Nanos(5),
        };
        assert_eq!(RelayError::Insufficient(refusal).status(), 429);
        let upstream = |kind| RelayError::Upstream(UpstreamFailure::new(kind, "x")).status();
        assert_eq!(upstream(FailureKind::Status(500)), 502);
        assert_eq!(
            upstream(FailureKind::Status(401)),
            502,
            "a channel's bad key is not the client's 401"
        );
        assert_eq!(upstream(FailureKind::Status(400)), 400);
        assert_eq!(upstream(FailureKind::Status(503)), 503);
        assert_eq!(upstream(FailureKind::Timeout), 504);
    }

    #[test]
    fn missing_channel_message_names_the_variable() {
        let error = RelayError::NoChannel {
            model: "deepseek-chat".into(),
            missing: vec![MissingCredential {
                channel: "deepseek".into(),
                env_var: Some("DEEPSEEK_API_KEY".into()),
            }],
        };
        assert_eq!(error.status(), 503);
        let text = error.to_string();
        assert!(
            text.contains("deepseek-chat")
                && text.contains("DEEPSEEK_API_KEY")
                && text.contains("'deepseek'"),
            "{text}"
        );
    }
}
