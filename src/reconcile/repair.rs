//! The lines of a bill whose order was not paid here that day, looked up one by one: paid
//! here on another day (matched), paid by another transaction (a duplicate), unknown, or not
//! paid here at all, which is a lost notification: it is applied through
//! `payments::settle::apply`, the code path of a provider callback (the violation ends
//! `processed`, the handler and the owner are told), and the repair is audited once per
//! provider transaction. A bill whose totals do not add up repairs nothing.

use super::matcher::{Matcher, item};
use super::{Channel, paid};
use crate::payments::PaidNotice;
use crate::payments::settle::{Applied, apply};
use crate::services::Services;
use crate::store::reconciliations::{self as store, Run};
use crate::store::{DbResult, payments};

pub async fn resolve(
    services: &Services,
    run: &Run,
    channel: Channel,
    matcher: &mut Matcher,
    totals_ok: bool,
) -> DbResult<()> {
    let lookups = std::mem::take(&mut matcher.lookups);
    if lookups.is_empty() {
        return Ok(());
    }
    let providers = services
        .payments
        .providers()
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("payment providers unavailable: {e:#}")))?;
    let (app_id, merchant) = match channel {
        Channel::Wechat => (
            providers.wechat.identity.appid.clone(),
            providers.wechat.identity.mchid.clone(),
        ),
        Channel::Alipay => (
            providers.alipay.identity.app_id.clone(),
            providers.alipay.identity.seller_id.clone(),
        ),
    };
    for line in lookups {
        let Some(payment) = payments::find(services.db.pool(), &line.out_trade_no).await? else {
            matcher.counts.unknown_orders += 1;
            matcher.add(item(
                "unknown_order",
                &line,
                None,
                "no order here with this out_trade_no".into(),
            ));
            continue;
        };
        if paid(&payment) {
            let amount = payment.paid_total_fen;
            if payment.transaction_id.as_deref() != Some(line.transaction_id.as_str()) {
                matcher.counts.duplicates += 1;
                matcher.add(item(
                    "duplicate",
                    &line,
                    amount,
                    "paid here by another provider transaction".into(),
                ));
            } else if amount != Some(line.amount_fen) {
                matcher.counts.amount_mismatch += 1;
                matcher.add(item(
                    "amount_mismatch",
                    &line,
                    amount,
                    "the bill and the order differ".into(),
                ));
            } else {
                // Paid here, on another local day (a notification around midnight).
                matcher.counts.matched += 1;
            }
            continue;
        }
        let expected = payment.order_total_fen;
        if !totals_ok {
            let detail =
                "paid at the provider, not here; not repaired: the bill's totals do not add up";
            matcher.add(item("paid_remote_only", &line, expected, detail.into()));
            continue;
        }
        let notice = PaidNotice {
            channel: channel.as_str().into(),
            transaction_id: line.transaction_id.clone(),
            out_trade_no: line.out_trade_no.clone(),
            app_id: if line.app_id.is_empty() {
                app_id.clone()
            } else {
                line.app_id.clone()
            },
            merchant_id: if line.merchant_id.is_empty() {
                merchant.clone()
            } else {
                line.merchant_id.clone()
            },
            total_fen: line.amount_fen,
            success: true,
            source: "reconciliation".into(),
        };
        let now = services.clock.now_ms();
        let mut tx = services.db.begin().await?;
        let applied = apply(services, &mut tx, &notice, now).await?;
        if applied == Applied::Paid {
            let repair = store::Repair {
                channel: channel.as_str(),
                transaction_id: &line.transaction_id,
                out_trade_no: &line.out_trade_no,
                run_id: &run.id,
                amount_fen: line.amount_fen,
            };
            store::record_repair(&mut tx, services.db.backend(), &repair, now).await?;
        }
        tx.commit().await?;
        services.queue.wake();
        match applied {
            Applied::Paid => {
                tracing::warn!(run = %run.id, out_trade_no = %line.out_trade_no, "lost notification repaired from the bill");
                matcher.counts.repaired += 1;
                let detail =
                    "paid at the provider, not here (a lost notification): applied now".into();
                matcher.add(item("repaired", &line, expected, detail));
            }
            Applied::Duplicate | Applied::Ignored => matcher.counts.matched += 1,
            Applied::Discrepancy("amount_mismatch") => {
                matcher.counts.amount_mismatch += 1;
                matcher.add(item(
                    "amount_mismatch",
                    &line,
                    expected,
                    "not applied: the bill and the order differ".into(),
                ));
            }
            Applied::Discrepancy(kind) => {
                matcher.add(item(
                    kind,
                    &line,
                    expected,
                    "not applied (recorded as a payment discrepancy)".into(),
                ));
            }
        }
    }
    Ok(())
}
