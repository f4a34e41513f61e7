#!/usr/bin/env bash
# A real S3 server for fw's tests: a single-node Ceph RADOS Gateway on loopback (one monitor, one OSD
# on memstore, one radosgw). Fakes such as s3rver accept conditional writes without enforcing them, so
# compare-and-swap can only be tested against a server like this one. Data lives in memory.
#
#   ceph-rgw.sh start DIR   start in DIR (created; config, PIDs and logs go there); prints the endpoint
#   ceph-rgw.sh stop DIR    stop what `start DIR` started, by the PIDs it recorded
#
# env for start:
#   RGW_PORT        S3 port (default 9080)
#   MON_PORT        monitor port; MON_PORT+1 is used too (default 9010)
#   MSGR_PORTS      range the OSD and radosgw bind their messengers in (default 9020-9049)
#   RGW_ACCESS_KEY  access key of the S3 user created (default fw-test)
#   RGW_SECRET_KEY  its secret (default fw-test-secret)
#   RGW_BUCKET      a bucket to create, when set
# needs: radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl (see tooling/scripts/test-deps.sh)
set -Eeuo pipefail

usage() {
  echo "usage: $0 start DIR | stop DIR" >&2
  exit 2
}

# The PID `start DIR` recorded for a daemon (rgw, osd, mon), if that process is still the daemon: a
# PID file can outlive its process, and its number can be reused by another.
running_pid() {
  local dir=$1 name=$2 pid
  [ -f "$dir/$name.pid" ] || return 1
  pid=$(cat "$dir/$name.pid")
  [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
    radosgw | ceph-osd | ceph-mon) echo "$pid" ;;
    *) return 1 ;;
  esac
}

# memstore holds nothing worth a clean shutdown: daemons still running 5 s after SIGTERM are killed.
stop() {
  local dir=$1 name pid running
  for name in rgw osd mon; do
    pid=$(running_pid "$dir" "$name") && kill "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    running=0
    for name in rgw osd mon; do
      running_pid "$dir" "$name" >/dev/null && running=1
    done
    ((running)) || break
    sleep 0.1
  done
  for name in rgw osd mon; do
    pid=$(running_pid "$dir" "$name") && kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
}

# Polls a command until it succeeds, for at most $1 seconds.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "ceph-rgw: gave up after ${seconds}s waiting for: $*" >&2
      return 1
    fi
    sleep 0.2
  done
}

osd_up() { timeout 5 ceph -c "$conf" osd stat 2>/dev/null | grep -q '1 up'; }

start() {
  local dir=$1
  local rgw_port=${RGW_PORT:-9080} mon_port=${MON_PORT:-9010} msgr=${MSGR_PORTS:-9020-9049}
  local access_key=${RGW_ACCESS_KEY:-fw-test} secret_key=${RGW_SECRET_KEY:-fw-test-secret}
  local endpoint="http://127.0.0.1:$rgw_port"
  local mon_addr="[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$((mon_port + 1))]"
  local fsid osd_uuid osd_id

  for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool uuidgen curl; do
    command -v "$tool" >/dev/null || {
      echo "ceph-rgw: $tool is missing; run: bash tooling/scripts/test-deps.sh" >&2
      exit 1
    }
  done
  mkdir -p "$dir"/{mon,osd,run,log,rgw}
  conf="$dir/ceph.conf"
  # A half-started cluster would keep its ports and memory: take it down before reporting failure.
  trap 'stop "$dir"' ERR

  fsid=$(uuidgen)
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon_host = $mon_addr
public_network = 127.0.0.0/8
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Without it radosgw hangs on "get_initial_auth_request returned -13" when auth is off.
ms_mon_client_mode = crc secure
ms_bind_port_min = ${msgr%-*}
ms_bind_port_max = ${msgr#*-}
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
mon_data = $dir/mon/\$name
osd_data = $dir/osd/\$name
osd_objectstore = memstore
# Room for the contract suite's 200 MB object and the garbage RGW has yet to collect.
memstore_device_bytes = 4294967296
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
osd_memory_target = 939524096
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_data = $dir/rgw
# Deleted and overwritten data is reclaimed within a minute instead of hours, so a long-lived server
# (FW_TEST_S3_ENDPOINT) does not fill its memstore after a few runs of the 200 MB test.
rgw_gc_obj_min_wait = 30
rgw_gc_processor_period = 30
CONF

  monmaptool --create --fsid "$fsid" --addv a "$mon_addr" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" -f -i a >"$dir/log/mon.out" 2>&1 &
  echo $! >"$dir/mon.pid"

  osd_uuid=$(uuidgen)
  osd_id=$(timeout 60 ceph -c "$conf" osd new "$osd_uuid")
  mkdir -p "$dir/osd/osd.$osd_id"
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1
  ceph-osd -c "$conf" -f -i "$osd_id" >"$dir/log/osd.out" 2>&1 &
  echo $! >"$dir/osd.pid"
  wait_for 60 osd_up

  radosgw -c "$conf" -f -n client.rgw.a >"$dir/log/rgw.out" 2>&1 &
  echo $! >"$dir/rgw.pid"
  wait_for 60 curl -sf -o /dev/null "$endpoint/"

  radosgw-admin -c "$conf" user create --uid=fw-test --display-name=fw-test \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
  if [ -n "${RGW_BUCKET:-}" ]; then
    # curl's SigV4 leaves out the payload hash header that S3 signatures require; it is the empty body's.
    curl -sf -o /dev/null -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
      -H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d' ' -f1)" "$endpoint/$RGW_BUCKET"
  fi
  trap - ERR
  echo "$endpoint"
}

[ $# -eq 2 ] || usage
dir=$(realpath -m "$2")
case "$1" in
  start) start "$dir" ;;
  stop) stop "$dir" ;;
  *) usage ;;
esac
