//! Registry upserts from upstream systems (roles `system` and `admin`):
//! `PUT /v1/registry/vehicles/{plate_type}/{plate_number}` and `PUT /v1/registry/drivers/{user_id}`
//! (201 created, 200 updated), and `GET /v1/me`, the one place a person sees their own data whole.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::problem::{ApiError, ApiResult, Json, Path, Problem};
use crate::domain::masking::{mask_id_number, mask_phone};
use crate::domain::plate::parse_plate;
use crate::domain::registry::{
    Driver, DriverFields, LicenceStatus, OwnerKind, Vehicle, VehicleFields, VehicleUsage,
    validate_user_id,
};
use crate::store::registry::{self as store, Upserted};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_vehicle))
        .routes(routes!(put_driver))
        .routes(routes!(me))
}

/// A vehicle as upstream systems see it back: personal data masked.
#[derive(Serialize, ToSchema)]
pub struct VehicleView {
    plate_type: String,
    plate_number: String,
    owner_name: String,
    owner_id_number_masked: String,
    owner_phone_masked: String,
    owner_kind: OwnerKind,
    usage: VehicleUsage,
    status: String,
}

impl VehicleView {
    fn of(v: &Vehicle) -> Self {
        VehicleView {
            plate_type: v.plate_type.to_string(),
            plate_number: v.plate_number.to_string(),
            owner_name: crate::domain::masking::mask_name(&v.fields.owner_name),
            owner_id_number_masked: mask_id_number(&v.fields.owner_id_number),
            owner_phone_masked: mask_phone(&v.fields.owner_phone),
            owner_kind: v.fields.owner_kind,
            usage: v.fields.usage,
            status: v.fields.status.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DriverView {
    user_id: String,
    name: String,
    /// Whole only to the person themselves (`GET /v1/me`), masked otherwise.
    id_number: String,
    phone: String,
    licence_number: String,
    licence_status: LicenceStatus,
    points: i64,
}

impl DriverView {
    fn of(d: &Driver, is_self: bool) -> Self {
        let f = &d.fields;
        DriverView {
            user_id: d.user_id.clone(),
            name: if is_self {
                f.name.clone()
            } else {
                crate::domain::masking::mask_name(&f.name)
            },
            id_number: if is_self {
                f.id_number.clone()
            } else {
                mask_id_number(&f.id_number)
            },
            phone: if is_self {
                f.phone.clone()
            } else {
                mask_phone(&f.phone)
            },
            licence_number: if is_self {
                f.licence_number.clone()
            } else {
                mask_id_number(&f.licence_number)
            },
            licence_status: f.licence_status,
            points: f.points,
        }
    }
}

fn upsert_status(u: Upserted) -> StatusCode {
    match u {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    }
}

/// Creates (201) or updates (200) a vehicle of the registry copy.
#[utoipa::path(put, path = "/v1/registry/vehicles/{plate_type}/{plate_number}", tag = "registry",
    security(("bearer" = [])),
    params(("plate_type" = String, Path, description = "GA 24.7 code, e.g. 02"),
           ("plate_number" = String, Path, description = "e.g. 京A12345 (normalised)")),
    request_body = VehicleFields,
    responses((status = 201, body = VehicleView), (status = 200, body = VehicleView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_vehicle(
    State(state): State<AppState>,
    caller: Caller,
    Path((plate_type, plate_number)): Path<(String, String)>,
    body: Result<Json<VehicleFields>, ApiError>,
) -> ApiResult<(StatusCode, axum::Json<VehicleView>)> {
    caller.require(&[Role::System, Role::Admin])?;
    let Json(fields) = body?;
    let (plate_type, plate_number) = parse_plate(&plate_type, &plate_number)?;
    fields
        .validate()
        .map_err(|e| ApiError::invalid_field("invalid_field", e.field, e.to_string()))?;
    let vehicle = Vehicle {
        plate_type,
        plate_number,
        fields,
    };
    let mut tx = state.db.begin().await?;
    let upserted = store::upsert_vehicle(&mut tx, &vehicle, state.clock.now_ms()).await?;
    tx.commit().await?;
    Ok((
        upsert_status(upserted),
        axum::Json(VehicleView::of(&vehicle)),
    ))
}

/// Creates (201) or updates (200) a driver of the registry copy.
#[utoipa::path(put, path = "/v1/registry/drivers/{user_id}", tag = "registry",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "the driver's user id, the `sub` of their tokens")),
    request_body = DriverFields,
    responses((status = 201, body = DriverView), (status = 200, body = DriverView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_driver(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Result<Json<DriverFields>, ApiError>,
) -> ApiResult<(StatusCode, axum::Json<DriverView>)> {
    caller.require(&[Role::System, Role::Admin])?;
    let Json(fields) = body?;
    validate_user_id(&user_id)
        .map_err(|e| ApiError::invalid_field("invalid_user_id", e.field, e.to_string()))?;
    fields
        .validate()
        .map_err(|e| ApiError::invalid_field("invalid_field", e.field, e.to_string()))?;
    let driver = Driver { user_id, fields };
    let mut tx = state.db.begin().await?;
    let upserted = store::upsert_driver(&mut tx, &driver, state.clock.now_ms()).await?;
    tx.commit().await?;
    Ok((
        upsert_status(upserted),
        axum::Json(DriverView::of(&driver, false)),
    ))
}

/// The caller's own driver record, unmasked.
#[utoipa::path(get, path = "/v1/me", tag = "registry", security(("bearer" = [])),
    responses((status = 200, body = DriverView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<DriverView>> {
    let driver = store::find_driver(state.db.pool(), &caller.sub)
        .await?
        .ok_or_else(|| ApiError::not_found("driver_not_found", "no driver record for this user"))?;
    Ok(axum::Json(DriverView::of(&driver, true)))
}
