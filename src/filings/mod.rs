//! The filing lifecycle: the one place that moves a filing. The HTTP handlers and the jobs
//! both call it to submit, take in ([`intake`]), issue, enter and resend the owner's code
//! ([`code`]), hand in the face check and apply its verdict ([`face`]), and end a filing
//! ([`ending`]). Rules come from `domain::filing`, rows from `store`; the jobs it enqueues
//! are named by the payloads in [`jobs`] (their handlers are in `workers/`).
//! Layering: `api` and `workers` call `filings`, which calls `domain`, `store` and the
//! queue's enqueue; nothing here knows HTTP.

pub mod code;
pub mod documents;
pub mod ending;
pub mod face;
pub mod intake;
pub mod into_review;
pub mod jobs;
pub mod qr;

use crate::domain::filing::code::{CodeRules, EntryRefused, ResendRefused};
use crate::domain::filing::{FilingMethod, FilingStatus, ForbiddenMove, Relationship};
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::{self, Filing};

pub use jobs::{FaceVerify, FilingIntake};

/// Why the lifecycle refused a step (the API turns these into problems, jobs into failures).
#[derive(Debug, thiserror::Error)]
pub enum FilingError {
    #[error("no such filing")]
    NotFound,
    /// Nothing to end: the filing is already in this final state.
    #[error("the filing is already {}", .0.as_str())]
    AlreadyEnded(FilingStatus),
    #[error(transparent)]
    Forbidden(#[from] ForbiddenMove),
    #[error("the code cannot be entered")]
    Entry(EntryRefused),
    #[error("no new code now")]
    Resend(ResendRefused),
    /// The owner's phone is over its SMS flow control.
    #[error("the owner's phone is over its SMS flow control")]
    SmsRateLimited,
    /// The vehicle left the registry while the filing was in progress.
    #[error("the vehicle left the registry")]
    VehicleGone,
    #[error("no face check expected: the filing is {}", .0.as_str())]
    FaceNotExpected(FilingStatus),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type FilingResult<T> = Result<T, FilingError>;

/// The code rules of the configuration.
pub fn code_rules(services: &Services) -> CodeRules {
    let cfg = &services.config.filing;
    CodeRules {
        ttl_ms: cfg.code_ttl_seconds as i64 * 1000,
        max_wrong_entries: cfg.code_max_attempts as i64,
        resend_interval_ms: cfg.resend_interval_seconds as i64 * 1000,
    }
}

/// Moves `filing` to `to` if the domain allows it, recording time and cause; the filing's
/// in-memory status follows.
pub(crate) async fn step(
    tx: &mut Tx,
    filing: &mut Filing,
    to: FilingStatus,
    at: i64,
    cause: &str,
) -> FilingResult<()> {
    let method = FilingMethod::parse(&filing.method).unwrap_or(FilingMethod::Sms);
    let step = filing.status.move_for(method, to)?;
    filings::transition(tx, &filing.id, step, at, cause).await?;
    filing.status = to;
    filing.updated_at = at;
    Ok(())
}

/// A new application, checked for form only: the business checks run in the intake job.
/// A QR filing's `engine_last6` is empty when the filer left it out (its token names the
/// vehicle).
#[derive(Debug, Clone)]
pub struct Application {
    pub filer_id: String,
    pub plate_type: String,
    pub plate_number: String,
    pub engine_last6: String,
    pub relationship: Relationship,
}

/// Records a `received` filing and enqueues its intake in the caller's transaction; the
/// caller commits, then wakes the queue.
pub async fn submit(
    services: &Services,
    tx: &mut Tx,
    application: Application,
    now: i64,
) -> FilingResult<Filing> {
    record(services, tx, application, FilingMethod::Sms, now).await
}

/// Records a `received` filing of `method` and enqueues its intake.
pub(crate) async fn record(
    services: &Services,
    tx: &mut Tx,
    application: Application,
    method: FilingMethod,
    now: i64,
) -> FilingResult<Filing> {
    let local = crate::clock::from_ms(now).with_timezone(&crate::clock::shanghai());
    let filing = Filing {
        id: crate::store::new_id(),
        method: method.as_str().into(),
        filer_id: application.filer_id,
        plate_type: application.plate_type,
        plate_number: application.plate_number,
        engine_last6: application.engine_last6,
        relationship: application.relationship.as_str().into(),
        status: FilingStatus::Received,
        reason: None,
        own_vehicle: false,
        owner_phone: None,
        code_number: 0,
        code_hash: None,
        code_sent_at: None,
        code_expires_at: None,
        code_attempts: 0,
        local_date: local.format("%Y-%m-%d").to_string(),
        local_year: local.format("%Y").to_string(),
        created_at: now,
        updated_at: now,
    };
    filings::insert(tx, &filing).await?;
    let intake = FilingIntake {
        filing_id: filing.id.clone(),
    };
    services.queue.enqueue(tx, &intake, now).await?;
    Ok(filing)
}
