#!/usr/bin/env python3
"""Reads kind-cluster/scenarios.yaml and evaluates its checks against the runner's
/metrics text (and audit log lines) for kind-cluster/e2e.sh.

  scn.py list ENV                        scenario ids that run in ENV
  scn.py get ID PATH                     a value (dotted path) of a scenario, or ""
  scn.py default KEY                     a value of `defaults`
  scn.py hold ID PHASE                   seconds the checks must hold (0: once)
  scn.py check ID PHASE --now FILE [--before FILE] [--logs FILE] [--subject ROLE=RE]...
                                         exit 0 when every check of PHASE (expect or
                                         recover) holds; prints the failing ones
  scn.py value FILE SELECTOR             sum of the samples matching
                                         name{label="v",label=~"re"} (0 if none)

Only the standard library and PyYAML.
"""
import json
import os
import re
import sys

import yaml

SCENARIOS = None
LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
SAMPLE_RE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)')
SEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def load(path):
    global SCENARIOS
    with open(path, encoding="utf-8") as f:
        SCENARIOS = yaml.safe_load(f)
    return SCENARIOS


def scenario(sid):
    for s in SCENARIOS["scenarios"]:
        if s["id"] == sid:
            return s
    sys.exit(f"scn.py: no scenario {sid!r} in scenarios.yaml")


def parse_metrics(path):
    """[(name, {label: value}, float)] from Prometheus / OpenMetrics text."""
    out = []
    if not path:
        return out
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            continue
        labels = {k: v.encode().decode("unicode_escape") for k, v in LABEL_RE.findall(m.group(3) or "")}
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def select(samples, name, matchers):
    """Samples of `name` whose labels satisfy every (label, op, value) matcher."""
    res = []
    for n, labels, v in samples:
        if n != name:
            continue
        ok = True
        for label, op, want in matchers:
            have = labels.get(label, "")
            if op == "=" and have != want:
                ok = False
            elif op == "!=" and have == want:
                ok = False
            elif op == "=~" and not re.fullmatch(want, have):
                ok = False
        if ok:
            res.append((labels, v))
    return res


def total(samples, name, matchers):
    return sum(v for _, v in select(samples, name, matchers))


def increase(before, now, name, matchers):
    return total(now, name, matchers) - total(before, name, matchers)


def level(name):
    return SCENARIOS["verdict_levels"][name]


def run_check(check, subjects, before, now, logs):
    """(ok, description) for one check."""
    (kind, spec), = check.items()
    if kind == "hold_s":
        return True, f"hold {spec} s"
    role = spec.get("subject")
    regex = subjects.get(role, role) if role else ".*"
    if kind == "verdict":
        series = select(now, "dnswarden_verdict", [("scope", "=", spec["scope"]), ("name", "=~", regex)])
        desc = f"verdict {spec['scope']} {role}={regex!r}"
        if not series:
            return False, desc + ": no such series yet"
        values = {labels.get("name"): v for labels, v in series}
        if "is" in spec:
            want = level(spec["is"])
            return all(v == want for v in values.values()), f"{desc} is {spec['is']}: {values}"
        want = level(spec["at_least"])
        return max(values.values()) >= want, f"{desc} at least {spec['at_least']}: {values}"
    if kind == "reason":
        family = SCENARIOS.get("reasons", {}).get(spec["reason"], re.escape(spec["reason"]))
        d = increase(before, now, "dnswarden_reasons_total",
                     [("scope", "=", spec["scope"]), ("name", "=~", regex), ("reason", "=~", family)])
        return d > 0, f"reason {spec['reason']} on {spec['scope']} {role}={regex!r}: +{d:g}"
    if kind == "outcome":
        d = increase(before, now, "dnswarden_probe_outcomes_total",
                     [("server", "=~", regex), ("outcome", "=", spec["outcome"])])
        return d > 0, f"outcome {spec['outcome']} from {role}={regex!r}: +{d:g}"
    if kind == "heal":
        m = []
        for label in ("action", "result"):
            if spec.get(label, "*") != "*":
                m.append((label, "=", spec[label]))
        d = increase(before, now, "dnswarden_selfheal_actions_total", m)
        desc = f"heal {spec.get('action', '*')}/{spec.get('result', '*')}: +{d:g}"
        if "max" in spec:
            return d <= spec["max"], desc + f" (at most {spec['max']})"
        return d >= spec.get("min", 1), desc + f" (at least {spec.get('min', 1)})"
    if kind == "audit":
        found = audit_lines(logs, spec.get("action"), spec.get("result"), regex if role else None)
        return found > 0, f"audit {spec.get('action')}/{spec.get('result')} {role or ''}: {found} line(s)"
    return False, f"unknown check {kind!r}"


def audit_lines(path, action, result, regex):
    if not path:
        return 0
    n = 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        fields = rec.get("fields", rec)
        if rec.get("target") != "dnswarden::audit":
            continue
        if action and fields.get("action") != action:
            continue
        if result and fields.get("result") != result:
            continue
        if regex and not re.search(regex, str(fields.get("audit", "")) + " " + str(fields.get("reason", ""))):
            continue
        n += 1
    return n


def checks(s, phase):
    if phase == "expect":
        return s.get("expect", [])
    if "recover" in s:
        return s["recover"]
    # Default recovery: every verdict of the expect list's subjects back to ok.
    out = []
    for c in s.get("expect", []):
        (kind, spec), = c.items()
        if kind == "verdict":
            out.append({"verdict": {"scope": spec["scope"], "subject": spec["subject"], "is": "ok"}})
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    path = "scenarios.yaml"
    if argv[0] == "--file":
        path, argv = argv[1], argv[2:]
    cmd, args = argv[0], argv[1:]
    if cmd == "value":
        name, _, rest = args[1].partition("{")
        matchers = SEL_RE.findall(rest.rstrip("}"))
        print(f"{total(parse_metrics(args[0]), name, matchers):g}")
        return 0
    load(path)
    if cmd == "list":
        print("\n".join(s["id"] for s in SCENARIOS["scenarios"] if args[0] in s.get("envs", [])))
    elif cmd == "get":
        v = scenario(args[0])
        for key in args[1].split("."):
            v = v.get(key) if isinstance(v, dict) else None
        print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))
    elif cmd == "default":
        value = SCENARIOS["defaults"][args[0]]
        # SCN_TIMEOUT_MAX caps the timeouts for check.sh's run on a fake cluster.
        if args[0].endswith("timeout_s") and "SCN_TIMEOUT_MAX" in os.environ:
            value = min(value, int(os.environ["SCN_TIMEOUT_MAX"]))
        print(value)
    elif cmd == "hold":
        hold = max([c["hold_s"] for c in checks(scenario(args[0]), args[1]) if "hold_s" in c] or [0])
        # SCN_HOLD_MAX caps holds for check.sh's orchestration run on a fake cluster.
        print(min(hold, int(os.environ.get("SCN_HOLD_MAX", hold))))
    elif cmd == "check":
        s = scenario(args[0])
        phase = args[1]
        opts = {"--now": None, "--before": None, "--logs": None}
        subjects = dict((s.get("kind") or {}).get("subjects") or {})
        i = 2
        while i < len(args):
            if args[i] == "--subject":
                role, _, value = args[i + 1].partition("=")
                subjects[role] = value
            else:
                opts[args[i]] = args[i + 1]
            i += 2
        now = parse_metrics(opts["--now"])
        before = parse_metrics(opts["--before"])
        failed = 0
        for c in checks(s, phase):
            ok, desc = run_check(c, subjects, before, now, opts["--logs"])
            if not ok:
                failed += 1
                print(f"  pending: {desc}", file=sys.stderr)
        return 1 if failed else 0
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
