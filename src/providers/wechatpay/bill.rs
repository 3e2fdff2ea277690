//! WeChat Pay's trade bill (`bill_type=ALL`): the format (a plain header row, detail rows
//! whose every value starts with a backtick, amounts in yuan with two decimals, then a
//! summary header and one summary row), a streaming parser and a writer of it, and fetching
//! it: `GET /v3/bill/tradebill` (signed), then the signed download, checked against the
//! SHA1 the first answer gave.

use std::io::{BufRead, Write};
use std::path::Path;

use super::{Endpoint, WechatPay};
use crate::providers::CallError;
use crate::providers::bills::{
    BillEvent, BillLine, LineKind, differs, next_line, signed_fen, yuan,
};

pub const COLUMNS: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];
pub const SUMMARY_COLUMNS: [&str; 7] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

#[derive(Default)]
struct Sums {
    count: i64,
    settlement: i64,
    refund: i64,
    fee: i64,
    order: i64,
}

fn value(raw: &str) -> &str {
    raw.strip_prefix('`').unwrap_or(raw)
}

/// One detail row, or why it is not one.
fn detail(number: u64, text: &str, sums: &mut Sums) -> Result<BillLine, String> {
    let fields: Vec<&str> = text.split(',').map(value).collect();
    if fields.len() != COLUMNS.len() {
        return Err(format!(
            "{} values, a detail row has {}",
            fields.len(),
            COLUMNS.len()
        ));
    }
    let amount = |i: usize| {
        signed_fen(fields[i])
            .filter(|f| *f >= 0)
            .ok_or_else(|| format!("{} is not an amount: {:?}", COLUMNS[i], fields[i]))
    };
    let (settlement, refund, fee, order) = (amount(12)?, amount(16)?, amount(22)?, amount(24)?);
    let kind = match fields[9] {
        "SUCCESS" => LineKind::Payment,
        "REFUND" => LineKind::Refund,
        other => return Err(format!("交易状态 {other:?} is not SUCCESS or REFUND")),
    };
    if fields[6].is_empty() || fields[5].is_empty() {
        return Err("商户订单号 or 微信订单号 is empty".into());
    }
    sums.count += 1;
    sums.settlement += settlement;
    sums.refund += refund;
    sums.fee += fee;
    sums.order += order;
    Ok(BillLine {
        line: number,
        kind,
        out_trade_no: fields[6].to_string(),
        transaction_id: fields[5].to_string(),
        app_id: fields[1].to_string(),
        merchant_id: fields[2].to_string(),
        amount_fen: order,
        refund_fen: refund,
    })
}

fn check_summary(text: &str, sums: &Sums) -> Vec<String> {
    let fields: Vec<&str> = text.split(',').map(value).collect();
    if fields.len() != SUMMARY_COLUMNS.len() {
        return vec![format!(
            "the summary row has {} values, not 7",
            fields.len()
        )];
    }
    let number = |i: usize| signed_fen(fields[i]);
    let Some(count) = fields[0].trim().parse::<i64>().ok() else {
        return vec![format!("总交易单数 {:?} is not a number", fields[0])];
    };
    let mut problems: Vec<String> = differs("总交易单数", count, sums.count)
        .into_iter()
        .collect();
    for (i, lines) in [
        (1, sums.settlement),
        (2, sums.refund),
        (4, sums.fee),
        (5, sums.order),
    ] {
        match number(i) {
            Some(bill) => problems.extend(differs(SUMMARY_COLUMNS[i], bill, lines)),
            None => problems.push(format!("{} is not an amount", SUMMARY_COLUMNS[i])),
        }
    }
    problems
}

/// Streams a bill: each detail row to `sink`, then checks the summary against the rows.
/// Answers the problems with the totals (empty when they add up).
pub fn parse(
    mut reader: impl BufRead,
    sink: &mut dyn FnMut(BillEvent),
) -> std::io::Result<Vec<String>> {
    let mut buf = Vec::with_capacity(512);
    let (mut number, mut sums) = (0u64, Sums::default());
    let (mut header_seen, mut summary_header, mut summary) = (false, false, None::<Vec<String>>);
    while next_line(&mut reader, &mut buf)? {
        number += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            sink(BillEvent::Malformed {
                line: number,
                detail: "not UTF-8".into(),
            });
            continue;
        };
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            if !text.starts_with(COLUMNS[0]) {
                sink(BillEvent::Malformed {
                    line: number,
                    detail: "not the header row of a trade bill".into(),
                });
            }
            continue;
        }
        if summary.is_some() {
            sink(BillEvent::Malformed {
                line: number,
                detail: "a row after the summary".into(),
            });
        } else if summary_header {
            summary = Some(check_summary(text, &sums));
        } else if text.starts_with(SUMMARY_COLUMNS[0]) {
            summary_header = true;
        } else {
            match detail(number, text, &mut sums) {
                Ok(line) => sink(BillEvent::Line(line)),
                Err(detail) => sink(BillEvent::Malformed {
                    line: number,
                    detail,
                }),
            }
        }
    }
    Ok(summary.unwrap_or_else(|| vec!["the bill has no summary rows".into()]))
}

/// A paid order as a bill lists it.
#[derive(Debug, Clone)]
pub struct BillRow {
    /// Asia/Shanghai, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub trade_type: String,
    pub total_fen: i64,
}

/// Writes a bill of `rows` as WeChat Pay publishes it (`\r\n` line ends).
pub fn write(
    out: &mut impl Write,
    appid: &str,
    mchid: &str,
    rows: impl IntoIterator<Item = BillRow>,
) -> std::io::Result<()> {
    write!(out, "{}\r\n", COLUMNS.join(","))?;
    let mut sums = Sums::default();
    for row in rows {
        let fee = (row.total_fen * 6 + 500) / 1000;
        sums.count += 1;
        sums.order += row.total_fen;
        sums.fee += fee;
        let total = yuan(row.total_fen);
        let values = [
            &row.time,
            appid,
            mchid,
            "0",
            "",
            &row.transaction_id,
            &row.out_trade_no,
            "",
            &row.trade_type,
            "SUCCESS",
            "OTHERS",
            "CNY",
            &total,
            "0.00",
            "0",
            "0",
            "0.00",
            "0.00",
            "",
            "",
            "交通违法罚款",
            "",
            &yuan(fee),
            "0.60%",
            &total,
            "0.00",
            "",
        ];
        let mut first = true;
        for v in values {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            write!(out, "`{v}")?;
        }
        out.write_all(b"\r\n")?;
    }
    write!(out, "{}\r\n", SUMMARY_COLUMNS.join(","))?;
    let (count, order, fee) = (sums.count.to_string(), yuan(sums.order), yuan(sums.fee));
    let summary = [count.as_str(), &order, "0.00", "0.00", &fee, &order, "0.00"];
    let summary: Vec<String> = summary.iter().map(|v| format!("`{v}")).collect();
    write!(out, "{}\r\n", summary.join(","))
}

/// Whether a bill was there to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Written to the destination file.
    Bill,
    /// Not published (yet): ask again later.
    NotYet,
}

impl WechatPay {
    /// Fetches the trade bill of `bill_date` (`YYYY-MM-DD`) into `dest`.
    pub async fn trade_bill(&self, bill_date: &str, dest: &Path) -> Result<Fetched, CallError> {
        let (base_url, client) = match &self.endpoint {
            Endpoint::Simulated(sim) => {
                return match sim.trade_bill(bill_date) {
                    Some(bytes) => {
                        std::fs::write(dest, bytes)
                            .map_err(|e| CallError::Transient(e.to_string()))?;
                        Ok(Fetched::Bill)
                    }
                    None => Ok(Fetched::NotYet),
                };
            }
            Endpoint::Http { base_url, client } => (base_url.clone(), client.clone()),
        };
        let path = format!("/v3/bill/tradebill?bill_date={bill_date}&bill_type=ALL");
        let answer = match self.call("GET", &path, None).await {
            Ok((_, answer)) => answer,
            Err(CallError::Refused(text))
                if text.contains("NO_STATEMENT_EXIST") || text.contains("STATEMENT_CREATING") =>
            {
                return Ok(Fetched::NotYet);
            }
            Err(CallError::NotFound) => return Ok(Fetched::NotYet),
            Err(e) => return Err(e),
        };
        let url = answer["download_url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let hash = answer["hash_value"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if url.is_empty() || answer["hash_type"] != "SHA1" {
            return Err(CallError::Refused(
                "tradebill: no download_url or not a SHA1 hash".into(),
            ));
        }
        let parsed = reqwest::Url::parse(&url).map_err(|e| CallError::Refused(e.to_string()))?;
        if !url.starts_with(&base_url) {
            tracing::debug!("the bill download is on another host than the API");
        }
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let auth = self
            .identity
            .authorization("GET", &target, b"", crate::providers::real_now_s());
        let mut response = client
            .get(parsed)
            .header("Authorization", auth)
            .header("User-Agent", "beian")
            .send()
            .await
            .map_err(|e| CallError::Transient(e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(CallError::Transient(format!(
                "bill download answered {status}"
            )));
        }
        let mut file =
            std::fs::File::create(dest).map_err(|e| CallError::Transient(e.to_string()))?;
        let mut sha1 = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CallError::Transient(e.to_string()))?
        {
            sha1.update(&chunk);
            file.write_all(&chunk)
                .map_err(|e| CallError::Transient(e.to_string()))?;
        }
        file.flush()
            .map_err(|e| CallError::Transient(e.to_string()))?;
        let got = hex::encode(sha1.finish());
        if got != hash {
            let _ = std::fs::remove_file(dest);
            return Err(CallError::Transient(format!(
                "the bill's SHA1 is {got}, WeChat Pay said {hash}"
            )));
        }
        Ok(Fetched::Bill)
    }
}
