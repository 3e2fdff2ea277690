//! Loading the working calendar at start: every `cn-*.toml` of `calendar.dir` (relative to
//! the working directory), checked by `domain::calendar` (overlapping, reversed or
//! out-of-year dates, make-up days on weekdays or holidays, a year given twice). A bad file
//! stops the start with an error naming the file.
//!
//! When `calendar.dir` is the default (`config/calendar`) and that folder does not exist (the
//! binary started from another directory), the calendar files shipped with this binary are
//! used: the embedded default starts from anywhere. A folder configured elsewhere that does
//! not exist is an error, as is a folder without any `cn-*.toml`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::CalendarConfig;
use crate::domain::calendar::{CalendarYear, WorkingCalendar};

/// The folder `config/default.toml` names.
pub const DEFAULT_DIR: &str = "config/calendar";

/// The calendar files compiled into the binary (the fallback of the default folder).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "cn-2025.toml",
        include_str!("../../config/calendar/cn-2025.toml"),
    ),
    (
        "cn-2026.toml",
        include_str!("../../config/calendar/cn-2026.toml"),
    ),
];

/// The working calendar of the configuration.
pub fn load(config: &CalendarConfig) -> anyhow::Result<WorkingCalendar> {
    let files = if !config.dir.exists() && config.dir == Path::new(DEFAULT_DIR) {
        tracing::info!(
            dir = %config.dir.display(),
            "calendar.dir not found here: using the calendar files built into the binary"
        );
        SHIPPED
            .iter()
            .map(|(name, text)| {
                (
                    PathBuf::from(format!("(built in) {name}")),
                    text.to_string(),
                )
            })
            .collect()
    } else {
        read_dir(&config.dir)?
    };
    build(config.timezone, files)
}

/// The `cn-*.toml` files of `dir`, by name.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("calendar.dir: cannot read {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cn-") && n.ends_with(".toml"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        anyhow::bail!(
            "calendar.dir: {} holds no calendar file (cn-YYYY.toml)",
            dir.display()
        );
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("calendar file {}: cannot read", path.display()))?;
            Ok((path, text))
        })
        .collect()
}

/// Parses and checks each file (the error names the file), then the years together.
pub fn build(
    timezone: chrono_tz::Tz,
    files: Vec<(PathBuf, String)>,
) -> anyhow::Result<WorkingCalendar> {
    let mut years = Vec::with_capacity(files.len());
    for (path, text) in &files {
        let year = CalendarYear::parse(text)
            .with_context(|| format!("calendar file {}", path.display()))?;
        // Each file alone first, so a bad date is reported with its file.
        WorkingCalendar::new(timezone, vec![year.clone()])
            .with_context(|| format!("calendar file {}", path.display()))?;
        years.push((path, year));
    }
    let mut seen: Vec<(i32, &PathBuf)> = Vec::new();
    for (path, year) in &years {
        if let Some((_, first)) = seen.iter().find(|(y, _)| *y == year.year) {
            anyhow::bail!(
                "calendar files {} and {} both give the year {}",
                first.display(),
                path.display(),
                year.year
            );
        }
        seen.push((year.year, path));
    }
    let years = years.into_iter().map(|(_, y)| y).collect();
    Ok(WorkingCalendar::new(timezone, years)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> CalendarConfig {
        CalendarConfig {
            dir: dir.to_path_buf(),
            timezone: chrono_tz::Asia::Shanghai,
        }
    }

    #[test]
    fn the_shipped_files_load() {
        let files = SHIPPED
            .iter()
            .map(|(n, t)| (PathBuf::from(n), t.to_string()))
            .collect();
        let calendar = build(chrono_tz::Asia::Shanghai, files).unwrap();
        assert_eq!(calendar.years().collect::<Vec<_>>(), [2025, 2026]);
    }

    #[test]
    fn a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cn-2026.toml"), SHIPPED[1].1).unwrap();
        let bad = "year = 2027\nworking_hours = { start = \"09:00\", end = \"17:00\" }\n\
                   holidays = [{ name = \"A\", from = \"2027-10-01\", to = \"2027-10-03\" }, \
                   { name = \"B\", from = \"2027-10-03\", to = \"2027-10-04\" }]\n";
        std::fs::write(dir.path().join("cn-2027.toml"), bad).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a calendar").unwrap();
        let error = format!("{:#}", load(&config(dir.path())).unwrap_err());
        assert!(error.contains("cn-2027.toml"), "{error}");
        assert!(error.contains("2027-10-03"), "{error}");

        std::fs::write(
            dir.path().join("cn-2027.toml"),
            "year = 2027\nholydays = []\n",
        )
        .unwrap();
        let error = format!("{:#}", load(&config(dir.path())).unwrap_err());
        assert!(error.contains("cn-2027.toml"), "{error}");
    }

    #[test]
    fn a_year_twice_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cn-2026.toml"), SHIPPED[1].1).unwrap();
        std::fs::write(dir.path().join("cn-2026-copy.toml"), SHIPPED[1].1).unwrap();
        let error = format!("{:#}", load(&config(dir.path())).unwrap_err());
        assert!(
            error.contains("cn-2026.toml") && error.contains("cn-2026-copy.toml"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_folder_is_an_error_unless_it_is_the_default() {
        let error = load(&config(Path::new("/nonexistent/calendar")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/calendar"), "{error}");
        let empty = tempfile::tempdir().unwrap();
        let error = load(&config(empty.path())).unwrap_err().to_string();
        assert!(error.contains("no calendar file"), "{error}");
    }
}
