//! The global allocator: mimalloc, with a byte count for INFO's `used_memory`.
//!
//! The count is of usable sizes (`mi_usable_size`), not requested ones, as
//! Redis's zmalloc counts `je_malloc_usable_size`: a 33 KiB request served
//! from a 40 KiB size class costs 40 KiB, and `used_memory` says so. One
//! relaxed atomic add and one size lookup per allocation; the hot path
//! allocates little.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering};

static USED: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static STARTUP: AtomicI64 = AtomicI64::new(0);

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h;
/// libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Allocator settings, before the first allocation that matters. mimalloc 3
/// returns freed pages to the OS only after 1 s by default (version 2: 10 ms):
/// a snapshot's short-lived buffers then stay resident for a second, which
/// showed as ~5 MiB of extra peak RSS during a BGSAVE of 600k keys under
/// writes. 10 ms cost no measurable CPU per request (SET -P 16). An explicit
/// `MIMALLOC_PURGE_DELAY` in the environment wins.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a documented option; mimalloc reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    }
}

/// Records the memory in use once the server is set up, before any data is
/// loaded (Redis's `initial_memory_usage`, MEMORY STATS's `startup.allocated`).
pub fn mark_startup() {
    STARTUP.store(USED.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// What [`mark_startup`] recorded.
pub fn startup_memory() -> u64 {
    STARTUP.load(Ordering::Relaxed).max(0) as u64
}

/// mimalloc plus accounting.
pub struct CountingMimalloc;

/// The usable size of a live block (0 for null).
///
/// # Safety
/// `ptr` is null or a live block from mimalloc.
unsafe fn usable(ptr: *const u8) -> i64 {
    if ptr.is_null() {
        0
    } else {
        // SAFETY: the caller's contract.
        unsafe { MiMalloc.usable_size(ptr) as i64 }
    }
}

#[allow(unsafe_code)]
// SAFETY: forwards every call unchanged to mimalloc, only counting sizes.
unsafe impl GlobalAlloc for CountingMimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { MiMalloc.alloc(layout) };
        // SAFETY: null or just allocated.
        USED.fetch_add(unsafe { usable(ptr) }, Ordering::Relaxed);
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block.
        USED.fetch_sub(unsafe { usable(ptr) }, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        // SAFETY: null or just allocated.
        USED.fetch_add(unsafe { usable(ptr) }, Ordering::Relaxed);
        ptr
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a live block.
        let old = unsafe { usable(ptr) };
        // SAFETY: same contract as the caller's.
        let new = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // SAFETY: just (re)allocated; on failure the old block is untouched.
            USED.fetch_add(unsafe { usable(new) } - old, Ordering::Relaxed);
        }
        new
    }
}

/// Bytes currently allocated.
pub fn used_memory() -> u64 {
    let used = USED.load(Ordering::Relaxed).max(0);
    if used > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(used, Ordering::Relaxed);
    }
    used as u64
}

/// Highest `used_memory` observed (sampled by the cron and INFO).
pub fn peak_memory() -> u64 {
    used_memory();
    PEAK.load(Ordering::Relaxed) as u64
}
