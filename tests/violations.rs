//! Camera violations on SQLite and PostgreSQL: at-least-once ingestion (one violation per
//! `source_id`), the NDJSON batch with bad lines reported by number, who sees a violation
//! and who may handle it (each refusal code), and the decision a handling issues.

mod common;

use common::fakes::{FakeSmsGateway, spawn_filing_app};
use common::world::{Car, Person, SYSTEM, World};
use common::{Backend, TestApp, eventually};
use serde_json::{Value, json};

fn violation(car: &Car, points: i64, occurred_at: &str) -> Value {
    json!({
        "source_id": format!("CAM-{}", uuid::Uuid::new_v4().simple()),
        "plate_type": car.plate_type, "plate_number": car.plate_number, "occurred_at": occurred_at,
        "location": "长安街与王府井大街交叉口", "violation_code": "1625", "description": "闯红灯",
        "fine_fen": 20000, "points": points, "device_id": "DEV-110101-0042"})
}

async fn listed(app: &TestApp, who: &Person, source_id: &str) -> Value {
    eventually(10, "the violation is listed", || async {
        let (code, body) = app
            .get("/v1/violations?status=unprocessed&limit=500", who.who())
            .await;
        assert_eq!(code, 200, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["source_id"] == source_id)
            .cloned()
    })
    .await
}

async fn record(app: &TestApp, body: &Value) {
    let (status, answer) = app.post("/v1/violations", SYSTEM, body).await;
    assert_eq!(status, 202, "{answer}");
}

async fn handle(app: &TestApp, who: &Person, id: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/violations/{id}/handle"),
        who.who(),
        &json!({"accept_rules": true}),
    )
    .await
}

/// An approved filing of `car` by `filer`; returns nothing (the clock is past the approval).
async fn approved(w: &World<'_>, sms: &FakeSmsGateway, filer: &Person, car: &Car) {
    let id = w.file(filer, car).await;
    w.wait_status(filer, &id, "code_sent").await;
    let sent = eventually(10, "the owner's code", || async {
        sms.messages_to(&car.owner.phone, "filing_code")
            .into_iter()
            .find(|m| m.message_id.contains(&id))
    })
    .await;
    let (status, body) = w.enter_code(filer, &id, &sent.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.face(filer, &id, "ok-approve").await;
    assert_eq!(status, 202, "{body}");
    w.wait_status(filer, &id, "approved").await;
}

async fn ingestion_dedups_and_batches(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let one = violation(&car, 0, "2026-01-02T08:30:00+08:00");
    record(&app, &one).await;
    record(&app, &one).await;
    listed(&app, &owner, one["source_id"].as_str().unwrap()).await;
    let good = [
        violation(&car, 0, "2026-01-02T08:30:00+08:00"),
        violation(&car, 3, "2026-01-03T08:30:00+08:00"),
    ];
    let mut bad = violation(&car, 0, "2026-01-02T08:30:00+08:00");
    bad["plate_number"] = json!("京I0");
    let lines = format!("{}\n{}\nnot json\n{}\n{}\n", good[0], bad, good[1], one);
    let answer = app
        .request(reqwest::Method::POST, "/v1/violations/batch", SYSTEM)
        .header("Content-Type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .unwrap();
    let (status, body) = common::answer(answer).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 3, "{body}");
    let rejected: Vec<(i64, String)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().unwrap(),
                r["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{body}");
    assert_eq!(rejected[0].0, 2);
    assert_eq!(rejected[1], (3, "malformed_json".to_string()));
    for v in &good {
        listed(&app, &owner, v["source_id"].as_str().unwrap()).await;
    }
    let (_, list) = app
        .get("/v1/violations?status=unprocessed&limit=500", owner.who())
        .await;
    let same = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["source_id"] == one["source_id"])
        .count();
    assert_eq!(same, 1, "one violation per source_id");
    // The owner was told once per violation.
    eventually(10, "violation_recorded texts", || async {
        (sms.messages_to(&owner.phone, "violation_recorded").len() == 3).then_some(())
    })
    .await;
    let (status, body) = app.post("/v1/violations", owner.who(), &one).await;
    assert_eq!(status, 403, "{body}");
    app.stop().await;
}

async fn eligibility_refusals(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filer = w.driver().await;
    approved(&w, &sms, &filer, &car).await;
    let now = w.now().await;
    let before = (now - chrono::Duration::days(2)).to_rfc3339();
    let after = (now + chrono::Duration::minutes(5)).to_rfc3339();
    // Points from before the filing: the owner's.
    let early = violation(&car, 3, &before);
    record(&app, &early).await;
    let item = listed(&app, &filer, early["source_id"].as_str().unwrap()).await;
    assert_eq!(
        (item["can_handle"].clone(), item["why_not"].clone()),
        (json!(false), json!("points_before_filing"))
    );
    let (status, body) = handle(&app, &filer, item["id"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("points_before_filing")),
        "{body}"
    );
    let mine = listed(&app, &owner, early["source_id"].as_str().unwrap()).await;
    assert_eq!(mine["can_handle"], true);
    // A 0-point one from before: the filer's to handle; the rules must be accepted.
    let zero = violation(&car, 0, &before);
    record(&app, &zero).await;
    let item = listed(&app, &filer, zero["source_id"].as_str().unwrap()).await;
    let id = item["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/violations/{id}/handle"),
            filer.who(),
            &json!({"accept_rules": false}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("rules_not_accepted")),
        "{body}"
    );
    let (status, body) = handle(&app, &filer, id).await;
    assert_eq!(status, 201, "{body}");
    let number = body["decision_number"].as_str().unwrap();
    assert!(
        number.len() == 16 && number.bytes().all(|b| b.is_ascii_digit()),
        "{number}"
    );
    assert!(beian::domain::violation::is_decision_number(number));
    assert_eq!(body["payment"]["total_fen"], 20000);
    let (status, body) = handle(&app, &filer, id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_handled")),
        "{body}"
    );
    // 9 + 3 points would reach 12.
    w.app
        .put(
            &format!("/v1/registry/drivers/{}", filer.user_id),
            SYSTEM,
            &json!({"name": filer.name, "id_number": filer.id_number, "phone": filer.phone,
                "licence_number": filer.id_number, "licence_status": "valid", "points": 9}),
        )
        .await;
    let late = violation(&car, 3, &after);
    record(&app, &late).await;
    let item = listed(&app, &filer, late["source_id"].as_str().unwrap()).await;
    assert_eq!(item["why_not"], "points_limit");
    let (status, body) = handle(&app, &filer, item["id"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("points_limit")),
        "{body}"
    );
    // A suspended licence handles nothing.
    w.app
        .put(
            &format!("/v1/registry/drivers/{}", filer.user_id),
            SYSTEM,
            &json!({"name": filer.name, "id_number": filer.id_number, "phone": filer.phone,
                "licence_number": filer.id_number, "licence_status": "suspended", "points": 0}),
        )
        .await;
    let (status, body) = handle(&app, &filer, item["id"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("licence_invalid")),
        "{body}"
    );
    // Someone with no standing does not see it.
    let stranger = w.driver().await;
    let (status, _) = handle(&app, &stranger, item["id"].as_str().unwrap()).await;
    assert_eq!(status, 404);
    app.stop().await;
}

on_both_databases! {
    ingestion => ingestion_dedups_and_batches;
    eligibility => eligibility_refusals;
}
