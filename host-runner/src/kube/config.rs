//! Discovery configuration and cluster-domain detection.

use std::time::Duration;

/// What discovery looks at. [`Default`] is the usual CoreDNS layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Namespace of CoreDNS (default `kube-system`).
    pub coredns_namespace: String,
    /// Label selector of the CoreDNS Service(s) and pods (default `k8s-app=kube-dns`).
    pub coredns_selector: String,
    /// Namespaces whose Services become targets; empty means every namespace
    /// (needs the ClusterRole in `deploy/rbac.yaml`).
    pub namespaces: Vec<String>,
    /// Optional label selector on those Services.
    pub service_selector: Option<String>,
    /// If set, only Services with this annotation set to `"true"` are probed
    /// (default `dnswarden.io/probe`). `None` probes every selected Service.
    pub opt_in_annotation: Option<String>,
    /// Cluster domain; `None` reads the search path of `/etc/resolv.conf` (the file
    /// only: its resolver is never queried).
    pub cluster_domain: Option<String>,
    /// How long after an EndpointSlice change a differing answer is not yet drift.
    pub drift_grace: Duration,
}

/// The default opt-in annotation.
pub const OPT_IN_ANNOTATION: &str = "dnswarden.io/probe";

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            coredns_namespace: "kube-system".into(),
            coredns_selector: "k8s-app=kube-dns".into(),
            namespaces: Vec::new(),
            service_selector: None,
            opt_in_annotation: Some(OPT_IN_ANNOTATION.into()),
            cluster_domain: None,
            drift_grace: Duration::from_secs(30),
        }
    }
}

/// Why discovery cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No cluster domain configured and none found in resolv.conf.
    #[error(
        "`kube.cluster_domain`: not set and no `svc.<domain>` entry in the search path of {path}; fix: set kube.cluster_domain (e.g. cluster.local)"
    )]
    NoClusterDomain {
        /// The resolv.conf path read.
        path: String,
    },
    /// A configured value is invalid.
    #[error("`{field}`: {problem}; fix: {fix}")]
    Invalid {
        /// Config field.
        field: &'static str,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: &'static str,
    },
}

impl DiscoveryConfig {
    /// Checks the values; every error names the field and the fix.
    pub fn validate(&self) -> Result<(), DiscoveryError> {
        if self.coredns_namespace.trim().is_empty() {
            return Err(DiscoveryError::Invalid {
                field: "kube.coredns_namespace",
                problem: "empty".into(),
                fix: "set the CoreDNS namespace, usually kube-system",
            });
        }
        if self.coredns_selector.trim().is_empty() {
            return Err(DiscoveryError::Invalid {
                field: "kube.coredns_selector",
                problem: "empty".into(),
                fix: "set a label selector such as k8s-app=kube-dns",
            });
        }
        if let Some(d) = &self.cluster_domain
            && normalize_name(d).is_empty()
        {
            return Err(DiscoveryError::Invalid {
                field: "kube.cluster_domain",
                problem: format!("`{d}` is not a domain"),
                fix: "set a domain such as cluster.local, or remove it to read resolv.conf",
            });
        }
        Ok(())
    }

    /// The cluster domain: configured, or from the resolv.conf text given.
    pub fn resolve_cluster_domain(&self, resolv_conf: Option<&str>) -> Option<String> {
        match &self.cluster_domain {
            Some(d) => Some(normalize_name(d)),
            None => resolv_conf.and_then(cluster_domain_from_resolv_conf),
        }
    }
}

/// Lower case, no trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The cluster domain from a resolv.conf search path: a pod's search list is
/// `<ns>.svc.<domain> svc.<domain> <domain>`, so the entry starting with `svc.` gives
/// it. Reads text only; never resolves anything.
pub fn cluster_domain_from_resolv_conf(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("search"))
        .flat_map(str::split_whitespace)
        .filter_map(|entry| {
            normalize_name(entry)
                .strip_prefix("svc.")
                .map(str::to_owned)
        })
        .find(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_from_pod_resolv_conf() {
        let text = "nameserver 10.96.0.10\nsearch team-a.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";
        assert_eq!(
            cluster_domain_from_resolv_conf(text).as_deref(),
            Some("cluster.local")
        );
        let custom = "search x.svc.Corp.Example. svc.corp.example. corp.example.\n";
        assert_eq!(
            cluster_domain_from_resolv_conf(custom).as_deref(),
            Some("corp.example")
        );
    }

    #[test]
    fn no_domain_outside_a_cluster() {
        assert_eq!(
            cluster_domain_from_resolv_conf("nameserver 1.1.1.1\nsearch home.lan\n"),
            None
        );
        assert_eq!(cluster_domain_from_resolv_conf(""), None);
        assert_eq!(cluster_domain_from_resolv_conf("search svc.\n"), None);
    }

    #[test]
    fn configured_domain_wins() {
        let cfg = DiscoveryConfig {
            cluster_domain: Some("Cluster.Local.".into()),
            ..Default::default()
        };
        assert_eq!(
            cfg.resolve_cluster_domain(Some("search svc.other\n"))
                .as_deref(),
            Some("cluster.local")
        );
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cfg = DiscoveryConfig {
            coredns_namespace: " ".into(),
            ..Default::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(
            e.contains("kube.coredns_namespace") && e.contains("fix"),
            "{e}"
        );
        let cfg = DiscoveryConfig {
            cluster_domain: Some(".".into()),
            ..Default::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("kube.cluster_domain")
        );
        assert!(DiscoveryConfig::default().validate().is_ok());
    }
}
