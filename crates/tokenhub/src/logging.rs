//! Log lines leave the process in batches. A request thread only appends its formatted
//! line to a shared buffer; a background thread writes the buffer out every
//! `FLUSH_INTERVAL` (sooner when it grows past `EAGER_BYTES`). Handing each line to a
//! writer thread instead costs a thread wake-up and a `write(2)` per line, which showed
//! as several per cent of the gateway's CPU at 10k+ requests per second.
//!
//! Nothing is dropped: when the buffer reaches `MAX_BYTES` (the sink is slower than the
//! log rate), writers wait for the thread. What a `kill -9` can lose is at most the last
//! `FLUSH_INTERVAL` of lines; a normal exit flushes everything through [`LogGuard`].

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{DefaultVisitor, FormatFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;

/// How long a line may wait in the buffer before the thread writes it.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// A buffer this large is written at once rather than at the next interval.
const EAGER_BYTES: usize = 256 * 1024;
/// Writers wait while the buffer holds this much.
const MAX_BYTES: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer thread early (a large buffer, or closing).
    wake: Condvar,
    /// Wakes writers waiting for room.
    room: Condvar,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves only log bytes behind: keep logging.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `MakeWriter` given to `tracing_subscriber`.
#[derive(Clone)]
pub struct BatchedLog {
    shared: Arc<Shared>,
}

/// Stops the writer thread and writes what is left when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `sink` (e.g. stderr).
pub fn batched(sink: impl Write + Send + 'static) -> (BatchedLog, LogGuard) {
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("tokenhub-log".into())
            .spawn(move || write_batches(&shared, sink))
            .expect("cannot start the log writer thread")
    };
    (
        BatchedLog {
            shared: shared.clone(),
        },
        LogGuard {
            shared,
            thread: Some(thread),
        },
    )
}

fn write_batches(shared: &Shared, mut sink: impl Write) {
    let mut spare = Vec::new();
    loop {
        let closed = {
            let mut pending = shared.pending();
            if pending.lines.len() < EAGER_BYTES && !pending.closed {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_INTERVAL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut pending.lines, &mut spare);
            pending.closed
        };
        shared.room.notify_all();
        if !spare.is_empty() {
            // Nowhere to report a failing log sink; the lines are gone either way.
            let _ = sink.write_all(&spare).and_then(|()| sink.flush());
            spare.clear();
        }
        if closed && shared.pending().lines.is_empty() {
            return;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.pending().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's writer: appends to the shared buffer.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.pending();
        while pending.lines.len() >= MAX_BYTES && !pending.closed {
            self.shared.wake.notify_one();
            pending = self
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        pending.lines.extend_from_slice(bytes);
        if pending.lines.len() >= EAGER_BYTES {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

/// The text format's fields without a terminal, written as `tracing_subscriber`'s default
/// formatter writes them with ANSI off (`name=value`, space-separated): that formatter
/// still runs every name and `=` through `nu_ansi_term` styles, three `write!` arguments
/// per field, which was most of the settled line's 25,000 instructions per request
/// (bench/RESULTS.md, addendum 12). Here a plain field is its static name, `=` and one
/// `write!` of the value; the message, errors and raw (`r#`) or `log.` names go to the
/// default visitor, which escapes and expands them.
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Writes `name=value`, or hands the field to the default visitor when it needs more.
    fn field(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut Writer<'_>) -> fmt::Result,
        special: impl FnOnce(&mut DefaultVisitor<'_>),
    ) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name == "message" || name.starts_with("r#") || name.starts_with("log.") {
            let mut default = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
            special(&mut default);
            self.result = default.finish();
            self.is_empty &= name.starts_with("log.");
            return;
        }
        if !std::mem::take(&mut self.is_empty) {
            self.result = self.writer.write_char(' ');
        }
        self.result = self
            .result
            .and_then(|()| self.writer.write_str(name))
            .and_then(|()| self.writer.write_char('='))
            .and_then(|()| value(&mut self.writer));
    }

    /// An integer's digits, as `{:?}` writes them, without the formatting machinery
    /// (nine integers a settled line).
    fn integer(
        &mut self,
        field: &Field,
        value: impl itoa::Integer + Copy,
        special: impl FnOnce(&mut DefaultVisitor<'_>),
    ) {
        self.field(
            field,
            |w| w.write_str(itoa::Buffer::new().format(value)),
            special,
        );
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value, |d| d.record_i64(field, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value, |d| d.record_u64(field, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text = if value { "true" } else { "false" };
        self.field(
            field,
            |w| w.write_str(text),
            |d| d.record_bool(field, value),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(
            field,
            |w| write!(w, "{value:?}"),
            |d| d.record_str(field, value),
        );
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        let mut default = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        default.record_error(field, value);
        self.result = default.finish();
        self.is_empty = false;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(
            field,
            |w| write!(w, "{value:?}"),
            |d| d.record_debug(field, value),
        );
    }
}

/// The time of a line as `tracing_subscriber`'s default timer writes it, RFC 3339 in UTC
/// with microseconds (`2026-12-05T23:39:36.913872Z`), with the part up to the second
/// formatted once a second per thread: formatting all of it was 2.4k instructions a
/// settled line (addendum 23).
pub struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        thread_local! {
            /// The second last formatted, and its text up to the fraction's dot.
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (seconds, micros) = (now.as_secs(), now.subsec_micros());
        SECOND.with_borrow_mut(|(second, text)| {
            if *second != seconds {
                *text = up_to_the_second(seconds);
                *second = seconds;
            }
            w.write_str(text)
        })?;
        let mut fraction = *b".000000Z";
        let mut buffer = itoa::Buffer::new();
        let digits = buffer.format(micros).as_bytes();
        fraction[7 - digits.len()..7].copy_from_slice(digits);
        w.write_str(std::str::from_utf8(&fraction).expect("ASCII"))
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, in UTC.
fn up_to_the_second(unix_seconds: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read after the thread has written to it.
    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Collected {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_lines(log: &BatchedLog, count: usize) {
        for i in 0..count {
            // One write per line, as `tracing_subscriber` does (`writeln!` writes pieces).
            let line = format!("line {i}\n");
            log.make_writer().write_all(line.as_bytes()).unwrap();
        }
    }

    #[test]
    fn every_line_is_written_in_order_and_in_few_writes_by_the_time_the_guard_drops() {
        let sink = Collected::default();
        let (log, guard) = batched(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || log_lines(&log, 1000))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let writes = sink.0.lock().unwrap();
        let text = String::from_utf8(writes.concat()).unwrap();
        assert_eq!(text.lines().count(), 4000);
        for i in [0, 999] {
            assert_eq!(text.matches(&format!("line {i}\n")).count(), 4);
        }
        assert!(writes.len() < 400, "{} writes for 4000 lines", writes.len());
    }

    #[test]
    fn lines_are_written_within_the_flush_interval_without_closing() {
        let sink = Collected::default();
        let (log, _guard) = batched(sink.clone());
        log_lines(&log, 3);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().concat().len() < "line 0\n".len() * 3 {
            assert!(std::time::Instant::now() < deadline, "lines never written");
            std::thread::sleep(FLUSH_INTERVAL / 2);
        }
    }

    #[test]
    fn writers_wait_for_room_instead_of_dropping_lines() {
        /// A sink slower than the writers: the buffer fills and writers must wait.
        #[derive(Clone, Default)]
        struct Slow(Arc<Mutex<usize>>);
        impl Write for Slow {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(5));
                *self.0.lock().unwrap() += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Slow::default();
        let (log, guard) = batched(sink.clone());
        let line = vec![b'x'; 64 * 1024];
        for _ in 0..200 {
            log.make_writer().write_all(&line).unwrap();
        }
        drop(guard);
        assert_eq!(*sink.0.lock().unwrap(), 200 * line.len());
    }

    /// The lines `tracing_subscriber` writes for a few events, with `PlainFields` or with
    /// its default field formatter (ANSI off, no timestamps).
    fn formatted_lines(plain: bool) -> String {
        let sink = Collected::default();
        let (log, guard) = batched(sink.clone());
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(log);
        let emit = || {
            let error = std::io::Error::other("disk gone");
            let id: Option<u64> = Some(7);
            tracing::info!(
                request_id = %"req-1",
                user_id = 42_i64,
                status = 200_u64,
                stream = true,
                model = "mock-gpt",
                channel_id = ?id,
                ttft_ms = ?None::<u64>,
                error = ?Some("upstream said \"no\""),
                r#type = 3,
                "relay request settled"
            );
            tracing::warn!(
                error = &error as &(dyn std::error::Error + 'static),
                "failed: {}",
                "\x1b[31mred"
            );
            tracing::error!(n = -5_i64, "{}", "first field after the message");
            tracing::info!(only = 1_u64);
        };
        if plain {
            tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        drop(guard);
        String::from_utf8(sink.0.lock().unwrap().concat()).unwrap()
    }

    #[test]
    fn times_are_written_as_the_default_timer_writes_them() {
        assert_eq!(up_to_the_second(0), "1970-01-01T00:00:00");
        assert_eq!(up_to_the_second(1_796_514_576), "2026-12-05T23:49:36");
        let mut line = String::new();
        UtcMicros.format_time(&mut Writer::new(&mut line)).unwrap();
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        assert_eq!(line.len(), theirs.len(), "{line} {theirs}");
        let parse = |text: &str| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let apart = parse(&theirs) - parse(&line);
        assert!(
            apart >= time::Duration::ZERO && apart < time::Duration::SECOND,
            "{line} {theirs}"
        );
    }

    #[test]
    fn plain_fields_write_what_the_default_formatter_writes_without_ansi() {
        let plain = formatted_lines(true);
        assert_eq!(plain, formatted_lines(false));
        assert_eq!(plain.lines().count(), 4);
        assert!(
            plain.contains(
                "relay request settled request_id=req-1 user_id=42 status=200 stream=true \
                 model=\"mock-gpt\" channel_id=Some(7) ttft_ms=None"
            ),
            "{plain}"
        );
        assert!(
            plain.contains("\\x1b[31mred"),
            "the message is escaped: {plain}"
        );
    }
}
