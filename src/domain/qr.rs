//! The owner's QR token (二维码备案): a short-lived, signed statement "the owner of this
//! vehicle invites a filing", shown as a QR code and carried in a `method: "qr"` filing.
//! Text form: `v1.<base64url(plate_type|plate_number|expires_ms|nonce)>.<base64url(HMAC-SHA256)>`.
//! Pure: the key, the clock and the nonce come in as arguments.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// Why a token was refused. The API answers every one of them `qr_token_invalid`; the
/// variants are for tests and logs (which never show the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QrTokenError {
    #[error("not a QR token")]
    Malformed,
    #[error("signature does not match")]
    Forged,
    #[error("expired")]
    Expired,
    #[error("issued for another vehicle")]
    OtherVehicle,
}

/// The vehicle a token is for and when it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrClaims {
    pub plate_type: String,
    pub plate_number: String,
    pub expires_ms: i64,
}

fn signing_key(secret: &[u8]) -> hmac::Key {
    // A key of its own, derived from the service secret, so a QR signature is never an
    // owner code or a code hash.
    let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&derive, b"beian qr token v1");
    hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
}

/// Signs a token for the vehicle, valid until `expires_ms`; `nonce` makes each one unique.
pub fn issue(secret: &[u8], claims: &QrClaims, nonce: &str) -> String {
    let body = format!(
        "{}|{}|{}|{}",
        claims.plate_type, claims.plate_number, claims.expires_ms, nonce
    );
    let body = URL_SAFE_NO_PAD.encode(body.as_bytes());
    let tag = hmac::sign(&signing_key(secret), body.as_bytes());
    format!("v1.{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Checks the signature, the expiry and the vehicle; answers the claims when all hold.
pub fn verify(
    secret: &[u8],
    token: &str,
    plate_type: &str,
    plate_number: &str,
    now_ms: i64,
) -> Result<QrClaims, QrTokenError> {
    let (body, tag) = split(token)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| QrTokenError::Malformed)?;
    hmac::verify(&signing_key(secret), body.as_bytes(), &tag).map_err(|_| QrTokenError::Forged)?;
    let claims = claims_of(body)?;
    if now_ms >= claims.expires_ms {
        return Err(QrTokenError::Expired);
    }
    if claims.plate_type != plate_type || claims.plate_number != plate_number {
        return Err(QrTokenError::OtherVehicle);
    }
    Ok(claims)
}

/// What a token says, signature NOT checked: only for naming the vehicle of a submission
/// before [`verify`] decides. `Malformed` when it is not a token at all.
pub fn read_unverified(token: &str) -> Result<QrClaims, QrTokenError> {
    let (body, tag) = split(token)?;
    URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| QrTokenError::Malformed)?;
    claims_of(body)
}

/// `v1.<body>.<tag>` into its body and tag.
fn split(token: &str) -> Result<(&str, &str), QrTokenError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(body), Some(tag), None) => Ok((body, tag)),
        _ => Err(QrTokenError::Malformed),
    }
}

fn claims_of(body: &str) -> Result<QrClaims, QrTokenError> {
    let text = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(QrTokenError::Malformed)?;
    let fields: Vec<&str> = text.split('|').collect();
    let [pt, pn, expires, _nonce] = fields[..] else {
        return Err(QrTokenError::Malformed);
    };
    let expires_ms: i64 = expires.parse().map_err(|_| QrTokenError::Malformed)?;
    Ok(QrClaims {
        plate_type: pt.into(),
        plate_number: pn.into(),
        expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test secret";

    fn claims() -> QrClaims {
        QrClaims {
            plate_type: "02".into(),
            plate_number: "京A12345".into(),
            expires_ms: 1_000_600_000,
        }
    }

    #[test]
    fn a_fresh_token_for_its_vehicle_verifies() {
        let token = issue(KEY, &claims(), "n1");
        assert_eq!(
            verify(KEY, &token, "02", "京A12345", 1_000_000_000),
            Ok(claims())
        );
        assert_ne!(token, issue(KEY, &claims(), "n2"));
    }

    #[test]
    fn expired_other_vehicle_tampered_and_garbage_are_refused() {
        let token = issue(KEY, &claims(), "n1");
        assert_eq!(
            verify(KEY, &token, "02", "京A12345", 1_000_600_000),
            Err(QrTokenError::Expired)
        );
        assert_eq!(
            verify(KEY, &token, "02", "京B99999", 1_000_000_000),
            Err(QrTokenError::OtherVehicle)
        );
        assert_eq!(
            verify(b"another secret", &token, "02", "京A12345", 1_000_000_000),
            Err(QrTokenError::Forged)
        );
        // A body re-signed by nobody: change the vehicle inside the token.
        let forged_body = URL_SAFE_NO_PAD.encode("02|京B99999|1000600000|n1");
        let tag = token.rsplit('.').next().unwrap();
        assert_eq!(
            verify(
                KEY,
                &format!("v1.{forged_body}.{tag}"),
                "02",
                "京B99999",
                1_000_000_000
            ),
            Err(QrTokenError::Forged)
        );
        for garbage in ["", "v1", "v1.a.b.c", "v2.a.b", "v1.!!.??"] {
            assert!(
                verify(KEY, garbage, "02", "京A12345", 0).is_err(),
                "{garbage}"
            );
            assert_eq!(read_unverified(garbage), Err(QrTokenError::Malformed));
        }
        assert_eq!(read_unverified(&token), Ok(claims()));
    }
}
