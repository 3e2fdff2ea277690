//! Intake of a `received` filing: the registry checks and the limits, then the owner's
//! code, or a rejection with its reason. The filer and the vehicle are locked for the
//! transaction (advisory locks on PostgreSQL, the single writer on SQLite), so concurrent
//! intakes cannot exceed a limit. The registered owner filing their own vehicle is approved
//! at once and counts against nothing, whether or not its own intake ran yet.

use super::jobs::NotifyDecision;
use super::{FilingError, FilingResult, code, qr, step};
use crate::domain::filing::{
    FilingCounts, FilingLimits, FilingMethod, FilingStatus, RejectReason, check_limits,
    check_vehicle_with,
};
use crate::domain::plate::is_fileable;
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::{self, Filing};
use crate::store::registry::{find_driver, find_vehicle};

/// What intake did (the job wakes the queue and the scheduler accordingly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// The filing had left `received` already.
    Skipped,
    Rejected(RejectReason),
    /// The owner's own vehicle: approved, the decision notified.
    Approved,
    /// The owner's code went out.
    CodeSent,
}

fn limits(services: &Services) -> FilingLimits {
    let cfg = &services.config.filing;
    FilingLimits {
        per_filer: cfg.max_non_owned_per_user,
        per_vehicle: cfg.max_filers_per_vehicle,
        per_day: cfg.max_applications_per_day,
        per_year: cfg.max_applications_per_year,
    }
}

async fn reject(
    tx: &mut Tx,
    filing: &mut Filing,
    reason: RejectReason,
    now: i64,
) -> FilingResult<Intake> {
    filings::set_reason(tx, &filing.id, reason).await?;
    step(tx, filing, FilingStatus::Rejected, now, reason.code()).await?;
    Ok(Intake::Rejected(reason))
}

/// The engine number to compare: a QR filing's only when the filer typed it (its token
/// names the vehicle); an SMS filing's always.
fn engine_of<'a>(method: &str, engine_last6: &'a str) -> Option<&'a str> {
    (method != FilingMethod::Qr.as_str() || !engine_last6.is_empty()).then_some(engine_last6)
}

/// Runs intake of `filing_id` in the caller's transaction.
pub async fn take_in(
    services: &Services,
    tx: &mut Tx,
    filing_id: &str,
    now: i64,
) -> FilingResult<Intake> {
    let db = &services.db;
    let Some(mut filing) = filings::load_for_update(db, tx, filing_id).await? else {
        return Err(FilingError::NotFound);
    };
    if filing.status != FilingStatus::Received {
        return Ok(Intake::Skipped);
    }
    filings::lock_subject(db, tx, &format!("filer:{}", filing.filer_id)).await?;
    filings::lock_subject(
        db,
        tx,
        &format!("vehicle:{}:{}", filing.plate_type, filing.plate_number),
    )
    .await?;
    let qr_token = qr::take_token(tx, &filing).await?;
    let vehicle = find_vehicle(&mut **tx, &filing.plate_type, &filing.plate_number).await?;
    let checked = if !is_fileable(&filing.plate_type) {
        Err(RejectReason::PlateTypeNotAllowed)
    } else {
        match &vehicle {
            None => Err(RejectReason::VehicleNotFound),
            Some(v) => check_vehicle_with(v, engine_of(&filing.method, &filing.engine_last6)),
        }
    };
    let vehicle = match (checked, vehicle) {
        (Ok(()), Some(vehicle)) => vehicle,
        (Err(reason), _) => return reject(tx, &mut filing, reason, now).await,
        (Ok(()), None) => return reject(tx, &mut filing, RejectReason::VehicleNotFound, now).await,
    };
    let filer = find_driver(&mut **tx, &filing.filer_id).await?;
    if filer.as_ref().is_some_and(|d| d.owns(&vehicle)) {
        filings::mark_own_vehicle(tx, &filing.id).await?;
        step(tx, &mut filing, FilingStatus::Approved, now, "own_vehicle").await?;
        let notify = NotifyDecision {
            filing_id: filing.id.clone(),
            decision: "approved".into(),
        };
        services.queue.enqueue(tx, &notify, now).await?;
        return Ok(Intake::Approved);
    }
    // After the own-vehicle path (the owner needs no invitation of their own), before the
    // limits: a QR filing stands on the owner's token.
    if filing.method == FilingMethod::Qr.as_str() {
        if let Err(reason) = qr::check_token(services, &filing, qr_token.as_deref()) {
            return reject(tx, &mut filing, reason, now).await;
        }
    }
    let counts = count(tx, &filing, filer.as_ref()).await?;
    if let Err(reason) = check_limits(&counts, &limits(services)) {
        return reject(tx, &mut filing, reason, now).await;
    }
    let filer_name = filer.map(|d| d.fields.name).unwrap_or_default();
    let phone = vehicle.fields.owner_phone.clone();
    match code::issue(
        services,
        tx,
        &mut filing,
        &phone,
        &filer_name,
        now,
        "code_issued",
    )
    .await
    {
        Ok(_) => Ok(Intake::CodeSent),
        Err(FilingError::SmsRateLimited) => {
            reject(tx, &mut filing, RejectReason::SmsRateLimited, now).await
        }
        Err(e) => Err(e),
    }
}

/// The counts for the limits. The store counts the applications that passed intake; the
/// filer's earlier applications still waiting for theirs count too, unless they are for
/// the filer's own vehicle (which counts for nothing), so the order intakes run in does
/// not change the outcome.
async fn count(
    tx: &mut Tx,
    filing: &Filing,
    filer: Option<&crate::domain::registry::Driver>,
) -> FilingResult<FilingCounts> {
    let mut counts = filings::counts(
        tx,
        &filing.filer_id,
        &filing.plate_type,
        &filing.plate_number,
        &filing.local_date,
        &filing.local_year,
        &filing.id,
    )
    .await?;
    for pending in
        filings::pending_before(tx, &filing.filer_id, &filing.local_year, &filing.id).await?
    {
        // Exactly the filings intake will approve as the owner's own.
        let own = match filer {
            Some(driver) => find_vehicle(&mut **tx, &pending.plate_type, &pending.plate_number)
                .await?
                .is_some_and(|v| {
                    is_fileable(&pending.plate_type)
                        && check_vehicle_with(&v, engine_of(&pending.method, &pending.engine_last6))
                            .is_ok()
                        && driver.owns(&v)
                }),
            None => false,
        };
        if own {
            continue;
        }
        counts.filer_this_year += 1;
        if pending.local_date == filing.local_date {
            counts.filer_today += 1;
        }
    }
    Ok(counts)
}
