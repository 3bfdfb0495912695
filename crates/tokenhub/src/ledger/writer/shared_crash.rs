//! Issue #20 (ledger simulation, seed 1791743566259732719, step 265,395): an instance that
//! dies after its writer committed a batch and before it shared the batch with Redis
//! (`Committer::share`) leaves Redis's amounts short of that batch's cost. These tests
//! reproduce that crash with the shared state's fault seam (the share's scripts lost
//! before Redis runs them, as a dead process never sends them) on a Redis of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::catalog::accounts::{AccountCache, CachePolicy};
use crate::ledger::books::{Books, Refusal};
use crate::ledger::money::Nanos;
use crate::ledger::simulation::ScratchRedis;
use crate::ledger::writer::LedgerWriter;
use crate::relay::RelayError;
use crate::relay::reserve::admit_across;
use crate::shared::money::{Account, Admission, Request};
use crate::shared::{Loss, MoneyFaults, SharedState, Tuning};
use crate::store::test_support::{temp_store, user_with_key};
use crate::store::{Store, UsageRecord};

/// Loses the next `n` money scripts before Redis runs them, once armed.
#[derive(Default)]
struct LoseScripts(AtomicU32);

impl MoneyFaults for LoseScripts {
    fn lose(&self, at: Loss) -> bool {
        at == Loss::Request
            && self
                .0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }
}

const QUOTA: Nanos = Nanos(10_000);
const PREFIX: &str = "th-crash:";

struct Deployment {
    _redis: ScratchRedis,
    store: Store,
    _dir: tempfile::TempDir,
    user_id: i64,
    key_id: i64,
    /// The instance that commits and dies before sharing, and its seam.
    dying: Arc<SharedState>,
    lost: Arc<LoseScripts>,
    /// An instance that lives on, admitting through the relay's path.
    live_books: Arc<Books>,
    live_accounts: AccountCache,
}

/// A user with 1,000 nano-USD and a key with a quota of 10,000, and two instances over
/// one Redis (leases the test ends itself); None without a `redis-server` binary.
async fn deployment() -> Option<Deployment> {
    let redis = match ScratchRedis::start() {
        Ok(redis) => redis,
        Err(reason) => {
            eprintln!("skipping the crash-before-share test: {reason}");
            return None;
        }
    };
    let (store, dir) = temp_store().await;
    let (user_id, key_id) = user_with_key(&store, Nanos(1_000), QUOTA).await;
    let lost = Arc::new(LoseScripts::default());
    let tuned = |faults: Option<Arc<dyn MoneyFaults>>| Tuning {
        lease: Duration::from_secs(3600),
        faults,
    };
    let dying = SharedState::connect_tuned(&redis.url, PREFIX, tuned(Some(lost.clone())))
        .await
        .unwrap();
    let live = SharedState::connect_tuned(&redis.url, PREFIX, tuned(None))
        .await
        .unwrap();
    let live_books = Arc::new(Books::new(Some(live)));
    let policy = CachePolicy::for_tests();
    let live_accounts = AccountCache::new(
        store.clone(),
        live_books.clone(),
        Default::default(),
        policy,
    );
    Some(Deployment {
        _redis: redis,
        store,
        _dir: dir,
        user_id,
        key_id,
        dying,
        lost,
        live_books,
        live_accounts,
    })
}

impl Deployment {
    fn request(&self, amount: i64) -> Request {
        Request {
            user_id: self.user_id,
            key_id: self.key_id,
            key_quota: Some(QUOTA),
            rpm: None,
            tpm: None,
            tokens: 0,
            amount: Nanos(amount),
        }
    }

    /// The live instance admits `amount` as a request does (reading what Redis lacks).
    async fn admit(&self, amount: i64) -> Result<(), RelayError> {
        self.admit_request(self.request(amount)).await
    }

    /// Admits and gives the hold back in Redis at once (nothing is served).
    async fn admit_request(&self, request: Request) -> Result<(), RelayError> {
        let _ = admit_across(&self.live_books, &self.live_accounts, request).await?;
        let shared = self.live_books.shared().unwrap();
        let amount = request.amount.0;
        for account in [Account::User(self.user_id), Account::Key(self.key_id)] {
            let reading = crate::shared::money::Reading::None;
            shared
                .update_money(account, reading, Nanos(-amount))
                .await
                .unwrap();
        }
        Ok(())
    }

    /// (amount, what the dying instance holds) in Redis for `account`.
    async fn redis_money(&self, account: Account) -> (Option<i64>, Option<i64>) {
        let key = match account {
            Account::User(id) => format!("{PREFIX}m:u:{id}"),
            Account::Key(id) => format!("{PREFIX}m:k:{id}"),
        };
        let mut connection = self.dying.connection();
        redis::cmd("HMGET")
            .arg(key)
            .arg("amount")
            .arg(format!("h:{}", self.dying.instance()))
            .query_async(&mut connection)
            .await
            .unwrap()
    }

    async fn database_money(&self) -> (i64, i64) {
        let balance = self.store.balance_version(self.user_id).await.unwrap();
        let spent = self.store.spent_version(self.key_id).await.unwrap();
        (balance.unwrap().amount.0, spent.unwrap().amount.0)
    }

    /// The dying instance serves one request (600 reserved, 500 billed), its writer
    /// commits the record, and the process dies before the share reaches Redis.
    async fn commit_and_die_before_sharing(&self) {
        let books = Arc::new(Books::new(Some(self.dying.clone())));
        let admitted = self.dying.admit_request(self.request(600)).await.unwrap();
        assert!(matches!(admitted, Admission::Admitted), "{admitted:?}");
        let reservation = books.reserved_elsewhere(self.user_id, self.key_id, Nanos(600));
        books.settle(reservation, Nanos(500));
        let user = Account::User(self.user_id);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.redis_money(user).await.1 != Some(500) {
            assert!(
                Instant::now() < deadline,
                "the settlement never reached Redis"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The share's two scripts (the user's, then the key's) never leave the process.
        self.lost.0.store(2, Ordering::SeqCst);
        let writer = LedgerWriter::spawn(self.store.clone(), books, Default::default());
        writer.submit(UsageRecord {
            request_id: "r1".into(),
            user_id: self.user_id,
            key_id: self.key_id,
            model: "m".into(),
            cost: Nanos(500),
            status: 200,
            ..Default::default()
        });
        writer.flush().await;
        assert_eq!(self.lost.0.load(Ordering::SeqCst), 0, "the share was sent");
    }

    /// The dying instance's lease ends (its liveness key expires).
    async fn end_lease(&self) {
        let mut connection = self.dying.connection();
        let _: () = redis::cmd("DEL")
            .arg(format!("{PREFIX}inst:{}", self.dying.instance()))
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}

fn refused_balance(available: i64) -> impl Fn(&Result<(), RelayError>) -> bool {
    move |result| matches!(result, Err(RelayError::Insufficient(Refusal::Balance { available: a, .. })) if *a == Nanos(available))
}

/// While the dead instance's lease lasts its hold makes up for the unshared cost; once
/// it ends, the first admission reads the amounts again: at no point can more than the
/// database's 500 nano-USD be reserved.
#[tokio::test]
async fn a_crash_between_commit_and_share_lets_no_instance_overspend() {
    let Some(deployment) = deployment().await else {
        return;
    };
    let (user, key) = (
        Account::User(deployment.user_id),
        Account::Key(deployment.key_id),
    );
    deployment.admit(1).await.unwrap(); // loads both amounts into Redis
    deployment.commit_and_die_before_sharing().await;
    assert_eq!(deployment.database_money().await, (500, 500));
    // Redis lags by the batch (1,000 and 0), which the dead instance's hold covers.
    assert_eq!(deployment.redis_money(user).await, (Some(1_000), Some(500)));
    assert_eq!(deployment.redis_money(key).await, (Some(0), Some(500)));

    let within_lease = deployment.admit(501).await;
    assert!(refused_balance(500)(&within_lease), "{within_lease:?}");

    deployment.end_lease().await;
    let after_lease = deployment.admit(501).await;
    assert!(refused_balance(500)(&after_lease), "{after_lease:?}");
    assert_eq!(deployment.redis_money(user).await, (Some(500), None));
    // The key's spend is read again too, as soon as an admission reaches the quota.
    deployment.admit(500).await.unwrap();
    assert_eq!(deployment.redis_money(key).await, (Some(500), None));
    let over_quota = deployment
        .admit_request(Request {
            key_quota: Some(Nanos(900)),
            ..deployment.request(401)
        })
        .await;
    assert!(
        matches!(
            over_quota,
            Err(RelayError::Insufficient(Refusal::KeyQuota {
                remaining: Nanos(400),
                ..
            }))
        ),
        "{over_quota:?}"
    );
}
