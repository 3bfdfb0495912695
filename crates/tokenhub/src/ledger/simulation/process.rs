//! One simulated gateway process: the real money parts a serving gateway wires together
//! (`server.rs`), on a runtime of its own so that a crash is dropping it. Alone, the
//! runtime is single-threaded: the writer and the reloader run only while the driver
//! awaits, which keeps the schedule the seed's. Several processes on one database each
//! get a worker thread: a writer left in the middle of a transaction when the driver
//! turns to another process must still finish it, or that process would wait on its
//! locks (SQLite's busy timeout, PostgreSQL's row locks) for a runtime nobody drives.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::backend::SharedState;
use super::faults::FaultPlan;
use crate::catalog::Catalog;
use crate::catalog::accounts::{AccountCache, CachePolicy};
use crate::catalog::reload::Reloader;
use crate::ledger::books::Books;
use crate::ledger::writer::{LedgerWriter, WriteFaults};
use crate::store::{SecretKey, Store};

pub struct Process {
    pub store: Store,
    pub books: Arc<Books>,
    pub accounts: Arc<AccountCache>,
    pub reloader: Reloader,
    pub writer: LedgerWriter,
    /// Bumped by each writer restart: in-flight requests remember the writer they hold.
    pub writer_generation: u64,
    /// Writers replaced by a restart, still draining records of requests that began
    /// before it (a `Settlement` holds its writer).
    pub old_writers: Vec<(u64, LedgerWriter)>,
    flush_lock: Arc<tokio::sync::Mutex<()>>,
    faults: Arc<FaultPlan>,
    /// Declared last: dropped after everything that may hold its tasks.
    runtime: tokio::runtime::Runtime,
}

fn runtime(concurrent: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if concurrent {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build()
}

impl Process {
    pub fn start(
        url: &str,
        key: &SecretKey,
        faults: Arc<FaultPlan>,
        shared: &dyn SharedState,
    ) -> Result<Process, String> {
        let runtime = runtime(shared.instances() > 1).map_err(|e| format!("runtime: {e}"))?;
        let books = shared.books(&runtime)?;
        let flush_lock = Arc::new(tokio::sync::Mutex::new(()));
        let (store, accounts, reloader, writer) = runtime.block_on(async {
            let store = Store::connect(url, Some(key))
                .await
                .map_err(|e| format!("connect {url}: {e}"))?;
            let policy = CachePolicy {
                capacity: 10_000,
                negative_ttl: Duration::from_secs(1),
                lookups_per_address_per_s: 1_000_000,
                lookups_per_s: 1_000_000,
            };
            let accounts = Arc::new(AccountCache::new(
                store.clone(),
                books.clone(),
                flush_lock.clone(),
                policy,
            ));
            let catalog = Arc::new(ArcSwap::from_pointee(Catalog::default()));
            let shared = books.shared().cloned();
            let reloader = Reloader::start(store.clone(), catalog, accounts.clone(), shared)
                .await
                .map_err(|e| format!("reloader: {e}"))?;
            let (refresh, lost) = (accounts.clone(), faults.clone());
            tokio::spawn(async move {
                loop {
                    lost.reply_lost.notified().await;
                    // An error leaves the books as they were; the audit reports the store.
                    let _ = refresh.refresh_money().await;
                }
            });
            let seam: Arc<dyn WriteFaults> = faults.clone();
            let writer = LedgerWriter::spawn_with_faults(
                store.clone(),
                books.clone(),
                flush_lock.clone(),
                Some(seam),
            );
            Ok::<_, String>((store, accounts, reloader, writer))
        })?;
        Ok(Process {
            store,
            books,
            accounts,
            reloader,
            writer,
            writer_generation: 0,
            old_writers: Vec::new(),
            flush_lock,
            faults,
            runtime,
        })
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Makes this process's runtime the current one (until the guard drops): code that
    /// spawns, such as a settlement's Redis update, runs here as in the gateway.
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.runtime.enter()
    }

    /// Lets the background tasks (writer, its retries) run for about `for_time`.
    pub fn pass_time(&self, for_time: Duration) {
        self.block_on(async move { tokio::time::sleep(for_time).await });
    }

    /// A new writer task over the same books; the old one drains what it was sent.
    pub fn restart_writer(&mut self) {
        let seam: Arc<dyn WriteFaults> = self.faults.clone();
        let fresh = {
            let _entered = self.runtime.enter();
            LedgerWriter::spawn_with_faults(
                self.store.clone(),
                self.books.clone(),
                self.flush_lock.clone(),
                Some(seam),
            )
        };
        let old = std::mem::replace(&mut self.writer, fresh);
        self.old_writers.push((self.writer_generation, old));
        self.writer_generation += 1;
    }

    /// Waits until every record sent to any writer so far is committed (or parked).
    pub fn flush(&mut self, generations_in_use: impl Fn(u64) -> bool) {
        let writers: Vec<LedgerWriter> = self
            .old_writers
            .iter()
            .map(|(_, w)| w.clone())
            .chain([self.writer.clone()])
            .collect();
        self.block_on(async {
            for writer in &writers {
                writer.flush().await;
            }
        });
        // An old writer no request holds any more has nothing left to write.
        self.old_writers
            .retain(|(generation, _)| generations_in_use(*generation));
    }

    /// This process's instance id in the shared state (with Redis).
    pub fn instance(&self) -> Option<String> {
        self.books
            .shared()
            .map(|shared| shared.instance().to_string())
    }

    /// One heartbeat of the shared state, as the gateway's runs every third of a lease:
    /// renews the lease and, when Redis lost this instance's holds, writes them back.
    /// Returns whether it rebuilt.
    pub fn heartbeat(&self) -> Result<bool, String> {
        let Some(shared) = self.books.shared() else {
            return Ok(false);
        };
        self.block_on(async {
            let rebuild = shared.heartbeat().await.map_err(|e| e.to_string())?;
            if rebuild {
                self.accounts.restore_shared_holds().await;
            }
            Ok(rebuild)
        })
    }

    /// Applies the change feed and re-reads the balances held, as the reloader's poll does.
    pub fn reload(&self, refresh_money: bool) -> Result<(), String> {
        self.block_on(async {
            self.reloader.reload().await.map_err(|e| e.to_string())?;
            if refresh_money {
                self.accounts
                    .refresh_money()
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}
