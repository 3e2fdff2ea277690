//! Alipay (`spec/providers.md`): RSA2 (SHA256withRSA) over the sorted parameters, the
//! `alipay.trade.app.pay` order string and the `alipay.trade.page.pay` URL the front end
//! opens, the asynchronous notification's check (drop `sign` and `sign_type` and empty
//! values, sort, join `k=v` with `&`, verify with the Alipay public key), and
//! `alipay.trade.query` through the gateway (its reply verified over the response text).
//! With `payments.mode = "simulated"` the query goes to the in-process [`simulator`].

pub mod bill;
pub mod simulator;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use backon::Retryable;
use serde_json::json;

use super::keys::{SigningKey, VerifyingKey};
use super::{CallError, real_now_s};
use crate::config::AlipayConfig;
use crate::domain::payment::{parse_yuan, yuan};
use crate::queue::retry::RetryPolicy;

/// The merchant app's side: ids, the app private key, Alipay's public key.
#[derive(Clone, Debug)]
pub struct AlipayIdentity {
    pub app_id: String,
    pub seller_id: String,
    pub app_key: SigningKey,
    pub alipay_key: VerifyingKey,
}

/// `k=v&k=v` over the sorted parameters, empty values and `excluded` keys dropped.
pub fn sign_content<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    excluded: &[&str],
) -> String {
    let sorted: BTreeMap<&str, &str> = params
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && !excluded.contains(k))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Alipay's local time format, Asia/Shanghai.
pub fn local_time(unix_s: i64) -> String {
    crate::clock::from_ms(unix_s * 1000)
        .with_timezone(&crate::clock::shanghai())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A verified asynchronous notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub notify_id: String,
    pub app_id: String,
    pub seller_id: String,
    pub out_trade_no: String,
    pub trade_no: String,
    pub trade_status: String,
    pub total_fen: i64,
    pub gmt_payment: String,
}

impl AlipayIdentity {
    pub fn from_config(cfg: &AlipayConfig) -> anyhow::Result<AlipayIdentity> {
        Ok(AlipayIdentity {
            app_id: cfg.app_id.clone(),
            seller_id: cfg.seller_id.clone(),
            app_key: SigningKey::from_file(&cfg.app_private_key_path)
                .context("alipay.app_private_key_path")?,
            alipay_key: VerifyingKey::from_file(&cfg.alipay_public_key_path)
                .context("alipay.alipay_public_key_path")?,
        })
    }

    /// The common parameters of a request for `method` with `biz`, signed (`sign_type` is
    /// part of what requests sign).
    pub fn signed_request(
        &self,
        method: &str,
        biz: &serde_json::Value,
        notify_url: &str,
        now_s: i64,
    ) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = vec![
            ("app_id".into(), self.app_id.clone()),
            ("method".into(), method.into()),
            ("format".into(), "JSON".into()),
            ("charset".into(), "utf-8".into()),
            ("sign_type".into(), "RSA2".into()),
            ("timestamp".into(), local_time(now_s)),
            ("version".into(), "1.0".into()),
            ("biz_content".into(), biz.to_string()),
        ];
        if !notify_url.is_empty() {
            params.push(("notify_url".into(), notify_url.into()));
        }
        let content = sign_content(
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &["sign"],
        );
        params.push(("sign".into(), self.app_key.sign(content.as_bytes())));
        params.sort();
        params
    }

    /// The `alipay.trade.app.pay` (or `page.pay`) order string for a payment.
    pub fn order_string(
        &self,
        method: &str,
        out_trade_no: &str,
        total_fen: i64,
        subject: &str,
        notify_url: &str,
        now_s: i64,
    ) -> String {
        let product = if method == "alipay.trade.page.pay" {
            "FAST_INSTANT_TRADE_PAY"
        } else {
            "QUICK_MSECURITY_PAY"
        };
        let biz = json!({
            "out_trade_no": out_trade_no,
            "total_amount": yuan(total_fen),
            "subject": subject,
            "product_code": product,
        });
        encode(&self.signed_request(method, &biz, notify_url, now_s))
    }

    /// Checks an asynchronous notification (form fields, URL-decoded).
    pub fn verify_notification(&self, params: &[(String, String)]) -> Result<Notice, &'static str> {
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        if !matches!(get("sign_type"), "RSA2" | "") {
            return Err("sign_type is not RSA2");
        }
        let sign = get("sign");
        if sign.is_empty() {
            return Err("sign missing");
        }
        let content = sign_content(
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &["sign", "sign_type"],
        );
        if !self.alipay_key.verify(content.as_bytes(), sign) {
            return Err("sign does not verify");
        }
        Ok(Notice {
            notify_id: get("notify_id").into(),
            app_id: get("app_id").into(),
            seller_id: get("seller_id").into(),
            out_trade_no: get("out_trade_no").into(),
            trade_no: get("trade_no").into(),
            trade_status: get("trade_status").into(),
            total_fen: parse_yuan(get("total_amount")).ok_or("total_amount malformed")?,
            gmt_payment: get("gmt_payment").into(),
        })
    }
}

/// `k=v&...` with the values percent-encoded.
pub fn encode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The trade as Alipay knows it (`alipay.trade.query`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub trade_no: String,
    pub trade_status: String,
    pub total_fen: i64,
}

#[derive(Clone)]
enum Endpoint {
    Http {
        gateway_url: String,
        client: reqwest::Client,
    },
    Simulated(Arc<simulator::AlipaySimulator>),
}

/// The Alipay client of the service.
#[derive(Clone)]
pub struct Alipay {
    pub identity: AlipayIdentity,
    pub notify_url: String,
    endpoint: Endpoint,
    policy: RetryPolicy,
}

impl Alipay {
    pub fn live(
        cfg: &AlipayConfig,
        client: reqwest::Client,
        policy: RetryPolicy,
    ) -> anyhow::Result<Alipay> {
        Ok(Alipay {
            identity: AlipayIdentity::from_config(cfg)?,
            notify_url: cfg.notify_url.clone(),
            endpoint: Endpoint::Http {
                gateway_url: cfg.gateway_url.clone(),
                client,
            },
            policy,
        })
    }

    pub fn simulated(sim: Arc<simulator::AlipaySimulator>, policy: RetryPolicy) -> Alipay {
        Alipay {
            identity: sim.identity.clone(),
            notify_url: String::new(),
            endpoint: Endpoint::Simulated(sim),
            policy,
        }
    }

    /// The gateway URL a `page.pay` order string is appended to.
    pub fn gateway_url(&self) -> Option<&str> {
        match &self.endpoint {
            Endpoint::Http { gateway_url, .. } => Some(gateway_url),
            Endpoint::Simulated(_) => None,
        }
    }

    /// Tells the simulator about an order (the real Alipay learns of it when the app opens
    /// the order string).
    pub fn announce(&self, out_trade_no: &str, total_fen: i64) {
        if let Endpoint::Simulated(sim) = &self.endpoint {
            sim.order(out_trade_no, total_fen);
        }
    }

    /// `alipay.trade.query`; `None` when Alipay has no such trade.
    pub async fn query(&self, out_trade_no: &str) -> Result<Option<Trade>, CallError> {
        let (gateway_url, client) = match &self.endpoint {
            Endpoint::Simulated(sim) => return Ok(sim.query(out_trade_no)),
            Endpoint::Http {
                gateway_url,
                client,
            } => (gateway_url, client),
        };
        let method = "alipay.trade.query";
        let attempt = || async {
            let params = self.identity.signed_request(
                method,
                &json!({ "out_trade_no": out_trade_no }),
                "",
                real_now_s(),
            );
            let response = client
                .post(gateway_url)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded;charset=utf-8",
                )
                .body(encode(&params))
                .send()
                .await
                .map_err(|e| CallError::Transient(e.to_string()))?;
            let status = response.status().as_u16();
            let text = response
                .text()
                .await
                .map_err(|e| CallError::Transient(e.to_string()))?;
            if status >= 500 {
                return Err(CallError::Transient(format!("Alipay answered {status}")));
            }
            self.read_reply(method, &text)
        };
        attempt
            .retry(self.policy)
            .when(|e: &CallError| matches!(e, CallError::Transient(_)))
            .await
    }

    fn read_reply(&self, method: &str, text: &str) -> Result<Option<Trade>, CallError> {
        let key = format!("{}_response", method.replace('.', "_"));
        let inner = response_text(text, &key)
            .ok_or_else(|| CallError::Refused(format!("{method}: no {key} in the reply")))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CallError::Refused(e.to_string()))?;
        let sign = value["sign"].as_str().unwrap_or("");
        if !self.identity.alipay_key.verify(inner.as_bytes(), sign) {
            return Err(CallError::Refused(format!(
                "{method}: reply signature does not verify"
            )));
        }
        let reply = &value[&key];
        if reply["code"] != "10000" {
            if reply["sub_code"] == "ACQ.TRADE_NOT_EXIST" {
                return Ok(None);
            }
            return Err(CallError::Refused(format!(
                "{method}: {}",
                reply["sub_code"]
            )));
        }
        let text = |k: &str| reply[k].as_str().unwrap_or("").to_string();
        Ok(Some(Trade {
            trade_no: text("trade_no"),
            trade_status: text("trade_status"),
            total_fen: parse_yuan(&text("total_amount"))
                .ok_or_else(|| CallError::Refused("total_amount malformed".into()))?,
        }))
    }
}

/// The raw text of the object under `"key":` in `body` (what Alipay signs), found by
/// matching braces outside strings.
pub fn response_text<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let at = body.find(&format!("\"{key}\""))?;
    let rest = &body[at + key.len() + 2..];
    let start = at + key.len() + 2 + rest.find('{')?;
    let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
    for (i, c) in body[start..].char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => in_string = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&body[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}
