//! The database goes away under a running service (a private PostgreSQL, stopped and
//! started by this test): `/readyz` says `database: down` with 503 while `/healthz` stays 200,
//! requests answer 503 `database_unavailable` with `Retry-After`, and the pool recovers by
//! itself when the database is back.

mod common;

use beian::api::auth::Role;
use common::private_postgres::PrivatePostgres;
use common::{eventually, plate_path, spawn_on};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_postgres_outage_and_the_pool_recovers() {
    let pg = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_on(
        pg.url("postgres"),
        None,
        dir,
        &[("BEIAN__DATABASE__CONNECT_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let system = Some(("feed", Role::System));
    let body = json!({"owner_id_number": "110101199003071234", "owner_name": "张三", "owner_phone": "13812345678",
                      "owner_kind": "person", "engine_number": "LB12345678", "usage": "non_operating", "status": "normal"});
    let path = format!("/v1/registry/vehicles/{}", plate_path("02", "京A12345"));
    assert_eq!(app.put(&path, system, &body).await.0, 201);
    assert_eq!(app.get("/readyz", None).await.0, 200);

    pg.down();
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(ready["database"], "down");
    assert_eq!(
        app.get("/healthz", None).await.0,
        200,
        "the process itself is up"
    );
    let response = app
        .request(reqwest::Method::PUT, &path, system)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "database_unavailable");

    pg.up();
    eventually(
        30,
        "readyz back to 200 after the database returned",
        || async { (app.get("/readyz", None).await.0 == 200).then_some(()) },
    )
    .await;
    let (status, _) = app.put(&path, system, &body).await;
    assert_eq!(
        status, 200,
        "what was accepted before the outage is still there"
    );
    app.stop().await;
}
