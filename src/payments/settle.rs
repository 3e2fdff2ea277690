//! Applying what a provider says was paid (a verified notification, or an order query):
//! the merchant, the order and the amount are checked against the order; a match marks
//! the payment paid (once), the violation processed and the points on the handler's
//! licence, and tells the handler and the owner. Anything else is recorded as a
//! discrepancy and never applied.

use std::collections::BTreeMap;

use super::jobs::PaidNotice;
use super::total_at;
use crate::domain::masking::mask_phone;
use crate::domain::payment::{PaymentStatus, yuan};
use crate::filings::jobs::SmsSend;
use crate::providers::sms::{SmsMessage, template};
use crate::services::Services;
use crate::store::payments::{self, Discrepancy};
use crate::store::{DbResult, Tx, messages, registry, violations};

/// What applying a notice did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Paid,
    /// The same transaction was applied before: nothing changes.
    Duplicate,
    /// Not a successful payment (e.g. `WAIT_BUYER_PAY`): nothing to do.
    Ignored,
    /// Recorded as a discrepancy of this kind, not applied.
    Discrepancy(&'static str),
}

/// The merchant ids the service expects on `channel` (`None` when the providers are not
/// available).
async fn expected_merchant(services: &Services, channel: &str) -> Option<(String, String)> {
    let providers = services.payments.providers().await.ok()?;
    Some(match channel {
        "wechat" => (
            providers.wechat.identity.appid.clone(),
            providers.wechat.identity.mchid.clone(),
        ),
        _ => (
            providers.alipay.identity.app_id.clone(),
            providers.alipay.identity.seller_id.clone(),
        ),
    })
}

async fn discrepancy(
    tx: &mut Tx,
    notice: &PaidNotice,
    kind: &'static str,
    detail: String,
    now: i64,
) -> DbResult<Applied> {
    tracing::warn!(
        channel = %notice.channel, out_trade_no = %notice.out_trade_no, kind,
        "payment notice not applied: recorded as a discrepancy"
    );
    let d = Discrepancy {
        channel: notice.channel.clone(),
        out_trade_no: notice.out_trade_no.clone(),
        transaction_id: notice.transaction_id.clone(),
        kind: kind.into(),
        detail,
        amount_fen: Some(notice.total_fen),
    };
    payments::record_discrepancy(tx, &d, now).await?;
    Ok(Applied::Discrepancy(kind))
}

/// Applies `notice` inside the caller's transaction (the job's effect).
pub async fn apply(
    services: &Services,
    tx: &mut Tx,
    notice: &PaidNotice,
    now: i64,
) -> DbResult<Applied> {
    if !notice.success {
        return Ok(Applied::Ignored);
    }
    let Some((app_id, merchant)) = expected_merchant(services, &notice.channel).await else {
        return Err(sqlx::Error::Protocol(
            "payment providers unavailable".into(),
        ));
    };
    if notice.app_id != app_id || notice.merchant_id != merchant {
        let detail = format!("app {} merchant {}", notice.app_id, notice.merchant_id);
        return discrepancy(tx, notice, "merchant_mismatch", detail, now).await;
    }
    let Some(payment) = payments::load_for_update(&services.db, tx, &notice.out_trade_no).await?
    else {
        let detail = "no order with this out_trade_no".to_string();
        return discrepancy(tx, notice, "unknown_order", detail, now).await;
    };
    if payment.status == PaymentStatus::Paid {
        if payment.transaction_id.as_deref() == Some(notice.transaction_id.as_str()) {
            return Ok(Applied::Duplicate);
        }
        let detail = "the order is paid by another transaction".to_string();
        return discrepancy(tx, notice, "duplicate_payment", detail, now).await;
    }
    let expected = payment
        .order_total_fen
        .unwrap_or_else(|| total_at(services, &payment, now));
    if notice.total_fen != expected {
        let detail = format!("paid {} fen, the order is {expected} fen", notice.total_fen);
        return discrepancy(tx, notice, "amount_mismatch", detail, now).await;
    }
    if !payment.status.may_move_to(PaymentStatus::Paid) {
        let detail = format!("the order is {}", payment.status.as_str());
        return discrepancy(tx, notice, "order_not_payable", detail, now).await;
    }
    let paid = payments::mark_paid(
        tx,
        &payment.id,
        payment.status,
        &notice.channel,
        &notice.transaction_id,
        notice.total_fen,
        now,
    )
    .await?;
    if !paid {
        return Err(sqlx::Error::RowNotFound);
    }
    violations::mark_processed(tx, &payment.violation_id, now).await?;
    violations::add_licence_points(tx, &payment.handler_id, payment.points, now).await?;
    tell_paid(services, tx, &payment, notice.total_fen, now).await?;
    Ok(Applied::Paid)
}

/// The handler and the owner are told: an in-app message each and an SMS each through
/// `sms.send`, keyed per (payment, recipient).
async fn tell_paid(
    services: &Services,
    tx: &mut Tx,
    payment: &payments::Payment,
    total_fen: i64,
    now: i64,
) -> DbResult<()> {
    let title = format!("Fine for {} paid", payment.plate_number);
    let body = format!(
        "Decision {} of vehicle {}: {} yuan paid; the violation is processed.",
        payment.decision_number,
        payment.plate_number,
        yuan(total_fen)
    );
    let mut recipients: Vec<(String, String)> = Vec::new();
    if let Some(handler) = registry::find_driver(&mut **tx, &payment.handler_id).await? {
        recipients.push((handler.user_id, handler.fields.phone));
    }
    if let Some(v) = violations::find(&mut **tx, &payment.violation_id).await? {
        if let Some(vehicle) =
            registry::find_vehicle(&mut **tx, &v.plate_type, &v.plate_number).await?
        {
            let owner = registry::driver_by_id_number(&mut **tx, &vehicle.fields.owner_id_number)
                .await?
                .unwrap_or_default();
            if recipients
                .iter()
                .all(|(_, phone)| *phone != vehicle.fields.owner_phone)
            {
                recipients.push((owner, vehicle.fields.owner_phone));
            }
        }
    }
    for (user, phone) in recipients {
        if !user.is_empty() {
            messages::add(tx, &user, "payment_result", None, &title, &body, now).await?;
        }
        let params = BTreeMap::from([
            (
                "decision_number".to_string(),
                payment.decision_number.clone(),
            ),
            ("plate_number".to_string(), payment.plate_number.clone()),
            ("amount".to_string(), yuan(total_fen)),
        ]);
        tracing::debug!(payment = %payment.id, phone = %mask_phone(&phone), "payment result texted");
        let message = SmsMessage {
            message_id: format!("payment:{}:paid:{}", payment.id, mask_free_key(&phone)),
            phone,
            template: template::PAYMENT_RESULT.into(),
            params,
        };
        services
            .queue
            .enqueue(
                tx,
                &SmsSend {
                    message,
                    code: None,
                },
                now,
            )
            .await?;
    }
    Ok(())
}

/// A recipient key for a message id that holds no phone number (a keyed digest of it).
fn mask_free_key(phone: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, phone.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}
