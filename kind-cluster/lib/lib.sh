# shellcheck shell=bash
# Helpers for kind-cluster/e2e.sh: logging, condition waits, kubectl access to the
# runner's /metrics and logs, CoreDNS Corefile switching. Sourced, not executed.
#
# Expects: KUBECONFIG (the e2e cluster's, never the user's), KUBECTL (path),
# SCN (command prefix for lib/scn.py), HERE (kind-cluster/), ART (artifact dir).

log() { printf '%s [e2e] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

# wait_for TIMEOUT_S DESCRIPTION CMD [ARGS...]
# Polls CMD until it succeeds or TIMEOUT_S pass. The pause between polls is the
# polling interval of a condition wait, never a stand-in for one.
wait_for() {
    local timeout=$1 desc=$2; shift 2
    local start now out
    start=$(date +%s)
    log "waiting (<= ${timeout}s): $desc"
    while true; do
        if out=$("$@" 2>&1); then
            log "ok after $(( $(date +%s) - start ))s: $desc"
            return 0
        fi
        now=$(date +%s)
        if (( now - start >= timeout )); then
            log "timed out after ${timeout}s: $desc"
            [ -n "$out" ] && printf '%s\n' "$out" >&2
            return 1
        fi
        sleep "${POLL_S:-2}"
    done
}

# hold_for SECONDS DESCRIPTION CMD [ARGS...]
# CMD must succeed on every poll for SECONDS (a clean run raises no alarm).
hold_for() {
    local seconds=$1 desc=$2; shift 2
    local start out
    start=$(date +%s)
    log "holding (${seconds}s): $desc"
    while (( $(date +%s) - start < seconds )); do
        if ! out=$("$@" 2>&1); then
            log "broke after $(( $(date +%s) - start ))s: $desc"
            printf '%s\n' "$out" >&2
            return 1
        fi
        sleep "${POLL_S:-2}"
    done
    log "held ${seconds}s: $desc"
}

# live_pods NAMESPACE SELECTOR: names of the pods that are not being deleted, Ready
# ones first.
live_pods() {
    k -n "$1" get pods -l "$2" -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
def ready(p):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in p.get("status", {}).get("conditions", []))
live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
for p in sorted(live, key=lambda p: not ready(p)):
    print(p["metadata"]["name"])
'
}

# The runner pod (the kind overlay runs one replica).
runner_pod() { live_pods dnswarden app.kubernetes.io/name=dnswarden | sed -n 1p; }  # reads all input: head would SIGPIPE the writer under pipefail

# fetch_metrics FILE: the runner's /metrics through the API server's pod proxy (no
# port-forward process to manage; works while the runner's egress is cut).
fetch_metrics() {
    local pod
    pod=$(runner_pod)
    [ -n "$pod" ] || return 1
    k get --raw "/api/v1/namespaces/dnswarden/pods/${pod}:9153/proxy/metrics" >"$1.tmp" && mv "$1.tmp" "$1"
}

runner_ready() {
    local pod
    pod=$(runner_pod)
    [ -n "$pod" ] && k get --raw "/api/v1/namespaces/dnswarden/pods/${pod}:9153/proxy/readyz" >/dev/null
}

# fetch_logs SINCE_RFC3339 FILE: the runner's JSON log lines since a time.
fetch_logs() {
    k -n dnswarden logs deploy/dnswarden --since-time="$1" >"$2" 2>/dev/null || true
}

coredns_pods() { live_pods kube-system k8s-app=kube-dns; }

# A regular expression matching the current CoreDNS pods and the kube-dns ClusterIP
# server (the runner names pod servers by pod name, the ClusterIP "ns/service").
current_servers_re() {
    local re="kube-system/kube-dns" p
    for p in $(coredns_pods); do re="$re|$p"; done
    printf '(%s)' "$re"
}

coredns_ready_count() {
    k -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}'
}

# apply_corefile MAIN_SNIPPET ERRATIC_SNIPPET: renders manifests/Corefile with the
# snippets at its two markers, replaces the coredns ConfigMap, and nudges the kubelet
# (a pod annotation change makes it resync the ConfigMap volume at once instead of
# after its sync period). CoreDNS's `reload 2s` then loads it.
apply_corefile() {
    local main=$1 erratic=${2:-drop 0} out="$ART/Corefile.current"
    MAIN="$main" ERRATIC="$erratic" python3 - "$HERE/manifests/Corefile" >"$out" <<'PY'
import os, sys
text = open(sys.argv[1], encoding="utf-8").read()
text = text.replace("#@MAIN_FAULTS@", os.environ["MAIN"])
text = text.replace("#@ERRATIC_FAULTS@", os.environ["ERRATIC"])
sys.stdout.write(text)
PY
    k -n kube-system create configmap coredns --from-file=Corefile="$out" \
        --dry-run=client -o yaml | k replace -f - >/dev/null
    k -n kube-system annotate pods -l k8s-app=kube-dns --overwrite \
        "dnswarden.io/e2e-corefile=$(sha256sum "$out" | cut -c1-16)" >/dev/null
}

collect_diagnostics() {
    local dir=$1
    mkdir -p "$dir"
    log "collecting diagnostics into $dir"
    k get nodes -o wide >"$dir/nodes.txt" 2>&1 || true
    k get all,endpointslices,networkpolicies,leases -A -o wide >"$dir/objects.txt" 2>&1 || true
    k get events -A --sort-by=.lastTimestamp >"$dir/events.txt" 2>&1 || true
    k -n dnswarden describe pods >"$dir/dnswarden-describe.txt" 2>&1 || true
    k -n kube-system describe pods -l k8s-app=kube-dns >"$dir/coredns-describe.txt" 2>&1 || true
    k -n dnswarden logs deploy/dnswarden --all-containers --tail=-1 >"$dir/dnswarden.log" 2>&1 || true
    k -n dnswarden logs deploy/dnswarden --previous --tail=-1 >"$dir/dnswarden-previous.log" 2>&1 || true
    k -n kube-system logs -l k8s-app=kube-dns --prefix --tail=-1 >"$dir/coredns.log" 2>&1 || true
    k -n kube-system get configmap coredns -o yaml >"$dir/coredns-configmap.yaml" 2>&1 || true
    fetch_metrics "$dir/metrics.prom" 2>/dev/null || true
}
