//! medic's memory allocator: jemalloc, with options chosen for `medic serve`.
//!
//! A binary that links this crate allocates through jemalloc instead of the C library's
//! malloc. It exists because of what the loopback benchmark showed (docs/performance.md,
//! "Runs drained past glibc's arena locks"): under an alert storm, run drivers, sled's I/O threads
//! and intake allocate on one thread and free on another, and glibc's malloc then
//! serialises them on its arena locks, half of the drivers' waits in that profile.
//! jemalloc's thread caches take most of those allocations without a lock.
//!
//! Options ([`OPTIONS`]): two arenas, not four per core (with jemalloc's defaults a parked
//! run cost 6.4–6.6 KiB, with these 3.7–4.4, around the 4 KiB target); freed dirty pages
//! returned after a second and no "muzzy" stage, so memory freed after a storm goes back
//! to the system a second after it ends. jemalloc purges as it allocates (there is no
//! background thread), so a process that allocates nothing more keeps what it held.
//!
//! ```
//! // In a binary's main.rs: linking the crate is all it takes.
//! use medic_alloc as _;
//!
//! fn main() {
//!     let alerts: Vec<String> = Vec::with_capacity(1024); // allocated by jemalloc
//!     assert!(alerts.capacity() >= 1024);
//! }
//! ```
//!
//! On targets jemalloc does not build for, the crate is empty and the system allocator
//! stays.

#![warn(missing_docs)]

#[cfg(all(unix, not(target_env = "musl")))]
mod jemalloc {
    use std::ffi::c_char;

    #[global_allocator]
    static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// A C string pointer jemalloc may read from any thread: it is never written.
    #[repr(transparent)]
    struct Conf(*const c_char);

    // SAFETY: the pointer is to a 'static C string literal that nothing writes.
    #[expect(
        unsafe_code,
        reason = "a raw pointer to a 'static C string is shared read-only"
    )]
    unsafe impl Sync for Conf {}

    /// jemalloc's options, as its `malloc_conf` string (jemalloc(3), "TUNING"): jemalloc
    /// reads the symbol `malloc_conf` (here `_rjem_malloc_conf`, the prefix tikv-jemalloc
    /// builds jemalloc with) once, when it starts. The environment variable
    /// `_RJEM_MALLOC_CONF` overrides it at run time.
    #[expect(
        unsafe_code,
        reason = "jemalloc finds its options under this exact symbol name"
    )]
    #[unsafe(export_name = "_rjem_malloc_conf")]
    #[used]
    static MALLOC_CONF: Conf = Conf(super::OPTIONS.as_ptr());
}

/// The options medic runs jemalloc with: `narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0`.
pub const OPTIONS: &std::ffi::CStr = c"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
