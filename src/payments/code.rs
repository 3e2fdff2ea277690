//! The confirmation code of a payment, with the same rules as the filing owner's code: the
//! code keys and rules of `domain::filing::code` (derived from the secret, only a keyed
//! hash stored, expiry, lock after wrong entries, resend interval) and the SMS flow control
//! of `filings::code`, per phone.

use std::collections::BTreeMap;

use super::{PaymentError, PaymentResult};
use crate::domain::filing::code::CodeState;
use crate::domain::payment::{PaymentStatus, yuan};
use crate::filings::code::{check_flow_control, keys};
use crate::filings::jobs::{CodeRef, SmsSend};
use crate::filings::{FilingError, code_rules};
use crate::providers::sms::{SmsMessage, template};
use crate::services::Services;
use crate::store::payments::{self, Payment};
use crate::store::{Tx, sms_log};

fn state_of(p: &Payment) -> CodeState<PaymentStatus> {
    CodeState {
        status: p.status,
        sent_at: p.code_sent_at,
        expires_at: p.code_expires_at,
        wrong_entries: p.code_attempts,
    }
}

/// The `message_id` of code number `n` of a payment.
pub fn code_message_id(payment_id: &str, n: i64) -> String {
    format!("payment:{payment_id}:code:{n}")
}

/// Texts the handler the next code of `payment` (inside the caller's transaction).
pub async fn issue(
    services: &Services,
    tx: &mut Tx,
    payment: &mut Payment,
    now: i64,
) -> PaymentResult<i64> {
    check_flow_control(services, tx, &payment.phone, now)
        .await
        .map_err(|e| match e {
            FilingError::Db(e) => PaymentError::Db(e),
            _ => PaymentError::SmsRateLimited,
        })?;
    let n = payment.code_number + 1;
    let keys = keys(services);
    // The payment id is the code's subject: codes of filings and payments never meet.
    let code = keys.owner_code(&payment.id, n);
    let ttl_ms = code_rules(services).ttl_ms;
    let hash = keys.code_hash(&payment.id, n, &code);
    payments::set_code(tx, &payment.id, n, &hash, now, now + ttl_ms).await?;
    let message_id = code_message_id(&payment.id, n);
    sms_log::record_code_sent(tx, &payment.phone, &message_id, now).await?;
    let minutes = services.config.filing.code_ttl_seconds.div_ceil(60);
    let params = BTreeMap::from([
        (
            "decision_number".to_string(),
            payment.decision_number.clone(),
        ),
        ("plate_number".to_string(), payment.plate_number.clone()),
        (
            "amount".to_string(),
            yuan(super::total_at(services, payment, now)),
        ),
        ("minutes".to_string(), minutes.to_string()),
    ]);
    let send = SmsSend {
        message: SmsMessage {
            message_id,
            phone: payment.phone.clone(),
            template: template::PAYMENT_CODE.into(),
            params,
        },
        code: Some(CodeRef {
            filing_id: payment.id.clone(),
            code_number: n,
        }),
    };
    services.queue.enqueue(tx, &send, now).await?;
    payment.code_number = n;
    payment.code_hash = Some(hash);
    payment.code_sent_at = Some(now);
    payment.code_expires_at = Some(now + ttl_ms);
    payment.code_attempts = 0;
    Ok(n)
}

/// What an entered code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The payment is `awaiting_payment`.
    Confirmed,
    /// Wrong; the count is kept (commit it), with this many entries left.
    Mismatch { attempts_left: i64 },
}

/// Enters the confirmation code.
pub async fn enter(
    services: &Services,
    tx: &mut Tx,
    payment: &mut Payment,
    entered: &str,
    now: i64,
) -> PaymentResult<Entry> {
    let rules = code_rules(services);
    state_of(payment)
        .check_entry(now, &rules)
        .map_err(PaymentError::Entry)?;
    let stored = payment.code_hash.clone().unwrap_or_default();
    if keys(services).code_matches(&payment.id, payment.code_number, entered, &stored) {
        payments::set_status(
            tx,
            &payment.id,
            PaymentStatus::PendingConfirmation,
            PaymentStatus::AwaitingPayment,
            now,
        )
        .await?;
        payment.status = PaymentStatus::AwaitingPayment;
        return Ok(Entry::Confirmed);
    }
    let wrong = payments::count_wrong_code(tx, &payment.id).await?;
    payment.code_attempts = wrong;
    Ok(Entry::Mismatch {
        attempts_left: CodeState::attempts_left(wrong, &rules),
    })
}

/// Texts the handler a new code (after the resend interval, within the flow control).
pub async fn resend(
    services: &Services,
    tx: &mut Tx,
    payment: &mut Payment,
    now: i64,
) -> PaymentResult<()> {
    state_of(payment)
        .can_resend(now, &code_rules(services))
        .map_err(PaymentError::Resend)?;
    issue(services, tx, payment, now).await?;
    Ok(())
}
