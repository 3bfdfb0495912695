//! Login throttling: failed password attempts are counted in fixed windows per (account,
//! client network) pair and, more loosely, per client network. Once either count reaches
//! its limit, further attempts from that network are refused until the window ends.
//!
//! There is no count per account alone: anyone could then lock the owner out with a few
//! wrong passwords from anywhere. The pair bound stops guessing one account from one
//! network; the network bound stops spraying many accounts from it.
//!
//! Memory is bounded whatever the input: a key is fixed-size (the client's network: an
//! IPv4 address or an IPv6 /64, one subscriber's allocation; and a digest of the account
//! name's first `ACCOUNT_PREFIX_CHARS` characters, never the name itself), and the table
//! holds at most `capacity` entries: expired ones are swept when it is full, then the
//! oldest quarter is evicted.
//!
//! With Redis (`redis_url`) the counts are kept there (`shared/logins.rs`), so the
//! limits hold for the deployment, not per instance. The in-memory table still counts
//! this instance's attempts and decides alone while Redis is unreachable: logins keep
//! working, throttled per instance as without Redis.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::shared::SharedState;

/// The throttle the management API uses: in memory, or in Redis when configured.
pub struct LoginLimiter {
    memory: MemoryLoginLimiter,
    shared: Option<Arc<SharedState>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits, shared: Option<Arc<SharedState>>) -> LoginLimiter {
        LoginLimiter {
            memory: MemoryLoginLimiter::new(limits),
            shared,
        }
    }

    /// `Err(retry_after)` while attempts from `ip` for `account` (or from `ip` at all)
    /// are blocked.
    pub async fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        let Some(shared) = &self.shared else {
            return self.memory.check(ip, account);
        };
        let counts = self
            .memory
            .counts(ip, account)
            .map(|(key, max)| (key.name(), max));
        match shared.login_blocked(&counts).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(wait),
            Err(error) => {
                tracing::warn!(%error, "login throttle in Redis unavailable; counting per instance");
                self.memory.check(ip, account)
            }
        }
    }

    pub async fn failed(&self, ip: IpAddr, account: &str) {
        self.memory.failed(ip, account);
        if let Some(shared) = &self.shared {
            let names = self.memory.counts(ip, account).map(|(key, _)| key.name());
            if let Err(error) = shared.login_failed(&names, self.memory.limits.window).await {
                tracing::warn!(%error, "login failure not counted in Redis");
            }
        }
    }

    /// A correct password clears the pair's count (not the network's: one attacker with
    /// one valid account must not reset the counter for the names it is guessing).
    pub async fn succeeded(&self, ip: IpAddr, account: &str) {
        self.memory.succeeded(ip, account);
        if let Some(shared) = &self.shared
            && let Err(error) = shared.login_forget(&Key::pair(ip, account).name()).await
        {
            tracing::warn!(%error, "login success not recorded in Redis");
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures from one client network, whatever the accounts.
    pub per_address: u32,
    /// Failures for one account from one client network.
    pub per_account_and_address: u32,
    pub window: Duration,
    /// Entries kept at most (each about 100 bytes with the table's overhead).
    pub capacity: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_address: 20,
            per_account_and_address: 5,
            window: Duration::from_secs(15 * 60),
            capacity: 100_000,
        }
    }
}

/// Account names are compared on this many characters at most: longer names cannot
/// exist (sign-up refuses them), so they need not be told apart.
const ACCOUNT_PREFIX_CHARS: usize = 256;

/// An IPv4 address or an IPv6 /64, as one number (IPv4-mapped IPv6 counts as IPv4).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Network(u128);

impl Network {
    fn of(ip: IpAddr) -> Network {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Network(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => Network(u128::from(v6) & !u128::from(u64::MAX)),
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Key {
    Network(Network),
    Pair(Network, [u8; 16]),
}

impl Key {
    fn pair(ip: IpAddr, account: &str) -> Key {
        let mut digest = Sha256::new();
        let mut buffer = [0; 4];
        for c in account
            .chars()
            .take(ACCOUNT_PREFIX_CHARS)
            .flat_map(char::to_lowercase)
        {
            digest.update(c.encode_utf8(&mut buffer).as_bytes());
        }
        let mut id = [0; 16];
        id.copy_from_slice(&digest.finalize()[..16]);
        Key::Pair(Network::of(ip), id)
    }

    /// The count's name in Redis: fixed-size, like the key.
    fn name(&self) -> String {
        match self {
            Key::Network(network) => format!("n:{:032x}", network.0),
            Key::Pair(network, account) => {
                let account: String = account.iter().map(|b| format!("{b:02x}")).collect();
                format!("p:{:032x}:{account}", network.0)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

pub struct MemoryLoginLimiter {
    limits: LoginLimits,
    windows: Mutex<HashMap<Key, Window>>,
}

impl MemoryLoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        MemoryLoginLimiter {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The two counts an attempt touches, each with its limit.
    fn counts(&self, ip: IpAddr, account: &str) -> [(Key, u32); 2] {
        [
            (Key::Network(Network::of(ip)), self.limits.per_address),
            (Key::pair(ip, account), self.limits.per_account_and_address),
        ]
    }

    fn blocked_for(&self, window: &Window, max: u32, now: Instant) -> Option<Duration> {
        let ends = window.started + self.limits.window;
        (window.failures >= max && ends > now).then(|| ends - now)
    }

    /// Makes room for one more entry: expired windows first, then the oldest quarter.
    fn make_room(&self, windows: &mut HashMap<Key, Window>, now: Instant) {
        let capacity = self.limits.capacity.max(4);
        if windows.len() < capacity {
            return;
        }
        let window = self.limits.window;
        windows.retain(|_, w| w.started + window > now);
        if windows.len() < capacity {
            return;
        }
        let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
        let quarter = starts.len() / 4;
        let (_, cutoff, _) = starts.select_nth_unstable(quarter);
        let cutoff = *cutoff;
        windows.retain(|_, w| w.started > cutoff);
        metrics::counter!("tokenhub_login_throttle_evictions_total").increment(1);
        tracing::warn!(
            capacity,
            "login throttle table full: the oldest windows were forgotten"
        );
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.windows().len()
    }

    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let counts = self.counts(ip, account);
        let windows = self.windows();
        let longest = counts
            .iter()
            .filter_map(|(key, max)| {
                windows
                    .get(key)
                    .and_then(|w| self.blocked_for(w, *max, now))
            })
            .max();
        longest.map_or(Ok(()), Err)
    }

    pub fn failed(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let counts = self.counts(ip, account);
        let mut windows = self.windows();
        for (key, _) in counts {
            if !windows.contains_key(&key) {
                self.make_room(&mut windows, now);
            }
            let entry = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if entry.started + self.limits.window <= now {
                *entry = Window {
                    started: now,
                    failures: 0,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        let pair = Key::pair(ip, account);
        self.windows().remove(&pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_address: u32, per_pair: u32, window: Duration) -> MemoryLoginLimiter {
        MemoryLoginLimiter::new(LoginLimits {
            per_address,
            per_account_and_address: per_pair,
            window,
            capacity: 1000,
        })
    }

    #[test]
    fn blocks_a_pair_and_a_network_but_never_the_account_from_elsewhere() {
        let limiter = limiter(4, 2, Duration::from_secs(60));
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let owner: IpAddr = "198.51.100.7".parse().unwrap();
        limiter.failed(attacker, "Alice");
        assert!(limiter.check(attacker, "alice").is_ok());
        limiter.failed(attacker, "alice");
        assert!(
            limiter.check(attacker, "ALICE").is_err(),
            "names ignore case"
        );
        assert!(
            limiter.check(owner, "alice").is_ok(),
            "the owner elsewhere is not locked out"
        );
        assert!(limiter.check(attacker, "bob").is_ok());
        limiter.failed(attacker, "bob");
        limiter.failed(attacker, "carol");
        assert!(
            limiter.check(attacker, "dave").is_err(),
            "the network's bound"
        );
        assert!(limiter.check(owner, "dave").is_ok());
        limiter.failed(owner, "alice");
        limiter.succeeded(owner, "alice");
        assert!(limiter.check(owner, "alice").is_ok());
    }

    #[test]
    fn an_ipv6_network_is_one_client() {
        let limiter = limiter(2, 100, Duration::from_secs(60));
        limiter.failed("2001:db8:1:2::1".parse().unwrap(), "a");
        limiter.failed("2001:db8:1:2:ffff::9".parse().unwrap(), "b");
        assert!(
            limiter
                .check("2001:db8:1:2::77".parse().unwrap(), "c")
                .is_err()
        );
        assert!(
            limiter
                .check("2001:db8:1:3::1".parse().unwrap(), "c")
                .is_ok()
        );
        // IPv4-mapped IPv6 is the IPv4 client.
        limiter.failed("203.0.113.5".parse().unwrap(), "a");
        limiter.failed("::ffff:203.0.113.5".parse().unwrap(), "b");
        assert!(limiter.check("203.0.113.5".parse().unwrap(), "c").is_err());
    }

    #[test]
    fn windows_expire() {
        let limiter = limiter(1, 1, Duration::from_millis(1));
        let ip: IpAddr = "::1".parse().unwrap();
        limiter.failed(ip, "a");
        std::thread::sleep(Duration::from_millis(5));
        assert!(limiter.check(ip, "a").is_ok());
    }

    /// The attack: many failures with huge names from many addresses. Keys hold a digest,
    /// never the name, and the table stays within its capacity.
    #[test]
    fn huge_names_from_many_addresses_keep_the_table_within_its_capacity() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            capacity: 500,
            ..LoginLimits::default()
        });
        let huge = "n".repeat(4 * 1024 * 1024);
        for address in 0..2_000u32 {
            let ip = IpAddr::V4((0x0A00_0000 + address).into());
            limiter.failed(ip, &huge);
            assert!(limiter.entries() <= 500);
        }
        // Fixed-size entries, nothing on the heap per name.
        assert!(std::mem::size_of::<(Key, Window)>() <= 96);
        // The most recent failures are still counted after evictions.
        let recent = IpAddr::V4((0x0A00_0000 + 1_999u32).into());
        for _ in 0..5 {
            limiter.failed(recent, "x");
        }
        assert!(limiter.check(recent, "x").is_err());
    }
}
