//! The in-process Alipay stand-in (`payments.mode = "simulated"`): real keys, generated at
//! first start and kept in `data_dir/simulator/alipay/`; it learns of orders at checkout,
//! answers the trade query, and when an order is paid builds the real-format asynchronous
//! notification, signed RSA2 with its own key. It lives in real time, as Alipay does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use super::{AlipayIdentity, Trade, local_time, sign_content};
use crate::domain::payment::yuan;
use crate::providers::keys::SigningKey;
use crate::providers::{load_or_generate_key, nonce, real_now_s};

pub const SIM_APP_ID: &str = "2021000000000001";
pub const SIM_SELLER_ID: &str = "2088000000000001";

#[derive(Debug, Clone)]
struct SimTrade {
    total: i64,
    trade_no: String,
    paid_at: Option<i64>,
    notify_id: String,
}

pub struct AlipaySimulator {
    pub identity: AlipayIdentity,
    alipay_key: SigningKey,
    trades: Mutex<HashMap<String, SimTrade>>,
}

impl AlipaySimulator {
    pub fn load_or_create(dir: &Path) -> anyhow::Result<AlipaySimulator> {
        let app_key = load_or_generate_key(&dir.join("app_private_key.pem"))?;
        let alipay_key = load_or_generate_key(&dir.join("alipay_private_key.pem"))?;
        Ok(AlipaySimulator {
            identity: AlipayIdentity {
                app_id: SIM_APP_ID.into(),
                seller_id: SIM_SELLER_ID.into(),
                app_key,
                alipay_key: alipay_key.verifying_key(),
            },
            alipay_key,
            trades: Mutex::new(HashMap::new()),
        })
    }

    pub fn order(&self, out_trade_no: &str, total: i64) {
        if let Ok(mut trades) = self.trades.lock() {
            let trade = trades
                .entry(out_trade_no.to_string())
                .or_insert_with(|| SimTrade {
                    total,
                    trade_no: format!(
                        "{}22001{}",
                        &local_time(real_now_s()).replace('-', "")[..8],
                        digits(15)
                    ),
                    paid_at: None,
                    notify_id: nonce(32),
                });
            if trade.paid_at.is_none() {
                trade.total = total;
            }
        }
    }

    pub fn query(&self, out_trade_no: &str) -> Option<Trade> {
        let trades = self.trades.lock().ok()?;
        let t = trades.get(out_trade_no).filter(|t| t.paid_at.is_some())?;
        Some(Trade {
            trade_no: t.trade_no.clone(),
            trade_status: "TRADE_SUCCESS".into(),
            total_fen: t.total,
        })
    }

    /// The trade bill zip of `bill_date` (`YYYY-MM-DD`) in Alipay's format: the trades paid
    /// that local day; `None` when there are none (Alipay's `isp.bill_not_exist`).
    pub fn bill_zip(&self, bill_date: &str) -> Option<Vec<u8>> {
        let trades = self.trades.lock().ok()?;
        let mut paid: Vec<(i64, String, String, String, String, i64)> = trades
            .iter()
            .filter_map(|(id, t)| {
                let at = t.paid_at?;
                let finished = local_time(at);
                finished.starts_with(bill_date).then(|| {
                    (
                        at,
                        t.trade_no.clone(),
                        id.clone(),
                        local_time(at - 20),
                        finished,
                        t.total,
                    )
                })
            })
            .collect();
        if paid.is_empty() {
            return None;
        }
        paid.sort();
        let rows = paid.iter().map(|p| super::bill::BillRow {
            trade_no: &p.1,
            out_trade_no: &p.2,
            created: &p.3,
            finished: &p.4,
            total_fen: p.5,
        });
        super::bill::write_zip(
            &self.identity.seller_id,
            bill_date,
            &local_time(real_now_s()),
            rows,
        )
        .ok()
    }

    /// The payer pays, and the notification is lost: the trade is paid here only.
    pub fn pay_silently(&self, out_trade_no: &str) -> bool {
        self.pay(out_trade_no).is_some()
    }

    /// The payer pays: the trade is paid here (once) and the notification is built
    /// (form fields, signed RSA2 without `sign` and `sign_type` in the content).
    pub fn pay(&self, out_trade_no: &str) -> Option<Vec<(String, String)>> {
        let trade = {
            let mut trades = self.trades.lock().ok()?;
            let trade = trades.get_mut(out_trade_no)?;
            trade.paid_at.get_or_insert(real_now_s());
            trade.clone()
        };
        let paid_at = trade.paid_at.unwrap_or_else(real_now_s);
        let amount = yuan(trade.total);
        let mut params: Vec<(String, String)> = [
            ("notify_time", local_time(real_now_s())),
            ("notify_type", "trade_status_sync".into()),
            ("notify_id", trade.notify_id.clone()),
            ("app_id", self.identity.app_id.clone()),
            ("charset", "utf-8".into()),
            ("version", "1.0".into()),
            ("trade_no", trade.trade_no.clone()),
            ("out_trade_no", out_trade_no.into()),
            ("trade_status", "TRADE_SUCCESS".into()),
            ("total_amount", amount.clone()),
            ("receipt_amount", amount.clone()),
            ("buyer_pay_amount", amount),
            ("gmt_create", local_time(paid_at - 20)),
            ("gmt_payment", local_time(paid_at)),
            ("seller_id", self.identity.seller_id.clone()),
            ("buyer_id", format!("2088{}", digits(12))),
            ("subject", "交通违法罚款".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let content = sign_content(
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &["sign", "sign_type"],
        );
        params.push(("sign_type".into(), "RSA2".into()));
        params.push(("sign".into(), self.alipay_key.sign(content.as_bytes())));
        Some(params)
    }
}

fn digits(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}
