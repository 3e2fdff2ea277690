//! Fake payment providers for the payment tests, with keys generated here: a WeChat Pay
//! API v3 server over real HTTP (it verifies the merchant's signed requests, takes JSAPI and
//! Native orders, answers signed with its platform key), notifications built as WeChat Pay
//! and Alipay build them (AES-256-GCM with the APIv3 key and SHA256withRSA, on ring here),
//! and a service in `payments.mode = "live"` pointed at them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use beian::providers::keys::{SigningKey, VerifyingKey, generate_rsa_pem};
use ring::aead;
use serde_json::{Value, json};

use super::fakes::{FakeSmsGateway, SMS_SECRET};
use super::{Backend, TestApp};

pub const MCHID: &str = "1900012345";
pub const APPID: &str = "wx0123456789abcdef";
pub const APIV3_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";
pub const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD2C8E7D1A";
pub const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0119000123452025000000000001";
pub const ROTATED_SERIAL: &str = "6B4E2BA7A8D71E7C3B4E1D5B2F7B9C0D1E2F3A4B";
pub const ALIPAY_APP_ID: &str = "2021000123456789";
pub const SELLER_ID: &str = "2088000123456789";

/// The keys of a test run (generated once per test binary: RSA generation is slow).
pub struct PayKeys {
    pub merchant: String,
    pub platform: String,
    pub rotated: String,
    pub alipay: String,
    pub app: String,
}

pub fn keys() -> &'static PayKeys {
    static KEYS: OnceLock<PayKeys> = OnceLock::new();
    KEYS.get_or_init(|| PayKeys {
        merchant: generate_rsa_pem().unwrap(),
        platform: generate_rsa_pem().unwrap(),
        rotated: generate_rsa_pem().unwrap(),
        alipay: generate_rsa_pem().unwrap(),
        app: generate_rsa_pem().unwrap(),
    })
}

pub fn key(pem: &str) -> SigningKey {
    SigningKey::from_pem(pem).unwrap()
}

fn public_pem(pem: &str) -> String {
    key(pem).verifying_key().to_spki_pem()
}

// --------------------------------------------------------------------------------------
// The fake WeChat Pay API v3 server
// --------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct FakeOrder {
    pub kind: String,
    pub request: Value,
    pub prepay_id: String,
}

struct WechatState {
    merchant: VerifyingKey,
    platform: SigningKey,
    orders: Mutex<HashMap<String, FakeOrder>>,
    refused: Mutex<Vec<String>>,
}

pub struct FakeWechatPay {
    addr: SocketAddr,
    state: Arc<WechatState>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWechatPay {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// `WECHATPAY2-SHA256-RSA2048 k="v",...` as a map.
pub fn parse_authorization(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.strip_prefix("WECHATPAY2-SHA256-RSA2048 ")?;
    Some(
        rest.split(',')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect(),
    )
}

fn signed_reply(state: &WechatState, status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(&body);
    message.push(b'\n');
    (
        status,
        [
            ("Content-Type", "application/json".to_string()),
            ("Wechatpay-Timestamp", timestamp),
            ("Wechatpay-Nonce", nonce),
            ("Wechatpay-Signature", state.platform.sign(&message)),
            ("Wechatpay-Serial", PLATFORM_SERIAL.to_string()),
        ],
        body,
    )
        .into_response()
}

async fn create_order(
    State(state): State<Arc<WechatState>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_authorization);
    let verified = auth.as_ref().is_some_and(|a| {
        let mut message = format!(
            "POST\n/v3/pay/transactions/{kind}\n{}\n{}\n",
            a.get("timestamp").map(String::as_str).unwrap_or(""),
            a.get("nonce_str").map(String::as_str).unwrap_or("")
        )
        .into_bytes();
        message.extend_from_slice(&body);
        message.push(b'\n');
        a.get("mchid").map(String::as_str) == Some(MCHID)
            && a.get("serial_no").map(String::as_str) == Some(MERCHANT_SERIAL)
            && state.merchant.verify(
                &message,
                a.get("signature").map(String::as_str).unwrap_or(""),
            )
    });
    if !verified {
        state.refused.lock().unwrap().push("signature".into());
        return signed_reply(
            &state,
            StatusCode::UNAUTHORIZED,
            &json!({"code": "SIGN_ERROR"}),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let prepay_id = format!("wx{}", uuid::Uuid::new_v4().simple());
    let out_trade_no = request["out_trade_no"].as_str().unwrap_or("").to_string();
    state.orders.lock().unwrap().insert(
        out_trade_no,
        FakeOrder {
            kind: kind.clone(),
            request,
            prepay_id: prepay_id.clone(),
        },
    );
    let answer = if kind == "native" {
        json!({"code_url": "weixin://wxpay/bizpayurl?pr=abc123"})
    } else {
        json!({"prepay_id": prepay_id})
    };
    signed_reply(&state, StatusCode::OK, &answer)
}

impl FakeWechatPay {
    pub async fn start() -> FakeWechatPay {
        let k = keys();
        let state = Arc::new(WechatState {
            merchant: key(&k.merchant).verifying_key(),
            platform: key(&k.platform),
            orders: Mutex::new(HashMap::new()),
            refused: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/v3/pay/transactions/{kind}", post(create_order))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeWechatPay {
            addr,
            state,
            handle,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn order(&self, out_trade_no: &str) -> Option<FakeOrder> {
        self.state.orders.lock().unwrap().get(out_trade_no).cloned()
    }

    pub fn refused(&self) -> usize {
        self.state.refused.lock().unwrap().len()
    }
}

// --------------------------------------------------------------------------------------
// Notifications as the providers build them
// --------------------------------------------------------------------------------------

/// A transaction as WeChat Pay describes a paid order.
pub fn transaction(out_trade_no: &str, total: i64, transaction_id: &str) -> Value {
    json!({
        "appid": APPID, "mchid": MCHID, "out_trade_no": out_trade_no,
        "transaction_id": transaction_id, "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
        "success_time": chrono::Utc::now().to_rfc3339(),
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    })
}

/// How to build (or spoil) a notification.
pub struct Wire<'a> {
    pub signing_key: &'a str,
    pub serial: &'a str,
    pub apiv3_key: &'a [u8],
    pub timestamp: i64,
    pub signature_override: Option<String>,
}

impl Default for Wire<'_> {
    fn default() -> Self {
        Wire {
            signing_key: &keys().platform,
            serial: PLATFORM_SERIAL,
            apiv3_key: APIV3_KEY.as_bytes(),
            timestamp: chrono::Utc::now().timestamp(),
            signature_override: None,
        }
    }
}

/// TRANSACTION.SUCCESS for `transaction`: (headers, raw body).
pub fn wechat_notification(
    transaction: &Value,
    wire: Wire<'_>,
) -> (Vec<(String, String)>, Vec<u8>) {
    let nonce = "a1B2c3D4e5F6";
    let aad = "transaction";
    let k =
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, wire.apiv3_key).unwrap());
    let mut data = serde_json::to_vec(transaction).unwrap();
    k.seal_in_place_append_tag(
        aead::Nonce::try_assume_unique_for_key(nonce.as_bytes()).unwrap(),
        aead::Aad::from(aad.as_bytes()),
        &mut data,
    )
    .unwrap();
    let body = serde_json::to_vec(&json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "create_time": chrono::Utc::now().to_rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": B64.encode(&data), "associated_data": aad, "nonce": nonce},
    }))
    .unwrap();
    let ts = wire.timestamp.to_string();
    let header_nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut message = format!("{ts}\n{header_nonce}\n").into_bytes();
    message.extend_from_slice(&body);
    message.push(b'\n');
    let signature = wire
        .signature_override
        .unwrap_or_else(|| key(wire.signing_key).sign(&message));
    let headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("Wechatpay-Timestamp".into(), ts),
        ("Wechatpay-Nonce".into(), header_nonce),
        ("Wechatpay-Signature".into(), signature),
        ("Wechatpay-Serial".into(), wire.serial.to_string()),
        (
            "Wechatpay-Signature-Type".into(),
            "WECHATPAY2-SHA256-RSA2048".into(),
        ),
    ];
    (headers, body)
}

/// Alipay's `k=v&...` signing content (sorted, empty values and `excluded` dropped).
pub fn alipay_content(params: &[(String, String)], excluded: &[&str]) -> String {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !excluded.contains(&k.as_str()))
        .collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A TRADE_SUCCESS asynchronous notification, signed RSA2 with `signing_key`.
pub fn alipay_notification(
    out_trade_no: &str,
    amount: &str,
    trade_no: &str,
    signing_key: &str,
) -> Vec<(String, String)> {
    let now = chrono::Utc::now()
        .with_timezone(&beian::clock::shanghai())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut params: Vec<(String, String)> = [
        ("notify_time", now.as_str()),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("app_id", ALIPAY_APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("trade_no", trade_no),
        ("out_trade_no", out_trade_no),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", amount),
        ("receipt_amount", amount),
        ("buyer_pay_amount", amount),
        ("gmt_payment", now.as_str()),
        ("seller_id", SELLER_ID),
        ("subject", "交通违法罚款 测试"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let content = alipay_content(&params, &["sign", "sign_type"]);
    params.push(("sign_type".into(), "RSA2".into()));
    params.push(("sign".into(), key(signing_key).sign(content.as_bytes())));
    params
}

/// The form body of `params` (percent-encoded, as Alipay posts it).
pub fn form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", beian::providers::alipay::url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

// --------------------------------------------------------------------------------------
// A service in live mode pointed at the fakes
// --------------------------------------------------------------------------------------

/// A service with `payments.mode = "live"` (WeChat Pay at `wechat`, two platform keys as
/// in a rotation; Alipay with the test keys), SMS to a fake gateway, fast retries.
pub async fn spawn_payment_app(backend: Backend) -> (TestApp, FakeSmsGateway, FakeWechatPay) {
    let sms = FakeSmsGateway::start(SMS_SECRET).await;
    let wechat = FakeWechatPay::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let k = keys();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let merchant_path = write("merchant_key.pem", &k.merchant);
    let platform_path = write("platform.pub.pem", &public_pem(&k.platform));
    let rotated_path = write("rotated.pub.pem", &public_pem(&k.rotated));
    let app_path = write("alipay_app_key.pem", &k.app);
    let alipay_path = write("alipay.pub.pem", &public_pem(&k.alipay));
    let (url, pg_database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("beian.db").display()),
            None,
        ),
        _ => {
            let (url, name) = super::fresh_postgres_database().await;
            (url, Some(name))
        }
    };
    let sms_url = sms.url();
    let wechat_url = wechat.url();
    let mut overrides: Vec<(String, String)> = if backend == Backend::PostgresAmqp {
        super::require_rabbitmq();
        super::amqp_overrides(&super::amqp_url())
    } else {
        Vec::new()
    };
    for (k, v) in [
        ("BEIAN__SMS__PROVIDER", "webhook"),
        ("BEIAN__SMS__WEBHOOK_URL", sms_url.as_str()),
        ("BEIAN__SMS__WEBHOOK_SECRET", SMS_SECRET),
        ("BEIAN__SMS__LIMIT_PER_MINUTE", "1000"),
        ("BEIAN__SMS__LIMIT_PER_HOUR", "1000"),
        ("BEIAN__SMS__LIMIT_PER_DAY", "1000"),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS", "20"),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS", "200"),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS", "50"),
        ("BEIAN__PAYMENTS__MODE", "live"),
        ("BEIAN__WECHAT__MCHID", MCHID),
        ("BEIAN__WECHAT__APPID", APPID),
        ("BEIAN__WECHAT__APIV3_KEY", APIV3_KEY),
        ("BEIAN__WECHAT__MERCHANT_SERIAL", MERCHANT_SERIAL),
        ("BEIAN__WECHAT__BASE_URL", wechat_url.as_str()),
        (
            "BEIAN__WECHAT__NOTIFY_URL",
            "https://beian.example/v1/callbacks/wechatpay",
        ),
        ("BEIAN__ALIPAY__APP_ID", ALIPAY_APP_ID),
        ("BEIAN__ALIPAY__SELLER_ID", SELLER_ID),
        (
            "BEIAN__ALIPAY__GATEWAY_URL",
            "http://127.0.0.1:9/gateway.do",
        ),
        (
            "BEIAN__ALIPAY__NOTIFY_URL",
            "https://beian.example/v1/callbacks/alipay",
        ),
    ] {
        overrides.push((k.into(), v.into()));
    }
    overrides.push((
        "BEIAN__WECHAT__MERCHANT_KEY_PATH".into(),
        merchant_path.display().to_string(),
    ));
    overrides.push((
        "BEIAN__ALIPAY__APP_PRIVATE_KEY_PATH".into(),
        app_path.display().to_string(),
    ));
    overrides.push((
        "BEIAN__ALIPAY__ALIPAY_PUBLIC_KEY_PATH".into(),
        alipay_path.display().to_string(),
    ));
    let pairs: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut config = super::test_config(&url, dir.path(), &pairs);
    config.wechat.platform_keys = vec![
        beian::config::PlatformKey {
            serial: PLATFORM_SERIAL.into(),
            public_key_path: platform_path,
        },
        beian::config::PlatformKey {
            serial: ROTATED_SERIAL.into(),
            public_key_path: rotated_path,
        },
    ];
    let tokens = beian::api::auth::TokenKeys::from_config(&config.auth).expect("token keys");
    let parts = beian::app::Parts::serve(&config);
    let running = beian::app::start(config.clone(), parts)
        .await
        .expect("service starts");
    let app = TestApp {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap(),
        config,
        dir,
        running: Some(running),
        pg_database,
        tokens,
    };
    (app, sms, wechat)
}
