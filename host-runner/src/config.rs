//! The configuration: one YAML file, then flag / environment overrides, then validation.
//!
//! Every error names the YAML path of the value (or the flag and environment variable
//! that set it) and says how to fix it. See `host-runner/examples/dnswarden.yaml` for a
//! complete, commented file.
//!
//! ```
//! let cfg = dnswarden::config::Config::from_yaml_str(
//!     "servers: [{name: local, address: '127.0.0.1:53'}]\n\
//!      targets: [{name: api, qname: kubernetes.default.svc.cluster.local, type: A, expect: [10.96.0.1]}]\n",
//!     &Default::default(),
//! )?;
//! assert_eq!(cfg.probe.timeout.as_millis(), 100);
//! # Ok::<(), dnswarden::Error>(())
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use dnswarden_core::score::ScoreConfig;
use dnswarden_core::wire::Rtype;
use serde::Deserialize;

use crate::{Error, Result};

/// Record types a target may ask for.
pub const QTYPES: &[(&str, Rtype)] = &[
    ("A", Rtype::A),
    ("AAAA", Rtype::AAAA),
    ("CNAME", Rtype::CNAME),
    ("SRV", Rtype::SRV),
    ("PTR", Rtype::PTR),
    ("TXT", Rtype::TXT),
    ("MX", Rtype::MX),
    ("NS", Rtype::NS),
    ("SOA", Rtype::SOA),
];

/// Parses a record type mnemonic (case-insensitive) from [`QTYPES`].
pub fn parse_qtype(text: &str) -> Option<Rtype> {
    QTYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text))
        .map(|(_, t)| *t)
}

fn qtype_list() -> String {
    QTYPES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- the file as written --------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    #[serde(default)]
    servers: Vec<RawServer>,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    probe: RawProbe,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    rate_limit: RawRateLimit,
    #[serde(default)]
    scoring: RawScoring,
    kube: Option<crate::kube::KubeSettings>,
    #[serde(default)]
    heal: crate::heal::HealSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<String>,
    qname: Option<String>,
    #[serde(rename = "type")]
    qtype: Option<String>,
    #[serde(default)]
    expect: Vec<String>,
    namespace: Option<String>,
    interval_ms: Option<u64>,
    #[serde(default)]
    tcp: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    jitter: Option<f64>,
    concurrency: Option<usize>,
    edns_udp_size: Option<u16>,
    tcp_reuse: Option<bool>,
    server_qps: Option<f64>,
    #[serde(default)]
    confirm: RawConfirm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfirm {
    rounds: Option<u32>,
    spacing_ms: Option<u64>,
    cooldown_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    base_ms: Option<u64>,
    max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    global_qps: Option<f64>,
    global_burst: Option<f64>,
    namespace_qps: Option<f64>,
    namespace_burst: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    degraded_enter: Option<f32>,
    degraded_leave: Option<f32>,
    critical_enter: Option<f32>,
    critical_leave: Option<f32>,
    min_dwell_ms: Option<u64>,
    leave_hold_ms: Option<u64>,
    rate_window_ms: Option<u64>,
    burst_window: Option<u8>,
    rtt_floor_ms: Option<f64>,
    rtt_sigmas: Option<f32>,
    rtt_warmup_samples: Option<u32>,
    drift_settle_ms: Option<u64>,
    drift_grace_ms: Option<u64>,
    #[serde(default)]
    weights: RawWeights,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeights {
    rtt: Option<f32>,
    loss: Option<f32>,
    nxdomain: Option<f32>,
    servfail: Option<f32>,
    truncation: Option<f32>,
    drift: Option<f32>,
    round_robin: Option<f32>,
    integrity: Option<f32>,
}

// ---- overrides from flags and environment -----------------------------------------------

/// Values set on the command line or in the environment; they win over the file.
/// `main.rs` fills this from clap (each flag also reads a `DNSWARDEN_*` variable).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `DNSWARDEN_LISTEN`.
    pub listen: Option<String>,
    /// `--interval-ms` / `DNSWARDEN_INTERVAL_MS`.
    pub interval_ms: Option<u64>,
    /// `--timeout-ms` / `DNSWARDEN_TIMEOUT_MS`.
    pub timeout_ms: Option<u64>,
    /// `--concurrency` / `DNSWARDEN_CONCURRENCY`.
    pub concurrency: Option<usize>,
    /// `--global-qps` / `DNSWARDEN_GLOBAL_QPS`.
    pub global_qps: Option<f64>,
}

// ---- the validated configuration ----------------------------------------------------------

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the HTTP server (`/metrics`, `/healthz`, `/readyz`). Port 0 picks a
    /// free port (see [`crate::Runner::http_addr`]).
    pub listen: SocketAddr,
    /// The DNS servers to probe.
    pub servers: Vec<ServerConfig>,
    /// The names to ask every server for.
    pub targets: Vec<TargetConfig>,
    /// Probe settings.
    pub probe: ProbeSettings,
    /// Retry settings (only failed probes are retried).
    pub retry: RetrySettings,
    /// Query rate limits.
    pub rate_limit: RateLimits,
    /// Scorer settings.
    pub scoring: ScoringSettings,
    /// Kubernetes discovery (`kube:`): when set, the CoreDNS pods, the kube-dns
    /// ClusterIP and the targets come from the API (live), next to the static
    /// `servers:` and `targets:` (which may then be empty).
    pub kube: Option<crate::kube::KubeSettings>,
    /// Self-healing (`heal:`), only used with `kube:`.
    pub heal: crate::heal::HealSettings,
}

/// One DNS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Metric label and log name.
    pub name: String,
    /// IP address and port.
    pub address: SocketAddr,
}

/// One name to probe.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Metric label and log name (bounded: the qname itself is never a label).
    pub name: String,
    /// The name asked for.
    pub qname: String,
    /// The record type asked for.
    pub qtype: Rtype,
    /// The expected answers in presentation form (addresses, or names with a trailing
    /// dot); empty means "any answer".
    pub expect: BTreeSet<String>,
    /// The Kubernetes namespace (for the per-namespace rate limit).
    pub namespace: String,
    /// This target's probe interval: its own `interval_ms`, or `probe.interval_ms`
    /// stretched to fit the per-server budget (see [`spread_intervals`]).
    pub interval: Duration,
    /// Whether `interval` is the target's own `interval_ms` (kept as given) rather than
    /// the shared default (stretched when the targets would exceed a server's budget).
    pub own_interval: bool,
    /// Probe over TCP instead of UDP.
    pub tcp: bool,
}

/// Probe settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeSettings {
    /// Default interval between two probes of one (server, target) pair (stretched
    /// when the targets would ask more than `server_qps` of one server).
    pub interval: Duration,
    /// Scheduled probes per second one server gets at most from the targets that use
    /// the default interval (confirmation bursts and retries come on top, bounded by
    /// their own settings). See [`spread_intervals`].
    pub server_qps: f64,
    /// How long to wait for an answer (per transport attempt).
    pub timeout: Duration,
    /// Schedule jitter as a fraction of the interval, in [0, 0.5].
    pub jitter: f64,
    /// Probes in flight at most.
    pub concurrency: usize,
    /// EDNS(0) UDP payload size advertised.
    pub edns_udp_size: u16,
    /// Keep TCP connections open between probes of the same server.
    pub tcp_reuse: bool,
    /// The suspicion cadence (`probe.confirm`).
    pub confirm: ConfirmSettings,
}

/// The suspicion cadence: when a (server, target) pair answers in a way that is new for
/// it (a SERVFAIL or NXDOMAIN where it answered NOERROR, TC=1 where there was none, a
/// new RCODE, a wrong answer set, a mismatched or malformed response), the runner probes
/// that pair and the server's other targets again right away, `rounds` times
/// `spacing` apart, so the scorer gets the few extra samples its burst and share rules
/// need within tens of milliseconds instead of several probe intervals. Confirmation
/// probes take tokens from the same rate limits as scheduled ones (and are skipped
/// rather than delayed when there are none); scheduled probes keep their rhythm.
/// Timeouts do not start a burst (a confirmation would take a timeout too, no sooner
/// than the next scheduled probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmSettings {
    /// Confirmation rounds per burst; 0 turns the cadence off.
    pub rounds: u32,
    /// Time between two rounds (the first round starts at once).
    pub spacing: Duration,
    /// After a burst, the same server starts no new one for this long.
    pub cooldown: Duration,
}

impl ConfirmSettings {
    /// The default burst: 3 rounds, 10 ms apart, then 1 s of cool-down per server.
    pub const DEFAULT: ConfirmSettings = ConfirmSettings {
        rounds: defaults::CONFIRM_ROUNDS,
        spacing: Duration::from_millis(defaults::CONFIRM_SPACING_MS),
        cooldown: Duration::from_millis(defaults::CONFIRM_COOLDOWN_MS),
    };

    /// Off (no confirmation probes).
    pub const OFF: ConfirmSettings = ConfirmSettings {
        rounds: 0,
        ..ConfirmSettings::DEFAULT
    };
}

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Extra attempts after a failed probe (0 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry (doubled each time, with full jitter).
    pub base: Duration,
    /// Upper bound of the backoff.
    pub max: Duration,
}

/// Query rate limits (token buckets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// All probes, queries per second.
    pub global_qps: f64,
    /// Bucket size of the global limit.
    pub global_burst: f64,
    /// Probes per namespace, queries per second.
    pub namespace_qps: f64,
    /// Bucket size of each namespace's limit.
    pub namespace_burst: f64,
}

/// Scorer settings: the core's [`ScoreConfig`], validated by the core.
pub type ScoringSettings = ScoreConfig;

/// Defaults, also documented in `examples/dnswarden.yaml`.
pub mod defaults {
    /// `listen`.
    pub const LISTEN: &str = "127.0.0.1:9153";
    /// `probe.interval_ms`.
    pub const INTERVAL_MS: u64 = 25;
    /// `probe.server_qps`.
    pub const SERVER_QPS: f64 = 200.0;
    /// `probe.timeout_ms`.
    pub const TIMEOUT_MS: u64 = 100;
    /// `probe.jitter`.
    pub const JITTER: f64 = 0.1;
    /// `probe.concurrency`.
    pub const CONCURRENCY: usize = 64;
    /// `probe.edns_udp_size`.
    pub const EDNS_UDP_SIZE: u16 = 1232;
    /// `probe.confirm.rounds`.
    pub const CONFIRM_ROUNDS: u32 = 3;
    /// `probe.confirm.spacing_ms`.
    pub const CONFIRM_SPACING_MS: u64 = 10;
    /// `probe.confirm.cooldown_ms`.
    pub const CONFIRM_COOLDOWN_MS: u64 = 1000;
    /// `retry.max_attempts`.
    pub const RETRY_MAX_ATTEMPTS: u32 = 2;
    /// `retry.base_ms`.
    pub const RETRY_BASE_MS: u64 = 50;
    /// `retry.max_ms`.
    pub const RETRY_MAX_MS: u64 = 2000;
    /// `rate_limit.global_qps`.
    pub const GLOBAL_QPS: f64 = 2000.0;
    /// `rate_limit.namespace_qps`.
    pub const NAMESPACE_QPS: f64 = 1000.0;
}

impl Config {
    /// Reads, overrides and validates a YAML file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_yaml_str(&text, overrides)
    }

    /// Parses, overrides and validates YAML text.
    pub fn from_yaml_str(text: &str, overrides: &Overrides) -> Result<Config> {
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| {
            let field = yaml_error_path(&e.to_string());
            Error::config(
                field,
                e.to_string(),
                "correct the YAML (see host-runner/examples/dnswarden.yaml for every field)",
            )
        })?;
        validate(raw, overrides)
    }

    /// A configuration for one server and the given targets with default settings
    /// (used by `dnswarden probe` and the demo).
    pub fn single(server: SocketAddr, targets: Vec<TargetConfig>) -> Config {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            servers: vec![ServerConfig {
                name: "server".into(),
                address: server,
            }],
            targets,
            probe: ProbeSettings {
                interval: Duration::from_millis(defaults::INTERVAL_MS),
                server_qps: defaults::SERVER_QPS,
                timeout: Duration::from_millis(defaults::TIMEOUT_MS),
                jitter: defaults::JITTER,
                concurrency: defaults::CONCURRENCY,
                edns_udp_size: defaults::EDNS_UDP_SIZE,
                tcp_reuse: true,
                confirm: ConfirmSettings::DEFAULT,
            },
            retry: RetrySettings {
                max_attempts: defaults::RETRY_MAX_ATTEMPTS,
                base: Duration::from_millis(defaults::RETRY_BASE_MS),
                max: Duration::from_millis(defaults::RETRY_MAX_MS),
            },
            rate_limit: RateLimits {
                global_qps: defaults::GLOBAL_QPS,
                global_burst: defaults::GLOBAL_QPS,
                namespace_qps: defaults::NAMESPACE_QPS,
                namespace_burst: defaults::NAMESPACE_QPS,
            },
            scoring: ScoreConfig::default(),
            kube: None,
            heal: crate::heal::HealSettings::default(),
        }
    }
}

/// serde_yaml_ng prefixes nested errors with their path (`targets[0].type: ...`); use
/// it as the field name when present.
fn yaml_error_path(msg: &str) -> String {
    match msg.split_once(": ") {
        Some((path, _))
            if !path.contains(' ')
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c)) =>
        {
            path.to_string()
        }
        _ => "<file>".to_string(),
    }
}

fn scoring(s: &RawScoring) -> Result<ScoreConfig> {
    let mut c = ScoreConfig::default();
    let ms = |v: u64| v.saturating_mul(1000);
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = s.$field {
                c.$field = v;
            }
        };
        ($field:ident, ms $core:ident) => {
            if let Some(v) = s.$field {
                c.$core = ms(v);
            }
        };
    }
    set!(degraded_enter);
    set!(degraded_leave);
    set!(critical_enter);
    set!(critical_leave);
    set!(min_dwell_ms, ms min_dwell_us);
    set!(leave_hold_ms, ms leave_hold_us);
    set!(rate_window_ms, ms rate_window_us);
    set!(burst_window);
    set!(rtt_sigmas);
    set!(rtt_warmup_samples);
    set!(drift_settle_ms, ms drift_settle_us);
    set!(drift_grace_ms, ms drift_grace_us);
    if let Some(v) = s.rtt_floor_ms {
        if !(v.is_finite() && (0.0..=60_000.0).contains(&v)) {
            return Err(Error::config(
                "scoring.rtt_floor_ms",
                format!("{v} is out of range"),
                "use a number of milliseconds between 0 and 60000 (default 5)",
            ));
        }
        c.rtt_floor_us = (v * 1000.0) as u32;
    }
    let w = &s.weights;
    macro_rules! weight {
        ($field:ident) => {
            if let Some(v) = w.$field {
                c.weights.$field = v;
            }
        };
    }
    weight!(rtt);
    weight!(loss);
    weight!(nxdomain);
    weight!(servfail);
    weight!(truncation);
    weight!(drift);
    weight!(round_robin);
    weight!(integrity);
    // The core checks every field and names it; translate its names to ours.
    c.validate().map_err(|e| {
        let field = match e.field.strip_suffix("_us") {
            Some(stem) => format!("scoring.{stem}_ms"),
            None => format!("scoring.{}", e.field),
        };
        Error::config(field, e.problem, e.fix)
    })?;
    Ok(c)
}

/// A name usable as a metric label: 1..=63 of `[A-Za-z0-9_.-]`.
fn check_label(field: &str, value: Option<&str>) -> Result<String> {
    let Some(v) = value else {
        return Err(Error::config(
            field,
            "missing",
            "add a short name (letters, digits, '-', '_', '.'), used as a metric label",
        ));
    };
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        return Err(Error::config(
            field,
            format!("{v:?} is not a valid name"),
            "use 1 to 63 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(v.to_string())
}

fn positive_ms(field: &str, v: Option<u64>, default: u64, max: u64) -> Result<Duration> {
    let ms = v.unwrap_or(default);
    if ms == 0 || ms > max {
        return Err(Error::config(
            field,
            format!("{ms} ms is out of range"),
            format!("use a value between 1 and {max} milliseconds"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn number_in(field: &str, v: Option<f64>, default: f64, lo: f64, hi: f64) -> Result<f64> {
    let x = v.unwrap_or(default);
    if !x.is_finite() || x < lo || x > hi {
        return Err(Error::config(
            field,
            format!("{x} is out of range"),
            format!("use a number between {lo} and {hi}"),
        ));
    }
    Ok(x)
}

/// Most confirmation rounds per burst.
const MAX_CONFIRM_ROUNDS: u32 = 20;

fn confirm_settings(raw: &RawConfirm) -> Result<ConfirmSettings> {
    let rounds = raw.rounds.unwrap_or(defaults::CONFIRM_ROUNDS);
    if rounds > MAX_CONFIRM_ROUNDS {
        return Err(Error::config(
            "probe.confirm.rounds",
            format!("{rounds} rounds per burst is too many"),
            format!(
                "use 0 (off) to {MAX_CONFIRM_ROUNDS} (default {})",
                defaults::CONFIRM_ROUNDS
            ),
        ));
    }
    let spacing = positive_ms(
        "probe.confirm.spacing_ms",
        raw.spacing_ms,
        defaults::CONFIRM_SPACING_MS,
        10_000,
    )?;
    let cooldown_ms = raw.cooldown_ms.unwrap_or(defaults::CONFIRM_COOLDOWN_MS);
    if cooldown_ms > 3_600_000 {
        return Err(Error::config(
            "probe.confirm.cooldown_ms",
            format!("{cooldown_ms} ms is out of range"),
            format!(
                "use a value between 0 and 3600000 milliseconds (default {})",
                defaults::CONFIRM_COOLDOWN_MS
            ),
        ));
    }
    Ok(ConfirmSettings {
        rounds,
        spacing,
        cooldown: Duration::from_millis(cooldown_ms),
    })
}

/// The namespace of a Kubernetes service name `svc.NS.svc.<domain>` or pod name
/// `x.NS.pod.<domain>`; `default` otherwise.
fn namespace_of(qname: &str) -> String {
    let labels: Vec<&str> = qname.trim_end_matches('.').split('.').collect();
    labels
        .windows(2)
        .find(|w| matches!(w, [_, "svc" | "pod"]))
        .and_then(|w| w.first())
        .filter(|_| labels.len() >= 3)
        .map_or_else(|| "default".to_string(), |ns| (*ns).to_string())
}

fn check_expect(field: &str, qtype: Rtype, values: &[String]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (i, v) in values.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let norm = match qtype {
            Rtype::A => v.parse::<Ipv4Addr>().map(|a| a.to_string()).map_err(|_| {
                Error::config(
                    &f,
                    format!("{v:?} is not an IPv4 address"),
                    "write an A answer like 10.96.0.1",
                )
            })?,
            Rtype::AAAA => v.parse::<Ipv6Addr>().map(|a| a.to_string()).map_err(|_| {
                Error::config(
                    &f,
                    format!("{v:?} is not an IPv6 address"),
                    "write an AAAA answer like fd00::1",
                )
            })?,
            Rtype::CNAME | Rtype::PTR | Rtype::NS => {
                dnswarden_core::wire::fingerprint_str(v).map_err(|e| {
                    Error::config(
                        &f,
                        format!("{v:?} is not a valid name: {e}"),
                        "write a domain name like my-svc.default.svc.cluster.local.",
                    )
                })?;
                let lower = v.to_ascii_lowercase();
                if lower.ends_with('.') {
                    lower
                } else {
                    format!("{lower}.")
                }
            }
            Rtype::SRV => {
                if crate::scoring::expected_members(qtype, std::slice::from_ref(v)).is_none() {
                    return Err(Error::config(
                        &f,
                        format!("{v:?} is not an SRV answer"),
                        "write it as \"PRIORITY WEIGHT PORT TARGET\", e.g. \"0 100 80 my-svc.default.svc.cluster.local.\"",
                    ));
                }
                v.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_ascii_lowercase()
            }
            _ => v.trim().to_string(),
        };
        out.insert(norm);
    }
    Ok(out)
}

fn validate(mut raw: RawConfig, o: &Overrides) -> Result<Config> {
    // Overrides first, so that a bad override is reported under its flag's name.
    let listen_field = if o.listen.is_some() {
        "listen (from --listen / DNSWARDEN_LISTEN)"
    } else {
        "listen"
    };
    if let Some(l) = &o.listen {
        raw.listen = Some(l.clone());
    }
    let interval_field = if o.interval_ms.is_some() {
        "probe.interval_ms (from --interval-ms / DNSWARDEN_INTERVAL_MS)"
    } else {
        "probe.interval_ms"
    };
    raw.probe.interval_ms = o.interval_ms.or(raw.probe.interval_ms);
    let timeout_field = if o.timeout_ms.is_some() {
        "probe.timeout_ms (from --timeout-ms / DNSWARDEN_TIMEOUT_MS)"
    } else {
        "probe.timeout_ms"
    };
    raw.probe.timeout_ms = o.timeout_ms.or(raw.probe.timeout_ms);
    let concurrency_field = if o.concurrency.is_some() {
        "probe.concurrency (from --concurrency / DNSWARDEN_CONCURRENCY)"
    } else {
        "probe.concurrency"
    };
    raw.probe.concurrency = o.concurrency.or(raw.probe.concurrency);
    let qps_field = if o.global_qps.is_some() {
        "rate_limit.global_qps (from --global-qps / DNSWARDEN_GLOBAL_QPS)"
    } else {
        "rate_limit.global_qps"
    };
    raw.rate_limit.global_qps = o.global_qps.or(raw.rate_limit.global_qps);

    let listen_text = raw.listen.as_deref().unwrap_or(defaults::LISTEN);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        Error::config(
            listen_field,
            format!("{listen_text:?} is not an IP:port address"),
            "write it like 127.0.0.1:9153 or [::]:9153 (port 0 picks a free port)",
        )
    })?;

    if let Some(k) = &raw.kube {
        // Checked here so that `check-config` reports it; the cluster domain is
        // resolved when discovery starts.
        k.discovery().map_err(|e| match e {
            crate::kube::DiscoveryError::Invalid {
                field,
                problem,
                fix,
            } => Error::config(field, problem, fix),
            other => Error::config("kube", other.to_string(), "see host-runner/README.md"),
        })?;
    }
    if raw.servers.is_empty() && raw.kube.is_none() {
        return Err(Error::config(
            "servers",
            "no server to probe",
            "add at least one entry like `- {name: coredns-0, address: \"10.244.0.5:53\"}`",
        ));
    }
    let mut servers = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, s) in raw.servers.iter().enumerate() {
        let name = check_label(&format!("servers[{i}].name"), s.name.as_deref())?;
        if !seen.insert(name.clone()) {
            return Err(Error::config(
                format!("servers[{i}].name"),
                format!("{name:?} is used twice"),
                "give every server a different name",
            ));
        }
        let field = format!("servers[{i}].address");
        let Some(text) = s.address.as_deref() else {
            return Err(Error::config(
                field,
                "missing",
                "add the server's IP:port, e.g. \"10.96.0.10:53\"",
            ));
        };
        let address: SocketAddr = text
            .parse()
            .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| {
                Error::config(
                    &field,
                    format!("{text:?} is not an IP address with an optional port"),
                    "write it like \"10.96.0.10:53\" or \"[fd00::10]:53\" (host names are not resolved)",
                )
            })?;
        if address.port() == 0 {
            return Err(Error::config(
                field,
                "port 0",
                "use the server's real port, usually 53",
            ));
        }
        servers.push(ServerConfig { name, address });
    }

    let probe = ProbeSettings {
        interval: positive_ms(
            interval_field,
            raw.probe.interval_ms,
            defaults::INTERVAL_MS,
            3_600_000,
        )?,
        server_qps: number_in(
            "probe.server_qps",
            raw.probe.server_qps,
            defaults::SERVER_QPS,
            1.0,
            100_000.0,
        )?,
        timeout: positive_ms(
            timeout_field,
            raw.probe.timeout_ms,
            defaults::TIMEOUT_MS,
            30_000,
        )?,
        jitter: number_in("probe.jitter", raw.probe.jitter, defaults::JITTER, 0.0, 0.5)?,
        concurrency: match raw.probe.concurrency.unwrap_or(defaults::CONCURRENCY) {
            0 => {
                return Err(Error::config(
                    concurrency_field,
                    "0 probes in flight would never probe",
                    "use a value of at least 1 (default 64)",
                ));
            }
            n => n,
        },
        edns_udp_size: match raw.probe.edns_udp_size.unwrap_or(defaults::EDNS_UDP_SIZE) {
            n if n < 512 => {
                return Err(Error::config(
                    "probe.edns_udp_size",
                    format!("{n} is below the DNS minimum of 512"),
                    "use a value between 512 and 65535 (1232 is the usual choice)",
                ));
            }
            n => n,
        },
        tcp_reuse: raw.probe.tcp_reuse.unwrap_or(true),
        confirm: confirm_settings(&raw.probe.confirm)?,
    };

    if raw.targets.is_empty() && raw.kube.is_none() {
        return Err(Error::config(
            "targets",
            "no name to probe",
            "add at least one entry like `- {name: api, qname: kubernetes.default.svc.cluster.local, type: A}`",
        ));
    }
    let mut targets = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in raw.targets.iter().enumerate() {
        let name = check_label(&format!("targets[{i}].name"), t.name.as_deref())?;
        if !seen.insert(name.clone()) {
            return Err(Error::config(
                format!("targets[{i}].name"),
                format!("{name:?} is used twice"),
                "give every target a different name",
            ));
        }
        let field = format!("targets[{i}].qname");
        let Some(qname) = t.qname.clone() else {
            return Err(Error::config(
                field,
                "missing",
                "add the name to ask for, e.g. kubernetes.default.svc.cluster.local",
            ));
        };
        if let Err(e) = dnswarden_core::wire::fingerprint_str(&qname) {
            return Err(Error::config(
                field,
                format!("{qname:?} is not a valid DNS name: {e}"),
                "use dot-separated labels of 1 to 63 characters, at most 253 characters in all",
            ));
        }
        let field = format!("targets[{i}].type");
        let qtype_text = t.qtype.as_deref().unwrap_or("A");
        let qtype = parse_qtype(qtype_text).ok_or_else(|| {
            Error::config(
                &field,
                format!("unknown record type {qtype_text:?}"),
                format!("use one of {}", qtype_list()),
            )
        })?;
        let expect = check_expect(&format!("targets[{i}].expect"), qtype, &t.expect)?;
        if !expect.is_empty()
            && !matches!(
                qtype,
                Rtype::A | Rtype::AAAA | Rtype::CNAME | Rtype::PTR | Rtype::NS | Rtype::SRV
            )
        {
            return Err(Error::config(
                format!("targets[{i}].expect"),
                format!("expected answers are not supported for type {qtype}"),
                "remove `expect`, or probe an A, AAAA, CNAME, PTR, NS or SRV name",
            ));
        }
        let namespace = match &t.namespace {
            Some(ns) => check_label(&format!("targets[{i}].namespace"), Some(ns))?,
            None => namespace_of(&qname),
        };
        let interval = match t.interval_ms {
            Some(ms) => positive_ms(&format!("targets[{i}].interval_ms"), Some(ms), 0, 3_600_000)?,
            None => probe.interval,
        };
        targets.push(TargetConfig {
            name,
            qname,
            qtype,
            expect,
            namespace,
            interval,
            own_interval: t.interval_ms.is_some(),
            tcp: t.tcp,
        });
    }

    let base = positive_ms(
        "retry.base_ms",
        raw.retry.base_ms,
        defaults::RETRY_BASE_MS,
        60_000,
    )?;
    let max = positive_ms(
        "retry.max_ms",
        raw.retry.max_ms,
        defaults::RETRY_MAX_MS,
        600_000,
    )?;
    if max < base {
        return Err(Error::config(
            "retry.max_ms",
            format!(
                "{} ms is below retry.base_ms ({} ms)",
                max.as_millis(),
                base.as_millis()
            ),
            "make retry.max_ms at least retry.base_ms",
        ));
    }
    let retry = RetrySettings {
        max_attempts: match raw
            .retry
            .max_attempts
            .unwrap_or(defaults::RETRY_MAX_ATTEMPTS)
        {
            n if n > 10 => {
                return Err(Error::config(
                    "retry.max_attempts",
                    format!("{n} retries would hammer a sick server"),
                    "use 0 to 10 (default 2)",
                ));
            }
            n => n,
        },
        base,
        max,
    };

    let global_qps = number_in(
        qps_field,
        raw.rate_limit.global_qps,
        defaults::GLOBAL_QPS,
        0.001,
        1e6,
    )?;
    let namespace_qps = number_in(
        "rate_limit.namespace_qps",
        raw.rate_limit.namespace_qps,
        defaults::NAMESPACE_QPS,
        0.001,
        1e6,
    )?;
    let rate_limit = RateLimits {
        global_qps,
        global_burst: number_in(
            "rate_limit.global_burst",
            raw.rate_limit.global_burst,
            global_qps.max(1.0),
            1.0,
            1e6,
        )?,
        namespace_qps,
        namespace_burst: number_in(
            "rate_limit.namespace_burst",
            raw.rate_limit.namespace_burst,
            namespace_qps.max(1.0),
            1.0,
            1e6,
        )?,
    };

    let scoring = scoring(&raw.scoring)?;
    spread_intervals(&mut targets, &probe, servers.len(), rate_limit.global_qps)?;

    Ok(Config {
        listen,
        servers,
        targets,
        probe,
        retry,
        rate_limit,
        scoring,
        kube: raw.kube,
        heal: raw.heal,
    })
}

/// Fits the schedule into each server's budget. Every server is asked for every
/// target, so one server gets `Σ 1 / interval` scheduled probes per second. Targets with
/// their own `interval_ms` keep it; the others share what is left of
/// `probe.server_qps` (and of `rate_limit.global_qps` split over `servers`), evenly,
/// never more often than `probe.interval_ms`. With the defaults (25 ms, 200/s) up to 5
/// targets are probed every 25 ms on each server and 10 targets every 50 ms, so the
/// probe load on one CoreDNS pod stays at most 200 queries/s however many names are
/// configured or discovered.
///
/// Fails with an error naming `probe.server_qps` when the targets with their own
/// interval alone ask for more.
pub fn spread_intervals(
    targets: &mut [TargetConfig],
    probe: &ProbeSettings,
    servers: usize,
    global_qps: f64,
) -> Result<()> {
    let own = server_qps(targets.iter().filter(|t| t.own_interval));
    if own > probe.server_qps {
        return Err(Error::config(
            "probe.server_qps",
            format!(
                "the targets with their own interval_ms ask {own:.0} probes/s of every server, over the budget of {}",
                probe.server_qps
            ),
            "raise probe.server_qps, or lengthen targets[].interval_ms",
        ));
    }
    let shared = targets.iter().filter(|t| !t.own_interval).count();
    if shared == 0 {
        return Ok(());
    }
    let budget = probe.server_qps.min(global_qps / servers.max(1) as f64);
    let left = (budget - own).max(1.0);
    let interval = probe
        .interval
        .max(Duration::from_secs_f64(shared as f64 / left));
    for t in targets.iter_mut().filter(|t| !t.own_interval) {
        t.interval = interval;
    }
    Ok(())
}

/// Scheduled probes per second one server gets from these targets (every server is
/// asked for every target): `Σ 1 / interval`.
pub fn server_qps<'a>(targets: impl IntoIterator<Item = &'a TargetConfig>) -> f64 {
    targets
        .into_iter()
        .map(|t| 1.0 / t.interval.as_secs_f64())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
listen: 127.0.0.1:0
servers:
  - {name: a, address: '127.0.0.1:5353'}
targets:
  - {name: api, qname: kubernetes.default.svc.cluster.local, type: A, expect: [10.96.0.1]}
  - {name: web, qname: my-headless.default.svc.cluster.local, type: a, namespace: web}
";

    fn err(yaml: &str, o: &Overrides) -> (String, String) {
        match Config::from_yaml_str(yaml, o) {
            Err(Error::Config { field, fix, .. }) => (field, fix),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::from_yaml_str(GOOD, &Overrides::default()).unwrap();
        assert_eq!(c.servers[0].address, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(c.targets[0].qtype, Rtype::A);
        assert_eq!(c.targets[0].namespace, "default");
        assert_eq!(c.targets[1].namespace, "web");
        assert_eq!(c.probe.timeout, Duration::from_millis(100));
        assert_eq!(c.probe.interval, Duration::from_millis(25));
        assert_eq!(c.probe.server_qps, 200.0);
        // Two targets fit the per-server budget at the default interval.
        assert!(
            c.targets
                .iter()
                .all(|t| t.interval == Duration::from_millis(25))
        );
        assert!(c.targets[0].expect.contains("10.96.0.1"));
        // The suspicion cadence is on by default.
        assert_eq!(c.probe.confirm, ConfirmSettings::DEFAULT);
        assert!(c.probe.confirm.rounds > 0);
    }

    fn targets_yaml(n: usize, extra: &str) -> String {
        let mut y = String::from("servers: [{name: a, address: '127.0.0.1:5353'}]\ntargets:\n");
        for i in 0..n {
            y.push_str(&format!(
                "  - {{name: t{i}, qname: t{i}.default.svc.cluster.local}}\n"
            ));
        }
        y.push_str(extra);
        y
    }

    #[test]
    fn many_targets_are_stretched_to_the_per_server_budget() {
        let o = Overrides::default();
        // 5 targets x 40/s = 200/s: the default interval holds.
        let c = Config::from_yaml_str(&targets_yaml(5, ""), &o).unwrap();
        assert!(
            c.targets
                .iter()
                .all(|t| t.interval == Duration::from_millis(25))
        );
        // 20 targets share 200/s: every pair every 100 ms.
        let c = Config::from_yaml_str(&targets_yaml(20, ""), &o).unwrap();
        assert!(
            c.targets
                .iter()
                .all(|t| t.interval == Duration::from_millis(100))
        );
        // A smaller budget stretches further.
        let c = Config::from_yaml_str(&targets_yaml(4, "probe: {server_qps: 20}\n"), &o).unwrap();
        assert!(
            c.targets
                .iter()
                .all(|t| t.interval == Duration::from_millis(200))
        );
        // The global rate limit is shared by the servers too.
        let yaml = targets_yaml(4, "rate_limit: {global_qps: 40}\n");
        let c = Config::from_yaml_str(&yaml, &o).unwrap();
        assert!(
            c.targets
                .iter()
                .all(|t| t.interval == Duration::from_millis(100))
        );
    }

    #[test]
    fn a_targets_own_interval_is_kept_and_counted_against_the_budget() {
        let o = Overrides::default();
        // t0 asks 100/s of its own; the other 4 share the remaining 100/s.
        let yaml = targets_yaml(5, "").replacen(
            "{name: t0, qname: t0.default.svc.cluster.local}",
            "{name: t0, qname: t0.default.svc.cluster.local, interval_ms: 10}",
            1,
        );
        let c = Config::from_yaml_str(&yaml, &o).unwrap();
        assert_eq!(c.targets[0].interval, Duration::from_millis(10));
        assert!(c.targets[0].own_interval);
        assert!(
            c.targets[1..]
                .iter()
                .all(|t| t.interval == Duration::from_millis(40))
        );
        // Own intervals alone over the budget: an error naming the field and the fix.
        let yaml = format!("{yaml}probe: {{server_qps: 50}}\n");
        let (field, fix) = err(&yaml, &o);
        assert_eq!(field, "probe.server_qps");
        assert!(fix.contains("interval_ms"), "{fix}");
        let (field, _) = err(&targets_yaml(1, "probe: {server_qps: 0}\n"), &o);
        assert_eq!(field, "probe.server_qps");
    }

    #[test]
    fn confirm_cadence_can_be_tuned_or_turned_off() {
        let yaml = format!("{GOOD}probe: {{confirm: {{rounds: 0}}}}\n");
        let c = Config::from_yaml_str(&yaml, &Overrides::default()).unwrap();
        assert_eq!(c.probe.confirm.rounds, 0);
        let yaml =
            format!("{GOOD}probe: {{confirm: {{rounds: 5, spacing_ms: 20, cooldown_ms: 0}}}}\n");
        let c = Config::from_yaml_str(&yaml, &Overrides::default()).unwrap();
        assert_eq!(
            c.probe.confirm,
            ConfirmSettings {
                rounds: 5,
                spacing: Duration::from_millis(20),
                cooldown: Duration::ZERO,
            }
        );
    }

    #[test]
    fn overrides_win_and_are_named_in_errors() {
        let o = Overrides {
            timeout_ms: Some(250),
            ..Default::default()
        };
        let c = Config::from_yaml_str(GOOD, &o).unwrap();
        assert_eq!(c.probe.timeout, Duration::from_millis(250));
        let o = Overrides {
            listen: Some("nowhere".into()),
            ..Default::default()
        };
        let (field, _) = err(GOOD, &o);
        assert!(
            field.contains("--listen") && field.contains("DNSWARDEN_LISTEN"),
            "{field}"
        );
    }

    #[test]
    fn every_error_names_its_field_and_a_fix() {
        let cases: &[(&str, &str)] = &[
            (
                "servers: []\ntargets: [{name: a, qname: x.cluster.local}]",
                "servers",
            ),
            (
                "servers: [{name: a, address: 'localhost:53'}]\ntargets: [{name: a, qname: x.y}]",
                "servers[0].address",
            ),
            (
                "servers: [{name: 'a b', address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]",
                "servers[0].name",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}, {name: a, address: '127.0.0.2'}]\ntargets: [{name: a, qname: x.y}]",
                "servers[1].name",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: []",
                "targets",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y, type: AAA}]",
                "targets[0].type",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: 'a..b'}]",
                "targets[0].qname",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y, expect: [nope]}]",
                "targets[0].expect[0]",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {timeout_ms: 0}",
                "probe.timeout_ms",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {jitter: 0.9}",
                "probe.jitter",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {concurrency: 0}",
                "probe.concurrency",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nscoring: {degraded_enter: 0.8, critical_enter: 0.5}",
                "scoring.critical_enter",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nscoring: {degraded_leave: 0.6}",
                "scoring.degraded_leave",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nscoring: {rate_window_ms: 0}",
                "scoring.rate_window_ms",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nscoring: {weights: {rtt: 1.5}}",
                "scoring.weights.rtt",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y, type: TXT, expect: [x]}]",
                "targets[0].expect",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y, type: SRV, expect: [x]}]",
                "targets[0].expect[0]",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nretry: {base_ms: 100, max_ms: 10}",
                "retry.max_ms",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qnme: x.y}]",
                "targets[0]",
            ),
            (
                "listen: 1\nservers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]",
                "listen",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {confirm: {rounds: 50}}",
                "probe.confirm.rounds",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {confirm: {spacing_ms: 0}}",
                "probe.confirm.spacing_ms",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {confirm: {cooldown_ms: 99999999}}",
                "probe.confirm.cooldown_ms",
            ),
            (
                "servers: [{name: a, address: '127.0.0.1'}]\ntargets: [{name: a, qname: x.y}]\nprobe: {confirm: {round: 2}}",
                "probe.confirm",
            ),
        ];
        for (yaml, want) in cases {
            let (field, fix) = err(yaml, &Overrides::default());
            assert_eq!(&field, want, "for {yaml:?}");
            assert!(!fix.is_empty(), "no fix for {yaml:?}");
        }
    }

    #[test]
    fn namespaces_come_from_service_names() {
        assert_eq!(namespace_of("my-svc.team-a.svc.cluster.local"), "team-a");
        assert_eq!(
            namespace_of("_http._tcp.web.shop.svc.cluster.local."),
            "shop"
        );
        assert_eq!(
            namespace_of("10-244-1-10.default.pod.cluster.local"),
            "default"
        );
        assert_eq!(namespace_of("example.com"), "default");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../examples/dnswarden.yaml");
        Config::from_yaml_str(text, &Overrides::default()).unwrap();
    }
}
