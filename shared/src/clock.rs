//! The one wall clock: epoch milliseconds, what the table and Lambda's deadline speak.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The invocation's deadline in epoch milliseconds. Lambda sends it as such; `cargo lambda
/// watch` sends a duration (600000), which would read as long past: a deadline not in the
/// future is not a deadline, and `default` from now is assumed.
pub fn deadline_ms(sent_epoch_ms: u64, default: Duration) -> i64 {
    let now = now_ms();
    match i64::try_from(sent_epoch_ms) {
        Ok(deadline) if deadline > now => deadline,
        _ => now + default.as_millis() as i64,
    }
}

/// The wall-clock time, in epoch milliseconds, of the monotonic `instant` (now, if it is
/// past): the inverse of [`instant_at`].
pub fn epoch_ms_of(instant: Instant) -> i64 {
    now_ms()
        + instant
            .saturating_duration_since(Instant::now())
            .as_millis() as i64
}

/// The monotonic instant of the wall-clock time `epoch_ms` (now, if it is past).
pub fn instant_at(epoch_ms: i64) -> Instant {
    let left = epoch_ms.saturating_sub(now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_past_is_replaced_by_the_default() {
        let now = now_ms();
        let in_ten = (now + 10_000) as u64;
        let default = Duration::from_secs(20);
        assert_eq!(deadline_ms(in_ten, default), in_ten as i64);
        for unusable in [600_000, 0, u64::MAX] {
            let deadline = deadline_ms(unusable, default);
            assert!(
                (now + 19_000..now + 21_000).contains(&deadline),
                "{unusable} -> {deadline}"
            );
        }
    }
}
