#!/usr/bin/env python3
"""Offline consistency checks between the shipped deployment files and the code.

  lint_refs.py ROOT metrics     every metric name in the Grafana dashboard, the
                                PrometheusRule and the e2e checks exists in the
                                runner or filter sources; every dns_* label is a
                                stats tag of the shipped Envoy config
  lint_refs.py ROOT labels      every label value the scenarios assert on (reasons,
                                outcomes, heal actions/results) exists in the code
  lint_refs.py ROOT rbac RENDERED...
                                the RBAC objects in rendered manifests are exactly
                                host-runner/deploy/rbac.yaml (labels aside)
  lint_refs.py ROOT statstags   deploy/envoy and deploy/istio carry the same tags
  lint_refs.py ROOT rules       PrometheusRule sanity (alert/record, expr, for, summary)
  lint_refs.py ROOT dashboard   the dashboard parses, ids unique, every target has expr
  lint_refs.py ROOT promql      every shipped PromQL expression parses (promql-parser,
                                Grafana variables substituted)

Exit 0 when the check passes; problems are printed one per line.
"""
import glob
import json
import os
import re
import sys

import yaml

NAME_RE = re.compile(r"\b(dnswarden_[a-z0-9_]+)\b")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def rust_sources(root, *dirs):
    out = {}
    for d in dirs:
        for p in glob.glob(os.path.join(root, d, "**", "*.rs"), recursive=True):
            out[p] = read(p)
    return out


def runner_names(root):
    """Exposed names registered by the runner (prometheus-client: counters get _total)."""
    names = set()
    for text in rust_sources(root, "host-runner/src").values():
        for lit in re.findall(r"\bregister(?:_with_unit)?\(\s*\"([a-z0-9_]+)\"", text):
            names.add(lit if lit.startswith("dnswarden_") else "dnswarden_" + lit)
    return names


def filter_names(root):
    """Names the filter defines, as Envoy exposes them: wasmcustom.<prefix>.<metric>.*
    with the labels extracted by stats tags -> <prefix>_<metric> (no _total)."""
    names = set()
    for path, text in rust_sources(root, "wasm-plugin/src").items():
        if path.endswith("names.rs"):
            continue
        names.update(re.findall(r"\bcount\(\s*\"([a-z0-9_]+)\"", text))
        names.update(re.findall(r"\b(?:name_for|metric_name)\(\s*[^,()]+,\s*\"([a-z0-9_]+)\"", text))
    return {"dnswarden_" + n for n in names}


def filter_labels(root):
    labels = set()
    for path, text in rust_sources(root, "wasm-plugin/src").items():
        labels.update(re.findall(r"\(\s*\"([a-z_]+)\"\s*,\s*[^()]+?\)", text))
    return labels


def exists(name, runner, filt):
    for base in (name, name[: -len("_total")] if name.endswith("_total") else None):
        if base and base in runner:
            return True
    for suf in HIST_SUFFIXES:
        if name.endswith(suf) and (name[: -len(suf)] in runner or name[: -len(suf)] in filt):
            return True
    return name in filt


def shipped_exprs(root):
    """(where, expr) of every PromQL expression shipped."""
    out = []
    dash = json.loads(read(os.path.join(root, "deploy/components/monitoring/dashboards/dnswarden.json")))
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((f"dashboard panel {p['title']!r}", t["expr"]))
    for v in dash["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            out.append((f"dashboard variable {v['name']}", q["query"]))
    rules = yaml.safe_load(read(os.path.join(root, "deploy/components/monitoring/prometheusrule.yaml")))
    for g in rules["spec"]["groups"]:
        for r in g["rules"]:
            out.append((f"rule {r.get('alert') or r.get('record')}", r["expr"]))
    scn = read(os.path.join(root, "kind-cluster/lib/scn.py"))
    for name in set(NAME_RE.findall(scn)):
        out.append(("kind-cluster/lib/scn.py", name))
    return out


def stats_tags(root):
    """(envoy example tags, istio bootstrap tags), each [(tag_name, regex)]."""
    mine, istio = stats_config(root)
    return ([(t["tag_name"], t["regex"]) for t in mine["stats_tags"]],
            [(t["tag_name"], t["regex"]) for t in istio["stats_tags"]])


def stats_config(root):
    env = yaml.safe_load(read(os.path.join(root, "deploy/envoy/envoy.yaml")))
    cm = yaml.safe_load(read(os.path.join(root, "deploy/istio/bootstrap-stats-tags.yaml")))
    return env["stats_config"], json.loads(cm["data"]["custom_bootstrap.json"])["stats_config"]


def tag_label(regex):
    """The filter label a tag regex cuts out: `(\\.upstream\\.(...))` -> upstream."""
    m = re.search(r"\(\\\.([a-z_]+)\\\.", regex)
    return m.group(1) if m else None


def check_metrics(root):
    runner, filt = runner_names(root), filter_names(root)
    problems = []
    if not runner:
        problems.append("no runner metric registrations found in host-runner/src")
    if not filt:
        problems.append("no filter metric definitions found in wasm-plugin/src")
    tags = {t: tag_label(r) for t, r in stats_tags(root)[0]}
    labels = filter_labels(root)
    seen = set()
    for where, expr in shipped_exprs(root):
        for name in NAME_RE.findall(expr):
            seen.add(name)
            if not exists(name, runner, filt):
                problems.append(f"{where}: metric {name} is not defined in host-runner/src or wasm-plugin/src")
        for label in set(re.findall(r"\b(dns_[a-z_]+)\b", expr)):
            if label not in tags:
                problems.append(f"{where}: label {label} is not a stats tag in deploy/envoy/envoy.yaml")
            elif tags[label] not in labels:
                problems.append(f"{where}: label {label}: the filter never encodes a {tags[label]!r} label")
    print(f"  {len(seen)} metric names checked against {len(runner)} runner and {len(filt)} filter metrics")
    return problems


def check_labels(root):
    scn = yaml.safe_load(read(os.path.join(root, "kind-cluster/scenarios.yaml")))
    runner_src = "\n".join(rust_sources(root, "host-runner/src", "core/src").values())
    heal_src = "\n".join(rust_sources(root, "host-runner/src/heal").values())
    literals = set(re.findall(r"\"([a-z_]+)\"", runner_src))
    heal_literals = set(re.findall(r"\"([a-z_]+)\"", heal_src))
    problems = []
    for s in scn["scenarios"]:
        for phase in ("expect", "recover"):
            for c in s.get(phase, []) or []:
                (kind, spec), = c.items()
                if kind == "reason":
                    family = scn.get("reasons", {}).get(spec["reason"])
                    if family is None:
                        problems.append(f"{s['id']}: reason family {spec['reason']!r} is not in `reasons`")
                    elif not any(v in literals for v in family.split("|")):
                        problems.append(f"{s['id']}: no label of reason family {spec['reason']!r} ({family}) exists in host-runner/src or core/src")
                if kind == "outcome" and spec["outcome"] not in literals:
                    problems.append(f"{s['id']}: outcome {spec['outcome']!r} is not a label in host-runner/src")
                if kind in ("heal", "audit"):
                    for key in ("action", "result"):
                        v = spec.get(key, "*")
                        if v != "*" and v not in heal_literals:
                            problems.append(f"{s['id']}: heal {key} {v!r} is not a label in host-runner/src/heal")
                if kind == "verdict":
                    v = spec.get("is") or spec.get("at_least")
                    if v not in scn["verdict_levels"]:
                        problems.append(f"{s['id']}: verdict {v!r} unknown")
    return problems


def strip(obj):
    obj = json.loads(json.dumps(obj))
    obj.get("metadata", {}).pop("labels", None)
    obj.get("metadata", {}).pop("annotations", None)
    return obj


def check_rbac(root, rendered):
    want = {}
    for d in yaml.safe_load_all(read(os.path.join(root, "host-runner/deploy/rbac.yaml"))):
        if d:
            want[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = strip(d)
    problems = []
    rbac_kinds = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"}
    for path in rendered:
        got = {}
        for d in yaml.safe_load_all(read(path)):
            if d and d["kind"] in rbac_kinds:
                got[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = strip(d)
        if got != want:
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            changed = sorted(k for k in set(got) & set(want) if got[k] != want[k])
            problems.append(f"{os.path.basename(path)}: RBAC differs from host-runner/deploy/rbac.yaml: "
                            f"missing {missing}, extra {extra}, changed {changed}")
    return problems


def check_statstags(root):
    mine_cfg, istio_cfg = stats_config(root)
    mine, istio = stats_tags(root)
    problems = []
    if mine_cfg != istio_cfg:
        problems.append("deploy/envoy/envoy.yaml and deploy/istio/bootstrap-stats-tags.yaml stats_config differ")
    for name, regex in mine:
        try:
            re.compile(regex)
        except re.error as e:
            problems.append(f"stats tag {name}: bad regex: {e}")
    # The tags must turn the filter's flat names back into labels: try them on names
    # in the filter's format (wasm-plugin/src/names.rs).
    samples = {
        "wasmcustom.dnswarden.malformed.transport.tcp.upstream.10_96_0_10_53.direction.response.kind.bad_pointer":
            {"dns_transport": "tcp", "dns_upstream": "10_96_0_10_53", "dns_direction": "response", "dns_kind": "bad_pointer"},
        "wasmcustom.dnswarden.responses.transport.doh.upstream.a-b.rcode.SERVFAIL":
            {"dns_transport": "doh", "dns_upstream": "a-b", "dns_rcode": "SERVFAIL"},
        "wasmcustom.dnswarden.http_errors.transport.doh.upstream.x.status.503":
            {"dns_transport": "doh", "dns_upstream": "x", "dns_http_status": "503"},
    }
    for sample, want in samples.items():
        found = {}
        for name, regex in mine:
            m = re.search(regex, sample)
            if m:
                found[name] = m.group(2)
        if found != want:
            problems.append(f"stats tags extract {found} from {sample}, want {want}")
    # The filter's own configs (tested against a real Envoy) are the reference.
    refs = 0
    for p in sorted(glob.glob(os.path.join(root, "wasm-plugin/envoy/*.yaml"))):
        try:
            d = yaml.safe_load(read(p))
        except yaml.YAMLError as e:
            problems.append(f"{p}: {e}")
            continue
        tags = (d or {}).get("stats_config", {}).get("stats_tags") if isinstance(d, dict) else None
        if tags:
            refs += 1
            theirs = [(t.get("tag_name"), t.get("regex")) for t in tags]
            if theirs != mine:
                problems.append(f"{os.path.relpath(p, root)} and deploy/envoy/envoy.yaml ship different stats_tags")
    for p in sorted(glob.glob(os.path.join(root, "wasm-plugin/istio/*.yaml"))):
        for d in yaml.safe_load_all(read(p)):
            boot = ((d or {}).get("data") or {}).get("custom_bootstrap.json") if isinstance(d, dict) else None
            if boot:
                refs += 1
                if json.loads(boot).get("stats_config") != istio_cfg:
                    problems.append(f"{os.path.relpath(p, root)} and deploy/istio/bootstrap-stats-tags.yaml ship different stats_config")
    print(f"  {len(mine)} tags, compared with {refs} filter config(s)")
    return problems


def check_rules(root):
    rules = yaml.safe_load(read(os.path.join(root, "deploy/components/monitoring/prometheusrule.yaml")))
    problems = []
    names = set()
    for g in rules["spec"]["groups"]:
        for r in g["rules"]:
            key = r.get("alert") or r.get("record")
            if not key or not r.get("expr"):
                problems.append(f"group {g['name']}: rule without alert/record or expr")
                continue
            if key in names:
                problems.append(f"{key}: duplicated")
            names.add(key)
            if "for" in r and not re.fullmatch(r"\d+[smhd]", str(r["for"])):
                problems.append(f"{key}: bad duration {r['for']!r}")
            if "alert" in r:
                if "summary" not in r.get("annotations", {}):
                    problems.append(f"{key}: no summary annotation")
                if r.get("labels", {}).get("severity") not in ("info", "warning", "critical"):
                    problems.append(f"{key}: severity must be info, warning or critical")
            if r["expr"].count("(") != r["expr"].count(")"):
                problems.append(f"{key}: unbalanced parentheses")
    required = {"DnswardenCoreDNSPodSick", "DnswardenAllCoreDNSSick", "DnswardenHeadlessDrift",
                "DnswardenHealActionFailed", "DnswardenRunnerDown"}
    for r in sorted(required - names):
        problems.append(f"alert {r} missing")
    return problems


def check_dashboard(root):
    dash = json.loads(read(os.path.join(root, "deploy/components/monitoring/dashboards/dnswarden.json")))
    problems = []
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        if not p.get("targets") or any(not t.get("expr") for t in p["targets"]):
            problems.append(f"panel {p['title']!r}: no expression")
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for want in ("rtt", "outcomes", "verdict", "heal"):
        if want not in titles:
            problems.append(f"no panel about {want}")
    return problems


def grafana_to_promql(expr):
    """Substitutes Grafana's variables so that the expression is plain PromQL."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", "x", expr)


def check_promql(root):
    import promql_parser  # pinned in versions.env, installed by check.sh
    problems = []
    n = 0
    for where, expr in shipped_exprs(root):
        if where == "kind-cluster/lib/scn.py" or expr.startswith("label_values("):
            continue
        n += 1
        try:
            promql_parser.parse(grafana_to_promql(expr))
        except ValueError as e:
            problems.append(f"{where}: {e}: {expr}")
    print(f"  {n} PromQL expressions parsed")
    return problems


def main(argv):
    root, what, rest = argv[0], argv[1], argv[2:]
    fn = {"metrics": check_metrics, "labels": check_labels, "statstags": check_statstags,
          "rules": check_rules, "dashboard": check_dashboard, "promql": check_promql}.get(what)
    problems = check_rbac(root, rest) if what == "rbac" else fn(root)
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
