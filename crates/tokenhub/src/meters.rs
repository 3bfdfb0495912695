//! Unlabelled metrics recorded on every request, looked up in the recorder once.
//!
//! `metrics::gauge!("…")` finds its metric in the recorder's registry on every call (a
//! hash and a map lookup under a lock); a handle kept here is one atomic operation. The
//! handles stay valid for the process: the Prometheus recorder is installed once, before
//! the first request (`server::prometheus`), as `relay/observe.rs` relies on too.

use std::sync::LazyLock;

use metrics::{Gauge, Histogram};

pub struct Meters {
    /// Requests between authentication and settlement.
    pub requests_in_flight: Gauge,
    /// Streams a client is reading.
    pub streams_open: Gauge,
    /// Usage records queued for the ledger writer.
    pub ledger_queue_depth: Gauge,
    /// A non-stream answer's time in the gateway, upstream time excluded.
    pub gateway_overhead: Histogram,
}

pub static METERS: LazyLock<Meters> = LazyLock::new(|| Meters {
    requests_in_flight: metrics::gauge!("tokenhub_requests_in_flight"),
    streams_open: metrics::gauge!("tokenhub_streams_open"),
    ledger_queue_depth: metrics::gauge!("tokenhub_ledger_queue_depth"),
    gateway_overhead: metrics::histogram!("tokenhub_gateway_overhead_seconds"),
});
