//! The `heal:` section of the runner's YAML configuration.

use std::time::Duration;

use serde::Deserialize;

use super::decide::{Mode, Policy};
use super::healer::HealConfig;
use super::lease::LeaseConfig;

/// `heal:` in the YAML file. Every field is optional; unknown fields are errors.
///
/// ```yaml
/// heal:
///   mode: dry-run            # off | dry-run | enforce
///   cooldown_s: 300
///   hourly_budget: 3
///   min_healthy: 1
///   sick_for_s: 30
///   verify_timeout_s: 180
///   interval_s: 5
///   probe_endpoints: true    # :8181/ready and :8080/health, in a cluster only
///   ready_port: 8181         # CoreDNS `ready` plugin
///   health_port: 8080        # CoreDNS `health` plugin
///   lease: true              # leader election (needed with more than one replica)
///   lease_name: dnswarden-healer
///   lease_duration_s: 15
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealSettings {
    /// Healing mode.
    pub mode: Mode,
    /// Minimum seconds between two actions.
    pub cooldown_s: u64,
    /// Maximum actions per rolling hour.
    pub hourly_budget: u32,
    /// Healthy pods that must remain besides an evicted one.
    pub min_healthy: usize,
    /// Seconds a pod must stay critical to count as sick.
    pub sick_for_s: u64,
    /// Seconds to wait for recovery after acting.
    pub verify_timeout_s: u64,
    /// Seconds between decisions.
    pub interval_s: u64,
    /// Probe the pods' own health endpoints (only honoured in a cluster).
    pub probe_endpoints: bool,
    /// Port of CoreDNS' `ready` plugin on each pod.
    pub ready_port: u16,
    /// Port of CoreDNS' `health` plugin on each pod.
    pub health_port: u16,
    /// Use a Lease so only one replica heals.
    pub lease: bool,
    /// Lease name.
    pub lease_name: String,
    /// Lease duration in seconds.
    pub lease_duration_s: u64,
}

impl Default for HealSettings {
    fn default() -> Self {
        let p = Policy::default();
        HealSettings {
            mode: p.mode,
            cooldown_s: p.cooldown.as_secs(),
            hourly_budget: p.hourly_budget,
            min_healthy: p.min_healthy,
            sick_for_s: p.sick_for.as_secs(),
            verify_timeout_s: p.verify_timeout.as_secs(),
            interval_s: 5,
            probe_endpoints: true,
            ready_port: 8181,
            health_port: 8080,
            lease: true,
            lease_name: "dnswarden-healer".into(),
            lease_duration_s: 15,
        }
    }
}

/// A `heal.*` value is invalid.
#[derive(Debug, thiserror::Error)]
#[error("`{field}`: {problem}; fix: {fix}")]
pub struct HealSettingsError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: &'static str,
}

impl HealSettings {
    /// The healer and (if `lease`) Lease configurations. `coredns_namespace` comes from
    /// `kube.coredns_namespace`; `runner_namespace` and `identity` from the pod
    /// (downward API `POD_NAMESPACE` / `POD_NAME`); `in_cluster` gates the health
    /// endpoint probes.
    pub fn into_configs(
        &self,
        coredns_namespace: &str,
        runner_namespace: &str,
        identity: &str,
        in_cluster: bool,
    ) -> Result<(HealConfig, Option<LeaseConfig>), HealSettingsError> {
        let bad = |field, problem: String, fix| {
            Err(HealSettingsError {
                field,
                problem,
                fix,
            })
        };
        if self.interval_s == 0 {
            return bad(
                "heal.interval_s",
                "0".into(),
                "use a period of a few seconds (default 5)",
            );
        }
        for (field, port) in [
            ("heal.ready_port", self.ready_port),
            ("heal.health_port", self.health_port),
        ] {
            if port == 0 {
                return bad(
                    field,
                    "0".into(),
                    "use the port of the CoreDNS plugin (ready 8181, health 8080 by default)",
                );
            }
        }
        if self.verify_timeout_s == 0 {
            return bad(
                "heal.verify_timeout_s",
                "0".into(),
                "give recovery time, e.g. 180",
            );
        }
        if self.lease && self.lease_duration_s < 3 * self.interval_s.max(1) {
            return bad(
                "heal.lease_duration_s",
                format!(
                    "{} s is shorter than three decision intervals",
                    self.lease_duration_s
                ),
                "make it at least 3 × heal.interval_s (default 15 with interval 5)",
            );
        }
        if self.lease && (runner_namespace.is_empty() || identity.is_empty()) {
            return bad(
                "heal.lease",
                "the runner's namespace or pod name is unknown".into(),
                "set POD_NAMESPACE and POD_NAME from the downward API, or set heal.lease: false with one replica",
            );
        }
        let policy = Policy {
            mode: self.mode,
            cooldown: Duration::from_secs(self.cooldown_s),
            hourly_budget: self.hourly_budget,
            min_healthy: self.min_healthy,
            sick_for: Duration::from_secs(self.sick_for_s),
            verify_timeout: Duration::from_secs(self.verify_timeout_s),
        };
        let mut heal = HealConfig::new(coredns_namespace, identity);
        heal.policy = policy;
        heal.interval = Duration::from_secs(self.interval_s);
        heal.probe_endpoints = self.probe_endpoints && in_cluster;
        heal.ready_port = self.ready_port;
        heal.health_port = self.health_port;
        let lease = self.lease.then(|| {
            let mut l = LeaseConfig::new(runner_namespace, identity);
            l.name = self.lease_name.clone();
            l.duration = Duration::from_secs(self.lease_duration_s);
            l
        });
        Ok((heal, lease))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_dry_run_with_guardrails() {
        let s: HealSettings = serde_yaml_ng::from_str("{}").unwrap();
        let (h, l) = s
            .into_configs("kube-system", "dnswarden", "runner-0", false)
            .unwrap();
        assert_eq!(h.policy, Policy::default());
        assert_eq!(h.policy.mode, Mode::DryRun);
        assert!(!h.probe_endpoints, "outside a cluster");
        assert_eq!(
            l.map(|l| (l.name, l.namespace, l.identity)),
            Some((
                "dnswarden-healer".into(),
                "dnswarden".into(),
                "runner-0".into()
            ))
        );
    }

    #[test]
    fn modes_and_errors() {
        let s: HealSettings = serde_yaml_ng::from_str(
            "mode: enforce\nlease: false\ncooldown_s: 60\nready_port: 9181\n",
        )
        .unwrap();
        let (h, l) = s.into_configs("kube-system", "", "", true).unwrap();
        assert_eq!((h.ready_port, h.health_port), (9181, 8080));
        let s = HealSettings {
            health_port: 0,
            lease: false,
            ..HealSettings::default()
        };
        let e = s.into_configs("k", "", "", true).unwrap_err().to_string();
        assert!(e.contains("heal.health_port"), "{e}");
        assert_eq!(
            (
                h.policy.mode,
                h.policy.cooldown,
                l.is_none(),
                h.probe_endpoints
            ),
            (Mode::Enforce, Duration::from_secs(60), true, true)
        );
        let e = serde_yaml_ng::from_str::<HealSettings>("mode: yes-please\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("off") && e.contains("enforce"), "{e}");
        let s = HealSettings::default();
        let e = s
            .into_configs("kube-system", "", "", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("heal.lease") && e.contains("POD_NAME"), "{e}");
        let s = HealSettings {
            lease_duration_s: 5,
            ..HealSettings::default()
        };
        assert!(
            s.into_configs("k", "n", "i", true)
                .unwrap_err()
                .to_string()
                .contains("heal.lease_duration_s")
        );
    }
}
