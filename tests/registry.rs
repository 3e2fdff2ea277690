//! Registry upserts over HTTP, on SQLite and PostgreSQL: 201 then 200, roles, masking,
//! plate validation and the problem codes of bad input.

mod common;

use beian::api::auth::Role;
use common::{Backend, plate_path, spawn_app};
use serde_json::{Value, json};

const SYSTEM: Option<(&str, Role)> = Some(("camera-feed", Role::System));

fn vehicle_body(phone: &str) -> Value {
    json!({"owner_id_number": "110101199003071234", "owner_name": "张小三", "owner_phone": phone,
           "owner_kind": "person", "engine_number": "LB12345678", "usage": "non_operating", "status": "normal"})
}

fn driver_body(points: i64) -> Value {
    json!({"name": "李四", "id_number": "110101199105051238", "phone": "13912345678",
           "licence_number": "110101199105051238", "licence_status": "valid", "points": points})
}

async fn vehicle_upsert_creates_then_updates(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/v1/registry/vehicles/{}", plate_path("02", "京A12345"));
    let (created, body) = app.put(&path, SYSTEM, &vehicle_body("13812345678")).await;
    assert_eq!(created, 201, "{body}");
    assert_eq!(body["owner_phone_masked"], "138****5678");
    assert_eq!(body["owner_name"], "张*三");
    assert!(
        !body.to_string().contains("110101199003071234"),
        "ID number shown whole: {body}"
    );
    let (updated, body) = app.put(&path, SYSTEM, &vehicle_body("13700001111")).await;
    assert_eq!(updated, 200, "{body}");
    assert_eq!(body["owner_phone_masked"], "137****1111");
    let stored = beian::store::registry::find_vehicle(app.services().db.pool(), "02", "京A12345")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.fields.owner_phone, "13700001111");
    // Normalised: lower case, spaces and the middle dot are the same vehicle.
    let typed = format!("/v1/registry/vehicles/{}", plate_path("02", "京a·12 345"));
    let (again, body) = app.put(&typed, SYSTEM, &vehicle_body("13700001111")).await;
    assert_eq!(again, 200, "{body}");
    assert_eq!(body["plate_number"], "京A12345");
    app.stop().await;
}

async fn driver_upsert_and_me(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, body) = app
        .put("/v1/registry/drivers/U1", SYSTEM, &driver_body(0))
        .await;
    assert_eq!(created, 201, "{body}");
    assert_eq!(body["phone"], "139****5678", "masked to the system caller");
    let (updated, _) = app
        .put(
            "/v1/registry/drivers/U1",
            Some(("ops", Role::Admin)),
            &driver_body(3),
        )
        .await;
    assert_eq!(updated, 200);
    let (status, me) = app.get("/v1/me", Some(("U1", Role::User))).await;
    assert_eq!(status, 200);
    assert_eq!(me["phone"], "13912345678", "whole to the person themselves");
    assert_eq!(me["points"], 3);
    let (status, other) = app.get("/v1/me", Some(("U2", Role::User))).await;
    assert_eq!(
        (status, other["code"].as_str()),
        (404, Some("driver_not_found"))
    );
    app.stop().await;
}

async fn roles_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/v1/registry/vehicles/{}", plate_path("02", "京B12345"));
    let (status, body) = app
        .put(
            &path,
            Some(("U1", Role::User)),
            &vehicle_body("13812345678"),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = app.put(&path, None, &vehicle_body("13812345678")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let bad = app
        .http
        .put(app.url(&path))
        .bearer_auth("not.a.jwt")
        .json(&vehicle_body("13812345678"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let (status, _) = app
        .put(
            &path,
            Some(("ops", Role::Admin)),
            &vehicle_body("13812345678"),
        )
        .await;
    assert_eq!(status, 201);
    app.stop().await;
}

async fn bad_input_is_a_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    // Malformed plates: 422 with a code, nothing stored.
    for plate in ["京I12345", "京A1234", "京A1' OR '1'='1", "A12345"] {
        let path = format!("/v1/registry/vehicles/{}", plate_path("02", plate));
        let (status, body) = app.put(&path, SYSTEM, &vehicle_body("13812345678")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_plate_number")),
            "{plate}: {body}"
        );
    }
    let good = format!("/v1/registry/vehicles/{}", plate_path("02", "京C12345"));
    // A missing field is 422 naming it.
    let mut body = vehicle_body("13812345678");
    body.as_object_mut().unwrap().remove("engine_number");
    let (status, problem) = app.put(&good, SYSTEM, &body).await;
    assert_eq!(status, 422);
    assert_eq!(problem["field"], "engine_number");
    // A bad value names the field.
    let mut body = vehicle_body("13812345678");
    body["usage"] = json!("racing");
    let (status, problem) = app.put(&good, SYSTEM, &body).await;
    assert_eq!(status, 422);
    assert!(problem.to_string().contains("usage"), "{problem}");
    let (status, problem) = app.put(&good, SYSTEM, &vehicle_body("12345")).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("owner_phone"))
    );
    // Syntax errors are 400 problems.
    let response = app
        .request(reqwest::Method::PUT, &good, SYSTEM)
        .header("content-type", "application/json")
        .body("{\"owner_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = app
        .request(reqwest::Method::PUT, &good, SYSTEM)
        .header("content-type", "text/plain")
        .body(vehicle_body("13812345678").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // Over 1 MiB: 413.
    let mut big = vehicle_body("13812345678");
    big["owner_name"] = json!("x".repeat(2 * 1024 * 1024));
    let headers = [
        (
            "Authorization",
            format!("Bearer {}", app.token("camera-feed", Role::System)),
        ),
        ("Content-Type", "application/json".to_string()),
    ];
    let status = common::raw_status(
        &app.base,
        "PUT",
        "/v1/registry/vehicles/02/%E4%BA%ACC12345",
        &headers,
        big.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 413);
    // None of it was stored.
    assert!(
        beian::store::registry::find_vehicle(app.services().db.pool(), "02", "京C12345")
            .await
            .unwrap()
            .is_none()
    );
    // Unknown routes are problems too.
    let (status, problem) = app.get("/v1/nothing-here", None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

on_both_databases! {
    vehicle_upsert => vehicle_upsert_creates_then_updates;
    driver_upsert => driver_upsert_and_me;
    registry_roles => roles_are_enforced;
    registry_bad_input => bad_input_is_a_problem;
}
