//! Leases: claiming due jobs (embedded transport) or the jobs of one AMQP message, renewing
//! a long job's lease, handing held jobs back at shutdown, and rescuing the jobs of workers
//! that died. Leases are real time; due times are the service clock.

use crate::store::{Backend, Db, DbResult};

use super::{CLAIMED_COLUMNS, ClaimedJob, claimed};

/// Claims up to `limit` due jobs of `queue` (`jobs_waiting`; the embedded transport never
/// publishes, see [`adopt_published`]). `now_ms` is the service clock;
/// leases are real time (a crashed worker's jobs come back through [`rescue_expired`]).
pub async fn claim(
    db: &Db,
    queue: &str,
    limit: i64,
    now_ms: i64,
    real_now_ms: i64,
    lease_ms: i64,
    worker: &str,
) -> DbResult<Vec<ClaimedJob>> {
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $3,
             worker = $4, started_at = $2, updated_at = $2
         WHERE id IN (SELECT id FROM jobs WHERE queue = $1 AND state = 'queued' AND NOT published
             AND run_at <= $2 ORDER BY run_at LIMIT $5 {lock})
         RETURNING {CLAIMED_COLUMNS}"
    );
    // One statement: atomic on its own (SQLite takes its write lock for it).
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(queue)
        .bind(now_ms)
        .bind(real_now_ms + lease_ms)
        .bind(worker)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(claimed).collect()
}

/// Claims the jobs among `ids` (one AMQP message) in one statement: queued ones, and running
/// ones whose lease ran out, or, with `steal`, running ones whatever their lease (the broker
/// redelivered the message, so the channel that held them is gone). The state test is a
/// CASE so that no partial index of states is chosen over the primary key (with young
/// statistics the planner did, reading every queued row per claim).
pub async fn claim_many(
    db: &Db,
    ids: &[String],
    now_ms: i64,
    real_now_ms: i64,
    lease_ms: i64,
    worker: &str,
    steal: bool,
) -> DbResult<Vec<ClaimedJob>> {
    let mut claimed_jobs = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 6)).collect();
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $2,
                 worker = $3, started_at = $4, updated_at = $4
             WHERE id IN ({})
                 AND CASE state WHEN 'queued' THEN TRUE WHEN 'running' THEN lease_until < $1 OR $5
                     ELSE FALSE END
             RETURNING {CLAIMED_COLUMNS}",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(real_now_ms)
            .bind(real_now_ms + lease_ms)
            .bind(worker)
            .bind(now_ms)
            .bind(steal);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(db.pool()).await? {
            claimed_jobs.push(claimed(&row)?);
        }
    }
    Ok(claimed_jobs)
}

/// Extends a running job's lease (a long job's heartbeat).
pub async fn renew_lease(db: &Db, id: &str, lease_until_ms: i64) -> DbResult<()> {
    sqlx::query("UPDATE jobs SET lease_until = $2 WHERE id = $1 AND state = 'running'")
        .bind(id)
        .bind(lease_until_ms)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Hands back the jobs this worker holds (graceful shutdown): queued again, the attempt
/// not counted.
/// `queue` limits it to one queue's jobs (`None`: all this worker holds).
pub async fn release_held(
    db: &Db,
    worker: &str,
    queue: Option<&str>,
    now_ms: i64,
) -> DbResult<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL,
             published = $3, updated_at = $2
         WHERE worker = $1 AND state = 'running' AND ($4 = '' OR queue = $4)",
    )
    .bind(worker)
    .bind(now_ms)
    .bind(false)
    .bind(queue.unwrap_or(""))
    .execute(db.pool())
    .await?
    .rows_affected())
}

/// Takes back queued jobs that were handed to a broker (a deployment that moved from AMQP to
/// the embedded transport), so embedded workers see them; returns how many.
pub async fn adopt_published(db: &Db, now_ms: i64) -> DbResult<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET published = $1, updated_at = $2 WHERE state = 'queued' AND published",
    )
    .bind(false)
    .bind(now_ms)
    .execute(db.pool())
    .await?
    .rows_affected())
}

/// Running jobs whose lease expired (their worker died) go back to the queue unpublished,
/// so the AMQP relay sends them again.
pub async fn rescue_expired(db: &Db, real_now_ms: i64, now_ms: i64) -> DbResult<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'queued', published = $3, lease_until = NULL, updated_at = $2
         WHERE state = 'running' AND lease_until < $1",
    )
    .bind(real_now_ms)
    .bind(now_ms)
    .bind(false)
    .execute(db.pool())
    .await?
    .rows_affected())
}
