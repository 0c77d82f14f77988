//! Prometheus metrics (prometheus-client). Every label value comes from the
//! configuration (server and target names) or from a fixed set (`Outcome::label`,
//! transports, verdicts, reasons), so the series count is bounded.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Probe duration buckets in seconds: fine below 100 ms.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.1, 0.25, 0.5, 1.0,
];

/// Labels of a probe.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// Server name.
    pub server: String,
    /// Target name.
    pub target: String,
    /// Query type.
    pub qtype: String,
    /// `udp` or `tcp` (the transport of the final answer).
    pub transport: String,
}

/// Labels of a probe outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Server name.
    pub server: String,
    /// Target name.
    pub target: String,
    /// `noerror`, `nxdomain`, `servfail`, ..., `timeout`, `truncated`, `mismatch`,
    /// `malformed`, `network_error`.
    pub outcome: String,
}

/// Labels of a (server, target) pair.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PairLabels {
    /// Server name.
    pub server: String,
    /// Target name.
    pub target: String,
}

/// Labels of a scorer: `scope` is `server` or `target`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    /// `server` or `target`.
    pub scope: String,
    /// The server or target name.
    pub name: String,
}

/// Labels of a reason counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `server` or `target`.
    pub scope: String,
    /// The server or target name.
    pub name: String,
    /// Detector label.
    pub reason: String,
}

/// Labels of a verdict change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// `server` or `target`.
    pub scope: String,
    /// The server or target name.
    pub name: String,
    /// The new verdict.
    pub to: String,
}

/// Labels of a TCP fallback.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabels {
    /// Server name.
    pub server: String,
    /// `ok` or `failed`.
    pub result: String,
}

/// Labels of the RTT-clock counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClockLabels {
    /// `kernel` or `runner` ([`crate::probe::RttClock`]).
    pub clock: String,
}

/// Labels of a skipped probe.
/// Labels of per-server series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    /// Server name.
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    /// `global_rate`, `namespace_rate` or `concurrency` (scheduled probes), or
    /// `confirm_global_rate`, `confirm_namespace_rate`, `confirm_concurrency`
    /// (confirmation probes, skipped rather than delayed).
    pub reason: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// All metrics of the runner.
#[derive(Debug)]
pub struct Metrics {
    /// The registry `/metrics` encodes. It has no prefix itself: the runner's metrics
    /// live in a `dnswarden` sub-registry, so metrics registered here directly (e.g.
    /// [`crate::heal::HealMetrics::register`], whose names already start with
    /// `dnswarden_`) are not prefixed twice.
    pub registry: Registry,
    /// `dnswarden_probe_duration_seconds`.
    pub probe_duration: Family<ProbeLabels, Histogram, fn() -> Histogram>,
    /// `dnswarden_probe_outcomes_total`.
    pub outcomes: Family<OutcomeLabels, Counter>,
    /// `dnswarden_truncated_answers_total`.
    pub truncated: Family<PairLabels, Counter>,
    /// `dnswarden_mismatched_responses_total`.
    pub mismatches: Family<PairLabels, Counter>,
    /// `dnswarden_malformed_responses_total`.
    pub malformed: Family<PairLabels, Counter>,
    /// `dnswarden_answer_drift_total`.
    pub drift: Family<PairLabels, Counter>,
    /// `dnswarden_tcp_fallbacks_total`.
    pub tcp_fallbacks: Family<FallbackLabels, Counter>,
    /// `dnswarden_retries_total`.
    pub retries: Family<PairLabels, Counter>,
    /// `dnswarden_probes_skipped_total`.
    pub skipped: Family<SkipLabels, Counter>,
    /// `dnswarden_probe_rtt_clock_total`: probes by the clock their RTT came from.
    pub rtt_clock: Family<ClockLabels, Counter>,
    /// `dnswarden_confirm_probes_total`: confirmation probes sent by the suspicion
    /// cadence, per pair.
    pub confirm_probes: Family<PairLabels, Counter>,
    /// `dnswarden_confirm_bursts_total`: confirmation bursts started, per server.
    pub confirm_bursts: Family<ServerLabels, Counter>,
    /// `dnswarden_score`.
    pub score: Family<ScopeLabels, Gauge<f64, AtomicU64>>,
    /// `dnswarden_verdict`.
    pub verdict: Family<ScopeLabels, Gauge>,
    /// `dnswarden_verdict_changes_total`.
    pub verdict_changes: Family<ChangeLabels, Counter>,
    /// `dnswarden_reasons_total`.
    pub reasons: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric (prefix `dnswarden_`).
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("dnswarden");
        let m = Metrics {
            probe_duration: Family::new_with_constructor(duration_histogram),
            outcomes: Family::default(),
            truncated: Family::default(),
            mismatches: Family::default(),
            malformed: Family::default(),
            drift: Family::default(),
            tcp_fallbacks: Family::default(),
            retries: Family::default(),
            skipped: Family::default(),
            rtt_clock: Family::default(),
            confirm_probes: Family::default(),
            confirm_bursts: Family::default(),
            score: Family::default(),
            verdict: Family::default(),
            verdict_changes: Family::default(),
            reasons: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "probe_duration_seconds",
            "Probe round-trip time, from the first send to the final answer",
            m.probe_duration.clone(),
        );
        registry.register(
            "probe_outcomes",
            "Probes by outcome: the RCODE of the matching answer, or timeout, truncated, mismatch, malformed, network_error",
            m.outcomes.clone(),
        );
        registry.register(
            "truncated_answers",
            "UDP answers with TC=1",
            m.truncated.clone(),
        );
        registry.register(
            "mismatched_responses",
            "Responses whose id or question did not match the query (integrity signal)",
            m.mismatches.clone(),
        );
        registry.register(
            "malformed_responses",
            "Responses that could not be parsed (integrity signal)",
            m.malformed.clone(),
        );
        registry.register(
            "answer_drift",
            "NOERROR answers whose set differs from the expected answers",
            m.drift.clone(),
        );
        registry.register(
            "tcp_fallbacks",
            "TCP retries after a truncated UDP answer, by result",
            m.tcp_fallbacks.clone(),
        );
        registry.register(
            "retries",
            "Retries of failed probes (exponential backoff with jitter)",
            m.retries.clone(),
        );
        registry.register(
            "probes_skipped",
            "Probes skipped: scheduled ones when a rate limit had no token before the next tick, confirmation ones (confirm_*) when a rate limit or the concurrency bound had no room at once",
            m.skipped.clone(),
        );
        registry.register(
            "probe_rtt_clock",
            "Probes by the clock their RTT came from: kernel (the answer's kernel receive timestamp, which leaves out the runner's own scheduling delays) or runner (no answer, or no usable kernel timestamp)",
            m.rtt_clock.clone(),
        );
        registry.register(
            "confirm_probes",
            "Confirmation probes sent right after a suspicious answer (the suspicion cadence, probe.confirm)",
            m.confirm_probes.clone(),
        );
        registry.register(
            "confirm_bursts",
            "Confirmation bursts started by a suspicious answer, per server",
            m.confirm_bursts.clone(),
        );
        registry.register("score", "Fused anomaly score in [0, 1]", m.score.clone());
        registry.register(
            "verdict",
            "Verdict: 0 ok, 1 degraded, 2 critical",
            m.verdict.clone(),
        );
        registry.register(
            "verdict_changes",
            "Verdict changes, by new verdict",
            m.verdict_changes.clone(),
        );
        registry.register(
            "reasons",
            "Observations scored with a detector contributing, by detector",
            m.reasons.clone(),
        );
        Metrics {
            registry: root,
            ..m
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_has_fine_buckets_and_encodes() {
        let m = Metrics::new();
        m.probe_duration
            .get_or_create(&ProbeLabels {
                server: "s".into(),
                target: "t".into(),
                qtype: "A".into(),
                transport: "udp".into(),
            })
            .observe(0.0003);
        let text = m.encode();
        assert!(text.contains("dnswarden_probe_duration_seconds_bucket{le=\"0.0005\",server=\"s\",target=\"t\",qtype=\"A\",transport=\"udp\"} 1"), "{text}");
        assert!(text.contains("le=\"0.00025\""), "{text}");
    }

    #[test]
    fn heal_metrics_keep_their_names_in_the_runner_registry() {
        let mut m = Metrics::new();
        let heal = crate::heal::HealMetrics::default();
        heal.register(&mut m.registry);
        heal.count("evict_pod", "dry_run");
        heal.duration
            .get_or_create(&crate::heal::audit::DurationLabels {
                action: "evict_pod",
            })
            .observe(3.0);
        m.outcomes
            .get_or_create(&OutcomeLabels {
                server: "s".into(),
                target: "t".into(),
                outcome: "noerror".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains(
                "dnswarden_selfheal_actions_total{action=\"evict_pod\",result=\"dry_run\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "dnswarden_selfheal_action_duration_seconds_count{action=\"evict_pod\"} 1"
            ),
            "{text}"
        );
        // The runner's own metrics keep their single prefix.
        assert!(
            text.contains(
                "dnswarden_probe_outcomes_total{server=\"s\",target=\"t\",outcome=\"noerror\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("dnswarden_dnswarden_"), "{text}");
    }
}
