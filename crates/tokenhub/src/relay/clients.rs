//! HTTP clients for upstreams, one per connect timeout. The connect timeout belongs to a
//! client's connector, not to a request, so a channel that overrides it gets a client of
//! its own (built once, shared by every channel with the same value; its pool is separate).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::providers::http::HttpClient;

#[derive(Debug)]
pub struct UpstreamClients {
    default: HttpClient,
    default_connect: Duration,
    by_connect: Mutex<HashMap<Duration, HttpClient>>,
}

impl UpstreamClients {
    pub fn new(default_connect: Duration) -> UpstreamClients {
        UpstreamClients {
            default: HttpClient::new(default_connect),
            default_connect,
            by_connect: Mutex::default(),
        }
    }

    /// The client with the global connect timeout (operator actions use it too).
    pub fn default_client(&self) -> &HttpClient {
        &self.default
    }

    /// The client for a channel's connect timeout. Cloning a client only bumps a count.
    pub fn for_connect(&self, connect: Option<Duration>) -> HttpClient {
        let Some(connect) = connect.filter(|c| *c != self.default_connect) else {
            return self.default.clone();
        };
        let lock = || {
            self.by_connect
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(client) = lock().get(&connect) {
            return client.clone();
        }
        // Built outside the lock (it loads TLS roots); a racing twin is simply dropped.
        let client = HttpClient::new(connect);
        lock().entry(connect).or_insert(client).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_per_distinct_connect_timeout() {
        let clients = UpstreamClients::new(Duration::from_secs(10));
        clients.for_connect(None);
        clients.for_connect(Some(Duration::from_secs(10)));
        assert!(
            clients.by_connect.lock().unwrap().is_empty(),
            "the default serves both"
        );
        clients.for_connect(Some(Duration::from_millis(250)));
        clients.for_connect(Some(Duration::from_millis(250)));
        clients.for_connect(Some(Duration::from_secs(2)));
        assert_eq!(clients.by_connect.lock().unwrap().len(), 2);
    }
}
