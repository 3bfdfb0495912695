//! The login throttle's counts in Redis (`accounts/login_limit.rs` decides what is
//! counted): one fixed window per count, `INCR` and an expiry set by the first failure,
//! so every instance counts the same attempts. Keys: `<prefix>login:<count>`.

use std::sync::LazyLock;
use std::time::Duration;

use super::{SharedError, SharedState};

/// KEYS: the counts. ARGV: their limits, in order. Returns the longest wait (ms) among
/// the counts at their limit, 0 when none is.
static CHECK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key))
  if n and n >= tonumber(ARGV[i]) then
    wait = math.max(wait, redis.call('PTTL', key))
  end
end
return wait
",
    )
});

/// KEYS: the counts. ARGV: the window (ms). A count's window starts at its first failure.
static FAILED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
",
    )
});

impl SharedState {
    fn login_key(&self, count: &str) -> String {
        self.key(format_args!("login:{count}"))
    }

    /// How long attempts are still refused, when one of `counts` (name, limit) is at its
    /// limit.
    pub async fn login_blocked(
        &self,
        counts: &[(String, u32)],
    ) -> Result<Option<Duration>, SharedError> {
        let mut invocation = CHECK.prepare_invoke();
        for (name, limit) in counts {
            invocation.key(self.login_key(name)).arg(*limit);
        }
        let mut connection = self.connection();
        let wait: i64 = invocation.invoke_async(&mut connection).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait as u64)))
    }

    pub async fn login_failed(
        &self,
        counts: &[String],
        window: Duration,
    ) -> Result<(), SharedError> {
        let mut invocation = FAILED.prepare_invoke();
        for name in counts {
            invocation.key(self.login_key(name));
        }
        invocation.arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let mut connection = self.connection();
        let _: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(())
    }

    pub async fn login_forget(&self, count: &str) -> Result<(), SharedError> {
        let mut connection = self.connection();
        redis::cmd("DEL")
            .arg(self.login_key(count))
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }
}
