//! `deploy/rbac.yaml` grants exactly what `API_USAGE` lists: no missing permission,
//! no extra one. (The API mock used by every kube/heal test refuses requests that
//! `API_USAGE` does not describe, so the code cannot drift from the table either.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use dnswarden::kube::api::{API_USAGE, Scope};
use serde::Deserialize;
use serde_json::Value;

type Rules = BTreeSet<(String, String, String)>;

fn manifests() -> Vec<Value> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn rules_of(doc: &Value) -> Rules {
    let mut out = Rules::new();
    for r in doc["rules"].as_array().unwrap() {
        assert!(r.get("resourceNames").is_none() && r.get("nonResourceURLs").is_none());
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                for v in r["verbs"].as_array().unwrap() {
                    out.insert((
                        g.as_str().unwrap().into(),
                        res.as_str().unwrap().into(),
                        v.as_str().unwrap().into(),
                    ));
                }
            }
        }
    }
    out
}

fn table(scope: Scope) -> Rules {
    API_USAGE
        .iter()
        .filter(|u| u.scope == scope)
        .flat_map(|u| {
            u.verbs
                .iter()
                .map(move |v| (u.group.to_string(), u.resource.to_string(), v.to_string()))
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} missing from rbac.yaml"))
}

#[test]
fn rbac_manifest_matches_the_api_usage_table_exactly() {
    let docs = manifests();
    let coredns = find(&docs, "Role", "dnswarden-coredns");
    assert_eq!(coredns["metadata"]["namespace"], "kube-system");
    assert_eq!(
        rules_of(coredns),
        table(Scope::CoreDns),
        "Role dnswarden-coredns != API_USAGE (Scope::CoreDns)"
    );
    let disc = find(&docs, "ClusterRole", "dnswarden-discovery");
    assert_eq!(
        rules_of(disc),
        table(Scope::Watched),
        "ClusterRole dnswarden-discovery != API_USAGE (Scope::Watched)"
    );
    let leader = find(&docs, "Role", "dnswarden-leader");
    assert_eq!(leader["metadata"]["namespace"], "dnswarden");
    assert_eq!(
        rules_of(leader),
        table(Scope::Runner),
        "Role dnswarden-leader != API_USAGE (Scope::Runner)"
    );
    // Nothing else grants anything.
    let granting: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        .collect();
    assert_eq!(granting.len(), 3);
    // Discovery and healing only read, except the listed writes.
    let writes: BTreeSet<(String, String)> = API_USAGE
        .iter()
        .flat_map(|u| {
            u.verbs
                .iter()
                .filter(|v| !["get", "list", "watch"].contains(v))
                .map(move |v| (u.resource.to_string(), v.to_string()))
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("pods/eviction", "create"),
        ("deployments", "patch"),
        ("events", "create"),
        ("leases", "create"),
        ("leases", "update"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(writes, want);
}

#[test]
fn every_role_is_bound_to_the_service_account() {
    let docs = manifests();
    for (binding, role_kind, role) in [
        ("RoleBinding", "Role", "dnswarden-coredns"),
        ("ClusterRoleBinding", "ClusterRole", "dnswarden-discovery"),
        ("RoleBinding", "Role", "dnswarden-leader"),
    ] {
        let b = find(&docs, binding, role);
        assert_eq!(b["roleRef"]["kind"], role_kind);
        assert_eq!(b["roleRef"]["name"], role);
        let subj = &b["subjects"][0];
        assert_eq!(
            (
                subj["kind"].as_str(),
                subj["name"].as_str(),
                subj["namespace"].as_str()
            ),
            (Some("ServiceAccount"), Some("dnswarden"), Some("dnswarden"))
        );
        if binding == "RoleBinding" {
            assert_eq!(
                b["metadata"]["namespace"],
                find(&docs, role_kind, role)["metadata"]["namespace"]
            );
        }
    }
}
