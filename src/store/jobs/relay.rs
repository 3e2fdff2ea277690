//! The AMQP outbox relay's SQL: taking due, unpublished jobs under the relay's lock.

use crate::store::{Backend, DbResult, Tx};

use super::{CLAIMED_COLUMNS, ClaimedJob, claimed};

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
