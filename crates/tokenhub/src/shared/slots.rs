//! `max_concurrency` slots as leases: a channel's set holds one member per request in
//! flight, `<instance>|<n>`. A member counts only while its instance's liveness key
//! exists, so the slots of a killed instance are free again within one lease.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{SharedError, SharedState};

/// KEYS: the channel's slot set. ARGV: max, member, instances prefix.
/// Returns 1 and adds the member when a slot is free, else 0.
static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local live = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local instance = string.match(member, '^([^|]+)|')
  if instance and redis.call('EXISTS', ARGV[3] .. instance) == 1 then
    live = live + 1
  else
    redis.call('SREM', KEYS[1], member)
  end
end
if live >= tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
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
            .arg(self.instances_prefix())
            .invoke_async(&mut connection)
            .await?;
        Ok((taken == 1).then_some(lease))
    }

    pub async fn release_slot(&self, lease: SlotLease) -> Result<(), SharedError> {
        let mut connection = self.connection();
        redis::cmd("SREM")
            .arg(&lease.set)
            .arg(&lease.member)
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Live requests on a channel across instances (for operators and tests).
    pub async fn slots_in_flight(&self, channel_id: i64) -> Result<u64, SharedError> {
        let set = self.key(format_args!("slots:{channel_id}"));
        let mut connection = self.connection();
        let count: u64 = redis::cmd("SCARD")
            .arg(set)
            .query_async(&mut connection)
            .await?;
        Ok(count)
    }
}
