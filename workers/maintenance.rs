//! `maintenance.prune` (cron): drops finished jobs after a day and effect records and
//! Idempotency-Key answers after a week. Rescuing stuck work is the leases' job.

use serde::{Deserialize, Serialize};

use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Prune {
    pub slot_ms: i64,
}

impl Job for Prune {
    type Context = Services;
    const NAME: &'static str = "maintenance.prune";
    const QUEUE: &'static str = "maintenance";

    fn key(&self) -> String {
        format!("maintenance_prune:{}", self.slot_ms)
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let now = ctx.clock().now_ms();
        let pruned = crate::store::jobs::prune(ctx.db(), now - DAY_MS, now - 7 * DAY_MS).await?;
        tracing::info!(pruned, "finished jobs pruned");
        Ok(Outcome::Done)
    }
}
