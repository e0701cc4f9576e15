//! The only place with `unsafe` code: thin wrappers over C interfaces,
//! each block with a `// SAFETY:` comment (after quinn-udp).

/// Returns freed memory to the operating system now.
///
/// The global allocator (mimalloc, see `main.rs`) purges freed pages
/// lazily, when the thread that owns them allocates again. Workers do not
/// allocate while answering, so after a large zone is loaded and its
/// intermediate data freed, that memory would stay resident for good.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` takes no pointers and only walks mimalloc's own
    // heaps; it is safe to call at any time from any thread, also when
    // mimalloc is not the global allocator (then there is little to do).
    unsafe { libmimalloc_sys::mi_collect(true) };
}
