//! SQL of the owner's QR token a `method: "qr"` filing was submitted with: kept beside the
//! filing until its intake has checked it (`filings::qr`), then deleted.

use super::{DbResult, Tx};

pub async fn insert(tx: &mut Tx, filing_id: &str, token: &str) -> DbResult<()> {
    sqlx::query("INSERT INTO filing_qr_tokens (filing_id, qr_token) VALUES ($1, $2)")
        .bind(filing_id)
        .bind(token)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The token of a filing, deleted in the same transaction (it is checked once).
pub async fn take(tx: &mut Tx, filing_id: &str) -> DbResult<Option<String>> {
    let token: Option<String> =
        sqlx::query_scalar("SELECT qr_token FROM filing_qr_tokens WHERE filing_id = $1")
            .bind(filing_id)
            .fetch_optional(&mut **tx)
            .await?;
    sqlx::query("DELETE FROM filing_qr_tokens WHERE filing_id = $1")
        .bind(filing_id)
        .execute(&mut **tx)
        .await?;
    Ok(token)
}
