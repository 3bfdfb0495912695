//! The `tokenhub` binary: `serve` (default) and the operator CLI. The CLI writes through
//! the same store as the server; a running server picks changes up within its reload
//! interval, so nothing needs a restart.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tokenhub::accounts::{self, KeyOptions};
use tokenhub::config::{LogFormat, Settings};
use tokenhub::ledger::money::Nanos;
use tokenhub::server;

/// mimalloc instead of glibc's malloc: allocation was ~13% of the gateway's CPU under
/// load (per-request buffers freed on another worker thread), see bench/RESULTS.md.
#[global_allocator]
static ALLOCATOR: tokenhub::allocator::Allocator = tokenhub::allocator::Allocator;

/// mimalloc commits arena memory as it is used, not up front (see the function). It must
/// run before the first allocation, which the Rust runtime makes before `main`, hence a
/// constructor in `.init_array`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static LAZY_ARENA_COMMIT: extern "C" fn() = tokenhub::allocator::commit_arena_memory_lazily;

#[derive(Parser)]
#[command(
    name = "tokenhub",
    version,
    about = "A self-hosted, OpenAI-compatible LLM API gateway"
)]
struct Cli {
    /// TOML config file (default: ./tokenhub.toml if present).
    #[arg(long, env = "TOKENHUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect usage records.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// Management API access tokens (th-admin-…).
    #[command(subcommand)]
    AdminTokens(AdminTokensCommand),
    /// Redemption codes (prepaid credit).
    #[command(subcommand)]
    Codes(CodesCommand),
    /// Upstream channels.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// The model catalogue.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Add or update models from a price list: ours (catalog/models.json, the admin
    /// export), LiteLLM's model_prices_and_context_window.json or OpenRouter's
    /// /api/v1/models. Prints how many were added, updated, unchanged and skipped.
    Import {
        /// The JSON file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ChannelsCommand {
    /// Ping every model mapping of every channel with a key (one token each, nothing
    /// billed) and print one line per mapping; exits 1 if the upstream rejects any.
    Check,
}

#[derive(Subcommand)]
enum AdminTokensCommand {
    /// Create a token for an admin or root account; prints only the token on stdout.
    Create {
        #[arg(long, default_value = "root")]
        user: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (prefixes only).
    List,
    /// Revoke a token by id.
    Revoke { token_id: i64 },
}

#[derive(Subcommand)]
enum CodesCommand {
    /// Create COUNT codes worth USD each; prints one code per line (shown only once).
    Create {
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long)]
        usd: String,
        #[arg(long, default_value = "")]
        batch: String,
        /// Expiry as RFC 3339, e.g. 2027-01-31T00:00:00Z.
        #[arg(long)]
        expires: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsageCommand {
    /// Print one request's usage record as JSON (by its x-request-id). Exits 1 if absent.
    Get { request_id: String },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user.
    Create {
        name: String,
        /// Opening balance in USD, e.g. 5 or 0.25.
        #[arg(long, default_value = "0")]
        balance_usd: String,
        #[arg(long, default_value = "user", value_parser = ["user", "admin"])]
        role: String,
    },
    /// Add credit (a negative amount debits), recorded in the ledger.
    Credit {
        name: String,
        #[arg(allow_hyphen_values = true)]
        usd: String,
        #[arg(long, default_value = "credit from the command line")]
        reason: String,
    },
    /// List users with their balances.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; prints only the new secret on stdout.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Comma-separated allow list of model ids (default: all).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Spending limit of this key in USD.
        #[arg(long)]
        quota_usd: Option<String>,
        /// Expiry as RFC 3339, e.g. 2027-01-31T00:00:00Z.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List a user's keys (prefixes only).
    List {
        #[arg(long)]
        user: String,
    },
    /// Revoke a key by id; it stops working within the reload interval.
    Revoke { key_id: i64 },
}

fn main() -> Result<()> {
    // Before anything opens a database: SQLite takes it only before it initializes.
    let sqlite_memory = tokenhub::store::sqlite_memory::use_process_allocator();
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    let _log_writer = init_logging(settings.log_format);
    if let Err(refused) = sqlite_memory {
        tracing::warn!(%refused, "SQLite keeps its own allocator");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Users(command) => users(&settings, command).await,
            Command::Keys(command) => keys(&settings, command).await,
            Command::Usage(command) => usage(&settings, command).await,
            Command::AdminTokens(command) => admin_tokens(&settings, command).await,
            Command::Codes(command) => codes(&settings, command).await,
            Command::Channels(ChannelsCommand::Check) => check_channels(&settings).await,
            Command::Models(ModelsCommand::Import { file }) => {
                import_models(&settings, &file).await
            }
        }
    })
}

/// Log lines are written in batches by a dedicated thread (see `tokenhub::logging`): a
/// request's line costs its formatting, not a write syscall or a thread wake-up. The
/// returned guard writes what is left when `main` ends.
fn init_logging(format: LogFormat) -> tokenhub::logging::LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = tokenhub::logging::batched(std::io::stderr());
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_timer(tokenhub::logging::UtcMicros)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text if terminal => builder.init(),
        // The same text, without the styling machinery a file or pipe never shows.
        LogFormat::Text => builder.fmt_fields(tokenhub::logging::PlainFields).init(),
    }
    guard
}

async fn serve(settings: Settings) -> Result<()> {
    let starting = tokenhub::allocator::PurgeAtOnce::start();
    let gateway = server::start(settings, server::shutdown_signal()).await?;
    drop(starting);
    eprintln!("TokenHub is listening on http://{}/v1", gateway.addr);
    gateway.wait().await?;
    Ok(())
}

fn usd(text: &str) -> Result<Nanos> {
    text.parse::<Nanos>()
        .with_context(|| format!("'{text}' is not a USD amount"))
}

async fn users(settings: &Settings, command: UsersCommand) -> Result<()> {
    let store = server::open_store(settings).await?;
    match command {
        UsersCommand::Create {
            name,
            balance_usd,
            role,
        } => {
            let user = accounts::create_user(&store, &name, &role, usd(&balance_usd)?).await?;
            println!(
                "created user {} (id {}, role {}, balance ${})",
                user.name,
                user.id,
                user.role,
                user.balance.to_usd_string()
            );
        }
        UsersCommand::Credit {
            name,
            usd: amount,
            reason,
        } => {
            let user = accounts::credit(&store, &name, usd(&amount)?, &reason).await?;
            println!("{} now has ${}", user.name, user.balance.to_usd_string());
        }
        UsersCommand::List => {
            for user in store.all_users().await? {
                println!(
                    "{}\t{}\t{}\t{}\t${}",
                    user.id,
                    user.name,
                    user.role,
                    user.status,
                    user.balance.to_usd_string()
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn keys(settings: &Settings, command: KeysCommand) -> Result<()> {
    let store = server::open_store(settings).await?;
    match command {
        KeysCommand::Create {
            user,
            name,
            models,
            quota_usd,
            expires,
        } => {
            let owner = accounts::user_named(&store, &user).await?;
            let expires_at = expires.as_deref().map(parse_rfc3339).transpose()?;
            let quota = quota_usd.as_deref().map(usd).transpose()?;
            let options = KeyOptions {
                name,
                allowed_models: models,
                quota,
                expires_at,
                ..KeyOptions::default()
            };
            let (_, secret) = accounts::issue_key(&store, &owner, options).await?;
            println!("{secret}");
        }
        KeysCommand::List { user } => {
            let owner = accounts::user_named(&store, &user).await?;
            for key in store.keys_of_user(owner.id).await? {
                let models = key.allowed_models.map_or("*".to_string(), |m| m.join(","));
                let quota = key.quota.map_or("unlimited".to_string(), |q| {
                    format!("${}", q.to_usd_string())
                });
                println!(
                    "{}\t{}\t{}\t{}\tmodels={}\tquota={}\tspent=${}",
                    key.id,
                    key.key_prefix,
                    key.name,
                    key.status,
                    models,
                    quota,
                    key.spent.to_usd_string()
                );
            }
        }
        KeysCommand::Revoke { key_id } => {
            store.set_key_status(key_id, "revoked").await?;
            println!("revoked key {key_id}");
        }
    }
    store.close().await;
    Ok(())
}

async fn usage(settings: &Settings, command: UsageCommand) -> Result<()> {
    let store = server::open_store(settings).await?;
    let UsageCommand::Get { request_id } = command;
    let record = store.usage_by_request_id(&request_id).await?;
    store.close().await;
    let Some(record) = record else {
        bail!("no usage record for request {request_id}")
    };
    let mut json = serde_json::to_value(&record)?;
    json["cost_usd"] = record.cost.to_usd_string().into();
    println!("{json}");
    Ok(())
}

async fn admin_tokens(settings: &Settings, command: AdminTokensCommand) -> Result<()> {
    let store = server::open_store(settings).await?;
    let actor = accounts::Actor::cli();
    match command {
        AdminTokensCommand::Create { user, name } => {
            let owner = accounts::user_named(&store, &user).await?;
            let (row, secret) = accounts::admin_token::issue(&store, &actor, &owner, &name).await?;
            let target = format!("admin_token:{}", row.id);
            accounts::audit::record(
                &store,
                &actor,
                "admin_token.create",
                &target,
                None::<&()>,
                Some(&row.token_prefix),
            )
            .await;
            println!("{secret}");
        }
        AdminTokensCommand::List => {
            for token in store.admin_tokens().await? {
                println!(
                    "{}\tuser {}\t{}\t{}\t{}",
                    token.id, token.user_id, token.token_prefix, token.name, token.status
                );
            }
        }
        AdminTokensCommand::Revoke { token_id } => {
            store.revoke_admin_token(token_id).await?;
            let target = format!("admin_token:{token_id}");
            accounts::audit::record(
                &store,
                &actor,
                "admin_token.revoke",
                &target,
                None::<&()>,
                None::<&()>,
            )
            .await;
            println!("revoked admin token {token_id}");
        }
    }
    store.close().await;
    Ok(())
}

async fn codes(settings: &Settings, command: CodesCommand) -> Result<()> {
    let store = server::open_store(settings).await?;
    let CodesCommand::Create {
        count,
        usd: amount,
        batch,
        expires,
    } = command;
    let expires_at = expires.as_deref().map(parse_rfc3339).transpose()?;
    let actor = accounts::Actor::cli();
    let created =
        accounts::redemption::create(&store, &actor, count, usd(&amount)?, &batch, expires_at)
            .await?;
    let target = format!("batch:{batch}");
    let summary = serde_json::json!({"count": created.len(), "amount_usd": amount});
    accounts::audit::record(
        &store,
        &actor,
        "redemption.create",
        &target,
        None::<&()>,
        Some(&summary),
    )
    .await;
    for (_, code) in created {
        println!("{code}");
    }
    store.close().await;
    Ok(())
}

async fn check_channels(settings: &Settings) -> Result<()> {
    let results = server::check_channels(settings).await?;
    for check in &results {
        let verdict = if check.ok { "ok" } else { "FAIL" };
        let mut detail = check.error.clone().unwrap_or_default();
        if let Some(preset) = tokenhub::providers::presets::provenance(&check.channel, &check.model)
            .filter(|p| !check.ok && p.upstream == check.upstream_model)
        {
            detail.push_str(&format!(
                " (preset mapping, checked {} against {})",
                preset.checked, preset.source
            ));
        }
        println!(
            "{verdict}\t{}\t{} -> {}\t{detail}",
            check.channel, check.model, check.upstream_model
        );
    }
    let failed = results.iter().filter(|c| !c.ok).count();
    let rejected = results.iter().filter(|c| c.model_rejected).count();
    eprintln!(
        "{} mappings checked, {failed} failed ({rejected} not served by the upstream)",
        results.len()
    );
    if failed > 0 {
        bail!("{failed} of {} mappings failed", results.len());
    }
    Ok(())
}

async fn import_models(settings: &Settings, file: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let store = server::open_store(settings).await?;
    let imported = accounts::catalog_admin::import_catalogue(&store, &text).await;
    store.close().await;
    let (format, counts) = imported?;
    println!(
        "{} format: {} added, {} updated, {} unchanged, {} skipped",
        format.name(),
        counts.added,
        counts.updated,
        counts.unchanged,
        counts.skipped
    );
    Ok(())
}

fn parse_rfc3339(text: &str) -> Result<i64> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("'{text}' is not an RFC 3339 time such as 2027-01-31T00:00:00Z")
        })?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    if ms <= tokenhub::store::now_ms() as i128 {
        bail!("the expiry {text} is in the past");
    }
    Ok(i64::try_from(ms)?)
}
