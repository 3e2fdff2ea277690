//! The command line: `beian serve | api | worker | scheduler | migrate | config | token |
//! import | reconcile | bench`, each with `--config FILE` (or `BEIAN_CONFIG`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{self, Parts};
use crate::config::{Config, LogConfig, LogFormat};
use crate::import::ImportKind;

#[derive(Parser)]
#[command(
    name = "beian",
    version,
    about = "Vehicle filing (备案) workflow processor: API, workers, scheduler"
)]
struct Cli {
    /// Configuration file laid over the compiled-in defaults.
    #[arg(long, global = true, env = "BEIAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: API, workers, scheduler (migrates first).
    Serve,
    /// The HTTP interface only.
    Api,
    /// Job workers (all queues unless --queues).
    Worker {
        /// Comma-separated queues, e.g. `sms,notify`.
        #[arg(long, value_delimiter = ',')]
        queues: Option<Vec<String>>,
    },
    /// Durable timers and cron.
    Scheduler,
    /// Applies the database migrations.
    Migrate,
    /// Prints the effective configuration, secrets masked.
    Config,
    /// Prints a JWT signed with the configured key (development and tests).
    Token {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        role: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_seconds: i64,
    },
    /// Bulk-loads the registry from CSV or NDJSON.
    Import {
        what: ImportKind,
        file: PathBuf,
        /// Write the good lines and list the bad ones (default: write nothing if any is bad).
        #[arg(long)]
        skip_bad: bool,
    },
    /// Reconciles a provider's bill file (as published) against the orders of its date.
    Reconcile {
        /// `wechat` or `alipay`.
        #[arg(long)]
        channel: String,
        /// The bill: WeChat Pay's CSV or Alipay's csv.zip.
        #[arg(long)]
        file: PathBuf,
        /// The bill's date, YYYY-MM-DD (default: yesterday, Asia/Shanghai).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// Benchmarks; prints figures.
    Bench {
        #[command(subcommand)]
        what: crate::bench::BenchCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // Refused before the log settings are known: read what the layers say of them,
            // so that a JSON deployment gets its refusal as JSON too.
            let log =
                crate::config::log_settings_for_errors(cli.config.as_deref(), std::env::vars());
            return fail(&log, &e.to_string(), ExitCode::from(2));
        }
    };
    if let Command::Config = cli.command {
        print!("{}", config.to_masked_toml());
        return ExitCode::SUCCESS;
    }
    if let Command::Token {
        sub,
        role,
        ttl_seconds,
    } = &cli.command
    {
        return token(&config, sub, role, *ttl_seconds);
    }
    // Before anything of a service starts (and might log).
    crate::telemetry::init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                &config.log,
                &format!("cannot start the runtime: {e}"),
                ExitCode::FAILURE,
            );
        }
    };
    let log = config.log.clone();
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => {
                let parts = Parts::serve(&config);
                app::run(config, parts).await.map(|_| ExitCode::SUCCESS)
            }
            Command::Api => app::run(
                config,
                Parts {
                    api: true,
                    workers: None,
                    scheduler: false,
                    migrate: false,
                },
            )
            .await
            .map(|_| ExitCode::SUCCESS),
            Command::Worker { queues } => {
                let queues = match queues {
                    Some(q) => {
                        if let Some(bad) = q
                            .iter()
                            .find(|q| !crate::workers::QUEUES.contains(&q.as_str()))
                        {
                            anyhow::bail!(
                                "--queues: unknown queue {bad} (queues are {})",
                                crate::workers::QUEUES.join(", ")
                            );
                        }
                        q
                    }
                    None => app::all_queues(),
                };
                app::run(
                    config,
                    Parts {
                        api: false,
                        workers: Some(queues),
                        scheduler: false,
                        migrate: false,
                    },
                )
                .await
                .map(|_| ExitCode::SUCCESS)
            }
            Command::Scheduler => app::run(
                config,
                Parts {
                    api: false,
                    workers: None,
                    scheduler: true,
                    migrate: false,
                },
            )
            .await
            .map(|_| ExitCode::SUCCESS),
            Command::Migrate => {
                let db = crate::store::Db::connect(&config.database).await?;
                db.migrate().await?;
                match log.format {
                    LogFormat::Json => tracing::info!("migrations applied"),
                    LogFormat::Pretty => println!("migrations applied"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Import {
                what,
                file,
                skip_bad,
            } => crate::import::run(&config, what, &file, skip_bad).await,
            Command::Reconcile {
                channel,
                file,
                date,
            } => {
                let services =
                    crate::app::build::build_services(std::sync::Arc::new(config), true).await?;
                crate::reconcile::cli::run(services, &channel, &file, date)
                    .await
                    .map(|_| ExitCode::SUCCESS)
            }
            Command::Bench { what } => crate::bench::run(config, what)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Config | Command::Token { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => fail(&log, &format!("{e:#}"), ExitCode::FAILURE),
    }
}

/// Reports why the process stops: a JSON object on stderr when `log.format = "json"` (every
/// line a service writes is one), else `beian: reason`.
fn fail(log: &LogConfig, reason: &str, code: ExitCode) -> ExitCode {
    match log.format {
        LogFormat::Json => {
            crate::telemetry::init_logging(log);
            tracing::error!(error = reason, "beian stopped");
        }
        LogFormat::Pretty => eprintln!("beian: {reason}"),
    }
    code
}

fn token(config: &Config, sub: &str, role: &str, ttl_seconds: i64) -> ExitCode {
    let Some(role) = crate::api::auth::Role::parse(role) else {
        eprintln!("beian: --role must be one of user, reviewer, supervisor, admin, system");
        return ExitCode::from(2);
    };
    let keys = match crate::api::auth::TokenKeys::from_config(&config.auth) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("beian: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let exp = chrono::Utc::now().timestamp() + ttl_seconds;
    match keys.sign(sub, role, exp) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("beian: {e:#}");
            ExitCode::FAILURE
        }
    }
}
