//! HTTP clients for upstreams: per serving thread, one per connect timeout.
//!
//! Per thread because each serving thread runs its own runtime (see `server::serve`): a
//! pooled upstream connection is driven by a task on the runtime that opened it, so a
//! thread that reused another thread's connection would hand every request and answer
//! across threads. Per connect timeout because the timeout belongs to a client's
//! connector, not to a request: a channel that overrides it gets a client of its own
//! (built once per thread, shared by every channel with the same value).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use thread_local::ThreadLocal;

use crate::providers::http::HttpClient;

#[derive(Debug)]
pub struct UpstreamClients {
    default_connect: Duration,
    per_thread: ThreadLocal<ThreadClients>,
}

#[derive(Debug)]
struct ThreadClients {
    default: HttpClient,
    by_connect: RefCell<HashMap<Duration, HttpClient>>,
}

impl UpstreamClients {
    pub fn new(default_connect: Duration) -> UpstreamClients {
        UpstreamClients {
            default_connect,
            per_thread: ThreadLocal::new(),
        }
    }

    fn here(&self) -> &ThreadClients {
        self.per_thread.get_or(|| ThreadClients {
            default: HttpClient::new(self.default_connect),
            by_connect: RefCell::default(),
        })
    }

    /// The client with the global connect timeout (operator actions use it too).
    pub fn default_client(&self) -> HttpClient {
        self.here().default.clone()
    }

    /// The client for a channel's connect timeout. Cloning a client only bumps a count.
    pub fn for_connect(&self, connect: Option<Duration>) -> HttpClient {
        let here = self.here();
        let Some(connect) = connect.filter(|c| *c != self.default_connect) else {
            return here.default.clone();
        };
        here.by_connect
            .borrow_mut()
            .entry(connect)
            .or_insert_with(|| HttpClient::new(connect))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_per_distinct_connect_timeout_and_thread() {
        let clients = UpstreamClients::new(Duration::from_secs(10));
        clients.for_connect(None);
        clients.for_connect(Some(Duration::from_secs(10)));
        assert!(
            clients.here().by_connect.borrow().is_empty(),
            "the default serves both"
        );
        clients.for_connect(Some(Duration::from_millis(250)));
        clients.for_connect(Some(Duration::from_millis(250)));
        clients.for_connect(Some(Duration::from_secs(2)));
        assert_eq!(clients.here().by_connect.borrow().len(), 2);
        std::thread::scope(|scope| {
            scope.spawn(|| assert!(clients.here().by_connect.borrow().is_empty()));
        });
    }
}
