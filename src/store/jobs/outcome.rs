//! How a run ends: the effect recorded with the job done (one transaction), done, retried
//! later, or dead with every attempt's error; an operator's replay of a dead job; and the
//! pruning of finished jobs and old effect records.

use crate::store::{Backend, Db, DbResult, Tx};

/// Records that the effect of (kind, key) is committed and marks job `job_id` done, in the
/// effect's transaction; false (and nothing written) when the effect was already recorded.
/// One statement on PostgreSQL.
pub async fn record_effect_and_done(
    tx: &mut Tx,
    backend: Backend,
    kind: &str,
    key: &str,
    (job_id, attempt): (&str, i64),
    now_ms: i64,
) -> DbResult<bool> {
    match backend {
        Backend::Postgres => {
            let recorded: i64 = sqlx::query_scalar(
                "WITH effect AS (
                     INSERT INTO job_effects (kind, idem_key, done_at) VALUES ($1, $2, $3)
                     ON CONFLICT (kind, idem_key) DO NOTHING RETURNING 1),
                 done AS (
                     UPDATE jobs SET state = 'done', attempts = $5, finished_at = $3,
                         updated_at = $3, lease_until = NULL
                     WHERE id = $4 AND state IN ('running', 'queued')
                         AND EXISTS (SELECT 1 FROM effect))
                 SELECT COUNT(*) FROM effect",
            )
            .bind(kind)
            .bind(key)
            .bind(now_ms)
            .bind(job_id)
            .bind(attempt)
            .fetch_one(&mut **tx)
            .await?;
            Ok(recorded == 1)
        }
        Backend::Sqlite => {
            let recorded = sqlx::query(
                "INSERT INTO job_effects (kind, idem_key, done_at) VALUES ($1, $2, $3)
                 ON CONFLICT (kind, idem_key) DO NOTHING",
            )
            .bind(kind)
            .bind(key)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if recorded {
                set_done(&mut **tx, job_id, attempt, now_ms).await?;
            }
            Ok(recorded)
        }
    }
}

pub async fn mark_done(db: &Db, id: &str, attempts: i64, now_ms: i64) -> DbResult<()> {
    set_done(db.pool(), id, attempts, now_ms).await
}

/// A running (or, from a first AMQP delivery, still queued) job is done.
async fn set_done(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: &str,
    attempts: i64,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'done', attempts = $3, finished_at = $2, updated_at = $2,
             lease_until = NULL
         WHERE id = $1 AND state IN ('running', 'queued')",
    )
    .bind(id)
    .bind(now_ms)
    .bind(attempts)
    .execute(executor)
    .await?;
    Ok(())
}

/// Back to the queue after a failed attempt, due again at `run_at_ms`.
#[allow(clippy::too_many_arguments)]
pub async fn mark_retry(
    db: &Db,
    id: &str,
    attempts: i64,
    run_at_ms: i64,
    error: &str,
    history: &str,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = $7, run_at = $2, last_error = $3,
             history = $4, published = $6, lease_until = NULL, updated_at = $5
         WHERE id = $1 AND state IN ('running', 'queued')",
    )
    .bind(id)
    .bind(run_at_ms)
    .bind(error)
    .bind(history)
    .bind(now_ms)
    .bind(false)
    .bind(attempts)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn mark_dead(
    db: &Db,
    id: &str,
    attempts: i64,
    error: &str,
    history: &str,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'dead', attempts = $5, last_error = $2, history = $3,
             finished_at = $4, lease_until = NULL, updated_at = $4
         WHERE id = $1 AND state IN ('running', 'queued')",
    )
    .bind(id)
    .bind(error)
    .bind(history)
    .bind(now_ms)
    .bind(attempts)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A dead job back to the queue (operator replay), with a fresh set of attempts.
pub async fn requeue_dead(tx: &mut Tx, id: &str, now_ms: i64) -> DbResult<bool> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, published = $3,
             finished_at = NULL, updated_at = $2
         WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .bind(now_ms)
    .bind(false)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Drops finished jobs and old effect records (maintenance).
pub async fn prune(db: &Db, done_before_ms: i64, effects_before_ms: i64) -> DbResult<u64> {
    let mut tx = db.begin().await?;
    let jobs = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND finished_at < $1")
        .bind(done_before_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM job_effects WHERE done_at < $1")
        .bind(effects_before_ms)
        .execute(&mut *tx)
        .await?;
    crate::store::idempotency::prune(&mut tx, effects_before_ms).await?;
    tx.commit().await?;
    Ok(jobs)
}

/// True when the effect of (kind, key) is already committed (for handlers whose outside
/// call must not be repeated, such as an SMS: they look before they call).
pub async fn effect_done(db: &Db, kind: &str, key: &str) -> DbResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE kind = $1 AND idem_key = $2")
            .bind(kind)
            .bind(key)
            .fetch_one(db.pool())
            .await?;
    Ok(n > 0)
}

/// The dead job of (`kind`, `key`) back to the queue with a fresh set of attempts (a caller
/// asks again for the work it stands for); true when there was one.
pub async fn requeue_dead_by_key(
    tx: &mut Tx,
    kind: &str,
    key: &str,
    now_ms: i64,
) -> DbResult<bool> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $3, published = $4,
             finished_at = NULL, updated_at = $3
         WHERE kind = $1 AND idem_key = $2 AND state = 'dead'",
    )
    .bind(kind)
    .bind(key)
    .bind(now_ms)
    .bind(false)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}
