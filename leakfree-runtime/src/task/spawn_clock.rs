//! When a task was spawned, read cheaply.
//!
//! Every tracked spawn notes its time, and reports show it as the task's
//! age. A fine clock read (`Instant::now`, `CLOCK_MONOTONIC`) was the largest
//! single cost leakfree added to a spawn and join (7 % of it in a
//! `perf record` profile, about 30 ns). On Linux a spawn reads
//! `CLOCK_MONOTONIC_COARSE` instead, the kernel's time at its last tick,
//! which the vDSO returns without reading the time-stamp counter: an age is
//! then longer than the truth by at most one tick (1 to 10 ms, by the
//! kernel's `HZ`), which reports round away. Elsewhere a spawn reads
//! `Instant::now`.
//!
//! # Invariant
//! On Linux `Instant` is `CLOCK_MONOTONIC`, and the coarse clock is the same
//! clock cut to its last tick: a coarse reading is never later than a fine
//! one taken after it. Both are turned into nanoseconds since [`EPOCH`] (a
//! fine reading and the same moment as `CLOCK_MONOTONIC` nanoseconds), so an
//! age is a difference of two such numbers, saturating at zero.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// When a task was spawned, in 8 bytes (an `Instant` takes 16).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnInstant(u64);

/// The moment every spawn time counts from, as an `Instant` and, on Linux,
/// as `CLOCK_MONOTONIC` nanoseconds.
struct Epoch {
    instant: Instant,
    #[cfg(target_os = "linux")]
    monotonic_ns: u64,
}

static EPOCH: LazyLock<Epoch> = LazyLock::new(|| Epoch {
    instant: Instant::now(),
    #[cfg(target_os = "linux")]
    monotonic_ns: linux::read(libc::CLOCK_MONOTONIC),
});

impl SpawnInstant {
    /// Now, by the cheap clock.
    pub(crate) fn now() -> SpawnInstant {
        let epoch = &*EPOCH;
        #[cfg(target_os = "linux")]
        let since_epoch =
            linux::read(libc::CLOCK_MONOTONIC_COARSE).saturating_sub(epoch.monotonic_ns);
        #[cfg(not(target_os = "linux"))]
        // 2^64 ns is 584 years: the cast never truncates in practice.
        let since_epoch = Instant::now()
            .saturating_duration_since(epoch.instant)
            .as_nanos() as u64;
        SpawnInstant(since_epoch)
    }

    /// How long before `now` the task was spawned.
    pub(crate) fn age(self, now: Instant) -> Duration {
        let now = now.saturating_duration_since(EPOCH.instant);
        now.saturating_sub(Duration::from_nanos(self.0))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// Reads `clock` in nanoseconds.
    pub(super) fn read(clock: libc::clockid_t) -> u64 {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `time` is a valid, writable `timespec` for the call's
        // duration; `clock_gettime` writes only it.
        let status = unsafe { libc::clock_gettime(clock, &mut time) };
        if status != 0 {
            // Both clocks exist on every Linux since 2.6.32; should one be
            // refused, ages read as zero rather than the spawn failing.
            return 0;
        }
        (time.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(time.tv_nsec as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::SpawnInstant;

    #[test]
    fn an_age_is_never_negative_and_grows_with_time() {
        let spawned = SpawnInstant::now();
        let now = Instant::now();
        assert!(spawned.age(now) < Duration::from_secs(1));
        let later = now + Duration::from_secs(5);
        let age = spawned.age(later);
        assert!(age >= Duration::from_secs(5), "{age:?}");
        // The coarse clock lags by at most one tick (≤ 10 ms at HZ=100).
        assert!(
            age < Duration::from_secs(5) + Duration::from_millis(50),
            "{age:?}"
        );
    }
}
