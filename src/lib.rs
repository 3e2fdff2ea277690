//! beian (备案): the workflow processor behind a 12123-style traffic service. HTTP handlers
//! validate, persist and enqueue; idempotent workers do the rest. The README's
//! "Layout" section is the map; `docs/decisions.md` gives the reasons.

pub mod api;
pub mod app;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod documents;
pub mod domain;
pub mod filings;
pub mod import;
pub mod payments;
pub mod providers;
pub mod queue;
pub mod reconcile;
pub mod reviews;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod violations;

/// The job handlers live in the top-level `workers/` folder (one file per job kind).
#[path = "../workers/mod.rs"]
pub mod workers;
