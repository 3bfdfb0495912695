//! Channel order for one request: priority tiers from highest, and within a tier a
//! weighted random order (a channel with twice the weight is first twice as often).
//! Plus what routing says when no candidate could even be tried (`Skipped`).

use std::sync::Arc;

use std::time::{Duration, Instant};

use rand::Rng;

use super::RelayError;
use crate::catalog::Channel;

/// `channels` must be sorted by priority, highest first (as the catalogue keeps them).
pub fn order(channels: &[Arc<Channel>], rng: &mut impl Rng) -> Vec<Arc<Channel>> {
    let mut ordered = Vec::with_capacity(channels.len());
    for tier in channels.chunk_by(|a, b| a.priority == b.priority) {
        // Efraimidis–Spirakis: sort by u^(1/w) descending; weight 0 goes last.
        let mut keyed: Vec<(f64, &Arc<Channel>)> = tier
            .iter()
            .map(|c| {
                let key = if c.weight == 0 {
                    -1.0
                } else {
                    rng.random::<f64>().powf(1.0 / f64::from(c.weight))
                };
                (key, c)
            })
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        ordered.extend(keyed.into_iter().map(|(_, c)| c.clone()));
    }
    ordered
}

/// Why candidates were passed over without an attempt, for the error when none answered.
#[derive(Default)]
pub struct Skipped {
    pub saturated: bool,
    /// The earliest moment a cooling key reopens.
    cooling_until: Option<Instant>,
    /// A channel had no key left but rejected ones.
    rejected: bool,
}

impl Skipped {
    /// A channel none of whose keys may be called: some reopen at `until`, or (`None`)
    /// all were rejected by the upstream.
    pub fn unavailable(&mut self, until: Option<Instant>) {
        match until {
            Some(until) => {
                self.cooling_until = Some(self.cooling_until.map_or(until, |u| u.min(until)));
            }
            None => self.rejected = true,
        }
    }

    /// Saturation first: it clears as soon as a request ends, sooner than any cooldown.
    pub fn into_error(self, model: &str) -> RelayError {
        match (self.saturated, self.cooling_until) {
            (true, _) => RelayError::Saturated {
                model: model.to_string(),
                retry_after: SATURATED_RETRY_AFTER,
            },
            (false, Some(until)) => RelayError::CoolingDown {
                model: model.to_string(),
                retry_after: until.saturating_duration_since(Instant::now()),
            },
            (false, None) if self.rejected => RelayError::KeysRejected {
                model: model.to_string(),
            },
            (false, None) => RelayError::NoChannel {
                model: model.to_string(),
                missing: Vec::new(),
            },
        }
    }
}

/// What a client refused for saturation is told to wait: requests to LLMs last seconds,
/// so a slot is likely free by then.
const SATURATED_RETRY_AFTER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;

    use super::*;
    use crate::catalog::ChannelKind;

    fn channel(id: i64, priority: i64, weight: u32) -> Arc<Channel> {
        Arc::new(Channel {
            id,
            name: format!("c{id}"),
            kind: ChannelKind::OpenAi(crate::providers::dialect::Dialect::Generic),
            base_url: String::new(),
            keys: Vec::new(),
            model_map: HashMap::new(),
            priority,
            weight,
            timeouts: Default::default(),
            max_concurrency: None,
            urls: Default::default(),
            responses_native: false,
        })
    }

    #[test]
    fn higher_tiers_always_come_first() {
        let channels = [channel(1, 10, 1), channel(2, 10, 1), channel(3, 0, 100)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let ids: Vec<i64> = order(&channels, &mut rng).iter().map(|c| c.id).collect();
            assert_eq!(ids[2], 3);
        }
    }

    #[test]
    fn weights_shape_the_first_choice() {
        let channels = [channel(1, 0, 3), channel(2, 0, 1), channel(3, 0, 0)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut first = HashMap::new();
        for _ in 0..4000 {
            let ordered = order(&channels, &mut rng);
            *first.entry(ordered[0].id).or_insert(0) += 1;
            assert_eq!(ordered[2].id, 3, "weight 0 is a last resort");
        }
        let share = f64::from(first[&1]) / 4000.0;
        assert!(
            (0.70..0.80).contains(&share),
            "weight 3 of 4 should lead ~75%, got {share}"
        );
    }
}
