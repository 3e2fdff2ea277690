//! The owner's side of filings (the caller's driver ID number must be the vehicle's owner ID
//! number): who filed my vehicle (names masked, paged, only filings that passed intake),
//! and removing any of them through the filing lifecycle (answered with the filing itself).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::filing_view::{FilingView, current_view};
use super::pagination::{Page, next_cursor};
use super::problem::{ApiError, ApiResult, Path, Problem, Query};
use crate::clock::rfc3339;
use crate::domain::masking::mask_name;
use crate::domain::plate::parse_plate;
use crate::domain::registry::Vehicle;
use crate::filings::ending::{EndedBy, end};
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
pub(crate) async fn owned_vehicle(
    state: &AppState,
    caller: &Caller,
    plate_type: &str,
    plate_number: &str,
) -> ApiResult<Vehicle> {
    caller.require(&[Role::User])?;
    let (pt, pn) = parse_plate(plate_type, plate_number)?;
    let vehicle = registry::find_vehicle(state.db.pool(), pt.as_str(), pn.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("vehicle_not_found", "no such vehicle"))?;
    let me = registry::find_driver(state.db.pool(), &caller.sub).await?;
    if !me.is_some_and(|d| d.owns(&vehicle)) {
        return Err(ApiError::forbidden(
            "only the vehicle's registered owner can do this",
        ));
    }
    Ok(vehicle)
}

/// Live filings of the caller's vehicle by others that passed intake, filer names masked,
/// oldest first.
#[utoipa::path(get, path = "/v1/vehicles/{plate_type}/{plate_number}/filings", tag = "owners", security(("bearer" = [])),
    params(("plate_type" = String, Path), ("plate_number" = String, Path), Page),
    responses((status = 200, body = FilerList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_filers(
    State(state): State<AppState>,
    caller: Caller,
    Path((plate_type, plate_number)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<FilerList>> {
    let vehicle = owned_vehicle(&state, &caller, &plate_type, &plate_number).await?;
    let limit = page.limit()?;
    let live = filings::live_for_vehicle(
        &state.db,
        vehicle.plate_type.as_str(),
        vehicle.plate_number.as_str(),
        page.cursor(),
        limit,
    )
    .await?;
    let next_cursor = next_cursor(&live, limit, |f| &f.id);
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
            created_at: rfc3339(f.created_at),
        });
    }
    Ok(axum::Json(FilerList { items, next_cursor }))
}

/// Removes a filer: an approved filing is `unbound`, one in progress `cancelled`; the answer
/// is the filing.
#[utoipa::path(delete, path = "/v1/vehicles/{plate_type}/{plate_number}/filings/{id}", tag = "owners", security(("bearer" = [])),
    params(("plate_type" = String, Path), ("plate_number" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = FilingView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_filer(
    State(state): State<AppState>,
    caller: Caller,
    Path((plate_type, plate_number, id)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<FilingView>> {
    let vehicle = owned_vehicle(&state, &caller, &plate_type, &plate_number).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut filing = filings::load_for_update(&state.db, &mut tx, &id)
        .await?
        .filter(|f| {
            f.plate_type == vehicle.plate_type.as_str()
                && f.plate_number == vehicle.plate_number.as_str()
                && !f.own_vehicle
                && f.status.passed_intake()
        })
        .ok_or_else(|| ApiError::not_found("filing_not_found", "no such filing of this vehicle"))?;
    end(&state.services, &mut tx, &mut filing, EndedBy::Owner, now).await?;
    tx.commit().await?;
    Ok(axum::Json(current_view(&state, &id).await?))
}
