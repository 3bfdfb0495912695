//! Start-up and shutdown: open the store, seed the catalogue and apply the config file
//! (when they changed), load the catalogue, start the background tasks, serve; on a
//! shutdown signal stop accepting, let in-flight requests (streams included) finish, then
//! flush every usage record.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::{Mutex, oneshot};
use tokio_util::sync::CancellationToken;

mod seed;
mod serve;

use crate::accounts;
use crate::api::{self, AppState};
use crate::catalog::Catalog;
use crate::catalog::accounts::{AccountCache, CachePolicy};
use crate::catalog::reload::Reloader;
use crate::cluster::{Instances, Readiness};
use crate::config::{Secret, Settings};
use crate::ledger::books::Books;
use crate::ledger::spill::Spill;
use crate::ledger::writer::{LedgerWriter, SpillOptions};
use crate::providers::Deadlines;
use crate::relay::health::{BreakerPolicy, Health};
use crate::relay::{Relay, RelayPolicy};
use crate::store::{SecretKey, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Accounts(#[from] accounts::AccountError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Spill(#[from] crate::ledger::spill::SpillError),
}

/// A gateway that is listening. Dropping it does not stop it; call `shutdown`.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub store: Store,
    pub reloader: Reloader,
    /// Keys and users in use (looked up on a miss).
    pub accounts: Arc<AccountCache>,
    pub books: Arc<Books>,
    pub writer: LedgerWriter,
    pub health: Arc<Health>,
    /// The live snapshot, e.g. for a channel's keys when reading its health.
    pub catalog: Arc<ArcSwap<Catalog>>,
    /// In-flight requests of channels with `max_concurrency`.
    pub slots: Arc<crate::relay::concurrency::ChannelSlots>,
    /// This instance's heartbeat and the peers it sees.
    pub instances: Arc<Instances>,
    /// Stops the background tasks tied to serving (the heartbeat).
    background: CancellationToken,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    /// Graceful stop: no new connections, in-flight requests finish, usage is flushed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = (&mut self.served)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.finish().await;
        served
    }

    /// After serving stopped: usage flushed, the heartbeat row removed, the pool closed.
    async fn finish(&self) {
        flush_before_exit(&self.writer).await;
        self.background.cancel();
        let gone = self.store.instance_gone(self.instances.id());
        let _ = tokio::time::timeout(Duration::from_secs(2), gone).await;
        self.store.close().await;
    }

    /// Waits until the server stops by itself (a signal), then flushes.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let served = (&mut self.served)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.finish().await;
        served
    }
}

/// How long an exiting gateway waits for the database to take its last usage records.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(30);

/// Flushes the ledger, but not forever: with the database gone, a stop request must still
/// stop the process (an orchestrator would `kill -9` it anyway, losing the same records).
async fn flush_before_exit(writer: &LedgerWriter) {
    if tokio::time::timeout(FLUSH_AT_EXIT, writer.flush())
        .await
        .is_err()
    {
        tracing::error!(
            waited_s = FLUSH_AT_EXIT.as_secs(),
            "the database did not take the last usage records; exiting without them"
        );
    }
}

/// Opens the store (running migrations) and creates the root account on first use. Shared
/// by `serve` and the CLI; it writes nothing else, so a read-only command changes nothing.
pub async fn open_store(settings: &Settings) -> Result<Store, StartError> {
    let secret_key = settings
        .secret_key
        .as_ref()
        .map(|key| SecretKey::parse(key.expose()))
        .transpose()
        .map_err(|why| StartError::Config(format!("TOKENHUB_SECRET_KEY {why}")))?;
    let store = Store::connect_with(
        settings.database_url.expose(),
        secret_key.as_ref(),
        settings.database.pool(),
    )
    .await?;
    let lock = store.startup_lock().await?;
    let created =
        accounts::ensure_root(&store, settings.root_password.as_ref().map(Secret::expose)).await?;
    drop(lock);
    if let Some(password) = created {
        // Shown once, to whoever ran the first command. On stderr: stdout of CLI commands
        // is for their result (e.g. a key captured by a script).
        eprintln!("Created the root account. User: root  Password: {password}  (shown only once)");
    }
    Ok(store)
}

/// Bounds of the start-up model check: per ping, and for the whole check.
const STARTUP_CHECK_FIRST_BYTE: Duration = Duration::from_secs(20);
const STARTUP_CHECK_LIMIT: Duration = Duration::from_secs(300);

/// `tokenhub channels check`: pings every mapping of every channel with a key, as
/// `serve` would route them: the configuration file is applied first (only if it changed
/// since last applied, like `serve` does), then the catalogue is read from the database.
pub async fn check_channels(
    settings: &Settings,
) -> Result<Vec<crate::relay::mapping_check::MappingCheck>, StartError> {
    let store = open_store(settings).await?;
    seed::apply_seeds(&store, settings).await?;
    let models = store.all_models().await?;
    let channels = store.all_channels().await?;
    let unpriced = store.unpriced_model_ids().await?;
    let catalog = Catalog::build_with(&models, &channels, &unpriced, |name| {
        std::env::var(name).ok()
    });
    let clients = crate::relay::clients::UpstreamClients::new(Duration::from_millis(
        settings.upstream_connect_timeout_ms,
    ));
    let first_byte = Duration::from_millis(settings.upstream_first_byte_timeout_ms);
    let results =
        crate::relay::mapping_check::check_all(&Arc::new(catalog), &clients, first_byte).await;
    store.close().await;
    Ok(results)
}

/// Connects to Redis when `redis_url` is set (docs/redis.md). A configured Redis that
/// cannot be reached stops start-up: running alone would break every shared limit.
async fn connect_shared(
    settings: &Settings,
) -> Result<Option<Arc<crate::shared::SharedState>>, StartError> {
    let Some(url) = &settings.redis_url else {
        return Ok(None);
    };
    let shared = crate::shared::SharedState::connect(url.expose(), &settings.redis_prefix)
        .await
        .map_err(|e| {
            StartError::Config(format!(
                "cannot use redis_url (TOKENHUB_REDIS_URL): {e}; a configured Redis must answer at start, since every shared limit and reservation depends on it"
            ))
        })?;
    tracing::info!(instance = shared.instance(), "shared state in Redis");
    Ok(Some(shared))
}

fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// Starts a gateway; it stops when `shutdown` resolves or `RunningGateway::shutdown` is called.
pub async fn start(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningGateway, StartError> {
    // Loaded in parallel with the store, before serving: no request pays for it.
    let tokenizer = tokio::task::spawn_blocking(crate::tokens::warm_up);
    // Everything that can refuse the start does so before the store is opened: opening it
    // creates the root account on first use, and its one-time password must not scroll
    // by above a refusal.
    // Bound before the start-up work: the port names this instance (its heartbeat, its
    // default spill file); connections wait in the backlog until serving starts.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.listen,
        source,
    })?;
    let shared = connect_shared(&settings).await?;
    let management = Arc::new(management(&settings, shared.clone())?);
    let trusted_proxies = Arc::new(
        crate::api::client_ip::parse_proxies(&settings.trusted_proxies)
            .map_err(StartError::Config)?,
    );
    let store = open_store(&settings).await?;
    let _ = tokenizer.await;
    // Instances starting together on one database take turns at writing the seeds and
    // the system users (`store/startup.rs`).
    let lock = store.startup_lock().await?;
    seed::apply_seeds(&store, &settings).await?;
    let anonymous_user =
        accounts::site_settings::system_user(&store, api::web::chat::ANONYMOUS_USER)
            .await
            .map_err(|e| {
                StartError::Config(format!("cannot create the anonymous chat user: {e}"))
            })?;
    drop(lock);
    let catalog = Arc::new(ArcSwap::from_pointee(Catalog::default()));
    let books = Arc::new(Books::new(shared.clone()));
    let flush_lock = Arc::new(Mutex::new(()));
    let breakers = BreakerPolicy {
        threshold: settings.breaker_threshold.max(1),
        window: Duration::from_millis(settings.breaker_window_ms),
        cooldown: Duration::from_millis(settings.breaker_cooldown_ms),
    };
    let health = match &shared {
        Some(shared) => Health::shared(breakers, shared.clone()),
        None => Arc::new(Health::new(breakers)),
    };
    let key_cache = &settings.key_cache;
    let accounts = Arc::new(AccountCache::new(
        store.clone(),
        books.clone(),
        flush_lock.clone(),
        CachePolicy {
            capacity: key_cache.capacity,
            negative_ttl: Duration::from_millis(key_cache.negative_ttl_ms),
            lookups_per_address_per_s: key_cache.lookups_per_address_per_s,
            lookups_per_s: key_cache.lookups_per_s,
        },
    ));
    let reloader = Reloader::start(
        store.clone(),
        catalog.clone(),
        accounts.clone(),
        shared.clone(),
    )
    .await?;
    let catalog_nudge = Arc::new(tokio::sync::Notify::new());
    if let Some(shared) = &shared {
        shared.spawn_change_listener(catalog_nudge.clone());
        let accounts = accounts.clone();
        shared.spawn_heartbeat(move || {
            let accounts = accounts.clone();
            async move { accounts.restore_shared_holds().await }
        });
    }
    reloader.clone().spawn_polling(
        Duration::from_millis(settings.reload_interval_ms.max(10)),
        Duration::from_millis(key_cache.balance_refresh_ms.max(1)),
        catalog_nudge.clone(),
    );
    let spill_path = settings
        .ledger
        .spill_file(settings.database_url.expose(), addr.port());
    let (spill, recovered) = Spill::recover(spill_path).map_err(StartError::Spill)?;
    let writer = LedgerWriter::spawn_with(
        store.clone(),
        books.clone(),
        flush_lock,
        None,
        Some(SpillOptions {
            spill,
            recovered,
            max_bytes: settings.ledger.spill_max_bytes,
        }),
    );
    if let Some(retention) = settings.usage.retention() {
        crate::ledger::retention::spawn_purge(store.clone(), retention);
    }
    // Without shared state every instance keeps its own limits, which the heartbeat
    // reports when it sees other instances on the same database.
    let instances = Instances::new(addr.to_string(), shared.is_some());
    instances.beat(&store).await;
    let background = CancellationToken::new();
    instances.clone().spawn(store.clone(), background.clone());
    let mut checks: Vec<Arc<dyn crate::cluster::ReadinessCheck>> = Vec::new();
    if let Some(shared) = &shared {
        checks.push(Arc::new(crate::cluster::SharedStateCheck(shared.clone())));
    }
    let readiness = Arc::new(Readiness {
        store: store.clone(),
        ledger: writer.status().clone(),
        instances: instances.clone(),
        checks,
    });
    spawn_response_purge(store.clone());

    let clients = crate::relay::clients::UpstreamClients::new(Duration::from_millis(
        settings.upstream_connect_timeout_ms,
    ));
    let policy = RelayPolicy {
        default_output_reserve_tokens: settings.default_output_reserve_tokens,
        deadlines: Deadlines {
            first_byte: Duration::from_millis(settings.upstream_first_byte_timeout_ms),
        },
        total_timeout: Duration::from_millis(settings.upstream_total_timeout_ms),
        idle_timeout: Duration::from_millis(settings.upstream_idle_timeout_ms),
        max_attempts: settings.max_attempts,
        max_response_bytes: 64 * 1024 * 1024,
    };
    let clients = Arc::new(clients);
    if settings.startup_model_check {
        crate::relay::mapping_check::spawn_startup_check(
            catalog.clone(),
            clients.clone(),
            policy.deadlines.first_byte.min(STARTUP_CHECK_FIRST_BYTE),
            STARTUP_CHECK_LIMIT,
        );
    }
    let streams_end = crate::relay::streams_end::StreamsEnd::default();
    let slots = Arc::new(crate::relay::concurrency::ChannelSlots::new(shared.clone()));
    let catalog_handle = catalog.clone();
    let relay = Relay {
        catalog,
        accounts: accounts.clone(),
        books: books.clone(),
        writer: writer.clone(),
        clients,
        policy: Arc::new(policy),
        health: health.clone(),
        slots: slots.clone(),
        limits: Arc::new(crate::relay::limits::RateLimits::new(shared.clone(), "key")),
        shutdown: streams_end.clone(),
    };
    let state = AppState::new(api::Shared {
        relay,
        store: store.clone(),
        metrics: prometheus(),
        metrics_token: settings
            .metrics_token
            .as_ref()
            .map(|token| api::metrics::MetricsToken::new(token.expose())),
        management,
        catalog_nudge,
        shared_state: shared.clone(),
        responses_retention: api::responses::Retention(responses_retention(&settings)),
        web: Arc::new(api::web::Web::new(
            settings.public_url.clone(),
            Some(anonymous_user),
            shared.clone(),
        )),
        trusted_proxies,
        readiness,
        cors: Arc::new(api::cors::CorsPolicy::new(&settings.cors_allowed_origins)),
    });
    let app = api::App::new(
        state,
        api::body_deadline::BodyPolicy {
            read_timeout: Duration::from_millis(settings.body_read_timeout_ms.max(1)),
            max_bytes: settings.max_body_bytes,
        },
    );
    let connections = serve::ConnectionPolicy {
        header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms.max(1)),
        first_bytes_timeout: Duration::from_millis(settings.first_bytes_timeout_ms.max(1)),
        max_connections: settings.max_connections.max(1),
    };

    let (stop, stopped) = oneshot::channel::<()>();
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    let signal = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stopped => {}
        }
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: finishing in-flight requests"
        );
        // Streams still open after the grace period end with an error event and settle.
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            streams_end.end();
        });
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let served = tokio::spawn(serve::serve_on_threads(
        listener,
        threads,
        app,
        connections,
        signal,
    ));
    tracing::info!(%addr, "TokenHub listening");
    Ok(RunningGateway {
        addr,
        store,
        reloader,
        accounts,
        books,
        writer,
        health,
        catalog: catalog_handle,
        slots,
        instances,
        background,
        stop: Some(stop),
        served,
    })
}

/// The management API's settings and its login throttle (in Redis when `shared`).
fn management(
    settings: &Settings,
    shared: Option<Arc<crate::shared::SharedState>>,
) -> Result<api::admin::Management, StartError> {
    let config = &settings.accounts;
    Ok(api::admin::Management {
        site: accounts::site_settings::SettingsCache::new(accounts::site_settings::SiteSettings {
            signup_open: config.signup_open(settings.listen),
            trial_credit: config
                .trial_credit()
                .map_err(|e| StartError::Config(e.to_string()))?,
            anonymous_chat: config.anonymous_chat,
            // Checked by `Settings::validate`.
            anonymous_chat_rpm: config.anonymous_chat_rpm,
            support_contact: config.support_contact.clone(),
            // Only an admin turns it on (it needs working mail).
            email_verification: false,
        }),
        session_ttl_ms: config.session_ttl_ms(),
        cookie_secure: config.cookie_secure,
        login_limiter: Arc::new(accounts::login_limit::LoginLimiter::new(
            Default::default(),
            shared,
        )),
        mail: accounts::mail_settings::MailCache::new(mailer(settings)?),
    })
}

/// The SMTP mailer of `accounts.smtp_url`, checked at start (a typo fails the start,
/// not the first reset); SMTP settings saved by an admin override it. Reset links need `public_url`: a link built from the request's
/// `Host` would let anyone have a victim's token mailed to a site of their choosing.
fn mailer(settings: &Settings) -> Result<Option<Arc<accounts::mail::Mailer>>, StartError> {
    let config = &settings.accounts;
    let Some(url) = &config.smtp_url else {
        return Ok(None);
    };
    let from = config.smtp_from.as_deref().ok_or_else(|| {
        StartError::Config("accounts.smtp_url needs accounts.smtp_from (TOKENHUB_SMTP_FROM)".into())
    })?;
    if settings.public_url.is_none() {
        return Err(StartError::Config(
            "accounts.smtp_url needs public_url (TOKENHUB_PUBLIC_URL): reset links start with it"
                .into(),
        ));
    }
    accounts::mail::Mailer::new(url.expose(), from)
        .map(|mailer| Some(Arc::new(mailer)))
        .map_err(|e| StartError::Config(e.to_string()))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// How long stored responses are kept.
fn responses_retention(settings: &Settings) -> Duration {
    Duration::from_secs(settings.responses_retention_days.saturating_mul(86_400))
}

/// How often responses past their retention are deleted (by every instance; the delete
/// is idempotent). Reads already ignore expired rows, so this only bounds the table.
const RESPONSE_PURGE_EVERY: Duration = Duration::from_secs(3600);

fn spawn_response_purge(store: Store) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RESPONSE_PURGE_EVERY);
        loop {
            every.tick().await;
            match store.purge_expired_responses().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired stored responses"),
                Err(error) => tracing::warn!(%error, "cannot purge expired stored responses"),
            }
        }
    });
}
