//! Alipay's trade bill: a `csv.zip` holding the detail CSV (`..._业务明细.csv`, GBK) and a
//! summary one (`..._业务明细(汇总).csv`). The detail CSV has `#` comment lines at the top,
//! the header, the detail rows (id fields with a trailing tab, refunds as negative amounts)
//! and `#` total lines at the end (`#交易合计：N笔，商家实收共X元…`, `#退款合计：…`). A
//! streaming parser (line by line, each line decoded from GBK), a writer, and fetching it
//! (`alipay.data.dataservice.bill.downloadurl.query`, then the download).

use std::io::{BufRead, Read, Seek, Write};
use std::path::Path;

use encoding_rs::GBK;
use serde_json::json;

use super::{Alipay, Endpoint, encode, response_text};
use crate::providers::bills::{
    BillEvent, BillLine, LineKind, differs, next_line, signed_fen, yuan,
};
use crate::providers::{CallError, real_now_s};

pub const COLUMNS: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
];

/// The index of the detail CSV in the zip (not the 汇总 one); names may be UTF-8 or GBK.
pub fn detail_entry<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Option<usize> {
    let (gbk_summary, _, _) = GBK.encode("汇总");
    (0..archive.len()).find(|&i| {
        let Ok(entry) = archive.by_index_raw(i) else {
            return false;
        };
        let name = entry.name_raw();
        let contains = |needle: &[u8]| name.windows(needle.len()).any(|w| w == needle);
        name.ends_with(b".csv") && !contains("汇总".as_bytes()) && !contains(&gbk_summary)
    })
}

/// `#交易合计：3笔，商家实收共45.00元…` -> (3, 4500).
fn total_line(text: &str, label: &str, amount_label: &str) -> Option<(i64, i64)> {
    let rest = text.strip_prefix(label)?;
    let (count, rest) = rest.split_once('笔')?;
    let at = rest.find(amount_label)? + amount_label.len();
    let amount = rest[at..].split('元').next()?;
    Some((count.trim().parse().ok()?, signed_fen(amount)?))
}

#[derive(Default)]
struct Sums {
    trades: i64,
    trade_fen: i64,
    refunds: i64,
    refund_fen: i64,
}

fn detail(number: u64, text: &str, sums: &mut Sums) -> Result<BillLine, String> {
    let fields: Vec<&str> = text
        .split(',')
        .map(|v| v.trim_matches(|c: char| c == '\t' || c == ' '))
        .collect();
    if fields.len() != COLUMNS.len() {
        return Err(format!(
            "{} values, a detail row has {}",
            fields.len(),
            COLUMNS.len()
        ));
    }
    let amount = |i: usize| {
        signed_fen(fields[i])
            .ok_or_else(|| format!("{} is not an amount: {:?}", COLUMNS[i], fields[i]))
    };
    let (order, received) = (amount(11)?, amount(12)?);
    if fields[0].is_empty() || fields[1].is_empty() {
        return Err("支付宝交易号 or 商户订单号 is empty".into());
    }
    let kind = match fields[2] {
        "交易" => LineKind::Payment,
        "退款" => LineKind::Refund,
        other => return Err(format!("业务类型 {other:?} is not 交易 or 退款")),
    };
    match kind {
        LineKind::Payment => {
            sums.trades += 1;
            sums.trade_fen += received;
        }
        LineKind::Refund => {
            sums.refunds += 1;
            sums.refund_fen += received.abs();
        }
    }
    Ok(BillLine {
        line: number,
        kind,
        out_trade_no: fields[1].to_string(),
        transaction_id: fields[0].to_string(),
        app_id: String::new(),
        merchant_id: String::new(),
        amount_fen: order.abs(),
        refund_fen: if kind == LineKind::Refund {
            received.abs()
        } else {
            0
        },
    })
}

/// Streams the detail CSV (GBK): rows to `sink`, then the `#` totals checked against them.
pub fn parse(
    mut reader: impl BufRead,
    sink: &mut dyn FnMut(BillEvent),
) -> std::io::Result<Vec<String>> {
    let mut buf = Vec::with_capacity(512);
    let (mut number, mut sums, mut header_seen) = (0u64, Sums::default(), false);
    let (mut trade_total, mut refund_total) = (None, None);
    while next_line(&mut reader, &mut buf)? {
        number += 1;
        let (text, _, bad) = GBK.decode(&buf);
        if bad {
            sink(BillEvent::Malformed {
                line: number,
                detail: "not GBK".into(),
            });
            continue;
        }
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        if text.starts_with('#') {
            trade_total = trade_total.or_else(|| total_line(text, "#交易合计：", "商家实收共"));
            refund_total =
                refund_total.or_else(|| total_line(text, "#退款合计：", "商家实收退款共"));
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
        match detail(number, text, &mut sums) {
            Ok(line) => sink(BillEvent::Line(line)),
            Err(detail) => sink(BillEvent::Malformed {
                line: number,
                detail,
            }),
        }
    }
    let mut problems = Vec::new();
    match trade_total {
        Some((count, fen)) => {
            problems.extend(differs("交易合计 (笔)", count, sums.trades));
            problems.extend(differs("交易合计 商家实收 (fen)", fen, sums.trade_fen));
        }
        None => problems.push("the bill has no #交易合计 line".into()),
    }
    if let Some((count, fen)) = refund_total {
        problems.extend(differs("退款合计 (笔)", count, sums.refunds));
        problems.extend(differs("退款合计 商家实收退款 (fen)", fen, sums.refund_fen));
    }
    Ok(problems)
}

/// A paid trade as a bill lists it.
#[derive(Debug, Clone)]
pub struct BillRow<'a> {
    pub trade_no: &'a str,
    pub out_trade_no: &'a str,
    /// Asia/Shanghai, `YYYY-MM-DD HH:MM:SS`.
    pub created: &'a str,
    pub finished: &'a str,
    pub total_fen: i64,
}

/// The `csv.zip` of `rows` as Alipay publishes it (GBK, `\r\n`, detail and summary CSVs).
pub fn write_zip<'a>(
    seller_id: &str,
    bill_date: &str,
    exported_at: &str,
    rows: impl IntoIterator<Item = BillRow<'a>>,
) -> std::io::Result<Vec<u8>> {
    let day = bill_date.replace('-', "");
    let mut text = format!(
        "#支付宝业务明细查询\r\n#账号：[{seller_id}0156]\r\n#起始日期：[{bill_date} 00:00:00]   终止日期：[{bill_date} 23:59:59]\r\n\
         #-----------------------------------------业务明细列表----------------------------------------\r\n{}\r\n",
        COLUMNS.join(",")
    );
    let (mut count, mut sum) = (0i64, 0i64);
    for row in rows {
        count += 1;
        sum += row.total_fen;
        let amount = yuan(row.total_fen);
        let fee = yuan(-((row.total_fen * 6 + 500) / 1000));
        text.push_str(&format!(
            "{}\t,{}\t,交易,交通违法罚款,{},{},,,,,buyer***@example.com,{amount},{amount},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,{fee},0.00,\r\n",
            row.trade_no, row.out_trade_no, row.created, row.finished
        ));
    }
    text.push_str(&format!(
        "#-----------------------------------------业务明细列表结束------------------------------------\r\n\
         #交易合计：{count}笔，商家实收共{}元，商家优惠共0.00元\r\n#退款合计：0笔，商家实收退款共0.00元，商家优惠退款共0.00元\r\n\
         #导出时间：[{exported_at}]\r\n",
        yuan(sum)
    ));
    let summary = format!(
        "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）\r\n合计,,{count},0,{}\r\n",
        yuan(sum)
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(format!("{seller_id}0156_{day}_业务明细.csv"), options)?;
    zip.write_all(&GBK.encode(&text).0)?;
    zip.start_file(format!("{seller_id}0156_{day}_业务明细(汇总).csv"), options)?;
    zip.write_all(&GBK.encode(&summary).0)?;
    Ok(zip.finish()?.into_inner())
}

pub use crate::providers::wechatpay::bill::Fetched;

impl Alipay {
    /// Fetches the trade bill of `bill_date` (`YYYY-MM-DD`) into `dest` (the zip as is).
    pub async fn trade_bill(&self, bill_date: &str, dest: &Path) -> Result<Fetched, CallError> {
        let (gateway_url, client) = match &self.endpoint {
            Endpoint::Simulated(sim) => {
                return match sim.bill_zip(bill_date) {
                    Some(bytes) => {
                        std::fs::write(dest, bytes)
                            .map_err(|e| CallError::Transient(e.to_string()))?;
                        Ok(Fetched::Bill)
                    }
                    None => Ok(Fetched::NotYet),
                };
            }
            Endpoint::Http {
                gateway_url,
                client,
            } => (gateway_url, client),
        };
        let method = "alipay.data.dataservice.bill.downloadurl.query";
        let biz = json!({ "bill_type": "trade", "bill_date": bill_date });
        let params = self.identity.signed_request(method, &biz, "", real_now_s());
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
        if response.status().as_u16() >= 500 {
            return Err(CallError::Transient(format!(
                "Alipay answered {}",
                response.status()
            )));
        }
        let text = response
            .text()
            .await
            .map_err(|e| CallError::Transient(e.to_string()))?;
        let key = format!("{}_response", method.replace('.', "_"));
        let inner = response_text(&text, &key)
            .ok_or_else(|| CallError::Refused(format!("{method}: no {key}")))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| CallError::Refused(e.to_string()))?;
        if !self
            .identity
            .alipay_key
            .verify(inner.as_bytes(), value["sign"].as_str().unwrap_or(""))
        {
            return Err(CallError::Refused(format!(
                "{method}: reply signature does not verify"
            )));
        }
        let reply = &value[&key];
        if reply["code"] != "10000" {
            if reply["sub_code"] == "isp.bill_not_exist" {
                return Ok(Fetched::NotYet);
            }
            return Err(CallError::Refused(format!(
                "{method}: {}",
                reply["sub_code"]
            )));
        }
        let url = reply["bill_download_url"].as_str().unwrap_or_default();
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| CallError::Transient(e.to_string()))?;
        if response.status().as_u16() != 200 {
            return Err(CallError::Transient(format!(
                "bill download answered {}",
                response.status()
            )));
        }
        let mut file =
            std::fs::File::create(dest).map_err(|e| CallError::Transient(e.to_string()))?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CallError::Transient(e.to_string()))?
        {
            file.write_all(&chunk)
                .map_err(|e| CallError::Transient(e.to_string()))?;
        }
        file.flush()
            .map_err(|e| CallError::Transient(e.to_string()))?;
        Ok(Fetched::Bill)
    }
}
