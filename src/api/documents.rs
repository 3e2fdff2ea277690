//! Photos for review: `POST /v1/filings/{id}/documents` (the filer, multipart with
//! `id_document` and `holding_photo`, PNG or JPEG by their bytes) and
//! `GET /v1/documents/{id}` (reviewers, supervisors and the uploader). Uploads have their
//! own size limit (`http.max_upload_bytes`, 10 MiB), counted here as the parts are read;
//! the JSON limit does not apply to this route. Who may upload when, the storage and the
//! move to review are the filing lifecycle's (`filings::documents`).

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::filing_view::{FilingView, current_view, not_found};
use super::problem::{ApiError, ApiResult, Path, Problem, payload_too_large};
use crate::clock::rfc3339;
use crate::domain::documents::{DocumentKind, ImageFormat};
use crate::filings::documents::{DocumentsError, Upload, attach, may_upload};
use crate::store::documents::Document;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        // The upload counts its own limit (`http.max_upload_bytes`) as it reads.
        .layer(DefaultBodyLimit::disable())
        .merge(OpenApiRouter::new().routes(routes!(download)))
}

/// The multipart form of an upload (both parts required; other parts are ignored).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DocumentsForm {
    /// The ID card or driving licence photo: PNG or JPEG (read from the bytes, not the
    /// file name or the declared type).
    #[schema(value_type = String, format = Binary)]
    id_document: Vec<u8>,
    /// The filer holding that document: PNG or JPEG.
    #[schema(value_type = String, format = Binary)]
    holding_photo: Vec<u8>,
}

/// A stored photo, as the uploader and reviewers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    id: String,
    /// `id_document` or `holding_photo`.
    kind: String,
    content_type: String,
    size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    sha256: String,
    uploaded_at: String,
    /// `/v1/documents/{id}`: the bytes.
    href: String,
}

impl DocumentView {
    pub fn of(d: &Document) -> DocumentView {
        DocumentView {
            id: d.id.clone(),
            kind: d.kind.clone(),
            content_type: d.content_type.clone(),
            size_bytes: d.size_bytes,
            sha256: d.sha256.clone(),
            uploaded_at: rfc3339(d.uploaded_at),
            href: format!("/v1/documents/{}", d.id),
        }
    }
}

/// The answer to an upload: the filing, and the documents just stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadAnswer {
    #[serde(flatten)]
    filing: FilingView,
    documents: Vec<DocumentView>,
}

impl From<DocumentsError> for ApiError {
    fn from(e: DocumentsError) -> Self {
        match e {
            DocumentsError::NotFound => not_found(),
            DocumentsError::NotTheFiler => {
                ApiError::forbidden("only the filer uploads the filing's photos")
            }
            DocumentsError::NotExpected(status) => ApiError::conflict(
                "documents_not_expected",
                format!("the filing is {} and takes no photos", status.as_str()),
            ),
            DocumentsError::Storage(e) => {
                ApiError::internal(format!("the photos could not be stored: {e}"))
            }
            DocumentsError::Filing(e) => e.into(),
        }
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        payload_too_large()
    } else {
        ApiError::bad_request("malformed_multipart", e.body_text())
    }
}

/// Reads the parts, counting every byte against `limit`: the two photos, in kind order.
async fn read_photos(multipart: &mut Multipart, limit: usize) -> ApiResult<Vec<Upload>> {
    let mut parts: Vec<(DocumentKind, Vec<u8>)> = Vec::new();
    let mut total = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let kind = field.name().and_then(DocumentKind::parse);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            total += chunk.len();
            if total > limit {
                return Err(payload_too_large());
            }
            if kind.is_some() {
                bytes.extend_from_slice(&chunk);
            }
        }
        let Some(kind) = kind else { continue };
        if parts.iter().any(|(k, _)| *k == kind) {
            return Err(ApiError::invalid_field(
                "duplicate_document",
                kind.as_str(),
                format!("{}: given twice", kind.as_str()),
            ));
        }
        parts.push((kind, bytes));
    }
    let mut uploads = Vec::with_capacity(DocumentKind::ALL.len());
    for kind in DocumentKind::ALL {
        let Some(i) = parts.iter().position(|(k, _)| *k == kind) else {
            return Err(ApiError::invalid_field(
                "missing_document",
                kind.as_str(),
                format!("{}: required (a PNG or JPEG photo)", kind.as_str()),
            ));
        };
        let (_, bytes) = parts.swap_remove(i);
        let format = ImageFormat::sniff(&bytes).ok_or_else(|| {
            ApiError::invalid_field(
                "unsupported_image_format",
                kind.as_str(),
                format!(
                    "{}: not a PNG or JPEG image (the bytes decide, not the name or declared type)",
                    kind.as_str()
                ),
            )
        })?;
        uploads.push(Upload {
            kind,
            format,
            bytes,
        });
    }
    Ok(uploads)
}

/// Hands in the photos: from `documents_required` the filing moves to `under_review` (the
/// review opens); a QR filing already `under_review` takes them into its review. Over
/// `http.max_upload_bytes` is 413 and nothing is stored; a missing part 422 naming it; bytes
/// that are not PNG or JPEG 422 `unsupported_image_format` naming the part.
#[utoipa::path(post, path = "/v1/filings/{id}/documents", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body(content = DocumentsForm, content_type = "multipart/form-data"),
    responses((status = 202, description = "the filing, and the documents just stored", body = UploadAnswer), (status = 400, description = "not a multipart body", body = Problem),
        (status = 403, description = "not the filer", body = Problem), (status = 404, body = Problem),
        (status = 409, description = "documents_not_expected in this state", body = Problem),
        (status = 413, body = Problem),
        (status = 422, description = "missing_document, duplicate_document or unsupported_image_format", body = Problem)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    mut multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let allowed = match caller.require(&[Role::User]) {
        Ok(()) => may_upload(&state.services, &id, &caller.sub)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    if let Err(refused) = allowed {
        // Read the body before answering: a client still sending its photos would otherwise
        // see the connection closed under it instead of the answer.
        discard(&mut multipart).await;
        return Err(refused);
    }
    let mut multipart = multipart.map_err(|_| {
        ApiError::bad_request(
            "unsupported_content_type",
            "expected Content-Type: multipart/form-data with a boundary",
        )
    })?;
    let photos = read_photos(&mut multipart, state.config.http.max_upload_bytes).await?;
    let now = state.clock.now_ms();
    let stored = attach(&state.services, &id, &caller.sub, photos, now).await?;
    let answer = UploadAnswer {
        filing: current_view(&state, &id).await?,
        documents: stored.iter().map(DocumentView::of).collect(),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

/// Reads and drops what is left of an upload's body (bounded by the upload limit and 30 s).
async fn discard(multipart: &mut Result<Multipart, MultipartRejection>) {
    let Ok(multipart) = multipart else { return };
    let drain = async {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drain).await;
}

/// The photo's bytes with its content type: for reviewers and supervisors, and for the
/// user who uploaded it (anyone else 403; an unknown id 404).
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the photo (image/png or image/jpeg)",
            content((String = "image/png"), (String = "image/jpeg"))),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::User, Role::Reviewer, Role::Supervisor])?;
    let unknown = || ApiError::not_found("document_not_found", "no such document");
    let document = crate::store::documents::find(state.db.pool(), &id)
        .await?
        .ok_or_else(unknown)?;
    if caller.role == Role::User && document.uploaded_by != caller.sub {
        return Err(ApiError::forbidden(
            "only reviewers, supervisors and the uploader see a document",
        ));
    }
    let bytes = state
        .services
        .documents
        .get(&document.id)
        .await
        .map_err(|e| ApiError::internal(format!("the document could not be read: {e}")))?
        .ok_or_else(|| ApiError::internal("the document's bytes are missing from the store"))?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&document.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", document.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}
