//! The QR-code method (扫码备案) and the photos a filing carries to review, over HTTP on
//! SQLite and PostgreSQL (the QR path also on PostgreSQL + RabbitMQ): the owner's token,
//! its refusals (expired by the test clock, another vehicle, tampered, garbage), a QR filing
//! through the owner's code to `under_review`, uploads (type by content, size limit, missing
//! parts, who and when) and who may read a document back.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use beian::api::auth::Role;
use common::fakes::{FakeSmsGateway, spawn_filing_app};
use common::world::{ADMIN, Car, Person, World};
use common::{Backend, TestApp, answer, raw_status};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Images and multipart bodies
// ---------------------------------------------------------------------------------------

/// A PNG signature and header chunk, then `padding` bytes: PNG by its content.
fn png(seed: u8, padding: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x08\0\0\0\x08\x08\x02\0\0\0".to_vec();
    bytes.push(seed);
    bytes.extend(std::iter::repeat_n(seed, padding));
    bytes
}

/// A JPEG start-of-image and APP0 marker, then some bytes.
fn jpeg(seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend_from_slice(b"JFIF\0");
    bytes.extend(std::iter::repeat_n(seed, 64));
    bytes
}

/// One part of a multipart form: field name, file name, declared type, bytes.
type Part<'a> = (&'a str, &'a str, &'a str, Vec<u8>);

const BOUNDARY: &str = "beian-test-boundary-7f3a";

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, content_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn photos(id_document: Vec<u8>, holding_photo: Vec<u8>) -> Vec<Part<'static>> {
    vec![
        ("id_document", "id.png", "image/png", id_document),
        ("holding_photo", "holding.jpg", "image/jpeg", holding_photo),
    ]
}

/// A request on a connection of its own: an upload refused before its body is read closes
/// the connection, which a pooled client would try to reuse.
fn unpooled(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    who: Option<(&str, Role)>,
) -> reqwest::RequestBuilder {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let request = client.request(method, app.url(path));
    match who {
        Some((sub, role)) => request.bearer_auth(app.token(sub, role)),
        None => request,
    }
}

async fn upload(
    app: &TestApp,
    who: Option<(&str, Role)>,
    filing_id: &str,
    parts: &[Part<'_>],
) -> (u16, Value) {
    let response = unpooled(
        app,
        reqwest::Method::POST,
        &format!("/v1/filings/{filing_id}/documents"),
        who,
    )
    .header(
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    )
    .body(multipart(parts))
    .send()
    .await
    .expect("upload");
    answer(response).await
}

/// GET /v1/documents/{id}: status, content type and bytes.
async fn download(app: &TestApp, who: Option<(&str, Role)>, id: &str) -> (u16, String, Vec<u8>) {
    let response = unpooled(
        app,
        reqwest::Method::GET,
        &format!("/v1/documents/{id}"),
        who,
    )
    .send()
    .await
    .expect("download");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// The ids of the documents an upload answered, by kind.
fn document_id(answer: &Value, kind: &str) -> String {
    answer["documents"]
        .as_array()
        .unwrap_or_else(|| panic!("no documents in {answer}"))
        .iter()
        .find(|d| d["kind"] == kind)
        .and_then(|d| d["id"].as_str())
        .unwrap_or_else(|| panic!("no {kind} in {answer}"))
        .to_string()
}

/// A multipart body sent chunked (no Content-Length), so only the route's own counting
/// can stop it; answers the status code.
async fn chunked_upload_status(app: &TestApp, who: &Person, filing_id: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/filings/{filing_id}/documents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.token(&who.user_id, Role::User)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    for chunk in body.chunks(256 * 1024) {
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.to_vec(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Filing helpers
// ---------------------------------------------------------------------------------------

fn statuses(filing: &Value) -> Vec<String> {
    filing["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_string())
        .collect()
}

fn last_cause(filing: &Value) -> String {
    filing["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|h| h["cause"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The owner asks for a QR token of `car`: (status, body).
async fn ask_qr(w: &World<'_>, who: Option<(&str, Role)>, car: &Car) -> (u16, Value) {
    w.app
        .post(&format!("/v1/vehicles/{}/qr", car.path()), who, &json!({}))
        .await
}

async fn qr_token(w: &World<'_>, owner: &Person, car: &Car) -> String {
    let (status, body) = ask_qr(w, owner.who(), car).await;
    assert_eq!(status, 201, "{body}");
    body["qr_token"].as_str().expect("qr_token").to_string()
}

fn qr_body(token: &str) -> Value {
    json!({"method": "qr", "qr_token": token, "relationship": "relative"})
}

/// Submits a QR filing and waits for its intake: the filing after it.
async fn file_qr(w: &World<'_>, filer: &Person, body: &Value) -> Value {
    let (status, answer, _) = w.submit(filer, body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["method"], "qr", "{answer}");
    w.settled(filer, answer["id"].as_str().unwrap()).await
}

/// A QR filing through the owner's code: the filing, `under_review`.
async fn qr_filing_in_review(w: &World<'_>, sms: &FakeSmsGateway) -> (Person, Car, Value) {
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filer = w.driver().await;
    let token = qr_token(w, &owner, &car).await;
    let since = sms.mark();
    let filing = file_qr(w, &filer, &qr_body(&token)).await;
    assert_eq!(filing["status"], "code_sent", "{filing}");
    let id = filing["id"].as_str().unwrap().to_string();
    let code = sms.wait_for(&owner.phone, "filing_code", since).await;
    let (status, filing) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{filing}");
    (filer, car, filing)
}

/// An SMS filing whose face check failed: (filer, filing id), `documents_required`.
async fn documents_required(w: &World<'_>, sms: &FakeSmsGateway) -> (Person, String) {
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let since = sms.mark();
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&car.owner.phone, "filing_code", since).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.face(&filer, &id, "fail-photo").await;
    assert_eq!(status, 202, "{body}");
    w.wait_status(&filer, &id, "documents_required").await;
    (filer, id)
}

// ---------------------------------------------------------------------------------------
// 1. The QR path: token, filing, the owner's code, review; photos join the review
// ---------------------------------------------------------------------------------------

async fn qr_happy_path(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filer = w.driver().await;

    let now = w.now().await;
    let (status, body) = ask_qr(&w, owner.who(), &car).await;
    assert_eq!(status, 201, "{body}");
    let token = body["qr_token"].as_str().expect("qr_token").to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .expect("expires_at");
    let ttl = (expires - now).num_seconds();
    assert!((599..=605).contains(&ttl), "expires in {ttl} s: {body}");

    let since = sms.mark();
    let filing = file_qr(&w, &filer, &qr_body(&token)).await;
    assert_eq!(filing["status"], "code_sent", "{filing}");
    assert_eq!(
        filing["plate_number"],
        car.plate_number.as_str(),
        "{filing}"
    );
    let id = filing["id"].as_str().unwrap().to_string();
    let code = sms.wait_for(&owner.phone, "filing_code", since).await;
    assert!(sms.messages_to(&filer.phone, "filing_code").is_empty());

    let (status, filing) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{filing}");
    assert_eq!(filing["status"], "under_review", "{filing}");
    assert_eq!(
        statuses(&filing),
        ["received", "code_sent", "code_verified", "under_review"]
    );
    assert_eq!(last_cause(&filing), "qr_method", "{filing}");
    // Never to the face check.
    let (status, body) = w.face(&filer, &id, "ok-1").await;
    assert_eq!(status, 409, "{body}");

    // The photos join the review; the filing stays under review.
    let id_photo = png(1, 100);
    let holding = jpeg(2);
    let (status, answer) = upload(
        &app,
        filer.who(),
        &id,
        &photos(id_photo.clone(), holding.clone()),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "under_review", "{answer}");
    assert_eq!(statuses(&answer).len(), 4, "no new move: {answer}");
    let id_doc = document_id(&answer, "id_document");
    let holding_doc = document_id(&answer, "holding_photo");
    for (who, label) in [
        (filer.who(), "uploader"),
        (Some(("reviewer-1", Role::Reviewer)), "reviewer"),
        (Some(("supervisor-1", Role::Supervisor)), "supervisor"),
    ] {
        let (status, content_type, bytes) = download(&app, who, &id_doc).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/png"),
            "{label}"
        );
        assert_eq!(bytes, id_photo, "{label}");
        let (status, content_type, bytes) = download(&app, who, &holding_doc).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/jpeg"),
            "{label}"
        );
        assert_eq!(bytes, holding, "{label}");
    }

    // The limits apply to QR filings too: a second application today is refused.
    let other_car = w.vehicle_of(&owner).await;
    let token = qr_token(&w, &owner, &other_car).await;
    let filing = file_qr(&w, &filer, &qr_body(&token)).await;
    assert_eq!(
        (filing["status"].as_str(), filing["reason"].as_str()),
        (Some("rejected"), Some("daily_limit")),
        "{filing}"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. Tokens refused: expired, another vehicle, tampered, garbage; who may ask for one
// ---------------------------------------------------------------------------------------

fn assert_qr_rejected(filing: &Value, what: &str) {
    assert_eq!(
        (filing["status"].as_str(), filing["reason"].as_str()),
        (Some("rejected"), Some("qr_token_invalid")),
        "{what}: {filing}"
    );
}

async fn qr_token_refusals(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let other = w.vehicle().await;

    // Another vehicle: the filer names a vehicle the token is not for.
    let token = qr_token(&w, &owner, &car).await;
    let mut body = qr_body(&token);
    body["plate_type"] = json!(other.plate_type);
    body["plate_number"] = json!(other.plate_number);
    let filing = file_qr(&w, &w.driver().await, &body).await;
    assert_qr_rejected(&filing, "another vehicle");

    // Tampered: the vehicle inside the token changed, the signature kept; and a signature
    // changed.
    let parts: Vec<&str> = token.split('.').collect();
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let forged_claims = claims.replace(&car.plate_number, &other.plate_number);
    assert_ne!(forged_claims, claims);
    let forged = format!(
        "v1.{}.{}",
        URL_SAFE_NO_PAD.encode(forged_claims.as_bytes()),
        parts[2]
    );
    let filing = file_qr(&w, &w.driver().await, &qr_body(&forged)).await;
    assert_qr_rejected(&filing, "vehicle rewritten");
    assert_eq!(filing["plate_number"], other.plate_number.as_str());
    let mut tag = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    tag[0] ^= 0x01;
    let resigned = format!("v1.{}.{}", parts[1], URL_SAFE_NO_PAD.encode(&tag));
    let filing = file_qr(&w, &w.driver().await, &qr_body(&resigned)).await;
    assert_qr_rejected(&filing, "signature changed");

    // Expired: handed in after its ten minutes (the test clock).
    let token = qr_token(&w, &owner, &car).await;
    w.advance(601).await;
    let filing = file_qr(&w, &w.driver().await, &qr_body(&token)).await;
    assert_qr_rejected(&filing, "expired");
    assert!(
        sms.messages_to(&owner.phone, "filing_code").is_empty(),
        "no code for a refused token"
    );

    // Garbage is not a token at all: 422 at the door, naming the field.
    let filer = w.driver().await;
    for garbage in ["garbage", "v1.abc", "v1.!!.??", "v1.YWJj.YWJj"] {
        let (status, body, _) = w.submit(&filer, &qr_body(garbage)).await;
        assert_eq!(status, 422, "{garbage}: {body}");
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some("qr_token_invalid"), Some("qr_token")),
            "{body}"
        );
    }
    let (status, body, _) = w
        .submit(&filer, &json!({"method": "qr", "relationship": "friend"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "qr_token", "{body}");
    let (status, body) = app.get("/v1/filings", filer.who()).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]), "nothing was filed");

    // A fresh token still works after all that.
    let token = qr_token(&w, &owner, &car).await;
    let filing = file_qr(&w, &w.driver().await, &qr_body(&token)).await;
    assert_eq!(filing["status"], "code_sent", "{filing}");
    app.stop().await;
}

async fn qr_token_only_for_the_owner(backend: Backend) {
    let (app, _sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let stranger = w.driver().await;

    let (status, body) = ask_qr(&w, stranger.who(), &car).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, body) = ask_qr(&w, Some(("reviewer-1", Role::Reviewer)), &car).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = ask_qr(&w, ADMIN, &car).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = ask_qr(&w, None, &car).await;
    assert_eq!(status, 401);
    let unknown = Car::new(&owner);
    let (status, body) = ask_qr(&w, owner.who(), &unknown).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .post("/v1/vehicles/02/NOTAPLATE/qr", owner.who(), &json!({}))
        .await;
    assert_eq!(status, 422, "{body}");
    // The owner who is not a registered driver cannot be told apart from a stranger.
    let unregistered = w.vehicle().await;
    let (status, _) = ask_qr(&w, owner.who(), &unregistered).await;
    assert_eq!(status, 403);
    let (status, body) = ask_qr(&w, owner.who(), &car).await;
    assert_eq!(status, 201, "{body}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. Uploads: a face-failed filing to review; types by content; parts; who and when
// ---------------------------------------------------------------------------------------

async fn uploads_after_a_failed_face_check(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let (filer, id) = documents_required(&w, &sms).await;

    // Not images, whatever the name and declared type say.
    let gif = b"GIF89a\x08\x00\x08\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!".to_vec();
    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    let text = b"just some text, honestly a png".to_vec();
    for (label, bytes) in [("gif", gif), ("pdf", pdf), ("text", text)] {
        let parts = vec![
            ("id_document", "id.png", "image/png", bytes),
            ("holding_photo", "holding.png", "image/png", png(3, 10)),
        ];
        let (status, body) = upload(&app, filer.who(), &id, &parts).await;
        assert_eq!(status, 422, "{label}: {body}");
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some("unsupported_image_format"), Some("id_document")),
            "{label}: {body}"
        );
    }
    let parts = vec![
        ("id_document", "id.jpg", "image/jpeg", jpeg(4)),
        ("holding_photo", "h.jpg", "image/jpeg", b"".to_vec()),
    ];
    let (status, body) = upload(&app, filer.who(), &id, &parts).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("holding_photo")),
        "{body}"
    );

    // A missing part is named.
    let parts = vec![("id_document", "id.png", "image/png", png(5, 10))];
    let (status, body) = upload(&app, filer.who(), &id, &parts).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("missing_document"), Some("holding_photo")),
        "{body}"
    );
    let parts = vec![
        ("holding_photo", "h.png", "image/png", png(5, 10)),
        ("selfie", "s.png", "image/png", png(5, 10)),
    ];
    let (status, body) = upload(&app, filer.who(), &id, &parts).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("id_document")),
        "{body}"
    );

    // Not multipart at all.
    let (status, body) = app
        .post(
            &format!("/v1/filings/{id}/documents"),
            filer.who(),
            &json!({}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Only the filer.
    let stranger = w.driver().await;
    let good = photos(png(6, 2 * MIB), jpeg(7));
    let (status, body) = upload(&app, stranger.who(), &id, &good).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = upload(&app, Some(("reviewer-1", Role::Reviewer)), &id, &good).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = upload(&app, filer.who(), "0000nosuchfiling", &good).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        w.filing(&filer, &id).await["status"],
        "documents_required",
        "every refusal left the filing as it was"
    );

    // PNG and JPEG, over the JSON limit but within the upload limit: to review.
    let (status, answer) = upload(&app, filer.who(), &id, &good).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "under_review", "{answer}");
    assert_eq!(last_cause(&answer), "documents_uploaded", "{answer}");
    assert_eq!(
        statuses(&answer),
        [
            "received",
            "code_sent",
            "code_verified",
            "documents_required",
            "under_review"
        ]
    );
    let doc = document_id(&answer, "id_document");
    let filing = w.filing(&filer, &id).await;
    assert_eq!(filing["status"], "under_review");

    // An SMS filing under review takes no more photos; nor does one still waiting for its code.
    let (status, body) = upload(&app, filer.who(), &id, &good).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("documents_not_expected")),
        "{body}"
    );
    let other_filer = w.driver().await;
    let car = w.vehicle().await;
    let waiting = w.file(&other_filer, &car).await;
    w.wait_status(&other_filer, &waiting, "code_sent").await;
    let (status, body) = upload(&app, other_filer.who(), &waiting, &good).await;
    assert_eq!(status, 409, "{body}");

    // Reading the document back.
    let (status, content_type, bytes) = download(&app, filer.who(), &doc).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert_eq!(bytes, good[0].3);
    let (status, _, bytes) = download(&app, Some(("reviewer-2", Role::Reviewer)), &doc).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, good[0].3);
    let (status, _, _) = download(&app, stranger.who(), &doc).await;
    assert_eq!(status, 403);
    let (status, _, _) = download(&app, ADMIN, &doc).await;
    assert_eq!(status, 403);
    let (status, _, _) = download(&app, None, &doc).await;
    assert_eq!(status, 401);
    let (status, _, _) = download(
        &app,
        Some(("reviewer-2", Role::Reviewer)),
        "0000nosuchdocument",
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 4. Over 10 MiB: 413, and nothing stored before is lost
// ---------------------------------------------------------------------------------------

async fn oversized_uploads_lose_nothing(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);

    // A filing waiting for its photos: a declared 11 MiB body, and a chunked one.
    let (filer, id) = documents_required(&w, &sms).await;
    let big = multipart(&photos(png(8, 11 * MIB), jpeg(9)));
    let token = app.token(&filer.user_id, Role::User);
    let status = raw_status(
        &app.base,
        "POST",
        &format!("/v1/filings/{id}/documents"),
        &[
            ("Authorization", format!("Bearer {token}")),
            (
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
        ],
        &big,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(chunked_upload_status(&app, &filer, &id, &big).await, 413);
    assert_eq!(w.filing(&filer, &id).await["status"], "documents_required");
    let (status, answer) = upload(&app, filer.who(), &id, &photos(png(10, 10), jpeg(11))).await;
    assert_eq!(status, 202, "{answer}");

    // A QR filing under review with its photos: an oversized second upload changes nothing.
    let (filer, _car, filing) = qr_filing_in_review(&w, &sms).await;
    let id = filing["id"].as_str().unwrap().to_string();
    let first = photos(png(12, 1000), jpeg(13));
    let (status, answer) = upload(&app, filer.who(), &id, &first).await;
    assert_eq!(status, 202, "{answer}");
    let id_doc = document_id(&answer, "id_document");
    let holding_doc = document_id(&answer, "holding_photo");
    assert_eq!(chunked_upload_status(&app, &filer, &id, &big).await, 413);
    let (status, _, bytes) = download(&app, filer.who(), &id_doc).await;
    assert_eq!((status, bytes), (200, first[0].3.clone()));
    let (status, _, bytes) = download(&app, filer.who(), &holding_doc).await;
    assert_eq!((status, bytes), (200, first[1].3.clone()));
    assert_eq!(w.filing(&filer, &id).await["status"], "under_review");
    let stored: Vec<_> = std::fs::read_dir(app.dir.path().join("documents"))
        .expect("data_dir/documents")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        stored.len(),
        4,
        "only the accepted photos are stored: {stored:?}"
    );
    assert!(stored.iter().all(|name| !name.ends_with(".part")));
    app.stop().await;
}

on_every_deployment! {
    qr_path_to_review_and_photos_join_it => qr_happy_path;
}

on_both_databases! {
    qr_tokens_expired_other_vehicle_tampered_garbage => qr_token_refusals;
    qr_token_only_for_the_vehicles_owner => qr_token_only_for_the_owner;
    uploads_by_content_parts_filer_and_state => uploads_after_a_failed_face_check;
    oversized_uploads_are_413_and_lose_nothing => oversized_uploads_lose_nothing;
}
