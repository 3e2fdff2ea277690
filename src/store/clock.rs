//! The manual test clock's shared offset (one row), so a `PUT /v1/test/clock` on any process
//! moves time for every worker and scheduler.

use super::{Db, DbResult};

pub async fn load_offset(db: &Db) -> DbResult<Option<i64>> {
    sqlx::query_scalar("SELECT offset_ms FROM test_clock WHERE id = 1")
        .fetch_optional(db.pool())
        .await
}

/// Stores the offset if it is larger than the stored one (the clock only moves forward);
/// returns the offset in force afterwards.
pub async fn raise_offset(db: &Db, offset_ms: i64) -> DbResult<i64> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO test_clock (id, offset_ms) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET offset_ms = CASE
             WHEN excluded.offset_ms > test_clock.offset_ms THEN excluded.offset_ms
             ELSE test_clock.offset_ms END",
    )
    .bind(offset_ms)
    .execute(&mut *tx)
    .await?;
    let now: i64 = sqlx::query_scalar("SELECT offset_ms FROM test_clock WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(now)
}
