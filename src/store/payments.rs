//! SQL of payments: the order of a penalty decision (its id is the providers'
//! `out_trade_no`), its confirmation code, its checkout, the payment applied once per
//! provider transaction, and the discrepancies recorded instead of applying a notification.
//! A status changes only from the state the caller saw (the row is locked).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, DbResult, Tx};
use crate::domain::payment::PaymentStatus;

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: String,
    pub violation_id: String,
    pub handler_id: String,
    pub decision_number: String,
    pub plate_number: String,
    pub occurred_at: i64,
    pub fine_fen: i64,
    pub points: i64,
    pub decided_at: i64,
    /// The last local date payable without surcharge (`YYYY-MM-DD`).
    pub due_date: String,
    pub status: PaymentStatus,
    pub channel: Option<String>,
    /// The amount of the order sent to the provider at checkout.
    pub order_total_fen: Option<i64>,
    pub checkout_at: Option<i64>,
    /// The handler's phone the confirmation code went to.
    pub phone: String,
    pub code_number: i64,
    pub code_hash: Option<String>,
    pub code_sent_at: Option<i64>,
    pub code_expires_at: Option<i64>,
    pub code_attempts: i64,
    pub transaction_id: Option<String>,
    pub paid_total_fen: Option<i64>,
    pub paid_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, violation_id, handler_id, decision_number, plate_number, occurred_at, fine_fen, \
     points, decided_at, due_date, status, channel, order_total_fen, checkout_at, phone, code_number, code_hash, \
     code_sent_at, code_expires_at, code_attempts, transaction_id, paid_total_fen, paid_at, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Payment> {
    let status: String = r.try_get("status")?;
    Ok(Payment {
        id: r.try_get("id")?,
        violation_id: r.try_get("violation_id")?,
        handler_id: r.try_get("handler_id")?,
        decision_number: r.try_get("decision_number")?,
        plate_number: r.try_get("plate_number")?,
        occurred_at: r.try_get("occurred_at")?,
        fine_fen: r.try_get("fine_fen")?,
        points: r.try_get("points")?,
        decided_at: r.try_get("decided_at")?,
        due_date: r.try_get("due_date")?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("payments.status {status:?}").into()))?,
        channel: r.try_get("channel")?,
        order_total_fen: r.try_get("order_total_fen")?,
        checkout_at: r.try_get("checkout_at")?,
        phone: r.try_get("phone")?,
        code_number: r.try_get("code_number")?,
        code_hash: r.try_get("code_hash")?,
        code_sent_at: r.try_get("code_sent_at")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_attempts: r.try_get("code_attempts")?,
        transaction_id: r.try_get("transaction_id")?,
        paid_total_fen: r.try_get("paid_total_fen")?,
        paid_at: r.try_get("paid_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(tx: &mut Tx, p: &Payment) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO payments (id, violation_id, handler_id, decision_number, plate_number, occurred_at,
             fine_fen, points, decided_at, due_date, status, phone, code_number, code_attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0, $13, $13)",
    )
    .bind(&p.id)
    .bind(&p.violation_id)
    .bind(&p.handler_id)
    .bind(&p.decision_number)
    .bind(&p.plate_number)
    .bind(p.occurred_at)
    .bind(p.fine_fen)
    .bind(p.points)
    .bind(p.decided_at)
    .bind(&p.due_date)
    .bind(p.status.as_str())
    .bind(&p.phone)
    .bind(p.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn find<'e, E>(executor: E, id: &str) -> DbResult<Option<Payment>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Loads a payment inside a write transaction, locking its row on PostgreSQL.
pub async fn load_for_update(db: &Db, tx: &mut Tx, id: &str) -> DbResult<Option<Payment>> {
    let lock = if db.backend() == Backend::Postgres {
        "FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE id = $1 {lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Moves a payment `from` -> `to`; `RowNotFound` when it was no longer in `from`.
pub async fn set_status(
    tx: &mut Tx,
    id: &str,
    from: PaymentStatus,
    to: PaymentStatus,
    at: i64,
) -> DbResult<()> {
    let done = sqlx::query(
        "UPDATE payments SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(at)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

/// Records a new confirmation code (its number, keyed hash, times).
pub async fn set_code(
    tx: &mut Tx,
    id: &str,
    n: i64,
    hash: &str,
    sent_at: i64,
    expires_at: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE payments SET code_number = $2, code_hash = $3, code_sent_at = $4, code_expires_at = $5,
             code_attempts = 0 WHERE id = $1",
    )
    .bind(id)
    .bind(n)
    .bind(hash)
    .bind(sent_at)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn count_wrong_code(tx: &mut Tx, id: &str) -> DbResult<i64> {
    sqlx::query("UPDATE payments SET code_attempts = code_attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar("SELECT code_attempts FROM payments WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
}

/// Records the order sent to a provider at checkout.
pub async fn set_checkout(
    tx: &mut Tx,
    id: &str,
    channel: &str,
    total_fen: i64,
    at: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE payments SET channel = $2, order_total_fen = $3, checkout_at = $4, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(channel)
    .bind(total_fen)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The order is paid by provider transaction `transaction_id`: recorded once (the row must
/// be in `from`; the transaction id is unique).
pub async fn mark_paid(
    tx: &mut Tx,
    id: &str,
    from: PaymentStatus,
    channel: &str,
    transaction_id: &str,
    total_fen: i64,
    at: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE payments SET status = 'paid', channel = $2, transaction_id = $3, paid_total_fen = $4,
             paid_at = $5, updated_at = $5 WHERE id = $1 AND status = $6",
    )
    .bind(id)
    .bind(channel)
    .bind(transaction_id)
    .bind(total_fen)
    .bind(at)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Orders checked out before `before` and still unpaid (for the provider query).
pub async fn stale_orders(db: &Db, before: i64, limit: i64) -> DbResult<Vec<Payment>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payments WHERE status = 'awaiting_payment' AND checkout_at IS NOT NULL
           AND checkout_at < $1 ORDER BY checkout_at LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// A notification that was refused or did not match its order, recorded instead of applied.
#[derive(Debug, Clone)]
pub struct Discrepancy {
    pub channel: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    /// `unknown_order`, `amount_mismatch`, `merchant_mismatch`, `duplicate_payment`, ...
    pub kind: String,
    pub detail: String,
    pub amount_fen: Option<i64>,
}

pub async fn record_discrepancy(tx: &mut Tx, d: &Discrepancy, at: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO payment_discrepancies (id, channel, out_trade_no, transaction_id, kind, detail, amount_fen, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(super::new_id())
    .bind(&d.channel)
    .bind(&d.out_trade_no)
    .bind(&d.transaction_id)
    .bind(&d.kind)
    .bind(&d.detail)
    .bind(d.amount_fen)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The discrepancies recorded for an order, oldest first.
pub async fn discrepancies_of<'e, E>(executor: E, out_trade_no: &str) -> DbResult<Vec<Discrepancy>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT channel, out_trade_no, transaction_id, kind, detail, amount_fen FROM payment_discrepancies
         WHERE out_trade_no = $1 ORDER BY created_at, id",
    )
    .bind(out_trade_no)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Discrepancy {
                channel: r.try_get("channel")?,
                out_trade_no: r.try_get("out_trade_no")?,
                transaction_id: r.try_get("transaction_id")?,
                kind: r.try_get("kind")?,
                detail: r.try_get("detail")?,
                amount_fen: r.try_get("amount_fen")?,
            })
        })
        .collect()
}
