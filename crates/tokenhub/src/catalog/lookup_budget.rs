//! How many database lookups uncached keys may cause: a token bucket per client address
//! and one for all addresses together. A flood of random keys then costs the database
//! at most the global rate, whatever its size, and one noisy address cannot spend the
//! whole global budget. Memory is fixed: addresses share a fixed table of buckets by
//! hash (two addresses that collide share one budget).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets for client addresses; a power of two.
const ADDRESS_BUCKETS: usize = 4096;
/// A bucket holds this many seconds of its rate, so short bursts (a client starting with
/// a few new keys at once) pass.
const BURST_SECONDS: f64 = 4.0;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, rate: f64, capacity: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.at = now;
    }

    /// Seconds until one token is there.
    fn wait(&self, rate: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / rate).max(0.0))
    }
}

pub struct LookupBudget {
    per_address_rate: f64,
    global_rate: f64,
    addresses: Box<[Mutex<Bucket>]>,
    global: Mutex<Bucket>,
    hasher: std::collections::hash_map::RandomState,
}

impl LookupBudget {
    pub fn new(per_address_per_s: u32, global_per_s: u32) -> LookupBudget {
        let now = Instant::now();
        let per_address_rate = f64::from(per_address_per_s.max(1));
        let global_rate = f64::from(global_per_s.max(1));
        LookupBudget {
            per_address_rate,
            global_rate,
            addresses: (0..ADDRESS_BUCKETS)
                .map(|_| Mutex::new(Bucket::full(per_address_rate * BURST_SECONDS, now)))
                .collect(),
            global: Mutex::new(Bucket::full(global_rate, now)),
            hasher: Default::default(),
        }
    }

    /// Takes one lookup for `client`, or says how long to wait. The address is charged
    /// first, so an address over its own budget does not use up the global one.
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let slot = self.hasher.hash_one(client) as usize & (ADDRESS_BUCKETS - 1);
        let mut address = lock(&self.addresses[slot]);
        let capacity = self.per_address_rate * BURST_SECONDS;
        address.refill(self.per_address_rate, capacity, now);
        if address.tokens < 1.0 {
            return Err(address.wait(self.per_address_rate));
        }
        let mut global = lock(&self.global);
        // One second's worth: the global rate is the bound the database is promised.
        global.refill(self.global_rate, self.global_rate, now);
        if global.tokens < 1.0 {
            return Err(global.wait(self.global_rate));
        }
        global.tokens -= 1.0;
        address.tokens -= 1.0;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_its_rate_and_all_share_the_global_rate() {
        let budget = LookupBudget::new(2, 10);
        let start = Instant::now();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let passed = (0..20)
            .filter(|_| budget.take(Some(one), start).is_ok())
            .count();
        assert_eq!(passed, 8, "burst = 4 s of 2/s");
        let wait = budget.take(Some(one), start).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(
            budget
                .take(Some(one), start + Duration::from_millis(500))
                .is_ok()
        );
        // Other addresses: only the 2 global lookups left in this second pass.
        let others = (2..100u8)
            .filter(|i| {
                let ip: IpAddr = format!("198.51.100.{i}").parse().unwrap();
                budget
                    .take(Some(ip), start + Duration::from_millis(500))
                    .is_ok()
            })
            .count();
        assert!(others <= 6, "{others}");
        assert!(
            budget
                .take(
                    Some("203.0.113.9".parse().unwrap()),
                    start + Duration::from_secs(2)
                )
                .is_ok()
        );
    }
}
