//! SQL of reconciliation runs: the run (channel, bill date, status, counts), its items (what
//! did not simply match), the audit of repairs (once per provider transaction), and the
//! paid orders of a channel and local day, streamed for the matcher's index.

use futures_lite::StreamExt;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, DbResult, Tx};

/// A run as stored.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub id: String,
    pub channel: String,
    pub bill_date: String,
    /// `cron`, `api`, `upload` or `cli`.
    pub source: String,
    pub status: String,
    /// The uploaded bill (runs from an upload or the CLI).
    pub file_path: Option<String>,
    pub counts: Counts,
    pub totals_ok: bool,
    pub items_truncated: bool,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// What a run counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub lines: i64,
    pub matched: i64,
    pub repaired: i64,
    pub missing_remote: i64,
    pub amount_mismatch: i64,
    pub duplicates: i64,
    pub refunds: i64,
    pub unknown_orders: i64,
    pub malformed: i64,
}

/// One finding of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub kind: String,
    pub line: Option<i64>,
    pub out_trade_no: Option<String>,
    pub transaction_id: Option<String>,
    pub bill_amount_fen: Option<i64>,
    pub order_amount_fen: Option<i64>,
    pub detail: String,
}

const COLUMNS: &str = "id, channel, bill_date, source, status, file_path, lines, matched, repaired, \
    missing_remote, amount_mismatch, duplicates, refunds, unknown_orders, malformed, totals_ok, \
    items_truncated, error, created_at, updated_at, finished_at";

fn from_row(r: &AnyRow) -> DbResult<Run> {
    Ok(Run {
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        bill_date: r.try_get("bill_date")?,
        source: r.try_get("source")?,
        status: r.try_get("status")?,
        file_path: r.try_get("file_path")?,
        counts: Counts {
            lines: r.try_get("lines")?,
            matched: r.try_get("matched")?,
            repaired: r.try_get("repaired")?,
            missing_remote: r.try_get("missing_remote")?,
            amount_mismatch: r.try_get("amount_mismatch")?,
            duplicates: r.try_get("duplicates")?,
            refunds: r.try_get("refunds")?,
            unknown_orders: r.try_get("unknown_orders")?,
            malformed: r.try_get("malformed")?,
        },
        totals_ok: r.try_get::<i64, _>("totals_ok")? != 0,
        items_truncated: r.try_get::<i64, _>("items_truncated")? != 0,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// Inserts a run; false when one with this id exists already (a cron slot run again).
pub async fn insert(tx: &mut Tx, backend: Backend, run: &Run) -> DbResult<bool> {
    let verb = match backend {
        Backend::Sqlite => "INSERT OR IGNORE",
        Backend::Postgres => "INSERT",
    };
    let tail = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "ON CONFLICT (id) DO NOTHING",
    };
    let sql = format!(
        "{verb} INTO reconciliations (id, channel, bill_date, source, status, file_path, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) {tail}"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&run.id)
        .bind(&run.channel)
        .bind(&run.bill_date)
        .bind(&run.source)
        .bind(&run.status)
        .bind(&run.file_path)
        .bind(run.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find<'e, E>(executor: E, id: &str) -> DbResult<Option<Run>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM reconciliations WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn set_status<'e, E>(executor: E, id: &str, status: &str, now: i64) -> DbResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE reconciliations SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// A run that could not finish (`failed`, with why).
pub async fn fail(db: &Db, id: &str, error: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE reconciliations SET status = 'failed', error = $2, updated_at = $3, finished_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Writes the result of a run: its items (replacing those of an earlier try) and counts.
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    counts: &Counts,
    totals_ok: bool,
    items: &[Item],
    items_truncated: bool,
    now: i64,
) -> DbResult<()> {
    sqlx::query("DELETE FROM reconciliation_items WHERE reconciliation_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (seq, item) in items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO reconciliation_items (reconciliation_id, seq, kind, line, out_trade_no, transaction_id,
                 bill_amount_fen, order_amount_fen, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(seq as i64)
        .bind(&item.kind)
        .bind(item.line)
        .bind(&item.out_trade_no)
        .bind(&item.transaction_id)
        .bind(item.bill_amount_fen)
        .bind(item.order_amount_fen)
        .bind(&item.detail)
        .execute(&mut **tx)
        .await?;
    }
    let c = counts;
    sqlx::query(
        "UPDATE reconciliations SET status = 'done', lines = $2, matched = $3, repaired = $4, missing_remote = $5,
             amount_mismatch = $6, duplicates = $7, refunds = $8, unknown_orders = $9, malformed = $10,
             totals_ok = $11, items_truncated = $12, error = NULL, updated_at = $13, finished_at = $13
         WHERE id = $1",
    )
    .bind(id)
    .bind(c.lines)
    .bind(c.matched)
    .bind(c.repaired)
    .bind(c.missing_remote)
    .bind(c.amount_mismatch)
    .bind(c.duplicates)
    .bind(c.refunds)
    .bind(c.unknown_orders)
    .bind(c.malformed)
    .bind(i64::from(totals_ok))
    .bind(i64::from(items_truncated))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn items(db: &Db, id: &str) -> DbResult<Vec<Item>> {
    let rows = sqlx::query(
        "SELECT kind, line, out_trade_no, transaction_id, bill_amount_fen, order_amount_fen, detail
         FROM reconciliation_items WHERE reconciliation_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Item {
                kind: r.try_get("kind")?,
                line: r.try_get("line")?,
                out_trade_no: r.try_get("out_trade_no")?,
                transaction_id: r.try_get("transaction_id")?,
                bill_amount_fen: r.try_get("bill_amount_fen")?,
                order_amount_fen: r.try_get("order_amount_fen")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// A repair to audit.
#[derive(Debug, Clone, Copy)]
pub struct Repair<'a> {
    pub channel: &'a str,
    pub transaction_id: &'a str,
    pub out_trade_no: &'a str,
    pub run_id: &'a str,
    pub amount_fen: i64,
}

/// Audits a repair; false when this provider transaction was repaired before.
pub async fn record_repair(
    tx: &mut Tx,
    backend: Backend,
    repair: &Repair<'_>,
    now: i64,
) -> DbResult<bool> {
    let Repair {
        channel,
        transaction_id,
        out_trade_no,
        run_id,
        amount_fen,
    } = *repair;
    let (verb, tail) = match backend {
        Backend::Sqlite => ("INSERT OR IGNORE", ""),
        Backend::Postgres => ("INSERT", "ON CONFLICT (channel, transaction_id) DO NOTHING"),
    };
    let sql = format!(
        "{verb} INTO reconciliation_repairs (channel, transaction_id, out_trade_no, reconciliation_id, amount_fen, repaired_at)
         VALUES ($1, $2, $3, $4, $5, $6) {tail}"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(channel)
        .bind(transaction_id)
        .bind(out_trade_no)
        .bind(run_id)
        .bind(amount_fen)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A paid order of a channel and day, as the matcher needs it.
#[derive(Debug, Clone)]
pub struct PaidOrder {
    pub id: String,
    pub transaction_id: String,
    pub paid_total_fen: i64,
}

/// Calls `each` for every order of `channel` paid in `[from_ms, to_ms)` (streamed).
pub async fn each_paid_order(
    db: &Db,
    channel: &str,
    from_ms: i64,
    to_ms: i64,
    mut each: impl FnMut(PaidOrder),
) -> DbResult<()> {
    let mut rows = sqlx::query(
        "SELECT id, transaction_id, paid_total_fen FROM payments
         WHERE channel = $1 AND paid_at >= $2 AND paid_at < $3 AND paid_total_fen IS NOT NULL",
    )
    .bind(channel)
    .bind(from_ms)
    .bind(to_ms)
    .fetch(db.pool());
    while let Some(row) = rows.next().await {
        let row = row?;
        each(PaidOrder {
            id: row.try_get("id")?,
            transaction_id: row
                .try_get::<Option<String>, _>("transaction_id")?
                .unwrap_or_default(),
            paid_total_fen: row.try_get("paid_total_fen")?,
        });
    }
    Ok(())
}

/// Benchmarks only: paid orders with just what reconciliation reads (one multi-row insert
/// per call; the rest of each row is filler).
pub async fn insert_paid_orders_for_bench(
    tx: &mut Tx,
    channel: &str,
    orders: &[(String, String, i64, i64)],
) -> DbResult<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO payments (id, violation_id, handler_id, decision_number, plate_number, occurred_at,
             fine_fen, points, decided_at, due_date, status, channel, order_total_fen, phone,
             transaction_id, paid_total_fen, paid_at, created_at, updated_at) VALUES ",
    );
    for i in 0..orders.len() {
        let b = i * 4;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, 'bench', 'bench', 'bench', 0, ${}, 0, 0, '2026-01-01', 'paid', '{channel}', ${}, '', ${}, ${}, ${}, 0, 0)",
            b + 1, b + 1, b + 3, b + 3, b + 2, b + 3, b + 4
        ));
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (id, txn, amount, paid_at) in orders {
        query = query.bind(id).bind(txn).bind(*amount).bind(*paid_at);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
