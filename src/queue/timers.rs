//! Durable timers: scheduled and cancelled by key in the caller's transaction (through
//! [`super::Queue`]), fired by the scheduler. Firing moves a row from `pending` to `fired`
//! and enqueues its job in the same transaction, so each timer fires once however many
//! schedulers run (the SQL is in `store::timers`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Runtime;
use crate::store::{DbResult, timers};

/// Fires up to `limit` due timers; returns how many fired.
pub async fn fire_due<C: Send + Sync + 'static>(
    runtime: &Runtime<C>,
    limit: i64,
) -> DbResult<usize> {
    let now = runtime.clock().now_ms();
    let mut tx = runtime.db().begin().await?;
    let due = timers::take_due(&mut tx, runtime.db().backend(), now, limit).await?;
    for timer in &due {
        // A kind this binary does not know (a rolling deploy) still becomes a job: it goes
        // dead with "no handler" where an operator can see and replay it, never lost.
        let queue = runtime.registry().queue_of(&timer.kind).unwrap_or_else(|| {
            tracing::error!(timer = %timer.key, kind = %timer.kind, "timer of an unknown job kind");
            "maintenance"
        });
        let job = (
            timer.kind.as_str(),
            queue,
            timer.key.clone(),
            timer.payload.clone(),
        );
        runtime.queue().enqueue_raw(&mut tx, &job, now, now).await?;
        metrics::histogram!("beian_timer_lag_seconds")
            .record((now - timer.due_ms).max(0) as f64 / 1000.0);
    }
    tx.commit().await?;
    if !due.is_empty() {
        runtime.queue().wake();
    }
    Ok(due.len())
}

/// The scheduler's timer loop: fire what is due, then sleep until the next due time (at most
/// 250 ms, so timers set by other processes and clock moves are seen quickly), a local
/// schedule, a clock move, or shutdown.
pub async fn run<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let changed = runtime.queue().timers_changed_signal().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let fired = fire_due(&runtime, 500).await;
        let wait = match fired {
            Ok(n) if n > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                match timers::next_due(runtime.db()).await {
                    Ok(Some(due)) => (due - runtime.clock().now_ms()).clamp(0, 250) as u64,
                    _ => 250,
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures % 30 == 0 {
                    tracing::warn!(error = %e, "cannot fire timers; retrying");
                }
                1000
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = &mut changed => {}
            _ = runtime.clock().moved() => {}
            _ = shutdown.changed() => {}
        }
    }
}
