//! `sms.send`: one message through the gateway, keyed by its `message_id` (event,
//! recipient). A finished send is recorded, so a duplicate delivery sends nothing; a crash
//! between the send and the record resends the same `message_id`, which the gateway dedups.
//! A filing code is derived at send time, so the job payload never holds it.

use serde::{Deserialize, Serialize};

use crate::providers::sms::SmsMessage;
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;

/// The filing code this message carries (derived, never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRef {
    pub filing_id: String,
    pub code_number: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsSend {
    pub message: SmsMessage,
    #[serde(default)]
    pub code: Option<CodeRef>,
}

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
            let value = crate::domain::filing::owner_code(
                &ctx.app().code_key,
                &code.filing_id,
                code.code_number,
            );
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
