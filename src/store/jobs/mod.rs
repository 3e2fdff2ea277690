//! SQL of the jobs table (the outbox, and the queue itself on the embedded transport) and of
//! the effects record, one file per stage of a job's life: [`enqueue`] (into the outbox),
//! [`claim`] (leases: taken, renewed, handed back, rescued), [`outcome`] (done, retry, dead,
//! the effects record, replay, pruning), [`relay`] (the AMQP outbox relay) and [`stats`]
//! (counts and listings for gauges and operators). Every state change of a job is one
//! statement. Rows come back as plain data (times in Unix ms): views belong to `api`.

pub mod claim;
pub mod enqueue;
pub mod outcome;
pub mod relay;
pub mod stats;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::DbResult;

pub use claim::{adopt_published, claim, claim_many, release_held, renew_lease, rescue_expired};
pub use enqueue::{NewJob, WAKE_CHANNEL, insert, insert_many};
pub use outcome::{
    effect_done, mark_dead, mark_done, mark_retry, prune, record_effect_and_done, requeue_dead,
    requeue_dead_by_key,
};
pub use relay::{republish_stale, take_unpublished, unpublish};
pub use stats::{JobRow, done_counts, list, open_counts, recently_done, state_of};

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
