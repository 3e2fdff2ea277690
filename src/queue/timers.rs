//! Durable timers: rows with a due time (service clock), scheduled and cancelled by key in the
//! caller's transaction, fired by the scheduler. Firing moves a row from `pending` to `fired`
//! and enqueues its job in the same transaction, so each timer fires once however many
//! schedulers run (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite).

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::watch;

use crate::app::Services;
use crate::store::{Backend, DbResult, Tx};

pub async fn schedule(
    tx: &mut Tx,
    key: &str,
    kind: &str,
    payload: &str,
    due_ms: i64,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO timers (key, kind, payload, due_at, state, created_at)
         VALUES ($1, $2, $3, $4, 'pending', $5)
         ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, payload = excluded.payload,
             due_at = excluded.due_at, state = 'pending', fired_at = NULL",
    )
    .bind(key)
    .bind(kind)
    .bind(payload)
    .bind(due_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn cancel(tx: &mut Tx, key: &str) -> DbResult<bool> {
    Ok(
        sqlx::query("UPDATE timers SET state = 'cancelled' WHERE key = $1 AND state = 'pending'")
            .bind(key)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Fires up to `limit` due timers; returns how many fired.
pub async fn fire_due(services: &Services, limit: i64) -> DbResult<usize> {
    let now = services.clock.now_ms();
    let lock = match services.db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE timers SET state = 'fired', fired_at = $1
         WHERE key IN (SELECT key FROM timers WHERE state = 'pending' AND due_at <= $1
             ORDER BY due_at LIMIT $2 {lock})
         RETURNING key, kind, payload, due_at"
    );
    let mut tx = services.db.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    for row in &rows {
        let key: String = row.try_get("key")?;
        let kind: String = row.try_get("kind")?;
        let payload: String = row.try_get("payload")?;
        let due: i64 = row.try_get("due_at")?;
        // A kind this binary does not know (a rolling deploy) still becomes a job: it goes
        // dead with "no handler" where an operator can see and replay it, never lost.
        let queue = services.registry_queue(&kind).unwrap_or_else(|| {
            tracing::error!(timer = %key, kind = %kind, "timer of an unknown job kind");
            "maintenance"
        });
        services
            .queue
            .enqueue_raw(&mut tx, &kind, queue, &key, &payload, now, now)
            .await?;
        metrics::histogram!("beian_timer_lag_seconds").record((now - due).max(0) as f64 / 1000.0);
    }
    tx.commit().await?;
    if !rows.is_empty() {
        services.queue.wake();
    }
    Ok(rows.len())
}

/// The earliest pending due time, if any.
pub async fn next_due(services: &Services) -> DbResult<Option<i64>> {
    sqlx::query_scalar("SELECT MIN(due_at) FROM timers WHERE state = 'pending'")
        .fetch_one(services.db.pool())
        .await
}

pub async fn pending_count(services: &Services) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE state = 'pending'")
        .fetch_one(services.db.pool())
        .await
}

/// The scheduler's timer loop: fire what is due, then sleep until the next due time (at most
/// 250 ms, so timers set by other processes and clock moves are seen quickly), a local
/// schedule, a clock move, or shutdown.
pub async fn run(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let changed = services.queue.timers_changed_signal().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let fired = fire_due(&services, 500).await;
        let wait = match fired {
            Ok(n) if n > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                match next_due(&services).await {
                    Ok(Some(due)) => (due - services.clock.now_ms()).clamp(0, 250) as u64,
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
            _ = services.clock.moved() => {}
            _ = shutdown.changed() => {}
        }
    }
}
