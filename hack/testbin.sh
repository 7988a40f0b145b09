#!/usr/bin/env bash
# Builds the real servers the tests run against from their Go modules, at pinned versions, and caches
# them outside the work tree. Prints the folder that holds them (the last line of stdout).
#
#   hack/testbin.sh            build what is missing, print the folder
#   hack/testbin.sh --print    print the folder only, build nothing
#
# The folder is $KAIP_TESTBIN (if set) or ${XDG_CACHE_HOME:-~/.cache}/kaip/testbin/<versions key>.
# When KUBEBUILDER_ASSETS names a folder with some of the binaries (envtest's etcd, kube-apiserver and
# kubectl, or all of them), those are taken from it and only what it lacks is built. Go is needed only
# to build: with everything in the folder (or in KUBEBUILDER_ASSETS) this runs without it. The Go build
# cache (go env GOCACHE) makes rebuilds cheap.
set -euo pipefail

K8S_VERSION="${KAIP_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${KAIP_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KAIP_KWOK_VERSION:-v0.8.0}"
MINIO_VERSION="${KAIP_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
FAKEGCS_VERSION="${KAIP_FAKEGCS_VERSION:-v1.56.1}"
# Not in the folder's key (adding it would rebuild everything): a different version is built over it.
KREW_VERSION="${KAIP_KREW_VERSION:-v0.4.3}"
# Kubeflow's operators (not in the key either; each records its version beside its binaries).
TRAINING_OPERATOR_VERSION="${KAIP_TRAINING_OPERATOR_VERSION:-v1.9.2}"
MPI_OPERATOR_VERSION="${KAIP_MPI_OPERATOR_VERSION:-v0.6.0}"
KATIB_VERSION="${KAIP_KATIB_VERSION:-v0.19.0}"
# Kubeflow Trainer v2 (TrainJob and its runtimes) and the JobSet controller it runs on.
TRAINER_VERSION="${KAIP_TRAINER_VERSION:-v2.0.0}"
JOBSET_VERSION="${KAIP_JOBSET_VERSION:-v0.8.2}"
# kube-state-metrics: the node metrics (kube_node_status_condition) of the alert-route test.
KSM_VERSION="${KAIP_KSM_VERSION:-v2.13.0}"
# Queues and gang scheduling for `kubectl ai-platform --queue/--gang`: Kueue and the coscheduling scheduler
# (with its PodGroup controller) of scheduler-plugins.
KUEUE_VERSION="${KAIP_KUEUE_VERSION:-v0.17.0}"
SCHEDULER_PLUGINS_VERSION="${KAIP_SCHEDULER_PLUGINS_VERSION:-v0.30.6}"

key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_gcs-${FAKEGCS_VERSION}_minio-${MINIO_VERSION##*-}"
out="${KAIP_TESTBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/kaip/testbin/$key}"

if [[ "${1:-}" == "--print" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$out"
log() { echo "testbin: $*" >&2; }

# One build at a time: a second caller waits for the first and then finds the binaries built.
exec 9>"$out/.lock"
flock 9

BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok fake-gcs-server minio kubectl-krew
  validate-krew-manifest training-operator mpi-operator katib-controller file-metricscollector katib-db-manager
  katib-suggestion-goptuna kube-state-metrics kueue scheduler-plugins scheduler-plugins-controller trainer-controller-manager jobset-controller)

# What the builds below leave beside the binaries (the stamps say which version or recipe built them).
EXTRAS=(kwok-stages.yaml kwok-crds training-operator-manifests mpi-operator-manifests katib-manifests krew.version
  training-operator.version mpi-operator.version katib.version kueue-manifests kueue.version scheduler-plugins-manifests
  scheduler-plugins.version trainer-manifests trainer.version jobset-manifests
  jobset.version volcano-crds volcano.version)

# Reuse envtest's binaries (or a whole folder of ours) where the caller has them.
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in "${BINARIES[@]}" "${EXTRAS[@]}"; do
    if [[ -e "$KUBEBUILDER_ASSETS/$b" && ! -e "$out/$b" ]]; then
      ln -s "$KUBEBUILDER_ASSETS/$b" "$out/$b"
      log "using $b from KUBEBUILDER_ASSETS"
    fi
  done
fi

# Every use of Go goes through here, and only what is missing is built: a cached folder needs no Go.
# stderr is kept on fd 8, since the builds below silence theirs.
exec 8>&2
go() {
  if ! type -P go >/dev/null; then
    echo "testbin: go is not on PATH, and $out lacks what the line above names: install Go 1.24 or newer," \
      "or set KUBEBUILDER_ASSETS to a folder that holds it" >&8
    exit 3
  fi
  command go "$@"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A throwaway main module that requires MOD@VERSION and builds PKGS into $out.
# Extra go.mod lines (replace directives) come on stdin.
build_module() {
  local name="$1" mod="$2" version="$3" ldflags="$4"; shift 4
  local dir="$work/$name"
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init "kaip.dev/testbin/$name" >/dev/null 2>&1
    cat >>go.mod
    GOFLAGS=-mod=mod go get "$mod@$version" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "$mod@$version"
    for pkg in "$@"; do
      GOFLAGS=-mod=mod go get "$pkg@$version" >/dev/null 2>&1 || true
    done
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@"
  )
}

need() { for b in "$@"; do [[ -x "$out/$b" ]] || return 0; done; return 1; }

if need kube-apiserver kube-controller-manager kube-scheduler kubectl; then
  log "building Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)"
  # k8s.io/kubernetes points its staging modules at ./staging with v0.0.0; map each to its release.
  staging_version="v0.${K8S_VERSION#v1.}"
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  replaces="$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  vpkg="k8s.io/component-base/version"
  ld="-X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for m in $replaces; do echo "replace $m => $m $staging_version"; done | build_module kubernetes \
    k8s.io/kubernetes "$K8S_VERSION" "$ld" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
fi

if need etcd; then
  log "building etcd $ETCD_VERSION"
  </dev/null build_module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "" go.etcd.io/etcd/server/v3
  mv "$out/server" "$out/etcd"
fi

if need kwok; then
  log "building kwok $KWOK_VERSION"
  </dev/null build_module kwok sigs.k8s.io/kwok "$KWOK_VERSION" "" sigs.k8s.io/kwok/cmd/kwok
fi

if [[ ! -s "$out/kwok-stages.yaml" ]]; then  # not need(): a YAML file is not executable
  log "writing kwok-stages.yaml from kwok's module"
  # kwok simulates nothing without stages; take the "fast" node and pod stages its module ships.
  stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [[ -d "$stages" ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  for f in "$stages"/node/fast/node-initialize.yaml "$stages"/node/heartbeat-with-lease/*.yaml "$stages"/pod/fast/*.yaml; do
    echo "---"
    cat "$f"
  done >"$out/kwok-stages.yaml"
fi

if [[ ! -e "$out/kwok-crds/kwok.x-k8s.io_logs.yaml" ]]; then
  log "copying kwok's CRDs from its module"
  # kwok's own CRDs (Logs and friends): with --enable-crds a kwok reads them from the API server.
  bases="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/crd/bases"
  [[ -d "$bases" ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  mkdir -p "$out/kwok-crds" && cp "$bases"/*.yaml "$out/kwok-crds/" && chmod u+w "$out/kwok-crds"/*.yaml
fi

if need fake-gcs-server; then
  log "building fake-gcs-server $FAKEGCS_VERSION"
  </dev/null build_module fakegcs github.com/fsouza/fake-gcs-server "$FAKEGCS_VERSION" "" github.com/fsouza/fake-gcs-server
fi

if need minio; then
  log "building minio $MINIO_VERSION"
  </dev/null build_module minio github.com/minio/minio "$MINIO_VERSION" "" github.com/minio/minio
fi

if need kubectl-krew validate-krew-manifest || [[ "$(cat "$out/krew.version" 2>/dev/null)" != "$KREW_VERSION" ]]; then
  # krew itself (installed as kubectl-krew, so that `kubectl krew` finds it) and its manifest validator.
  log "building krew $KREW_VERSION"
  </dev/null build_module krew sigs.k8s.io/krew "$KREW_VERSION" "-X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" \
    sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest
  mv "$out/krew" "$out/kubectl-krew"
  echo "$KREW_VERSION" >"$out/krew.version"
fi

# The upstream YAML (CRDs, webhook configurations, Katib's config) ships inside each module zip: copy
# the folders the test bed reads next to the binaries, from the same module version.
copy_manifests() {
  local mod="$1" version="$2" dest="$3"; shift 3
  local dir
  dir="$(go mod download -json "$mod@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  rm -rf "$out/$dest" && mkdir -p "$out/$dest"
  for sub in "$@"; do
    mkdir -p "$out/$dest/$(dirname "$sub")"
    cp -R "$dir/$sub" "$out/$dest/$sub"
  done
  chmod -R u+w "$out/$dest"
}

built_at() { [[ "$(cat "$out/$1.version" 2>/dev/null)" == "$2" ]]; }

if need training-operator || ! built_at training-operator "$TRAINING_OPERATOR_VERSION"; then
  log "building Kubeflow training-operator $TRAINING_OPERATOR_VERSION"
  </dev/null build_module training-operator github.com/kubeflow/training-operator "$TRAINING_OPERATOR_VERSION" "" \
    github.com/kubeflow/training-operator/cmd/training-operator.v1
  mv "$out/training-operator.v1" "$out/training-operator"
  copy_manifests github.com/kubeflow/training-operator "$TRAINING_OPERATOR_VERSION" training-operator-manifests \
    manifests/base/crds manifests/base/webhook
  echo "$TRAINING_OPERATOR_VERSION" >"$out/training-operator.version"
fi

if need mpi-operator || ! built_at mpi-operator "$MPI_OPERATOR_VERSION"; then
  log "building Kubeflow mpi-operator $MPI_OPERATOR_VERSION"
  </dev/null build_module mpi-operator github.com/kubeflow/mpi-operator "$MPI_OPERATOR_VERSION" "" \
    github.com/kubeflow/mpi-operator/cmd/mpi-operator
  copy_manifests github.com/kubeflow/mpi-operator "$MPI_OPERATOR_VERSION" mpi-operator-manifests manifests/base
  echo "$MPI_OPERATOR_VERSION" >"$out/mpi-operator.version"
fi

# Katib: the controller, the file metrics collector, the DB manager (observation logs, in PostgreSQL) and a
# suggestion service. The stamp names the recipe as well as the version: a cache built by an older recipe
# (without the DB manager and the suggestion service) is rebuilt.
KATIB_STAMP="$KATIB_VERSION (controller, file-metricscollector, db-manager, suggestion-goptuna)"
if need katib-controller file-metricscollector katib-db-manager katib-suggestion-goptuna \
  || ! built_at katib "$KATIB_STAMP"; then
  log "building Katib $KATIB_VERSION (controller, file metrics collector, DB manager, goptuna suggestion service)"
  </dev/null build_module katib github.com/kubeflow/katib "$KATIB_VERSION" "" \
    github.com/kubeflow/katib/cmd/katib-controller/v1beta1 \
    github.com/kubeflow/katib/cmd/metricscollector/v1beta1/file-metricscollector
  mv "$out/v1beta1" "$out/katib-controller"
  </dev/null build_module katib-db-manager github.com/kubeflow/katib "$KATIB_VERSION" "" \
    github.com/kubeflow/katib/cmd/db-manager/v1beta1
  mv "$out/v1beta1" "$out/katib-db-manager"
  # Katib's goptuna suggestion service (random, tpe, cmaes, sobol) as upstream's package serves it, from a
  # main of ours: upstream's cmd/suggestion/goptuna/v1beta1 listens on the fixed 0.0.0.0:6789, which
  # would take that port on every address of the host; this one listens where --listen-address says.
  mkdir -p "$work/katib-suggestion-goptuna"
  cat >"$work/katib-suggestion-goptuna/main.go" <<'GO'
package main

import (
	"context"
	"flag"
	"net"

	health "github.com/kubeflow/katib/pkg/apis/manager/health"
	api "github.com/kubeflow/katib/pkg/apis/manager/v1beta1"
	goptuna "github.com/kubeflow/katib/pkg/suggestion/v1beta1/goptuna"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
)

type serving struct{}

func (serving) Check(context.Context, *health.HealthCheckRequest) (*health.HealthCheckResponse, error) {
	return &health.HealthCheckResponse{Status: health.HealthCheckResponse_SERVING}, nil
}

func main() {
	address := flag.String("listen-address", "127.0.0.1:6789", "host:port to serve the Suggestion API on")
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		klog.Fatalf("listen on %s: %v", *address, err)
	}
	server := grpc.NewServer()
	api.RegisterSuggestionServer(server, goptuna.NewSuggestionService())
	health.RegisterHealthServer(server, serving{})
	klog.Infof("goptuna suggestion service on %s", *address)
	if err := server.Serve(listener); err != nil {
		klog.Fatalf("serve: %v", err)
	}
}
GO
  </dev/null build_module katib-suggestion-goptuna github.com/kubeflow/katib "$KATIB_VERSION" "" .
  copy_manifests github.com/kubeflow/katib "$KATIB_VERSION" katib-manifests \
    manifests/v1beta1/components/crd manifests/v1beta1/components/webhook \
    manifests/v1beta1/components/controller manifests/v1beta1/installs/katib-standalone
  echo "$KATIB_STAMP" >"$out/katib.version"
fi

# Kubeflow Trainer v2: the controller manager (TrainJob, TrainingRuntime, ClusterTrainingRuntime, its webhooks),
# its CRDs and the upstream ClusterTrainingRuntimes (torch-distributed, deepspeed-distributed, mpi-distributed, ...).
if need trainer-controller-manager || ! built_at trainer "$TRAINER_VERSION"; then
  log "building Kubeflow Trainer $TRAINER_VERSION (trainer-controller-manager)"
  </dev/null build_module trainer github.com/kubeflow/trainer/v2 "$TRAINER_VERSION" "" \
    github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager
  copy_manifests github.com/kubeflow/trainer/v2 "$TRAINER_VERSION" trainer-manifests \
    manifests/base/crds manifests/base/runtimes manifests/base/webhook
  echo "$TRAINER_VERSION" >"$out/trainer.version"
fi

# JobSet, which Trainer v2 renders every TrainJob into: its controller (the module's root main.go) and CRD.
if need jobset-controller || ! built_at jobset "$JOBSET_VERSION"; then
  log "building JobSet $JOBSET_VERSION (controller)"
  </dev/null build_module jobset sigs.k8s.io/jobset "$JOBSET_VERSION" "" sigs.k8s.io/jobset
  mv "$out/jobset" "$out/jobset-controller"
  copy_manifests sigs.k8s.io/jobset "$JOBSET_VERSION" jobset-manifests config/components/crd/bases \
    config/components/webhook
  echo "$JOBSET_VERSION" >"$out/jobset.version"
fi

if need kube-state-metrics; then
  log "building kube-state-metrics $KSM_VERSION (the alert-route test's node metrics)"
  </dev/null build_module kube-state-metrics k8s.io/kube-state-metrics/v2 "$KSM_VERSION" "" k8s.io/kube-state-metrics/v2
  [[ -x "$out/kube-state-metrics" ]] || mv "$out/v2" "$out/kube-state-metrics"
fi

# Kueue: the controller manager (cmd/kueue), its CRDs, webhook configurations and default configuration.
if need kueue || ! built_at kueue "$KUEUE_VERSION"; then
  log "building Kueue $KUEUE_VERSION"
  </dev/null build_module kueue sigs.k8s.io/kueue "$KUEUE_VERSION" "-X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" \
    sigs.k8s.io/kueue/cmd/kueue
  copy_manifests sigs.k8s.io/kueue "$KUEUE_VERSION" kueue-manifests \
    config/components/crd/bases config/components/webhook config/components/manager
  echo "$KUEUE_VERSION" >"$out/kueue.version"
fi

# scheduler-plugins: kube-scheduler with the Coscheduling plugin and the PodGroup controller. The module pins
# its Kubernetes staging modules with replace directives, which a requiring module must repeat.
if need scheduler-plugins scheduler-plugins-controller || ! built_at scheduler-plugins "$SCHEDULER_PLUGINS_VERSION"; then
  log "building scheduler-plugins $SCHEDULER_PLUGINS_VERSION (scheduler, controller)"
  gomod="$(go mod download -json "sigs.k8s.io/scheduler-plugins@$SCHEDULER_PLUGINS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  sed -n '/^replace (/,/^)/p' "$gomod" | build_module scheduler-plugins sigs.k8s.io/scheduler-plugins \
    "$SCHEDULER_PLUGINS_VERSION" "" sigs.k8s.io/scheduler-plugins/cmd/scheduler sigs.k8s.io/scheduler-plugins/cmd/controller
  mv "$out/scheduler" "$out/scheduler-plugins"
  mv "$out/controller" "$out/scheduler-plugins-controller"
  copy_manifests sigs.k8s.io/scheduler-plugins "$SCHEDULER_PLUGINS_VERSION" scheduler-plugins-manifests \
    config/crd/bases manifests/coscheduling
  echo "$SCHEDULER_PLUGINS_VERSION" >"$out/scheduler-plugins.version"
fi

# PostgreSQL behind Katib's DB manager: the tests start a server of their own (initdb in a temporary folder,
# a free port on 127.0.0.1), so only the programs are needed. Debian's package, installed when we may.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing PostgreSQL (Debian's postgresql package) for Katib's DB manager"
    apt-cache policy postgresql 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  else
    log "PostgreSQL is not installed (Katib's DB manager needs it): as root run 'apt-get install -y postgresql'," \
      "or put a folder with initdb and postgres on PATH; the Katib experiment tests fail until then"
  fi
fi

# Prometheus and Alertmanager for the alert-route tests (tests/integration/remediation/test_alert_route.py):
# Debian's packages (bookworm: prometheus 2.42.0+ds-5+deb12u1, prometheus-alertmanager 0.25.0-1+b4),
# installed when we may; the tests start their own servers on loopback (the packages' services are not
# used), and skip when the programs are missing. $KAIP_PROMETHEUS / $KAIP_ALERTMANAGER name other builds.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Prometheus and Alertmanager (Debian's prometheus, prometheus-alertmanager) for the alert route"
    apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager >&2
  else
    log "Prometheus/Alertmanager are not installed: as root run" \
      "'apt-get install -y prometheus prometheus-alertmanager'; the alert-route test is skipped until then"
  fi
fi

# Volcano's published PodGroup CRD (scheduling.volcano.sh/v1beta1), which training-operator makes from a job's
# runPolicy.schedulingPolicy when run with --gang-scheduler-name=volcano: kaip's rendering for --scheduler volcano
# is checked against it (tests/integration/aiplatform/test_volcano_rendering.py). Copied only, nothing is built.
# v1.10.0: the release nearest training-operator v1.9.2's volcano.sh/apis v1.9.0 that the Go module proxy serves
# (it serves no volcano.sh/volcano v1.9.x); its PodGroup schema is the same as v1.8.2's (descriptions aside).
VOLCANO_VERSION="${KAIP_VOLCANO_VERSION:-v1.10.0}"
VOLCANO_PODGROUP_CRD=config/crd/volcano/bases/scheduling.volcano.sh_podgroups.yaml
if [[ ! -s "$out/volcano-crds/$VOLCANO_PODGROUP_CRD" ]] || ! built_at volcano "$VOLCANO_VERSION"; then
  log "copying Volcano $VOLCANO_VERSION's PodGroup CRD from its module"
  copy_manifests volcano.sh/volcano "$VOLCANO_VERSION" volcano-crds "$VOLCANO_PODGROUP_CRD"
  echo "$VOLCANO_VERSION" >"$out/volcano.version"
fi

for b in "${BINARIES[@]}"; do
  [[ -x "$out/$b" ]] || { log "missing $b after the build"; exit 1; }
done
echo "$out"
