//! The dashboard against a running `beian serve`: a little traffic (registry, a filing, the
//! test clock moved past a code's expiry so a timer fires), then every metric the dashboard
//! queries must be in `/metrics`.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::{Value as Json, json};

use super::common::{self, eventually};
use super::{BIN, ROOT, dashboard, dashboard_metrics};

fn token(sub: &str, role: &str, env: &[(String, String)]) -> String {
    let out = Command::new(BIN)
        .args(["token", "--sub", sub, "--role", role])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn every_metric_of_the_dashboard_is_in_a_running_services_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env: Vec<(String, String)> = [
        ("BEIAN__HTTP__ADDR", format!("127.0.0.1:{port}")),
        ("BEIAN__DATA_DIR", dir.path().display().to_string()),
        (
            "BEIAN__DATABASE__URL",
            format!("sqlite://{}", dir.path().join("beian.db").display()),
        ),
        (
            "BEIAN__SMS__OUTBOX_FILE",
            dir.path().join("sms-outbox.ndjson").display().to_string(),
        ),
        ("BEIAN__CLOCK__MANUAL", "true".into()),
        ("BEIAN__AUTH__JWT_SECRET", common::JWT_SECRET.into()),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS", "100".into()),
        ("BEIAN__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let _service = Killed(
        Command::new(BIN)
            .arg("serve")
            .current_dir(ROOT)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(30, "the service to answer /healthz", || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;

    // A little traffic: the registry, a filing (intake and SMS jobs), then the clock moved
    // past the owner's code expiry so a durable timer fires.
    let (sys, user, admin) = (
        token("sys", "system", &env),
        token("U1", "user", &env),
        token("ops", "admin", &env),
    );
    let put = |path: &str, token: &str, body: Json| {
        http.put(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let vehicle = json!({"owner_id_number": "110101199003071234", "owner_name": "张小三",
        "owner_phone": "13812345678", "owner_kind": "person", "engine_number": "LB1234567890",
        "usage": "non_operating", "status": "normal"});
    let plate = "/v1/registry/vehicles/02/%E4%BA%ACA12345";
    assert!(
        put(plate, &sys, vehicle)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let driver = json!({"name": "李小四", "id_number": "110101199205061234", "phone": "13912345678",
        "licence_number": "110101199205061234", "licence_status": "valid", "points": 0});
    assert!(
        put("/v1/registry/drivers/U1", &sys, driver)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let filing: Json = http
        .post(format!("{base}/v1/filings"))
        .bearer_auth(&user)
        .header("Idempotency-Key", "deploy-1")
        .json(
            &json!({"method": "sms", "plate_type": "02", "plate_number": "京A12345",
            "engine_last6": "567890", "relationship": "friend"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = filing["id"].as_str().expect("a filing id").to_string();
    eventually(30, "the owner's code to be sent", || async {
        let f: Json = http
            .get(format!("{base}/v1/filings/{id}"))
            .bearer_auth(&user)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (f["status"] == "code_sent").then_some(())
    })
    .await;
    let now: Json = http
        .get(format!("{base}/v1/test/clock"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let later = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap()
        + chrono::Duration::minutes(30);
    let moved = put("/v1/test/clock", &admin, json!({"now": later.to_rfc3339()}))
        .await
        .unwrap();
    assert!(moved.status().is_success());

    let wanted = dashboard_metrics(&dashboard());
    let missing = eventually(30, "every dashboard metric in /metrics", || async {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let present: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(|n| {
                n.trim_end_matches("_bucket")
                    .trim_end_matches("_count")
                    .trim_end_matches("_sum")
            })
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|n| !present.contains(n.as_str()))
            .collect();
        missing.is_empty().then_some(missing.len())
    })
    .await;
    assert_eq!(missing, 0);
}

/// A child process ended when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
