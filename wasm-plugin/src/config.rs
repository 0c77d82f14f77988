//! The plugin configuration: JSON, validated field by field.
//!
//! Every field is optional; an unknown field is an error (a typo must not silently fall
//! back to a default). Errors name the field and say what would be accepted, so one log
//! line in Envoy is enough to fix the configuration.

use std::fmt;

use dnswarden_core::wire::Rtype;

use crate::json::Value;
use crate::names::concat;

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
    /// Answers of a configured name differ from its expected set.
    pub drift: bool,
    /// The first answer of a name's answer set does not rotate fairly.
    pub round_robin: bool,
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
    /// Answer-set drift.
    pub drift: f32,
    /// Round-robin skew.
    pub round_robin: f32,
}

/// The expected answer set of one configured name and type (the answer-set drift
/// detector compares every answer to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The name as configured (also the label naming it in logs).
    pub name: String,
    /// Record type: A for IPv4 addresses, AAAA for IPv6.
    pub qtype: u16,
    /// [`crate::targets::question_key`] of the name and type.
    pub key: u64,
    /// Member hashes of the addresses ([`dnswarden_core::score::member_hash_ip`]),
    /// without duplicates.
    pub members: Vec<u64>,
}

/// Most answer sets that can be configured (one per name and address family).
pub const MAX_EXPECTED_SETS: usize = 16;
/// Most addresses in one expected answer set (the core's limit).
pub const MAX_EXPECTED_MEMBERS: usize = 64;

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
    /// Expected answer sets of configured names (`expected_answers`).
    pub expected: Vec<Expected>,
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
                drift: true,
                round_robin: true,
            },
            expected: Vec::new(),
            // The core scorer's defaults.
            weights: Weights {
                rtt: 0.7,
                timeouts: 1.0,
                servfail: 1.0,
                nxdomain: 0.7,
                truncation: 0.8,
                integrity: 0.9,
                drift: 0.6,
                round_robin: 0.5,
            },
            thresholds: Thresholds {
                degraded: 0.5,
                critical: 0.85,
                query_timeout_ms: 2_000,
                rtt_floor_ms: 5,
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

impl ConfigError {
    /// The log line: ``invalid plugin configuration: field `FIELD`: PROBLEM``.
    #[must_use]
    pub fn message(&self) -> String {
        concat(&[
            "invalid plugin configuration: field `",
            &self.field,
            "`: ",
            &self.problem,
        ])
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ConfigError {}

fn err(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
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
                concat(&[
                    "not valid JSON: expected ",
                    e.expected,
                    " at byte ",
                    &e.at.to_string(),
                    "; write an object such as {\"log_level\": \"info\"}",
                ]),
            )
        })?;
        let Some(root) = value.as_object() else {
            return Err(err("(document)", "must be a JSON object"));
        };
        let mut c = Self::default();
        for (key, v) in root {
            if key == "expected_answers" {
                c.expected = expected_answers(v)?;
            } else if GROUPS.contains(&key.as_str()) {
                let Some(members) = v.as_object() else {
                    return Err(err(
                        key,
                        concat(&["must be an object, got ", &v.describe()]),
                    ));
                };
                for (inner, v) in members {
                    c.set(&concat(&[key, ".", inner]), v)?;
                }
            } else {
                c.set(key, v)?;
            }
        }
        if c.thresholds.degraded >= c.thresholds.critical {
            return Err(err(
                "thresholds.degraded",
                "must be lower than thresholds.critical",
            ));
        }
        if let Err(e) = crate::health::score_config(&c) {
            return Err(err(
                "thresholds",
                concat(&[
                    "rejected by the scorer: ",
                    e.field,
                    " ",
                    e.problem,
                    "; ",
                    e.fix,
                ]),
            ));
        }
        Ok(c)
    }

    /// Sets one field by its dotted path. One table-like match keeps this small in the
    /// `.wasm`: every arm reads the value with one of four readers.
    fn set(&mut self, path: &str, v: &Value) -> Result<(), ConfigError> {
        let (s, w, t) = (&mut self.signals, &mut self.weights, &mut self.thresholds);
        let flag = |slot: &mut bool| v.as_bool().map(|b| *slot = b).ok_or("true or false");
        let unit = |slot: &mut f32| {
            v.as_decimal()
                .filter(|n| (0.0..=1.0).contains(n))
                .map(|n| *slot = n)
                .ok_or("a number from 0 to 1 in plain decimal notation")
        };
        let int = |slot: &mut u32, min: u32, max: u32, what: &'static str| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (min..=max).contains(n))
                .map(|n| *slot = n)
                .ok_or(what)
        };
        let word = |words: &[&str]| v.as_str().and_then(|x| words.iter().position(|w| *w == x));
        let result = match path {
            "mode" => word(&["network", "http"])
                .map(|i| self.mode = if i == 0 { Mode::Network } else { Mode::Http })
                .ok_or("\"network\" or \"http\""),
            "log_level" => word(&["trace", "debug", "info", "warn", "error"])
                .map(|i| {
                    self.log_level = [
                        Level::Trace,
                        Level::Debug,
                        Level::Info,
                        Level::Warn,
                        Level::Error,
                    ][i.min(4)]
                })
                .ok_or("one of trace, debug, info, warn, error"),
            "metric_prefix" => v
                .as_str()
                .filter(|p| {
                    (1..=32).contains(&p.len())
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
                .map(|p| self.metric_prefix = p.into())
                .ok_or("1 to 32 characters of [a-z0-9_]"),
            "max_message_bytes" => int(
                &mut self.max_message_bytes,
                512,
                65_535,
                "an integer from 512 to 65535",
            ),
            "max_upstreams" => int(
                &mut self.max_upstreams,
                1,
                1_024,
                "an integer from 1 to 1024",
            ),
            "tick_ms" => int(&mut self.tick_ms, 0, 60_000, "an integer from 0 to 60000"),
            "signals.rtt" => flag(&mut s.rtt),
            "signals.timeouts" => flag(&mut s.timeouts),
            "signals.servfail" => flag(&mut s.servfail),
            "signals.nxdomain" => flag(&mut s.nxdomain),
            "signals.truncation" => flag(&mut s.truncation),
            "signals.integrity" => flag(&mut s.integrity),
            "signals.drift" => flag(&mut s.drift),
            "signals.round_robin" => flag(&mut s.round_robin),
            "weights.rtt" => unit(&mut w.rtt),
            "weights.timeouts" => unit(&mut w.timeouts),
            "weights.servfail" => unit(&mut w.servfail),
            "weights.nxdomain" => unit(&mut w.nxdomain),
            "weights.truncation" => unit(&mut w.truncation),
            "weights.integrity" => unit(&mut w.integrity),
            "weights.drift" => unit(&mut w.drift),
            "weights.round_robin" => unit(&mut w.round_robin),
            "thresholds.degraded" => unit(&mut t.degraded),
            "thresholds.critical" => unit(&mut t.critical),
            "thresholds.query_timeout_ms" => int(
                &mut t.query_timeout_ms,
                10,
                60_000,
                "an integer from 10 to 60000",
            ),
            "thresholds.rtt_floor_ms" => {
                int(&mut t.rtt_floor_ms, 0, 60_000, "an integer from 0 to 60000")
            }
            _ => {
                return Err(err(
                    path,
                    concat(&["unknown field; known fields are ", KNOWN]),
                ));
            }
        };
        result.map_err(|what| err(path, concat(&["must be ", what, ", got ", &v.describe()])))
    }
}

/// Reads `expected_answers`: `{"<name>": ["<IPv4 or IPv6 address>", ...], ...}`, one
/// answer set per name and address family.
#[inline(never)]
fn expected_answers(v: &Value) -> Result<Vec<Expected>, ConfigError> {
    // Static messages (no formatting): this runs once, and every `format!` costs the
    // `.wasm` a few hundred bytes.
    let Some(names) = v.as_object() else {
        return Err(err(
            "expected_answers",
            "must be an object such as {\"web.default.svc.cluster.local\": [\"10.0.0.7\"]}",
        ));
    };
    let mut out: Vec<Expected> = Vec::new();
    for (name, list) in names {
        let mut field = String::from("expected_answers.");
        field.push_str(name);
        let problem = expected_set(name, list, &mut out);
        if out.len() > MAX_EXPECTED_SETS {
            return Err(err(
                "expected_answers",
                "at most 16 names per address family",
            ));
        }
        if let Err(problem) = problem {
            return Err(err(&field, problem));
        }
    }
    Ok(out)
}

/// Reads one name's addresses into `out` (one set per address family).
fn expected_set(name: &str, list: &Value, out: &mut Vec<Expected>) -> Result<(), &'static str> {
    let fingerprint = dnswarden_core::wire::fingerprint_str(name)
        .map_err(|_| "not a DNS name (labels of 1 to 63 octets, 255 in all, no escapes)")?;
    let addresses = list
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or("must be a non-empty list of addresses")?;
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for a in addresses {
        let ip = a
            .as_str()
            .and_then(crate::ip::parse)
            .ok_or("must list addresses such as \"10.0.0.7\" or \"fd00::7\"")?;
        let set = if ip.is_ipv6() { &mut v6 } else { &mut v4 };
        let member = dnswarden_core::score::member_hash_ip(ip);
        // A set: duplicates would count twice in its fingerprint.
        if !set.contains(&member) {
            set.push(member);
        }
    }
    for (qtype, members) in [(Rtype::A, v4), (Rtype::AAAA, v6)] {
        if members.is_empty() {
            continue;
        }
        if members.len() > MAX_EXPECTED_MEMBERS {
            return Err("lists over 64 addresses of one family");
        }
        let key = crate::targets::question_key(fingerprint, qtype.0);
        if out.iter().any(|e| e.key == key) {
            return Err("is listed twice");
        }
        out.push(Expected {
            name: name.into(),
            qtype: qtype.0,
            key,
            members,
        });
    }
    Ok(())
}

/// Fields holding objects of settings.
const GROUPS: [&str; 3] = ["signals", "weights", "thresholds"];

const KNOWN: &str = "mode, log_level, metric_prefix, max_message_bytes, max_upstreams, tick_ms, \
expected_answers, signals.{rtt,timeouts,servfail,nxdomain,truncation,integrity,drift,round_robin}, \
weights.{same signals}, \
thresholds.{degraded,critical,query_timeout_ms,rtt_floor_ms}";

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
                "weights":{"rtt":0.25},"thresholds":{"degraded":0.2,"critical":0.9,"query_timeout_ms":500},
                "max_message_bytes":1232,"max_upstreams":8,"tick_ms":0}"#,
        )
        .expect("valid");
        assert_eq!(c.mode, Mode::Http);
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(c.metric_prefix, "dw");
        assert!(!c.signals.nxdomain && c.signals.rtt);
        assert!((c.weights.rtt - 0.25).abs() < f32::EPSILON);
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
            (br#"{"weights":{"rtt":1.5}}"#, "weights.rtt"),
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
