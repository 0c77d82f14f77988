//! The `kube:` section of the runner's YAML configuration.

use std::time::Duration;

use serde::Deserialize;

use super::config::{DiscoveryConfig, DiscoveryError, OPT_IN_ANNOTATION};

/// `kube:` in the YAML file: its presence turns discovery on (embed it as
/// `Option<KubeSettings>`). Every field is optional; unknown fields are errors.
///
/// ```yaml
/// kube:
///   coredns_namespace: kube-system
///   coredns_selector: k8s-app=kube-dns
///   namespaces: []            # empty: every namespace (ClusterRole)
///   service_selector: null    # label selector on Services
///   opt_in_annotation: dnswarden.io/probe   # null: every selected Service
///   cluster_domain: null      # null: from /etc/resolv.conf's search path
///   drift_grace_s: 30
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// See [`DiscoveryConfig::coredns_namespace`].
    pub coredns_namespace: String,
    /// See [`DiscoveryConfig::coredns_selector`].
    pub coredns_selector: String,
    /// See [`DiscoveryConfig::namespaces`].
    pub namespaces: Vec<String>,
    /// See [`DiscoveryConfig::service_selector`].
    pub service_selector: Option<String>,
    /// See [`DiscoveryConfig::opt_in_annotation`].
    pub opt_in_annotation: Option<String>,
    /// See [`DiscoveryConfig::cluster_domain`].
    pub cluster_domain: Option<String>,
    /// See [`DiscoveryConfig::drift_grace`], in seconds.
    pub drift_grace_s: u64,
}

impl Default for KubeSettings {
    fn default() -> Self {
        let d = DiscoveryConfig::default();
        KubeSettings {
            coredns_namespace: d.coredns_namespace,
            coredns_selector: d.coredns_selector,
            namespaces: d.namespaces,
            service_selector: d.service_selector,
            opt_in_annotation: Some(OPT_IN_ANNOTATION.into()),
            cluster_domain: d.cluster_domain,
            drift_grace_s: d.drift_grace.as_secs(),
        }
    }
}

impl KubeSettings {
    /// The discovery configuration, validated (errors name the `kube.*` field).
    pub fn discovery(&self) -> Result<DiscoveryConfig, DiscoveryError> {
        if self.drift_grace_s > 3600 {
            return Err(DiscoveryError::Invalid {
                field: "kube.drift_grace_s",
                problem: format!("{} s is more than an hour", self.drift_grace_s),
                fix: "use a few seconds to a few minutes (default 30)",
            });
        }
        if self.namespaces.iter().any(|n| n.trim().is_empty()) {
            return Err(DiscoveryError::Invalid {
                field: "kube.namespaces",
                problem: "an empty namespace name".into(),
                fix: "remove the empty entry, or leave the list empty for every namespace",
            });
        }
        let cfg = DiscoveryConfig {
            coredns_namespace: self.coredns_namespace.clone(),
            coredns_selector: self.coredns_selector.clone(),
            namespaces: self.namespaces.clone(),
            service_selector: self
                .service_selector
                .clone()
                .filter(|s| !s.trim().is_empty()),
            opt_in_annotation: self
                .opt_in_annotation
                .clone()
                .filter(|s| !s.trim().is_empty()),
            cluster_domain: self.cluster_domain.clone(),
            drift_grace: Duration::from_secs(self.drift_grace_s),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let s: KubeSettings =
            serde_yaml_ng::from_str("namespaces: [shop]\ndrift_grace_s: 5\n").unwrap();
        let d = s.discovery().unwrap();
        assert_eq!(d.namespaces, vec!["shop".to_string()]);
        assert_eq!(d.drift_grace, Duration::from_secs(5));
        assert_eq!(d.coredns_namespace, "kube-system");
        assert_eq!(d.opt_in_annotation.as_deref(), Some("dnswarden.io/probe"));
        let all: KubeSettings = serde_yaml_ng::from_str("opt_in_annotation: null\n").unwrap();
        assert_eq!(
            all.discovery().map(|d| d.opt_in_annotation).ok(),
            Some(None)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = serde_yaml_ng::from_str::<KubeSettings>("namespace: [x]\n")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("namespace"), "{e}");
        let s = KubeSettings {
            drift_grace_s: 7200,
            ..KubeSettings::default()
        };
        assert!(
            s.discovery()
                .map(|_| ())
                .unwrap_err()
                .to_string()
                .contains("kube.drift_grace_s")
        );
        let s = KubeSettings {
            namespaces: vec![String::new()],
            ..KubeSettings::default()
        };
        assert!(
            s.discovery()
                .map(|_| ())
                .unwrap_err()
                .to_string()
                .contains("kube.namespaces")
        );
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    /// The `kube:` and `heal:` sections of the shipped deploy configs parse and validate.
    #[test]
    fn deploy_configs_parse() {
        for file in [
            "base/config.yaml",
            "overlays/kind/config.yaml",
            "overlays/daemonset/config.yaml",
        ] {
            let path = format!("{}/../deploy/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
            let kube: KubeSettings = serde_yaml_ng::from_value(doc["kube"].clone()).unwrap();
            kube.discovery().unwrap();
            let heal: crate::heal::HealSettings =
                serde_yaml_ng::from_value(doc["heal"].clone()).unwrap();
            heal.into_configs(&kube.coredns_namespace, "dnswarden", "runner-0", true)
                .unwrap();
        }
    }
}
