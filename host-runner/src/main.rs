//! The `dnswarden` binary: argument parsing, logging and signal wiring only; the work is
//! done by the `dnswarden` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use dnswarden::config::{Config, Overrides, parse_qtype};

/// DNS health prober and scorer for Kubernetes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json, env = "DNSWARDEN_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, clap::Args)]
struct OverrideArgs {
    /// HTTP address for /metrics, /healthz, /readyz (overrides `listen`).
    #[arg(long, env = "DNSWARDEN_LISTEN")]
    listen: Option<String>,
    /// Probe interval per (server, target) in ms (overrides `probe.interval_ms`).
    #[arg(long, env = "DNSWARDEN_INTERVAL_MS")]
    interval_ms: Option<u64>,
    /// Probe timeout in ms (overrides `probe.timeout_ms`).
    #[arg(long, env = "DNSWARDEN_TIMEOUT_MS")]
    timeout_ms: Option<u64>,
    /// Probes in flight at most (overrides `probe.concurrency`).
    #[arg(long, env = "DNSWARDEN_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Global query rate limit (overrides `rate_limit.global_qps`).
    #[arg(long, env = "DNSWARDEN_GLOBAL_QPS")]
    global_qps: Option<f64>,
}

impl OverrideArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            interval_ms: self.interval_ms,
            timeout_ms: self.timeout_ms,
            concurrency: self.concurrency,
            global_qps: self.global_qps,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: probe, score, serve /metrics until SIGTERM/SIGINT.
    Run {
        /// The YAML configuration.
        #[arg(long, short, env = "DNSWARDEN_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Validate a configuration file without running.
    CheckConfig {
        /// The YAML configuration.
        file: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Probe one name once (or --count times), like dig, and say what the scorer thinks.
    Probe {
        /// The name to ask for.
        name: String,
        /// The record type.
        #[arg(long = "type", short = 't', default_value = "A")]
        qtype: String,
        /// The server, IP:PORT.
        #[arg(long, short)]
        server: SocketAddr,
        /// Ask over TCP instead of UDP.
        #[arg(long)]
        tcp: bool,
        /// One JSON object per probe.
        #[arg(long)]
        json: bool,
        /// Number of probes.
        #[arg(long, short = 'c', default_value_t = 1)]
        count: u32,
        /// Time between probes in ms.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Timeout per attempt in ms.
        #[arg(long, default_value_t = 100)]
        timeout_ms: u64,
    },
    /// Start an embedded DNS server on loopback, probe it, inject faults one after
    /// another, and show what the scorer sees (about a minute; exits 0).
    Demo {
        /// Shorter phases (for CI smoke tests).
        #[arg(long)]
        quick: bool,
    },
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DNSWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn fail(e: &dnswarden::Error) -> ExitCode {
    eprintln!("dnswarden: {e}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, overrides } => {
            init_logging(cli.log_format, "info");
            let config = match Config::load(&config, &overrides.overrides()) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            match dnswarden::run(config, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::CheckConfig { file, overrides } => {
            match dnswarden::commands::check_config(&file, &overrides.overrides()) {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Probe {
            name,
            qtype,
            server,
            tcp,
            json,
            count,
            interval_ms,
            timeout_ms,
        } => {
            let Some(qtype) = parse_qtype(&qtype) else {
                eprintln!(
                    "dnswarden: `--type`: unknown record type {qtype:?}; fix: use one of A, AAAA, CNAME, SRV, PTR, TXT, MX, NS, SOA"
                );
                return ExitCode::from(2);
            };
            let args = dnswarden::commands::ProbeArgs {
                qname: name,
                qtype,
                server,
                tcp,
                json,
                count,
                interval: Duration::from_millis(interval_ms.max(1)),
                timeout: Duration::from_millis(timeout_ms.max(1)),
            };
            match dnswarden::commands::probe(&args).await {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Demo { quick } => {
            init_logging(LogFormat::Text, "off");
            match dnswarden::demo::run_demo(quick).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}
