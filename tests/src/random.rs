//! Random identifiers without pulling in a RNG crate: std's `RandomState` is seeded from the OS,
//! which is plenty for ids that only need to be unique between tests.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

fn next_u64() -> u64 {
    // RandomState::new() only bumps its keys per call within a thread; hashing a global counter
    // as well keeps values distinct across threads.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

pub(crate) fn bytes(len: usize) -> Vec<u8> {
    std::iter::repeat_with(next_u64)
        .flat_map(u64::to_le_bytes)
        .take(len)
        .collect()
}

/// `len` random lowercase hex digits.
pub(crate) fn hex(len: usize) -> String {
    let mut out: String = bytes(len.div_ceil(2))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    out.truncate(len);
    out
}

/// A version-4-shaped UUID, the format Lambda uses for request ids.
pub(crate) fn uuid() -> String {
    let h = hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}
