//! SQL of filings: the row, its history (every transition with time and cause), the counts
//! the limits need and the locks that keep them race-free. In-app messages are in
//! `store::messages`, the codes texted per phone in `store::sms_log`. A status changes only
//! through [`transition`], which takes a move the domain allowed.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, DbResult, Tx};
use crate::domain::filing::{FilingCounts, FilingStatus, Move, RejectReason};

#[derive(Debug, Clone)]
pub struct Filing {
    pub id: String,
    pub method: String,
    pub filer_id: String,
    pub plate_type: String,
    pub plate_number: String,
    pub engine_last6: String,
    pub relationship: String,
    pub status: FilingStatus,
    pub reason: Option<String>,
    pub own_vehicle: bool,
    pub owner_phone: Option<String>,
    pub code_number: i64,
    pub code_hash: Option<String>,
    pub code_sent_at: Option<i64>,
    pub code_expires_at: Option<i64>,
    pub code_attempts: i64,
    pub local_date: String,
    pub local_year: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub status: FilingStatus,
    pub at: i64,
    pub cause: String,
}

const COLUMNS: &str = "id, method, filer_id, plate_type, plate_number, engine_last6, relationship, status, \
     reason, own_vehicle, owner_phone, code_number, code_hash, code_sent_at, code_expires_at, code_attempts, \
     local_date, local_year, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Filing> {
    let status: String = r.try_get("status")?;
    Ok(Filing {
        id: r.try_get("id")?,
        method: r.try_get("method")?,
        filer_id: r.try_get("filer_id")?,
        plate_type: r.try_get("plate_type")?,
        plate_number: r.try_get("plate_number")?,
        engine_last6: r.try_get("engine_last6")?,
        relationship: r.try_get("relationship")?,
        status: FilingStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("filings.status {status:?}").into()))?,
        reason: r.try_get("reason")?,
        own_vehicle: super::get_bool(r, "own_vehicle")?,
        owner_phone: r.try_get("owner_phone")?,
        code_number: r.try_get("code_number")?,
        code_hash: r.try_get("code_hash")?,
        code_sent_at: r.try_get("code_sent_at")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_attempts: r.try_get("code_attempts")?,
        local_date: r.try_get("local_date")?,
        local_year: r.try_get("local_year")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(tx: &mut Tx, f: &Filing) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO filings (id, method, filer_id, plate_type, plate_number, engine_last6, relationship,
             status, own_vehicle, live, code_number, code_attempts, local_date, local_year, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, $12, $13, $13)",
    )
    .bind(&f.id)
    .bind(&f.method)
    .bind(&f.filer_id)
    .bind(&f.plate_type)
    .bind(&f.plate_number)
    .bind(&f.engine_last6)
    .bind(&f.relationship)
    .bind(f.status.as_str())
    .bind(false)
    .bind(true)
    .bind(&f.local_date)
    .bind(&f.local_year)
    .bind(f.created_at)
    .execute(&mut **tx)
    .await?;
    add_history(tx, &f.id, f.status, f.created_at, "submitted").await
}

async fn add_history(
    tx: &mut Tx,
    id: &str,
    status: FilingStatus,
    at: i64,
    cause: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO filing_history (filing_id, seq, status, at, cause)
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM filing_history WHERE filing_id = $1), $2, $3, $4)",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(at)
    .bind(cause)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Loads a filing inside a write transaction, locking its row on PostgreSQL.
pub async fn load_for_update(db: &Db, tx: &mut Tx, id: &str) -> DbResult<Option<Filing>> {
    let lock = if db.backend() == Backend::Postgres {
        "FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM filings WHERE id = $1 {lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find<'e, E>(executor: E, id: &str) -> DbResult<Option<Filing>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM filings WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A filing's history, oldest first (on the pool, or inside a transaction).
pub async fn history<'e, E>(executor: E, id: &str) -> DbResult<Vec<HistoryEntry>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT status, at, cause FROM filing_history WHERE filing_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(HistoryEntry {
                status: FilingStatus::parse(&status).ok_or_else(|| {
                    sqlx::Error::Decode(format!("filing_history.status {status:?}").into())
                })?,
                at: r.try_get("at")?,
                cause: r.try_get("cause")?,
            })
        })
        .collect()
}

/// The caller's filings, newest first, after `cursor` (an id).
pub async fn list_for_filer(
    db: &Db,
    filer_id: &str,
    status: Option<FilingStatus>,
    cursor: Option<&str>,
    limit: i64,
) -> DbResult<Vec<Filing>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM filings WHERE filer_id = $1 AND ($2 = '' OR status = $2)
             AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(filer_id)
        .bind(status.map(FilingStatus::as_str).unwrap_or(""))
        .bind(cursor.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Live filings of a vehicle by people other than its owner that passed intake (the
/// owner's list), in id order after `cursor`.
pub async fn live_for_vehicle(
    db: &Db,
    plate_type: &str,
    plate_number: &str,
    cursor: Option<&str>,
    limit: i64,
) -> DbResult<Vec<Filing>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM filings WHERE plate_type = $1 AND plate_number = $2 AND live = $3
             AND own_vehicle = $4 AND status <> $5 AND ($6 = '' OR id > $6) ORDER BY id LIMIT $7"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plate_type)
        .bind(plate_number)
        .bind(true)
        .bind(false)
        .bind(FilingStatus::Received.as_str())
        .bind(cursor.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Records a move the domain allowed, with its time and cause. The row must still be in the
/// move's starting state (the caller holds it locked); otherwise nothing changes and the
/// answer is `RowNotFound`.
pub async fn transition(tx: &mut Tx, id: &str, step: Move, at: i64, cause: &str) -> DbResult<()> {
    let to = step.to();
    let done = sqlx::query(
        "UPDATE filings SET status = $2, live = $3, updated_at = $4 WHERE id = $1 AND status = $5",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(to.is_live())
    .bind(at)
    .bind(step.from().as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(sqlx::Error::RowNotFound);
    }
    add_history(tx, id, to, at, cause).await
}

/// Records why intake rejected a filing (its move to `rejected` is a [`transition`]).
pub async fn set_reason(tx: &mut Tx, id: &str, reason: RejectReason) -> DbResult<()> {
    sqlx::query("UPDATE filings SET reason = $2 WHERE id = $1")
        .bind(id)
        .bind(reason.code())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn mark_own_vehicle(tx: &mut Tx, id: &str) -> DbResult<()> {
    sqlx::query("UPDATE filings SET own_vehicle = $2 WHERE id = $1")
        .bind(id)
        .bind(true)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records a new code (its number, hash, times) and the owner's phone it went to.
pub async fn set_code(
    tx: &mut Tx,
    id: &str,
    n: i64,
    hash: &str,
    phone: &str,
    sent_at: i64,
    expires_at: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE filings SET code_number = $2, code_hash = $3, owner_phone = $4, code_sent_at = $5,
             code_expires_at = $6, code_attempts = 0 WHERE id = $1",
    )
    .bind(id)
    .bind(n)
    .bind(hash)
    .bind(phone)
    .bind(sent_at)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn count_wrong_code(tx: &mut Tx, id: &str) -> DbResult<i64> {
    sqlx::query("UPDATE filings SET code_attempts = code_attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar("SELECT code_attempts FROM filings WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
}

/// Serializes the competing transactions of one subject (a filer, a vehicle, a phone) until
/// commit: a transaction-scoped advisory lock on PostgreSQL; SQLite's single writer already
/// does it.
pub async fn lock_subject(db: &Db, tx: &mut Tx, subject: &str) -> DbResult<()> {
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(subject)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The counts the limits need, leaving `exclude` (the filing being checked) out.
///
/// Places: live filings that passed intake (a `received` one has reserved nothing yet;
/// intakes are serialized, so each sees the places the others took). Applications per day
/// and year: those started before this one that passed intake as non-owned, whatever became
/// of them, but for the refusals the domain does not count
/// ([`RejectReason::counts_as_application`]). Earlier applications still waiting for their
/// intake are not counted here: see [`pending_before`].
#[allow(clippy::too_many_arguments)]
pub async fn counts(
    tx: &mut Tx,
    filer_id: &str,
    plate_type: &str,
    plate_number: &str,
    local_date: &str,
    local_year: &str,
    exclude: &str,
) -> DbResult<FilingCounts> {
    let [r1, r2, r3] = RejectReason::not_counted().map(RejectReason::code);
    let row = sqlx::query(
        "SELECT
             COALESCE(SUM(CASE WHEN filer_id = $1 AND live = $6 AND status <> $9 AND plate_type = $2 AND plate_number = $3 THEN 1 ELSE 0 END), 0) AS same_vehicle,
             COALESCE(SUM(CASE WHEN filer_id = $1 AND live = $6 AND status <> $9 THEN 1 ELSE 0 END), 0) AS filer_live,
             COALESCE(SUM(CASE WHEN plate_type = $2 AND plate_number = $3 AND live = $6 AND status <> $9 THEN 1 ELSE 0 END), 0) AS vehicle_live,
             COALESCE(SUM(CASE WHEN filer_id = $1 AND local_date = $4 AND id < $8 AND status <> $9 AND (reason IS NULL OR reason NOT IN ($10, $11, $12)) THEN 1 ELSE 0 END), 0) AS today,
             COALESCE(SUM(CASE WHEN filer_id = $1 AND local_year = $5 AND id < $8 AND status <> $9 AND (reason IS NULL OR reason NOT IN ($10, $11, $12)) THEN 1 ELSE 0 END), 0) AS this_year
         FROM filings
         WHERE own_vehicle = $7 AND id <> $8 AND (filer_id = $1 OR (plate_type = $2 AND plate_number = $3))",
    )
    .bind(filer_id)
    .bind(plate_type)
    .bind(plate_number)
    .bind(local_date)
    .bind(local_year)
    .bind(true)
    .bind(false)
    .bind(exclude)
    .bind(FilingStatus::Received.as_str())
    .bind(r1)
    .bind(r2)
    .bind(r3)
    .fetch_one(&mut **tx)
    .await?;
    let n = |c: &str| -> DbResult<u32> { Ok(row.try_get::<i64, _>(c)?.max(0) as u32) };
    Ok(FilingCounts {
        same_vehicle_live: n("same_vehicle")?,
        filer_live: n("filer_live")?,
        vehicle_live: n("vehicle_live")?,
        filer_today: n("today")?,
        filer_this_year: n("this_year")?,
    })
}

/// An application of the same filer started before the one in intake and still waiting for
/// its own intake: whether it counts depends on whether it is for the filer's own vehicle.
#[derive(Debug, Clone)]
pub struct PendingApplication {
    pub method: String,
    pub plate_type: String,
    pub plate_number: String,
    pub engine_last6: String,
    pub local_date: String,
}

/// The filer's applications of `local_year` started before `before` still `received`.
pub async fn pending_before(
    tx: &mut Tx,
    filer_id: &str,
    local_year: &str,
    before: &str,
) -> DbResult<Vec<PendingApplication>> {
    let rows = sqlx::query(
        "SELECT method, plate_type, plate_number, engine_last6, local_date FROM filings
         WHERE filer_id = $1 AND local_year = $2 AND id < $3 AND status = $4 ORDER BY id",
    )
    .bind(filer_id)
    .bind(local_year)
    .bind(before)
    .bind(FilingStatus::Received.as_str())
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PendingApplication {
                method: r.try_get("method")?,
                plate_type: r.try_get("plate_type")?,
                plate_number: r.try_get("plate_number")?,
                engine_last6: r.try_get("engine_last6")?,
                local_date: r.try_get("local_date")?,
            })
        })
        .collect()
}
