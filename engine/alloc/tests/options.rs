//! jemalloc is the allocator of a binary linking medic-alloc, and runs with its options.

#![cfg(all(unix, not(target_env = "musl")))]

use medic_alloc as _;
use tikv_jemalloc_ctl::{raw, thread};

#[test]
fn allocations_go_through_jemalloc() {
    // jemalloc's count of the bytes this thread allocated grows by what the test
    // allocates: jemalloc serves the global allocator, it is not merely linked.
    let allocated = thread::allocatedp::read().unwrap();
    let before = allocated.get();
    let block = std::hint::black_box(vec![1u8; 8 << 20]);
    let after = allocated.get();
    assert!(after >= before + (8 << 20), "{before} -> {after}");
    drop(block);
}

/// jemalloc's option `name` (NUL-terminated), of type `T`.
#[expect(
    unsafe_code,
    reason = "mallctl reads are unsafe in general; each name here is an option of type T"
)]
fn option<T: Copy>(name: &[u8]) -> T {
    // SAFETY: `name` is NUL-terminated and names an option whose C type is T
    // (jemalloc(3): opt.narenas unsigned, opt.*_decay_ms ssize_t).
    unsafe { raw::read(name) }.unwrap()
}

#[test]
fn jemalloc_runs_with_medics_options() {
    let narenas: u32 = option(b"opt.narenas\0");
    let dirty: isize = option(b"opt.dirty_decay_ms\0");
    let muzzy: isize = option(b"opt.muzzy_decay_ms\0");
    assert_eq!((narenas, dirty, muzzy), (2, 1000, 0));
    assert_eq!(
        medic_alloc::OPTIONS.to_str().unwrap(),
        "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0"
    );
}
