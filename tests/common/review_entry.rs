//! Putting a filing under review in tests the way a filer does: the two photos uploaded to
//! `POST /v1/filings/{id}/documents`, which moves a `documents_required` filing to
//! `under_review` and opens its review (`reviews::open`, in the same transaction).

#![allow(dead_code)]

use beian::api::auth::Role;

use super::{TestApp, answer};

const BOUNDARY: &str = "beian-review-entry-boundary";

fn photos_body() -> Vec<u8> {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x08\0\0\0\x08\x08\x02\0\0\0\x01".to_vec();
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    jpeg.extend_from_slice(b"JFIF\0\x01\x02\x03");
    let mut body = Vec::new();
    for (name, file, content_type, bytes) in [
        ("id_document", "id.png", "image/png", png),
        ("holding_photo", "holding.jpg", "image/jpeg", jpeg),
    ] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Uploads both photos as the filing's filer; the filing must be `documents_required`.
pub async fn enter_review(app: &TestApp, filing_id: &str) {
    let filer: String = sqlx::query_scalar("SELECT filer_id FROM filings WHERE id = $1")
        .bind(filing_id)
        .fetch_one(app.services().db.pool())
        .await
        .expect("the filing exists");
    let response = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/filings/{filing_id}/documents"),
            Some((filer.as_str(), Role::User)),
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(photos_body())
        .send()
        .await
        .expect("upload");
    let (status, body) = answer(response).await;
    assert_eq!(status, 202, "upload: {body}");
    assert_eq!(body["status"], "under_review", "{body}");
}
