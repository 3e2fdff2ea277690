//! SQL of violations: the record (deduplicated by `source_id`), the lists a user sees (the
//! vehicles they own or have an approved filing for), the decision serials, and the
//! standing of a user to a vehicle (owner, or the approval time of their filing).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, DbResult, Tx};
use crate::domain::violation::ViolationStatus;

#[derive(Debug, Clone)]
pub struct Violation {
    pub id: String,
    pub source_id: String,
    pub plate_type: String,
    pub plate_number: String,
    pub occurred_at: i64,
    pub location: String,
    pub violation_code: String,
    pub description: String,
    pub fine_fen: i64,
    pub points: i64,
    pub device_id: String,
    pub status: ViolationStatus,
    pub handler_id: Option<String>,
    pub decision_number: Option<String>,
    pub payment_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, source_id, plate_type, plate_number, occurred_at, location, violation_code, \
     description, fine_fen, points, device_id, status, handler_id, decision_number, payment_id, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Violation> {
    let status: String = r.try_get("status")?;
    Ok(Violation {
        id: r.try_get("id")?,
        source_id: r.try_get("source_id")?,
        plate_type: r.try_get("plate_type")?,
        plate_number: r.try_get("plate_number")?,
        occurred_at: r.try_get("occurred_at")?,
        location: r.try_get("location")?,
        violation_code: r.try_get("violation_code")?,
        description: r.try_get("description")?,
        fine_fen: r.try_get("fine_fen")?,
        points: r.try_get("points")?,
        device_id: r.try_get("device_id")?,
        status: ViolationStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("violations.status {status:?}").into()))?,
        handler_id: r.try_get("handler_id")?,
        decision_number: r.try_get("decision_number")?,
        payment_id: r.try_get("payment_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Inserts a new record; `false` when its `source_id` is known already (nothing changes).
pub async fn insert(tx: &mut Tx, v: &Violation) -> DbResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO violations (id, source_id, plate_type, plate_number, occurred_at, location,
             violation_code, description, fine_fen, points, device_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
         ON CONFLICT (source_id) DO NOTHING",
    )
    .bind(&v.id)
    .bind(&v.source_id)
    .bind(&v.plate_type)
    .bind(&v.plate_number)
    .bind(v.occurred_at)
    .bind(&v.location)
    .bind(&v.violation_code)
    .bind(&v.description)
    .bind(v.fine_fen)
    .bind(v.points)
    .bind(&v.device_id)
    .bind(v.status.as_str())
    .bind(v.created_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn find<'e, E>(executor: E, id: &str) -> DbResult<Option<Violation>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM violations WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Loads a violation inside a write transaction, locking its row on PostgreSQL.
pub async fn load_for_update(db: &Db, tx: &mut Tx, id: &str) -> DbResult<Option<Violation>> {
    let lock = if db.backend() == Backend::Postgres {
        "FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM violations WHERE id = $1 {lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The vehicle condition of what `user_id` sees: vehicles whose owner is the driver with
/// that user id, and vehicles with an approved filing by them. `$1` is the user id.
const VISIBLE: &str = "(EXISTS (SELECT 1 FROM vehicles ve JOIN drivers d ON d.id_number = ve.owner_id_number
         WHERE d.user_id = $1 AND ve.plate_type = violations.plate_type AND ve.plate_number = violations.plate_number)
     OR EXISTS (SELECT 1 FROM filings f WHERE f.filer_id = $1 AND f.status = 'approved'
         AND f.plate_type = violations.plate_type AND f.plate_number = violations.plate_number))";

/// The violations `user_id` sees in `status`, in id order after `cursor`.
pub async fn list_visible(
    db: &Db,
    user_id: &str,
    status: ViolationStatus,
    cursor: Option<&str>,
    limit: i64,
) -> DbResult<Vec<Violation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM violations WHERE status = $2 AND ($3 = '' OR id > $3) AND {VISIBLE}
         ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .bind(status.as_str())
        .bind(cursor.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Whether `user_id` owns the vehicle (as the registered driver with the owner's ID number).
pub async fn is_owner<'e, E>(
    executor: E,
    user_id: &str,
    plate_type: &str,
    plate_number: &str,
) -> DbResult<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM vehicles ve JOIN drivers d ON d.id_number = ve.owner_id_number
         WHERE d.user_id = $1 AND ve.plate_type = $2 AND ve.plate_number = $3",
    )
    .bind(user_id)
    .bind(plate_type)
    .bind(plate_number)
    .fetch_one(executor)
    .await?;
    Ok(n > 0)
}

/// When `user_id`'s approved filing of the vehicle was approved (the earliest such time,
/// if they hold one).
pub async fn filing_approved_at<'e, E>(
    executor: E,
    user_id: &str,
    plate_type: &str,
    plate_number: &str,
) -> DbResult<Option<i64>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_scalar(
        "SELECT MIN(h.at) FROM filings f JOIN filing_history h ON h.filing_id = f.id
         WHERE f.filer_id = $1 AND f.plate_type = $2 AND f.plate_number = $3
           AND f.status = 'approved' AND h.status = 'approved'",
    )
    .bind(user_id)
    .bind(plate_type)
    .bind(plate_number)
    .fetch_one(executor)
    .await
}

/// The approved filers of a vehicle (user ids), for notifications.
pub async fn approved_filers(
    tx: &mut Tx,
    plate_type: &str,
    plate_number: &str,
) -> DbResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT filer_id FROM filings WHERE plate_type = $1 AND plate_number = $2
           AND status = 'approved' AND own_vehicle = $3 ORDER BY filer_id",
    )
    .bind(plate_type)
    .bind(plate_number)
    .bind(false)
    .fetch_all(&mut **tx)
    .await
}

/// The points of decisions issued to `handler_id` and not paid yet (reserved on the licence).
pub async fn points_in_handling(tx: &mut Tx, handler_id: &str) -> DbResult<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM violations WHERE handler_id = $1 AND status = 'handling'",
    )
    .bind(handler_id)
    .fetch_one(&mut **tx)
    .await
}

/// The next serial of decisions on `local_date` (`YYYY-MM-DD`), taken inside the caller's
/// transaction.
pub async fn next_decision_serial(tx: &mut Tx, local_date: &str) -> DbResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO decision_serials (local_date, last) VALUES ($1, 1)
         ON CONFLICT (local_date) DO UPDATE SET last = decision_serials.last + 1
         RETURNING last",
    )
    .bind(local_date)
    .fetch_one(&mut **tx)
    .await
}

/// Records the decision: the violation moves from `unprocessed` to `handling`; `false`
/// when it was no longer unprocessed.
pub async fn mark_handling(
    tx: &mut Tx,
    id: &str,
    handler_id: &str,
    decision_number: &str,
    payment_id: &str,
    at: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE violations SET status = 'handling', handler_id = $2, decision_number = $3,
             payment_id = $4, updated_at = $5 WHERE id = $1 AND status = 'unprocessed'",
    )
    .bind(id)
    .bind(handler_id)
    .bind(decision_number)
    .bind(payment_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The fine is paid: `handling` -> `processed`.
pub async fn mark_processed(tx: &mut Tx, id: &str, at: i64) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE violations SET status = 'processed', updated_at = $2 WHERE id = $1 AND status = 'handling'",
    )
    .bind(id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds `points` to the handler's licence (the points of a paid decision).
pub async fn add_licence_points(tx: &mut Tx, user_id: &str, points: i64, at: i64) -> DbResult<()> {
    sqlx::query("UPDATE drivers SET points = points + $2, updated_at = $3 WHERE user_id = $1")
        .bind(user_id)
        .bind(points)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
