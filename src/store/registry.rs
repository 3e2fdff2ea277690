//! SQL for the registry copies: vehicle and driver upserts (one row each, created or
//! updated) and the lookups intake and the owner endpoints need.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, Tx};
use crate::domain::plate::{PlateNumber, PlateType};
use crate::domain::registry::{
    Driver, DriverFields, LicenceStatus, OwnerKind, Vehicle, VehicleFields, VehicleUsage,
};

/// Whether an upsert made a new row or changed an existing one (201 or 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

pub async fn upsert_vehicle(tx: &mut Tx, v: &Vehicle, now_ms: i64) -> DbResult<Upserted> {
    let f = &v.fields;
    let inserted = sqlx::query(
        "INSERT INTO vehicles (plate_type, plate_number, owner_id_number, owner_name, owner_phone,
             owner_kind, engine_number, usage, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         ON CONFLICT (plate_type, plate_number) DO NOTHING",
    )
    .bind(v.plate_type.as_str())
    .bind(v.plate_number.as_str())
    .bind(f.owner_id_number.trim())
    .bind(f.owner_name.trim())
    .bind(&f.owner_phone)
    .bind(f.owner_kind.as_str())
    .bind(f.engine_number.trim())
    .bind(f.usage.as_str())
    .bind(&f.status)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Upserted::Created);
    }
    sqlx::query(
        "UPDATE vehicles SET owner_id_number = $3, owner_name = $4, owner_phone = $5,
             owner_kind = $6, engine_number = $7, usage = $8, status = $9, updated_at = $10
         WHERE plate_type = $1 AND plate_number = $2",
    )
    .bind(v.plate_type.as_str())
    .bind(v.plate_number.as_str())
    .bind(f.owner_id_number.trim())
    .bind(f.owner_name.trim())
    .bind(&f.owner_phone)
    .bind(f.owner_kind.as_str())
    .bind(f.engine_number.trim())
    .bind(f.usage.as_str())
    .bind(&f.status)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Upserted::Updated)
}

pub async fn upsert_driver(tx: &mut Tx, d: &Driver, now_ms: i64) -> DbResult<Upserted> {
    let f = &d.fields;
    let inserted = sqlx::query(
        "INSERT INTO drivers (user_id, name, id_number, phone, licence_number, licence_status,
             points, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(&d.user_id)
    .bind(f.name.trim())
    .bind(f.id_number.trim())
    .bind(&f.phone)
    .bind(f.licence_number.trim())
    .bind(f.licence_status.as_str())
    .bind(f.points)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Upserted::Created);
    }
    sqlx::query(
        "UPDATE drivers SET name = $2, id_number = $3, phone = $4, licence_number = $5,
             licence_status = $6, points = $7, updated_at = $8
         WHERE user_id = $1",
    )
    .bind(&d.user_id)
    .bind(f.name.trim())
    .bind(f.id_number.trim())
    .bind(&f.phone)
    .bind(f.licence_number.trim())
    .bind(f.licence_status.as_str())
    .bind(f.points)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Upserted::Updated)
}

const VEHICLE_COLUMNS: &str = "plate_type, plate_number, owner_id_number, owner_name, owner_phone, \
     owner_kind, engine_number, usage, status";

fn vehicle_from_row(row: &AnyRow) -> DbResult<Vehicle> {
    let decode =
        |what: &str| sqlx::Error::Decode(format!("vehicles.{what}: unexpected value").into());
    let plate_type = PlateType::parse(&row.try_get::<String, _>("plate_type")?)
        .map_err(|_| decode("plate_type"))?;
    let plate_number = PlateNumber::parse(&plate_type, &row.try_get::<String, _>("plate_number")?)
        .map_err(|_| decode("plate_number"))?;
    Ok(Vehicle {
        plate_type,
        plate_number,
        fields: VehicleFields {
            owner_id_number: row.try_get("owner_id_number")?,
            owner_name: row.try_get("owner_name")?,
            owner_phone: row.try_get("owner_phone")?,
            owner_kind: OwnerKind::parse(&row.try_get::<String, _>("owner_kind")?)
                .ok_or_else(|| decode("owner_kind"))?,
            engine_number: row.try_get("engine_number")?,
            usage: VehicleUsage::parse(&row.try_get::<String, _>("usage")?)
                .ok_or_else(|| decode("usage"))?,
            status: row.try_get("status")?,
        },
    })
}

pub async fn find_vehicle<'e, E>(
    executor: E,
    plate_type: &str,
    plate_number: &str,
) -> DbResult<Option<Vehicle>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!(
        "SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE plate_type = $1 AND plate_number = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plate_type)
        .bind(plate_number)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(vehicle_from_row).transpose()
}

pub async fn find_driver<'e, E>(executor: E, user_id: &str) -> DbResult<Option<Driver>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT user_id, name, id_number, phone, licence_number, licence_status, points
         FROM drivers WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(executor)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: String = row.try_get("licence_status")?;
    Ok(Some(Driver {
        user_id: row.try_get("user_id")?,
        fields: DriverFields {
            name: row.try_get("name")?,
            id_number: row.try_get("id_number")?,
            phone: row.try_get("phone")?,
            licence_number: row.try_get("licence_number")?,
            licence_status: LicenceStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode("drivers.licence_status: unexpected value".into())
            })?,
            points: row.try_get("points")?,
        },
    }))
}

/// The driver whose ID number owns a vehicle, if they are a registered driver.
pub async fn driver_by_id_number(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id_number: &str,
) -> DbResult<Option<String>> {
    sqlx::query_scalar("SELECT user_id FROM drivers WHERE id_number = $1 ORDER BY user_id LIMIT 1")
        .bind(id_number)
        .fetch_optional(executor)
        .await
}
