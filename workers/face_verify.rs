//! `face.verify`: asks the face provider about a certification; the filing lifecycle
//! (`filings::face`) applies the verdict. A timeout or 5xx is retried, never read as a
//! failure of the person.

use crate::domain::filing::FilingStatus;
pub use crate::filings::FaceVerify;
use crate::filings::face::apply_verdict;
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::filings;

impl Job for FaceVerify {
    type Context = Services;
    const NAME: &'static str = "face.verify";
    const QUEUE: &'static str = "face";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(filing) = filings::find(ctx.db().pool(), &self.filing_id).await? else {
            return Err(JobError::permanent(format!(
                "filing {} does not exist",
                self.filing_id
            )));
        };
        if filing.status != FilingStatus::CodeVerified {
            return Ok(Outcome::Done);
        }
        let verdict = ctx
            .app()
            .face
            .verify(&self.certify_id, &filing.filer_id)
            .await
            .map_err(JobError::Retry)?;
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let now = ctx.clock().now_ms();
        apply_verdict(ctx.app(), &mut tx, &self.filing_id, verdict.passed, now).await?;
        tx.commit().await?;
        ctx.queue().wake();
        Ok(Outcome::Done)
    }
}
