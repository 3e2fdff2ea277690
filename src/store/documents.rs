//! SQL of documents: the metadata of the photos a filing carries to review (id, filing,
//! kind, content type, size, SHA-256, uploader, time). The bytes are not here: they are in
//! the document store (`crate::documents`), under the same id.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, Tx};

#[derive(Debug, Clone)]
pub struct Document {
    pub id: String,
    pub filing_id: String,
    /// `id_document` or `holding_photo` (`domain::documents::DocumentKind`).
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The `sub` of the user who uploaded it.
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

const COLUMNS: &str =
    "id, filing_id, kind, content_type, size_bytes, sha256, uploaded_by, uploaded_at";

fn from_row(r: &AnyRow) -> DbResult<Document> {
    Ok(Document {
        id: r.try_get("id")?,
        filing_id: r.try_get("filing_id")?,
        kind: r.try_get("kind")?,
        content_type: r.try_get("content_type")?,
        size_bytes: r.try_get("size_bytes")?,
        sha256: r.try_get("sha256")?,
        uploaded_by: r.try_get("uploaded_by")?,
        uploaded_at: r.try_get("uploaded_at")?,
    })
}

pub async fn insert(tx: &mut Tx, d: &Document) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO documents (id, filing_id, kind, content_type, size_bytes, sha256, uploaded_by, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&d.id)
    .bind(&d.filing_id)
    .bind(&d.kind)
    .bind(&d.content_type)
    .bind(d.size_bytes)
    .bind(&d.sha256)
    .bind(&d.uploaded_by)
    .bind(d.uploaded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn find<'e, E>(executor: E, id: &str) -> DbResult<Option<Document>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A filing's documents, oldest first (what the review page links to).
pub async fn for_filing<'e, E>(executor: E, filing_id: &str) -> DbResult<Vec<Document>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql =
        format!("SELECT {COLUMNS} FROM documents WHERE filing_id = $1 ORDER BY uploaded_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(filing_id)
        .fetch_all(executor)
        .await?;
    rows.iter().map(from_row).collect()
}
