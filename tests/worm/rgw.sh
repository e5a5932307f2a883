#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (one monitor, one memstore OSD, radosgw) on 127.0.0.1:
# the real S3 Object Lock (WORM) enforcer for the `worm` test tier. No systemd, no Docker.
#
#   tests/worm/rgw.sh install      apt-get the Debian packages when missing (idempotent, fast when present)
#   tests/worm/rgw.sh start DIR    cluster under DIR; writes DIR/endpoint.json {url, accessKeyId, secretAccessKey, region}
#   tests/worm/rgw.sh stop DIR     kill the daemons by pidfile, remove DIR
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd radosgw)
ACCESS_KEY="RECONWORMTESTACCESS0"
SECRET_KEY="reconWormTestSecretKey000000000000000000"
REGION="us-east-1"
START_TIMEOUT=${RGW_START_TIMEOUT:-90} # seconds, for each bounded wait

die() { echo "rgw.sh: $*" >&2; exit 1; }
trap 'echo "rgw.sh: line $LINENO failed: $BASH_COMMAND (logs under ${DIR:-?}/log)" >&2' ERR

need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

cmd_install() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "rgw.sh: installing ${missing[*]}" >&2
  local log
  log=$(mktemp)
  # Stale package lists are the usual failure on a fresh machine: refresh them once and retry.
  if ! need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    if ! { need_root apt-get update -qq && need_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      die "apt-get install ${missing[*]} failed"
    fi
  fi
  rm -f "$log"
}

# Exit 0 once the URL answers anonymously with HTTP 200 (RGW lists no buckets for anonymous).
PROBE='import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()'

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s, at most SECONDS (a bounded
# wait for a daemon to be ready, not a synchronisation guess: it returns as soon as COMMAND succeeds).
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${limit}s waiting for $what (logs in $DIR/log)"
    sleep 0.2
  done
}

# phase NAME: append "NAME <seconds since start>" to DIR/log/start-timings.txt
phase() { echo "$1 $(($(date +%s%N) / 1000000 - T0))ms" >>"$DIR/log/start-timings.txt"; }

cmd_start() {
  T0=$(($(date +%s%N) / 1000000))
  DIR=$(realpath -m "${1:?usage: rgw.sh start DIR}")
  [ -e "$DIR/endpoint.json" ] && die "$DIR already holds a cluster"
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
    command -v "$b" >/dev/null || die "$b not found: run 'rgw.sh install' first"
  done
  mkdir -p "$DIR"/{log,run,mon,osd/0,rgw,crash}
  # A failed start stops what it started and keeps DIR (and its logs) for `rgw.sh stop DIR`.
  trap 'rc=$?; if [ "$rc" -ne 0 ]; then term_and_wait 3 "$DIR"/run/*.pid; fi' EXIT
  local fsid mon_port rgw_port conf
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  mon_port=$(free_port)
  rgw_port=$(free_port)
  while [ "$rgw_port" = "$mon_port" ]; do rgw_port=$(free_port); done
  conf="$DIR/ceph.conf"
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
ms mon client mode = crc
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
run dir = $DIR/run
crash dir = $DIR/crash
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
# one monitor: commit each change at once instead of batching proposals for 1 s
paxos propose interval = 0.01
paxos min wait = 0.001
mon allow pool delete = true
mon warn on pool no redundancy = false
mon pg warn min per osd = 0
mon max pg per osd = 1000
osd objectstore = memstore
osd mon shutdown timeout = 1
memstore device bytes = 1073741824
[mon.a]
mon data = $DIR/mon/a
[osd.0]
osd data = $DIR/osd/0
osd journal size = 0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw thread pool size = 64
CONF
  local C=(--cluster ceph -c "$conf")
  # monitor
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >"$DIR/log/monmaptool.out" 2>&1
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mon-mkfs.out" 2>&1
  ceph-mon "${C[@]}" -i a 2>>"$DIR/log/mon.a.stderr"
  wait_for "$START_TIMEOUT" "the monitor" timeout 10 ceph "${C[@]}" mon stat
  phase mon
  # OSD
  local osd_uuid
  osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  ceph "${C[@]}" osd new "$osd_uuid" 0 >"$DIR/log/osd-new.out" 2>&1
  ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1
  ceph-osd "${C[@]}" -i 0 2>>"$DIR/log/osd.0.stderr"
  wait_for "$START_TIMEOUT" "the OSD to come up" bash -c "ceph ${C[*]} osd dump 2>/dev/null | grep -q '^osd.0 up'"
  phase osd
  # radosgw and its S3 user
  radosgw "${C[@]}" -n client.rgw.a 2>>"$DIR/log/rgw.a.stderr"
  wait_for "$START_TIMEOUT" "the rgw realm" timeout 10 radosgw-admin "${C[@]}" user list
  phase rgw-admin-ready
  radosgw-admin "${C[@]}" user create --uid=recon-worm --display-name="recon worm tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user-create.out" 2>&1
  phase user
  local url="http://127.0.0.1:$rgw_port"
  wait_for "$START_TIMEOUT" "the S3 endpoint $url" python3 -c "$PROBE" "$url/"
  phase s3-ready
  cat >"$DIR/endpoint.json" <<JSON
{"url": "$url", "accessKeyId": "$ACCESS_KEY", "secretAccessKey": "$SECRET_KEY", "region": "$REGION"}
JSON
  echo "$DIR/endpoint.json"
}

# term_and_wait GRACE PIDFILE...: SIGTERM the daemons, wait at most GRACE seconds, then SIGKILL.
term_and_wait() {
  local grace=$1 pids=() pid f; shift
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

cmd_stop() {
  local dir
  dir=$(realpath -m "${1:?usage: rgw.sh stop DIR}")
  [ -d "$dir" ] || return 0
  # Gateway and OSD first, while the monitor still answers their goodbyes; then the monitor.
  # The data is throwaway (memstore): a daemon slower than the grace is killed.
  term_and_wait 3 "$dir"/run/client.rgw.a.pid "$dir"/run/osd.0.pid
  term_and_wait 3 "$dir"/run/*.pid
  rm -rf "$dir"
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) die "usage: rgw.sh install | start DIR | stop DIR" ;;
esac
