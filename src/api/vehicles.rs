//! The owner's side of filings (the caller's driver ID number must be the vehicle's owner ID
//! number): who filed my vehicle (names masked), and removing any of them.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::problem::{ApiError, ApiResult, Path, Problem};
use crate::domain::masking::mask_name;
use crate::domain::plate::parse_plate;
use crate::domain::registry::Vehicle;
use crate::store::{filings, registry};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_filers))
        .routes(routes!(remove_filer))
}

#[derive(Serialize, ToSchema)]
pub struct FilerView {
    /// The filing id.
    id: String,
    filer_name_masked: String,
    relationship: String,
    status: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct FilerList {
    items: Vec<FilerView>,
    next_cursor: Option<String>,
}

/// The vehicle, if the caller owns it: 422 for a malformed plate, 404 for an unknown
/// vehicle, 403 for someone else's.
async fn owned_vehicle(
    state: &AppState,
    caller: &Caller,
    plate_type: &str,
    plate_number: &str,
) -> ApiResult<Vehicle> {
    caller.require(&[Role::User])?;
    let (pt, pn) = parse_plate(plate_type, plate_number).map_err(|e| {
        let field = if e.code() == "invalid_plate_type" {
            "plate_type"
        } else {
            "plate_number"
        };
        ApiError::invalid_field(e.code(), field, e.to_string())
    })?;
    let vehicle = registry::find_vehicle(state.db.pool(), pt.as_str(), pn.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("vehicle_not_found", "no such vehicle"))?;
    let me = registry::find_driver(state.db.pool(), &caller.sub).await?;
    let is_owner =
        me.is_some_and(|d| d.fields.id_number.trim() == vehicle.fields.owner_id_number.trim());
    if !is_owner {
        return Err(ApiError::forbidden(
            "only the vehicle's registered owner can do this",
        ));
    }
    Ok(vehicle)
}

/// Live filings of the caller's vehicle by others, filer names masked.
#[utoipa::path(get, path = "/v1/vehicles/{plate_type}/{plate_number}/filings", tag = "owners", security(("bearer" = [])),
    params(("plate_type" = String, Path), ("plate_number" = String, Path)),
    responses((status = 200, body = FilerList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_filers(
    State(state): State<AppState>,
    caller: Caller,
    Path((plate_type, plate_number)): Path<(String, String)>,
) -> ApiResult<axum::Json<FilerList>> {
    let vehicle = owned_vehicle(&state, &caller, &plate_type, &plate_number).await?;
    let live = filings::live_for_vehicle(
        &state.db,
        vehicle.plate_type.as_str(),
        vehicle.plate_number.as_str(),
    )
    .await?;
    let mut items = Vec::with_capacity(live.len());
    for f in live {
        let name = registry::find_driver(state.db.pool(), &f.filer_id)
            .await?
            .map(|d| d.fields.name)
            .unwrap_or_default();
        items.push(FilerView {
            id: f.id,
            filer_name_masked: mask_name(&name),
            relationship: f.relationship,
            status: f.status.as_str().into(),
            created_at: crate::clock::rfc3339(f.created_at),
        });
    }
    Ok(axum::Json(FilerList {
        items,
        next_cursor: None,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    id: String,
    status: String,
}

/// Removes a filer: an approved filing is `unbound`, one in progress `cancelled`.
#[utoipa::path(delete, path = "/v1/vehicles/{plate_type}/{plate_number}/filings/{id}", tag = "owners", security(("bearer" = [])),
    params(("plate_type" = String, Path), ("plate_number" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Removed), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_filer(
    State(state): State<AppState>,
    caller: Caller,
    Path((plate_type, plate_number, id)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<Removed>> {
    let vehicle = owned_vehicle(&state, &caller, &plate_type, &plate_number).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let filing = filings::load_for_update(&state.db, &mut tx, &id)
        .await?
        .filter(|f| {
            f.plate_type == vehicle.plate_type.as_str()
                && f.plate_number == vehicle.plate_number.as_str()
                && !f.own_vehicle
        })
        .ok_or_else(|| ApiError::not_found("filing_not_found", "no such filing of this vehicle"))?;
    let status = super::filings::end(&state, &mut tx, &filing, now, "by_owner").await?;
    tx.commit().await?;
    Ok(axum::Json(Removed {
        id,
        status: status.as_str().into(),
    }))
}
