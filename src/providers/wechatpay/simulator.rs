//! The in-process WeChat Pay stand-in (`payments.mode = "simulated"`): real keys, generated
//! at first start and kept in `data_dir/simulator/wechat/`; it takes orders, answers the
//! order query, and when an order is paid builds the real-format notification: the
//! transaction encrypted with the APIv3 key, signed with its platform key. It lives in real
//! time, as WeChat Pay does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::WechatIdentity;
use super::notify::signed_message;
use crate::providers::keys::SigningKey;
use crate::providers::{load_or_generate_key, load_or_generate_secret, nonce, real_now_s};

pub const SIM_MCHID: &str = "1900000109";
pub const SIM_APPID: &str = "wxd678efh567hg6787";
pub const SIM_SERIAL: &str = "PUB_KEY_ID_0119000001092025000000000000";
pub const SIM_MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

#[derive(Debug, Clone)]
struct Order {
    kind: String,
    total: i64,
    paid: Option<(String, i64)>,
}

pub struct WechatSimulator {
    /// The merchant's identity as the service sees it (platform public key included).
    pub identity: WechatIdentity,
    platform_key: SigningKey,
    orders: Mutex<HashMap<String, Order>>,
}

/// A notification ready to post: headers and raw body.
#[derive(Debug, Clone)]
pub struct SimNotification {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WechatSimulator {
    pub fn load_or_create(dir: &Path) -> anyhow::Result<WechatSimulator> {
        let merchant_key = load_or_generate_key(&dir.join("merchant_key.pem"))?;
        let platform_key = load_or_generate_key(&dir.join("platform_key.pem"))?;
        let apiv3_key = load_or_generate_secret(&dir.join("apiv3_key.txt"), 32)?;
        Ok(WechatSimulator {
            identity: WechatIdentity {
                mchid: SIM_MCHID.into(),
                appid: SIM_APPID.into(),
                apiv3_key: apiv3_key.into_bytes(),
                merchant_key,
                merchant_serial: SIM_MERCHANT_SERIAL.into(),
                platform_keys: vec![(SIM_SERIAL.into(), platform_key.verifying_key())],
            },
            platform_key,
            orders: Mutex::new(HashMap::new()),
        })
    }

    /// `POST /v3/pay/transactions/{kind}` with the order's JSON.
    pub fn create_order(&self, kind: &str, body: &Value) -> Result<Value, String> {
        let out_trade_no = body["out_trade_no"]
            .as_str()
            .ok_or("out_trade_no missing")?;
        let total = body["amount"]["total"]
            .as_i64()
            .ok_or("amount.total missing")?;
        if body["mchid"] != self.identity.mchid || body["appid"] != self.identity.appid {
            return Err("mchid or appid is not the merchant's".into());
        }
        let mut orders = self.orders.lock().map_err(|_| "poisoned")?;
        if let Some(existing) = orders.get(out_trade_no) {
            if existing.paid.is_some() {
                return Err("ORDERPAID".into());
            }
        }
        orders.insert(
            out_trade_no.to_string(),
            Order {
                kind: kind.to_string(),
                total,
                paid: None,
            },
        );
        let prepay = format!("wx{}", nonce(30));
        Ok(match kind {
            "jsapi" => json!({ "prepay_id": prepay }),
            _ => json!({ "code_url": format!("weixin://wxpay/bizpayurl?pr={}", &prepay[2..12]) }),
        })
    }

    fn transaction(&self, out_trade_no: &str, order: &Order) -> Value {
        let mut t = json!({
            "appid": self.identity.appid,
            "mchid": self.identity.mchid,
            "out_trade_no": out_trade_no,
            "trade_type": order.kind.to_uppercase(),
            "trade_state": if order.paid.is_some() { "SUCCESS" } else { "NOTPAY" },
            "amount": { "total": order.total, "currency": "CNY" },
        });
        if let Some((transaction_id, at)) = &order.paid {
            t["transaction_id"] = json!(transaction_id);
            t["success_time"] = json!(crate::clock::rfc3339(*at * 1000));
            t["amount"]["payer_total"] = json!(order.total);
            t["payer"] = json!({ "openid": format!("o{}", nonce(27)) });
        }
        t
    }

    /// `GET /v3/pay/transactions/out-trade-no/{id}`.
    pub fn query(&self, out_trade_no: &str) -> Option<Value> {
        let orders = self.orders.lock().ok()?;
        orders
            .get(out_trade_no)
            .map(|o| self.transaction(out_trade_no, o))
    }

    /// The payer pays: the order is paid here (once), and the notification is built.
    pub fn pay(&self, out_trade_no: &str) -> Option<SimNotification> {
        let transaction = {
            let mut orders = self.orders.lock().ok()?;
            let order = orders.get_mut(out_trade_no)?;
            if order.paid.is_none() {
                let id = format!("4200{}", digits(24));
                order.paid = Some((id, real_now_s()));
            }
            self.transaction(out_trade_no, order)
        };
        Some(self.notification(&transaction))
    }

    /// The payer pays, and the notification is lost: the order is paid here only (tests and
    /// demos of reconciliation).
    pub fn pay_silently(&self, out_trade_no: &str) -> bool {
        self.pay(out_trade_no).is_some()
    }

    /// The trade bill of `bill_date` (`YYYY-MM-DD`) in WeChat Pay's format: the orders paid
    /// that local day; `None` when there are none (WeChat's `NO_STATEMENT_EXIST`).
    pub fn trade_bill(&self, bill_date: &str) -> Option<Vec<u8>> {
        let orders = self.orders.lock().ok()?;
        let mut paid: Vec<(i64, String, String, String, i64)> = orders
            .iter()
            .filter_map(|(id, o)| {
                let (txn, at) = o.paid.as_ref()?;
                let time = crate::providers::alipay::local_time(*at);
                time.starts_with(bill_date)
                    .then(|| (*at, time, txn.clone(), id.clone(), o.total))
            })
            .collect();
        if paid.is_empty() {
            return None;
        }
        paid.sort();
        let kinds: Vec<String> = paid
            .iter()
            .map(|p| {
                orders
                    .get(&p.3)
                    .map(|o| o.kind.to_uppercase())
                    .unwrap_or_default()
            })
            .collect();
        let rows = paid
            .into_iter()
            .zip(kinds)
            .map(|(p, kind)| super::bill::BillRow {
                time: p.1,
                transaction_id: p.2,
                out_trade_no: p.3,
                trade_type: kind,
                total_fen: p.4,
            });
        let mut out = Vec::new();
        super::bill::write(&mut out, &self.identity.appid, &self.identity.mchid, rows).ok()?;
        Some(out)
    }

    /// TRANSACTION.SUCCESS for `transaction`, encrypted and signed as WeChat Pay does.
    pub fn notification(&self, transaction: &Value) -> SimNotification {
        let plain = serde_json::to_vec(transaction).unwrap_or_default();
        let resource = self
            .identity
            .encrypt(&plain, "transaction", &nonce(12))
            .expect("a 32-byte APIv3 key and a 12-byte nonce");
        let envelope = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "create_time": crate::clock::rfc3339(real_now_s() * 1000),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": resource,
        });
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        let timestamp = real_now_s().to_string();
        let nonce = nonce(32);
        let signature = self
            .platform_key
            .sign(&signed_message(&timestamp, &nonce, &body));
        let headers = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Wechatpay-Timestamp".into(), timestamp),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Signature".into(), signature),
            ("Wechatpay-Serial".into(), SIM_SERIAL.into()),
            ("Wechatpay-Signature-Type".into(), super::SCHEME.to_string()),
        ];
        SimNotification { headers, body }
    }
}

fn digits(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}
