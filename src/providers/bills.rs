//! The providers' trade bills as reconciliation reads them: one line at a time ([`BillEvent`]),
//! amounts in integer fen, the bill's own totals checked against its lines, a line that
//! cannot be read reported with its number instead of stopping the read. The formats are in
//! `wechatpay::bill` (CSV, backticks, summary rows) and `alipay::bill` (a zip of GBK CSV with
//! `#` lines); [`read_bill`] opens a bill file of either and streams it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A payment or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Payment,
    Refund,
}

/// One detail line of a bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillLine {
    /// The line number in the file (from 1).
    pub line: u64,
    pub kind: LineKind,
    pub out_trade_no: String,
    pub transaction_id: String,
    /// The app id and merchant the line names (empty where the format has none).
    pub app_id: String,
    pub merchant_id: String,
    /// The order amount.
    pub amount_fen: i64,
    /// The amount refunded (refund lines).
    pub refund_fen: i64,
}

/// What reading a bill gives, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillEvent {
    Line(BillLine),
    Malformed { line: u64, detail: String },
}

/// How far a read is (bytes), for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

/// A reader that counts what passes through it into a [`Progress`].
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<'a, R> Counting<'a, R> {
    pub fn new(inner: R, progress: &'a Progress) -> Self {
        Counting { inner, progress }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Which provider's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillFormat {
    Wechat,
    Alipay,
}

/// Reads the bill in `path` line by line into `sink`; answers the problems with its totals
/// (empty when they add up). An I/O error or a file that is not a bill of `format` at all
/// (no zip, no CSV in it) is an error.
pub fn read_bill(
    format: BillFormat,
    path: &Path,
    progress: &Progress,
    sink: &mut dyn FnMut(BillEvent),
) -> anyhow::Result<Vec<String>> {
    let file = File::open(path)?;
    match format {
        BillFormat::Wechat => {
            progress
                .total
                .store(file.metadata()?.len(), Ordering::Relaxed);
            let reader = BufReader::with_capacity(1 << 16, Counting::new(file, progress));
            Ok(super::wechatpay::bill::parse(reader, sink)?)
        }
        BillFormat::Alipay => {
            let mut archive = zip::ZipArchive::new(file)
                .map_err(|e| anyhow::anyhow!("the Alipay bill is not a zip: {e}"))?;
            let index = super::alipay::bill::detail_entry(&mut archive)
                .ok_or_else(|| anyhow::anyhow!("the Alipay bill zip holds no detail CSV"))?;
            let entry = archive.by_index(index)?;
            progress.total.store(entry.size(), Ordering::Relaxed);
            let reader = BufReader::with_capacity(1 << 16, Counting::new(entry, progress));
            Ok(super::alipay::bill::parse(reader, sink)?)
        }
    }
}

/// Reads the next line (without its `\r\n`) into `buf`; false at the end.
pub fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    if reader.read_until(b'\n', buf)? == 0 {
        return Ok(false);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(true)
}

/// A signed amount in yuan (`-0.60`, `12.00`) in fen, exactly.
pub fn signed_fen(text: &str) -> Option<i64> {
    let text = text.trim();
    match text.strip_prefix('-') {
        Some(rest) => crate::domain::payment::parse_yuan(rest).map(|f| -f),
        None => crate::domain::payment::parse_yuan(text),
    }
}

/// `12.34` from 1234 fen.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// A line of totals that does not add up.
pub fn differs(what: &str, bill: i64, lines: i64) -> Option<String> {
    (bill != lines).then(|| format!("{what}: the bill says {bill}, its lines add up to {lines}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_fen_exactly() {
        assert_eq!(signed_fen("0.10"), Some(10));
        assert_eq!(signed_fen("-0.60"), Some(-60));
        assert_eq!(signed_fen("1234567.89"), Some(123_456_789));
        assert_eq!(signed_fen("1.2.3"), None);
        assert_eq!(signed_fen("abc"), None);
        assert_eq!(yuan(-60), "-0.60");
        assert_eq!(yuan(123_456_789), "1234567.89");
    }
}
