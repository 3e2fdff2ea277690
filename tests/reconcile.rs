//! Daily reconciliation end to end, on SQLite and PostgreSQL, with the built-in payment
//! simulators (they take the orders and serve real-format bills) and bills built here in the
//! exact published formats (WeChat Pay: backticks and summary rows; Alipay: a zip of GBK CSV
//! with `#` lines and trailing tabs): every outcome, a rerun, wrong totals, a malformed
//! line, a bill not published yet, and the lost notification the 10:30 cron run repairs.

mod common;

use std::io::Write;

use chrono::{Duration, NaiveDate, TimeZone};
use common::fakes::{FakeSmsGateway, SMS_SECRET};
use common::world::{ADMIN, Car, Person, SYSTEM, World};
use common::{TestApp, eventually};
use serde_json::{Value, json};

/// Only the daily run may find lost notifications in most tests here, not the order query.
const NO_ORDER_QUERY: &str = "0 0 1 1 *";

struct Fine {
    handler: Person,
    payment_id: String,
    violation_id: String,
}

/// The service with the built-in simulators; `order_query` is the `payment_query` schedule.
async fn spawn(backend: common::Backend, order_query: &str) -> (TestApp, FakeSmsGateway) {
    let sms = FakeSmsGateway::start(SMS_SECRET).await;
    let url = sms.url();
    let overrides = [
        ("BEIAN__SMS__PROVIDER", "webhook"),
        ("BEIAN__SMS__WEBHOOK_URL", url.as_str()),
        ("BEIAN__SMS__WEBHOOK_SECRET", SMS_SECRET),
        ("BEIAN__SMS__LIMIT_PER_MINUTE", "1000"),
        ("BEIAN__SMS__LIMIT_PER_HOUR", "1000"),
        ("BEIAN__SMS__LIMIT_PER_DAY", "1000"),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS", "20"),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS", "200"),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS", "50"),
        ("BEIAN__CRON__PAYMENT_QUERY", order_query),
    ];
    (common::spawn_app_with(backend, &overrides).await, sms)
}

/// A confirmed fine checked out with `channel` at the simulator (not paid yet).
async fn fine(app: &TestApp, sms: &FakeSmsGateway, channel: &str) -> Fine {
    let w = World::new(app);
    let handler = w.driver().await;
    let car: Car = w.vehicle_of(&handler).await;
    let source_id = format!("CAM-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .post("/v1/violations", SYSTEM, &json!({
            "source_id": source_id, "plate_type": car.plate_type, "plate_number": car.plate_number,
            "occurred_at": "2026-01-02T08:30:00+08:00", "location": "长安街", "violation_code": "1625",
            "description": "闯红灯", "fine_fen": 20000, "points": 3, "device_id": "DEV-1"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let violation_id = eventually(10, "the violation is listed", || async {
        let (_, body) = app
            .get("/v1/violations?status=unprocessed&limit=500", handler.who())
            .await;
        body["items"]
            .as_array()?
            .iter()
            .find(|v| v["source_id"] == source_id.as_str())
            .map(|v| v["id"].as_str().unwrap().to_string())
    })
    .await;
    let mark = sms.mark();
    let path = format!("/v1/violations/{violation_id}/handle");
    let (status, body) = app
        .post(&path, handler.who(), &json!({"accept_rules": true}))
        .await;
    assert_eq!(status, 201, "{body}");
    let payment_id = body["payment"]["id"].as_str().unwrap().to_string();
    let code = sms.wait_for(&handler.phone, "payment_code", mark).await;
    let path = format!("/v1/payments/{payment_id}/confirm");
    let (status, body) = app
        .post(&path, handler.who(), &json!({"code": code.params["code"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/payments/{payment_id}/checkout");
    let (status, body) = app
        .post(&path, handler.who(), &json!({"channel": channel}))
        .await;
    assert_eq!(status, 200, "{body}");
    Fine {
        handler,
        payment_id,
        violation_id,
    }
}

/// The payer pays at the simulator and the notification is lost.
async fn pay_silently(app: &TestApp, channel: &str, fine: &Fine) {
    let providers = app.services().payments.providers().await.unwrap();
    let (wechat, alipay) = providers.simulated.as_ref().expect("simulated mode");
    let paid = match channel {
        "wechat" => wechat.pay_silently(&fine.payment_id),
        _ => alipay.pay_silently(&fine.payment_id),
    };
    assert!(paid, "the simulator knows the order");
}

/// The payer pays and the notification arrives.
async fn pay(app: &TestApp, channel: &str, fine: &Fine) {
    let url = app.url(&format!("/v1/simulator/pay/{channel}/{}", fine.payment_id));
    let answer = app.http.get(url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    eventually(10, "the payment is paid", || async {
        let (_, p) = app
            .get(
                &format!("/v1/payments/{}", fine.payment_id),
                fine.handler.who(),
            )
            .await;
        (p["status"] == "paid").then_some(())
    })
    .await;
}

async fn txn_of(app: &TestApp, fine: &Fine) -> String {
    let p = beian::store::payments::find(app.services().db.pool(), &fine.payment_id)
        .await
        .unwrap()
        .unwrap();
    p.transaction_id.expect("paid")
}

async fn status_of(app: &TestApp, fine: &Fine) -> String {
    let (_, p) = app
        .get(
            &format!("/v1/payments/{}", fine.payment_id),
            fine.handler.who(),
        )
        .await;
    p["status"].as_str().unwrap().to_string()
}

async fn processed(app: &TestApp, fine: &Fine) -> bool {
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
}

async fn report(app: &TestApp, id: &str, until: &str) -> Value {
    eventually(20, &format!("reconciliation {id} is {until}"), || async {
        let (code, body) = app.get(&format!("/v1/reconciliations/{id}"), ADMIN).await;
        (code == 200 && body["status"] == until).then_some(body)
    })
    .await
}

fn kinds(report: &Value) -> Vec<String> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect()
}

fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
}

async fn upload(app: &TestApp, channel: &str, date: NaiveDate, body: Vec<u8>) -> (u16, Value) {
    let url = app.url(&format!(
        "/v1/reconciliations/upload?channel={channel}&bill_date={date}"
    ));
    let token = app.token("admin-1", beian::api::auth::Role::Admin);
    common::answer(
        app.http
            .post(url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// A WeChat Pay trade bill exactly as published; `lines` are (out_trade_no, transaction id,
/// fen, state); the summary counts `count_override` lines when given (wrong totals).
fn wechat_bill(
    lines: &[(&str, &str, i64, &str)],
    extra_raw: &[&str],
    count_override: Option<i64>,
) -> Vec<u8> {
    let mut out = String::from(
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n",
    );
    let (mut settle, mut refund, mut order, mut fees) = (0, 0, 0, 0);
    for (id, txn, fen, state) in lines {
        let (r, fee) = if *state == "REFUND" {
            (*fen, 0)
        } else {
            (0, (fen * 6 + 500) / 1000)
        };
        settle += fen;
        refund += r;
        order += fen;
        fees += fee;
        let values = [
            "2026-11-24 10:00:00",
            "wxd678efh567hg6787",
            "1900000109",
            "0",
            "",
            txn,
            id,
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "NATIVE",
            state,
            "OTHERS",
            "CNY",
            &yuan(*fen),
            "0.00",
            if r > 0 { "50000000000000000001" } else { "0" },
            if r > 0 { "RF1" } else { "0" },
            &yuan(r),
            "0.00",
            "",
            "",
            "交通违法罚款",
            "",
            &yuan(fee),
            "0.60%",
            &yuan(*fen),
            "0.00",
            "",
        ];
        out.push_str(
            &values
                .iter()
                .map(|v| format!("`{v}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    for raw in extra_raw {
        out.push_str(raw);
        out.push_str("\r\n");
    }
    let count = count_override.unwrap_or(lines.len() as i64);
    out.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n");
    out.push_str(&format!(
        "`{count},`{},`{},`0.00,`{},`{},`0.00\r\n",
        yuan(settle),
        yuan(refund),
        yuan(fees),
        yuan(order)
    ));
    out.into_bytes()
}

/// An Alipay csv.zip as published: GBK, `#` lines, ids with a trailing tab, a 汇总 file.
fn alipay_zip(lines: &[(&str, &str, i64)]) -> Vec<u8> {
    let mut text = String::from(
        "#支付宝业务明细查询\r\n#账号：[20880000000000010156]\r\n#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]\r\n#-----------------------------------------业务明细列表----------------------------------------\r\n支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\r\n",
    );
    let mut total = 0;
    for (trade_no, id, fen) in lines {
        total += fen;
        text.push_str(&format!(
            "{trade_no}\t,{id}\t,交易,交通违法罚款,2026-11-24 09:59:40,2026-11-24 10:00:00,,,,,buyer***@example.com,{a},{a},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-{f},0.00,\r\n",
            a = yuan(*fen), f = yuan((fen * 6 + 500) / 1000)
        ));
    }
    text.push_str(&format!("#-----------------------------------------业务明细列表结束------------------------------------\r\n#交易合计：{}笔，商家实收共{}元，商家优惠共0.00元\r\n#退款合计：0笔，商家实收退款共0.00元，商家优惠退款共0.00元\r\n#导出时间：[2026-11-25 09:00:00]\r\n", lines.len(), yuan(total)));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("20880000000000010156_20261124_业务明细(汇总).csv", options)
        .unwrap();
    zip.write_all(&encoding_rs::GBK.encode("#汇总\r\n合计,1\r\n").0)
        .unwrap();
    zip.start_file("20880000000000010156_20261124_业务明细.csv", options)
        .unwrap();
    zip.write_all(&encoding_rs::GBK.encode(&text).0).unwrap();
    zip.finish().unwrap().into_inner()
}

/// The other way a lost notification is found: the order query (`payment.query`, swept by
/// cron every 5 minutes) asks the provider about orders checked out more than 10 minutes ago
/// and still unpaid; the answer pays them through the callback path, once.
async fn stale_orders_are_queried(backend: common::Backend) {
    let (app, sms) = spawn(backend, "*/5 * * * *").await;
    let wechat = fine(&app, &sms, "wechat").await;
    let alipay = fine(&app, &sms, "alipay").await;
    pay_silently(&app, "wechat", &wechat).await;
    pay_silently(&app, "alipay", &alipay).await;
    assert_eq!(status_of(&app, &wechat).await, "awaiting_payment");
    World::new(&app).advance(16 * 60).await;
    for fine in [&wechat, &alipay] {
        eventually(30, "the order query to find the payment", || async {
            (status_of(&app, fine).await == "paid").then_some(())
        })
        .await;
        assert!(processed(&app, fine).await, "the violation ends processed");
        eventually(10, "the handler is told", || async {
            (sms.messages_to(&fine.handler.phone, "payment_result").len() == 1).then_some(())
        })
        .await;
    }
    // Another sweep later finds nothing more to do: nobody is told twice.
    World::new(&app).advance(11 * 60).await;
    eventually(30, "the next sweep to run", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'payment.query_sweep' AND state = 'done'",
        )
        .fetch_one(app.services().db.pool())
        .await
        .unwrap();
        (n >= 2).then_some(())
    })
    .await;
    for fine in [&wechat, &alipay] {
        assert_eq!(
            sms.messages_to(&fine.handler.phone, "payment_result").len(),
            1
        );
    }
    app.stop().await;
}

async fn daily_run_repairs_lost_notifications(backend: common::Backend) {
    let (app, sms) = spawn(backend, NO_ORDER_QUERY).await;
    let wechat = fine(&app, &sms, "wechat").await;
    let alipay = fine(&app, &sms, "alipay").await;
    pay_silently(&app, "wechat", &wechat).await;
    pay_silently(&app, "alipay", &alipay).await;
    assert_eq!(status_of(&app, &wechat).await, "awaiting_payment");
    // Tomorrow 10:30 Asia/Shanghai: the cron runs reconcile today's bills.
    let bill_date = today();
    let tz = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let slot = tz
        .from_local_datetime(
            &(bill_date + Duration::days(1))
                .and_hms_opt(10, 30, 0)
                .unwrap(),
        )
        .unwrap();
    World::new(&app)
        .set_clock(slot + Duration::seconds(5))
        .await;
    let day = bill_date.format("%Y%m%d");
    for (channel, fine) in [("wechat", &wechat), ("alipay", &alipay)] {
        let id = format!("rc_{channel}_{day}_{}", slot.timestamp_millis());
        let done = report(&app, &id, "done").await;
        assert_eq!(
            (done["lines"].as_i64(), done["repaired"].as_i64()),
            (Some(1), Some(1)),
            "{done}"
        );
        assert_eq!(kinds(&done), vec!["repaired"], "{done}");
        assert_eq!(done["items"][0]["out_trade_no"], fine.payment_id.as_str());
        assert_eq!(status_of(&app, fine).await, "paid");
        assert!(processed(&app, fine).await, "the violation ends processed");
        eventually(10, "the handler is told", || async {
            (sms.messages_to(&fine.handler.phone, "payment_result").len() == 1).then_some(())
        })
        .await;
        // The same bill again: nothing is repaired twice, nobody is told twice.
        let (code, body) = app
            .post(
                "/v1/reconciliations",
                ADMIN,
                &json!({"channel": channel, "bill_date": bill_date.to_string()}),
            )
            .await;
        assert_eq!(code, 202, "{body}");
        let again = report(&app, body["id"].as_str().unwrap(), "done").await;
        assert_eq!(
            (again["matched"].as_i64(), again["repaired"].as_i64()),
            (Some(1), Some(0)),
            "{again}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            sms.messages_to(&fine.handler.phone, "payment_result").len(),
            1
        );
    }
    app.stop().await;
}

async fn wechat_bill_outcomes(backend: common::Backend) {
    let (app, sms) = spawn(backend, NO_ORDER_QUERY).await;
    let matched = fine(&app, &sms, "wechat").await;
    let mismatched = fine(&app, &sms, "wechat").await;
    let missing = fine(&app, &sms, "wechat").await;
    let lost = fine(&app, &sms, "wechat").await;
    for f in [&matched, &mismatched, &missing] {
        pay(&app, "wechat", f).await;
    }
    pay_silently(&app, "wechat", &lost).await;
    let (t1, t2) = (
        txn_of(&app, &matched).await,
        txn_of(&app, &mismatched).await,
    );
    let bill = wechat_bill(
        &[
            (&matched.payment_id, &t1, 20000, "SUCCESS"),
            (&mismatched.payment_id, &t2, 19000, "SUCCESS"),
            (&matched.payment_id, &t1, 20000, "SUCCESS"),
            (
                "UNKNOWN-ORDER-1",
                "4200000000000000000000000999",
                5000,
                "SUCCESS",
            ),
            (
                &lost.payment_id,
                "4200000000000000000000000888",
                20000,
                "SUCCESS",
            ),
            (&matched.payment_id, &t1, 20000, "REFUND"),
        ],
        &[],
        None,
    );
    let (code, body) = upload(&app, "wechat", today(), bill).await;
    assert_eq!(code, 202, "{body}");
    let done = report(&app, body["id"].as_str().unwrap(), "done").await;
    assert_eq!(done["totals_ok"], true, "{done}");
    for (field, n) in [
        ("lines", 6),
        ("matched", 1),
        ("amount_mismatch", 1),
        ("duplicates", 1),
        ("unknown_orders", 1),
        ("repaired", 1),
        ("refunds", 1),
        ("missing_remote", 1),
        ("malformed", 0),
    ] {
        assert_eq!(done[field].as_i64(), Some(n), "{field}: {done}");
    }
    let missing_item = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "missing_remote")
        .unwrap();
    assert_eq!(missing_item["out_trade_no"], missing.payment_id.as_str());
    assert_eq!(
        status_of(&app, &lost).await,
        "paid",
        "the lost notification is repaired"
    );
    assert!(processed(&app, &lost).await);

    // Wrong totals and a malformed line: reported with its line number, nothing repaired.
    let lost2 = fine(&app, &sms, "wechat").await;
    pay_silently(&app, "wechat", &lost2).await;
    let bill = wechat_bill(
        &[(
            &lost2.payment_id,
            "4200000000000000000000000889",
            20000,
            "SUCCESS",
        )],
        &["`2026-11-24 10:00:00,`broken"],
        Some(5),
    );
    let (code, body) = upload(&app, "wechat", today(), bill).await;
    assert_eq!(code, 202, "{body}");
    let done = report(&app, body["id"].as_str().unwrap(), "done").await;
    assert_eq!(done["totals_ok"], false, "{done}");
    assert_eq!(done["malformed"].as_i64(), Some(1));
    let bad = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "malformed_line")
        .unwrap();
    assert_eq!(bad["line"].as_i64(), Some(3), "{done}");
    assert!(
        kinds(&done).contains(&"totals_mismatch".to_string()),
        "{done}"
    );
    assert!(
        kinds(&done).contains(&"paid_remote_only".to_string()),
        "{done}"
    );
    assert_eq!(done["repaired"].as_i64(), Some(0));
    assert_eq!(status_of(&app, &lost2).await, "awaiting_payment");
    app.stop().await;
}

async fn alipay_zip_and_waiting(backend: common::Backend) {
    let (app, sms) = spawn(backend, NO_ORDER_QUERY).await;
    let lost = fine(&app, &sms, "alipay").await;
    // Nothing paid at Alipay today yet: the bill is not there, the run waits.
    let (code, body) = app
        .post(
            "/v1/reconciliations",
            ADMIN,
            &json!({"channel": "alipay", "bill_date": today().to_string()}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    report(&app, &id, "waiting_for_bill").await;
    pay_silently(&app, "alipay", &lost).await;
    World::new(&app).advance(61 * 60).await;
    let done = report(&app, &id, "done").await;
    assert_eq!(done["repaired"].as_i64(), Some(1), "{done}");
    assert!(processed(&app, &lost).await);
    // An uploaded zip of the same trade: matched now.
    let trade_no = eventually(5, "the trade no", || async {
        let providers = app.services().payments.providers().await.ok()?;
        providers
            .simulated
            .as_ref()?
            .1
            .query(&lost.payment_id)
            .map(|t| t.trade_no)
    })
    .await;
    let (code, body) = upload(
        &app,
        "alipay",
        today(),
        alipay_zip(&[(&trade_no, &lost.payment_id, 20000)]),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let done = report(&app, body["id"].as_str().unwrap(), "done").await;
    assert_eq!(
        (done["lines"].as_i64(), done["matched"].as_i64()),
        (Some(1), Some(1)),
        "{done}"
    );
    assert_eq!(done["totals_ok"], true, "{done}");
    assert_eq!(done["repaired"].as_i64(), Some(0), "{done}");
    app.stop().await;
}

async fn refusals(backend: common::Backend) {
    let (app, _sms) = spawn(backend, NO_ORDER_QUERY).await;
    let (code, body) = upload(&app, "wechat", today(), b"hello".to_vec()).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("not_a_bill")),
        "{body}"
    );
    let (code, body) = upload(&app, "alipay", today(), b"not a zip".to_vec()).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("not_a_bill")),
        "{body}"
    );
    let (code, body) = app
        .post(
            "/v1/reconciliations",
            ADMIN,
            &json!({"channel": "wechat", "bill_date": "24/11/2026"}),
        )
        .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("invalid_bill_date")),
        "{body}"
    );
    let (code, _) = app
        .post(
            "/v1/reconciliations",
            ADMIN,
            &json!({"channel": "paypal", "bill_date": "2026-11-24"}),
        )
        .await;
    assert!((400..500).contains(&code));
    let (code, body) = app.get("/v1/reconciliations/rc_nope", ADMIN).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (404, Some("reconciliation_not_found")),
        "{body}"
    );
    let (code, _) = app
        .get("/v1/reconciliations/rc_nope", Person::new().who())
        .await;
    assert_eq!(code, 403);
    app.stop().await;
}

on_both_databases! {
    lost_notification_found_by_the_daily_run => daily_run_repairs_lost_notifications;
    lost_notification_found_by_the_order_query => stale_orders_are_queried;
    wechat_bill_each_outcome => wechat_bill_outcomes;
    alipay_zip_and_unpublished_bill => alipay_zip_and_waiting;
    bad_input => refusals;
}
