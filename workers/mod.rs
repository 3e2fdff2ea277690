//! The job handlers: one file per job kind (the owner-code timers share
//! `filing_code.rs`), each idempotent (its effect commits together with the record of its
//! key). This module hands the job runtime what the application offers: [`QUEUES`] (the
//! queues of `spec/jobs.md`), [`registry`] (every kind this binary runs) and
//! [`cron_table`] (the `[cron]` schedule names and the job each enqueues).

pub mod face_verify;
pub mod filing_code;
pub mod filing_intake;
pub mod maintenance;
pub mod notify_decision;
pub mod payment_callback;
pub mod payment_query;
pub mod reconcile_bill;
pub mod review_sla;
pub mod sms_send;
pub mod violation_ingest;

use crate::queue::{CronTable, Registry};
use crate::services::Services;

/// The job queues of `spec/jobs.md`; `[jobs.<queue>]` accepts these names and `default`.
pub const QUEUES: &[&str] = &[
    "filing",
    "sms",
    "face",
    "review",
    "notify",
    "violation",
    "payment",
    "reconcile",
    "maintenance",
];

pub fn registry() -> Registry<Services> {
    let mut registry = Registry::default();
    registry
        .register::<filing_intake::FilingIntake>()
        .register::<filing_code::CodeExpire>()
        .register::<filing_code::Abandon>()
        .register::<sms_send::SmsSend>()
        .register::<face_verify::FaceVerify>()
        .register::<notify_decision::NotifyDecision>()
        .register::<maintenance::Prune>()
        .register::<review_sla::SlaCheck>()
        .register::<violation_ingest::ViolationIngest>()
        .register::<payment_callback::PaymentCallback>()
        .register::<payment_query::PaymentQuerySweep>()
        .register::<payment_query::PaymentQuery>()
        .register::<reconcile_bill::ReconcileBill>();
    registry
}

/// The schedules `[cron]` may time, by name.
pub fn cron_table() -> CronTable {
    let mut table = CronTable::default();
    table.add("maintenance_prune", |slot_ms| maintenance::Prune {
        slot_ms,
    });
    table.add("payment_query", |slot_ms| {
        payment_query::PaymentQuerySweep { slot_ms }
    });
    table.add("reconcile_wechat", |slot_ms| {
        reconcile_bill::ReconcileBill::for_slot("wechat", slot_ms)
    });
    table.add("reconcile_alipay", |slot_ms| {
        reconcile_bill::ReconcileBill::for_slot("alipay", slot_ms)
    });
    table
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_job_runs_on_a_known_queue() {
        for (kind, queue) in super::registry().kinds() {
            assert!(super::QUEUES.contains(&queue), "{kind} runs on {queue}");
        }
    }
}
