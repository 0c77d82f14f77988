#!/usr/bin/env python3
"""A stand-in for docker, kind and kubectl, used only by check.sh to run e2e.sh's
orchestration end to end where no Docker engine exists (CI).

It keeps a small state file (FAKE_STATE) of what e2e.sh did to the "cluster"
(Corefile snippets, CoreDNS replicas, a frozen pod, the runner's NetworkPolicy,
StatefulSet replicas) and answers /metrics the way the design says the runner would
(verdicts, reasons, outcomes, heal decisions with audit log lines). It proves the
plumbing of e2e.sh, lib.sh and scn.py (every command, argument and wait), not the
runner's behaviour: that needs a real cluster.

Invoked through symlinks named docker, kind and kubectl. kubectl kustomize is passed
to the real kubectl (REAL_KUBECTL).
"""
import json
import os
import re
import sys

STATE = os.environ["FAKE_STATE"]


def load():
    try:
        with open(STATE, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {
            "main": "", "erratic": "drop 0", "coredns": 2, "pods": ["coredns-aaaa-1", "coredns-aaaa-2"],
            "next_pod": 3, "paused": None, "paused_ticks": 0, "cut": False, "db": 2,
            "counters": {}, "audit": [], "evicted": None, "verified": False,
        }


def save(s):
    tmp = f"{STATE}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(s, f)
    os.replace(tmp, STATE)


def bump(s, key, n=5):
    s["counters"][key] = s["counters"].get(key, 0) + n


def audit(s, action, result, reason):
    rec = {"action": action, "result": result, "reason": reason}
    s["audit"].append(json.dumps({"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "target": "dnswarden::audit",
                                  "message": "self-heal decision", "action": action, "result": result,
                                  "reason": reason, "audit": json.dumps(rec)}))


def metrics(s):
    """One scrape: advance the simulated runner one step, then encode."""
    servers = (s["pods"] if s["coredns"] else []) + ["kube-system/kube-dns"]
    targets = ["erratic-probe", "e2e-web-a", "e2e-db-a", "e2e-db-0-a", "e2e-ext-cname", "kubernetes-api"]
    sv = {n: 0 for n in servers}
    tv = {n: 0 for n in targets}
    if "delay" in s["erratic"]:
        tv["erratic-probe"] = 1
        bump(s, "|".join(("reason", "target", "erratic-probe", "rtt_spike")))
    if re.search(r"drop [1-9]", s["erratic"]):
        tv["erratic-probe"] = 1
        bump(s, "|".join(("reason", "target", "erratic-probe", "loss")))
        for n in servers:
            bump(s, "|".join(("outcome", n, "timeout")))
    if "rcode SERVFAIL" in s["main"]:
        tv["e2e-web-a"] = 2
        bump(s, "|".join(("reason", "target", "e2e-web-a", "servfail")))
    if "answer" in s["main"] and s["db"] == 3:
        tv["e2e-db-a"] = 1
        bump(s, "|".join(("reason", "target", "e2e-db-a", "drift")))
    if s["paused"] and s["paused"] in s["pods"]:
        sv[s["paused"]] = 2
        bump(s, "|".join(("reason", "server", s["paused"], "loss")))
        s["paused_ticks"] += 1
        # Persistently sick and NotReady: evict (FAKE_NO_HEAL: a runner that never
        # heals, so that check.sh sees e2e.sh fail).
        if s["paused_ticks"] >= 3 and not os.environ.get("FAKE_NO_HEAL"):
            s["pods"] = [p for p in s["pods"] if p != s["paused"]] + [f"coredns-aaaa-{s['next_pod']}"]
            s["next_pod"] += 1
            s["evicted"] = s["paused"]
            bump(s, "|".join(("heal", "evict_pod", "success")), 1)
            audit(s, "evict_pod", "success", f"pod {s['paused']} has been critical and Kubernetes agrees")
    elif s["evicted"] and not s["verified"]:
        s["verified"] = True
        bump(s, "|".join(("heal", "evict_pod", "recovered")), 1)
        audit(s, "evict_pod", "recovered", f"evict_pod {s['evicted']}: recovered")
    if not s["coredns"]:
        sv["kube-system/kube-dns"] = 2
        bump(s, "|".join(("outcome", "kube-system/kube-dns", "timeout")))
    if s["cut"]:
        for n in sv:
            sv[n] = 2
        if not any('"local_problem"' in a for a in s["audit"][-1:]):
            bump(s, "|".join(("heal", "local_problem", "reported")), 1)
            audit(s, "local_problem", "reported", "every CoreDNS pod fails from here: local problem")
    out = ["# TYPE dnswarden_verdict gauge"]
    for n, v in sv.items():
        out.append(f'dnswarden_verdict{{scope="server",name="{n}"}} {v}')
    for n, v in tv.items():
        out.append(f'dnswarden_verdict{{scope="target",name="{n}"}} {v}')
    for key, v in sorted(s["counters"].items()):
        k = key.split("|")
        if k[0] == "reason":
            out.append(f'dnswarden_reasons_total{{scope="{k[1]}",name="{k[2]}",reason="{k[3]}"}} {v}')
        elif k[0] == "outcome":
            out.append(f'dnswarden_probe_outcomes_total{{server="{k[1]}",target="erratic-probe",outcome="{k[2]}"}} {v}')
        elif k[0] == "heal":
            out.append(f'dnswarden_selfheal_actions_total{{action="{k[1]}",result="{k[2]}"}} {v}')
    out.append("# EOF")
    return "\n".join(out) + "\n"


def pods_json(names, ready=True):
    return json.dumps({"items": [{"metadata": {"name": n}, "status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}} for n in names]})


def kubectl(args, s):
    a = list(args)
    if "--kubeconfig" in a:
        i = a.index("--kubeconfig")
        del a[i:i + 2]
    ns = None
    if "-n" in a:
        i = a.index("-n")
        ns = a[i + 1]
        del a[i:i + 2]
    verb = a[0] if a else ""
    joined = " ".join(a)
    if verb == "version":
        print("Client Version: fake")
    elif verb == "kustomize":
        os.execv(os.environ["REAL_KUBECTL"], [os.environ["REAL_KUBECTL"]] + a)
    elif verb == "create" and "configmap" in a:
        src = [x for x in a if x.startswith("--from-file=Corefile=")][0].split("=", 2)[2]
        print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
                          "data": {"Corefile": open(src).read()}}))
    elif verb == "replace":
        corefile = json.loads(sys.stdin.read())["data"]["Corefile"]
        main = corefile.split("ready\n", 1)[1].split("kubernetes cluster.local", 1)[0]
        s["main"] = main.strip()
        s["erratic"] = corefile.split("erratic {", 1)[1].split("}", 1)[0].strip()
    elif verb == "scale":
        n = int([x for x in a if x.startswith("--replicas=")][0].split("=")[1])
        if "coredns" in joined:
            s["coredns"] = n
            if n and len(s["pods"]) < n:
                s["pods"] = [f"coredns-bbbb-{i}" for i in range(n)]
        else:
            s["db"] = n
    elif verb == "patch" and "networkpolicy" in a:
        s["cut"] = True
    elif verb == "apply":
        if "--force-conflicts" in a:
            sys.stdin.read()
            s["cut"] = False
    elif verb in ("annotate", "rollout", "describe"):
        pass
    elif verb == "logs":
        if ns == "dnswarden":
            print("\n".join(s["audit"]))
    elif verb == "get":
        if "--raw" in a:
            path = a[a.index("--raw") + 1]
            if path.endswith("/readyz"):
                print("ready")
            elif path.endswith("/metrics"):
                sys.stdout.write(metrics(s))
            return 0
        if "pods" in a and "-o" in a and a[a.index("-o") + 1] == "json":
            if ns == "kube-system":
                print(pods_json(s["pods"] if s["coredns"] else []))
            else:
                print(pods_json(["dnswarden-7d9f-abcde"]))
        elif "deploy" in a and "coredns" in a:
            print(len(s["pods"]) if s["coredns"] else 0, end="")
        elif "statefulset" in a:
            print(s["db"], end="")
        elif "pods" in a and "app=db" in joined:
            print("\n".join(f"10.244.1.{10 + i}" for i in range(s["db"])))
        elif a[1:2] == ["pod"]:
            pod = a[2]
            if pod not in s["pods"]:
                print(f'Error from server (NotFound): pods "{pod}" not found', file=sys.stderr)
                return 1
            if "nodeName" in joined:
                print("dnswarden-e2e-worker", end="")
            elif "containerID" in joined:
                print(f"containerd://cid-{pod}", end="")
        elif "networkpolicy" in a:
            print("{}")
        else:
            print("fake: nothing here")
    else:
        print(f"fake kubectl: unhandled {a}", file=sys.stderr)
        return 1
    return 0


def docker(args, s):
    if args[:1] == ["version"]:
        print("27.3.1")
    elif args[:1] == ["build"]:
        print("fake build", file=sys.stderr)
    elif args[:2] == ["image", "inspect"]:
        fmt = args[args.index("--format") + 1]
        print("1" if "Layers" in fmt else "65532:65532")
    elif args[:1] == ["create"]:
        print("fakecontainer")
    elif args[:1] == ["export"]:
        import io
        import tarfile
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"\0asm\1\0\0\0"
            info = tarfile.TarInfo("plugin.wasm")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        sys.stdout.buffer.write(buf.getvalue())
    elif args[:1] == ["rm"]:
        pass
    elif args[:1] == ["exec"] and "ctr" in args:
        cid = args[-1]
        pod = cid[len("cid-"):]
        if "pause" in args:
            s["paused"] = pod
            s["paused_ticks"] = 0
        elif "resume" in args:
            s["paused"] = None
    else:
        print(f"fake docker: unhandled {args}", file=sys.stderr)
        return 1
    return 0


def kind(args, s):
    if args[:1] == ["version"]:
        print(f"kind {os.environ['FAKE_KIND_VERSION']} go1.25 linux/amd64")
    elif args[:2] == ["get", "clusters"]:
        pass
    elif args[:1] in (["create"], ["delete"], ["load"]):
        if args[:1] == ["create"]:
            cfg = args[args.index("--kubeconfig") + 1]
            open(cfg, "w").write("# fake\n")
    else:
        print(f"fake kind: unhandled {args}", file=sys.stderr)
        return 1
    return 0


def main():
    import fcntl
    tool = os.path.basename(sys.argv[0])
    # Piped invocations (create | replace) run at once: one at a time on the state,
    # but a reader of stdin must not hold the lock while its writer needs it.
    stdin_data = sys.stdin.read() if tool == "kubectl" and "-f" in sys.argv and "-" in sys.argv else None
    if stdin_data is not None:
        import io
        sys.stdin = io.StringIO(stdin_data)
    with open(STATE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = load()
        rc = {"kubectl": kubectl, "docker": docker, "kind": kind}[tool](sys.argv[1:], s)
        save(s)
    return rc


if __name__ == "__main__":
    sys.exit(main())
