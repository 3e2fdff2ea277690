//! `notify.decision`: tells the filer and the owner of a decision on a filing: an in-app
//! message each, and an SMS each through `sms.send` with a `message_id` per (decision,
//! recipient), so a retried job never texts twice.

use std::collections::BTreeMap;

pub use crate::filings::jobs::NotifyDecision;
use crate::filings::jobs::SmsSend;
use crate::providers::sms::{SmsMessage, template};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::{filings, messages, registry};

fn wording(decision: &str) -> &'static str {
    match decision {
        "approved" => "approved",
        "review_rejected" | "rejected" => "rejected",
        _ => "decided",
    }
}

impl Job for NotifyDecision {
    type Context = Services;
    const NAME: &'static str = "notify.decision";
    const QUEUE: &'static str = "notify";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let Some(filing) = filings::find(&mut **tx, &self.filing_id).await? else {
            return Err(JobError::permanent(format!(
                "filing {} does not exist",
                self.filing_id
            )));
        };
        let now = ctx.clock().now_ms();
        let vehicle =
            registry::find_vehicle(&mut **tx, &filing.plate_type, &filing.plate_number).await?;
        let filer = registry::find_driver(&mut **tx, &filing.filer_id).await?;
        let owner_user = match &vehicle {
            Some(v) => registry::driver_by_id_number(&mut **tx, &v.fields.owner_id_number).await?,
            None => None,
        };
        let word = wording(&self.decision);
        let title = format!("Filing of {} {word}", filing.plate_number);
        let body = format!(
            "The filing {} of vehicle {} was {word}.",
            filing.id, filing.plate_number
        );
        messages::add(
            &mut tx,
            &filing.filer_id,
            "filing_decision",
            Some(&filing.id),
            &title,
            &body,
            now,
        )
        .await?;
        if let Some(owner) = owner_user.as_deref().filter(|o| *o != filing.filer_id) {
            messages::add(
                &mut tx,
                owner,
                "filing_decision",
                Some(&filing.id),
                &title,
                &body,
                now,
            )
            .await?;
        }
        let mut recipients: Vec<(&str, String)> = Vec::new();
        if let Some(d) = &filer {
            recipients.push(("filer", d.fields.phone.clone()));
        }
        if let Some(v) = &vehicle {
            if recipients
                .iter()
                .all(|(_, phone)| *phone != v.fields.owner_phone)
            {
                recipients.push(("owner", v.fields.owner_phone.clone()));
            }
        }
        for (role, phone) in recipients {
            let params = BTreeMap::from([
                ("plate_number".to_string(), filing.plate_number.clone()),
                ("decision".to_string(), self.decision.clone()),
                ("filing_id".to_string(), filing.id.clone()),
            ]);
            let message = SmsMessage {
                message_id: format!("filing:{}:decision:{}:{role}", filing.id, self.decision),
                phone,
                template: template::FILING_DECISION.into(),
                params,
            };
            ctx.queue()
                .enqueue(
                    &mut tx,
                    &SmsSend {
                        message,
                        code: None,
                    },
                    now,
                )
                .await?;
        }
        tx.commit().await?;
        ctx.queue().wake();
        Ok(Outcome::Done)
    }
}
