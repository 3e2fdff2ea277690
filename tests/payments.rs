//! Fines paid end to end with the live-mode clients pointed at fake providers over real
//! HTTP (`common::payfakes`), on SQLite and PostgreSQL (and PostgreSQL + RabbitMQ for the
//! happy paths): handle, confirm with the texted code, check out, the provider's signed
//! notification, and every check a notification must pass.

mod common;

use common::fakes::FakeSmsGateway;
use common::payfakes::{
    self, FakeWechatPay, PLATFORM_SERIAL, ROTATED_SERIAL, Wire, alipay_content,
    alipay_notification, form, keys, spawn_payment_app, transaction, wechat_notification,
};
use common::world::{Car, Person, SYSTEM, World};
use common::{Backend, TestApp, eventually};
use serde_json::{Value, json};

struct Fine {
    handler: Person,
    car: Car,
    payment_id: String,
    violation_id: String,
}

async fn record(app: &TestApp, car: &Car, points: i64, fine_fen: i64) -> String {
    let source_id = format!("CAM-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .post("/v1/violations", SYSTEM, &json!({
            "source_id": source_id, "plate_type": car.plate_type, "plate_number": car.plate_number,
            "occurred_at": "2026-01-02T08:30:00+08:00", "location": "长安街", "violation_code": "1625",
            "description": "闯红灯", "fine_fen": fine_fen, "points": points, "device_id": "DEV-1"}))
        .await;
    assert_eq!(status, 202, "{body}");
    source_id
}

async fn listed(app: &TestApp, who: &Person, status: &str, source_id: &str) -> Value {
    eventually(10, "the violation is listed", || async {
        let (code, body) = app
            .get(
                &format!("/v1/violations?status={status}&limit=500"),
                who.who(),
            )
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

/// A 3-point violation of the owner's car, handled by the owner and confirmed.
async fn confirmed_fine(app: &TestApp, sms: &FakeSmsGateway, fine_fen: i64) -> Fine {
    let w = World::new(app);
    let handler = w.driver().await;
    let car = w.vehicle_of(&handler).await;
    let source_id = record(app, &car, 3, fine_fen).await;
    let item = listed(app, &handler, "unprocessed", &source_id).await;
    let violation_id = item["id"].as_str().unwrap().to_string();
    let mark = sms.mark();
    let (status, body) = app
        .post(
            &format!("/v1/violations/{violation_id}/handle"),
            handler.who(),
            &json!({"accept_rules": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let payment_id = body["payment"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["payment"]["status"], "pending_confirmation");
    let code = sms.wait_for(&handler.phone, "payment_code", mark).await;
    let (status, body) = app
        .post(
            &format!("/v1/payments/{payment_id}/confirm"),
            handler.who(),
            &json!({"code": code.params["code"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "awaiting_payment");
    Fine {
        handler,
        car,
        payment_id,
        violation_id,
    }
}

async fn payment(app: &TestApp, fine: &Fine) -> Value {
    let (status, body) = app
        .get(
            &format!("/v1/payments/{}", fine.payment_id),
            fine.handler.who(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_paid(app: &TestApp, fine: &Fine) -> Value {
    eventually(10, "the payment is paid", || async {
        let p = payment(app, fine).await;
        (p["status"] == "paid").then_some(p)
    })
    .await
}

async fn checkout_wechat(app: &TestApp, wechat: &FakeWechatPay, fine: &Fine) -> Value {
    let (status, body) = app
        .post(
            &format!("/v1/payments/{}/checkout", fine.payment_id),
            fine.handler.who(),
            &json!({"channel": "wechat", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let order = wechat
        .order(&fine.payment_id)
        .expect("the fake got a verified order");
    assert_eq!(order.kind, "jsapi");
    assert_eq!(order.request["amount"]["total"], 20_000);
    assert_eq!(
        order.request["payer"]["openid"],
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    );
    assert_eq!(body["prepay_id"], order.prepay_id.as_str());
    body
}

async fn post_wechat(
    app: &TestApp,
    (headers, body): (Vec<(String, String)>, Vec<u8>),
) -> (u16, Value) {
    let mut request = app.http.post(app.url("/v1/callbacks/wechatpay")).body(body);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    common::answer(request.send().await.unwrap()).await
}

async fn post_alipay(app: &TestApp, params: &[(String, String)]) -> String {
    app.http
        .post(app.url("/v1/callbacks/alipay"))
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form(params))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn discrepancies(app: &TestApp, out_trade_no: &str) -> Vec<String> {
    beian::store::payments::discrepancies_of(app.services().db.pool(), out_trade_no)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.kind)
        .collect()
}

/// The points on a driver's licence (the registry copy; no endpoint reads it back).
async fn points_of(app: &TestApp, person: &Person) -> i64 {
    beian::store::registry::find_driver(app.services().db.pool(), &person.user_id)
        .await
        .unwrap()
        .unwrap()
        .fields
        .points
}

async fn wait_processed(app: &TestApp, fine: &Fine) {
    eventually(10, "the violation is processed", || async {
        let (_, body) = app
            .get(
                "/v1/violations?status=processed&limit=500",
                fine.handler.who(),
            )
            .await;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == fine.violation_id.as_str())
            .then_some(())
    })
    .await;
}

async fn wechat_happy_path(backend: Backend) {
    let (app, sms, wechat) = spawn_payment_app(backend).await;
    let fine = confirmed_fine(&app, &sms, 20_000).await;
    let answer = checkout_wechat(&app, &wechat, &fine).await;
    // The JSAPI parameters are signed with the merchant key over appId, timeStamp, nonceStr, package.
    let p = &answer["pay_params"];
    let message = format!(
        "{}\n{}\n{}\n{}\n",
        p["appId"].as_str().unwrap(),
        p["timeStamp"].as_str().unwrap(),
        p["nonceStr"].as_str().unwrap(),
        p["package"].as_str().unwrap()
    );
    let merchant = payfakes::key(&keys().merchant).verifying_key();
    assert!(
        merchant.verify(message.as_bytes(), p["paySign"].as_str().unwrap()),
        "{answer}"
    );
    assert_eq!(p["signType"], "RSA");
    let mark = sms.mark();
    let paid = transaction(&fine.payment_id, 20_000, "4200000000000000000000000001");
    let (status, body) = post_wechat(&app, wechat_notification(&paid, Wire::default())).await;
    assert_eq!(status, 204, "{body}");
    let p = wait_paid(&app, &fine).await;
    assert_eq!(p["channel"], "wechat");
    wait_processed(&app, &fine).await;
    sms.wait_for(&fine.handler.phone, "payment_result", mark)
        .await;
    assert_eq!(
        points_of(&app, &fine.handler).await,
        3,
        "the points went on the handler's licence"
    );
    // The same notification again: a success answer, nothing changes.
    let (status, _) = post_wechat(&app, wechat_notification(&paid, Wire::default())).await;
    assert_eq!(status, 204);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(points_of(&app, &fine.handler).await, 3);
    assert!(discrepancies(&app, &fine.payment_id).await.is_empty());
    let _ = fine.car;
    app.stop().await;
}

async fn alipay_happy_path(backend: Backend) {
    let (app, sms, _wechat) = spawn_payment_app(backend).await;
    let fine = confirmed_fine(&app, &sms, 20_000).await;
    let (status, body) = app
        .post(
            &format!("/v1/payments/{}/checkout", fine.payment_id),
            fine.handler.who(),
            &json!({"channel": "alipay"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The order string verifies with the app's public key over its sorted parameters
    // (sign_type included, as Alipay signs requests).
    let order: Vec<(String, String)> =
        beian::api::callbacks::form_decode(body["order_string"].as_str().unwrap().as_bytes())
            .unwrap();
    let sign = order.iter().find(|(k, _)| k == "sign").unwrap().1.clone();
    let app_public = payfakes::key(&keys().app).verifying_key();
    assert!(app_public.verify(alipay_content(&order, &["sign"]).as_bytes(), &sign));
    let biz: Value =
        serde_json::from_str(&order.iter().find(|(k, _)| k == "biz_content").unwrap().1).unwrap();
    assert_eq!(biz["out_trade_no"], fine.payment_id.as_str());
    assert_eq!(biz["total_amount"], "200.00");
    assert!(
        body["pay_url"]
            .as_str()
            .unwrap()
            .contains("alipay.trade.page.pay")
    );
    let notice = alipay_notification(
        &fine.payment_id,
        "200.00",
        "2026112422001400000000000001",
        &keys().alipay,
    );
    assert_eq!(post_alipay(&app, &notice).await, "success");
    wait_paid(&app, &fine).await;
    wait_processed(&app, &fine).await;
    assert_eq!(
        post_alipay(&app, &notice).await,
        "success",
        "a duplicate is accepted"
    );
    // A forged one (signed with another key) is a failure.
    let forged = alipay_notification(
        &fine.payment_id,
        "200.00",
        "2026112422001400000000000002",
        &keys().app,
    );
    assert_eq!(post_alipay(&app, &forged).await, "failure");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(discrepancies(&app, &fine.payment_id).await.is_empty());
    app.stop().await;
}

/// Every refusal of the WeChat Pay checks; none changes the payment.
async fn wechat_refusals(backend: Backend) {
    let (app, sms, wechat) = spawn_payment_app(backend).await;
    let fine = confirmed_fine(&app, &sms, 20_000).await;
    checkout_wechat(&app, &wechat, &fine).await;
    let paid = transaction(&fine.payment_id, 20_000, "4200000000000000000000000009");
    let cases: Vec<(&str, Wire, u16)> = vec![
        (
            "forged signature",
            Wire {
                signing_key: &keys().merchant,
                ..Wire::default()
            },
            401,
        ),
        (
            "stale timestamp",
            Wire {
                timestamp: chrono::Utc::now().timestamp() - 301,
                ..Wire::default()
            },
            401,
        ),
        (
            "SIGNTEST probe",
            Wire {
                signature_override: Some("WECHATPAY/SIGNTEST/abc".into()),
                ..Wire::default()
            },
            401,
        ),
        (
            "wrong serial",
            Wire {
                serial: "UNKNOWN0000",
                ..Wire::default()
            },
            401,
        ),
        (
            "serial of another key",
            Wire {
                serial: ROTATED_SERIAL,
                ..Wire::default()
            },
            401,
        ),
        (
            "undecryptable ciphertext",
            Wire {
                apiv3_key: b"ffffffffffffffffffffffffffffffff",
                ..Wire::default()
            },
            400,
        ),
    ];
    for (what, wire, expected) in cases {
        let (status, body) = post_wechat(&app, wechat_notification(&paid, wire)).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(body["code"], "FAIL", "{what}: {body}");
    }
    // The rotated platform key signs with its own serial: accepted.
    let rotated = Wire {
        signing_key: &keys().rotated,
        serial: ROTATED_SERIAL,
        ..Wire::default()
    };
    let wrong_amount = transaction(&fine.payment_id, 19_999, "4200000000000000000000000010");
    let (status, _) = post_wechat(&app, wechat_notification(&wrong_amount, rotated)).await;
    assert_eq!(
        status, 204,
        "a genuine notification that does not match is answered 204"
    );
    let unknown = transaction("NOSUCHORDER0001", 20_000, "4200000000000000000000000011");
    let (status, _) = post_wechat(&app, wechat_notification(&unknown, Wire::default())).await;
    assert_eq!(status, 204);
    eventually(10, "both discrepancies recorded", || async {
        let mut kinds = discrepancies(&app, &fine.payment_id).await;
        kinds.extend(discrepancies(&app, "NOSUCHORDER0001").await);
        (kinds.len() == 2).then_some(kinds)
    })
    .await
    .iter()
    .for_each(|k| assert!(k == "amount_mismatch" || k == "unknown_order", "{k}"));
    assert_eq!(payment(&app, &fine).await["status"], "awaiting_payment");
    assert_eq!(wechat.refused(), 0);
    let _ = PLATFORM_SERIAL;
    app.stop().await;
}

/// Two notifications for one order (different transactions) at once: paid once, the other
/// recorded as a discrepancy.
async fn racing_notifications_pay_once(backend: Backend) {
    let (app, sms, wechat) = spawn_payment_app(backend).await;
    let fine = confirmed_fine(&app, &sms, 20_000).await;
    checkout_wechat(&app, &wechat, &fine).await;
    let a = wechat_notification(
        &transaction(&fine.payment_id, 20_000, "4200000000000000000000000021"),
        Wire::default(),
    );
    let b = wechat_notification(
        &transaction(&fine.payment_id, 20_000, "4200000000000000000000000022"),
        Wire::default(),
    );
    let (ra, rb) = tokio::join!(post_wechat(&app, a), post_wechat(&app, b));
    assert_eq!((ra.0, rb.0), (204, 204));
    wait_paid(&app, &fine).await;
    let kinds = eventually(10, "the second is a discrepancy", || async {
        let kinds = discrepancies(&app, &fine.payment_id).await;
        (!kinds.is_empty()).then_some(kinds)
    })
    .await;
    assert_eq!(kinds, vec!["duplicate_payment".to_string()]);
    assert_eq!(points_of(&app, &fine.handler).await, 3, "points once");
    app.stop().await;
}

on_every_deployment! {
    wechat_pays_a_fine => wechat_happy_path;
    alipay_pays_a_fine => alipay_happy_path;
}

on_both_databases! {
    wechat_notifications_are_checked => wechat_refusals;
    racing_notifications => racing_notifications_pay_once;
}
