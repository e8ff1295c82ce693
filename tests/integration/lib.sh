# shellcheck shell=bash
# lib.sh — shared harness for dotstub's integration tests.
#
# Sourced by every tests/integration/*.test script:
#     . "$(dirname "$0")/lib.sh"
#
# Exit codes follow the automake test protocol: 0 pass, 1 fail, 77 skip,
# 99 hard error (the harness itself could not set up, e.g. unbound won't start).
#
# All traffic stays on loopback: every server we start binds 127.0.0.1 (or ::1),
# and unbound is configured so that it answers only from local data and
# cannot recurse (see start_unbound).
#
# Environment knobs:
#   DOTSTUB       path to the daemon (make check exports an absolute path)
#   KEEP=1        keep the per-test temp dir ($WORK) for post-mortem
#   DOTSTUB_UNDER run the daemon under this command, e.g. 'valgrind -q
#                 --error-exitcode=99 --leak-check=full' (quickstart test --ci)
#   TEST_TIMEOUT  seconds before the watchdog aborts the whole test (default 300)
#   UNBOUND_EXTRA extra line(s) for unbound's server: clause, read by
#                 start_unbound (e.g. 'tcp-idle-timeout: 1000')

set -u

# ---------------------------------------------------------------------------
# Counters, output, exit
# ---------------------------------------------------------------------------

PASSED=0
FAILED=0
TEST_NAME=$(basename "$0")
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pass() {
    PASSED=$((PASSED + 1))
    echo "ok - $*"
}

fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL - $*"
}

# note MSG: informational line, neither pass nor fail (e.g. measured times).
note() {
    echo "# $*"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1: expected '$2', got '$3'"
        return 1
    fi
}

# expect_match WHAT REGEX TEXT   (bash ERE, unanchored unless REGEX anchors itself)
expect_match() {
    if [[ $3 =~ $2 ]]; then
        pass "$1"
    else
        fail "$1: /$2/ not found in:"
        printf '%s\n' "$3" | sed 's/^/#   /' | head -n 40
        return 1
    fi
}

# expect_contains WHAT STRING TEXT   (fixed string, no regex: for pins etc.)
expect_contains() {
    if [[ $3 == *"$2"* ]]; then
        pass "$1"
    else
        fail "$1: '$2' not found in:"
        printf '%s\n' "$3" | sed 's/^/#   /' | head -n 40
        return 1
    fi
}

# expect_no_match WHAT REGEX TEXT
expect_no_match() {
    if [[ $3 =~ $2 ]]; then
        fail "$1: /$2/ unexpectedly found in:"
        printf '%s\n' "$3" | sed 's/^/#   /' | head -n 40
        return 1
    else
        pass "$1"
    fi
}

# finish: summary line, then exit 0 if nothing failed, else 1.
finish() {
    echo "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -eq 0 ]; then
        exit 0
    fi
    exit 1
}

skip_test() {
    echo "SKIP - $TEST_NAME: $*"
    exit 77
}

# die MSG: the harness itself is broken (not dotstub): automake "hard error".
die() {
    echo "ERROR - $TEST_NAME: $*" >&2
    exit 99
}

# need_cmd CMD...: skip (not fail) when a tool is missing on this host.
need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip_test "'$c' not installed"
    done
}

# now_ms: wall clock in milliseconds, for measuring deadlines.
now_ms() {
    local s
    s=$(date +%s%N)
    echo $((s / 1000000))
}

# ---------------------------------------------------------------------------
# Temp dir, process bookkeeping, EXIT trap
# ---------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dotstub-it.XXXXXX") || die "mktemp failed"
export WORK
PIDS=()
WATCHDOG_PID=

register_pid() {
    PIDS+=("$1")
}

unregister_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# pid_alive PID: true while the process runs. A zombie counts as dead: our own
# children stay zombies until reaped, and `kill -0` succeeds on zombies.
pid_alive() {
    local stat
    [ -r "/proc/$1/stat" ] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }          # drop "pid (comm) ", comm may contain spaces
    [ "${stat%% *}" != Z ]
}

# stop_pid PID [GRACE_TENTHS]: TERM, wait up to GRACE (default 2 s), then KILL.
# Reaps the child and returns its exit status (137 etc. when killed).
stop_pid() {
    local pid=$1 grace=${2:-20} i rc=0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        echo "# pid $pid ignored SIGTERM for $((grace / 10)) s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
        for ((i = 0; i < 20; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
    fi
    # Reap (only works for our own children; harmless otherwise). The process
    # is already dead here, so this wait cannot block.
    wait "$pid" 2>/dev/null
    rc=$?
    unregister_pid "$pid"
    return "$rc"
}

# show_log FILE: the tail of a daemon log, for failure diagnostics.
show_log() {
    [ -s "$1" ] || return 0
    echo "# ---- tail of $1 ----"
    tail -n 40 "$1" | sed 's/^/#   /'
}

on_exit() {
    local rc=$? p
    trap - EXIT
    if [ -n "$WATCHDOG_PID" ]; then
        kill -TERM "$WATCHDOG_PID" 2>/dev/null
        wait "$WATCHDOG_PID" 2>/dev/null
    fi
    for p in "${PIDS[@]}"; do
        stop_pid "$p" 10
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] || [ "$FAILED" -gt 0 ]; then
        show_log "$WORK/dotstub.log"
        show_log "$WORK/unbound.log"
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# KEEP=1: files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'echo "# interrupted" >&2; exit 99' INT TERM HUP

# The watchdog bounds the whole test even if some client blocks forever. Its
# own TERM trap takes the sleep down with it, so nothing outlives the test.
# bash runs the main shell's TERM trap only once the foreground command has
# returned, so after a grace second the watchdog also TERMs the main shell's
# direct children (all started by this test; listed by PID from /proc).
start_watchdog() {
    local secs=${TEST_TIMEOUT:-300} main=$$
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep "$secs" &
        sp=$!
        wait "$sp"
        echo "# watchdog: $TEST_NAME exceeded $secs s" >&2
        kill -TERM "$main"
        sleep 1 & sp=$!
        wait "$sp"
        kids=()
        read -ra kids <"/proc/$main/task/$main/children" 2>/dev/null
        for c in "${kids[@]}"; do
            [ "$c" = "$BASHPID" ] || kill -TERM "$c" 2>/dev/null
        done
    ) &
    WATCHDOG_PID=$!
}
start_watchdog

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

# pick_port: a random port in 20000-60000 with no TCP or UDP socket of any
# state on it (ss -a, not just listeners: a connected socket's local port
# blocks bind too), never handed out twice in one test (ports are remembered in
# a file because callers run us in $(...) subshells).
pick_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        # Below the kernel's ephemeral range (32768+), so no outgoing
        # connection can take the port between the check and the bind.
        port=$((10000 + ((RANDOM << 15) | RANDOM) % 22000))
        grep -qx "$port" "$WORK/ports" 2>/dev/null && continue
        [ -z "$(ss -Hantu "sport = :$port" 2>/dev/null)" ] || continue
        echo "$port" >>"$WORK/ports"
        echo "$port"
        return 0
    done
    die "pick_port: no free port found"
}

# ---------------------------------------------------------------------------
# PKI (certtool, non-interactive templates)
# ---------------------------------------------------------------------------

# cert_pin PEM: the SPKI SHA-256 pin, exactly as certtool prints it.
cert_pin() {
    certtool --certificate-info --infile "$1" |
        sed -n 's/^[[:space:]]*pin-sha256://p' | head -n 1
}

# _gen_key OUT: ECDSA P-256 — fast, and what the DoT world mostly uses.
_gen_key() {
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
        --outfile "$1" >/dev/null 2>&1
}

# _gen_ca DIR NAME CN [PARENT]: CA NAME.pem / NAME-key.pem, self-signed, or
# an intermediate CA signed by PARENT.pem when PARENT is given.
_gen_ca() {
    local d=$1 n=$2 cn=$3 parent=${4:-}
    cat >"$d/$n.tmpl" <<EOF
cn = "$cn"
organization = "dotstub tests"
ca
cert_signing_key
crl_signing_key
expiration_days = 30
EOF
    _gen_key "$d/$n-key.pem" || return 1
    if [ -z "$parent" ]; then
        certtool --generate-self-signed --load-privkey "$d/$n-key.pem" \
            --template "$d/$n.tmpl" --outfile "$d/$n.pem" >/dev/null 2>&1
    else
        certtool --generate-certificate --load-privkey "$d/$n-key.pem" \
            --load-ca-certificate "$d/$parent.pem" --load-ca-privkey "$d/$parent-key.pem" \
            --template "$d/$n.tmpl" --outfile "$d/$n.pem" >/dev/null 2>&1
    fi
}

# _gen_leaf DIR NAME DNSNAME CA [PURPOSE]: server cert NAME.pem / NAME-key.pem
# for DNSNAME (in the SAN: verification ignores the CN) signed by CA.pem.
# PURPOSE is the certtool template's extended key usage line (default
# tls_www_server; e.g. code_signing_key for a certificate TLS must refuse).
_gen_leaf() {
    local d=$1 n=$2 dns=$3 ca=$4 purpose=${5:-tls_www_server}
    cat >"$d/$n.tmpl" <<EOF
cn = "$dns"
organization = "dotstub tests"
dns_name = "$dns"
$purpose
signing_key
expiration_days = 30
EOF
    _gen_key "$d/$n-key.pem" &&
        certtool --generate-certificate --load-privkey "$d/$n-key.pem" \
            --load-ca-certificate "$d/$ca.pem" --load-ca-privkey "$d/$ca-key.pem" \
            --template "$d/$n.tmpl" --outfile "$d/$n.pem" >/dev/null 2>&1
}

# make_pki DIR: the test PKI. Exports PKI, SERVER_PIN, CA_PIN.
#   ca.pem/ca-key.pem             trusted test CA (what dotstub gets as --ca-file)
#   server.pem/server-key.pem     cloudflare-dns.com, signed by ca
#   server-chain.pem              server + ca (unbound sends the whole file)
#   wrong.pem/wrong-key.pem       wrong.example, signed by ca
#   evil-ca.pem/evil-ca-key.pem   an untrusted CA
#   evil.pem/evil-key.pem         cloudflare-dns.com, signed by evil-ca
make_pki() {
    local d=$1
    mkdir -p "$d" || die "make_pki: cannot create $d"
    _gen_ca "$d" ca "dotstub test CA" || die "make_pki: CA failed"
    _gen_leaf "$d" server cloudflare-dns.com ca || die "make_pki: server cert failed"
    _gen_leaf "$d" wrong wrong.example ca || die "make_pki: wrong cert failed"
    _gen_ca "$d" evil-ca "evil test CA" || die "make_pki: evil CA failed"
    _gen_leaf "$d" evil cloudflare-dns.com evil-ca || die "make_pki: evil cert failed"
    cat "$d/server.pem" "$d/ca.pem" >"$d/server-chain.pem"
    PKI=$d
    SERVER_PIN=$(cert_pin "$d/server.pem")
    CA_PIN=$(cert_pin "$d/ca.pem")
    if [ -z "$SERVER_PIN" ] || [ -z "$CA_PIN" ]; then
        die "make_pki: no pin-sha256 in certtool output"
    fi
    export PKI SERVER_PIN CA_PIN
}

# ---------------------------------------------------------------------------
# unbound: the DoT upstream
# ---------------------------------------------------------------------------

UNBOUND_PID=
UPSTREAM_PORT=

# _big_txt_data: local-data lines for big.example.test TXT, ~3,000 bytes of
# text in 4 records of 3 strings of 250 bytes (distinct, or unbound would
# merge them as duplicates).
_big_txt_data() {
    local r s str line chunk
    chunk=$(printf '%025d' 0 | tr 0 x)   # 25 bytes
    for r in 0 1 2 3; do
        line="local-data: 'big.example.test. 300 IN TXT"
        for s in 0 1 2; do
            str="r${r}s${s}-"
            while [ ${#str} -lt 250 ]; do str+=$chunk; done
            line+=" \"${str:0:250}\""
        done
        echo "$line'"
    done
}

# _unbound_base TAG LOG: the server: lines every test unbound shares (runs
# as us in $WORK, in the foreground, logging to LOG; see _unbound_conf).
_unbound_base() {
    cat <<EOF
    do-tcp: yes
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: "$WORK/unbound-$1.pid"
    do-daemonize: no
    use-syslog: no
    logfile: "$2"
    verbosity: 1
    num-threads: 1
    module-config: "iterator"
    outgoing-interface: 127.0.0.1
    minimal-responses: yes
EOF
}

# _unbound_conf CERT KEY PORT: the config. Why each option:
#  - DoT only: the port is a tls-port and do-udp: no, so nothing plain is served.
#  - No way out to the internet: local-zone "." static answers (or NXDOMAINs)
#    every name from local data before the iterator is ever consulted; no
#    validator (no trust-anchor traffic); outgoing-interface 127.0.0.1 makes
#    any outgoing packet to a public address fail locally anyway.
#  - No privileges/chroot/daemon/syslog: runs as us, in $WORK, in foreground.
_unbound_conf() {
    local cert=$1 key=$2 port=$3
    cat <<EOF
server:
    interface: 127.0.0.1@$port
    tls-port: $port
    tls-service-pem: "$cert"
    tls-service-key: "$key"
    do-udp: no
$(_unbound_base "$port" "$WORK/unbound.log")
    log-time-ascii: yes
    incoming-num-tcp: 200
    prefetch: no
    local-zone: "." static
    local-zone: "example.test." static
    local-data: "example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60"
    local-data: "www.example.test. 300 IN A 192.0.2.1"
    local-data: "www.example.test. 300 IN AAAA 2001:db8::1"
    local-data: "example.test. 300 IN MX 10 mail.example.test."
    local-data: 'txt.example.test. 300 IN TXT "hello dotstub"'
$(_big_txt_data | sed 's/^/    /')
    local-zone: "bulk.example.test." redirect
    local-data: "bulk.example.test. 300 IN A 192.0.2.7"
${UNBOUND_EXTRA:+    $UNBOUND_EXTRA}
remote-control:
    control-enable: no
EOF
}

# upstream_ready PORT: unbound answers www.example.test over TLS. Opportunistic
# TLS on purpose (no CA): the wrong/evil certificates must pass this check too.
upstream_ready() {
    timeout 3 kdig @127.0.0.1 -p "$1" +tls +timeout=2 +retry=0 +short \
        www.example.test A 2>/dev/null | grep -qx '192\.0\.2\.1'
}

# start_unbound CERT KEY [PORT]: DoT upstream on 127.0.0.1@PORT (new port if
# omitted). Exports UPSTREAM_PORT, UNBOUND_PID. Waits <= 10 s for readiness.
start_unbound() {
    local cert=$1 key=$2 port=${3:-} conf deadline
    [ -n "$port" ] || port=$(pick_port) || die "no free port"
    conf="$WORK/unbound-$port.conf"
    _unbound_conf "$cert" "$key" "$port" >"$conf"
    unbound-checkconf "$conf" >"$WORK/unbound-checkconf.log" 2>&1 ||
        die "unbound-checkconf rejected $conf: $(cat "$WORK/unbound-checkconf.log")"
    unbound -d -c "$conf" >>"$WORK/unbound.log" 2>&1 &
    UNBOUND_PID=$!
    register_pid "$UNBOUND_PID"
    UPSTREAM_PORT=$port
    export UPSTREAM_PORT UNBOUND_PID
    deadline=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        pid_alive "$UNBOUND_PID" || { show_log "$WORK/unbound.log"; die "unbound exited at start-up"; }
        upstream_ready "$port" && return 0
        sleep 0.2
    done
    show_log "$WORK/unbound.log"
    die "unbound not answering on 127.0.0.1@$port after 10 s"
}

# stop_unbound: stop the current unbound and wait until it is gone (so a new
# one can bind the same port).
stop_unbound() {
    [ -n "$UNBOUND_PID" ] || return 0
    stop_pid "$UNBOUND_PID"
    UNBOUND_PID=
    return 0
}

# start_unbound_zone NAME KIND PORT DATA [CERT KEY]: one more unbound, for
# forward zones: KIND plain (UDP+TCP, plain DNS), dot (TLS with CERT/KEY),
# or blackhole (plain, but queries from 127.0.0.1 are dropped unanswered:
# a server that has gone silent; only 127.0.0.2 gets answers).
# It answers from DATA (unbound local-zone/local-data lines, one per line)
# and refuses the rest (local-zone "." refuse: a name that reaches the
# wrong server shows up as REFUSED). Every query it gets is logged
# (log-queries) to $WORK/unbound-NAME.log: count them with
# unbound_queries NAME QNAME. Sets UNBOUND_ZONE_PID.
UNBOUND_ZONE_PID=
start_unbound_zone() {
    local name=$1 kind=$2 port=$3 data=$4 cert=${5:-} key=${6:-}
    local conf="$WORK/unbound-$name.conf" log="$WORK/unbound-$name.log" deadline
    {
        echo "server:"
        echo "    interface: 127.0.0.1@$port"
        if [ "$kind" = dot ]; then
            echo "    tls-port: $port"
            echo "    tls-service-pem: \"$cert\""
            echo "    tls-service-key: \"$key\""
            echo "    do-udp: no"
        else
            echo "    port: $port"
            echo "    do-udp: yes"
        fi
        if [ "$kind" = blackhole ]; then
            echo "    access-control: 127.0.0.1/32 deny"
            echo "    access-control: 127.0.0.2/32 allow"
        fi
        _unbound_base "$name" "$log"
        echo "    log-queries: yes"
        echo '    local-zone: "." refuse'
        printf '%s\n' "$data" | sed 's/^/    /'
        printf 'remote-control:\n    control-enable: no\n'
    } >"$conf"
    unbound-checkconf "$conf" >"$WORK/unbound-checkconf.log" 2>&1 ||
        die "unbound-checkconf rejected $conf: $(cat "$WORK/unbound-checkconf.log")"
    unbound -d -c "$conf" >>"$log" 2>&1 &
    UNBOUND_ZONE_PID=$!
    register_pid "$UNBOUND_ZONE_PID"
    deadline=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        pid_alive "$UNBOUND_ZONE_PID" || { show_log "$log"; die "unbound $name exited at start-up"; }
        if [ "$kind" = dot ]; then
            timeout 3 kdig @127.0.0.1 -p "$port" +tls +timeout=2 +retry=0 version.bind CH TXT >/dev/null 2>&1 && return 0
        else
            timeout 3 dig @127.0.0.1 -p "$port" -b 127.0.0.2 +tries=1 +timeout=2 version.bind CH TXT >/dev/null 2>&1 && return 0
        fi
        sleep 0.2
    done
    show_log "$log"
    die "unbound $name not answering on 127.0.0.1@$port after 10 s"
}

# unbound_queries NAME QNAME: how many queries for QNAME (any type, letter
# case ignored) the unbound NAME has logged (NAME main: start_unbound's).
unbound_queries() {
    local log="$WORK/unbound-$1.log"
    [ "$1" = main ] && log="$WORK/unbound.log"
    grep -ic "info: [0-9.]* $2\. " "$log" 2>/dev/null
}

# ---------------------------------------------------------------------------
# dotstub
# ---------------------------------------------------------------------------

DOTSTUB_PID=

# find_tool VAR PATH: the program $VAR names (make check sets DOTSTUB,
# FAKE_UPSTREAM and TCP_CLIENTS), else PATH in the build tree: under the
# current dir (the top build dir, where make check runs), two levels up
# (tests/integration), or two levels above this file (an in-tree build).
# Skips the test when there is none.
find_tool() {
    local var=$1 rel=$2 c
    if [ -n "${!var:-}" ]; then
        [ -x "${!var}" ] || die "$var=${!var} is not an executable"
        return 0
    fi
    for c in "$PWD/$rel" "$PWD/../../$rel" "$LIB_DIR/../../$rel"; do
        if [ -x "$c" ]; then
            printf -v "$var" '%s/%s' "$(cd "$(dirname "$c")" && pwd)" "$(basename "$c")"
            export "${var?}"
            return 0
        fi
    done
    skip_test "$rel not built (make check builds it; or set $var=/path)"
}

find_dotstub() { find_tool DOTSTUB src/dotstub; }
find_fake() { find_tool FAKE_UPSTREAM tests/fake/fake_upstream; }
find_tcp_clients() { find_tool TCP_CLIENTS tests/fake/tcp_clients; }

# start_default [DOTSTUB ARGS...]: the usual start of a test: the test PKI,
# unbound serving its chain, and dotstub on a new port $PORT forwarding to
# it, verifying cloudflare-dns.com against the test CA, with ARGS added.
start_default() {
    find_dotstub
    make_pki "$WORK/pki"
    start_unbound "$PKI/server-chain.pem" "$PKI/server-key.pem"
    PORT=$(pick_port) || die "no free port"
    start_dotstub -l "127.0.0.1@$PORT" -u "127.0.0.1@$UPSTREAM_PORT#cloudflare-dns.com" \
        --ca-file "$PKI/ca.pem" "$@"
}

# start_dotstub ARGS...: run $DOTSTUB ARGS in the foreground, output to
# $WORK/dotstub.log (a previous log is kept as dotstub.log.N), wait <= 10 s for
# "dotstub ready" (printed once every listener is bound). A daemon that dies or
# never gets ready fails the test right here.
start_dotstub() {
    local deadline n=1
    find_dotstub
    while [ -e "$WORK/dotstub.log.$n" ]; do n=$((n + 1)); done
    [ -e "$WORK/dotstub.log" ] && mv "$WORK/dotstub.log" "$WORK/dotstub.log.$n"
    echo "# starting: ${DOTSTUB_UNDER:+$DOTSTUB_UNDER }$DOTSTUB $*" >"$WORK/dotstub.cmd"
    # DOTSTUB_UNDER: a command to run the daemon under (valgrind; word-split
    # on purpose). It must exec the daemon in its own process, so that the
    # PID and the signals stay the daemon's.
    # shellcheck disable=SC2086
    ${DOTSTUB_UNDER:-} "$DOTSTUB" "$@" >"$WORK/dotstub.log" 2>&1 &
    DOTSTUB_PID=$!
    register_pid "$DOTSTUB_PID"
    export DOTSTUB_PID
    deadline=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if grep -q 'dotstub ready' "$WORK/dotstub.log" 2>/dev/null; then
            return 0
        fi
        if ! pid_alive "$DOTSTUB_PID"; then
            wait "$DOTSTUB_PID" 2>/dev/null
            fail "dotstub exited during start-up (status $?): $DOTSTUB $*"
            finish
        fi
        sleep 0.1
    done
    fail "dotstub not ready after 10 s: $DOTSTUB $*"
    finish
}

# stop_dotstub: SIGTERM (dotstub drains and exits 0), returns its exit status.
stop_dotstub() {
    local rc
    [ -n "$DOTSTUB_PID" ] || return 0
    stop_pid "$DOTSTUB_PID" 50
    rc=$?
    DOTSTUB_PID=
    return "$rc"
}

# stats_line: ask dotstub for its counters (SIGUSR1) and print the line.
stats_line() {
    local before
    before=$(grep -c 'stats:' "$WORK/dotstub.log")
    kill -USR1 "$DOTSTUB_PID"
    for _ in $(seq 50); do
        [ "$(grep -c 'stats:' "$WORK/dotstub.log")" -gt "$before" ] && break
        sleep 0.1
    done
    grep 'stats:' "$WORK/dotstub.log" | tail -1
}

# stat NAME LINE: one counter of a stats line ("handshakes 2" -> 2).
stat() {
    sed -n "s/.*[ ,]$1 \([0-9]*\).*/\1/p" <<<"$2"
}

# dotstub_alive: still running (not exited, not a zombie)?
dotstub_alive() {
    [ -n "$DOTSTUB_PID" ] && pid_alive "$DOTSTUB_PID"
}

# ---------------------------------------------------------------------------
# DNS clients
# ---------------------------------------------------------------------------

# dig_q ARGS...: dig against dotstub's listener ($PORT). Later options override
# earlier ones, so callers may pass e.g. +timeout=8. The outer timeout is only
# a safety net.
dig_q() {
    timeout 30 dig @127.0.0.1 -p "${PORT:?PORT, the dotstub listener port, is not set}" \
        +tries=1 +timeout=6 "$@"
}

# kdig_q ARGS...: the same with kdig (an independent DNS implementation).
kdig_q() {
    timeout 30 kdig @127.0.0.1 -p "${PORT:?PORT, the dotstub listener port, is not set}" \
        +retry=0 +timeout=6 "$@"
}

# timed_query NAME [TYPE [KDIG ARGS...]]: "RDATA MS" for one query (TYPE
# default A) through dotstub: the answer's rdata ("-" for none; several
# records joined by ",") and kdig's own measure of the exchange in ms
# ("none" without an answer). Adds nothing of the client's start-up time.
timed_query() {
    local name=$1 type=${2:-A} out ms rdata
    shift 2 2>/dev/null || shift
    out=$(kdig_q "$@" "$name" "$type" 2>&1)
    ms=$(sed -n 's/^;; From .* in \([0-9.]*\) ms$/\1/p' <<<"$out")
    rdata=$(answer_rdata "$out" "$type" | paste -sd, -)
    echo "${rdata:--} ${ms:-none}"
}

# ms_max A B: the larger of two times in ms ("none" counts as infinite).
ms_max() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "none" || b == "none") { print "none"; exit }
        print (a + 0 > b + 0) ? a : b }'
}

# ms_below MS LIMIT: true when MS < LIMIT ("none" never is).
ms_below() {
    awk -v a="$1" -v l="$2" 'BEGIN { exit !(a != "none" && a + 0 < l + 0) }'
}

# dns_status OUTPUT: the rcode from the header line of dig/kdig output
# ("status: NOERROR," for dig, "status: NOERROR;" for kdig), or "NONE".
dns_status() {
    local re='status: ([A-Z]+)'
    if [[ $1 =~ $re ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo NONE
    fi
}

# dns_id OUTPUT: the message ID from the header line, or "NONE".
dns_id() {
    local re='id: ([0-9]+)'
    if [[ $1 =~ $re ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo NONE
    fi
}

# answer_rdata OUTPUT TYPE: rdata of the answer-section records of TYPE, one
# per line, sorted (record order is not significant). Comment lines (question
# section, headers) start with ';' in both dig and kdig.
answer_rdata() {
    printf '%s\n' "$1" | awk -v t="$2" '
        /^;/ || NF < 5 { next }
        $3 == "IN" && $4 == t {
            sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+/, "")
            print
        }' | sort
}

# ---------------------------------------------------------------------------
# Raw DNS over bash's /dev/udp and /dev/tcp (no python/perl needed)
# ---------------------------------------------------------------------------

# dns_query_esc ID NAME QTYPE_NUM [FLAGS_HEX]: a DNS query as printf escapes
# (\xHH), ready for `printf "$(dns_query_esc ...)"`. FLAGS default 0100 (RD).
dns_query_esc() {
    local id=$1 name=$2 qtype=$3 flags=${4:-0100} out label
    out=$(printf '\\x%02x\\x%02x' $((id >> 8 & 255)) $((id & 255)))
    out+="\\x${flags:0:2}\\x${flags:2:2}"
    out+='\x00\x01\x00\x00\x00\x00\x00\x00'
    local IFS=.
    for label in $name; do
        [ -n "$label" ] || continue
        out+=$(printf '\\x%02x' "${#label}")
        out+=$label
    done
    out+=$(printf '\\x00\\x%02x\\x%02x\\x00\\x01' $((qtype >> 8 & 255)) $((qtype & 255)))
    printf '%s' "$out"
}

# tcp_frame_esc ESC: prefix a message (as printf escapes) with its 2-byte length.
tcp_frame_esc() {
    local n
    # shellcheck disable=SC2059  # the escapes are the format, on purpose
    n=$(printf "$1" | wc -c)
    printf '\\x%02x\\x%02x%s' $((n >> 8 & 255)) $((n & 255)) "$1"
}

# udp_exchange ESC [WAIT_S]: send one datagram to dotstub ($PORT) and print
# the reply (if any) as hex bytes on one line ("" if none). A connected UDP socket (bash
# /dev/udp) gets only the reply of the port it sent to; dd reads exactly one
# datagram.
udp_exchange() {
    local esc=$1 wait=${2:-2}
    (
        exec 3<>"/dev/udp/127.0.0.1/$PORT" || exit 1
        # shellcheck disable=SC2059  # the escapes are the format, on purpose
        printf "$esc" >&3
        timeout "$wait" dd bs=65535 count=1 <&3 2>/dev/null | _hex_line
    )
}

# _hex_line: stdin as space-separated hex bytes on one line.
_hex_line() {
    od -An -v -tx1 | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'
}

# tcp_exchange ESC [WAIT_S]: write ESC (framed messages, as printf escapes) on
# one TCP connection in a single write, collect what comes back for WAIT_S
# seconds, print it as hex bytes on one line.
tcp_exchange() {
    local esc=$1 wait=${2:-3}
    (
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        # shellcheck disable=SC2059
        printf "$esc" >&3
        # a reset by dotstub is a legitimate end of the exchange here
        timeout "$wait" cat <&3 2>/dev/null | _hex_line
    )
}

# hex_msg_summary "HEX BYTES": for one DNS message given as hex bytes, print
# "id=N qr=B rcode=N ancount=N" (or "none" for no bytes at all).
hex_msg_summary() {
    local -a b
    read -ra b <<<"$1"
    [ ${#b[@]} -gt 0 ] || { echo none; return; }
    [ ${#b[@]} -ge 12 ] || { echo "short(${#b[@]})"; return; }
    echo "id=$((16#${b[0]}${b[1]})) qr=$((16#${b[2]} >> 7)) rcode=$((16#${b[3]} & 15)) ancount=$((16#${b[6]}${b[7]}))"
}

# hex_stream_summary "HEX BYTES": split a TCP byte stream into its
# length-prefixed messages and print hex_msg_summary for each, one per line.
hex_stream_summary() {
    local -a b
    local i=0 len
    read -ra b <<<"$1"
    while [ $((i + 2)) -le ${#b[@]} ]; do
        len=$((16#${b[i]}${b[i + 1]}))
        i=$((i + 2))
        if [ $((i + len)) -gt ${#b[@]} ]; then
            echo "partial"
            return
        fi
        hex_msg_summary "${b[*]:i:len}"
        i=$((i + len))
    done
}

# ---------------------------------------------------------------------------
# Common preconditions
# ---------------------------------------------------------------------------

need_cmd unbound unbound-checkconf certtool dig kdig ss timeout od dd

# expect_clean_stop: SIGTERM makes dotstub drain and exit 0 (DESIGN,
# Interfaces), then its log holds no sanitizer report (LeakSanitizer reports
# only at exit, hence the stop first).
expect_clean_stop() {
    stop_dotstub
    expect_eq "SIGTERM: dotstub exits 0" 0 "$?"
    expect_log_clean
}

# expect_log_clean: the sanitizers (configure --enable-sanitizers) print to
# stderr, i.e. into dotstub.log; any report there is a failure even if the
# daemon happened to survive.
expect_log_clean() {
    local log
    log=$(cat "$WORK"/dotstub.log* 2>/dev/null)
    expect_no_match "no sanitizer or valgrind report in dotstub's log" \
        'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|^==[0-9]+== ' "$log"
}

# ---------------------------------------------------------------------------
# fake_upstream: a programmable DoT upstream for fault tests (tests/fake/)
# ---------------------------------------------------------------------------

FAKE_PID=
FAKE_PORT=


# start_fake MODE [ARGS...]: fake_upstream --mode MODE ARGS on a new port of
# 127.0.0.1 with the test PKI's chain (make_pki first; $FAKE_CERT and
# $FAKE_KEY name other files, e.g. with --exact-chain), counters in
# $WORK/fake.stats, output in $WORK/fake.log. Waits <= 5 s for its ready
# line. Exports FAKE_PORT, FAKE_PID.
start_fake() {
    local mode=$1 port deadline
    shift
    find_fake
    [ -n "${PKI:-}" ] || die "start_fake: no PKI (call make_pki first)"
    port=$(pick_port) || die "no free port"
    rm -f "$WORK/fake.stats"
    "$FAKE_UPSTREAM" --port "$port" --cert "${FAKE_CERT:-$PKI/server-chain.pem}" \
        --key "${FAKE_KEY:-$PKI/server-key.pem}" --mode "$mode" --stats "$WORK/fake.stats" \
        "$@" >"$WORK/fake.log" 2>&1 &
    FAKE_PID=$!
    register_pid "$FAKE_PID"
    FAKE_PORT=$port
    export FAKE_PORT FAKE_PID
    deadline=$(($(now_ms) + 5000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        grep -q "^fake_upstream ready port=$port\$" "$WORK/fake.log" 2>/dev/null && return 0
        pid_alive "$FAKE_PID" || { show_log "$WORK/fake.log"; die "fake_upstream exited at start-up"; }
        sleep 0.05
    done
    show_log "$WORK/fake.log"
    die "fake_upstream not ready on 127.0.0.1@$port after 5 s"
}

# stop_fake: SIGTERM (the fake prints its counters and exits 0); returns its
# exit status.
stop_fake() {
    local rc
    [ -n "$FAKE_PID" ] || return 0
    stop_pid "$FAKE_PID"
    rc=$?
    FAKE_PID=
    return "$rc"
}

# fake_stat NAME: one counter (connections, handshakes, resumed, queries,
# answers) from the fake's stats file, rewritten whenever a counter changes;
# empty if there is none.
fake_stat() {
    [ -r "$WORK/fake.stats" ] || return 0
    tr ' ' '\n' <"$WORK/fake.stats" | sed -n "s/^$1=//p"
}
