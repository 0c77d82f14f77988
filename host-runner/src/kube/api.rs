//! Every Kubernetes API call dnswarden makes, in one table.
//!
//! The requests in [`crate::kube`] and [`crate::heal`] name the entry they use
//! ([`ApiCall`]), `deploy/rbac.yaml` grants exactly the union of [`API_USAGE`], and
//! `tests/kube_rbac.rs` fails when the two drift apart. The API mock used by every
//! kube/heal test also refuses any request that no entry describes.

/// Where a call is made, which decides the kind of RBAC object that grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The CoreDNS namespace (default `kube-system`): a `Role` there.
    CoreDns,
    /// The namespaces whose Services are probed; cluster-wide by default, so a
    /// `ClusterRole`.
    Watched,
    /// The runner's own namespace (the leader Lease): a `Role` there.
    Runner,
}

/// One kind of API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiCall {
    /// List + watch the kube-dns Service (ClusterIP of CoreDNS).
    CoreDnsServices,
    /// List + watch the kube-dns EndpointSlices (the CoreDNS pods' addresses).
    CoreDnsEndpointSlices,
    /// List + watch CoreDNS pods (readiness and restarts for the healer).
    CoreDnsPods,
    /// Create an Eviction of a CoreDNS pod (respects PodDisruptionBudgets).
    EvictPod,
    /// Get the ReplicaSet that owns a CoreDNS pod.
    GetReplicaSet,
    /// Patch the Deployment that owns the ReplicaSet (rollout restart).
    PatchDeployment,
    /// Create an audit Event on a pod or Deployment.
    CreateEvent,
    /// List + watch Services in the watched namespaces.
    WatchedServices,
    /// List + watch EndpointSlices in the watched namespaces.
    WatchedEndpointSlices,
    /// Get the leader Lease.
    GetLease,
    /// Create the leader Lease.
    CreateLease,
    /// Replace (PUT) the leader Lease, guarded by its resourceVersion.
    ReplaceLease,
}

/// The RBAC needed by one [`ApiCall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUse {
    /// The call.
    pub call: ApiCall,
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource, with `/subresource` when there is one.
    pub resource: &'static str,
    /// RBAC verbs the call needs.
    pub verbs: &'static [&'static str],
    /// Where it is made.
    pub scope: Scope,
}

/// The table: every API call the code makes, with the RBAC it needs.
pub const API_USAGE: &[ApiUse] = &[
    ApiUse {
        call: ApiCall::CoreDnsServices,
        group: "",
        resource: "services",
        verbs: &["list", "watch"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::CoreDnsEndpointSlices,
        group: "discovery.k8s.io",
        resource: "endpointslices",
        verbs: &["list", "watch"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::CoreDnsPods,
        group: "",
        resource: "pods",
        verbs: &["list", "watch"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::EvictPod,
        group: "",
        resource: "pods/eviction",
        verbs: &["create"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::GetReplicaSet,
        group: "apps",
        resource: "replicasets",
        verbs: &["get"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::PatchDeployment,
        group: "apps",
        resource: "deployments",
        verbs: &["patch"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::CreateEvent,
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create"],
        scope: Scope::CoreDns,
    },
    ApiUse {
        call: ApiCall::WatchedServices,
        group: "",
        resource: "services",
        verbs: &["list", "watch"],
        scope: Scope::Watched,
    },
    ApiUse {
        call: ApiCall::WatchedEndpointSlices,
        group: "discovery.k8s.io",
        resource: "endpointslices",
        verbs: &["list", "watch"],
        scope: Scope::Watched,
    },
    ApiUse {
        call: ApiCall::GetLease,
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get"],
        scope: Scope::Runner,
    },
    ApiUse {
        call: ApiCall::CreateLease,
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["create"],
        scope: Scope::Runner,
    },
    ApiUse {
        call: ApiCall::ReplaceLease,
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["update"],
        scope: Scope::Runner,
    },
];

impl ApiCall {
    /// The table entry of this call.
    pub fn usage(self) -> &'static ApiUse {
        // Every variant has exactly one entry (checked by a unit test); the fallback
        // keeps this total without a panic.
        API_USAGE
            .iter()
            .find(|u| u.call == self)
            .unwrap_or(&API_USAGE[0])
    }

    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCall::CoreDnsServices => "coredns_services",
            ApiCall::CoreDnsEndpointSlices => "coredns_endpointslices",
            ApiCall::CoreDnsPods => "coredns_pods",
            ApiCall::EvictPod => "evict_pod",
            ApiCall::GetReplicaSet => "get_replicaset",
            ApiCall::PatchDeployment => "patch_deployment",
            ApiCall::CreateEvent => "create_event",
            ApiCall::WatchedServices => "watched_services",
            ApiCall::WatchedEndpointSlices => "watched_endpointslices",
            ApiCall::GetLease => "get_lease",
            ApiCall::CreateLease => "create_lease",
            ApiCall::ReplaceLease => "replace_lease",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_exactly_one_entry() {
        let all = [
            ApiCall::CoreDnsServices,
            ApiCall::CoreDnsEndpointSlices,
            ApiCall::CoreDnsPods,
            ApiCall::EvictPod,
            ApiCall::GetReplicaSet,
            ApiCall::PatchDeployment,
            ApiCall::CreateEvent,
            ApiCall::WatchedServices,
            ApiCall::WatchedEndpointSlices,
            ApiCall::GetLease,
            ApiCall::CreateLease,
            ApiCall::ReplaceLease,
        ];
        for call in all {
            assert_eq!(
                API_USAGE.iter().filter(|u| u.call == call).count(),
                1,
                "{call:?}"
            );
            assert_eq!(call.usage().call, call);
        }
        assert_eq!(API_USAGE.len(), all.len());
    }
}
