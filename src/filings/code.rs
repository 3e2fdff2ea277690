//! The owner's SMS code through its life: issuing one (the SMS flow control per phone, the
//! keyed hash, the `sms.send` job, the expiry timer), entering it, asking for a new one,
//! and the expiry and abandonment timers. Intake, the code endpoints and the timer jobs all
//! come here; the rules themselves are `domain::filing::code`.

use std::collections::BTreeMap;

use super::into_review::enter_review;
use super::jobs::{
    Abandon, CodeExpire, CodeRef, SmsSend, abandon_key, code_message_id, expire_key,
};
use super::{FilingError, FilingResult, code_rules, step};
use crate::domain::filing::code::{CodeKeys, CodeState};
use crate::domain::filing::{FilingMethod, FilingStatus};
use crate::domain::masking::mask_name;
use crate::providers::sms::{SmsMessage, template};
use crate::services::Services;
use crate::store::filings::{self, Filing};
use crate::store::{Tx, registry, sms_log};

/// The code keys drawn from the configured secret.
pub fn keys(services: &Services) -> CodeKeys {
    CodeKeys::from_secret(&services.code_key)
}

fn state_of(filing: &Filing) -> CodeState {
    CodeState {
        status: filing.status,
        sent_at: filing.code_sent_at,
        expires_at: filing.code_expires_at,
        wrong_entries: filing.code_attempts,
    }
}

/// SMS flow control (`spec/domain.md`, Notifications): at most `sms.limit_per_minute` codes a
/// minute to one phone, `limit_per_hour` an hour and `limit_per_day` a day. The phone is
/// locked for the transaction so concurrent issues count each other.
pub(crate) async fn check_flow_control(
    services: &Services,
    tx: &mut Tx,
    phone: &str,
    now: i64,
) -> FilingResult<()> {
    let cfg = &services.config.sms;
    filings::lock_subject(&services.db, tx, &format!("phone:{phone}")).await?;
    let windows = [
        (60_000, cfg.limit_per_minute),
        (3_600_000, cfg.limit_per_hour),
        (86_400_000, cfg.limit_per_day),
    ];
    for (window, limit) in windows {
        if sms_log::codes_sent_since(tx, phone, now - window).await? >= limit as i64 {
            return Err(FilingError::SmsRateLimited);
        }
    }
    Ok(())
}

/// Issues the next code of `filing` to `phone` and moves the filing to `code_sent`, inside
/// the caller's transaction (which holds the filing). After the commit the caller wakes the
/// queue and the scheduler.
pub async fn issue(
    services: &Services,
    tx: &mut Tx,
    filing: &mut Filing,
    phone: &str,
    filer_name: &str,
    now: i64,
    cause: &str,
) -> FilingResult<i64> {
    let allowed = filing.status.move_to(FilingStatus::CodeSent)?;
    check_flow_control(services, tx, phone, now).await?;
    let n = filing.code_number + 1;
    let keys = keys(services);
    let code = keys.owner_code(&filing.id, n);
    let ttl_ms = code_rules(services).ttl_ms;
    filings::set_code(
        tx,
        &filing.id,
        n,
        &keys.code_hash(&filing.id, n, &code),
        phone,
        now,
        now + ttl_ms,
    )
    .await?;
    let id = code_message_id(&filing.id, n);
    sms_log::record_code_sent(tx, phone, &id, now).await?;
    let minutes = services
        .config
        .filing
        .code_ttl_seconds
        .div_ceil(60)
        .to_string();
    let params = BTreeMap::from([
        ("plate_number".to_string(), filing.plate_number.clone()),
        ("minutes".to_string(), minutes),
        ("filer_name".to_string(), mask_name(filer_name)),
    ]);
    let send = SmsSend {
        message: SmsMessage {
            message_id: id,
            phone: phone.to_string(),
            template: template::FILING_CODE.into(),
            params,
        },
        code: Some(CodeRef {
            filing_id: filing.id.clone(),
            code_number: n,
        }),
    };
    services.queue.enqueue(tx, &send, now).await?;
    cancel_timers(services, tx, filing).await?;
    let expire = CodeExpire {
        filing_id: filing.id.clone(),
        code_number: n,
    };
    services
        .queue
        .schedule_timer(tx, &expire.dedup_key(), &expire, now + ttl_ms, now)
        .await?;
    filings::transition(tx, &filing.id, allowed, now, cause).await?;
    filing.status = FilingStatus::CodeSent;
    filing.code_number = n;
    filing.code_sent_at = Some(now);
    filing.code_expires_at = Some(now + ttl_ms);
    filing.code_attempts = 0;
    filing.owner_phone = Some(phone.to_string());
    Ok(n)
}

/// Cancels the timers of the filing's current code (it was used or replaced, or the filing
/// ended).
pub async fn cancel_timers(services: &Services, tx: &mut Tx, filing: &Filing) -> sqlx::Result<()> {
    if filing.code_number > 0 {
        services
            .queue
            .cancel_timer(tx, &expire_key(&filing.id, filing.code_number))
            .await?;
        services
            .queue
            .cancel_timer(tx, &abandon_key(&filing.id, filing.code_number))
            .await?;
    }
    Ok(())
}

/// What an entered code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The filing is `code_verified`.
    Verified,
    /// Wrong; the count is kept (commit it), with this many entries left.
    Mismatch { attempts_left: i64 },
}

/// Enters the owner's code: the domain decides whether it may be compared at all (expiry,
/// lock), then the keyed hashes are compared.
pub async fn enter(
    services: &Services,
    tx: &mut Tx,
    filing: &mut Filing,
    entered: &str,
    now: i64,
) -> FilingResult<Entry> {
    let rules = code_rules(services);
    state_of(filing)
        .check_entry(now, &rules)
        .map_err(FilingError::Entry)?;
    let stored = filing.code_hash.clone().unwrap_or_default();
    if keys(services).code_matches(&filing.id, filing.code_number, entered, &stored) {
        step(tx, filing, FilingStatus::CodeVerified, now, "code_verified").await?;
        cancel_timers(services, tx, filing).await?;
        if filing.method == FilingMethod::Qr.as_str() {
            // A QR filing always goes on to review once the owner's code is verified.
            enter_review(services, tx, filing, now, "qr_method").await?;
        }
        return Ok(Entry::Verified);
    }
    let wrong = filings::count_wrong_code(tx, &filing.id).await?;
    filing.code_attempts = wrong;
    Ok(Entry::Mismatch {
        attempts_left: CodeState::attempts_left(wrong, &rules),
    })
}

/// Texts the owner a new code (after the resend interval, within the phone's flow control).
pub async fn resend(
    services: &Services,
    tx: &mut Tx,
    filing: &mut Filing,
    now: i64,
) -> FilingResult<()> {
    state_of(filing)
        .can_resend(now, &code_rules(services))
        .map_err(FilingError::Resend)?;
    let vehicle = registry::find_vehicle(&mut **tx, &filing.plate_type, &filing.plate_number)
        .await?
        .ok_or(FilingError::VehicleGone)?;
    let filer = registry::find_driver(&mut **tx, &filing.filer_id).await?;
    let name = filer.map(|d| d.fields.name).unwrap_or_default();
    issue(
        services,
        tx,
        filing,
        &vehicle.fields.owner_phone,
        &name,
        now,
        "code_resent",
    )
    .await?;
    Ok(())
}

/// The `filing.code_expire` timer: an unused code expires; the filing keeps its place and
/// is abandoned after `filing.abandon_after_seconds` unless a new code is asked for. True
/// when a timer was scheduled (wake the scheduler after the commit).
pub async fn expire(
    services: &Services,
    tx: &mut Tx,
    timer: &CodeExpire,
    now: i64,
) -> FilingResult<bool> {
    let filing = filings::load_for_update(&services.db, tx, &timer.filing_id).await?;
    let Some(mut filing) =
        filing.filter(|f| f.status == FilingStatus::CodeSent && f.code_number == timer.code_number)
    else {
        return Ok(false);
    };
    step(
        tx,
        &mut filing,
        FilingStatus::CodeExpired,
        now,
        "code_expired",
    )
    .await?;
    let abandon = Abandon {
        filing_id: filing.id.clone(),
        code_number: filing.code_number,
    };
    let due = now + services.config.filing.abandon_after_seconds as i64 * 1000;
    services
        .queue
        .schedule_timer(tx, &abandon.dedup_key(), &abandon, due, now)
        .await?;
    Ok(true)
}

/// The `filing.abandon` timer: a filing left in `code_expired` is cancelled (`abandoned`),
/// which frees its place.
pub async fn abandon(
    services: &Services,
    tx: &mut Tx,
    timer: &Abandon,
    now: i64,
) -> FilingResult<()> {
    let filing = filings::load_for_update(&services.db, tx, &timer.filing_id).await?;
    if let Some(mut filing) = filing
        .filter(|f| f.status == FilingStatus::CodeExpired && f.code_number == timer.code_number)
    {
        step(tx, &mut filing, FilingStatus::Cancelled, now, "abandoned").await?;
    }
    Ok(())
}
