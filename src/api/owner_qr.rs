//! The owner's QR code (扫码备案): `POST /v1/vehicles/{plate_type}/{plate_number}/qr` signs a
//! token for the caller's own vehicle, valid `filing.qr_ttl_seconds` (10 minutes), which a
//! filer hands in with a `method: "qr"` filing. Only the vehicle's registered owner asks
//! (unknown vehicle 404, someone else's 403). The signing is the filing lifecycle's
//! (`filings::qr`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::idempotency::{Idempotency, OptionalIdempotencyKey};
use super::problem::{ApiResult, Path, Problem};
use super::vehicles::owned_vehicle;
use crate::clock::rfc3339;
use crate::filings::qr::issue_token;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_qr))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QrTokenView {
    /// What the QR code carries; a filer hands it in as `qr_token` of a `method: "qr"` filing.
    qr_token: String,
    /// When the token stops being accepted (RFC 3339).
    expires_at: String,
}

/// Signs a QR token for the caller's vehicle, valid 10 minutes (`filing.qr_ttl_seconds`).
/// Takes an optional `Idempotency-Key`: a repeat answers the same token.
#[utoipa::path(post, path = "/v1/vehicles/{plate_type}/{plate_number}/qr", tag = "owners", security(("bearer" = [])),
    params(("plate_type" = String, Path), ("plate_number" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "a repeat returns the first answer")),
    responses((status = 201, body = QrTokenView), (status = 403, description = "not the vehicle's owner", body = Problem),
        (status = 404, description = "no such vehicle", body = Problem), (status = 422, body = Problem)))]
async fn issue_qr(
    State(state): State<AppState>,
    caller: Caller,
    OptionalIdempotencyKey(key): OptionalIdempotencyKey,
    Path((plate_type, plate_number)): Path<(String, String)>,
) -> ApiResult<Response> {
    let vehicle = owned_vehicle(&state, &caller, &plate_type, &plate_number).await?;
    let (pt, pn) = (vehicle.plate_type.as_str(), vehicle.plate_number.as_str());
    let idempotency = Idempotency::new(
        &caller.sub,
        "POST /v1/vehicles/{plate_type}/{plate_number}/qr",
        key,
        &serde_json::json!({ "plate_type": pt, "plate_number": pn }),
    );
    if let Some(repeat) = idempotency.repeat(&state.db).await? {
        return Ok(repeat);
    }
    let now = state.clock.now_ms();
    let token = issue_token(&state.services, pt, pn, now);
    let view = QrTokenView {
        qr_token: token.token,
        expires_at: rfc3339(token.expires_at),
    };
    let tx = state.db.begin().await?;
    idempotency
        .commit(&state.db, tx, StatusCode::CREATED, &view, None, now)
        .await
}
