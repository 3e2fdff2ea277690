//! The `Idempotency-Key` header: the extractors, the request fingerprint, and the replay of
//! a stored answer. The answer itself is stored by the handler in its own transaction
//! (`store::idempotency`), so the key and the effect commit together.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ring::digest;

use super::problem::ApiError;
use crate::store::idempotency::StoredAnswer;

const HEADER: &str = "idempotency-key";

/// A required `Idempotency-Key` (400 `idempotency_key_required` without one).
pub struct IdempotencyKey(pub String);

/// An optional `Idempotency-Key`.
pub struct OptionalIdempotencyKey(pub Option<String>);

fn read(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be visible ASCII",
        )
    })?;
    let key = key.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 characters",
        ));
    }
    Ok(Some(key.to_string()))
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        read(parts)?.map(IdempotencyKey).ok_or_else(|| {
            ApiError::bad_request(
                "idempotency_key_required",
                "this request needs an Idempotency-Key header",
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalIdempotencyKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(OptionalIdempotencyKey(read(parts)?))
    }
}

/// A fingerprint of the request body (canonical JSON: object keys sorted).
pub fn fingerprint(body: &impl serde::Serialize) -> String {
    let canonical = serde_json::to_value(body)
        .map(|v| v.to_string())
        .unwrap_or_default();
    hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// The stored answer again, or 422 `idempotency_key_reused` for another body.
pub fn replay(stored: StoredAnswer, request_hash: &str) -> Response {
    if stored.request_hash != request_hash {
        return ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with another request body",
        )
        .into_response();
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}
