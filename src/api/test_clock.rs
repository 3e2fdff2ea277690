//! `GET/PUT /v1/test/clock`: the manual clock (only with `clock.manual = true`, admin only,
//! forward only). The new offset is stored in the database so every process follows it.

use axum::extract::State;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::problem::{ApiError, ApiResult, Json};
use crate::clock::rfc3339;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_clock, set_clock))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ClockTime {
    /// RFC 3339 (answers use +08:00)
    pub now: String,
}

fn enabled(state: &AppState) -> ApiResult<()> {
    if state.clock.is_manual() {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "test_clock_disabled",
            "the test clock is off (clock.manual = false)",
        ))
    }
}

/// Reads the service's notion of now.
#[utoipa::path(get, path = "/v1/test/clock", tag = "ops", security(("bearer" = [])), responses(
    (status = 200, body = ClockTime), (status = 401, body = super::problem::Problem),
    (status = 403, body = super::problem::Problem), (status = 404, body = super::problem::Problem)))]
async fn get_clock(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<ClockTime>> {
    caller.require(&[Role::Admin])?;
    enabled(&state)?;
    Ok(axum::Json(ClockTime {
        now: rfc3339(state.clock.now_ms()),
    }))
}

/// Moves the clock forward to `now`; it then runs at real speed from there.
#[utoipa::path(put, path = "/v1/test/clock", tag = "ops", security(("bearer" = [])), request_body = ClockTime, responses(
    (status = 200, body = ClockTime), (status = 409, description = "clock_backwards", body = super::problem::Problem),
    (status = 422, body = super::problem::Problem)))]
async fn set_clock(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ClockTime>,
) -> ApiResult<axum::Json<ClockTime>> {
    caller.require(&[Role::Admin])?;
    enabled(&state)?;
    let target: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(&body.now).map_err(|e| {
        ApiError::invalid_field("invalid_time", "now", format!("now: not RFC 3339: {e}"))
    })?;
    let target_ms = target.with_timezone(&Utc).timestamp_millis();
    let current = state.clock.now_ms();
    if target_ms + 1000 < current {
        return Err(ApiError::conflict(
            "clock_backwards",
            format!(
                "the clock only moves forward; it reads {}",
                rfc3339(current)
            ),
        ));
    }
    let offset = target_ms - Utc::now().timestamp_millis();
    let stored = crate::store::clock::raise_offset(&state.db, offset).await?;
    state.clock.adopt_offset(stored);
    tracing::warn!(now = %rfc3339(state.clock.now_ms()), "test clock moved");
    Ok(axum::Json(ClockTime {
        now: rfc3339(state.clock.now_ms()),
    }))
}
