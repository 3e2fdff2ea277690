//! Operations over HTTP: health, readiness, metrics, the OpenAPI document, the docs page and
//! the test clock's rules (admin only, forward only, shared through the database).

mod common;

use beian::api::auth::Role;
use common::{Backend, spawn_app};
use serde_json::json;

const ADMIN: Option<(&str, Role)> = Some(("admin-1", Role::Admin));

async fn probes_and_documents(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz", None).await.0, 200);
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    assert_eq!(ready, json!({"database": "ok", "broker": "not_used"}));
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("beian_http_requests_total"), "{metrics}");
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/registry/vehicles/{plate_type}/{plate_number}",
        "/v1/registry/drivers/{user_id}",
        "/v1/test/clock",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(!docs.text().await.unwrap().is_empty());
    app.stop().await;
}

async fn test_clock_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/v1/test/clock", None).await.0, 401);
    assert_eq!(
        app.get("/v1/test/clock", Some(("U1", Role::User))).await.0,
        403
    );
    let (status, now) = app.get("/v1/test/clock", ADMIN).await;
    assert_eq!(status, 200);
    let now = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
    assert!(now.to_rfc3339().ends_with("+08:00"));
    let target = now + chrono::Duration::days(30);
    let (status, _) = app
        .put(
            "/v1/test/clock",
            Some(("r", Role::Reviewer)),
            &json!({"now": target.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, moved) = app
        .put(
            "/v1/test/clock",
            ADMIN,
            &json!({"now": target.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let moved = chrono::DateTime::parse_from_rfc3339(moved["now"].as_str().unwrap()).unwrap();
    assert!((moved - target).num_seconds().abs() <= 2);
    let back = target - chrono::Duration::hours(1);
    let (status, problem) = app
        .put("/v1/test/clock", ADMIN, &json!({"now": back.to_rfc3339()}))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("clock_backwards"))
    );
    let (status, problem) = app
        .put("/v1/test/clock", ADMIN, &json!({"now": "tomorrow"}))
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("now")));
    // The offset is shared through the database: another process would read it.
    let stored = beian::store::clock::load_offset(&app.services().db)
        .await
        .unwrap()
        .unwrap();
    assert!(stored > 29 * 86_400_000);
    app.stop().await;
}

on_both_databases! {
    ops_probes => probes_and_documents;
    ops_test_clock => test_clock_rules;
}
