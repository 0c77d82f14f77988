//! The dnswarden runner: it probes DNS servers on a schedule, scores every answer with
//! `dnswarden-core`, and tells Prometheus (`/metrics`) and humans (structured JSON logs)
//! what is wrong.
//!
//! The binary (`main.rs`) is wiring only; everything testable lives here:
//!
//! * [`config`]: the YAML configuration, with flag/env overrides and errors that name
//!   the field and the fix.
//! * [`probe`]: one DNS exchange over UDP (TCP retry on TC=1) or TCP, matched to its
//!   query with the core matcher.
//! * [`scoring`]: the seam between probe results and the core scorer.
//! * [`metrics`] and [`http`]: prometheus-client metrics, `/metrics`, `/healthz`,
//!   `/readyz`.
//! * [`runner`]: [`run`] — the schedule, rate limits, scorers and shutdown.
//! * [`demo`]: an embedded DNS server with a fault switch, driven by a scripted demo.
//!
//! Only addresses from the configuration are ever contacted.

pub mod commands;
pub mod config;
pub mod confirm;
pub mod demo;
pub mod heal;
pub mod http;
pub mod kube;
pub mod metrics;
pub mod probe;
pub mod ratelimit;
pub mod runner;
pub mod scoring;

pub use config::Config;
pub use runner::{Event, Runner, run};

/// Everything that can go wrong in the runner. Probe outcomes (timeouts, SERVFAIL,
/// mismatched answers...) are *signals*, never errors: they go to the scorer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid. `field` is the YAML path (or the flag / env
    /// variable that set it) and `fix` says what to do.
    #[error("config error in `{field}`: {problem}; fix: {fix}")]
    Config {
        /// The YAML path of the value, e.g. `targets[1].type`.
        field: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}; fix: check the path and its permissions")]
    ConfigRead {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr} (`listen`): {source}; fix: choose a free address or port")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another I/O error (sockets of the demo server, the terminal).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The demo's embedded DNS server could not be set up.
    #[error("demo server: {0}")]
    Demo(String),
    /// Kubernetes discovery or the healer could not start (no kubeconfig / in-cluster
    /// config, no cluster domain, ...).
    #[error("kubernetes: {0}")]
    Kube(String),
}

impl Error {
    /// A short, stable identifier of the variant (for metric labels and tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::ConfigRead { .. } => "config_read",
            Error::Listen { .. } => "listen",
            Error::Io { .. } => "io",
            Error::Demo(_) => "demo",
            Error::Kube(_) => "kube",
        }
    }

    pub(crate) fn config(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Error {
        Error::Config {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// The runner's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
