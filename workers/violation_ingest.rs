//! `violation.ingest`: tells the vehicle's owner and its active (approved) filers of a new
//! violation: an in-app message each, and an SMS each through `sms.send` with a
//! `message_id` per (violation, recipient), so a retried job never texts twice.

use std::collections::BTreeMap;

use crate::domain::payment::yuan;
use crate::filings::jobs::SmsSend;
use crate::providers::sms::{SmsMessage, template};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::{messages, registry, violations};
pub use crate::violations::ViolationIngest;

impl Job for ViolationIngest {
    type Context = Services;
    const NAME: &'static str = "violation.ingest";
    const QUEUE: &'static str = "violation";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let Some(v) = violations::find(&mut **tx, &self.violation_id).await? else {
            return Err(JobError::permanent(format!(
                "violation {} does not exist",
                self.violation_id
            )));
        };
        let now = ctx.clock().now_ms();
        let mut recipients: Vec<(String, String)> = Vec::new();
        if let Some(vehicle) =
            registry::find_vehicle(&mut **tx, &v.plate_type, &v.plate_number).await?
        {
            let owner = registry::driver_by_id_number(&mut **tx, &vehicle.fields.owner_id_number)
                .await?
                .unwrap_or_default();
            recipients.push((owner, vehicle.fields.owner_phone));
        }
        for filer in violations::approved_filers(&mut tx, &v.plate_type, &v.plate_number).await? {
            if let Some(driver) = registry::find_driver(&mut **tx, &filer).await? {
                if recipients
                    .iter()
                    .all(|(u, p)| *u != filer && *p != driver.fields.phone)
                {
                    recipients.push((filer, driver.fields.phone));
                }
            }
        }
        let title = format!("New violation of {}", v.plate_number);
        let body = format!(
            "{}: {} ({} yuan, {} points).",
            v.location,
            v.description,
            yuan(v.fine_fen),
            v.points
        );
        for (i, (user, phone)) in recipients.into_iter().enumerate() {
            if !user.is_empty() {
                messages::add(
                    &mut tx,
                    &user,
                    "violation_recorded",
                    None,
                    &title,
                    &body,
                    now,
                )
                .await?;
            }
            let params = BTreeMap::from([
                ("plate_number".to_string(), v.plate_number.clone()),
                ("violation_id".to_string(), v.id.clone()),
                ("fine".to_string(), yuan(v.fine_fen)),
                ("points".to_string(), v.points.to_string()),
            ]);
            let message = SmsMessage {
                message_id: format!("violation:{}:recorded:{i}", v.id),
                phone,
                template: template::VIOLATION_RECORDED.into(),
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
