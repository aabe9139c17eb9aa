#!/usr/bin/env bash
# search-engine.sh -- a throwaway single-node Elasticsearch / OpenSearch on 127.0.0.1 for tests and local runs.
#
#   scripts/search-engine.sh start  [elasticsearch|opensearch]   # prints ES_URL=... / OPENSEARCH_URL=... on stdout
#   scripts/search-engine.sh status [elasticsearch|opensearch]   # exit 0 when the server answers with green/yellow
#   scripts/search-engine.sh stop   [elasticsearch|opensearch]
#   scripts/search-engine.sh dist   [elasticsearch|opensearch]   # HOME=/VERSION=/JAVA= of the cached distribution
#                                                                # (fetched if needed; nothing is started)
#
#   eval "export $(scripts/search-engine.sh start)"     # then ES_URL is set in this shell
#
# Order of preference (why: CI and developers may already have a server, and we must never need docker):
#   1. ES_URL / OPENSEARCH_URL set   -> that server is used; `start` only echoes it, `status` checks it,
#                                       `stop` leaves it alone.
#   2. otherwise the engine's `integ-test-zip` distribution is fetched with Maven (the only download this
#      script does), cached in ${XDG_CACHE_HOME:-$HOME/.cache}/rds-slowlog/search, and started with a
#      Java 21+ runtime, a 512 MB heap, data+logs in ${TMPDIR:-/tmp}/rds-slowlog-search-<engine>.
#   3. otherwise it fails with a message that says how to point it at a server.
#
# Security: the Elasticsearch integ-test-zip ships x-pack-security, so ES runs with security on and HTTP basic
# auth (a file-realm superuser with a random password, plain HTTP on loopback); the URL carries the credentials.
# The OpenSearch integ-test-zip has no security plugin, so OpenSearch runs without auth.
# RDS_SEARCH_SECURITY=off turns ES security off as well.
#
# Root: both engines refuse to run as root (CI containers often are root), so as root the server runs as
# RDS_SEARCH_RUN_AS (default: nobody) via setpriv/runuser; the run dir is handed to that user and, when the
# cache is not readable by it (e.g. under /root), the distribution is hard-linked (else copied) into the run dir.
#
# Other knobs: ES_VERSION / OPENSEARCH_VERSION (version or list; default: scripts/search_versions.env),
# ES_PORT / OPENSEARCH_PORT (default 9200 / 9201; the next free port is used when taken),
# RDS_SEARCH_CACHE (cache dir), RDS_SEARCH_START_TIMEOUT (seconds, default 120), RDS_SEARCH_HEAP (default 512m),
# RDS_SEARCH_JAVA_HOME (force a JDK).
#
# stdout carries only the URL line (so `export "$(... start)"` works); everything else goes to stderr.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/search_versions.env
. "$SCRIPT_DIR/search_versions.env"

log() { printf '[search-engine] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
usage() {
    echo "usage: $0 start|stop|status|dist [elasticsearch|opensearch]" >&2
    exit 2
}

ACTION=${1:-}
ENGINE=${2:-elasticsearch}
[ $# -le 2 ] || usage
case "$ENGINE" in
es | elastic | elasticsearch) ENGINE=elasticsearch ;;
os | opensearch) ENGINE=opensearch ;;
*) usage ;;
esac

if [ "$ENGINE" = elasticsearch ]; then
    URL_VAR=ES_URL
    PRETTY=Elasticsearch
    GROUP=org.elasticsearch.distribution.integ-test-zip
    VERSIONS=${ES_VERSION:-$ES_VERSIONS}
    DEFAULT_PORT=${ES_PORT:-9200}
    JAVA_OPTS_VAR=ES_JAVA_OPTS
    PATH_CONF_VAR=ES_PATH_CONF
    JAVA_HOME_VAR=ES_JAVA_HOME
    TMPDIR_VAR=ES_TMPDIR
else
    URL_VAR=OPENSEARCH_URL
    PRETTY=OpenSearch
    GROUP=org.opensearch.distribution.integ-test-zip
    VERSIONS=${OPENSEARCH_VERSION:-$OPENSEARCH_VERSIONS}
    DEFAULT_PORT=${OPENSEARCH_PORT:-9201}
    JAVA_OPTS_VAR=OPENSEARCH_JAVA_OPTS
    PATH_CONF_VAR=OPENSEARCH_PATH_CONF
    JAVA_HOME_VAR=OPENSEARCH_JAVA_HOME
    TMPDIR_VAR=OPENSEARCH_TMPDIR
fi
ARTIFACT=$ENGINE
EXTERNAL_URL=${!URL_VAR:-}
CACHE_DIR=${RDS_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rds-slowlog/search}
RUN_DIR=${TMPDIR:-/tmp}/rds-slowlog-search-$ENGINE
STATE_FILE=$RUN_DIR/state.env
PID_FILE=$RUN_DIR/server.pid
START_TIMEOUT=${RDS_SEARCH_START_TIMEOUT:-120}
STOP_TIMEOUT=60
HEAP=${RDS_SEARCH_HEAP:-512m}
ES_USER=rds_slowlog

how_to_point() {
    echo "To use an existing server instead, set $URL_VAR, e.g." \
        "export $URL_VAR=http://user:password@127.0.0.1:$DEFAULT_PORT (or http://127.0.0.1:$DEFAULT_PORT without auth)."
}

# ---------------------------------------------------------------- HTTP (curl, else python3: no other tools)

# http_get URL -> body on stdout; credentials may be embedded in the URL (user:pass@host).
http_get() {
    local url=$1
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 5 "$url" 2>/dev/null
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$url" <<'PY' 2>/dev/null
import base64, sys, urllib.parse, urllib.request
u = urllib.parse.urlsplit(sys.argv[1])
netloc = u.hostname + (f":{u.port}" if u.port else "")
req = urllib.request.Request(urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, "")))
if u.username is not None:
    cred = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
    req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
sys.stdout.write(urllib.request.urlopen(req, timeout=5).read().decode())
PY
    else
        die "neither curl nor python3 is available to talk HTTP"
    fi
}

# healthy URL -> 0 when _cluster/health reports green or yellow.
healthy() {
    local body
    body=$(http_get "${1%/}/_cluster/health") || return 1
    [[ $body =~ \"status\":\"(green|yellow)\" ]]
}

# redact URL -> the URL with the password replaced, for log lines.
redact() { sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$1"; }

# ---------------------------------------------------------------- process bookkeeping

# our_pid -> prints the server pid when it is alive AND belongs to this run dir (pids get recycled).
our_pid() {
    local pid
    [ -s "$PID_FILE" ] || return 1
    pid=$(tr -dc '0-9' <"$PID_FILE")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$RUN_DIR/" || return 1
    echo "$pid"
}

wait_exit() { # pid timeout -> 0 when the process is gone within timeout seconds
    # (no zombie shortcut: a JVM whose main thread ended shows its thread-group leader as Z while it still runs)
    local pid=$1 deadline=$((SECONDS + $2))
    while [ -e "/proc/$pid" ] && [ $SECONDS -lt $deadline ]; do
        sleep 0.5
    done
    [ ! -e "/proc/$pid" ]
}

kill_server() { # pid -> SIGTERM, wait, SIGKILL as last resort
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_exit "$pid" "$STOP_TIMEOUT"; then
        log "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$pid" 10 || die "could not stop pid $pid"
    fi
}

state_url() { [ -r "$STATE_FILE" ] && sed -n 's/^URL=//p' "$STATE_FILE"; }

lock_run_dir() { # serialise concurrent start/stop of the same engine (flock is util-linux, optional)
    mkdir -p "$RUN_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR.lock"
        flock -w 600 9 || die "another search-engine.sh holds $RUN_DIR.lock"
    fi
}

log_tail() {
    local f
    for f in "$RUN_DIR/logs/launcher.out" "$RUN_DIR/logs/rds-slowlog-dev.log"; do
        if [ -s "$f" ]; then
            echo "----- last lines of $f -----" >&2
            tail -n 60 "$f" >&2
        fi
    done
}

# ---------------------------------------------------------------- root: run as an unprivileged user

RUN_AS=()
setup_run_as() {
    [ "$(id -u)" = 0 ] || return 0
    local user=${RDS_SEARCH_RUN_AS:-nobody} uid gid
    uid=$(id -u "$user" 2>/dev/null) && gid=$(id -g "$user") ||
        die "running as root and user '$user' does not exist (set RDS_SEARCH_RUN_AS to an unprivileged user)"
    [ "$uid" != 0 ] || die "RDS_SEARCH_RUN_AS must not be root: $PRETTY refuses to run as root"
    if command -v setpriv >/dev/null 2>&1; then
        RUN_AS=(setpriv "--reuid=$uid" "--regid=$gid" --clear-groups)
    elif command -v runuser >/dev/null 2>&1; then
        RUN_AS=(runuser -u "$user" --)
    else
        die "running as root needs setpriv or runuser (util-linux) to start $PRETTY as '$user'"
    fi
    RUN_AS_USER=$user
    RUN_AS_IDS=$uid:$gid
    log "running as root: $PRETTY will run as user '$user'"
}



java_major() { # JAVA_HOME -> major version (from `release`, else `java -version`)
    local home=$1 v=""
    [ -x "$home/bin/java" ] || return 1
    [ -r "$home/release" ] && v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")
    [ -n "$v" ] || v=$("$home/bin/java" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)
    v=${v#1.}
    v=${v%%[!0-9]*}
    [ -n "$v" ] && echo "$v"
}

# find_java MIN MAX -> a JAVA_HOME whose major version is in [MIN, MAX]:
# RDS_SEARCH_JAVA_HOME, JAVA_HOME, /usr/lib/jvm/*temurin*, any /usr/lib/jvm/*, then `java` on PATH.
find_java() {
    local min=$1 max=$2 cand major path_java="" c
    if command -v java >/dev/null 2>&1; then
        path_java=$(readlink -f "$(command -v java)")
        path_java=${path_java%/bin/java}
    fi
    local -a cands=("${RDS_SEARCH_JAVA_HOME:-}" "${JAVA_HOME:-}")
    for c in $(ls -d /usr/lib/jvm/*temurin* 2>/dev/null | sort -rV) $(ls -d /usr/lib/jvm/* 2>/dev/null | sort -rV) \
        /Library/Java/JavaVirtualMachines/*/Contents/Home; do
        cands+=("$c")
    done
    cands+=("$path_java")
    for cand in "${cands[@]}"; do
        [ -n "$cand" ] || continue
        major=$(java_major "$cand") || continue
        if [ "$major" -ge "$min" ] && [ "$major" -le "$max" ]; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------- distribution (Maven only)

unpack_zip() { # zip destdir
    local zip=$1 dest=$2
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$zip" -d "$dest"
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$zip" "$dest" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = info.external_attr >> 16
        if mode and not info.is_dir():
            os.chmod(path, mode & 0o777)
PY
    else
        local jdk
        jdk=$(find_java 8 99) || die "need unzip, python3 or a JDK's jar tool to unpack $zip"
        (cd "$dest" && "$jdk/bin/jar" xf "$zip") && chmod +x "$dest"/*/bin/*
    fi
}

# fetch_dist -> sets DIST_VERSION and DIST_HOME to the first version of $VERSIONS that is cached or resolves.
fetch_dist() {
    local v home zip tmp mvn_log tried=""
    mkdir -p "$CACHE_DIR"
    for v in $VERSIONS; do
        home=$CACHE_DIR/$ARTIFACT-$v
        if [ -f "$home/.rds-unpacked" ]; then
            DIST_VERSION=$v DIST_HOME=$home
            return 0
        fi
        if ! command -v mvn >/dev/null 2>&1; then
            tried+=" $v(mvn not installed)"
            continue
        fi
        tmp=$(mktemp -d "$CACHE_DIR/.fetch-$ARTIFACT-$v.XXXXXX")
        mvn_log=$tmp/mvn.log
        log "fetching $GROUP:$ARTIFACT:$v:zip with Maven ..."
        # cd to the temp dir so that a pom.xml in the caller's directory cannot change what mvn does
        if (cd "$tmp" && mvn -q -B \
            "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:copy" \
            "-Dartifact=$GROUP:$ARTIFACT:$v:zip" "-DoutputDirectory=$tmp" >"$mvn_log" 2>&1); then
            zip=$tmp/$ARTIFACT-$v.zip
            [ -s "$zip" ] || die "mvn reported success but $zip is missing"
            log "unpacking $(du -h "$zip" | cut -f1) into $home"
            unpack_zip "$zip" "$tmp"
            [ -x "$tmp/$ARTIFACT-$v/bin/$ARTIFACT" ] || die "$zip does not contain $ARTIFACT-$v/bin/$ARTIFACT"
            touch "$tmp/$ARTIFACT-$v/.rds-unpacked"
            rm -rf "$home"
            mv "$tmp/$ARTIFACT-$v" "$home"
            rm -rf "$tmp"
            DIST_VERSION=$v DIST_HOME=$home
            return 0
        fi
        log "$GROUP:$ARTIFACT:$v:zip did not resolve:"
        grep -E 'ERROR' "$mvn_log" | head -n 3 | cut -c1-300 >&2 || true
        rm -rf "$tmp"
        tried+=" $v"
    done
    die "could not obtain a $PRETTY distribution (tried:${tried:- nothing}; Maven artifact $GROUP:$ARTIFACT:<version>:zip). $(how_to_point)"
}

# ---------------------------------------------------------------- ports

port_free() { # port -> 0 when nothing listens on 127.0.0.1:port and we may bind it
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

pick_port() { # default port if free, else one below the 9300 transport range that is not the other engine's default
    local p
    for p in "$DEFAULT_PORT" $(seq 9210 9299) $(seq 19200 19299); do
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "no free HTTP port found near $DEFAULT_PORT"
}

# ---------------------------------------------------------------- commands

cmd_status() {
    local url pid
    if [ -n "$EXTERNAL_URL" ]; then
        if healthy "$EXTERNAL_URL"; then
            log "$PRETTY at $(redact "$EXTERNAL_URL") (from $URL_VAR) is up"
            echo "$URL_VAR=$EXTERNAL_URL"
            return 0
        fi
        log "$PRETTY at $(redact "$EXTERNAL_URL") (from $URL_VAR) does not answer with green/yellow health"
        return 1
    fi
    url=$(state_url || true)
    if pid=$(our_pid) && [ -n "$url" ] && healthy "$url"; then
        log "$PRETTY is up: pid $pid, $(redact "$url"), $(sed -n 's/^VERSION=//p' "$STATE_FILE")"
        echo "$URL_VAR=$url"
        return 0
    fi
    log "$PRETTY is not running (run dir $RUN_DIR)"
    return 1
}

cmd_stop() {
    local pid
    if [ -n "$EXTERNAL_URL" ]; then
        log "$URL_VAR is set; not stopping a server this script did not start"
        return 0
    fi
    lock_run_dir
    if pid=$(our_pid); then
        log "stopping $PRETTY (pid $pid) ..."
        kill_server "$pid"
        log "stopped"
    else
        log "$PRETTY is not running"
    fi
    rm -f "$PID_FILE" "$STATE_FILE"
}

write_config() { # port security(true|false)
    local port=$1 security=$2 conf=$RUN_DIR/config
    rm -rf "$conf" "$RUN_DIR/data" "$RUN_DIR/logs" "$RUN_DIR/tmp"
    mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs" "$RUN_DIR/tmp"
    cp -R "$DIST_HOME/config" "$conf"
    # keep GC logs / heap dumps / error files out of the (shared, cached) distribution dir; drop the 1g heap
    sed -i -E -e "s#file=(logs/)?gc\.log#file=$RUN_DIR/logs/gc.log#" \
        -e "s#HeapDumpPath=data#HeapDumpPath=$RUN_DIR/data#" \
        -e "s#ErrorFile=(logs/)?hs_err#ErrorFile=$RUN_DIR/logs/hs_err#" \
        -e '/^-Xm[sx]/d' "$conf/jvm.options"
    {
        echo "# written by scripts/search-engine.sh"
        echo "cluster.name: rds-slowlog-dev"
        echo "node.name: rds-slowlog-$ENGINE"
        echo "network.host: 127.0.0.1"
        echo "http.port: $port"
        echo "discovery.type: single-node"
        echo "path.data: $RUN_DIR/data"
        echo "path.logs: $RUN_DIR/logs"
        echo "cluster.routing.allocation.disk.threshold_enabled: false"
        if [ "$ENGINE" = elasticsearch ]; then
            echo "xpack.security.enabled: $security"
            if [ "$security" = true ]; then
                echo "xpack.security.http.ssl.enabled: false"
                echo "xpack.security.transport.ssl.enabled: false"
            fi
        fi
    } >"$conf/$ENGINE.yml"
}

dist_java() { # -> a JAVA_HOME that runs $DIST_VERSION (after fetch_dist)
    local max_java=99
    # OpenSearch 2.x needs the Java SecurityManager, which Java 24 removed (2.19.6's launcher fails on Java 25)
    [ "$ENGINE" = opensearch ] && [[ $DIST_VERSION == 2.* ]] && max_java=23
    find_java 21 "$max_java" ||
        die "no Java 21..$max_java runtime found for $PRETTY $DIST_VERSION (set JAVA_HOME or RDS_SEARCH_JAVA_HOME to such a JDK). $(how_to_point)"
}

# dist: the distribution and Java that `start` would use, for callers that run their own servers
# (rds_slowlog.testing.search_server: TLS, several nodes). Ignores ES_URL / OPENSEARCH_URL.
cmd_dist() {
    local java
    fetch_dist
    java=$(dist_java)
    echo "HOME=$DIST_HOME"
    echo "VERSION=$DIST_VERSION"
    echo "JAVA=$java"
}

cmd_start() {
    local pid url port java security=false user_info="" launcher rc t0 deadline
    if [ -n "$EXTERNAL_URL" ]; then
        log "$URL_VAR is set; using $(redact "$EXTERNAL_URL")"
        echo "$URL_VAR=$EXTERNAL_URL"
        return 0
    fi
    lock_run_dir
    if pid=$(our_pid); then
        url=$(state_url || true)
        if [ -n "$url" ]; then
            deadline=$((SECONDS + START_TIMEOUT))
            until healthy "$url"; do
                [ $SECONDS -lt $deadline ] && our_pid >/dev/null || die "$PRETTY pid $pid runs but is not healthy"
                sleep 1
            done
            log "$PRETTY already running (pid $pid)"
            echo "$URL_VAR=$url"
            return 0
        fi
        log "pid $pid runs without a state file; stopping it"
        kill_server "$pid"
    fi
    rm -f "$PID_FILE" "$STATE_FILE"

    fetch_dist
    java=$(dist_java)
    port=$(pick_port)
    if [ "$ENGINE" = elasticsearch ] && [ "${RDS_SEARCH_SECURITY:-on}" != off ] &&
        [ -d "$DIST_HOME/modules/x-pack-security" ]; then
        security=true
    fi
    setup_run_as
    write_config "$port" "$security"
    local es_home=$DIST_HOME
    if [ ${#RUN_AS[@]} -gt 0 ]; then
        if ! "${RUN_AS[@]}" test -r "$DIST_HOME/lib" -a -x "$DIST_HOME/bin/$ENGINE" 2>/dev/null; then
            es_home=$RUN_DIR/home
            rm -rf "$es_home"
            cp -al "$DIST_HOME" "$es_home" 2>/dev/null || { rm -rf "$es_home" && cp -R "$DIST_HOME" "$es_home"; }
        fi
        # the config copy also lives here: the engine writes its keystore next to the yml
        "${RUN_AS[@]}" test -x "$(dirname "$RUN_DIR")" 2>/dev/null ||
            die "user '$RUN_AS_USER' cannot reach $RUN_DIR; set TMPDIR to a world-traversable directory"
    fi

    export "$JAVA_HOME_VAR=$java" JAVA_HOME="$java"
    export "$PATH_CONF_VAR=$RUN_DIR/config" "$TMPDIR_VAR=$RUN_DIR/tmp"
    export "$JAVA_OPTS_VAR=${!JAVA_OPTS_VAR:-} -Xms$HEAP -Xmx$HEAP"
    if [ "$security" = true ]; then
        local password
        password=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
        # file realm: needs no security index, so the user works from the first request on
        (cd "$es_home" && ES_JAVA_OPTS="" bin/elasticsearch-users useradd "$ES_USER" -p "$password" -r superuser) \
            >"$RUN_DIR/logs/users.out" 2>&1 || {
            cat "$RUN_DIR/logs/users.out" >&2
            die "elasticsearch-users useradd failed"
        }
        user_info="$ES_USER:$password@"
    fi
    url="http://${user_info}127.0.0.1:$port"
    if [ ${#RUN_AS[@]} -gt 0 ]; then
        chown "$RUN_AS_IDS" "$RUN_DIR"
        chown -R "$RUN_AS_IDS" "$RUN_DIR/config" "$RUN_DIR/data" "$RUN_DIR/logs" "$RUN_DIR/tmp"
    fi
    log "starting $PRETTY $DIST_VERSION on 127.0.0.1:$port (java $(java_major "$java") at $java, heap $HEAP," \
        "security $security, run dir $RUN_DIR)"

    t0=$SECONDS
    launcher=("${RUN_AS[@]}" bin/"$ENGINE" -d -p "$PID_FILE")
    command -v setsid >/dev/null 2>&1 && launcher=(setsid "${launcher[@]}")
    # no inherited stdio (a caller's pipe would never reach EOF) and no inherited lock fd
    (cd "$es_home" && exec "${launcher[@]}" </dev/null >"$RUN_DIR/logs/launcher.out" 2>&1 9>&-) &
    local launcher_pid=$! launcher_done=false done_at=0
    deadline=$((SECONDS + START_TIMEOUT))
    until healthy "$url"; do
        if [ "$launcher_done" = false ] && ! kill -0 "$launcher_pid" 2>/dev/null; then
            launcher_done=true done_at=$SECONDS
            rc=0
            wait "$launcher_pid" || rc=$?
            if [ "$rc" -ne 0 ]; then
                log_tail
                if pid=$(our_pid); then kill_server "$pid"; fi
                die "$PRETTY $DIST_VERSION failed to start (launcher exit $rc). $(how_to_point)"
            fi
        fi
        # OpenSearch's launcher returns at once and the JVM writes the pid file a moment later
        if [ "$launcher_done" = true ] && ! our_pid >/dev/null &&
            { [ -s "$PID_FILE" ] || [ $((SECONDS - done_at)) -gt 30 ]; }; then
            log_tail
            die "$PRETTY $DIST_VERSION exited during startup. $(how_to_point)"
        fi
        if [ $SECONDS -ge $deadline ]; then
            log_tail
            if pid=$(our_pid); then kill_server "$pid"; fi
            kill "$launcher_pid" 2>/dev/null || true
            die "$PRETTY $DIST_VERSION was not healthy within ${START_TIMEOUT}s. $(how_to_point)"
        fi
        sleep 1
    done
    pid=$(our_pid) || die "$PRETTY answers on port $port but pid file $PID_FILE is missing"
    {
        echo "URL=$url"
        echo "ENGINE=$ENGINE"
        echo "VERSION=$DIST_VERSION"
        echo "PORT=$port"
        echo "HOME=$es_home"
        echo "JAVA=$java"
        echo "PID=$pid"
    } >"$STATE_FILE"
    chmod 600 "$STATE_FILE"
    log "$PRETTY $DIST_VERSION is up after $((SECONDS - t0))s (pid $pid): $(redact "$url")"
    echo "$URL_VAR=$url"
}

case "$ACTION" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
dist) cmd_dist ;;
*) usage ;;
esac
