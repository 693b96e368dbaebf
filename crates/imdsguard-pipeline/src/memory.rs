//! The allocator's hold on freed memory (glibc's malloc; elsewhere, nothing to do).
//!
//! Loading the rules parses every rule file on the hunt's threads (the parsed rules, and
//! SigmaHQ's filters, alive until the last rule compiles), and glibc keeps what each thread freed
//! in that thread's arena, and at the top of each heap up to 128 KiB (more once it has seen large
//! blocks freed, as loading frees them). Measured on the SigmaHQ Windows rules over the public
//! EVTX files with two threads (`bench/run-sigma.sh`): 58.6–60.0 MiB peak before, 52.1–52.6 MiB
//! with both calls below, in the same time, the same alerts.

/// Returns freed memory at the top of a heap to the system once it exceeds 1 MiB. For `hunt`,
/// which reads its inputs once: `watch`, which frees and takes back a batch's memory every few
/// milliseconds, ran 13% slower with it (`watch --nats`, 100,000 records: 1.05-1.06 s → 1.16-1.22 s).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` sets one of the allocator's parameters (under the allocator's own lock).
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
}

/// Hands the free pages of every arena back to the system (after the rules are compiled, so the
/// hunt grows from the rule set alone).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` only returns free memory to the system; it takes no pointer and
    // leaves every live allocation in place.
    unsafe {
        libc::malloc_trim(0);
    }
}
