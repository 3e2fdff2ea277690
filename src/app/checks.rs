//! Start-up checks of configuration names against what this binary offers: every
//! `[jobs.<queue>]` names a queue of `workers::QUEUES` (or `default`), and every
//! `[cron.<name>]` a schedule of the cron table. The message names the key at fault.

use crate::config::Config;
use crate::queue::CronTable;

pub fn check_names(config: &Config, queues: &[&str], cron: &CronTable) -> anyhow::Result<()> {
    for name in config.jobs.keys() {
        if name != "default" && !queues.contains(&name.as_str()) {
            anyhow::bail!(
                "jobs.{name}: unknown queue (queues are: default, {})",
                queues.join(", ")
            );
        }
    }
    for name in config.cron.keys() {
        if !cron.contains(name) {
            anyhow::bail!(
                "cron.{name}: no such schedule (known: {})",
                cron.names().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::load_from(None, Vec::<(String, String)>::new()).expect("the defaults load")
    }

    #[test]
    fn the_defaults_pass() {
        let table = crate::workers::cron_table();
        check_names(&config(), crate::workers::QUEUES, &table).unwrap();
    }

    #[test]
    fn an_unknown_queue_is_named() {
        let mut config = config();
        let default = config.jobs["default"].clone();
        config.jobs.insert("smss".into(), default);
        let table = crate::workers::cron_table();
        let error = check_names(&config, crate::workers::QUEUES, &table)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("jobs.smss: unknown queue"), "{error}");
    }

    #[test]
    fn an_unknown_schedule_is_named() {
        let mut config = config();
        let entry = config.cron["maintenance_prune"].clone();
        config.cron.insert("nightly_report".into(), entry);
        let table = crate::workers::cron_table();
        let error = check_names(&config, crate::workers::QUEUES, &table)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cron.nightly_report: no such schedule"),
            "{error}"
        );
        assert!(error.contains("maintenance_prune"), "{error}");
    }
}
