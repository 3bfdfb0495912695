//! Bounded concurrency per channel: a channel with `max_concurrency` takes at most that
//! many requests at once (an attempt, and for a stream until it ends). A saturated
//! channel is skipped like a cooling one; routing tries the next candidate.
//!
//! The counters live here rather than in the snapshot, so a reload does not reset the
//! count of requests still in flight. Per process; with Redis the slots are leases
//! shared by every instance (`shared/slots.rs`), taken with `acquire_shared`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::shared::slots::SlotLease;
use crate::shared::{SharedError, SharedState};

/// In-flight requests per channel id.
#[derive(Default)]
pub struct ChannelSlots {
    in_flight: Mutex<HashMap<i64, Arc<AtomicU32>>>,
    shared: Option<Arc<SharedState>>,
}

/// One request's place on a channel; dropping it frees the place.
#[derive(Debug)]
pub struct SlotPermit {
    place: Place,
}

#[derive(Debug)]
enum Place {
    Local(Arc<AtomicU32>),
    /// Released in Redis by a spawned task; if that is lost, the lease ends with the
    /// instance.
    Shared(Option<SlotLease>, Arc<SharedState>),
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        match &mut self.place {
            Place::Local(count) => {
                count.fetch_sub(1, Ordering::AcqRel);
            }
            Place::Shared(lease, shared) => {
                if let Some(lease) = lease.take() {
                    let release = shared.clone();
                    shared.spawn_update(async move { release.release_slot(lease).await });
                }
            }
        }
    }
}

/// Every slot of the channel is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saturated;

impl ChannelSlots {
    pub fn new(shared: Option<Arc<SharedState>>) -> ChannelSlots {
        ChannelSlots {
            in_flight: Mutex::default(),
            shared,
        }
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// `acquire` across instances (only with Redis; without, `acquire` decides alone).
    pub async fn acquire_shared(
        &self,
        channel_id: i64,
        max: Option<u32>,
    ) -> Result<Result<Option<SlotPermit>, Saturated>, SharedError> {
        let (Some(shared), Some(max)) = (&self.shared, max) else {
            return Ok(self.acquire(channel_id, max));
        };
        Ok(match shared.acquire_slot(channel_id, max).await? {
            Some(lease) => Ok(Some(SlotPermit {
                place: Place::Shared(Some(lease), shared.clone()),
            })),
            None => Err(Saturated),
        })
    }

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
        Ok(Some(SlotPermit {
            place: Place::Local(count),
        }))
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
