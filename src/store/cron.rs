//! SQL of cron slots: a slot (schedule name, slot time) is claimed by inserting it, in the
//! transaction that enqueues its job, so it runs once however many schedulers run.

use super::{DbResult, Tx};

/// Claims `slot_ms` of schedule `name`; false when another process had it.
pub async fn claim_slot(tx: &mut Tx, name: &str, slot_ms: i64, now_ms: i64) -> DbResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO cron_slots (name, slot_at, claimed_at) VALUES ($1, $2, $3)
         ON CONFLICT (name, slot_at) DO NOTHING",
    )
    .bind(name)
    .bind(slot_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}
