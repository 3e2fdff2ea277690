//! `beian bench filings`: the whole service in this process (API, workers, scheduler) with
//! the webhook SMS provider pointed at a fake gateway served here too; filings are
//! submitted over HTTP at a steady rate, each by its own filer for its own vehicle, and the
//! time from the submission to the code SMS reaching the gateway is measured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::api::auth::{Role, TokenKeys};
use crate::app::{self, Parts};
use crate::config::Config;
use crate::domain::plate::parse_plate;
use crate::domain::registry::{
    Driver, DriverFields, LicenceStatus, OwnerKind, Vehicle, VehicleFields, VehicleUsage,
};

const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";

/// A unique, valid small-car plate for number `n`.
fn plate(n: usize) -> String {
    let mut rest = n;
    let mut serial = String::new();
    for _ in 0..5 {
        serial.insert(0, ALNUM[rest % ALNUM.len()] as char);
        rest /= ALNUM.len();
    }
    format!("京B{serial}")
}

pub async fn run(mut config: Config, rate: u32, seconds: u32) -> anyhow::Result<()> {
    // The fake gateway: arrival time by plate.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let gateway = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                if let Ok(message) =
                    serde_json::from_slice::<crate::providers::sms::SmsMessage>(&body)
                {
                    if message.template == "filing_code" {
                        if let Some(plate) = message.params.get("plate_number") {
                            seen.lock()
                                .expect("lock")
                                .entry(plate.clone())
                                .or_insert_with(Instant::now);
                        }
                    }
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, gateway).await });

    config.http.addr = "127.0.0.1:0".parse()?;
    config.sms.provider = crate::config::SmsProvider::Webhook;
    config.sms.webhook_url = format!("http://{gateway_addr}/sms");
    config.sms.webhook_secret = crate::config::Secret::new("bench");
    config.filing.max_applications_per_day = u32::MAX;
    config.filing.max_applications_per_year = u32::MAX;
    let total = (rate * seconds) as usize;
    let tokens = TokenKeys::from_config(&config.auth)?;
    let parts = Parts::serve(&config);
    let running = app::start(config, parts).await?;
    let services = running.services.clone();

    // The registry: one driver and one vehicle per filing.
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await?;
    for n in 0..total {
        let (pt, pn) = parse_plate("02", &plate(n)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let fields = VehicleFields {
            owner_id_number: format!("OWNER{n:012}"),
            owner_name: "张三".into(),
            owner_phone: format!("138{:08}", n % 100_000_000),
            owner_kind: OwnerKind::Person,
            engine_number: format!("EN{n:08}"),
            usage: VehicleUsage::NonOperating,
            status: "normal".into(),
        };
        crate::store::registry::upsert_vehicle(
            &mut tx,
            &Vehicle {
                plate_type: pt,
                plate_number: pn,
                fields,
            },
            now,
        )
        .await?;
        let driver = DriverFields {
            name: "李小四".into(),
            id_number: format!("FILER{n:012}"),
            phone: format!("139{:08}", n % 100_000_000),
            licence_number: format!("FILER{n:012}"),
            licence_status: LicenceStatus::Valid,
            points: 0,
        };
        crate::store::registry::upsert_driver(
            &mut tx,
            &Driver {
                user_id: format!("bench-{n}"),
                fields: driver,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let base = format!("http://{}", running.addr);
    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut refused = 0usize;
    let mut handles = Vec::with_capacity(total);
    for n in 0..total {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let url = format!("{base}/v1/filings");
        let token = tokens.sign(
            &format!("bench-{n}"),
            Role::User,
            chrono::Utc::now().timestamp() + 3600,
        )?;
        let plate = plate(n);
        let submitted = submitted.clone();
        handles.push(tokio::spawn(async move {
            let body = serde_json::json!({"method": "sms", "plate_type": "02", "plate_number": plate,
                "engine_last6": format!("{:06}", n % 100_000_000 % 1_000_000), "relationship": "friend"});
            let at = Instant::now();
            let answer = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", format!("bench-{n}"))
                .json(&body)
                .send()
                .await;
            let ok = matches!(&answer, Ok(r) if r.status().as_u16() == 202);
            if ok {
                submitted.lock().expect("lock").insert(plate, at);
            }
            ok
        }));
    }
    for handle in handles {
        if !handle.await.unwrap_or(false) {
            refused += 1;
        }
    }
    let offered = total as f64 / started.elapsed().as_secs_f64();
    // Wait for the codes (at most a minute after the last submission).
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && arrivals.lock().expect("lock").len() < total - refused {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let submitted = submitted.lock().expect("lock").clone();
    let arrivals = arrivals.lock().expect("lock").clone();
    let mut latencies: Vec<f64> = submitted
        .iter()
        .filter_map(|(plate, at)| {
            arrivals
                .get(plate)
                .map(|arrived| (*arrived - *at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "bench filings: database={:?} transport={:?} offered={offered:.0}/s for {seconds} s, accepted={}, refused={refused}, \
         codes arrived={} submit->SMS p50={:.1} ms p99={:.1} ms max={:.1} ms rss={} MiB",
        services.db.backend(),
        services.config.queue.transport,
        submitted.len(),
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        super::rss_mib()
    );
    running.shutdown().await;
    Ok(())
}
