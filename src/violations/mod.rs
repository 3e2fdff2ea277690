//! The violation lifecycle: the one place that records camera violations, tells who may
//! handle one, and issues penalty decisions. The HTTP handlers and the `violation.ingest`
//! job call it; the rules are `domain::violation`, the payment it opens is
//! `crate::payments`'s.

pub mod jobs;

use crate::domain::payment::{PaymentStatus, due_date};
use crate::domain::violation::{
    Licence, Refusal, Standing, ViolationStatus, decision_number, may_handle,
};
use crate::payments::{self, PaymentError, local_date};
use crate::services::Services;
use crate::store::payments::Payment;
use crate::store::violations::{self, Violation};
use crate::store::{DbResult, Tx, filings, registry};

pub use jobs::ViolationIngest;

/// Why the lifecycle refused to handle a violation.
#[derive(Debug, thiserror::Error)]
pub enum ViolationError {
    /// No such violation, or not one the caller sees (its existence is private).
    #[error("no such violation")]
    NotFound,
    #[error("the violation cannot be handled by the caller: {}", .0.code())]
    Refused(Refusal),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A record from the camera feed, checked for form.
#[derive(Debug, Clone)]
pub struct NewViolation {
    pub source_id: String,
    pub plate_type: String,
    pub plate_number: String,
    pub occurred_at: i64,
    pub location: String,
    pub violation_code: String,
    pub description: String,
    pub fine_fen: i64,
    pub points: i64,
    pub device_id: String,
}

/// Records a violation and enqueues its `violation.ingest`; `None` when its `source_id` is
/// known (delivery is at least once: nothing changes).
pub async fn ingest(
    services: &Services,
    tx: &mut Tx,
    new: NewViolation,
    now: i64,
) -> DbResult<Option<Violation>> {
    let violation = Violation {
        id: crate::store::new_id(),
        source_id: new.source_id.trim().to_string(),
        plate_type: new.plate_type,
        plate_number: new.plate_number,
        occurred_at: new.occurred_at,
        location: new.location,
        violation_code: new.violation_code,
        description: new.description,
        fine_fen: new.fine_fen,
        points: new.points,
        device_id: new.device_id,
        status: ViolationStatus::Unprocessed,
        handler_id: None,
        decision_number: None,
        payment_id: None,
        created_at: now,
        updated_at: now,
    };
    if !violations::insert(tx, &violation).await? {
        return Ok(None);
    }
    let job = ViolationIngest {
        violation_id: violation.id.clone(),
    };
    services.queue.enqueue(tx, &job, now).await?;
    Ok(Some(violation))
}

/// How `user_id` stands to the violation's vehicle: owner, approved filer, or nobody.
pub async fn standing(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    v: &Violation,
) -> DbResult<Option<Standing>> {
    if violations::is_owner(&mut *conn, user_id, &v.plate_type, &v.plate_number).await? {
        return Ok(Some(Standing::Owner));
    }
    let approved =
        violations::filing_approved_at(&mut *conn, user_id, &v.plate_type, &v.plate_number).await?;
    Ok(approved.map(|approved_at| Standing::Filer { approved_at }))
}

/// The caller's licence as eligibility sees it: status, and the points of the cycle plus
/// those of decisions issued to them and not yet paid.
pub async fn licence_of(tx: &mut Tx, user_id: &str) -> DbResult<Option<Licence>> {
    let Some(driver) = registry::find_driver(&mut **tx, user_id).await? else {
        return Ok(None);
    };
    let reserved = violations::points_in_handling(tx, user_id).await?;
    Ok(Some(Licence {
        status: driver.fields.licence_status,
        points: driver.fields.points + reserved,
    }))
}

/// What handling gave: the decision and its payment (a code is on its way to the handler).
#[derive(Debug, Clone)]
pub struct Handled {
    pub decision_number: String,
    pub payment: Payment,
}

/// Handles a violation for `user_id` (who accepted the rules): the checks of
/// `domain::violation`, then a penalty decision, a payment order due in
/// `payments.due_days`, and a confirmation code texted to the handler.
pub async fn handle(
    services: &Services,
    tx: &mut Tx,
    user_id: &str,
    violation_id: &str,
    now: i64,
) -> Result<Handled, ViolationError> {
    let v = violations::load_for_update(&services.db, tx, violation_id)
        .await?
        .ok_or(ViolationError::NotFound)?;
    let Some(standing) = standing(tx, user_id, &v).await? else {
        return Err(ViolationError::NotFound);
    };
    // One handler's decisions one at a time: the points reserved are counted race-free.
    filings::lock_subject(&services.db, tx, &format!("driver:{user_id}")).await?;
    let licence = licence_of(tx, user_id).await?;
    may_handle(standing, v.status, v.occurred_at, v.points, licence)
        .map_err(ViolationError::Refused)?;
    let phone = registry::find_driver(&mut **tx, user_id)
        .await?
        .map(|d| d.fields.phone)
        .ok_or(ViolationError::Refused(Refusal::LicenceInvalid))?;
    let today = local_date(now);
    let serial =
        violations::next_decision_serial(tx, &today.format("%Y-%m-%d").to_string()).await?;
    let number = decision_number(today, serial as u64);
    let mut payment = Payment {
        id: crate::store::new_id(),
        violation_id: v.id.clone(),
        handler_id: user_id.to_string(),
        decision_number: number.clone(),
        plate_number: v.plate_number.clone(),
        occurred_at: v.occurred_at,
        fine_fen: v.fine_fen,
        points: v.points,
        decided_at: now,
        due_date: due_date(today, services.config.payments.due_days)
            .format("%Y-%m-%d")
            .to_string(),
        status: PaymentStatus::PendingConfirmation,
        channel: None,
        order_total_fen: None,
        checkout_at: None,
        phone,
        code_number: 0,
        code_hash: None,
        code_sent_at: None,
        code_expires_at: None,
        code_attempts: 0,
        transaction_id: None,
        paid_total_fen: None,
        paid_at: None,
        created_at: now,
        updated_at: now,
    };
    crate::store::payments::insert(tx, &payment).await?;
    if !violations::mark_handling(tx, &v.id, user_id, &number, &payment.id, now).await? {
        return Err(ViolationError::Refused(Refusal::AlreadyHandled));
    }
    payments::code::issue(services, tx, &mut payment, now).await?;
    Ok(Handled {
        decision_number: number,
        payment,
    })
}
