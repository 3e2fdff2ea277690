//! `sms.send`: one message through the gateway, keyed by its `message_id` (event,
//! recipient). A finished send is recorded, so a duplicate delivery sends nothing; a crash
//! between the send and the record resends the same `message_id`, which the gateway dedups.
//! A filing code is derived at send time, so the job payload never holds it.

use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;

// The payload lives with the filing lifecycle that enqueues it (`filings::jobs`).
pub use crate::filings::jobs::{CodeRef, SmsSend};

impl Job for SmsSend {
    type Context = Services;
    const NAME: &'static str = "sms.send";
    const QUEUE: &'static str = "sms";

    fn key(&self) -> String {
        self.message.message_id.clone()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let key = self.key();
        if crate::store::jobs::effect_done(ctx.db(), Self::NAME, &key).await? {
            return Ok(Outcome::Duplicate);
        }
        let mut message = self.message;
        if let Some(code) = &self.code {
            let value =
                crate::filings::code::keys(ctx.app()).owner_code(&code.filing_id, code.code_number);
            message.params.insert("code".into(), value);
        }
        ctx.app()
            .sms
            .send(&message)
            .await
            .map_err(JobError::Retry)?;
        match ctx.begin_effect(Self::NAME, &key).await? {
            Some(tx) => {
                tx.commit().await?;
                Ok(Outcome::Done)
            }
            None => Ok(Outcome::Duplicate),
        }
    }
}
