//! `beian bench reconcile`: a generated WeChat Pay trade bill of N lines (1M by default)
//! against N orders paid that day, in a scratch SQLite database under a temporary directory
//! (the configured database is not touched). Prints the reconciliation's time (index load,
//! streaming parse and match, report) and the process's peak RSS (`VmHWM`).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, Secret};
use crate::providers::bills::Progress;
use crate::providers::wechatpay::bill::{BillRow, write};
use crate::reconcile::{self, day_bounds};
use crate::store::reconciliations::{self as store, Run};

/// Peak resident set of this process, from `/proc/self/status`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub async fn run(mut config: Config, lines: usize) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    config.database.url = Secret::new(format!("sqlite://{}", dir.join("bench.db").display()));
    config.data_dir = dir.clone();
    let services = crate::app::build_services(Arc::new(config), true).await?;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date");
    let (from, _) = day_bounds(date);
    let id = |n: usize| format!("P{n:015}");
    let txn = |n: usize| format!("4200000{n:021}");
    let amount = |n: usize| 20_000 + (n % 100) as i64 * 100;
    let started = Instant::now();
    let mut n = 0;
    while n < lines {
        let batch: Vec<_> = (n..(n + 5000).min(lines))
            .map(|i| (id(i), txn(i), amount(i), from + (i as i64 % 86_000) * 1000))
            .collect();
        let mut tx = services.db.begin().await?;
        store::insert_paid_orders_for_bench(&mut tx, "wechat", &batch).await?;
        tx.commit().await?;
        n += batch.len();
    }
    let bill = dir.join("bill.csv");
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&bill)?);
        let rows = (0..lines).map(|i| BillRow {
            time: "2026-11-24 10:00:00".into(),
            transaction_id: txn(i),
            out_trade_no: id(i),
            trade_type: "NATIVE".into(),
            total_fen: amount(i),
        });
        write(&mut out, "wxd678efh567hg6787", "1900000109", rows)?;
        out.flush()?;
    }
    let setup = started.elapsed();
    let bill_bytes = std::fs::metadata(&bill)?.len();
    let rss_before = peak_rss_kib().unwrap_or(0);
    let run = Run {
        id: "rc_bench".into(),
        channel: "wechat".into(),
        bill_date: date.to_string(),
        source: "cli".into(),
        status: reconcile::QUEUED.into(),
        file_path: Some(bill.display().to_string()),
        created_at: services.clock.now_ms(),
        ..Run::default()
    };
    let mut tx = services.db.begin().await?;
    store::insert(&mut tx, services.db.backend(), &run).await?;
    tx.commit().await?;
    let started = Instant::now();
    let counts =
        reconcile::execute(&services, &run, Some(&bill), Arc::new(Progress::default())).await?;
    let took = started.elapsed();
    let peak = peak_rss_kib().unwrap_or(0);
    println!(
        "setup: {lines} orders and a {:.1} MB bill in {:.1} s (peak RSS after setup {:.1} MB)",
        bill_bytes as f64 / 1e6,
        setup.as_secs_f64(),
        rss_before as f64 / 1024.0
    );
    println!(
        "reconcile: {} lines, {} matched, {} missing_remote, {} malformed in {:.2} s",
        counts.lines,
        counts.matched,
        counts.missing_remote,
        counts.malformed,
        took.as_secs_f64()
    );
    println!("peak RSS (VmHWM): {:.1} MB", peak as f64 / 1024.0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("beian-bench-reconcile-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
