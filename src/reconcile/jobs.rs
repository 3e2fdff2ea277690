//! The payload of `reconcile.bill` (its handler is in `workers/`): one run of one channel's
//! bill of one date. Cron makes one per slot (the run id is the slot's); a bill not published
//! yet gets the same run again later with the next `attempt`.

use serde::{Deserialize, Serialize};

/// `reconcile.bill`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcileBill {
    pub run_id: String,
    /// `wechat` or `alipay`.
    pub channel: String,
    /// `YYYY-MM-DD`, Asia/Shanghai.
    pub bill_date: String,
    /// `cron`, `api`, `upload`.
    pub source: String,
    /// How many times the bill was asked for before.
    #[serde(default)]
    pub attempt: u32,
}

impl ReconcileBill {
    /// The run of cron slot `slot_ms`: yesterday's bill (the providers publish it after
    /// 10:00).
    pub fn for_slot(channel: &str, slot_ms: i64) -> ReconcileBill {
        let today = crate::payments::local_date(slot_ms);
        let bill_date = today.pred_opt().unwrap_or(today);
        ReconcileBill {
            run_id: format!("rc_{channel}_{}_{slot_ms}", bill_date.format("%Y%m%d")),
            channel: channel.into(),
            bill_date: bill_date.to_string(),
            source: "cron".into(),
            attempt: 0,
        }
    }

    pub fn dedup_key(&self) -> String {
        format!("{}:{}", self.run_id, self.attempt)
    }
}
