//! The `Idempotency-Key` header: the extractors, the request fingerprint, and the one flow
//! every creating `POST` uses ([`Idempotency`]): look the key up before the request is even
//! validated, run the effect, record the answer in the effect's own transaction, and replay
//! the winner's answer when a concurrent request with the same key committed first.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ring::digest;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::problem::{ApiError, ApiResult};
use crate::store::idempotency::{self, StoredAnswer};
use crate::store::{Db, Tx};

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

/// A fingerprint of the request (canonical JSON: object keys sorted at every level, so the
/// order a client sends them in does not matter, whatever map serde_json is built with).
pub fn fingerprint(body: &impl Serialize) -> String {
    let canonical = serde_json::to_value(body)
        .map(|v| canonical(v).to_string())
        .unwrap_or_default();
    hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

fn canonical(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// A body read as plain JSON (so its key can be looked up first) turned into the typed
/// request: 422 naming the field, exactly as the typed extractor answers.
pub fn typed<T: DeserializeOwned>(body: &serde_json::Value) -> ApiResult<T> {
    let bytes = serde_json::to_vec(body).map_err(|e| ApiError::internal(e.to_string()))?;
    axum::Json::<T>::from_bytes(&bytes)
        .map(|json| json.0)
        .map_err(ApiError::from)
}

/// The stored answer again, or 422 `idempotency_key_reused` for another request.
fn replay(stored: StoredAnswer, request_hash: &str) -> Response {
    if stored.request_hash != request_hash {
        return reused().into_response();
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, stored.body, stored.location.as_deref());
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

fn reused() -> ApiError {
    ApiError::unprocessable(
        "idempotency_key_reused",
        "this Idempotency-Key was used with another request body",
    )
}

fn json_response(status: StatusCode, body: String, location: Option<&str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// One creating request under an (optional) `Idempotency-Key`: the caller's key space is
/// `caller + route`, the request's identity the fingerprint of what it asks.
pub struct Idempotency {
    scope: String,
    key: Option<String>,
    hash: String,
}

impl Idempotency {
    pub fn new(
        caller: &str,
        route: &str,
        key: Option<String>,
        request: &impl Serialize,
    ) -> Idempotency {
        Idempotency {
            scope: format!("{caller}:{route}"),
            key,
            hash: fingerprint(request),
        }
    }

    /// The answer to a repeat, looked up before the request is validated: the first
    /// answer for the same request, 422 `idempotency_key_reused` for another one (valid or
    /// not); `None` for a fresh key or no key.
    pub async fn repeat(&self, db: &Db) -> ApiResult<Option<Response>> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let mut tx = db.begin().await?;
        let stored = idempotency::find(&mut tx, &self.scope, key).await?;
        tx.rollback().await?;
        Ok(stored.map(|s| replay(s, &self.hash)))
    }

    /// Records the answer in the effect's transaction and commits both. When a concurrent
    /// request with the same key committed first, the effect is rolled back and the winner's
    /// answer replayed.
    pub async fn commit(
        &self,
        db: &Db,
        mut tx: Tx,
        status: StatusCode,
        body: &impl Serialize,
        location: Option<String>,
        now: i64,
    ) -> ApiResult<Response> {
        let body = serde_json::to_string(body).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(key) = &self.key {
            let answer = StoredAnswer {
                request_hash: self.hash.clone(),
                status: status.as_u16(),
                body: body.clone(),
                location: location.clone(),
            };
            if !idempotency::record(&mut tx, &self.scope, key, &answer, now).await? {
                tx.rollback().await?;
                let mut tx = db.begin().await?;
                let stored = idempotency::find(&mut tx, &self.scope, key).await?;
                tx.rollback().await?;
                return stored
                    .map(|s| replay(s, &self.hash))
                    .ok_or_else(|| ApiError::internal("idempotency answer vanished"));
            }
        }
        tx.commit().await?;
        Ok(json_response(status, body, location.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[{"q":1,"p":2}]}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":[{"p":2,"q":1}],"y":2},"b":1}"#).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":[{"p":2,"q":1}],"y":3},"b":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
