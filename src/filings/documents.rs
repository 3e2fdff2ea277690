//! The photos a filing carries to review: who may hand them in and when, storing them, and
//! the move to review they cause. A filing takes photos in `documents_required` (after a
//! failed face check; it moves to `under_review`) and, for a QR filing, in `under_review`
//! (the photos join the open review). Only the filer uploads. The bytes go to the document
//! store first, then the metadata and the move commit together; if that fails, the bytes
//! just stored are removed again, so nothing half-accepted remains.

use ring::digest;

use super::FilingError;
use super::into_review::enter_review;
use crate::domain::documents::{DocumentKind, ImageFormat};
use crate::domain::filing::{FilingMethod, FilingStatus};
use crate::services::Services;
use crate::store::documents::{self, Document};
use crate::store::filings::{self, Filing};

/// One photo as received: its kind (the multipart field) and its format read from the bytes.
#[derive(Debug, Clone)]
pub struct Upload {
    pub kind: DocumentKind,
    pub format: ImageFormat,
    pub bytes: Vec<u8>,
}

/// Why photos were refused.
#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    #[error("no such filing")]
    NotFound,
    #[error("only the filer uploads the filing's photos")]
    NotTheFiler,
    #[error("the filing is {} and takes no photos", .0.as_str())]
    NotExpected(FilingStatus),
    #[error("the document store failed: {0}")]
    Storage(#[from] std::io::Error),
    #[error(transparent)]
    Filing(#[from] FilingError),
}

impl From<sqlx::Error> for DocumentsError {
    fn from(e: sqlx::Error) -> Self {
        DocumentsError::Filing(FilingError::Db(e))
    }
}

/// What taking the photos does to the filing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// `documents_required` -> `under_review`: the review opens.
    EntersReview,
    /// A QR filing already `under_review`: the photos join its review.
    JoinsReview,
}

fn effect_of(filing: &Filing, uploader: &str) -> Result<Effect, DocumentsError> {
    if filing.filer_id != uploader {
        return Err(DocumentsError::NotTheFiler);
    }
    let method = FilingMethod::parse(&filing.method).unwrap_or(FilingMethod::Sms);
    match (filing.status, method) {
        (FilingStatus::DocumentsRequired, _) => Ok(Effect::EntersReview),
        (FilingStatus::UnderReview, FilingMethod::Qr) => Ok(Effect::JoinsReview),
        (status, _) => Err(DocumentsError::NotExpected(status)),
    }
}

/// Whether `uploader` may hand in photos for the filing now (before its body is read).
pub async fn may_upload(
    services: &Services,
    filing_id: &str,
    uploader: &str,
) -> Result<(), DocumentsError> {
    let filing = filings::find(services.db.pool(), filing_id)
        .await?
        .ok_or(DocumentsError::NotFound)?;
    effect_of(&filing, uploader).map(|_| ())
}

/// Stores the photos and records them on the filing, moving it to review where due; answers
/// the documents recorded.
pub async fn attach(
    services: &Services,
    filing_id: &str,
    uploader: &str,
    uploads: Vec<Upload>,
    now: i64,
) -> Result<Vec<Document>, DocumentsError> {
    may_upload(services, filing_id, uploader).await?;
    let mut stored: Vec<Document> = Vec::with_capacity(uploads.len());
    for upload in &uploads {
        let id = crate::store::new_id();
        if let Err(e) = services.documents.put(&id, &upload.bytes).await {
            forget(services, &stored).await;
            return Err(e.into());
        }
        stored.push(Document {
            id,
            filing_id: filing_id.to_string(),
            kind: upload.kind.as_str().into(),
            content_type: upload.format.content_type().into(),
            size_bytes: upload.bytes.len() as i64,
            sha256: hex::encode(digest::digest(&digest::SHA256, &upload.bytes)),
            uploaded_by: uploader.to_string(),
            uploaded_at: now,
        });
    }
    match record(services, filing_id, uploader, &stored, now).await {
        Ok(()) => {
            // Opening a review may have enqueued work or scheduled its SLA timers.
            services.queue.wake();
            services.queue.timers_changed();
            Ok(stored)
        }
        Err(e) => {
            forget(services, &stored).await;
            Err(e)
        }
    }
}

/// The metadata and the move, in one transaction (the filing checked again under its lock).
async fn record(
    services: &Services,
    filing_id: &str,
    uploader: &str,
    stored: &[Document],
    now: i64,
) -> Result<(), DocumentsError> {
    let mut tx = services.db.begin().await?;
    let mut filing = filings::load_for_update(&services.db, &mut tx, filing_id)
        .await?
        .ok_or(DocumentsError::NotFound)?;
    let effect = effect_of(&filing, uploader)?;
    for document in stored {
        documents::insert(&mut tx, document).await?;
    }
    if effect == Effect::EntersReview {
        enter_review(services, &mut tx, &mut filing, now, "documents_uploaded").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes bytes stored for an upload that was not recorded (best effort: an orphan file
/// without metadata is never served).
async fn forget(services: &Services, stored: &[Document]) {
    for document in stored {
        if let Err(e) = services.documents.delete(&document.id).await {
            tracing::warn!(document_id = %document.id, error = %e, "could not remove an unrecorded document");
        }
    }
}
