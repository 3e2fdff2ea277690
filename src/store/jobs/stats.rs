//! Counts and listings of jobs: the depth gauge, the operators' queue overview, and the job
//! list. Rows are plain data (times in Unix ms, JSON as text); `api` shapes the views.

use sqlx::Row;

use crate::store::{Db, DbResult};

/// The state of one job, if it exists.
pub async fn state_of(db: &Db, id: &str) -> DbResult<Option<String>> {
    sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await
}

/// Counts of unfinished and dead jobs by queue and state (`ready`, `scheduled`, `retrying`,
/// `running`, `dead`), for the depth gauge every few seconds: each part reads only a partial
/// index, never the finished jobs. Queued jobs handed to a broker are `ready`.
pub async fn open_counts(db: &Db, now_ms: i64) -> DbResult<Vec<(String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT queue,
             CASE WHEN run_at > $1 AND attempts > 0 THEN 'retrying'
                  WHEN run_at > $1 THEN 'scheduled'
                  ELSE 'ready' END AS bucket,
             COUNT(*) AS n
         FROM jobs WHERE state = 'queued' AND NOT published GROUP BY queue, bucket
         UNION ALL
         SELECT queue, 'ready' AS bucket, COUNT(*) AS n
         FROM jobs WHERE state = 'queued' AND published GROUP BY queue
         UNION ALL
         SELECT queue, 'running' AS bucket, COUNT(*) AS n
         FROM jobs WHERE state = 'running' GROUP BY queue
         UNION ALL
         SELECT queue, 'dead' AS bucket, COUNT(*) AS n
         FROM jobs WHERE state = 'dead' GROUP BY queue",
    )
    .bind(now_ms)
    .fetch_all(db.pool())
    .await?;
    let mut counts: Vec<(String, String, i64)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let (queue, bucket, n): (String, String, i64) = (
            row.try_get("queue")?,
            row.try_get("bucket")?,
            row.try_get("n")?,
        );
        match counts
            .iter_mut()
            .find(|(q, b, _)| *q == queue && *b == bucket)
        {
            Some((_, _, total)) => *total += n,
            None => counts.push((queue, bucket, n)),
        }
    }
    Ok(counts)
}

/// Finished jobs by queue (kept until pruned), for `/v1/admin/queues`.
pub async fn done_counts(db: &Db) -> DbResult<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT queue, COUNT(*) AS n FROM jobs WHERE state = 'done' GROUP BY queue")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("queue")?, r.try_get("n")?)))
        .collect()
}

/// Jobs finished in the last `window_ms` per queue (throughput in the overview).
pub async fn recently_done(db: &Db, since_ms: i64) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT queue, COUNT(*) AS n FROM jobs WHERE state = 'done' AND finished_at >= $1 GROUP BY queue",
    )
    .bind(since_ms)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("queue")?, r.try_get("n")?)))
        .collect()
}

/// A job row as stored: times in Unix ms (service clock), history and payload as JSON text.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub key: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    /// Every failed attempt, a JSON array of `{attempt, started_at, finished_at, error}`.
    pub history: String,
    pub payload: String,
    pub run_at_ms: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Jobs in id order after `after`, filtered by state and queue.
pub async fn list(
    db: &Db,
    state: Option<&str>,
    queue: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> DbResult<Vec<JobRow>> {
    // The state is one of a few words, written into the text so the partial index of its
    // rows can serve it (`jobs_dead`: the operator's usual question).
    let state_filter = match state {
        Some(s @ ("queued" | "running" | "done" | "dead")) => format!("state = '{s}'"),
        Some(_) => "FALSE".to_string(),
        None => "TRUE".to_string(),
    };
    let sql = format!(
        "SELECT id, queue, kind, idem_key, state, attempts, max_attempts, last_error, history, payload,
             run_at, created_at, updated_at
         FROM jobs WHERE {state_filter} AND ($1 = '' OR queue = $1) AND id > $2
         ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(queue.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(JobRow {
                id: r.try_get("id")?,
                queue: r.try_get("queue")?,
                kind: r.try_get("kind")?,
                key: r.try_get("idem_key")?,
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                max_attempts: r.try_get("max_attempts")?,
                last_error: r.try_get("last_error")?,
                history: r.try_get("history")?,
                payload: r.try_get("payload")?,
                run_at_ms: r.try_get("run_at")?,
                created_at_ms: r.try_get("created_at")?,
                updated_at_ms: r.try_get("updated_at")?,
            })
        })
        .collect()
}
