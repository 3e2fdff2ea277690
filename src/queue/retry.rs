//! Retry policy: exponential backoff with full jitter (AWS architecture blog's "full
//! jitter"): the n-th retry waits a random time in [0, min(cap, base * 2^(n-1))].

use rand::Rng;

use crate::config::QueueSettings;

/// The delay before the next attempt after `attempts` failed ones.
pub fn backoff_ms(settings: &QueueSettings, attempts: i64) -> i64 {
    let exponent = (attempts.max(1) - 1).min(40) as u32;
    let ceiling = settings
        .backoff_base_ms
        .saturating_mul(1u64 << exponent.min(40))
        .min(settings.backoff_cap_ms);
    if ceiling == 0 {
        return 0;
    }
    rand::rng().random_range(0..=ceiling) as i64
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
}
