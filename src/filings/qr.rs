//! The QR-code method (扫码备案): the owner's token for their vehicle, a filing submitted with
//! it, and intake's check of it. The token is checked against the time the filing was
//! submitted (not the time intake happens to run), so a slow queue never expires a token
//! that was good when the filer handed it in. The signing rules are `domain::qr`; the key is
//! derived there from the service secret (`Services::code_key`).

use super::{Application, FilingResult, record};
use crate::domain::filing::{FilingMethod, RejectReason};
use crate::domain::qr::{self, QrClaims};
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::Filing;
use crate::store::qr_tokens;

/// A token the owner shows as a QR code, and when it stops being valid.
#[derive(Debug, Clone)]
pub struct QrToken {
    pub token: String,
    pub expires_at: i64,
}

/// Signs a token for the vehicle (the caller checked that the owner asks), valid for
/// `filing.qr_ttl_seconds`.
pub fn issue_token(services: &Services, plate_type: &str, plate_number: &str, now: i64) -> QrToken {
    let expires_at = now + services.config.filing.qr_ttl_seconds as i64 * 1000;
    let claims = QrClaims {
        plate_type: plate_type.to_string(),
        plate_number: plate_number.to_string(),
        expires_ms: expires_at,
    };
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    QrToken {
        token: qr::issue(&services.code_key, &claims, &nonce),
        expires_at,
    }
}

/// Records a `received` QR filing with its token and enqueues its intake, in the caller's
/// transaction.
pub async fn submit(
    services: &Services,
    tx: &mut Tx,
    application: Application,
    token: &str,
    now: i64,
) -> FilingResult<Filing> {
    let filing = record(services, tx, application, FilingMethod::Qr, now).await?;
    qr_tokens::insert(tx, &filing.id, token).await?;
    Ok(filing)
}

/// Takes a QR filing's token out of the store (intake checks it once; an SMS filing has
/// none).
pub async fn take_token(tx: &mut Tx, filing: &Filing) -> FilingResult<Option<String>> {
    if filing.method != FilingMethod::Qr.as_str() {
        return Ok(None);
    }
    Ok(qr_tokens::take(tx, &filing.id).await?)
}

/// Intake's check of a QR filing's token: signed by this service, not expired when the
/// filing was submitted, and for the filing's vehicle. Refused is `qr_token_invalid`,
/// whatever the cause (logged, never the token).
pub fn check_token(
    services: &Services,
    filing: &Filing,
    token: Option<&str>,
) -> Result<(), RejectReason> {
    let Some(token) = token else {
        return Err(RejectReason::QrTokenInvalid);
    };
    qr::verify(
        &services.code_key,
        token,
        &filing.plate_type,
        &filing.plate_number,
        filing.created_at,
    )
    .map(|_| ())
    .map_err(|why| {
        tracing::info!(filing_id = %filing.id, %why, "QR token refused");
        RejectReason::QrTokenInvalid
    })
}
