//! SQLite's memory from the process's allocator, without SQLite's own statistics.
//!
//! SQLite allocates about 17 times for each usage record the ledger writes. By default it
//! does so through glibc's `malloc` and, keeping memory statistics, takes a process-wide
//! mutex around every allocation and every free: ~8,000 instructions a small request,
//! 5 % of it (bench/RESULTS.md, addendum 28). Nothing here reads those statistics
//! (`sqlite3_memory_used`, the soft heap limit), so they are switched off, and the
//! allocations go to mimalloc like the rest of the process.
//!
//! SQLite takes this configuration only before it initializes, which the first
//! connection does: the binary calls `use_process_allocator` first thing in `main`.

use std::ffi::{c_int, c_void};

use rusqlite::ffi;

use crate::allocator::c as mimalloc;

/// SQLite asks for sizes as `int`; a negative one never comes, and would get nothing.
fn size(bytes: c_int) -> usize {
    usize::try_from(bytes).unwrap_or(0)
}

unsafe extern "C" fn allocate(bytes: c_int) -> *mut c_void {
    // SAFETY: a plain allocation; SQLite checks for null. mimalloc's blocks are at least
    // 8-byte aligned, as SQLite requires.
    unsafe { mimalloc::malloc(size(bytes)) }
}

unsafe extern "C" fn free(block: *mut c_void) {
    // SAFETY: SQLite frees only blocks `allocate` or `reallocate` returned.
    unsafe { mimalloc::free(block) }
}

unsafe extern "C" fn reallocate(block: *mut c_void, bytes: c_int) -> *mut c_void {
    // SAFETY: as in `free`; SQLite keeps the old block when this returns null.
    unsafe { mimalloc::realloc(block, size(bytes)) }
}

unsafe extern "C" fn usable_size(block: *mut c_void) -> c_int {
    // SAFETY: as in `free`.
    let usable = unsafe { mimalloc::usable_size(block) };
    c_int::try_from(usable).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn round_up(bytes: c_int) -> c_int {
    // SAFETY: pure arithmetic on a size.
    let good = unsafe { mimalloc::good_size(size(bytes)) };
    c_int::try_from(good).unwrap_or(bytes)
}

unsafe extern "C" fn no_setup(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn no_teardown(_: *mut c_void) {}

/// Why SQLite refused the configuration (its result code): it was already initialized.
#[derive(Debug, thiserror::Error)]
#[error("SQLite refused its memory configuration (code {0}); it keeps its own allocator")]
pub struct AlreadyInitialized(c_int);

/// Points SQLite's allocations at mimalloc and turns its memory statistics off. Must run
/// before any SQLite connection is opened in the process.
pub fn use_process_allocator() -> Result<(), AlreadyInitialized> {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(allocate),
        xFree: Some(free),
        xRealloc: Some(reallocate),
        xSize: Some(usable_size),
        xRoundup: Some(round_up),
        xInit: Some(no_setup),
        xShutdown: Some(no_teardown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: both options take the arguments given here; SQLite copies `methods` before
    // returning, and refuses (without effect) once it is initialized.
    let codes = unsafe {
        [
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods),
        ]
    };
    match codes.into_iter().find(|&code| code != ffi::SQLITE_OK) {
        None => Ok(()),
        Some(code) => Err(AlreadyInitialized(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "TOKENHUB_TEST_SQLITE_MEMORY_CHILD";

    /// SQLite takes the configuration only before its first connection, which other
    /// tests of this process may already have opened: the check runs in a process of
    /// its own (this test binary again, running only the test below).
    #[test]
    fn a_fresh_process_runs_sqlite_on_mimalloc_without_statistics() {
        let test = "store::sqlite_memory::tests::configured_sqlite_stores_and_reads_back";
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--ignored", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success(),
            "{output}\n{}",
            String::from_utf8_lossy(&child.stderr)
        );
        assert!(output.contains("1 passed"), "the check ran: {output}");
    }

    #[test]
    #[ignore = "run by a_fresh_process_runs_sqlite_on_mimalloc_without_statistics"]
    fn configured_sqlite_stores_and_reads_back() {
        if std::env::var_os(CHILD).is_none() {
            eprintln!("skipped: it configures SQLite, which only a fresh process allows");
            return;
        }
        use_process_allocator().unwrap();
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .unwrap();
        let body = |i: usize| vec![u8::try_from(i % 251).unwrap(); i % 5000];
        let tx = db.unchecked_transaction().unwrap();
        for i in 0..2_000 {
            tx.execute(
                "INSERT INTO t(id, body) VALUES (?1, ?2)",
                (i, body(i as usize)),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let mut read = db.prepare("SELECT id, body FROM t ORDER BY id").unwrap();
        let rows = read
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .unwrap();
        let mut count = 0;
        for row in rows {
            let (id, stored) = row.unwrap();
            assert_eq!(stored, body(id as usize));
            count += 1;
        }
        assert_eq!(count, 2_000);
        // SAFETY: reads a counter.
        assert_eq!(
            unsafe { ffi::sqlite3_memory_used() },
            0,
            "statistics are off"
        );
        assert!(
            use_process_allocator().is_err(),
            "refused once SQLite is running"
        );
    }
}
