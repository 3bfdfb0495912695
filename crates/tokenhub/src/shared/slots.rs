//! `max_concurrency` slots as leases: a channel's sorted set holds one member per
//! request in flight, `<instance>|<n>`, scored with the time it must be gone by. A member
//! counts only while its instance's liveness key exists, so the slots of a killed
//! instance are free again within one lease, and only until its score, so a release
//! lost on the way (Redis briefly unreachable) cannot hold a slot forever.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{SharedError, SharedState};

/// The longest a request holds a slot: above the default total upstream timeout
/// (15 min), which ends every attempt and stream.
const SLOT_MAX_HOLD_MS: u64 = 16 * 60 * 1000;

/// KEYS: the channel's slot set. ARGV: max, member, instances prefix, max hold (ms).
/// Returns 1 and adds the member when a slot is free, else 0.
static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local instance = string.match(member, '^([^|]+)|')
  if instance and redis.call('EXISTS', ARGV[3] .. instance) == 1 then
    live = live + 1
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
if live >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
",
    )
});

static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);

/// A slot held in Redis; the caller frees it with `release_slot`.
#[derive(Debug)]
pub struct SlotLease {
    set: String,
    member: String,
}

impl SharedState {
    /// Takes one of the channel's `max` slots, or `None` when all are taken.
    pub async fn acquire_slot(
        &self,
        channel_id: i64,
        max: u32,
    ) -> Result<Option<SlotLease>, SharedError> {
        let lease = SlotLease {
            set: self.key(format_args!("slots:{channel_id}")),
            member: format!(
                "{}|{}",
                self.instance(),
                NEXT_SLOT.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let mut connection = self.connection();
        let taken: i64 = ACQUIRE
            .key(&lease.set)
            .arg(max)
            .arg(&lease.member)
            .arg(&self.names.instances)
            .arg(SLOT_MAX_HOLD_MS)
            .invoke_async(&mut connection)
            .await?;
        Ok((taken == 1).then_some(lease))
    }

    pub async fn release_slot(&self, lease: SlotLease) -> Result<(), SharedError> {
        let mut connection = self.connection();
        redis::cmd("ZREM")
            .arg(&lease.set)
            .arg(&lease.member)
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }
}
