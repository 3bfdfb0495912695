//! Bounded concurrency per channel: a channel with `max_concurrency` takes at most that
//! many requests at once (an attempt, and for a stream until it ends). A saturated
//! channel is skipped like a cooling one; routing tries the next candidate.
//!
//! The counters live here rather than in the snapshot, so a reload does not reset the
//! count of requests still in flight. Per process, like `Health`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// In-flight requests per channel id.
#[derive(Debug, Default)]
pub struct ChannelSlots {
    in_flight: Mutex<HashMap<i64, Arc<AtomicU32>>>,
}

/// One request's place on a channel; dropping it frees the place.
#[derive(Debug)]
pub struct SlotPermit {
    count: Arc<AtomicU32>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every slot of the channel is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saturated;

impl ChannelSlots {
    /// Takes a place on the channel. Unbounded channels need none (and cost nothing).
    pub fn acquire(
        &self,
        channel_id: i64,
        max: Option<u32>,
    ) -> Result<Option<SlotPermit>, Saturated> {
        let Some(max) = max else {
            return Ok(None);
        };
        // The map lock covers only the lookup; the count itself is atomic.
        let count = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            in_flight.entry(channel_id).or_default().clone()
        };
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Saturated)?;
        Ok(Some(SlotPermit { count }))
    }

    /// Requests in flight on a channel (bounded channels only), for operators and tests.
    pub fn in_flight(&self, channel_id: i64) -> u32 {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&channel_id)
            .map_or(0, |count| count.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_channel_admits_up_to_its_cap_and_frees_on_drop() {
        let slots = ChannelSlots::default();
        let first = slots.acquire(1, Some(2)).unwrap();
        let second = slots.acquire(1, Some(2)).unwrap();
        assert!(first.is_some() && second.is_some());
        assert_eq!(slots.acquire(1, Some(2)).unwrap_err(), Saturated);
        assert!(slots.acquire(2, Some(2)).unwrap().is_some(), "per channel");
        assert_eq!(slots.in_flight(1), 2);
        drop(first);
        assert_eq!(slots.in_flight(1), 1);
        assert!(slots.acquire(1, Some(2)).unwrap().is_some());
        assert!(
            slots.acquire(1, None).unwrap().is_none(),
            "unbounded channels are not counted"
        );
    }
}
