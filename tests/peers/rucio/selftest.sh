#!/usr/bin/env bash
# Self-test of the Rucio test peer: install, start (with x509), check every auth path with curl,
# then stop.  Prints one line per check and finally "N passed, M failed"; exits non-zero on failure.
#
#   tests/peers/rucio/selftest.sh [VENV_DIR]        (VENV_DIR is passed on to install.sh)
#
# Prerequisites: python3 (venv, pip), openssl, ssh-keygen, curl, perl, base64.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$("$here/install.sh" "$@") || { echo "selftest: install.sh failed" >&2; exit 1; }
py=$venv/bin/python
peer() { "$py" "$here/peer.py" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rucio-peer-selftest.XXXXXX")
run=$work/run
cleanup() {
    [ -f "$run/peer-state.json" ] && peer stop --dir "$run" >/dev/null 2>&1
    [ -f "$work/run2/peer-state.json" ] && peer stop --dir "$work/run2" >/dev/null 2>&1
    [ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "selftest: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# req ARGS... : curl into $work/h (headers) and $work/b (body); sets $code
req() { code=$(curl -s -D "$work/h" -o "$work/b" -w '%{http_code}' "$@"); }
hdr() { tr -d '\r' < "$work/h" | sed -n "s/^$1: //Ip" | tail -1; }
body() { cat "$work/b"; }
json() { "$py" -c "import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print('' if v is None else v)" "$work/peer.json" "$1"; }
# SSH wire signature (string "rsa-sha2-256" || string PKCS#1 v1.5 SHA-256 signature), base64
ssh_sig() { { printf '%s' rsa-sha2-256 | perl -0777 -ne 'print pack("N",length),$_'
    printf '%s' "$1" | openssl dgst -sha256 -sign "$2" -binary | perl -0777 -ne 'print pack("N",length),$_'; } | base64 -w0; }
# peer_procs DIR: pids of live processes started by peer.py for RUN_DIR (excluding this check itself)
peer_procs() { "$py" - "$1" <<'PY'
import os, sys
d, skip = sys.argv[1], {os.getpid(), os.getppid()}
for p in os.listdir("/proc"):
    if not p.isdigit() or int(p) in skip:
        continue
    try:
        cmd = open("/proc/%s/cmdline" % p, "rb").read().decode(errors="replace").split("\0")
        state = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        continue
    if state != "Z" and d in cmd and any(("peer.py" in c or "gunicorn" in c) for c in cmd):
        print(p)
PY
}
expires_re='^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC$'

# --- keys: PEM (PKCS#1) RSA key, OpenSSH-format RSA key (registered too), unregistered key
ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -C pem-key -f "$work/id_pem"
ssh-keygen -q -t rsa -N '' -C openssh-key -f "$work/id_openssh"
cp "$work/id_openssh" "$work/id_openssh_as_pem" && ssh-keygen -q -p -m PEM -P '' -N '' -f "$work/id_openssh_as_pem" >/dev/null
ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -C stranger -f "$work/id_stranger"

# --- start
t0=$(date +%s%N)
peer start --dir "$run" --ssh-pubkey "$work/id_pem.pub" --ssh-pubkey "$work/id_openssh.pub" --x509 \
    --watch-pid $$ > "$work/peer.json" 2> "$work/start.log"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "start exits 0 and prints one JSON line (${ms} ms)" \
    test $rc = 0 -a "$(wc -l < "$work/peer.json")" = 1
if [ $rc != 0 ]; then cat "$work/start.log" >&2; echo "$passed passed, $((failed)) failed"; exit 1; fi
U=$(json url) X=$(json x509_url) CA=$(json ca_cert) CADIR=$(json ca_dir)
CERT=$(json client_cert) KEY=$(json client_key) PROXY=$(json proxy)
BADCERT=$(json bad_client_cert) BADKEY=$(json bad_client_key) DN=$(json client_dn)
USER_=$(json username) PASS_=$(json password)
check "JSON has all fields" "$py" -c '
import json,sys,os; d=json.load(open(sys.argv[1]))
need="url x509_url ca_cert ca_dir client_cert client_key proxy bad_client_cert bad_client_key db pids account username password".split()
assert all(d.get(k) for k in need), [k for k in need if not d.get(k)]
assert d["account"]=="root" and d["username"]=="rucio-test" and d["password"]=="rucio-test-password"
assert all(os.path.exists(d[k]) for k in need[2:10])
assert d["url"].startswith("http://127.0.0.1:") and d["x509_url"].startswith("https://127.0.0.1:")' "$work/peer.json"
req "http://127.0.0.2:${U##*:}/ping"; c1=$code; req "https://127.0.0.2:${X##*:}/ping" -k; c2=$code
check "servers bound to 127.0.0.1 only (127.0.0.2:same port refused)" test "$c1 $c2" = "000 000"
check "ca_dir holds <openssl x509 -hash>.0" test -f "$CADIR/$(openssl x509 -hash -noout -in "$CA").0"
check "key files are mode 600" test "$(stat -c %a "$KEY" "$PROXY" | sort -u)" = 600

# --- ping
req -H 'Accept: application/json' "$U/ping"
check "ping 200 {\"version\":\"41.5.1\"}" test "$code $(body)" = '200 {"version":"41.5.1"}'

# --- userpass
count0=$(peer count-tokens --dir "$run")
req -H "X-Rucio-Account: root" -H "X-Rucio-Username: $USER_" -H "X-Rucio-Password: $PASS_" "$U/auth/userpass"
TOK=$(hdr X-Rucio-Auth-Token)
check "userpass root: 200 + token" test "$code" = 200 -a -n "$TOK"
check "userpass: X-Rucio-Auth-Account root, token root-rucio-test-unknown-<hex>" \
    bash -c '[[ $0 = root && $1 =~ ^root-rucio-test-unknown-[0-9a-f]{32}$ ]]' "$(hdr X-Rucio-Auth-Account)" "$TOK"
check "userpass: X-Rucio-Auth-Token-Expires is RFC 1123-ish 'UTC'" bash -c '[[ $0 =~ $1 ]]' "$(hdr X-Rucio-Auth-Token-Expires)" "$expires_re"
check "count-tokens +1 after a userpass login" test "$(peer count-tokens --dir "$run")" = $((count0 + 1))

req -H "X-Rucio-Account: root" -H "X-Rucio-Username: $USER_" -H "X-Rucio-Password: wrong" "$U/auth/userpass"
check "userpass wrong password: 401 CannotAuthenticate (headers + JSON body)" bash -c '
    [ "$0" = 401 ] && [ "$1" = CannotAuthenticate ] &&
    [ "$2" = "Cannot authenticate to account root with given credentials" ] &&
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"ExceptionClass\"]==\"CannotAuthenticate\" and d[\"ExceptionMessage\"]" "$3"' \
    "$code" "$(hdr ExceptionClass)" "$(hdr ExceptionMessage)" "$work/b"
check "count-tokens unchanged after a failed login" test "$(peer count-tokens --dir "$run")" = $((count0 + 1))

req -H "X-Rucio-Username: $USER_" -H "X-Rucio-Password: $PASS_" "$U/auth/userpass"
check "userpass without account, identity of root+alice: 206, X-Rucio-Auth-Accounts, JSON list, no token" bash -c '
    [ "$0" = 206 ] && [ "$(tr , "\n" <<<"$1" | sort | paste -sd,)" = alice,root ] && [ -z "$3" ] &&
    python3 -c "import json,sys; assert sorted(json.load(open(sys.argv[1])))==[\"alice\",\"root\"]" "$2"' \
    "$code" "$(hdr X-Rucio-Auth-Accounts)" "$work/b" "$(hdr X-Rucio-Auth-Token)"
req -H "X-Rucio-Username: $USER_" -H "X-Rucio-Password: wrong" "$U/auth/userpass"
check "206 comes before the password check (wrong password, no account -> 206 too)" test "$code" = 206
req -H "X-Rucio-Account: alice" -H "X-Rucio-Username: $USER_" -H "X-Rucio-Password: $PASS_" "$U/auth/userpass"
check "rucio-test with X-Rucio-Account: alice -> 200 alice token" bash -c '[ "$0" = 200 ] && [[ $1 == alice-rucio-test-* ]]' "$code" "$(hdr X-Rucio-Auth-Token)"
req -H "X-Rucio-Username: alice-user" -H "X-Rucio-Password: alice-password" "$U/auth/userpass"
check "alice-user without account -> 200, X-Rucio-Auth-Account: alice" test "$code $(hdr X-Rucio-Auth-Account)" = "200 alice"

# --- whoami
req -H "X-Rucio-Auth-Token: $TOK" "$U/accounts/whoami"
check "whoami: 303 Location root" test "$code $(hdr Location)" = "303 root"
req -L -H "X-Rucio-Auth-Token: $TOK" "$U/accounts/whoami"
check "whoami -L: 200 account root" bash -c '[ "$0" = 200 ] && python3 -c "import json,sys; assert json.load(open(sys.argv[1]))[\"account\"]==\"root\"" "$1"' "$code" "$work/b"

# --- ssh
c=$(peer count-tokens --dir "$run")
req -H "X-Rucio-Account: root" "$U/auth/ssh_challenge_token"
CH=$(hdr X-Rucio-SSH-Challenge-Token)
check "ssh challenge: 200 challenge-<n>-root-<exp>" bash -c '[ "$0" = 200 ] && [[ $1 =~ ^challenge-[0-9]+-root-[0-9]+$ ]]' "$code" "$CH"
req -H "X-Rucio-Account: root" -H "X-Rucio-SSH-Signature: $(ssh_sig "$CH" "$work/id_pem")" "$U/auth/ssh"
STOK=$(hdr X-Rucio-Auth-Token)
check "ssh (PEM key): 200 token root-ssh:pubkey-unknown-<hex> + Expires" bash -c '[ "$0" = 200 ] && [[ $1 =~ ^root-ssh:pubkey-unknown-[0-9a-f]{32}$ && $2 =~ $3 ]]' \
    "$code" "$STOK" "$(hdr X-Rucio-Auth-Token-Expires)" "$expires_re"
req -H "X-Rucio-Account: root" -H "X-Rucio-SSH-Signature: $(ssh_sig "$CH" "$work/id_openssh_as_pem")" "$U/auth/ssh"
check "ssh (second registered key, OpenSSH-format pubkey): 200" test "$code" = 200 -a -n "$(hdr X-Rucio-Auth-Token)"
req -H "X-Rucio-Account: root" -H "X-Rucio-SSH-Signature: $(ssh_sig "$CH" "$work/id_stranger")" "$U/auth/ssh"
check "ssh (unregistered key): 401 CannotAuthenticate" test "$code $(hdr ExceptionClass)" = "401 CannotAuthenticate"
check "count-tokens +2 after two ssh logins (challenges not counted)" test "$(peer count-tokens --dir "$run")" = $((c + 2))
req -L -H "X-Rucio-Auth-Token: $STOK" "$U/accounts/whoami"
check "whoami with the ssh token: 200" test "$code" = 200

# --- x509 (TLS front end)
c=$(peer count-tokens --dir "$run")
req --cacert "$CA" --cert "$CERT" --key "$KEY" "$X/auth/x509"
XTOK=$(hdr X-Rucio-Auth-Token)
check "x509 client cert: 200, token root-<DN>-unknown-<hex>" bash -c '[ "$0" = 200 ] && [[ $1 == "root-$2-unknown-"* ]]' "$code" "$XTOK" "$DN"
req --cacert "$CA" --cert "$PROXY" "$X/auth/x509_proxy"
check "x509_proxy (RFC 3820 proxy file): 200, same DN" bash -c '[ "$0" = 200 ] && [[ $1 == "root-$2-unknown-"* ]]' "$code" "$(hdr X-Rucio-Auth-Token)" "$DN"
req --capath "$CADIR" --cert "$PROXY" "$X/auth/x509"
check "x509 trusting the CA directory (--capath): 200" test "$code" = 200
check "count-tokens +3 after three x509 logins" test "$(peer count-tokens --dir "$run")" = $((c + 3))
req --cacert "$CA" --cert "$BADCERT" --key "$BADKEY" "$X/auth/x509"
check "x509 unregistered DN: 401 IdentityError" bash -c '[ "$0 $1" = "401 IdentityError" ] && grep -q "does not exist" "$2"' "$code" "$(hdr ExceptionClass)" "$work/b"
req --cacert "$CA" "$X/auth/x509"
check "x509 without client cert: 401 Cannot get DN" test "$code|$(hdr ExceptionMessage)" = "401|Cannot get DN"
req "$U/auth/x509"
check "x509 on the plain HTTP port: 401 Cannot get DN" test "$code|$(hdr ExceptionMessage)" = "401|Cannot get DN"
req -H "X-Rucio-Auth-Token: $XTOK" --cacert "$CA" -L "$X/accounts/whoami"
check "whoami over TLS with the x509 token: 200" test "$code" = 200

# --- token expiry
req -H "X-Rucio-Auth-Token: $TOK" "$U/accounts/whoami"   # make sure the token is in gunicorn's cache
n=$(peer expire-tokens --dir "$run" --no-flush)
req -H "X-Rucio-Auth-Token: $TOK" "$U/accounts/whoami"
check "expire-tokens --no-flush ($n rows): cached validation still accepts the token (303)" test "$code" = 303
n=$(peer expire-tokens --dir "$run")
req -H "X-Rucio-Auth-Token: $TOK" "$U/accounts/whoami"
check "expire-tokens: next API call with the old token -> 401 CannotAuthenticate" \
    test "$code|$(hdr ExceptionClass)|$(hdr ExceptionMessage)" = "401|CannotAuthenticate|Cannot authenticate with given credentials"
req -H "X-Rucio-Auth-Token: $XTOK" --cacert "$CA" "$X/accounts/whoami"
check "expire-tokens: old x509 token over TLS -> 401 too" test "$code" = 401
req -H "X-Rucio-Auth-Token: $TOK" "$U/auth/validate"
check "expired token on /auth/validate -> 500 CannotAuthenticate (server quirk)" test "$code $(hdr ExceptionClass)" = "500 CannotAuthenticate"
c=$(peer count-tokens --dir "$run")
req -H "X-Rucio-Account: root" -H "X-Rucio-Username: $USER_" -H "X-Rucio-Password: $PASS_" "$U/auth/userpass"
NTOK=$(hdr X-Rucio-Auth-Token)
rows=$("$py" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM tokens WHERE account='root' AND token NOT LIKE 'challenge-%'\").fetchone()[0])" "$(json db)")
check "re-login after expiry: 200, count-tokens +1, while rucio deleted the expired rows (tokens rows: $rows)" \
    test "$code" = 200 -a "$(peer count-tokens --dir "$run")" = $((c + 1)) -a "$rows" = 1
req -L -H "X-Rucio-Auth-Token: $NTOK" "$U/accounts/whoami"
check "whoami with the new token: 200" test "$code" = 200

# --- 8 concurrent logins -> exactly +8
c=$(peer count-tokens --dir "$run")
for i in 1 2 3 4 5 6 7 8; do
    curl -s -o /dev/null -w '%{http_code}\n' -H "X-Rucio-Account: root" -H "X-Rucio-Username: $USER_" \
        -H "X-Rucio-Password: $PASS_" "$U/auth/userpass" > "$work/par.$i" &
done
wait
check "8 concurrent userpass logins: all 200, count-tokens +8" \
    test "$(cat "$work"/par.* | sort -u)" = 200 -a "$(peer count-tokens --dir "$run")" = $((c + 8))
check "count-logins == count-tokens; alice counted separately" \
    test "$(peer count-logins --dir "$run")" = "$(peer count-tokens --dir "$run")" -a "$(peer count-tokens --dir "$run" --account alice)" = 2

# --- a second peer at the same time + the watchdog
sleep 600 & sleeper=$!
peer start --dir "$work/run2" --ssh-pubkey "$work/id_pem.pub" --watch-pid $sleeper > "$work/peer2.json" 2>> "$work/start.log"
U2=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['url'])" "$work/peer2.json")
req "$U2/ping"
check "second peer runs at the same time on another port" test "$code" = 200 -a "$U2" != "$U"
kill $sleeper; wait $sleeper 2>/dev/null; sleeper=
check "second peer: its processes are visible" test -n "$(peer_procs "$work/run2")"
for _ in $(seq 50); do [ -z "$(peer_procs "$work/run2")" ] && break; sleep 0.1; done
left2=$(peer_procs "$work/run2"); req "$U2/ping"; c2=$code; req "$U/ping"
check "watchdog: killing the watched pid stops that peer (and only it)" test -z "$left2" -a "$c2" = 000 -a "$code" = 200

# --- stop
pids=$(cat "$run/pids")
peer stop --dir "$run" 2>> "$work/start.log"
# (a killed daemon may stay a zombie for a moment until init reaps it: zombies count as gone)
alive=$("$py" -c '
import sys
for p in sys.argv[1:]:
    try:
        if open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[0] != "Z": print(p)
    except OSError: pass' $pids)
check "stop: no recorded pid and no process of the run dir left" test -z "$alive$(peer_procs "$run")"
req "$U/ping"
check "stop: port closed" test "$code" = 000

echo "$passed passed, $failed failed"
[ $failed = 0 ]
