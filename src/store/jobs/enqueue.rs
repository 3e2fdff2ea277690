//! Into the outbox: adding jobs in the caller's transaction (one, or many with multi-row
//! inserts), each (kind, key) at most once. On PostgreSQL the insert also wakes other
//! processes with `NOTIFY` on [`WAKE_CHANNEL`], delivered at commit.

use sqlx::Row;

use crate::store::{Backend, DbResult, Tx};

/// The `LISTEN`/`NOTIFY` channel that says "work was enqueued" (payload: the queue).
pub const WAKE_CHANNEL: &str = "beian_jobs";

/// Adds a job unless one with its (kind, key) exists; true when added. On PostgreSQL the
/// same statement sends `NOTIFY beian_jobs` (delivered at commit) to wake other processes.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    backend: Backend,
    kind: &str,
    queue: &str,
    key: &str,
    payload: &str,
    max_attempts: u32,
    run_at_ms: i64,
    now_ms: i64,
) -> DbResult<bool> {
    const INSERT: &str =
        "INSERT INTO jobs (id, queue, kind, idem_key, payload, state, attempts, max_attempts,
             run_at, published, history, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, '[]', $9, $9)
         ON CONFLICT (kind, idem_key) DO NOTHING";
    let sql = match backend {
        Backend::Sqlite => INSERT.to_string(),
        Backend::Postgres => format!(
            "WITH added AS ({INSERT} RETURNING queue)
             SELECT COUNT(*) FROM (SELECT pg_notify('{WAKE_CHANNEL}', queue) FROM added) AS notified"
        ),
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(crate::store::new_id())
        .bind(queue)
        .bind(kind)
        .bind(key)
        .bind(payload)
        .bind(max_attempts as i64)
        .bind(run_at_ms)
        .bind(false)
        .bind(now_ms);
    match backend {
        Backend::Sqlite => Ok(query.execute(&mut **tx).await?.rows_affected() == 1),
        Backend::Postgres => {
            let row = query.fetch_one(&mut **tx).await?;
            Ok(row.try_get::<i64, _>(0)? == 1)
        }
    }
}

/// A job to add with [`insert_many`]: (kind, queue, key, payload).
pub type NewJob<'a> = (&'a str, &'a str, String, String);

/// Adds many jobs with multi-row inserts (each (kind, key) at most once); returns how many
/// were added. On PostgreSQL one `NOTIFY beian_jobs` per statement wakes other processes.
pub async fn insert_many(
    tx: &mut Tx,
    backend: Backend,
    jobs: &[NewJob<'_>],
    max_attempts: u32,
    run_at_ms: i64,
    now_ms: i64,
) -> DbResult<u64> {
    let mut added = 0;
    for chunk in jobs.chunks(500) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 5 + 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, 'queued', 0, $1, $2, $3, '[]', $4, $4)",
                    b,
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4
                )
            })
            .collect();
        let insert = format!(
            "INSERT INTO jobs (id, queue, kind, idem_key, payload, state, attempts, max_attempts,
                 run_at, published, history, created_at, updated_at)
             VALUES {} ON CONFLICT (kind, idem_key) DO NOTHING",
            rows.join(", ")
        );
        let sql = match backend {
            Backend::Sqlite => insert,
            Backend::Postgres => format!(
                "WITH added AS ({insert} RETURNING queue),
                      woken AS (SELECT pg_notify('{WAKE_CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM added) AS q)
                 SELECT (SELECT COUNT(*) FROM added) + 0 * (SELECT COUNT(*) FROM woken)"
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(max_attempts as i64)
            .bind(run_at_ms)
            .bind(false)
            .bind(now_ms);
        for (kind, queue, key, payload) in chunk {
            query = query
                .bind(crate::store::new_id())
                .bind(*queue)
                .bind(*kind)
                .bind(key.as_str())
                .bind(payload.as_str());
        }
        added += match backend {
            Backend::Sqlite => query.execute(&mut **tx).await?.rows_affected(),
            Backend::Postgres => query.fetch_one(&mut **tx).await?.try_get::<i64, _>(0)? as u64,
        };
    }
    Ok(added)
}
