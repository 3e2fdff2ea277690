//! `face.verify`: asks the face provider about a certification; passed approves the filing
//! (and tells filer and owner), failed asks for documents. A timeout or 5xx is retried,
//! never read as a failure of the person.

use serde::{Deserialize, Serialize};

use super::notify_decision::NotifyDecision;
use crate::domain::filing::FilingStatus;
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::filings;

#[derive(Debug, Serialize, Deserialize)]
pub struct FaceVerify {
    pub filing_id: String,
    pub certify_id: String,
}

impl Job for FaceVerify {
    type Context = Services;
    const NAME: &'static str = "face.verify";
    const QUEUE: &'static str = "face";

    fn key(&self) -> String {
        format!("{}:{}", self.filing_id, self.certify_id)
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
        let filing = filings::load_for_update(ctx.db(), &mut tx, &self.filing_id).await?;
        let now = ctx.clock().now_ms();
        if let Some(f) = filing.filter(|f| f.status == FilingStatus::CodeVerified) {
            if verdict.passed {
                filings::transition(&mut tx, &f, FilingStatus::Approved, now, "face_passed")
                    .await?;
                let notify = NotifyDecision {
                    filing_id: f.id.clone(),
                    decision: "approved".into(),
                };
                ctx.queue().enqueue(&mut tx, &notify, now).await?;
            } else {
                filings::transition(
                    &mut tx,
                    &f,
                    FilingStatus::DocumentsRequired,
                    now,
                    "face_failed",
                )
                .await?;
            }
        }
        tx.commit().await?;
        ctx.queue().wake();
        Ok(Outcome::Done)
    }
}
