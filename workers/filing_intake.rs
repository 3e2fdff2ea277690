//! `filing.intake`: runs the filing lifecycle's intake (`filings::intake`) as a job, its
//! effect committed with the record of the filing id.

use crate::filings::FilingError;
pub use crate::filings::FilingIntake;
use crate::filings::intake::{Intake, take_in};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;

/// How the lifecycle's refusals end a job: a database error is retried, anything else is
/// bad data and fails at once.
impl From<FilingError> for JobError {
    fn from(e: FilingError) -> Self {
        match e {
            FilingError::Db(e) => e.into(),
            other => JobError::permanent(other),
        }
    }
}

impl Job for FilingIntake {
    type Context = Services;
    const NAME: &'static str = "filing.intake";
    const QUEUE: &'static str = "filing";
    /// Intake locks the filer, the vehicle and the owner's phone (advisory locks on
    /// PostgreSQL): it commits alone, never in a group commit with other jobs' locks.
    const COMMITS_ALONE: bool = true;

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let now = ctx.clock().now_ms();
        let done = match take_in(ctx.app(), &mut tx, &self.filing_id, now).await {
            Err(FilingError::NotFound) => {
                return Err(JobError::permanent(format!(
                    "filing {} does not exist",
                    self.filing_id
                )));
            }
            other => other?,
        };
        tx.commit().await?;
        match done {
            Intake::Skipped | Intake::Rejected(_) => {}
            Intake::Approved => ctx.queue().wake(),
            Intake::CodeSent => {
                ctx.queue().wake();
                ctx.queue().timers_changed();
            }
        }
        Ok(Outcome::Done)
    }
}
