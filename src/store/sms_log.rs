//! SQL of the SMS send log: the codes texted per phone, which the flow control counts
//! (`filings::code`).

use super::{DbResult, Tx};

/// Codes texted to `phone` since `since_ms`.
pub async fn codes_sent_since(tx: &mut Tx, phone: &str, since_ms: i64) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM sms_codes_sent WHERE phone = $1 AND sent_at >= $2")
        .bind(phone)
        .bind(since_ms)
        .fetch_one(&mut **tx)
        .await
}

/// Records a code texted to `phone` (once per `message_id`).
pub async fn record_code_sent(tx: &mut Tx, phone: &str, message_id: &str, at: i64) -> DbResult<()> {
    sqlx::query("INSERT INTO sms_codes_sent (phone, message_id, sent_at) VALUES ($1, $2, $3) ON CONFLICT (message_id) DO NOTHING")
        .bind(phone)
        .bind(message_id)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
