//! `beian import vehicles|drivers FILE`: bulk load of the registry from CSV (header row) or
//! NDJSON, chosen by extension. Every line is checked first and each bad one reported as
//! `FILE:LINE: field: reason`, never with the value (a bad value may be a phone or an ID
//! number); nothing is written unless all are good, or `--skip-bad` is given. The write is
//! one transaction, so a failed import leaves nothing half written. The command line calls
//! [`run`]; this module knows nothing of it.

mod lines;

use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::config::Config;
use crate::domain::plate::parse_plate;
use crate::domain::registry::{
    Driver, DriverFields, LicenceStatus, OwnerKind, Vehicle, VehicleFields, VehicleUsage,
    validate_user_id,
};
use crate::store::Db;
use crate::store::registry::{Upserted, upsert_driver, upsert_vehicle};
use lines::{
    DRIVER_FIELDS, VEHICLE_FIELDS, check_csv_header, check_csv_record, csv_reason, json_line,
};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    Vehicles,
    Drivers,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VehicleLine {
    plate_type: String,
    plate_number: String,
    owner_id_number: String,
    owner_name: String,
    owner_phone: String,
    owner_kind: OwnerKind,
    engine_number: String,
    usage: VehicleUsage,
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DriverLine {
    user_id: String,
    name: String,
    id_number: String,
    phone: String,
    licence_number: String,
    licence_status: LicenceStatus,
    points: i64,
}

enum Record {
    Vehicle(Vehicle),
    Driver(Driver),
}

fn vehicle(line: VehicleLine) -> Result<Record, String> {
    let (plate_type, plate_number) =
        parse_plate(&line.plate_type, &line.plate_number).map_err(|e| e.to_string())?;
    let fields = VehicleFields {
        owner_id_number: line.owner_id_number,
        owner_name: line.owner_name,
        owner_phone: line.owner_phone,
        owner_kind: line.owner_kind,
        engine_number: line.engine_number,
        usage: line.usage,
        status: line.status,
    };
    fields.validate().map_err(|e| e.to_string())?;
    Ok(Record::Vehicle(Vehicle {
        plate_type,
        plate_number,
        fields,
    }))
}

fn driver(line: DriverLine) -> Result<Record, String> {
    validate_user_id(&line.user_id).map_err(|e| e.to_string())?;
    let fields = DriverFields {
        name: line.name,
        id_number: line.id_number,
        phone: line.phone,
        licence_number: line.licence_number,
        licence_status: line.licence_status,
        points: line.points,
    };
    fields.validate().map_err(|e| e.to_string())?;
    Ok(Record::Driver(Driver {
        user_id: line.user_id,
        fields,
    }))
}

/// Lines that passed (with their numbers) and lines refused (number, reason).
type Checked = (Vec<(u64, Record)>, Vec<(u64, String)>);

/// Reads and checks every line.
fn read(kind: ImportKind, path: &Path) -> anyhow::Result<Checked> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut take = |line: u64, parsed: Result<Record, String>| match parsed {
        Ok(r) => good.push((line, r)),
        Err(reason) => bad.push((line, reason)),
    };
    match extension.as_str() {
        "csv" => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_path(path)?;
            let headers = reader.headers()?.clone();
            check_csv_header(kind, &headers)
                .map_err(|reason| anyhow::anyhow!("{}:1: {reason}", path.display()))?;
            for record in reader.records() {
                let (line, parsed) = match record {
                    Ok(record) => {
                        let line = record.position().map(|p| p.line()).unwrap_or(0);
                        let parsed = match kind {
                            ImportKind::Vehicles => check_csv_record(kind, &headers, &record)
                                .and_then(|_| {
                                    record
                                        .deserialize::<VehicleLine>(Some(&headers))
                                        .map_err(|e| csv_reason(kind, &headers, &e))
                                })
                                .and_then(vehicle),
                            ImportKind::Drivers => check_csv_record(kind, &headers, &record)
                                .and_then(|_| {
                                    record
                                        .deserialize::<DriverLine>(Some(&headers))
                                        .map_err(|e| csv_reason(kind, &headers, &e))
                                })
                                .and_then(driver),
                        };
                        (line, parsed)
                    }
                    Err(e) => (
                        e.position().map(|p| p.line()).unwrap_or(0),
                        Err(csv_reason(kind, &headers, &e)),
                    ),
                };
                take(line, parsed);
            }
        }
        "ndjson" | "jsonl" => {
            let text = std::fs::read_to_string(path)?;
            for (index, raw) in text.lines().enumerate() {
                if raw.trim().is_empty() {
                    continue;
                }
                let line = index as u64 + 1;
                let parsed = match kind {
                    ImportKind::Vehicles => json_line(raw, VEHICLE_FIELDS).and_then(vehicle),
                    ImportKind::Drivers => json_line(raw, DRIVER_FIELDS).and_then(driver),
                };
                take(line, parsed);
            }
        }
        other => anyhow::bail!(
            "{}: unknown extension {other:?}; use .csv, .ndjson or .jsonl",
            path.display()
        ),
    }
    Ok((good, bad))
}

pub async fn run(
    config: &Config,
    kind: ImportKind,
    path: &Path,
    skip_bad: bool,
) -> anyhow::Result<ExitCode> {
    let (good, bad) = read(kind, path)?;
    for (line, reason) in &bad {
        eprintln!("{}:{line}: {reason}", path.display());
    }
    if !bad.is_empty() && !skip_bad {
        eprintln!(
            "{} bad line(s): nothing written (fix them, or pass --skip-bad to write the {} good ones)",
            bad.len(),
            good.len()
        );
        println!("inserted 0, updated 0, refused {}", bad.len());
        return Ok(ExitCode::FAILURE);
    }
    let db = Db::connect(&config.database).await?;
    db.check_schema().await?;
    let progress = ProgressBar::new(good.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let now = chrono::Utc::now().timestamp_millis();
    let (mut inserted, mut updated) = (0u64, 0u64);
    let mut tx = db.begin().await?;
    for (_, record) in &good {
        let upserted = match record {
            Record::Vehicle(v) => upsert_vehicle(&mut tx, v, now).await?,
            Record::Driver(d) => upsert_driver(&mut tx, d, now).await?,
        };
        match upserted {
            Upserted::Created => inserted += 1,
            Upserted::Updated => updated += 1,
        }
        progress.inc(1);
    }
    tx.commit().await?;
    progress.finish_and_clear();
    println!(
        "inserted {inserted}, updated {updated}, refused {}",
        bad.len()
    );
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_numbered_from_one_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.ndjson");
        let good = r#"{"plate_type":"02","plate_number":"京A12345","owner_id_number":"110101199003071234","owner_name":"张三","owner_phone":"13812345678","owner_kind":"person","engine_number":"LB12345678","usage":"non_operating","status":"normal"}"#;
        let bad_plate = good.replace("京A12345", "京I12345");
        std::fs::write(&path, format!("{good}\n{bad_plate}\nnot json\n")).unwrap();
        let (ok, bad) = read(ImportKind::Vehicles, &path).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![2, 3]);
        assert!(bad[0].1.contains("plate"), "{}", bad[0].1);
    }

    #[test]
    fn csv_lines_count_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(
            &path,
            "user_id,name,id_number,phone,licence_number,licence_status,points\n\
             U1,李四,110101199003071234,13912345678,110101199003071234,valid,0\n\
             U2,王五,110101199003071235,139123,110101199003071235,valid,0\n\
             U3,赵六,110101199003071236,13912345670,110101199003071236,lapsed,0\n",
        )
        .unwrap();
        let (ok, bad) = read(ImportKind::Drivers, &path).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![3, 4]);
        assert!(bad[0].1.contains("phone"));
    }
}
