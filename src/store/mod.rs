//! The database: one behaviour on SQLite and PostgreSQL. [`Db`] owns the pool, migrations and
//! the schema check; each submodule owns the SQL of one aggregate. Queries go through sqlx's
//! `Any` driver with `$N` placeholders (both databases accept them); times are stored as Unix
//! milliseconds (`BIGINT`) and ids as text, so one query text serves both backends.

pub mod clock;
pub mod cron;
pub mod documents;
pub mod filings;
pub mod idempotency;
pub mod jobs;
pub mod messages;
pub mod payments;
pub mod qr_tokens;
pub mod reconciliations;
pub mod registry;
pub mod reviews;
pub mod sms_log;
pub mod timers;
pub mod violations;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor};

use crate::config::DatabaseConfig;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

pub type Tx = sqlx::Transaction<'static, Any>;
pub type DbResult<T> = Result<T, sqlx::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL only: where a `LISTEN` connection goes (see [`Db::listen`]).
    listen_url: Option<Arc<str>>,
}

impl Db {
    /// Opens the pool (lazily: a database that is down now is retried on each use, so the
    /// service starts and reports `database: down` instead of dying).
    pub async fn connect(cfg: &DatabaseConfig) -> anyhow::Result<Db> {
        install_default_drivers();
        let raw = cfg.url.expose();
        let (url, backend) = if raw.starts_with("sqlite:") {
            (sqlite_url(raw)?, Backend::Sqlite)
        } else {
            (raw.to_string(), Backend::Postgres)
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(Duration::from_secs(cfg.connect_timeout_seconds.max(1)));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 15000; \
                         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = if backend == Backend::Sqlite {
            options.connect(&url).await?
        } else {
            options.connect_lazy(&url)?
        };
        let listen_url = (backend == Backend::Postgres).then(|| Arc::from(url.as_str()));
        Ok(Db {
            pool,
            backend,
            listen_url,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A PostgreSQL connection listening on `channels` (`NOTIFY` from other processes);
    /// `None` on SQLite, which has no such thing.
    pub async fn listen(&self, channels: &[&str]) -> DbResult<Option<sqlx::postgres::PgListener>> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Some(listener))
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// transactions that read then write serialize instead of failing with `SQLITE_BUSY`:
    /// this single writer is what keeps the filing limits race-free there. PostgreSQL
    /// transactions take row locks (`FOR UPDATE`) where a limit is checked.
    pub async fn begin(&self) -> DbResult<Tx> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Refuses a schema older than this binary (`api`, `worker` and `scheduler` never migrate).
    pub async fn check_schema(&self) -> anyhow::Result<()> {
        let applied: Vec<i64> = match sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success = $1 ORDER BY version",
        )
        .bind(true)
        .fetch_all(&self.pool)
        .await
        {
            Ok(versions) => versions,
            Err(e) if is_unavailable(&e) => anyhow::bail!("the database is unreachable: {e}"),
            Err(_) => Vec::new(), // no migrations table yet: every migration is missing
        };
        let missing: Vec<i64> = self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "the database schema is older than this binary (missing migrations {missing:?}): run `beian migrate` first"
            );
        }
        Ok(())
    }

    /// True when the database answers within two seconds.
    pub async fn ping(&self) -> bool {
        let probe = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&self.pool);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(1))
        )
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// `sqlite://data/beian.db` (relative) or `sqlite:///abs/path.db`: makes the folder and asks
/// sqlx to create the file.
fn sqlite_url(raw: &str) -> anyhow::Result<String> {
    let rest = raw
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!(
            "database.url: an in-memory SQLite database cannot be shared by the service's connections; give a file"
        );
    }
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                anyhow::anyhow!("database.url: cannot create {}: {e}", parent.display())
            })?;
        }
    }
    let query = query
        .map(str::to_string)
        .unwrap_or_else(|| "mode=rwc".into());
    Ok(format!("sqlite://{path}?{query}"))
}

/// True for errors that mean "the database is unreachable" rather than "the query is wrong".
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c.starts_with("57P") || c.starts_with("08") || is_sqlite_busy(&c))
}

/// SQLite's "the database is locked" family (SQLITE_BUSY and SQLITE_LOCKED with their
/// extended codes): another writer held the lock past `busy_timeout`. For a caller this is
/// the database being unavailable for a moment, not a fault.
fn is_sqlite_busy(code: &str) -> bool {
    matches!(code, "5" | "6" | "261" | "262" | "517")
}

/// A fresh time-ordered id (UUID v7, text), so ids sort by creation.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A boolean column: `BOOLEAN` on PostgreSQL, `INTEGER` 0/1 on SQLite.
pub fn get_bool(row: &sqlx::any::AnyRow, column: &str) -> DbResult<bool> {
    use sqlx::Row;
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}
