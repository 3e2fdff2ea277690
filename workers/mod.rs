//! The job handlers: one file per job kind, each idempotent (its effect commits together
//! with the record of its key). `registry()` lists every kind this binary runs, and
//! `cron_job` maps a `[cron]` schedule name to the job it enqueues.

pub mod face_verify;
pub mod filing_code;
pub mod filing_intake;
pub mod maintenance;
pub mod notify_decision;
pub mod sms_send;

use crate::queue::{Job, Registry};

pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry
        .register::<filing_intake::FilingIntake>()
        .register::<filing_code::CodeExpire>()
        .register::<filing_code::Abandon>()
        .register::<sms_send::SmsSend>()
        .register::<face_verify::FaceVerify>()
        .register::<notify_decision::NotifyDecision>()
        .register::<maintenance::Prune>();
    registry
}

/// The schedule names `[cron]` accepts.
pub const CRON_NAMES: &[&str] = &["maintenance_prune"];

/// The job a cron slot enqueues: (kind, queue, payload).
pub fn cron_job(name: &str, slot_ms: i64) -> Option<(&'static str, &'static str, String)> {
    match name {
        "maintenance_prune" => Some(payload(&maintenance::Prune { slot_ms })),
        _ => None,
    }
}

fn payload<J: Job>(job: &J) -> (&'static str, &'static str, String) {
    (
        J::NAME,
        J::QUEUE,
        serde_json::to_string(job).expect("job payloads serialize"),
    )
}
