//! The process's allocator: mimalloc, called the way its fast path is written for.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every allocation through
//! `mi_malloc_aligned`, whatever its alignment. In mimalloc 3 that call leaves its fast
//! path whenever the size class's free list is momentarily empty, and then, for a size
//! that is not a power of two, over-allocates from a larger class instead of refilling
//! the list. Under callgrind it was 4 % of a small request's instructions (bench/RESULTS.md,
//! addendum 28). Plain `mi_malloc` already returns memory aligned for almost every Rust
//! type, so only the rare stricter alignments take the aligned call.
//!
//! This is the one module that names mimalloc: its options, the collection of a thread's
//! freed pages, and the C interface that SQLite allocates through
//! (`store/sqlite_memory.rs`) are reached from here.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The allocator's C interface, for a C library that takes one.
pub mod c {
    pub use libmimalloc_sys::{
        mi_free as free, mi_good_size as good_size, mi_malloc as malloc, mi_realloc as realloc,
        mi_usable_size as usable_size,
    };
}

/// `mi_option_arena_eager_commit` (index 4 of `mi_option_e` in the vendored mimalloc
/// header, versions 2 and 3 alike; the Rust bindings have no name for it).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commits arena memory as it is used rather than up front: without this the idle
/// gateway's resident memory grows from ~23 MB to ~33 MB (the target is ≤ 30 MB). It
/// must run before the first allocation, which the Rust runtime makes before `main`:
/// `main.rs` calls it from a constructor in `.init_array`.
pub extern "C" fn commit_arena_memory_lazily() {
    // SAFETY: sets a process-wide allocator option; nothing is allocated.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

/// `mi_option_purge_delay` (index 15 of `mi_option_e`, versions 2 and 3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// While alive, memory freed to mimalloc's arenas goes back to the system at once instead
/// of after the purge delay (a second). Start-up allocates and frees a great deal once
/// (migrations, seeds, the root password's 19 MiB argon2 block) and then falls idle:
/// a purge scheduled for later would wait for the next collection, and memory the
/// start-up freed in the meantime was reused piecemeal instead, so a first start on a new
/// database idled at 30-41 MB against 26 MB for a restart (bench/RESULTS.md,
/// addendum 29). Serving keeps the delay: purging every free at once costs thousands of
/// `madvise` calls a second under load.
pub struct PurgeAtOnce {
    delay: std::ffi::c_long,
}

impl PurgeAtOnce {
    pub fn start() -> PurgeAtOnce {
        // SAFETY: reads and sets a process-wide allocator option; nothing is allocated.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
        PurgeAtOnce { delay }
    }
}

impl Drop for PurgeAtOnce {
    fn drop(&mut self) {
        // SAFETY: as in `start`.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, self.delay) };
        return_this_threads_freed_memory();
    }
}

/// Hands the pages this thread freed back to the system. mimalloc keeps them for reuse
/// until the thread calls into it again; this walks only the calling thread's heap.
pub fn return_this_threads_freed_memory() {
    // SAFETY: collects the calling thread's own heap; no pointers involved.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// What `mi_malloc` guarantees (`MI_MAX_ALIGN_SIZE`): a block of 16 bytes or more is
/// 16-byte aligned, a smaller one 8-byte aligned (its size classes are whole double
/// words from 16 bytes up, and pages start 16-byte aligned).
const MALLOC_ALIGNMENT: usize = 16;

/// `mi_malloc`'s own alignment satisfies `align` for a block of `size` bytes: the rule
/// the standard library's `System` allocator applies to `malloc`.
#[inline(always)]
fn malloc_suffices(size: usize, align: usize) -> bool {
    align <= MALLOC_ALIGNMENT && align <= size
}

/// mimalloc as the global allocator (`main.rs`).
pub struct Allocator;

/// `plain(size)` where `mi_malloc`'s alignment suffices, `aligned(size, align)` otherwise.
#[inline(always)]
unsafe fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: plain calls into the allocator; a null result is returned as such.
    unsafe {
        if malloc_suffices(size, align) {
            plain(size).cast()
        } else {
            aligned(size, align).cast()
        }
    }
}

// SAFETY: every block comes from mimalloc, which is thread-safe, and every one is
// aligned as its layout asks: by `mi_malloc`'s guarantee where `malloc_suffices`, by the
// aligned calls otherwise. `mi_free` and `mi_realloc*` take any block mimalloc returned.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see `allocate`.
        unsafe { allocate(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see `allocate`.
        unsafe { allocate(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: the caller passes a block this allocator returned, and a new size that
        // fits `isize` with the same alignment.
        unsafe {
            if malloc_suffices(new_size, align) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads a process-wide allocator option.
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn purging_at_once_lasts_as_long_as_its_guard() {
        let serving = purge_delay();
        assert!(serving > 0, "mimalloc delays purges by default: {serving}");
        let starting = PurgeAtOnce::start();
        assert_eq!(purge_delay(), 0);
        drop(starting);
        assert_eq!(purge_delay(), serving);
    }

    fn layouts() -> impl Iterator<Item = Layout> {
        let sizes = (1..=160).chain([255, 256, 257, 1000, 4096, 4097, 100_000, 3 << 20]);
        sizes.flat_map(|size| {
            [1, 2, 4, 8, 16, 32, 64, 4096]
                .into_iter()
                .map(move |align| Layout::from_size_align(size, align).unwrap())
        })
    }

    fn aligned(ptr: *mut u8, layout: Layout) -> bool {
        !ptr.is_null() && (ptr as usize).is_multiple_of(layout.align())
    }

    #[test]
    fn every_block_is_aligned_as_its_layout_asks_and_keeps_its_bytes_when_it_grows_or_shrinks() {
        for layout in layouts() {
            // SAFETY: non-zero sizes; every block is freed with the layout it has.
            unsafe {
                for new_size in [layout.size() * 2 + 3, layout.size().div_ceil(2)] {
                    let ptr = Allocator.alloc(layout);
                    assert!(aligned(ptr, layout), "{layout:?}");
                    ptr.write_bytes(0xA5, layout.size());
                    let moved = Allocator.realloc(ptr, layout, new_size);
                    let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                    assert!(aligned(moved, new_layout), "{layout:?} to {new_size}");
                    let kept = std::slice::from_raw_parts(moved, layout.size().min(new_size));
                    assert!(kept.iter().all(|&b| b == 0xA5), "{layout:?} to {new_size}");
                    Allocator.dealloc(moved, new_layout);
                }
                let zeroed = Allocator.alloc_zeroed(layout);
                assert!(aligned(zeroed, layout), "zeroed {layout:?}");
                let bytes = std::slice::from_raw_parts(zeroed, layout.size());
                assert!(bytes.iter().all(|&b| b == 0), "zeroed {layout:?}");
                Allocator.dealloc(zeroed, layout);
            }
        }
    }
}
