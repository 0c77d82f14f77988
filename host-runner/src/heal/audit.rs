//! Audit: every decision, taken or refused, becomes a JSON log line, a Kubernetes
//! Event and a metric sample.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::decide::{Decision, Mode};

/// Labels of `dnswarden_selfheal_actions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ActionLabels {
    /// `evict_pod`, `rollout_restart`, `local_problem`, `none`.
    pub action: &'static str,
    /// `success`, `failed`, `blocked_by_pdb`, `timeout`, `recovered`, `not_recovered`,
    /// `reported`, or the refusal (`dry_run`, `cooldown`, `not_leader`, ...).
    pub result: &'static str,
}

/// Labels of `dnswarden_selfheal_action_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DurationLabels {
    /// `evict_pod` or `rollout_restart`.
    pub action: &'static str,
}

/// The self-healing metrics.
#[derive(Debug, Clone)]
pub struct HealMetrics {
    /// Decisions by action and result.
    pub actions: Family<ActionLabels, Counter>,
    /// Time from taking an action to its verification (recovered or not).
    pub duration: Family<DurationLabels, Histogram>,
}

impl Default for HealMetrics {
    fn default() -> Self {
        HealMetrics {
            actions: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0,
                ])
            }),
        }
    }
}

impl HealMetrics {
    /// Adds the metrics to the runner's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "dnswarden_selfheal_actions",
            "Self-healing decisions (taken, refused, verified), by action and result",
            self.actions.clone(),
        );
        registry.register(
            "dnswarden_selfheal_action_duration_seconds",
            "Time from a self-healing action to its verification",
            self.duration.clone(),
        );
    }

    /// Counts one decision outcome.
    pub fn count(&self, action: &'static str, result: &'static str) {
        self.actions
            .get_or_create(&ActionLabels { action, result })
            .inc();
    }

    /// The current count for (action, result).
    pub fn get(&self, action: &'static str, result: &'static str) -> u64 {
        self.actions
            .get_or_create(&ActionLabels { action, result })
            .get()
    }
}

/// One audit record, logged as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// Healing mode.
    pub mode: Mode,
    /// Leader at decision time.
    pub leader: bool,
    /// `action` label.
    pub action: &'static str,
    /// `result` label.
    pub result: &'static str,
    /// The decision with its evidence.
    pub decision: &'a Decision,
    /// Error of the API call, if it failed.
    pub error: Option<String>,
}

impl AuditRecord<'_> {
    /// Writes the record as one structured log line (target `dnswarden::audit`, the
    /// record as JSON in the `audit` field).
    pub fn log(&self) {
        let json = serde_json::to_string(self).unwrap_or_default();
        let reason = self.decision.evidence.reason.as_str();
        if self.result == "success"
            || self.result == "recovered"
            || self.result == "reported"
            || self.result == "dry_run"
        {
            tracing::info!(target: "dnswarden::audit", action = self.action, result = self.result, reason, audit = %json, "self-heal decision");
        } else {
            tracing::warn!(target: "dnswarden::audit", action = self.action, result = self.result, reason, audit = %json, "self-heal decision");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_and_labels_in_the_exposition() {
        let m = HealMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.count("evict_pod", "dry_run");
        m.count("evict_pod", "dry_run");
        m.duration
            .get_or_create(&DurationLabels {
                action: "rollout_restart",
            })
            .observe(42.0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(
            text.contains(
                "dnswarden_selfheal_actions_total{action=\"evict_pod\",result=\"dry_run\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("dnswarden_selfheal_action_duration_seconds_bucket{le=\"60.0\",action=\"rollout_restart\"} 1"), "{text}");
        assert_eq!(m.get("evict_pod", "dry_run"), 2);
    }
}
