//! SQL of in-app messages (`GET /v1/messages`): decisions and, later, payment results, one
//! row per (event, recipient).

use sqlx::Row;

use super::{Db, DbResult, Tx};

/// An in-app message as stored (times in Unix milliseconds; the API formats them).
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub kind: String,
    pub filing_id: Option<String>,
    pub title: String,
    pub body: String,
    pub created_at: i64,
}

pub async fn add(
    tx: &mut Tx,
    user_id: &str,
    kind: &str,
    filing_id: Option<&str>,
    title: &str,
    body: &str,
    at: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO messages (id, user_id, kind, filing_id, title, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(super::new_id())
    .bind(user_id)
    .bind(kind)
    .bind(filing_id)
    .bind(title)
    .bind(body)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The user's messages, newest first, after `cursor` (an id).
pub async fn list(
    db: &Db,
    user_id: &str,
    cursor: Option<&str>,
    limit: i64,
) -> DbResult<Vec<Message>> {
    let rows = sqlx::query(
        "SELECT id, kind, filing_id, title, body, created_at FROM messages
         WHERE user_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(cursor.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Message {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                filing_id: r.try_get("filing_id")?,
                title: r.try_get("title")?,
                body: r.try_get("body")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}
