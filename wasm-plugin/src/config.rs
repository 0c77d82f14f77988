//! The plugin configuration: JSON, validated field by field.
//!
//! Every field is optional; an unknown field is an error (a typo must not silently fall
//! back to a default). Errors name the field and say what would be accepted, so one log
//! line in Envoy is enough to fix the configuration.

use std::fmt;

use crate::json::Value;

/// Log level the filter logs at (maps onto proxy-wasm levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Everything.
    Trace,
    /// Per-connection detail.
    Debug,
    /// Verdict changes and configuration.
    Info,
    /// Problems only.
    Warn,
    /// Errors only.
    Error,
}

impl Level {
    /// Lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Which kind of Envoy filter this plugin instance is loaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A network (L4) filter in front of DNS over TCP.
    Network,
    /// An HTTP filter in front of DNS over HTTPS (RFC 8484).
    Http,
}

/// Which signals feed the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signals {
    /// RTT spikes.
    pub rtt: bool,
    /// Timeouts / unanswered queries.
    pub timeouts: bool,
    /// SERVFAIL bursts.
    pub servfail: bool,
    /// NXDOMAIN concentration.
    pub nxdomain: bool,
    /// Truncated answers.
    pub truncation: bool,
    /// Malformed answers and id / question mismatches.
    pub integrity: bool,
}

/// Weight of each signal in the fused score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// RTT spikes.
    pub rtt: f32,
    /// Timeouts.
    pub timeouts: f32,
    /// SERVFAIL.
    pub servfail: f32,
    /// NXDOMAIN.
    pub nxdomain: f32,
    /// Truncation.
    pub truncation: f32,
    /// Integrity.
    pub integrity: f32,
}

/// Score thresholds and time limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Score at or above which an upstream is degraded.
    pub degraded: f32,
    /// Score at or above which an upstream is critical.
    pub critical: f32,
    /// A query with no answer after this long counts as a timeout.
    pub query_timeout_ms: u32,
    /// RTT below this is never a spike.
    pub rtt_floor_ms: u32,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Network or HTTP filter.
    pub mode: Mode,
    /// Log level.
    pub log_level: Level,
    /// Metric name prefix (`[a-z0-9_]`, 1 to 32 characters).
    pub metric_prefix: String,
    /// Signals on / off.
    pub signals: Signals,
    /// Signal weights.
    pub weights: Weights,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Largest DNS message the filter buffers to read; larger ones are skipped (counted).
    pub max_message_bytes: u32,
    /// Most upstreams tracked separately; more are folded into `other`.
    pub max_upstreams: u32,
    /// Root-context tick period for timeout sweeps and gauges (0 = no tick).
    pub tick_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Network,
            log_level: Level::Info,
            metric_prefix: "dnswarden".into(),
            signals: Signals {
                rtt: true,
                timeouts: true,
                servfail: true,
                nxdomain: true,
                truncation: true,
                integrity: true,
            },
            weights: Weights {
                rtt: 1.0,
                timeouts: 1.0,
                servfail: 1.0,
                nxdomain: 0.5,
                truncation: 0.5,
                integrity: 1.0,
            },
            thresholds: Thresholds {
                degraded: 0.3,
                critical: 0.7,
                query_timeout_ms: 2_000,
                rtt_floor_ms: 50,
            },
            max_message_bytes: 4_096,
            max_upstreams: 64,
            tick_ms: 1_000,
        }
    }
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field (`weights.rtt`), or `(document)`.
    pub field: String,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration: field `{}`: {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

fn err(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

fn describe(v: &Value) -> String {
    v.describe()
}

impl Config {
    /// Parses the plugin configuration. Empty input (or only whitespace) means defaults.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first offending field.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value = Value::parse(bytes).map_err(|e| {
            err(
                "(document)",
                format!(
                    "not valid JSON: expected {} at byte {}; write an object such as {{\"log_level\": \"info\"}}",
                    e.expected, e.at
                ),
            )
        })?;
        let Some(root) = value.as_object() else {
            return Err(err("(document)", "must be a JSON object"));
        };
        let mut c = Self::default();
        for (key, v) in root {
            match key.as_str() {
                "mode" => {
                    c.mode = match v.as_str() {
                        Some("network") => Mode::Network,
                        Some("http") => Mode::Http,
                        _ => {
                            return Err(err(
                                "mode",
                                format!("must be \"network\" or \"http\", got {}", describe(v)),
                            ));
                        }
                    }
                }
                "log_level" => {
                    c.log_level = match v.as_str() {
                        Some("trace") => Level::Trace,
                        Some("debug") => Level::Debug,
                        Some("info") => Level::Info,
                        Some("warn") => Level::Warn,
                        Some("error") => Level::Error,
                        _ => {
                            return Err(err(
                                "log_level",
                                format!(
                                    "must be one of trace, debug, info, warn, error; got {}",
                                    describe(v)
                                ),
                            ));
                        }
                    }
                }
                "metric_prefix" => {
                    let ok = v.as_str().filter(|s| {
                        (1..=32).contains(&s.len())
                            && s.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    });
                    let Some(s) = ok else {
                        return Err(err(
                            "metric_prefix",
                            format!(
                                "must be 1 to 32 characters of [a-z0-9_], got {}",
                                describe(v)
                            ),
                        ));
                    };
                    c.metric_prefix = s.into();
                }
                "signals" => parse_signals(v, &mut c.signals)?,
                "weights" => parse_weights(v, &mut c.weights)?,
                "thresholds" => parse_thresholds(v, &mut c.thresholds)?,
                "max_message_bytes" => {
                    c.max_message_bytes = int(v, "max_message_bytes", 512, 65_535)?
                }
                "max_upstreams" => c.max_upstreams = int(v, "max_upstreams", 1, 1_024)?,
                "tick_ms" => c.tick_ms = int(v, "tick_ms", 0, 60_000)?,
                other => {
                    return Err(err(
                        other,
                        "unknown field; known fields are mode, log_level, metric_prefix, signals, weights, thresholds, max_message_bytes, max_upstreams, tick_ms",
                    ));
                }
            }
        }
        if c.thresholds.degraded >= c.thresholds.critical {
            return Err(err(
                "thresholds.degraded",
                "must be lower than thresholds.critical",
            ));
        }
        Ok(c)
    }
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a [(String, Value)], ConfigError> {
    v.as_object()
        .ok_or_else(|| err(field, format!("must be an object, got {}", describe(v))))
}

fn int(v: &Value, field: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            err(
                field,
                format!(
                    "must be an integer from {min} to {max}, got {}",
                    describe(v)
                ),
            )
        })
}

/// A decimal number in `[min, max]`; `range` spells the bounds for the message (kept
/// as text so the filter carries no float formatting code).
fn number(v: &Value, field: &str, (min, max, range): (f32, f32, &str)) -> Result<f32, ConfigError> {
    v.as_decimal()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            err(
                field,
                format!(
                    "must be a number from {range} in plain decimal notation, got {}",
                    describe(v)
                ),
            )
        })
}

const WEIGHT: (f32, f32, &str) = (0.0, 10.0, "0 to 10");
const SCORE: (f32, f32, &str) = (0.0, 1.0, "0 to 1");

const SIGNALS: &str = "rtt, timeouts, servfail, nxdomain, truncation, integrity";

fn parse_signals(v: &Value, s: &mut Signals) -> Result<(), ConfigError> {
    for (key, v) in object(v, "signals")? {
        let field = format!("signals.{key}");
        let Some(on) = v.as_bool() else {
            return Err(err(
                &field,
                format!("must be true or false, got {}", describe(v)),
            ));
        };
        *match key.as_str() {
            "rtt" => &mut s.rtt,
            "timeouts" => &mut s.timeouts,
            "servfail" => &mut s.servfail,
            "nxdomain" => &mut s.nxdomain,
            "truncation" => &mut s.truncation,
            "integrity" => &mut s.integrity,
            _ => {
                return Err(err(
                    &field,
                    format!("unknown signal; known signals are {SIGNALS}"),
                ));
            }
        } = on;
    }
    Ok(())
}

fn parse_weights(v: &Value, w: &mut Weights) -> Result<(), ConfigError> {
    for (key, v) in object(v, "weights")? {
        let field = format!("weights.{key}");
        let slot = match key.as_str() {
            "rtt" => &mut w.rtt,
            "timeouts" => &mut w.timeouts,
            "servfail" => &mut w.servfail,
            "nxdomain" => &mut w.nxdomain,
            "truncation" => &mut w.truncation,
            "integrity" => &mut w.integrity,
            _ => {
                return Err(err(
                    &field,
                    format!("unknown signal; known signals are {SIGNALS}"),
                ));
            }
        };
        *slot = number(v, &field, WEIGHT)?;
    }
    Ok(())
}

fn parse_thresholds(v: &Value, t: &mut Thresholds) -> Result<(), ConfigError> {
    for (key, v) in object(v, "thresholds")? {
        let field = format!("thresholds.{key}");
        match key.as_str() {
            "degraded" => t.degraded = number(v, &field, SCORE)?,
            "critical" => t.critical = number(v, &field, SCORE)?,
            "query_timeout_ms" => t.query_timeout_ms = int(v, &field, 10, 60_000)?,
            "rtt_floor_ms" => t.rtt_floor_ms = int(v, &field, 0, 60_000)?,
            _ => {
                return Err(err(
                    &field,
                    "unknown threshold; known thresholds are degraded, critical, query_timeout_ms, rtt_floor_ms",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_defaults() {
        assert_eq!(Config::parse(b""), Ok(Config::default()));
        assert_eq!(Config::parse(b"  \n"), Ok(Config::default()));
        assert_eq!(Config::parse(b"{}"), Ok(Config::default()));
    }

    #[test]
    fn a_full_config_is_read() {
        let c = Config::parse(
            br#"{"mode":"http","log_level":"debug","metric_prefix":"dw","signals":{"nxdomain":false},
                "weights":{"rtt":2.5},"thresholds":{"degraded":0.2,"critical":0.9,"query_timeout_ms":500},
                "max_message_bytes":1232,"max_upstreams":8,"tick_ms":0}"#,
        )
        .expect("valid");
        assert_eq!(c.mode, Mode::Http);
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(c.metric_prefix, "dw");
        assert!(!c.signals.nxdomain && c.signals.rtt);
        assert!((c.weights.rtt - 2.5).abs() < f32::EPSILON);
        assert_eq!(c.thresholds.query_timeout_ms, 500);
        assert_eq!(
            (c.max_message_bytes, c.max_upstreams, c.tick_ms),
            (1232, 8, 0)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "(document)"),
            (b"[1]", "(document)"),
            (br#"{"mode":"udp"}"#, "mode"),
            (br#"{"log_level":3}"#, "log_level"),
            (br#"{"metric_prefix":"Bad.Prefix"}"#, "metric_prefix"),
            (br#"{"metric_prefix":""}"#, "metric_prefix"),
            (br#"{"signals":{"rtt":"yes"}}"#, "signals.rtt"),
            (br#"{"signals":{"bogus":true}}"#, "signals.bogus"),
            (br#"{"signals":[]}"#, "signals"),
            (br#"{"weights":{"rtt":-1}}"#, "weights.rtt"),
            (br#"{"weights":{"servfail":"x"}}"#, "weights.servfail"),
            (br#"{"thresholds":{"critical":2}}"#, "thresholds.critical"),
            (
                br#"{"thresholds":{"degraded":0.8,"critical":0.5}}"#,
                "thresholds.degraded",
            ),
            (
                br#"{"thresholds":{"query_timeout_ms":1}}"#,
                "thresholds.query_timeout_ms",
            ),
            (br#"{"max_message_bytes":100}"#, "max_message_bytes"),
            (br#"{"max_upstreams":1.5}"#, "max_upstreams"),
            (br#"{"tick_ms":-1}"#, "tick_ms"),
            (br#"{"metric_prefx":"x"}"#, "metric_prefx"),
        ];
        for (input, field) in cases {
            let e = Config::parse(input).expect_err(field);
            assert_eq!(e.field, *field, "{}", String::from_utf8_lossy(input));
            assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b"\xff\xfe"[..],
            b"null",
            b"\"x\"",
            b"{\"weights\":{\"rtt\":1e400}}",
            b"{\"a\":",
        ] {
            assert!(Config::parse(input).is_err());
        }
    }
}
