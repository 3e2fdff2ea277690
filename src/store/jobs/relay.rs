//! The AMQP outbox relay's SQL: taking due, unpublished jobs under the relay's lock, giving
//! back what the broker did not confirm, and publishing again what the broker lost.

use crate::store::{Backend, Db, DbResult, Tx};

use super::{CLAIMED_COLUMNS, ClaimedJob, claimed};

/// Takes up to `limit` due, unpublished jobs for the AMQP relay (in no particular order:
/// ordering is not promised, and sorting a large backlog on every batch cost more than the
/// rest of the relay): marks them published (their `updated_at` is when they were handed
/// over) and returns them. The relay commits this at once, before it talks to the broker,
/// so no lock is held across a network wait; what the broker does not confirm is given
/// back with [`unpublish`]. One relay takes at a time: a transaction-scoped advisory lock on
/// PostgreSQL (returns nothing when another relay holds it), the single writer on SQLite.
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
        "UPDATE jobs SET published = $1, updated_at = $2
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

/// Gives jobs the broker did not confirm back to the outbox (still queued ones only), so the
/// relay sends them again; returns how many.
pub async fn unpublish(db: &Db, ids: &[String]) -> DbResult<u64> {
    let mut given_back = 0;
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "UPDATE jobs SET published = $1
             WHERE state = 'queued' AND published AND id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(false);
        for id in chunk {
            query = query.bind(id);
        }
        given_back += query.execute(db.pool()).await?.rows_affected();
    }
    Ok(given_back)
}

/// Jobs handed to the broker before `handed_before_ms` and still queued go back to the
/// outbox to be published again (the broker lost their message after confirming it);
/// returns how many. A second copy is harmless: a job already finished is skipped.
pub async fn republish_stale(db: &Db, handed_before_ms: i64, now_ms: i64) -> DbResult<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET published = $1, updated_at = $2
         WHERE state = 'queued' AND published AND updated_at < $3",
    )
    .bind(false)
    .bind(now_ms)
    .bind(handed_before_ms)
    .execute(db.pool())
    .await?
    .rows_affected())
}

/// The advisory lock key of the AMQP relay ("beian relay").
const RELAY_LOCK: i64 = 0x6265_6961_6e72_6c79;
