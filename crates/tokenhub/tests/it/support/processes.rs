//! Real gateway processes (the `tokenhub` binary) for tests of several instances on one
//! database: start-up races, outages, `kill -9`. Each process writes its log to a file
//! in the test's directory, shown when it fails to come up.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::TEST_SECRET_KEY;

pub const BIN: &str = env!("CARGO_BIN_EXE_tokenhub");

/// A running gateway process; killed (SIGKILL) and reaped when dropped.
pub struct Process {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `kill -9`.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the graceful exit (usage flushed). Async: the test's
    /// runtime may be serving what the process needs to finish (a proxy, a mock).
    pub async fn stop(&mut self, within: Duration) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "gateway on port {} did not stop in {within:?}:\n{}",
            self.port,
            self.log_text()
        );
    }

    /// The last 40 lines of the process's log.
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until `/readyz` answers 200; panics with the log if the process exits or
    /// the deadline passes.
    pub async fn wait_ready(&mut self, within: Duration) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "gateway on port {} exited ({status}):\n{}",
                    self.port,
                    self.log_text()
                );
            }
            let ready = http
                .get(format!("{}/readyz", self.base()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "gateway on port {} not ready in {within:?}:\n{}",
            self.port,
            self.log_text()
        );
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file serving `mock-gpt` ($1/$2 per 1M tokens) from `mock_url`.
pub fn write_config(dir: &Path, mock_url: &str) -> PathBuf {
    let config = dir.join("tokenhub.toml");
    std::fs::write(
        &config,
        format!(
            "[[channels]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"{mock_url}\"\napi_key = \"k\"\nmodels = [\"mock-gpt\"]\n\n\
             [[models]]\nid = \"mock-gpt\"\nprovider = \"Mock\"\ncontext = 8192\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n"
        ),
    )
    .unwrap();
    config
}

/// The binary with a database, a config file and a port; more `env` may follow.
pub fn command(database_url: &str, config: &Path, port: u16) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(config)
        .env("TOKENHUB_DATABASE_URL", database_url)
        .env("TOKENHUB_LISTEN", format!("127.0.0.1:{port}"))
        .env("TOKENHUB_RELOAD_INTERVAL_MS", "100")
        .env("TOKENHUB_ROOT_PASSWORD", "root-password")
        .env("TOKENHUB_SECRET_KEY", TEST_SECRET_KEY)
        .env("TOKENHUB_STARTUP_MODEL_CHECK", "false")
        .env(
            "TOKENHUB_LOG",
            std::env::var("TEST_GATEWAY_LOG").unwrap_or("warn".into()),
        )
        .stdin(Stdio::null());
    command
}

/// Spawns `command` (a `serve`), logging to `dir/gateway-<port>.log` (appended, so a
/// restarted instance keeps its earlier log).
pub fn spawn(mut command: Command, dir: &Path, port: u16) -> Process {
    let log = dir.join(format!("gateway-{port}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = command
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Process { child, port, log }
}

/// Runs a CLI command to completion and returns its stdout.
pub fn run_cli(database_url: &str, config: &Path, args: &[&str]) -> String {
    let output = command(database_url, config, 0)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}
