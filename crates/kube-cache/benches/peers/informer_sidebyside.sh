#!/bin/bash
# One sitting: peers and ours against the real kube-apiserver, interleaved, R rounds.
# Peers: shared/peers/go/peerbench_main.go built as PEERBENCH, shared/peers/kube-rs as PEERKUBE;
# ours: cargo build --release -p kube-cache --features rest --example informer_sync.
export KUBECONFIG=${KUBECONFIG:-/tmp/realk8s/kubeconfig}
PID=${SERVER_PID:-$(cat /tmp/realk8s/kube-apiserver.pid)}
OURS=${OURS:-$(dirname "$0")/../../../../target/release/examples/informer_sync}
R=${R:-3}
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
for round in $(seq 1 $R); do
  for v in "go json" "go proto" "go proto,stream" "rs default" "rs strip,stream" "ours typed" "ours compact" "ours typed+stream" "ours compact+stream"; do
    set -- $v
    s0=$(cpu)
    case $1 in
      go) if [[ $2 == *stream* ]]; then out=$(KUBE_FEATURE_WatchListClient=true timeout 120 ${PEERBENCH:-/tmp/realk8s/bin/peerbench} ${2%,stream} 2>&1 | grep RESULT); else out=$(KUBE_FEATURE_WatchListClient=false timeout 120 ${PEERBENCH:-/tmp/realk8s/bin/peerbench} $2 2>&1 | grep RESULT); fi ;;
      rs) m=$2; [ $m = default ] && m=""; out=$(timeout 120 ${PEERKUBE:-/tmp/peer-kube/target/release/peer-kube} "$m" 2>&1 | grep RESULT) ;;
      ours) a=""; [[ $2 == *compact* ]] && a="$a --compact"; [[ $2 == *stream* ]] && a="$a --streaming"; out=$(timeout 120 $OURS sync --kubeconfig $KUBECONFIG $a 2>&1 | grep RESULT) ;;
    esac
    s1=$(cpu)
    echo "$v | $out | server_cpu_ms=$(( (s1-s0)*10 ))"
  done
done
