#!/usr/bin/env bash
# Run a real, single-node Apache Kafka broker (KRaft, combined broker +
# controller) locally, without Docker. The jars come from Maven Central via
# `mvn` (deploy/local/kafka/pom.xml) and are cached per Kafka version.
#
# Usage: deploy/local/kafka.sh {start|stop|status|bootstrap|resolve|reset|logs}
#   start      resolve jars if needed, format storage if needed, start the
#              broker in the background and wait until it is ready; prints
#              the bootstrap address. Idempotent: a running broker is reused.
#   stop       SIGTERM (SIGKILL after 30s) the broker; exit 0 if none runs.
#   status     "running <bootstrap>" (exit 0) or "stopped" (exit 1).
#   bootstrap  print 127.0.0.1:PORT.
#   resolve    only fetch the jars into the cache.
#   reset      stop, then delete the data dir (topics, offsets, storage).
#   logs       print the path of the broker log file.
#
# Environment:
#   NPSLOOP_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/npsloop)
#   NPSLOOP_KAFKA_VERSION  Kafka version (default 4.4.0)
#   NPSLOOP_KAFKA_DATA     data dir (default $NPSLOOP_CACHE/kafka-data)
#   NPSLOOP_KAFKA_PORT     broker port on 127.0.0.1 (default 19092);
#                          the controller listens on PORT+1
#   NPSLOOP_KAFKA_HEAP_OPTS  JVM heap (default "-Xmx512m -Xms256m")
#   NPSLOOP_KAFKA_GC_OPTS    JVM collector (default "-XX:+UseParallelGC"; see below)
#   NPSLOOP_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_DIR="$HERE/kafka"
POM="$KAFKA_DIR/pom.xml"
LOG4J_CONF="$KAFKA_DIR/log4j2.properties"

KAFKA_VERSION="${NPSLOOP_KAFKA_VERSION:-4.4.0}"
CACHE_ROOT="${NPSLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/npsloop}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
LIBS_MARKER="$KAFKA_HOME/.resolved"
DATA="${NPSLOOP_KAFKA_DATA:-$CACHE_ROOT/kafka-data}"
PORT="${NPSLOOP_KAFKA_PORT:-19092}"
CONTROLLER_PORT=$((PORT + 1))
HOST=127.0.0.1
BOOTSTRAP="$HOST:$PORT"
HEAP_OPTS="${NPSLOOP_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
# The parallel collector, not Kafka's stock "G1 with a 20 ms pause goal": on a 2-core box the pause
# goal shrank G1's young generation to 2 MiB, so a produce request of 500 KB set off collections and
# a concurrent marking that never ended. The broker then took 60 us of CPU per record at 9,000
# records/s (10 with the parallel collector), more than the services it served (bench/README.md).
GC_OPTS="${NPSLOOP_KAFKA_GC_OPTS:--XX:+UseParallelGC}"
START_TIMEOUT="${NPSLOOP_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT=30
# Fixed cluster id (base64url of "npsloop-local-ka"): the node is always
# formatted the same way, so a data dir is recognisable and reproducible.
CLUSTER_ID="bnBzbG9vcC1sb2NhbC1rYQ"

PID_FILE="$DATA/kafka.pid"
LOG_FILE="$DATA/kafka.log"
PROPS="$DATA/server.properties"
LOG_DIRS="$DATA/kraft-logs"
FORMATTED_MARKER="$DATA/.formatted"
LOCK_FILE="$DATA/.lock"
READY_LINE="Kafka Server started"

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="java"
fi

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- resolve --

pom_fingerprint() {
  # Re-resolve whenever the pom or the requested version changes.
  { echo "$KAFKA_VERSION"; cat "$POM"; } | sha256sum | cut -d' ' -f1
}

libs_complete() {
  [[ -f "$LIBS_MARKER" && "$(cat "$LIBS_MARKER")" == "$(pom_fingerprint)" ]] \
    && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

cmd_resolve() {
  if libs_complete; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed to fetch Kafka $KAFKA_VERSION jars)"
  local t0 tmp out
  t0=$(now)
  mkdir -p "$KAFKA_HOME"
  tmp="$(mktemp -d "$KAFKA_HOME/libs.tmp.XXXXXX")"
  out="$tmp.mvn.log"
  log "resolving Kafka $KAFKA_VERSION jars with mvn into $LIBS ..."
  # Jars go straight to -DoutputDir; run from the cache dir so nothing lands in the repo.
  if ! (cd "$KAFKA_HOME" && mvn -q -B -f "$POM" \
        dependency:copy-dependencies \
        -Dkafka.version="$KAFKA_VERSION" \
        -DoutputDir="$tmp") >"$out" 2>&1; then
    cat "$out" >&2
    rm -rf "$tmp" "$out"
    die "mvn failed to resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  rm -f "$out"
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] \
    || { rm -rf "$tmp"; die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is missing"; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  pom_fingerprint >"$LIBS_MARKER"
  log "resolved $(ls "$LIBS" | wc -l) jars in $(elapsed "$t0")s"
}

# ------------------------------------------------------------- processes --

port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Prints the pid from the pid file if it is a live Kafka broker JVM;
# removes a stale pid file.
live_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
    echo "$pid"
    return 0
  fi
  log "removing stale pid file $PID_FILE (pid ${pid:-?} is not running)"
  rm -f "$PID_FILE"
  return 1
}

with_lock() {
  mkdir -p "$DATA"
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "could not lock $LOCK_FILE (another kafka.sh is busy)"
}

# ------------------------------------------------------------------ start --

check_java() {
  command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs JDK 17+)"
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 \
        | awk -F'= ' '/java.specification.version/ { print $2 }')"
  [[ "${v%%.*}" =~ ^[0-9]+$ && "${v%%.*}" -ge 17 ]] \
    || die "Kafka $KAFKA_VERSION needs Java 17+, found '${v:-unknown}' ($JAVA)"
}

write_properties() {
  cat >"$PROPS" <<EOF
# Generated by deploy/local/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$LOG_DIRS

# single node: every internal topic has one replica
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

# modest resources for a dev box / CI
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=104857600
log.retention.check.interval.ms=300000
EOF
}

format_storage() {
  # A data dir holds a fixed cluster id; format only once.
  if [[ -f "$FORMATTED_MARKER" && -f "$LOG_DIRS/meta.properties" ]]; then
    return 0
  fi
  log "formatting KRaft storage in $LOG_DIRS (cluster id $CLUSTER_ID)"
  local out
  if ! out="$("$JAVA" -cp "$LIBS/*" \
        -Dlog4j2.configurationFile="$LOG4J_CONF" \
        kafka.tools.StorageTool format \
        --config "$PROPS" --cluster-id "$CLUSTER_ID" --ignore-formatted 2>&1)"; then
    echo "$out" >&2
    die "kafka-storage format failed"
  fi
  echo "kafka $KAFKA_VERSION cluster $CLUSTER_ID formatted $(date -u +%FT%TZ)" >"$FORMATTED_MARKER"
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup; last log lines ($LOG_FILE):"
      tail -n 40 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "Kafka failed to start"
    fi
    if grep -q "$READY_LINE" "$LOG_FILE" 2>/dev/null && port_open "$PORT"; then
      return 0
    fi
    sleep 0.25
  done
  log "broker not ready after ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
  tail -n 40 "$LOG_FILE" >&2 || true
  die "timed out waiting for Kafka on $BOOTSTRAP (pid $pid left running; use '$0 stop')"
}

cmd_start() {
  local t0 pid
  t0=$(now)
  with_lock
  if pid="$(live_pid)"; then
    if port_open "$PORT"; then
      log "already running (pid $pid)"
      echo "$BOOTSTRAP"
      return 0
    fi
    log "broker pid $pid is up but $BOOTSTRAP does not answer yet; waiting"
    wait_ready "$pid"
    echo "$BOOTSTRAP"
    log "start took $(elapsed "$t0")s"
    return 0
  fi
  if port_open "$PORT"; then
    die "$BOOTSTRAP is already in use by another process (set NPSLOOP_KAFKA_PORT)"
  fi
  if port_open "$CONTROLLER_PORT"; then
    die "controller port $HOST:$CONTROLLER_PORT is already in use (set NPSLOOP_KAFKA_PORT)"
  fi

  check_java
  cmd_resolve
  mkdir -p "$DATA" "$LOG_DIRS"
  write_properties
  format_storage

  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  # setsid: own session, so a Ctrl-C in the calling terminal does not reach it.
  # shellcheck disable=SC2086
  setsid nohup "$JAVA" $HEAP_OPTS \
    -server $GC_OPTS \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -Dkafka.logs.dir="$DATA" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "started Kafka $KAFKA_VERSION (pid $pid), log: $LOG_FILE"
  wait_ready "$pid"
  echo "$BOOTSTRAP"
  log "start took $(elapsed "$t0")s"
}

# ------------------------------------------------------------------- stop --

cmd_stop() {
  local pid deadline
  [[ -d "$DATA" ]] || { log "not running"; return 0; }
  with_lock
  if ! pid="$(live_pid)"; then
    log "not running"
    return 0
  fi
  log "stopping Kafka (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if [[ -f "$PID_FILE" ]] && pid="$(live_pid)" && port_open "$PORT"; then
    echo "running $BOOTSTRAP"
    return 0
  fi
  echo "stopped"
  return 1
}

cmd_reset() {
  cmd_stop
  if [[ -d "$DATA" ]]; then
    # Only ever delete a directory this script created.
    [[ -f "$PROPS" || -f "$FORMATTED_MARKER" ]] \
      || die "$DATA does not look like a kafka.sh data dir; not deleting it"
    rm -rf "$DATA"
    log "deleted $DATA"
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  bootstrap) echo "$BOOTSTRAP" ;;
  resolve) cmd_resolve; echo "$LIBS" ;;
  reset) cmd_reset ;;
  logs) echo "$LOG_FILE" ;;
  *)
    echo "usage: $0 {start|stop|status|bootstrap|resolve|reset|logs}" >&2
    exit 2
    ;;
esac
