//! The one retry policy, for stored jobs and for calls to outside parties alike:
//! exponential backoff with full jitter (AWS architecture blog's "full jitter"): the n-th
//! retry waits a random time in [0, min(cap, base * 2^(n-1))]. Jobs keep their attempts in
//! the database and ask [`backoff_ms`]; an in-process call to a provider retries with
//! `backon`, driven by the same [`RetryPolicy`] as a [`backon::BackoffBuilder`].

use std::time::Duration;

use rand::Rng;

use crate::config::QueueSettings;

/// The delay before the next attempt after `attempts` failed ones.
pub fn backoff_ms(settings: &QueueSettings, attempts: i64) -> i64 {
    RetryPolicy::of(settings).delay_ms(attempts)
}

/// Base, cap and number of attempts (from a queue's `[jobs.<queue>]` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub cap_ms: u64,
    pub max_attempts: u32,
}

impl RetryPolicy {
    pub fn of(settings: &QueueSettings) -> RetryPolicy {
        RetryPolicy {
            base_ms: settings.backoff_base_ms,
            cap_ms: settings.backoff_cap_ms,
            max_attempts: settings.max_attempts,
        }
    }

    /// The same policy for a call someone waits on (a checkout): at most `attempts` tries
    /// and no delay over `cap_ms` (a job that fails retries later with the full policy).
    pub fn bounded(self, attempts: u32, cap_ms: u64) -> RetryPolicy {
        RetryPolicy {
            base_ms: self.base_ms.min(cap_ms),
            cap_ms: self.cap_ms.min(cap_ms),
            max_attempts: self.max_attempts.min(attempts).max(1),
        }
    }

    /// The delay before the next attempt after `attempts` failed ones.
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        let exponent = (attempts.max(1) - 1).min(40) as u32;
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << exponent)
            .min(self.cap_ms);
        if ceiling == 0 {
            return 0;
        }
        rand::rng().random_range(0..=ceiling) as i64
    }
}

/// The delays of one call's retries under a [`RetryPolicy`] (`max_attempts - 1` of them).
#[derive(Debug)]
pub struct Delays {
    policy: RetryPolicy,
    failed: i64,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.failed + 1 >= self.policy.max_attempts as i64 {
            return None;
        }
        self.failed += 1;
        Some(Duration::from_millis(
            self.policy.delay_ms(self.failed) as u64
        ))
    }
}

impl backon::BackoffBuilder for RetryPolicy {
    type Backoff = Delays;

    fn build(self) -> Delays {
        Delays {
            policy: self,
            failed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_growing_ceiling_and_the_cap() {
        let s = QueueSettings {
            concurrency: 1,
            max_attempts: 10,
            backoff_base_ms: 2000,
            backoff_cap_ms: 60_000,
            prefetch: 1,
        };
        for attempt in 1..20 {
            let ceiling = (2000u64 << (attempt - 1).min(30)).min(60_000) as i64;
            for _ in 0..50 {
                let d = backoff_ms(&s, attempt);
                assert!(
                    (0..=ceiling).contains(&d),
                    "attempt {attempt}: {d} > {ceiling}"
                );
            }
        }
        let spread: std::collections::HashSet<i64> = (0..50).map(|_| backoff_ms(&s, 5)).collect();
        assert!(spread.len() > 10, "full jitter spreads the delays");
    }

    #[test]
    fn calls_get_the_same_policy_bounded() {
        use backon::BackoffBuilder;
        let s = QueueSettings {
            concurrency: 1,
            max_attempts: 10,
            backoff_base_ms: 2000,
            backoff_cap_ms: 60_000,
            prefetch: 1,
        };
        let policy = RetryPolicy::of(&s).bounded(3, 500);
        let delays: Vec<_> = policy.build().collect();
        assert_eq!(delays.len(), 2, "three tries, two waits");
        assert!(delays.iter().all(|d| d.as_millis() <= 500));
        assert_eq!(RetryPolicy::of(&s).build().count(), 9);
    }
}
