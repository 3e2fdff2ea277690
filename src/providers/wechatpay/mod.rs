//! WeChat Pay API v3 (`spec/providers.md`): the merchant's identity and keys, requests
//! signed with the merchant key (`Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,
//! nonce_str=.., signature=.., timestamp=.., serial_no=..` over
//! `METHOD\nTARGET\ntimestamp\nnonce\nbody\n`), replies verified with the platform key,
//! JSAPI (with the payer's openid) and Native orders, the order query; notifications are in
//! [`notify`]. With `payments.mode = "simulated"` the calls go to the in-process
//! [`simulator`] instead of the network.

pub mod bill;
pub mod notify;
pub mod simulator;

use std::sync::Arc;

use anyhow::Context;
use backon::Retryable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::keys::{SigningKey, VerifyingKey};
use super::{CallError, nonce, real_now_s};
use crate::config::WechatConfig;
use crate::queue::retry::RetryPolicy;
use notify::{NotifyHeaders, Transaction};

pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The merchant's side of the protocol: ids, APIv3 key, merchant key, platform keys.
#[derive(Clone, Debug)]
pub struct WechatIdentity {
    pub mchid: String,
    pub appid: String,
    pub apiv3_key: Vec<u8>,
    pub merchant_key: SigningKey,
    pub merchant_serial: String,
    /// Several during a key rotation, by serial (or `PUB_KEY_ID_...`).
    pub platform_keys: Vec<(String, VerifyingKey)>,
}

impl WechatIdentity {
    pub fn from_config(cfg: &WechatConfig) -> anyhow::Result<WechatIdentity> {
        let apiv3_key = cfg.apiv3_key.expose().as_bytes().to_vec();
        if apiv3_key.len() != 32 {
            anyhow::bail!("wechat.apiv3_key: must be 32 bytes");
        }
        let merchant_key =
            SigningKey::from_file(&cfg.merchant_key_path).context("wechat.merchant_key_path")?;
        let mut platform_keys = Vec::new();
        for (i, key) in cfg.platform_keys.iter().enumerate() {
            let public = VerifyingKey::from_file(&key.public_key_path)
                .with_context(|| format!("wechat.platform_keys[{i}].public_key_path"))?;
            platform_keys.push((key.serial.clone(), public));
        }
        if platform_keys.is_empty() {
            anyhow::bail!("wechat.platform_keys: at least one platform public key is needed");
        }
        Ok(WechatIdentity {
            mchid: cfg.mchid.clone(),
            appid: cfg.appid.clone(),
            apiv3_key,
            merchant_key,
            merchant_serial: cfg.merchant_serial.clone(),
            platform_keys,
        })
    }

    pub fn platform_key(&self, serial: &str) -> Option<&VerifyingKey> {
        self.platform_keys
            .iter()
            .find(|(s, _)| s == serial)
            .map(|(_, k)| k)
    }

    /// The `Authorization` header of a request.
    pub fn authorization(&self, method: &str, target: &str, body: &[u8], timestamp: i64) -> String {
        let nonce = nonce(32);
        let mut message = format!("{method}\n{target}\n{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        let signature = self.merchant_key.sign(&message);
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.mchid, self.merchant_serial
        )
    }

    /// The parameters the app hands to `wx.requestPayment` for a JSAPI prepay id.
    pub fn jsapi_params(&self, prepay_id: &str, timestamp: i64) -> JsapiParams {
        let nonce = nonce(32);
        let package = format!("prepay_id={prepay_id}");
        let message = format!("{}\n{timestamp}\n{nonce}\n{package}\n", self.appid);
        JsapiParams {
            app_id: self.appid.clone(),
            time_stamp: timestamp.to_string(),
            nonce_str: nonce,
            pay_sign: self.merchant_key.sign(message.as_bytes()),
            package,
            sign_type: "RSA".into(),
        }
    }
}

/// JSAPI pay parameters, named as WeChat names them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsapiParams {
    pub app_id: String,
    pub time_stamp: String,
    pub nonce_str: String,
    pub package: String,
    pub sign_type: String,
    pub pay_sign: String,
}

/// What creating an order gave.
#[derive(Debug, Clone)]
pub enum Created {
    Jsapi { prepay_id: String },
    Native { code_url: String },
}

/// A new order.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub out_trade_no: &'a str,
    pub description: &'a str,
    pub total_fen: i64,
    pub openid: Option<&'a str>,
}

/// Where orders go: the network, or the in-process simulator.
#[derive(Clone)]
enum Endpoint {
    Http {
        base_url: String,
        client: reqwest::Client,
    },
    Simulated(Arc<simulator::WechatSimulator>),
}

/// The WeChat Pay client of the service.
#[derive(Clone)]
pub struct WechatPay {
    pub identity: WechatIdentity,
    pub notify_url: String,
    endpoint: Endpoint,
    policy: RetryPolicy,
}

impl WechatPay {
    pub fn live(
        cfg: &WechatConfig,
        client: reqwest::Client,
        policy: RetryPolicy,
    ) -> anyhow::Result<WechatPay> {
        Ok(WechatPay {
            identity: WechatIdentity::from_config(cfg)?,
            notify_url: cfg.notify_url.clone(),
            endpoint: Endpoint::Http {
                base_url: cfg.base_url.trim_end_matches('/').to_string(),
                client,
            },
            policy,
        })
    }

    pub fn simulated(sim: Arc<simulator::WechatSimulator>, policy: RetryPolicy) -> WechatPay {
        WechatPay {
            identity: sim.identity.clone(),
            notify_url: String::new(),
            endpoint: Endpoint::Simulated(sim),
            policy,
        }
    }

    /// Creates a JSAPI order (with an openid) or a Native one, retrying what can be retried.
    pub async fn create_order(&self, order: &NewOrder<'_>) -> Result<Created, CallError> {
        let (kind, payer) = match order.openid {
            Some(openid) => ("jsapi", Some(json!({ "openid": openid }))),
            None => ("native", None),
        };
        let mut body = json!({
            "appid": self.identity.appid,
            "mchid": self.identity.mchid,
            "description": order.description,
            "out_trade_no": order.out_trade_no,
            "notify_url": self.notify_url,
            "amount": { "total": order.total_fen, "currency": "CNY" },
        });
        if let Some(payer) = payer {
            body["payer"] = payer;
        }
        let answer = match &self.endpoint {
            Endpoint::Simulated(sim) => {
                sim.create_order(kind, &body).map_err(CallError::Refused)?
            }
            Endpoint::Http { .. } => {
                let path = format!("/v3/pay/transactions/{kind}");
                let bytes =
                    serde_json::to_vec(&body).map_err(|e| CallError::Refused(e.to_string()))?;
                self.call("POST", &path, Some(bytes)).await?.1
            }
        };
        let text = |key: &str| answer[key].as_str().map(str::to_string);
        match kind {
            "jsapi" => text("prepay_id").map(|prepay_id| Created::Jsapi { prepay_id }),
            _ => text("code_url").map(|code_url| Created::Native { code_url }),
        }
        .ok_or_else(|| CallError::Refused("create order: answer without prepay_id/code_url".into()))
    }

    /// The order as WeChat Pay knows it; `None` when it does not exist there.
    pub async fn query_order(&self, out_trade_no: &str) -> Result<Option<Transaction>, CallError> {
        let value = match &self.endpoint {
            Endpoint::Simulated(sim) => sim.query(out_trade_no),
            Endpoint::Http { .. } => {
                let path = format!(
                    "/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={}",
                    self.identity.mchid
                );
                match self.call("GET", &path, None).await {
                    Ok((_, value)) => Some(value),
                    Err(CallError::NotFound) => None,
                    Err(e) => return Err(e),
                }
            }
        };
        value
            .map(|v| serde_json::from_value(v).map_err(|e| CallError::Refused(e.to_string())))
            .transpose()
    }

    /// One signed request with the retry policy; the reply's signature is verified.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, serde_json::Value), CallError> {
        let Endpoint::Http { base_url, client } = &self.endpoint else {
            return Err(CallError::Refused("not a network endpoint".into()));
        };
        let url = format!("{base_url}{path}");
        let attempt = || async {
            let target = reqwest::Url::parse(&url)
                .map(|u| match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_string(),
                })
                .map_err(|e| CallError::Refused(e.to_string()))?;
            let bytes = body.clone().unwrap_or_default();
            let auth = self
                .identity
                .authorization(method, &target, &bytes, real_now_s());
            let mut request = client
                .request(method.parse().unwrap_or(reqwest::Method::GET), &url)
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .header("User-Agent", "beian");
            if body.is_some() {
                request = request
                    .header("Content-Type", "application/json")
                    .body(bytes);
            }
            let response = request
                .send()
                .await
                .map_err(|e| CallError::Transient(e.to_string()))?;
            let status = response.status().as_u16();
            let headers = reply_headers(response.headers());
            let raw = response
                .bytes()
                .await
                .map_err(|e| CallError::Transient(e.to_string()))?;
            if status == 404 {
                return Err(CallError::NotFound);
            }
            if status >= 500 || status == 429 {
                return Err(CallError::Transient(format!(
                    "WeChat Pay answered {status}"
                )));
            }
            if !(200..300).contains(&status) {
                let text = String::from_utf8_lossy(&raw);
                return Err(CallError::Refused(format!(
                    "WeChat Pay answered {status}: {text}"
                )));
            }
            self.identity
                .verify_signature(&headers, &raw, real_now_s())
                .map_err(|e| CallError::Refused(format!("reply signature: {e:?}")))?;
            let value = if raw.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&raw).map_err(|e| CallError::Refused(e.to_string()))?
            };
            Ok((status, value))
        };
        attempt
            .retry(self.policy)
            .when(|e: &CallError| matches!(e, CallError::Transient(_)))
            .await
    }
}

fn reply_headers(headers: &reqwest::header::HeaderMap) -> NotifyHeaders {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    NotifyHeaders {
        timestamp: get("wechatpay-timestamp"),
        nonce: get("wechatpay-nonce"),
        signature: get("wechatpay-signature"),
        serial: get("wechatpay-serial"),
        signature_type: get("wechatpay-signature-type"),
    }
}
