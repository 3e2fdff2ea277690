//! `beian reconcile --channel wechat|alipay --file F [--date D]`: reconciles a bill file in
//! this process against the configured database (the same lifecycle as the job: repairs
//! go through `payments::settle`), with a progress bar over the bytes read and a summary
//! table at the end. The run is kept like any other (source `cli`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::NaiveDate;

use super::{Channel, RunError, execute};
use crate::providers::bills::Progress;
use crate::services::Services;
use crate::store::reconciliations::{self as store, Counts, Run};

pub async fn run(
    services: Arc<Services>,
    channel: &str,
    file: &Path,
    date: Option<NaiveDate>,
) -> anyhow::Result<()> {
    let channel =
        Channel::parse(channel).ok_or_else(|| anyhow::anyhow!("--channel is wechat or alipay"))?;
    if !file.is_file() {
        anyhow::bail!("{}: no such file", file.display());
    }
    let now = services.clock.now_ms();
    let date = date.unwrap_or_else(|| {
        let today = crate::payments::local_date(now);
        today.pred_opt().unwrap_or(today)
    });
    let run = Run {
        id: format!("rc_{}", uuid::Uuid::now_v7().simple()),
        channel: channel.as_str().into(),
        bill_date: date.to_string(),
        source: "cli".into(),
        status: super::QUEUED.into(),
        file_path: Some(file.display().to_string()),
        created_at: now,
        ..Run::default()
    };
    let mut tx = services.db.begin().await?;
    store::insert(&mut tx, services.db.backend(), &run).await?;
    tx.commit().await?;
    let progress = Arc::new(Progress::default());
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let watched = progress.clone();
    let ticker_bar = bar.clone();
    let ticker = tokio::spawn(async move {
        loop {
            ticker_bar.set_length(watched.total.load(Ordering::Relaxed));
            ticker_bar.set_position(watched.done.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let result = execute(&services, &run, Some(file), progress).await;
    ticker.abort();
    bar.finish_and_clear();
    let counts = match result {
        Ok(counts) => counts,
        Err(RunError::Bill(why)) => {
            store::fail(&services.db, &run.id, &why, services.clock.now_ms()).await?;
            anyhow::bail!("{}: not a {} bill: {why}", file.display(), channel.as_str());
        }
        Err(e) => return Err(e.into()),
    };
    let kept = store::find(services.db.pool(), &run.id)
        .await?
        .unwrap_or(run);
    print!("{}", summary_table(&kept, &counts));
    for item in store::items(&services.db, &kept.id).await?.iter().take(20) {
        let line = item.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        println!(
            "  {:<16} {line}{} {}",
            item.kind,
            item.out_trade_no.as_deref().unwrap_or(""),
            item.detail
        );
    }
    Ok(())
}

/// The summary as a plain table.
pub fn summary_table(run: &Run, c: &Counts) -> String {
    let rows = [
        ("lines", c.lines),
        ("matched", c.matched),
        ("repaired", c.repaired),
        ("missing_remote", c.missing_remote),
        ("amount_mismatch", c.amount_mismatch),
        ("duplicates", c.duplicates),
        ("refunds", c.refunds),
        ("unknown_orders", c.unknown_orders),
        ("malformed", c.malformed),
    ];
    let mut out = format!(
        "reconciliation {} ({} bill of {}): {}, totals {}\n+-----------------+-----------+\n",
        run.id,
        run.channel,
        run.bill_date,
        run.status,
        if run.totals_ok {
            "add up"
        } else {
            "DO NOT add up"
        }
    );
    for (name, n) in rows {
        out.push_str(&format!("| {name:<15} | {n:>9} |\n"));
    }
    out.push_str("+-----------------+-----------+\n");
    out
}
