//! The service's notion of now. Everything that reads time takes a [`Clock`]: real time in
//! production, or the manual test clock, which is real time plus an offset that only grows.
//! The offset lives in the database so that every process (api, worker, scheduler) agrees.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::Notify;

/// Asia/Shanghai, the zone of every date the domain talks about.
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

struct Inner {
    manual: bool,
    /// Milliseconds added to real time (manual clock only).
    offset_ms: AtomicI64,
    /// Woken whenever the offset moves, so timers due "now" fire at once.
    moved: Notify,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::build(false, 0)
    }

    /// A manual clock starting `offset_ms` ahead of real time.
    pub fn manual(offset_ms: i64) -> Clock {
        Clock::build(true, offset_ms)
    }

    fn build(manual: bool, offset_ms: i64) -> Clock {
        Clock {
            inner: Arc::new(Inner {
                manual,
                offset_ms: AtomicI64::new(offset_ms),
                moved: Notify::new(),
            }),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.inner.manual
    }

    pub fn now(&self) -> DateTime<Utc> {
        let offset = self.inner.offset_ms.load(Ordering::Acquire);
        Utc::now() + chrono::Duration::milliseconds(offset)
    }

    /// Now as Unix milliseconds, the form the store keeps.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    pub fn offset_ms(&self) -> i64 {
        self.inner.offset_ms.load(Ordering::Acquire)
    }

    /// Adopts an offset read from the database; only ever moves forward.
    pub fn adopt_offset(&self, offset_ms: i64) {
        let previous = self.inner.offset_ms.fetch_max(offset_ms, Ordering::AcqRel);
        if offset_ms > previous {
            self.inner.moved.notify_waiters();
        }
    }

    /// Resolves when the manual clock moves (never, for the system clock).
    pub async fn moved(&self) {
        self.inner.moved.notified().await
    }
}

/// Unix milliseconds to a UTC time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// RFC 3339 with the +08:00 offset, as the interface shows times.
pub fn rfc3339(ms: i64) -> String {
    from_ms(ms)
        .with_timezone(&shanghai())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_runs_from_its_offset_and_only_moves_forward() {
        let clock = Clock::manual(3_600_000);
        let ahead = clock.now() - Utc::now();
        assert!((ahead.num_milliseconds() - 3_600_000).abs() < 1000);
        clock.adopt_offset(1_000);
        assert_eq!(clock.offset_ms(), 3_600_000);
        clock.adopt_offset(7_200_000);
        assert_eq!(clock.offset_ms(), 7_200_000);
    }

    #[test]
    fn times_show_in_shanghai() {
        assert_eq!(rfc3339(0), "1970-01-01T08:00:00.000+08:00");
    }
}
