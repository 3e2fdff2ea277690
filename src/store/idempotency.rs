//! `Idempotency-Key` answers. The answer is written in the same transaction as the effect it
//! describes, so a repeat either finds the whole effect and its answer, or neither.

use sqlx::Row;

use super::{DbResult, Tx};

/// An answer kept for a key: replayed as it was for a repeat with the same body.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

/// Looks the key up inside the transaction. A concurrent request with the same key that
/// misses it here loses at [`record`] (the insert waits for the first to commit on
/// PostgreSQL, and SQLite has one writer) and replays the first answer.
pub async fn find(tx: &mut Tx, scope: &str, key: &str) -> DbResult<Option<StoredAnswer>> {
    let row = sqlx::query(
        "SELECT request_hash, status, body, location FROM idempotency_keys
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        Ok(StoredAnswer {
            request_hash: r.try_get("request_hash")?,
            status: r.try_get::<i64, _>("status")? as u16,
            body: r.try_get("body")?,
            location: r.try_get("location")?,
        })
    })
    .transpose()
}

/// Records the answer; false when another request recorded one first (a race lost: the
/// caller rolls back and replays the winner's answer).
pub async fn record(
    tx: &mut Tx,
    scope: &str,
    key: &str,
    answer: &StoredAnswer,
    now_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, location, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(&answer.request_hash)
    .bind(answer.status as i64)
    .bind(&answer.body)
    .bind(answer.location.as_deref())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Drops answers older than `before_ms` (maintenance).
pub async fn prune(tx: &mut Tx, before_ms: i64) -> DbResult<u64> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}
