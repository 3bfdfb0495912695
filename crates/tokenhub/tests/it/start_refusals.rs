//! Settings that cannot work stop the real binary at start, with a message that names
//! the setting and no credential: a malformed CORS origin, a mail server without
//! `public_url`, and a Redis that does not answer (refused within seconds, not left
//! retrying while the instance runs alone with per-process limits). A refused start
//! creates no root account, so root's one-time password never scrolls by above it.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::processes::{command, free_port, write_config};

/// Runs `serve` with `env` (an empty value unsets the variable) on a fresh SQLite
/// database and returns how it ended; panics if it is still running after `within`.
fn start_with(env: &[(&str, String)], within: Duration) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9");
    let url = format!("sqlite://{}/tokenhub.db", dir.path().display());
    let mut serve: Command = command(&url, &config, free_port());
    for (name, value) in env {
        if value.is_empty() {
            serve.env_remove(name);
        } else {
            serve.env(name, value);
        }
    }
    let started = Instant::now();
    let mut child = serve
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > within {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {within:?}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

/// The process failed, and its error output says all of `said` and none of `hidden`.
fn assert_refused(output: &Output, said: &[&str], hidden: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started: {stderr}");
    for text in said {
        assert!(stderr.contains(text), "'{text}' missing from: {stderr}");
    }
    for text in hidden {
        assert!(!stderr.contains(text), "'{text}' leaked in: {stderr}");
    }
}

#[test]
fn a_malformed_cors_origin_stops_the_start() {
    let (output, _) = start_with(
        &[(
            "TOKENHUB_CORS_ALLOWED_ORIGINS",
            "https://app.example.com,app.example.com".into(),
        )],
        Duration::from_secs(30),
    );
    assert_refused(
        &output,
        &[
            "TOKENHUB_CORS_ALLOWED_ORIGINS",
            "'app.example.com' is not an origin",
        ],
        &[],
    );
}

#[test]
fn a_mail_server_without_public_url_stops_the_start() {
    let (output, _) = start_with(
        &[
            (
                "TOKENHUB_SMTP_URL",
                "smtps://mailer:smtp-password@mail.example.com".into(),
            ),
            (
                "TOKENHUB_SMTP_FROM",
                "TokenHub <noreply@example.com>".into(),
            ),
        ],
        Duration::from_secs(30),
    );
    assert_refused(&output, &["needs public_url"], &["smtp-password"]);
}

/// Nothing listens on the port: the start fails within a few seconds and says why.
#[test]
fn an_unreachable_redis_stops_the_start_quickly() {
    let port = free_port();
    let (output, took) = start_with(
        &[(
            "TOKENHUB_REDIS_URL",
            format!("redis://:redis-password@127.0.0.1:{port}"),
        )],
        Duration::from_secs(30),
    );
    assert_refused(&output, &["cannot use redis_url"], &["redis-password"]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// Without `TOKENHUB_ROOT_PASSWORD` a first start prints root's generated password once;
/// a start refused for Redis or a busy port is refused before the account exists.
#[test]
fn a_refused_start_creates_no_root_account_first() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refusals = [
        (
            "TOKENHUB_REDIS_URL",
            format!("redis://127.0.0.1:{}", free_port()),
            "cannot use redis_url",
        ),
        (
            "TOKENHUB_LISTEN",
            busy.local_addr().unwrap().to_string(),
            "cannot listen on",
        ),
    ];
    for (name, value, said) in refusals {
        let (output, _) = start_with(
            &[(name, value), ("TOKENHUB_ROOT_PASSWORD", String::new())],
            Duration::from_secs(30),
        );
        assert_refused(&output, &[said], &["Created the root account"]);
    }
}
