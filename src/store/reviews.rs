//! SQL of manual reviews: the review row of a filing (SLA times, flags, escalation level,
//! the reviewer's lease, the decision), the pending queue in order of urgency, the counts
//! the gauges report, and the audit trail (who did what to a review, when, why).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, DbResult, Tx, get_bool};

/// A review as stored (times in Unix milliseconds).
#[derive(Debug, Clone)]
pub struct Review {
    pub filing_id: String,
    pub opened_at: i64,
    pub deadline_at: i64,
    pub at_risk_at: i64,
    pub at_risk: bool,
    pub breached: bool,
    pub escalation_level: i64,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<i64>,
    /// `approved`, `rejected`, or `withdrawn` (the filing ended while under review).
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

impl Review {
    pub fn is_open(&self) -> bool {
        self.decided_at.is_none()
    }

    /// Who holds the lease at `now`, if anyone.
    pub fn claim_holder(&self, now: i64) -> Option<&str> {
        match (&self.claimed_by, self.claim_expires_at) {
            (Some(who), Some(until)) if until > now => Some(who),
            _ => None,
        }
    }

    /// Where the review stands in the queue: 0 breached, 1 at risk, 2 otherwise.
    pub fn urgency(&self) -> i64 {
        if self.breached {
            0
        } else if self.at_risk {
            1
        } else {
            2
        }
    }
}

/// One line of a review's audit trail.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
}

const COLUMNS: &str = "filing_id, opened_at, deadline_at, at_risk_at, at_risk, breached, \
     escalation_level, claimed_by, claim_expires_at, decision, reason, decided_by, decided_at";

/// Urgency as SQL: breached first, then at risk, then the rest.
const URGENCY: &str = "(CASE WHEN breached = $1 THEN 0 WHEN at_risk = $1 THEN 1 ELSE 2 END)";

fn from_row(r: &AnyRow) -> DbResult<Review> {
    Ok(Review {
        filing_id: r.try_get("filing_id")?,
        opened_at: r.try_get("opened_at")?,
        deadline_at: r.try_get("deadline_at")?,
        at_risk_at: r.try_get("at_risk_at")?,
        at_risk: get_bool(r, "at_risk")?,
        breached: get_bool(r, "breached")?,
        escalation_level: r.try_get("escalation_level")?,
        claimed_by: r.try_get("claimed_by")?,
        claim_expires_at: r.try_get("claim_expires_at")?,
        decision: r.try_get("decision")?,
        reason: r.try_get("reason")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
    })
}

/// Inserts an open review; false (nothing changed) when the filing has one already.
pub async fn insert(
    tx: &mut Tx,
    filing_id: &str,
    opened_at: i64,
    deadline_at: i64,
    at_risk_at: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO reviews (filing_id, opened_at, deadline_at, at_risk_at, at_risk, breached, escalation_level)
         VALUES ($1, $2, $3, $4, $5, $5, 0) ON CONFLICT (filing_id) DO NOTHING",
    )
    .bind(filing_id)
    .bind(opened_at)
    .bind(deadline_at)
    .bind(at_risk_at)
    .bind(false)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find<'e, E>(executor: E, filing_id: &str) -> DbResult<Option<Review>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM reviews WHERE filing_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(filing_id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Loads a review inside a write transaction, locking its row on PostgreSQL (SQLite's
/// single writer serializes the rest).
pub async fn load_for_update(db: &Db, tx: &mut Tx, filing_id: &str) -> DbResult<Option<Review>> {
    let lock = if db.backend() == Backend::Postgres {
        "FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM reviews WHERE filing_id = $1 {lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(filing_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn set_at_risk(tx: &mut Tx, filing_id: &str) -> DbResult<()> {
    sqlx::query("UPDATE reviews SET at_risk = $2 WHERE filing_id = $1")
        .bind(filing_id)
        .bind(true)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records escalation `level` (the review is breached, and at risk by then too).
pub async fn escalate(tx: &mut Tx, filing_id: &str, level: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE reviews SET at_risk = $2, breached = $2, escalation_level = $3 WHERE filing_id = $1",
    )
    .bind(filing_id)
    .bind(true)
    .bind(level)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn claim(tx: &mut Tx, filing_id: &str, reviewer: &str, until: i64) -> DbResult<()> {
    sqlx::query("UPDATE reviews SET claimed_by = $2, claim_expires_at = $3 WHERE filing_id = $1")
        .bind(filing_id)
        .bind(reviewer)
        .bind(until)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Closes the review with `decision` (`approved`, `rejected`, `withdrawn`).
pub async fn decide(
    tx: &mut Tx,
    filing_id: &str,
    decision: &str,
    reason: Option<&str>,
    by: &str,
    at: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE reviews SET decision = $2, reason = $3, decided_by = $4, decided_at = $5
         WHERE filing_id = $1 AND decided_at IS NULL",
    )
    .bind(filing_id)
    .bind(decision)
    .bind(reason)
    .bind(by)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Where a page of the pending queue starts: after (urgency, deadline, filing id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    pub urgency: i64,
    pub deadline_at: i64,
    pub filing_id: String,
}

/// Open reviews, most urgent first (breached, at risk, then the nearest deadline), after
/// `after`.
pub async fn pending(db: &Db, after: Option<&QueuePosition>, limit: i64) -> DbResult<Vec<Review>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM reviews WHERE decided_at IS NULL AND ($2 = '' OR
             {URGENCY} > $3 OR ({URGENCY} = $3 AND deadline_at > $4)
             OR ({URGENCY} = $3 AND deadline_at = $4 AND filing_id > $2))
         ORDER BY {URGENCY}, deadline_at, filing_id LIMIT $5"
    );
    let (id, urgency, deadline) = match after {
        Some(p) => (p.filing_id.as_str(), p.urgency, p.deadline_at),
        None => ("", 0, 0),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(true)
        .bind(id)
        .bind(urgency)
        .bind(deadline)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Open reviews (at risk and not yet breached, breached): what the gauges report.
pub async fn open_counts(db: &Db) -> DbResult<(i64, i64)> {
    let row = sqlx::query(
        "SELECT
             COALESCE(SUM(CASE WHEN at_risk = $1 AND breached = $2 THEN 1 ELSE 0 END), 0) AS at_risk,
             COALESCE(SUM(CASE WHEN breached = $1 THEN 1 ELSE 0 END), 0) AS breached
         FROM reviews WHERE decided_at IS NULL",
    )
    .bind(true)
    .bind(false)
    .fetch_one(db.pool())
    .await?;
    Ok((row.try_get("at_risk")?, row.try_get("breached")?))
}

pub async fn add_audit(
    tx: &mut Tx,
    filing_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    detail: Option<&str>,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO review_audit (filing_id, seq, at, actor, action, detail)
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM review_audit WHERE filing_id = $1), $2, $3, $4, $5)",
    )
    .bind(filing_id)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A review's audit trail, oldest first.
pub async fn audit<'e, E>(executor: E, filing_id: &str) -> DbResult<Vec<AuditEntry>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT at, actor, action, detail FROM review_audit WHERE filing_id = $1 ORDER BY seq",
    )
    .bind(filing_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// The documents of a filing a reviewer looks at, as (document id, kind).
pub async fn document_links(db: &Db, filing_id: &str) -> DbResult<Vec<(String, String)>> {
    Ok(super::documents::for_filing(db.pool(), filing_id)
        .await?
        .into_iter()
        .map(|d| (d.id, d.kind))
        .collect())
}
