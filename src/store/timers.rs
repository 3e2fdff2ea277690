//! SQL of durable timers: rows with a due time (service clock) and a job to enqueue, kept by
//! key. Scheduling (or moving) and cancelling happen in the caller's transaction; firing
//! takes due rows from `pending` to `fired` in the scheduler's transaction, with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (the single writer on SQLite), so each timer fires
//! once however many schedulers run.

use sqlx::Row;

use super::{Backend, Db, DbResult, Tx};

/// The `LISTEN`/`NOTIFY` channel that says "a timer was scheduled" (payload: its key).
pub const WAKE_CHANNEL: &str = "beian_timers";

/// A timer taken for firing: its job is enqueued in the same transaction.
#[derive(Debug, Clone)]
pub struct DueTimer {
    pub key: String,
    pub kind: String,
    pub payload: String,
    pub due_ms: i64,
}

/// Schedules (or moves) timer `key`; on PostgreSQL schedulers in other processes are woken
/// at commit.
pub async fn schedule(
    tx: &mut Tx,
    backend: Backend,
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
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(WAKE_CHANNEL)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Cancels timer `key` if it has not fired; true when it was pending.
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

/// Marks up to `limit` due timers fired in `tx` and returns them, earliest first.
pub async fn take_due(
    tx: &mut Tx,
    backend: Backend,
    now_ms: i64,
    limit: i64,
) -> DbResult<Vec<DueTimer>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE timers SET state = 'fired', fired_at = $1
         WHERE key IN (SELECT key FROM timers WHERE state = 'pending' AND due_at <= $1
             ORDER BY due_at LIMIT $2 {lock})
         RETURNING key, kind, payload, due_at"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DueTimer {
                key: row.try_get("key")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                due_ms: row.try_get("due_at")?,
            })
        })
        .collect()
}

/// The earliest pending due time, if any.
pub async fn next_due(db: &Db) -> DbResult<Option<i64>> {
    sqlx::query_scalar("SELECT MIN(due_at) FROM timers WHERE state = 'pending'")
        .fetch_one(db.pool())
        .await
}

/// How many timers have not fired (the pending gauge).
pub async fn pending_count(db: &Db) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE state = 'pending'")
        .fetch_one(db.pool())
        .await
}
