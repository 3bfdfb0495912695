//! A database made for one simulation run and removed after it: a SQLite file in a
//! directory of its own, or a PostgreSQL database on the server of an admin URL (as
//! `tests/it/support` makes them, so parallel runs never share one).

use sqlx::Connection;

pub struct ScratchDatabase {
    pub url: String,
    pub label: &'static str,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl ScratchDatabase {
    pub fn sqlite() -> Result<ScratchDatabase, String> {
        // In memory when the system has a tmpfs: the run is about the ledger's logic, and
        // a disk's fsync per commit would make it ten times slower.
        let shm = std::path::Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!("tokenhub-sim-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(ScratchDatabase {
            url: format!("sqlite://{}/ledger.db", dir.display()),
            label: "sqlite",
            cleanup: Cleanup::Directory(dir),
        })
    }

    /// `admin_url` names a database on the server (e.g. `postgres://…/test`); the run gets
    /// a fresh one beside it.
    pub fn postgres(admin_url: &str) -> Result<ScratchDatabase, String> {
        let name = format!("th_sim_{}", uuid::Uuid::new_v4().simple());
        let statement = format!("CREATE DATABASE {name}");
        on_admin_connection(admin_url, statement)?;
        let (server, _) = admin_url
            .rsplit_once('/')
            .ok_or_else(|| format!("{admin_url} names no database"))?;
        Ok(ScratchDatabase {
            url: format!("{server}/{name}"),
            label: "postgres",
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_string(),
                name,
            },
        })
    }
}

/// Runs one statement on its own thread and runtime: callers may be inside a runtime.
fn on_admin_connection(admin_url: &str, statement: String) -> Result<(), String> {
    let admin_url = admin_url.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .map_err(|e| format!("connect {admin_url}: {e}"))?;
            sqlx::query(&statement)
                .execute(&mut admin)
                .await
                .map(|_| ())
                .map_err(|e| format!("{statement}: {e}"))
        })
    })
    .join()
    .map_err(|_| "the admin connection's thread panicked".to_string())?
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let outcome = match &self.cleanup {
            Cleanup::Directory(dir) => std::fs::remove_dir_all(dir).map_err(|e| e.to_string()),
            // FORCE ends the connections a crashed process left open.
            Cleanup::Postgres { admin_url, name } => on_admin_connection(
                admin_url,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ),
        };
        if let Err(error) = outcome {
            eprintln!(
                "could not remove the simulation's database {}: {error}",
                self.url
            );
        }
    }
}
