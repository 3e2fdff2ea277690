//! SQL of the jobs table (the outbox, and the queue itself on the embedded transport) and of
//! the effects record. Every state change of a job is one statement here.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, DbResult, Tx};

/// A job as a worker holds it: claimed from the table, or carried whole by an AMQP message
/// (then `attempts` counts this run too, and the row is still `queued` while it runs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClaimedJob {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub idem_key: String,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub history: String,
}

const CLAIMED_COLUMNS: &str =
    "id, queue, kind, idem_key, payload, attempts, max_attempts, run_at, history";

fn claimed(row: &AnyRow) -> DbResult<ClaimedJob> {
    Ok(ClaimedJob {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        idem_key: row.try_get("idem_key")?,
        payload: row.try_get("payload")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        history: row.try_get("history")?,
    })
}

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
             SELECT COUNT(*) FROM (SELECT pg_notify('beian_jobs', queue) FROM added) AS notified"
        ),
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(super::new_id())
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
                      woken AS (SELECT pg_notify('beian_jobs', queue) FROM (SELECT DISTINCT queue FROM added) AS q)
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
                .bind(super::new_id())
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

/// `NOTIFY channel, payload` (PostgreSQL), delivered when the transaction commits.
pub async fn notify(tx: &mut Tx, channel: &str, payload: &str) -> DbResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

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

/// The state of one job, if it exists.
pub async fn state_of(db: &Db, id: &str) -> DbResult<Option<String>> {
    sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await
}

/// Takes up to `limit` due, unpublished jobs for the AMQP relay (in no particular order:
/// ordering is not promised, and sorting a large backlog on every batch cost more than the
/// rest of the relay): marks them
/// published in the relay's transaction and returns (id, queue). The relay commits only once
/// the broker confirmed every message; otherwise it rolls back and the rows are sent again.
/// One relay works at a time: a transaction-scoped advisory lock on PostgreSQL (returns
/// nothing when another relay holds it), the single writer on SQLite.
pub async fn take_unpublished(
    tx: &mut Tx,
    backend: Backend,
    now_ms: i64,
    limit: i64,
) -> DbResult<Vec<ClaimedJob>> {
    if backend == Backend::Postgres {
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut **tx)
            .await?;
        if !mine {
            return Ok(Vec::new());
        }
    }
    let sql = format!(
        "UPDATE jobs SET published = $1
         WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND NOT published
             AND run_at <= $2 LIMIT $3)
         RETURNING {CLAIMED_COLUMNS}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(true)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(claimed).collect()
}

/// The advisory lock key of the AMQP relay ("beian relay").
const RELAY_LOCK: i64 = 0x6265_6961_6e72_6c79;

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

/// A job as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub key: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    /// Every failed attempt: `{attempt, started_at, finished_at, error}`.
    #[schema(value_type = Vec<Object>)]
    pub history: serde_json::Value,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub run_at: String,
    pub created_at: String,
    pub updated_at: String,
}

pub async fn list(
    db: &Db,
    state: Option<&str>,
    queue: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> DbResult<Vec<JobView>> {
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
            let ms = |c: &str| -> DbResult<String> { Ok(crate::clock::rfc3339(r.try_get(c)?)) };
            Ok(JobView {
                id: r.try_get("id")?,
                queue: r.try_get("queue")?,
                kind: r.try_get("kind")?,
                key: r.try_get("idem_key")?,
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                max_attempts: r.try_get("max_attempts")?,
                last_error: r.try_get("last_error")?,
                history: serde_json::from_str(&r.try_get::<String, _>("history")?)
                    .unwrap_or_default(),
                payload: serde_json::from_str(&r.try_get::<String, _>("payload")?)
                    .unwrap_or_default(),
                run_at: ms("run_at")?,
                created_at: ms("created_at")?,
                updated_at: ms("updated_at")?,
            })
        })
        .collect()
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
    super::idempotency::prune(&mut tx, effects_before_ms).await?;
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
