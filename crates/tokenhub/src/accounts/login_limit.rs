//! Login throttling: failed password attempts are counted per client IP and per account
//! in fixed windows; once either count reaches its limit, further attempts are refused
//! until the window ends. Behind a trait so a shared (Redis) version can replace the
//! in-memory one for several nodes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub trait LoginLimiter: Send + Sync {
    /// `Err(retry_after)` while attempts from `ip` or for `account` are blocked.
    fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration>;
    fn failed(&self, ip: IpAddr, account: &str);
    /// A correct password clears the account's count (not the IP's: one attacker with
    /// one valid account must not reset the counter for the names it is guessing).
    fn succeeded(&self, ip: IpAddr, account: &str);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_ip: u32,
    pub per_account: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_ip: 20,
            per_account: 5,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Most entries kept before expired ones are swept (bounds memory under a spray attack).
const SWEEP_AT: usize = 100_000;

pub struct MemoryLoginLimiter {
    limits: LoginLimits,
    windows: Mutex<HashMap<String, Window>>,
}

impl MemoryLoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        MemoryLoginLimiter {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keys(ip: IpAddr, account: &str) -> [(String, bool); 2] {
        [
            (format!("ip:{ip}"), true),
            (format!("account:{}", account.to_lowercase()), false),
        ]
    }

    fn blocked_for(&self, window: &Window, max: u32, now: Instant) -> Option<Duration> {
        let ends = window.started + self.limits.window;
        (window.failures >= max && ends > now).then(|| ends - now)
    }
}

impl LoginLimiter for MemoryLoginLimiter {
    fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let windows = self.windows();
        let longest = Self::keys(ip, account)
            .iter()
            .filter_map(|(key, is_ip)| {
                let max = if *is_ip {
                    self.limits.per_ip
                } else {
                    self.limits.per_account
                };
                windows.get(key).and_then(|w| self.blocked_for(w, max, now))
            })
            .max();
        longest.map_or(Ok(()), Err)
    }

    fn failed(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let mut windows = self.windows();
        if windows.len() >= SWEEP_AT {
            let window = self.limits.window;
            windows.retain(|_, w| w.started + window > now);
        }
        for (key, _) in Self::keys(ip, account) {
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
            entry.failures += 1;
        }
    }

    fn succeeded(&self, ip: IpAddr, account: &str) {
        let [_, (account_key, _)] = Self::keys(ip, account);
        self.windows().remove(&account_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_at_the_limit_per_account_and_per_ip() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip: 4,
            per_account: 2,
            window: Duration::from_secs(60),
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        limiter.failed(ip, "Alice");
        assert!(limiter.check(ip, "alice").is_ok());
        limiter.failed(ip, "alice");
        // The account is blocked from any address; the IP still may try other names.
        assert!(limiter.check(other, "alice").is_err());
        assert!(limiter.check(ip, "bob").is_ok());
        limiter.failed(ip, "bob");
        limiter.failed(ip, "carol");
        assert!(limiter.check(ip, "dave").is_err());
        assert!(limiter.check(other, "dave").is_ok());
        limiter.succeeded(other, "alice");
        assert!(limiter.check(other, "alice").is_ok());
    }

    #[test]
    fn windows_expire() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip: 1,
            per_account: 1,
            window: Duration::from_millis(1),
        });
        let ip: IpAddr = "::1".parse().unwrap();
        limiter.failed(ip, "a");
        std::thread::sleep(Duration::from_millis(5));
        assert!(limiter.check(ip, "a").is_ok());
    }
}
