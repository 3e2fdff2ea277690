//! `review.sla_check` (timer): one SLA checkpoint of a review, applied by the review
//! lifecycle (`reviews::sla`) under the review's row lock: the at-risk flag, or the breach
//! and each further escalation, whose SMS to the supervisors go out through `sms.send`
//! with a `message_id` per (review, level, phone), so none is ever sent twice.

use crate::filings::jobs::SmsSend;
use crate::queue::{Job, JobContext, JobError, Outcome};
pub use crate::reviews::jobs::SlaCheck;
use crate::reviews::sla::{checkpoint, report_gauges};
use crate::services::Services;

impl Job for SlaCheck {
    type Context = Services;
    const NAME: &'static str = "review.sla_check";
    const QUEUE: &'static str = "review";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let now = ctx.clock().now_ms();
        let outcome = checkpoint(ctx.app(), &mut tx, &self, now).await?;
        for message in &outcome.texts {
            let send = SmsSend {
                message: message.clone(),
                code: None,
            };
            ctx.queue().enqueue(&mut tx, &send, now).await?;
        }
        tx.commit().await?;
        if !outcome.texts.is_empty() {
            ctx.queue().wake();
        }
        if outcome.scheduled {
            ctx.queue().timers_changed();
        }
        report_gauges(ctx.db()).await;
        Ok(Outcome::Done)
    }
}
