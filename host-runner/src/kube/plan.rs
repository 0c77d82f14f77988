//! What to probe and what every answer should be: the output of discovery.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// A DNS server to probe directly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    /// Stable label: the CoreDNS pod name, or `<namespace>/<service>` for the ClusterIP.
    pub name: String,
    /// What the address is.
    pub kind: ServerKind,
    /// Address to send queries to.
    pub addr: IpAddr,
    /// DNS port (from the EndpointSlice / Service port named `dns`, else 53).
    pub port: u16,
}

/// Whether a [`Server`] is one pod or the Service in front of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerKind {
    /// One CoreDNS pod (a ready endpoint of the kube-dns EndpointSlices).
    Pod,
    /// The kube-dns ClusterIP.
    ClusterIp,
}

/// The DNS record type a [`Target`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Service records.
    Srv,
    /// Canonical name.
    Cname,
}

impl RecordType {
    /// The IANA code.
    pub const fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Cname => 5,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
        }
    }
    /// A bounded label.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Srv => "SRV",
            RecordType::Cname => "CNAME",
        }
    }
}

/// One SRV answer: target host and port (priority/weight are not compared).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SrvAnswer {
    /// Target host name, lower case, without the trailing dot.
    pub target: String,
    /// Port.
    pub port: u16,
}

/// The answer set a [`Target`] must get, compared as a set (order is round-robin).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Expected {
    /// Any successful non-empty answer (e.g. `kubernetes.default`, whose ClusterIP
    /// dnswarden is not allowed to read).
    NonEmpty,
    /// Exactly these addresses (A or AAAA).
    Addrs(BTreeSet<IpAddr>),
    /// Exactly these SRV targets and ports.
    Srv(BTreeSet<SrvAnswer>),
    /// This canonical name (lower case, without the trailing dot).
    Cname(String),
}

/// Where a target comes from (for labels and events).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetSource {
    /// `kubernetes.default.svc.<domain>`.
    ApiServer,
    /// A Service, with what it is.
    Service {
        /// Namespace.
        namespace: String,
        /// Service name.
        name: String,
        /// How the name was derived.
        kind: ServiceTargetKind,
    },
}

/// How a Service target was derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceTargetKind {
    /// ClusterIP Service → its ClusterIP(s).
    ClusterIp,
    /// Headless Service → the ready endpoint addresses.
    Headless,
    /// Headless named port → SRV records.
    HeadlessSrv,
    /// Per-pod name of a headless Service (StatefulSet pods, `hostname` set).
    PodName,
    /// ExternalName Service → CNAME.
    ExternalName,
}

impl ServiceTargetKind {
    /// A bounded label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceTargetKind::ClusterIp => "cluster_ip",
            ServiceTargetKind::Headless => "headless",
            ServiceTargetKind::HeadlessSrv => "headless_srv",
            ServiceTargetKind::PodName => "pod_name",
            ServiceTargetKind::ExternalName => "external_name",
        }
    }
}

/// One name to ask every server for, with its expected answer set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// The query name, lower case, without the trailing dot.
    pub qname: String,
    /// Query type.
    pub rtype: RecordType,
    /// Expected answer set.
    pub expected: Expected,
    /// Where it comes from.
    pub source: TargetSource,
}

/// A target plus how long its expectation has been stable: an answer that differs
/// from `expected` is drift only once `stable_for >= grace` (EndpointSlice changes
/// take a moment to reach CoreDNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTarget {
    /// The target.
    pub target: Target,
    /// When `target.expected` last changed (runner clock, microseconds: tokio
    /// `Instant` offsets from the discovery start).
    pub expected_since_us: u64,
    /// Grace period after `expected_since_us` during which a mismatch is not drift.
    pub grace: Duration,
}

impl PlannedTarget {
    /// Whether a mismatch at `now_us` counts as drift (the grace period is over).
    pub fn drift_counts_at(&self, now_us: u64) -> bool {
        now_us.saturating_sub(self.expected_since_us) >= self.grace.as_micros() as u64
    }
}

/// The complete probe plan. Sorted and deduplicated, so two plans built from the same
/// cluster state compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbePlan {
    /// Every ready CoreDNS pod, then the kube-dns ClusterIP(s).
    pub servers: Vec<Server>,
    /// CoreDNS pods out of rotation (not ready, not terminating): probe them too when
    /// healing is on, so the healer has DNS evidence about them.
    pub unready: Vec<Server>,
    /// Every name with its expectation.
    pub targets: Vec<PlannedTarget>,
    /// The cluster domain used to build the names.
    pub cluster_domain: String,
}

impl ProbePlan {
    /// The pod servers (not the ClusterIP).
    pub fn pod_servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(|s| s.kind == ServerKind::Pod)
    }

    /// The planned target for a query, if any.
    pub fn target(&self, qname: &str, rtype: RecordType) -> Option<&PlannedTarget> {
        self.targets
            .iter()
            .find(|t| t.target.qname == qname && t.target.rtype == rtype)
    }
}

/// A [`Target`]'s expectation in the core scorer's terms (see
/// `dnswarden_core::score::Scorer::expect_members` / `expect_final_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreExpectation {
    /// No set to compare (only "answers at all").
    None,
    /// Expected member hashes. Addresses use `member_hash_ip`; SRV records use
    /// `member_hash_srv(0, 0, port, fingerprint_str(target))`: hash SRV answers with
    /// priority and weight zeroed, since CoreDNS derives weights from the set size.
    Members(Vec<u64>),
    /// The name the CNAME chain must end at (`fingerprint_str`).
    FinalName(u64),
}

impl Target {
    /// The expectation to hand to the core scorer. Names that are not valid DNS
    /// names (cannot come from the API server) yield [`CoreExpectation::None`].
    pub fn core_expectation(&self) -> CoreExpectation {
        use dnswarden_core::score::{member_hash_ip, member_hash_srv};
        use dnswarden_core::wire::fingerprint_str;
        match &self.expected {
            Expected::NonEmpty => CoreExpectation::None,
            Expected::Addrs(a) => {
                CoreExpectation::Members(a.iter().map(|ip| member_hash_ip(*ip)).collect())
            }
            Expected::Srv(set) => {
                let members: Option<Vec<u64>> = set
                    .iter()
                    .map(|s| {
                        fingerprint_str(&s.target)
                            .ok()
                            .map(|fp| member_hash_srv(0, 0, s.port, fp))
                    })
                    .collect();
                members.map_or(CoreExpectation::None, CoreExpectation::Members)
            }
            Expected::Cname(n) => {
                fingerprint_str(n).map_or(CoreExpectation::None, CoreExpectation::FinalName)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(expected: Expected) -> Target {
        Target {
            qname: "x.ns.svc.cluster.local".into(),
            rtype: RecordType::A,
            expected,
            source: TargetSource::ApiServer,
        }
    }

    #[test]
    fn core_expectations_use_the_core_hashes() {
        use dnswarden_core::score::{member_hash_ip, member_hash_srv};
        use dnswarden_core::wire::fingerprint_str;
        let ip: IpAddr = "10.1.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            target(Expected::Addrs([ip].into())).core_expectation(),
            CoreExpectation::Members(vec![member_hash_ip(ip)])
        );
        let srv = SrvAnswer {
            target: "pg-0.pg.db.svc.cluster.local".into(),
            port: 5432,
        };
        let fp = fingerprint_str(&srv.target).unwrap_or(0);
        assert_eq!(
            target(Expected::Srv([srv].into())).core_expectation(),
            CoreExpectation::Members(vec![member_hash_srv(0, 0, 5432, fp)])
        );
        assert_eq!(
            target(Expected::Cname("smtp.example.com".into())).core_expectation(),
            CoreExpectation::FinalName(fingerprint_str("smtp.example.com").unwrap_or(0))
        );
        assert_eq!(
            target(Expected::NonEmpty).core_expectation(),
            CoreExpectation::None
        );
    }
}
