#!/usr/bin/env bash
# Self-test of the test IdP: starts several instances of server.mjs and drives
# every documented behaviour with curl. Needs node, curl, jq, openssl.
# Usage: tests/idp/selftest.sh        (exit status 0 = all checks passed)
set -uo pipefail
cd "$(dirname "$0")"

for tool in node curl jq openssl; do
  command -v "$tool" >/dev/null || { echo "selftest: $tool is required" >&2; exit 2; }
done
[ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund >&2 || exit 2

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

PASS=0
FAIL=0
check() {
  local desc=$1; shift
  if "$@"; then PASS=$((PASS + 1)); echo "ok   - $desc"
  else FAIL=$((FAIL + 1)); echo "FAIL - $desc"; fi
}
eq() { [ "$1" = "$2" ] || { echo "       expected [$2], got [$1]"; return 1; }; }
ne() { [ "$1" != "$2" ] || { echo "       expected something other than [$2]"; return 1; }; }
has() { [[ $1 == *"$2"* ]] || { echo "       [$1] does not contain [$2]"; return 1; }; }
section() { echo; echo "## $*"; }

# http ARGS... -> sets BODY and CODE
http() { local out; out=$(curl -s -w '\n%{http_code}' "$@"); CODE=${out##*$'\n'}; BODY=${out%$'\n'*}; }
j() { jq -r "$1" <<<"$BODY"; }
b64url_dec() { local s; s=$(tr '_-' '/+' <<<"$1"); while (( ${#s} % 4 )); do s+='='; done; base64 -d <<<"$s" 2>/dev/null; }
jwt_header() { b64url_dec "$(cut -d. -f1 <<<"$1")"; }
jwt_payload() { b64url_dec "$(cut -d. -f2 <<<"$1")"; }
is_jwt() { [[ $1 =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]; }
not() { ! "$@"; }

# start_idp VAR [ENV=VAL...]: starts server.mjs, puts its issuer in $VAR, pid in $VAR_PID
start_idp() {
  local name=$1; shift
  env "$@" node server.mjs </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  local i
  for i in $(seq 150); do
    grep -q '^ISSUER=' "$TMP/$name.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  local iss
  iss=$(sed -n 's/^ISSUER=//p' "$TMP/$name.out")
  if [ -z "$iss" ]; then echo "idp $name did not start:"; cat "$TMP/$name.err"; exit 1; fi
  printf -v "$name" %s "$iss"
  printf -v "${name}_PID" %s "$pid"
}

CB=http://127.0.0.1:53999/callback   # nothing needs to listen there
TE=urn:ietf:params:oauth:grant-type:token-exchange
DCG=urn:ietf:params:oauth:grant-type:device_code
ATT=urn:ietf:params:oauth:token-type:access_token
RTT=urn:ietf:params:oauth:token-type:refresh_token
API=https://api.example.test
OTHER=https://other.example.test

# authcode ISSUER CLIENT QUERY JAR -> AUTHCODE, VER, CALLBACK (follows 303s with a cookie jar)
authcode() {
  local iss=$1 client=$2 q=$3 jar=$4 n=0
  VER=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
  local ch
  ch=$(printf %s "$VER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
  local url="$iss/auth?client_id=$client&response_type=code&redirect_uri=$CB&code_challenge=$ch&code_challenge_method=S256&state=st1&$q"
  AUTHCODE=; CALLBACK=
  while [[ $url != "$CB"* ]]; do
    url=$(curl -s -o /dev/null -c "$jar" -b "$jar" -w '%{redirect_url}' "$url")
    n=$((n + 1))
    if [ -z "$url" ] || [ $n -gt 12 ]; then return 1; fi
  done
  CALLBACK=$url
  AUTHCODE=$(sed -nE 's/.*[?&]code=([^&]+).*/\1/p' <<<"$url")
}
# login ISSUER QUERY -> token response in BODY (native-app, fresh jar)
login() {
  rm -f "$TMP/jar"
  authcode "$1" native-app "$2" "$TMP/jar" || { BODY='{}'; return 1; }
  http -d grant_type=authorization_code -d client_id=native-app -d "code=$AUTHCODE" \
    -d "redirect_uri=$CB" -d "code_verifier=$VER" "${@:3}" "$1/token"
}

# device_start ISSUER CLIENTARGS... -> DC, UC
device_start() {
  local iss=$1; shift
  http "$@" -d 'scope=openid offline_access' "$iss/device/auth"
  DEVAUTH=$BODY; DC=$(j .device_code); UC=$(j .user_code)
}
# poll ISSUER CLIENTARGS... -> BODY/CODE
poll() { local iss=$1; shift; http "$@" -d grant_type=$DCG -d "device_code=$DC" "$iss/token"; }
# device_xsrf ISSUER JAR [QUERY] -> XSRF
device_xsrf() {
  XSRF=$(curl -s -c "$2" -b "$2" "$1/device?user_code=$UC${3:-}" | sed -n 's/.*name="xsrf" value="\([^"]*\)".*/\1/p')
}
# device_approve ISSUER JAR [extra curl args for the POST]; succeeds if the success page is reached
device_approve() {
  local iss=$1 jar=$2; shift 2
  device_xsrf "$iss" "$jar"
  local url
  url=$(curl -s -D "$TMP/dh" -o /dev/null -c "$jar" -b "$jar" -w '%{redirect_url}' \
    -d "xsrf=$XSRF" -d "user_code=$UC" -d confirm=yes "$@" "$iss/device")
  while [ -n "$url" ]; do
    url=$(curl -s -D "$TMP/dh" -o /dev/null -c "$jar" -b "$jar" -w '%{redirect_url}' "$url")
  done
  grep -qi '^x-test-device-page: success' "$TMP/dh"
}
# device_deny ISSUER JAR: the confirm form's abort button
device_deny() {
  device_xsrf "$1" "$2"
  curl -s -D "$TMP/dh" -o /dev/null -c "$2" -b "$2" -d "xsrf=$XSRF" -d "user_code=$UC" -d abort=yes "$1/device"
  grep -qi '^x-test-device-page: aborted' "$TMP/dh"
}

# private_key_jwt helpers (jose from node_modules)
pk() { node --input-type=module -e "$PKJS" "$@"; }
PKJS='
import * as jose from "jose";
import * as fs from "node:fs";
const [cmd, ...a] = process.argv.slice(1);
if (cmd === "gen") {
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const kid = "pk-" + Date.now();
  fs.writeFileSync(a[0], JSON.stringify({ ...(await jose.exportJWK(privateKey)), kid, alg: "RS256" }));
  fs.writeFileSync(a[1], JSON.stringify({ keys: [{ ...(await jose.exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] }));
} else if (cmd === "assert") {
  const [keyFile, clientId, aud, jti] = a;
  const jwk = JSON.parse(fs.readFileSync(keyFile, "utf8"));
  const key = await jose.importJWK(jwk, "RS256");
  process.stdout.write(await new jose.SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid: jwk.kid })
    .setIssuer(clientId).setSubject(clientId).setAudience(aud)
    .setJti(jti || crypto.randomUUID()).setIssuedAt().setExpirationTime("2m").sign(key));
}
'
pk gen "$TMP/pk.json" "$TMP/pk-pub.json"
pk gen "$TMP/pk2.json" "$TMP/pk2-pub.json"   # a key the IdP does not know

start_idp B PKJWT_JWKS_FILE="$TMP/pk-pub.json"
echo "main IdP: $B"

##############################################################################
section "1. process, readiness, discovery, JWKS"
check "stdout line is ISSUER=http://127.0.0.1:<port>" \
  eq "$(grep -cE '^ISSUER=http://127\.0\.0\.1:[0-9]+$' "$TMP/B.out")" 1
PORT_B=${B##*:}
if command -v ss >/dev/null; then
  check "listens on 127.0.0.1 only" eq "$(ss -Hltn "sport = :$PORT_B" | awk '{print $4}' | sort -u)" "127.0.0.1:$PORT_B"
fi
http "$B/.well-known/openid-configuration"
check "openid-configuration issuer" eq "$(j .issuer)" "$B"
check "only S256 PKCE" eq "$(jq -c .code_challenge_methods_supported <<<"$BODY")" '["S256"]'
check "grant types advertise device_code + token-exchange" \
  eq "$(j '[.grant_types_supported[]|select(.=="'$DCG'" or .=="'$TE'")]|length')" 2
check "endpoints" eq "$(j '[.token_endpoint,.device_authorization_endpoint,.introspection_endpoint,.revocation_endpoint,.jwks_uri]|join(" ")')" \
  "$B/token $B/device/auth $B/token/introspection $B/token/revocation $B/jwks"
check "scopes_supported include resource scopes" eq "$(j '.scopes_supported|join(" ")')" \
  "openid offline_access profile email storage.read:/ storage.create:/home storage.modify:/home storage.stage:/ api:read api:write other:read rucio"
http "$B/.well-known/oauth-authorization-server"
check "oauth-authorization-server metadata" eq "$CODE $(j .issuer)" "200 $B"
http "$B/jwks"
KID1=$(j '.keys[0].kid')
check "JWKS: one RSA RS256 sig key, public only" eq "$(j '[(.keys|length), .keys[0].kty, .keys[0].alg, .keys[0].use, (.keys[0].d==null)]|join(" ")')" "1 RSA RS256 sig true"

##############################################################################
section "2. client_credentials"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials -d 'scope=api:read api:write' -d resource=$API "$B/token"
AT=$(j .access_token)
check "cc-basic + resource -> JWT, expires_in 600" eq "$CODE $(j .expires_in) $(j .scope)" "200 600 api:read api:write"
check "JWT header typ at+jwt RS256 with current kid" eq "$(jwt_header "$AT" | jq -r '[.typ,.alg,.kid]|join(" ")')" "at+jwt RS256 $KID1"
check "JWT claims sub/client_id/aud/iss/exp" eq "$(jwt_payload "$AT" | jq -r '[.sub,.client_id,.aud,.iss,.exp-.iat]|join(" ")')" \
  "cc-basic cc-basic $API $B 600"
http -d client_id=cc-post -d client_secret=cc-post-secret -d grant_type=client_credentials -d scope=other:read -d resource=$OTHER "$B/token"
check "cc-post (client_secret_post) + other resource -> aud other-api" \
  eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.scope,.aud]|join(" ")')" "cc-post other:read other-api"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials "$B/token"
CC_OPAQUE=$(j .access_token)
check "no resource -> opaque token" not is_jwt "$CC_OPAQUE"
http -u cc-basic:wrong -d grant_type=client_credentials "$B/token"
check "bad secret (basic) -> 401 invalid_client" eq "$CODE $(j .error)" "401 invalid_client"
http -d client_id=cc-post -d client_secret=wrong -d grant_type=client_credentials "$B/token"
check "bad secret (post) -> 401 invalid_client" eq "$CODE $(j .error)" "401 invalid_client"
http -u nobody:x -d grant_type=client_credentials "$B/token"
check "unknown client -> 401 invalid_client" eq "$CODE $(j .error)" "401 invalid_client"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials -d scope=other:read -d resource=$API "$B/token"
check "scope not offered by the resource -> 400 invalid_scope" eq "$CODE $(j .error) $(j .scope)" "400 invalid_scope other:read"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials -d scope=api:read "$B/token"
check "resource scope without resource -> 400 invalid_scope" eq "$CODE $(j .error)" "400 invalid_scope"
http -u cc-basic:wrong -d grant_type=client_credentials -d scope=bogus "$B/token"
check "bad secret + bad scope -> invalid_client wins" eq "$CODE $(j .error)" "401 invalid_client"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials -d scope=api:read -d resource=https://unknown.example.test "$B/token"
check "unknown resource -> 400 invalid_target" eq "$CODE $(j .error)" "400 invalid_target"
http -u cc-basic:cc-basic-secret -d grant_type=password "$B/token"
check "unsupported grant -> unsupported_grant_type" eq "$CODE $(j .error)" "400 unsupported_grant_type"
http -u cc-basic:cc-basic-secret -d grant_type=$DCG -d device_code=x "$B/token"
check "grant not allowed for client -> invalid_request (upstream, not unauthorized_client)" eq "$CODE $(j .error)" "400 invalid_request"

##############################################################################
section "3. private_key_jwt (pkjwt-client, PKJWT_JWKS_FILE)"
JTI=$(openssl rand -hex 8)
ASSERTION=$(pk assert "$TMP/pk.json" pkjwt-client "$B/token" "$JTI")
CAT=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
http -d grant_type=client_credentials -d client_id=pkjwt-client -d client_assertion_type=$CAT -d "client_assertion=$ASSERTION" \
  -d scope=api:read -d resource=$API "$B/token"
check "private_key_jwt (aud = token endpoint) -> token" eq "$CODE $(jwt_payload "$(j .access_token)" | jq -r .sub)" "200 pkjwt-client"
http -d grant_type=client_credentials -d client_id=pkjwt-client -d client_assertion_type=$CAT -d "client_assertion=$ASSERTION" "$B/token"
check "replayed assertion (same jti) -> 401 invalid_client" eq "$CODE $(j .error)" "401 invalid_client"
http -d grant_type=client_credentials -d client_assertion_type=$CAT -d "client_assertion=$(pk assert "$TMP/pk.json" pkjwt-client "$B")" "$B/token"
check "aud = issuer also accepted, client_id optional" eq "$CODE" "200"
http -d grant_type=client_credentials -d client_assertion_type=$CAT -d "client_assertion=$(pk assert "$TMP/pk2.json" pkjwt-client "$B/token")" "$B/token"
check "assertion signed by an unknown key -> 401 invalid_client" eq "$CODE $(j .error)" "401 invalid_client"

##############################################################################
section "4. authorization code + PKCE (native-app, headless login/consent)"
rm -f "$TMP/jar"
authcode "$B" native-app "scope=openid+offline_access+email+profile&prompt=consent&login_hint=alice" "$TMP/jar"
check "callback on the loopback redirect with code, state, iss" \
  eq "$(sed -E 's/code=[^&]+/code=X/' <<<"$CALLBACK")" "$CB?code=X&state=st1&iss=$(jq -rn --arg u "$B" '$u|@uri')"
http -d grant_type=authorization_code -d client_id=native-app -d "code=$AUTHCODE" -d "redirect_uri=$CB" -d code_verifier=wrong-verifier-wrong-verifier-wrong-verifier-00 "$B/token"
check "wrong PKCE verifier -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
authcode "$B" native-app "scope=openid+offline_access+email+profile&prompt=consent&login_hint=alice" "$TMP/jar"
http -d grant_type=authorization_code -d client_id=native-app -d "code=$AUTHCODE" -d "redirect_uri=$CB" -d "code_verifier=$VER" "$B/token"
UAT=$(j .access_token); URT=$(j .refresh_token); IDT=$(j .id_token)
check "token response: AT+RT+id_token, scope" eq "$CODE $(j .scope) $(j .token_type)" "200 openid offline_access email profile Bearer"
check "id_token sub/aud/iss, exp-iat = 3600" eq "$(jwt_payload "$IDT" | jq -r '[.sub,.aud,.iss,.exp-.iat]|join(" ")')" "alice native-app $B 3600"
http -H "Authorization: Bearer $UAT" "$B/me"
check "userinfo: email <sub>@example.test" eq "$(j '[.sub,.email,.email_verified,.preferred_username]|join(" ")')" "alice alice@example.test true alice"
login "$B" "scope=openid&login_hint=reuse"
RAT=$(j .access_token)
http -d grant_type=authorization_code -d client_id=native-app -d "code=$AUTHCODE" -d "redirect_uri=$CB" -d "code_verifier=$VER" "$B/token"
check "reused code -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -H "Authorization: Bearer $RAT" "$B/me"
check "... and the reuse revoked the tokens issued from that code" eq "$CODE" "401"
authcode "$B" native-app "scope=openid+offline_access+email&login_hint=alice" "$TMP/jar"
http -d grant_type=authorization_code -d client_id=native-app -d "code=$AUTHCODE" -d "redirect_uri=$CB" -d "code_verifier=$VER" "$B/token"
check "offline_access without prompt=consent -> silently dropped, no RT (upstream/OIDC rule)" eq "$(j .refresh_token) $(j .scope)" "null openid email"
login "$B" "scope=openid+offline_access+api:read+api:write&resource=$API&prompt=consent&login_hint=bob" -d resource=$API
BOB_JWT=$(j .access_token); BOB_RT=$(j .refresh_token)
check "code flow with resource -> JWT AT for the user" eq "$(jwt_payload "$BOB_JWT" | jq -r '[.sub,.aud,.scope,.client_id]|join(" ")')" \
  "bob $API api:read api:write native-app"
check "... and a refresh token" ne "$BOB_RT" null
login "$B" "scope=openid"
check "no login_hint -> sub test-user" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "test-user"
rm -f "$TMP/jar"
authcode "$B" native-app "scope=openid&login_hint=carol" "$TMP/jar"; A1=$AUTHCODE
authcode "$B" native-app "scope=openid&login_hint=dave" "$TMP/jar"
http -d grant_type=authorization_code -d client_id=native-app -d "code=$AUTHCODE" -d "redirect_uri=$CB" -d "code_verifier=$VER" "$B/token"
check "same cookie jar, other login_hint -> switches user (dave)" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "dave"
VER=x; CH=$(printf %s "0123456789012345678901234567890123456789abc" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$B/auth?client_id=native-app&response_type=code&redirect_uri=$CB&scope=openid&state=s")
check "missing PKCE -> redirect with error=invalid_request" has "$LOC" "error=invalid_request"
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$B/auth?client_id=native-app&response_type=code&redirect_uri=$CB&scope=openid&state=s&code_challenge=$CH&code_challenge_method=plain")
check "PKCE plain -> redirect with error=invalid_request" has "$LOC" "error=invalid_request"
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$B/auth?client_id=native-app&response_type=code&redirect_uri=$CB&scope=openid+api:read&resource=https://nope.example.test&state=s&code_challenge=$CH&code_challenge_method=S256")
check "unknown resource at /auth -> redirect with error=invalid_target" has "$LOC" "error=invalid_target"
http -H 'Accept: text/html' "$B/auth?client_id=native-app&response_type=code&redirect_uri=http://localhost:53999/callback&scope=openid&code_challenge=$CH&code_challenge_method=S256"
check "localhost redirect_uri -> JSON (not HTML) invalid_redirect_uri" eq "$CODE $(j .error)" "400 invalid_redirect_uri"
rm -f "$TMP/jar"
url="$B/auth?client_id=native-app&response_type=code&redirect_uri=$CB&scope=openid&state=s9&code_challenge=$CH&code_challenge_method=S256"
url=$(curl -s -o /dev/null -c "$TMP/jar" -b "$TMP/jar" -w '%{redirect_url}' "$url")   # -> /interaction/<uid>
url=$(curl -s -o /dev/null -c "$TMP/jar" -b "$TMP/jar" -w '%{redirect_url}' "$url/abort")
url=$(curl -s -o /dev/null -c "$TMP/jar" -b "$TMP/jar" -w '%{redirect_url}' "$url")
check "GET /interaction/<uid>/abort -> callback error=access_denied" has "$url" "$CB?error=access_denied"
# confidential client in the code flow
rm -f "$TMP/jar"
authcode "$B" code-secret "scope=openid+offline_access&prompt=consent&login_hint=erin" "$TMP/jar"
http -u code-secret:code-secret-secret -d grant_type=authorization_code -d "code=$AUTHCODE" -d "redirect_uri=$CB" -d "code_verifier=$VER" "$B/token"
CS_RT=$(j .refresh_token)
check "code-secret (confidential) code flow -> AT+RT" eq "$CODE $(jwt_payload "$(j .id_token)" | jq -r .sub)" "200 erin"
http -u code-secret:code-secret-secret -d grant_type=refresh_token -d "refresh_token=$CS_RT" "$B/token"
check "code-secret refresh" eq "$CODE" "200"

##############################################################################
section "5. refresh tokens (rotation)"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$URT" "$B/token"
URT2=$(j .refresh_token); UAT2=$(j .access_token)
check "refresh -> new AT and new RT" eq "$CODE $([ "$URT2" != "$URT" ] && echo rotated)" "200 rotated"
check "refreshed AT works at /me" eq "$(curl -s -H "Authorization: Bearer $UAT2" "$B/me" | jq -r .sub)" "alice"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$URT" "$B/token"
check "old RT after rotation -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$URT2" "$B/token"
check "reuse revoked the grant: newest RT -> invalid_grant too" eq "$CODE $(j .error)" "400 invalid_grant"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$BOB_RT" -d 'scope=openid profile' "$B/token"
check "refresh asking for more scope -> invalid_scope" eq "$CODE $(j .error)" "400 invalid_scope"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$BOB_RT" "$B/token"
BOB_RT=$(j .refresh_token)
check "refresh keeps the granted resource -> JWT aud api" eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.aud]|join(" ")')" "bob $API"
http -u cc-basic:cc-basic-secret -d grant_type=refresh_token -d "refresh_token=$BOB_RT" "$B/token"
check "RT of another client -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"

##############################################################################
section "6. introspection and revocation"
login "$B" "scope=openid+offline_access&prompt=consent&login_hint=frank"
FAT=$(j .access_token); FRT=$(j .refresh_token)
http -d client_id=native-app -d "token=$FRT" -d token_type_hint=refresh_token "$B/token/introspection"
check "public client introspects its own RT" eq "$(j '[.active,.sub,.client_id]|join(" ")')" "true frank native-app"
http -u cc-basic:cc-basic-secret -d "token=$FAT" "$B/token/introspection"
check "confidential client introspects the native AT" eq "$(j '[.active,.sub,.client_id]|join(" ")')" "true frank native-app"
http -u cc-basic:cc-basic-secret -d "token=$FRT" "$B/token/revocation"
check "confidential client revoking another client's token -> invalid_request" eq "$CODE $(j .error)" "400 invalid_request"
http -d client_id=native-app -d "token=$FRT" -d token_type_hint=refresh_token "$B/token/revocation"
check "native-app revokes its RT -> 200" eq "$CODE" "200"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$FRT" "$B/token"
check "revoked RT cannot refresh" eq "$CODE $(j .error)" "400 invalid_grant"
http -d client_id=native-app -d "token=$FRT" "$B/token/introspection"
check "introspection inactive after revocation (RT)" eq "$(j .active)" "false"
http -d client_id=native-app -d "token=$FAT" "$B/token/introspection"
check "... and the grant's AT is inactive too" eq "$(j .active)" "false"
login "$B" "scope=openid&login_hint=gina"
GAT=$(j .access_token)
http -d client_id=native-app -d "token=$GAT" -d token_type_hint=access_token "$B/token/revocation"
http -d client_id=native-app -d "token=$GAT" "$B/token/introspection"
check "revoked AT -> introspection inactive" eq "$(j .active)" "false"
http -H "Authorization: Bearer $GAT" "$B/me"
check "revoked AT at /me -> 401 invalid_token" eq "$CODE $(j .error)" "401 invalid_token"
http -u cc-basic:cc-basic-secret -d "token=$CC_OPAQUE" "$B/token/introspection"
check "cc-basic introspects its opaque CC token" eq "$(j '[.active,.client_id,.token_type]|join(" ")')" "true cc-basic Bearer"
http -u cc-basic:cc-basic-secret -d "token=$CC_OPAQUE" "$B/token/revocation"
http -u cc-basic:cc-basic-secret -d "token=$CC_OPAQUE" "$B/token/introspection"
check "cc-basic revokes it -> inactive" eq "$(j .active)" "false"
http -u cc-basic:cc-basic-secret -d "token=$AT" "$B/token/revocation"
check "JWT AT cannot be revoked -> unsupported_token_type" eq "$CODE $(j .error)" "400 unsupported_token_type"
http -u cc-basic:cc-basic-secret -d "token=$AT" "$B/token/introspection"
check "JWT AT introspection -> 400 unsupported_token_type (not stored)" eq "$CODE $(j .error)" "400 unsupported_token_type"
http -u cc-basic:cc-basic-secret -d token=unknown-token "$B/token/revocation"
check "revoking an unknown token -> 200" eq "$CODE" "200"

##############################################################################
section "7. device flow"
device_start "$B" -d client_id=native-app
check "device_authorization has interval, verification URIs" \
  eq "$(jq -r '[.interval,.expires_in,.verification_uri,(.verification_uri_complete|startswith("'$B'/device?user_code="))]|join(" ")' <<<"$DEVAUTH")" "1 600 $B/device true"
poll "$B" -d client_id=native-app
check "first poll -> authorization_pending" eq "$CODE $(j .error)" "400 authorization_pending"
poll "$B" -d client_id=native-app
check "poll inside the interval -> slow_down" eq "$CODE $(j .error)" "400 slow_down"
sleep 1.1
poll "$B" -d client_id=native-app
check "poll after the interval -> authorization_pending" eq "$CODE $(j .error)" "400 authorization_pending"
rm -f "$TMP/djar"
check "headless approval (GET /device?user_code, POST confirm, follow redirects)" device_approve "$B" "$TMP/djar" -d login_hint=henry
sleep 1.1
poll "$B" -d client_id=native-app
DRT=$(j .refresh_token)
check "poll -> tokens for the approving user (login_hint form field)" \
  eq "$CODE $(jwt_payload "$(j .id_token)" | jq -r .sub) $(j .scope)" "200 henry openid offline_access"
check "device RT present" ne "$DRT" null
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$DRT" "$B/token"
DRT=$(j .refresh_token)
check "device RT refreshes" eq "$CODE" "200"
poll "$B" -d client_id=native-app
check "device_code reused -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$DRT" "$B/token"
check "... and the reuse revoked the grant (RT dead)" eq "$CODE $(j .error)" "400 invalid_grant"
# login_hint on the GET /device URL; xsrf taken from the X-Test-Device-Xsrf header
device_start "$B" -d client_id=native-app
rm -f "$TMP/djar"
XSRF=$(curl -s -D - -o /dev/null -c "$TMP/djar" -b "$TMP/djar" "$B/device?user_code=$UC&login_hint=ivy" | tr -d '\r' | sed -n 's/^[Xx]-[Tt]est-[Dd]evice-[Xx]srf: //p')
check "X-Test-Device-Xsrf header on GET /device?user_code=" test "${#XSRF}" -ge 32
url=$(curl -s -o /dev/null -c "$TMP/djar" -b "$TMP/djar" -w '%{redirect_url}' -d "xsrf=$XSRF" -d "user_code=$UC" -d confirm=yes "$B/device")
while [ -n "$url" ]; do url=$(curl -s -o /dev/null -c "$TMP/djar" -b "$TMP/djar" -w '%{redirect_url}' "$url"); done
sleep 1.1; poll "$B" -d client_id=native-app
check "login_hint on GET /device?user_code=..&login_hint=ivy" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "ivy"
# login_hint from the device authorization request
http -d client_id=native-app -d scope=openid -d login_hint=jack "$B/device/auth"; DC=$(j .device_code); UC=$(j .user_code)
rm -f "$TMP/djar"; device_approve "$B" "$TMP/djar"; sleep 1.1; poll "$B" -d client_id=native-app
check "login_hint in the device_authorization request" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "jack"
device_start "$B" -d client_id=native-app
rm -f "$TMP/djar"; device_approve "$B" "$TMP/djar"; sleep 1.1; poll "$B" -d client_id=native-app
check "no hint -> DEVICE_USER default test-user" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "test-user"
device_start "$B" -d client_id=native-app
device_approve "$B" "$TMP/djar" -d login_hint=nora; sleep 1.1; poll "$B" -d client_id=native-app
check "approval jar reused for another user (login_hint=nora) -> nora" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "nora"
# denial via the confirm form's abort button
device_start "$B" -d client_id=native-app
rm -f "$TMP/djar"
check "denial: POST /device abort=yes -> aborted page" device_deny "$B" "$TMP/djar"
poll "$B" -d client_id=native-app
check "poll after denial -> access_denied" eq "$CODE $(j .error)" "400 access_denied"
# denial via /interaction/<uid>/abort
device_start "$B" -d client_id=native-app
rm -f "$TMP/djar"; device_xsrf "$B" "$TMP/djar"
url=$(curl -s -o /dev/null -c "$TMP/djar" -b "$TMP/djar" -w '%{redirect_url}' -d "xsrf=$XSRF" -d "user_code=$UC" -d confirm=yes "$B/device")
curl -s -o /dev/null -c "$TMP/djar" -b "$TMP/djar" "$url/abort" -L
poll "$B" -d client_id=native-app
check "denial via GET /interaction/<uid>/abort -> access_denied" eq "$CODE $(j .error)" "400 access_denied"
# confidential client in the device flow
device_start "$B" -u code-secret:code-secret-secret
rm -f "$TMP/djar"; device_approve "$B" "$TMP/djar" -d login_hint=kate; sleep 1.1
poll "$B" -u code-secret:code-secret-secret
check "device flow with confidential code-secret" eq "$CODE $(jwt_payload "$(j .id_token)" | jq -r .sub)" "200 kate"
http -u code-secret:wrong -d 'scope=openid' "$B/device/auth"
check "device_authorization with bad secret -> invalid_client" eq "$CODE $(j .error)" "401 invalid_client"
http -d client_id=native-app -d grant_type=$DCG -d device_code=nonsense "$B/token"
check "unknown device_code -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"

##############################################################################
section "8. token exchange (RFC 8693)"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API -d scope=api:read "$B/token"
check "JWT subject -> narrower scope on the same resource" \
  eq "$CODE $(j .issued_token_type) $(j .token_type) $(j .scope) $(j .expires_in)" "200 $ATT Bearer api:read 600"
check "exchanged JWT claims" eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.client_id,.aud,.scope]|join(" ")')" "bob cc-basic $API api:read"
check "exchanged token is at+jwt" eq "$(jwt_header "$(j .access_token)" | jq -r .typ)" "at+jwt"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d audience=other-api -d scope=other:read "$B/token"
check "audience=other-api -> aud other-api" eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.aud,.scope]|join(" ")')" "bob other-api other:read"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d audience=$OTHER "$B/token"
check "audience=<other resource URL>, no scope -> subject scopes ∩ target = empty -> invalid_scope" eq "$CODE $(j .error)" "400 invalid_scope"
http -d client_id=cc-post -d client_secret=cc-post-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$OTHER -d scope=other:read "$B/token"
check "resource=other via cc-post" eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.client_id,.aud]|join(" ")')" "bob cc-post other-api"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API "$B/token"
check "no scope -> the subject's scopes within the target" eq "$(j .scope)" "api:read api:write"
login "$B" "scope=openid+offline_access&prompt=consent&login_hint=lena"
LAT=$(j .access_token); LRT=$(j .refresh_token)
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$LAT" -d subject_token_type=$ATT -d resource=$API -d scope=api:write "$B/token"
check "opaque user AT subject" eq "$CODE $(jwt_payload "$(j .access_token)" | jq -r '[.sub,.scope]|join(" ")')" "200 lena api:write"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$LRT" -d subject_token_type=$RTT -d resource=$API -d scope=api:read "$B/token"
check "refresh_token subject type" eq "$CODE $(jwt_payload "$(j .access_token)" | jq -r .sub)" "200 lena"
http -u cc-post:cc-post-secret -d grant_type=client_credentials "$B/token"; CCP=$(j .access_token)
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$CCP" -d subject_token_type=$ATT -d resource=$API -d scope=api:read "$B/token"
check "client-credentials AT subject -> sub = that client" eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.client_id]|join(" ")')" "cc-post cc-basic"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$LAT" -d subject_token_type=$ATT -d "actor_token=$CCP" -d actor_token_type=$ATT -d resource=$API -d scope=api:read "$B/token"
check "actor_token -> act claim" eq "$(jwt_payload "$(j .access_token)" | jq -r '[.sub,.act.sub]|join(" ")')" "lena cc-post"
# exchange issuing a refresh token, then refresh with it
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API -d scope=api:read -d requested_token_type=$RTT "$B/token"
XRT=$(j .refresh_token)
check "requested_token_type=refresh_token -> AT + refresh_token" eq "$CODE $(j .issued_token_type) $([ "$XRT" != null ] && echo rt)" "200 $ATT rt"
http -u cc-basic:cc-basic-secret -d grant_type=refresh_token -d "refresh_token=$XRT" "$B/token"
XRT2=$(j .refresh_token)
check "refresh with the exchanged RT works (same client)" \
  eq "$CODE $(jwt_payload "$(j .access_token)" | jq -r '[.sub,.aud,.scope,.client_id]|join(" ")') $(j .scope)" "200 bob $API api:read cc-basic api:read"
check "... and rotates" ne "$XRT2" "$XRT"
http -u cc-basic:cc-basic-secret -d grant_type=refresh_token -d "refresh_token=$XRT2" "$B/token"
XRT3=$(j .refresh_token)
check "second refresh works" eq "$CODE" "200"
http -u cc-post:cc-post-secret -d grant_type=refresh_token -d "refresh_token=$XRT3" "$B/token"
check "exchanged RT used by another client -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -u cc-basic:cc-basic-secret -d "token=$XRT3" "$B/token/introspection"
check "exchanged RT introspects active (sub bob)" eq "$(j '[.active,.sub,.client_id]|join(" ")')" "true bob cc-basic"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API -d requested_token_type=urn:ietf:params:oauth:token-type:id_token "$B/token"
check "unsupported requested_token_type -> invalid_request" eq "$CODE $(j .error)" "400 invalid_request"
# errors
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d subject_token=garbage -d subject_token_type=$ATT -d resource=$API -d scope=api:read "$B/token"
check "bad subject_token -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=${BOB_JWT%?}A" -d subject_token_type=$ATT -d resource=$API -d scope=api:read "$B/token"
check "tampered JWT subject -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$GAT" -d subject_token_type=$ATT -d resource=$API -d scope=api:read "$B/token"
check "revoked subject -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=urn:ietf:params:oauth:token-type:saml2 -d resource=$API "$B/token"
check "bad subject_token_type -> invalid_request" eq "$CODE $(j .error)" "400 invalid_request"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=https://nope.example.test "$B/token"
check "unknown resource -> invalid_target" eq "$CODE $(j .error)" "400 invalid_target"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d audience=nope "$B/token"
check "unknown audience -> invalid_target" eq "$CODE $(j .error)" "400 invalid_target"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API -d audience=other-api "$B/token"
check "resource and audience naming different targets -> invalid_target" eq "$CODE $(j .error)" "400 invalid_target"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d scope=api:read "$B/token"
check "no resource/audience -> invalid_target" eq "$CODE $(j .error)" "400 invalid_target"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API -d scope=other:read "$B/token"
check "scope outside the target -> invalid_scope" eq "$CODE $(j .error)" "400 invalid_scope"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d subject_token_type=$ATT -d resource=$API "$B/token"
check "missing subject_token -> invalid_request" eq "$CODE $(j .error)" "400 invalid_request"
http -d client_id=native-app -d grant_type=$TE -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d resource=$API "$B/token"
check "native-app may not exchange -> invalid_request" eq "$CODE $(j .error)" "400 invalid_request"
http -d grant_type=$TE -d client_assertion_type=$CAT -d "client_assertion=$(pk assert "$TMP/pk.json" pkjwt-client "$B/token")" \
  -d "subject_token=$BOB_JWT" -d subject_token_type=$ATT -d audience=other-api -d scope=other:read "$B/token"
check "pkjwt-client token exchange" eq "$CODE $(jwt_payload "$(j .access_token)" | jq -r '[.sub,.client_id,.aud]|join(" ")')" "200 bob pkjwt-client other-api"

##############################################################################
section "9. /__test/ counters"
http -X POST "$B/__test/reset-counts"
check "reset-counts -> zeros" eq "$(j '[.requests,.success,.failures]|map(length)|add') $(j .revocation)" "0 0"
login "$B" "scope=openid+offline_access&prompt=consent&login_hint=mia"
MRT=$(j .refresh_token)
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$MRT" "$B/token"
http -d grant_type=refresh_token -d client_id=native-app -d refresh_token=bogus "$B/token"
http -u cc-basic:wrong -d grant_type=client_credentials "$B/token"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials "$B/token"
http -d client_id=native-app -d token=x "$B/token/revocation"
http -d client_id=native-app -d token=x "$B/token/introspection"
http -d client_id=native-app -d token=x "$B/token/introspection"
http "$B/__test/counts"
check "requests per grant (failed ones included)" \
  eq "$(j '[.requests.authorization_code,.requests.refresh_token,.requests.client_credentials]|join(" ")')" "1 2 2"
check "success per grant" eq "$(j '[.success.authorization_code,.success.refresh_token,.success.client_credentials]|join(" ")')" "1 1 1"
check "failures per grant and error" eq "$(jq -c .failures <<<"$BODY")" '{"refresh_token":{"invalid_grant":1},"client_credentials":{"invalid_client":1}}'
check "revocation/introspection/authorization counts" eq "$(j '[.revocation,.introspection,.authorization]|join(" ")')" "1 2 1"
http "$B/__test/nope"
check "unknown /__test/ path -> 404" eq "$CODE" "404"

##############################################################################
section "10. short TTLs, no rotation, DEVICE_USER, no PKJWT client"
start_idp S AT_TTL=1 RT_TTL=3 ID_TOKEN_TTL=7 DEVICE_TTL=2 DEVICE_INTERVAL=0 ROTATE_REFRESH_TOKEN=0 DEVICE_USER=zoe
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials "$S/token"
SCC=$(j .access_token)
check "AT_TTL applies to client_credentials" eq "$(j .expires_in)" "1"
device_start "$S" -d client_id=native-app
check "DEVICE_INTERVAL=0 advertised" eq "$(jq -r .interval <<<"$DEVAUTH") $(jq -r .expires_in <<<"$DEVAUTH")" "0 2"
poll "$S" -d client_id=native-app; poll "$S" -d client_id=native-app
check "DEVICE_INTERVAL=0 -> never slow_down" eq "$(j .error)" "authorization_pending"
DC_EXPIRING=$DC
device_start "$S" -d client_id=native-app
rm -f "$TMP/djar"; device_approve "$S" "$TMP/djar"; poll "$S" -d client_id=native-app
check "DEVICE_USER=zoe" eq "$(jwt_payload "$(j .id_token)" | jq -r .sub)" "zoe"
login "$S" "scope=openid+offline_access&prompt=consent&login_hint=olga"
SAT=$(j .access_token); SRT=$(j .refresh_token)
check "AT_TTL for user AT, ID_TOKEN_TTL for id_token" eq "$(j .expires_in) $(jwt_payload "$(j .id_token)" | jq -r '.exp-.iat')" "1 7"
http -u cc-basic:cc-basic-secret -d "token=$SRT" "$S/token/introspection"
check "RT_TTL" eq "$(j '.exp-.iat')" "3"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$SRT" "$S/token"
check "ROTATE_REFRESH_TOKEN=0 -> same RT returned" eq "$(j .refresh_token)" "$SRT"
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$SRT" "$S/token"
check "... and reusable" eq "$CODE" "200"
http -d grant_type=client_credentials -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
  -d "client_assertion=$(pk assert "$TMP/pk.json" pkjwt-client "$S/token")" "$S/token"
check "without PKJWT_JWKS_FILE there is no pkjwt-client" eq "$CODE $(j .error)" "401 invalid_client"
sleep 3.2
DC=$DC_EXPIRING; poll "$S" -d client_id=native-app
check "expired device_code -> expired_token" eq "$CODE $(j .error)" "400 expired_token"
http -H "Authorization: Bearer $SAT" "$S/me"
check "expired AT at /me -> 401 (clockTolerance 0)" eq "$CODE $(j .error)" "401 invalid_token"
http -u cc-basic:cc-basic-secret -d "token=$SCC" "$S/token/introspection"
check "expired CC token introspects inactive" eq "$(j .active)" "false"
http -u cc-basic:cc-basic-secret -d grant_type=$TE -d "subject_token=$SCC" -d subject_token_type=$ATT -d resource=$API -d scope=api:read "$S/token"
check "expired subject_token -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"
sleep 0.5
http -d grant_type=refresh_token -d client_id=native-app -d "refresh_token=$SRT" "$S/token"
check "expired RT -> invalid_grant" eq "$CODE $(j .error)" "400 invalid_grant"

##############################################################################
section "11. lifecycle: SIGTERM/SIGINT, fixed PORT restart, stdin close"
kill -TERM "$S_PID"; wait "$S_PID"; RC=$?
check "SIGTERM -> exit 0" eq "$RC" 0
FIXED=$PORT_B
kill -INT "$B_PID"; wait "$B_PID"; RC=$?
check "SIGINT -> exit 0" eq "$RC" 0
check "exactly one stdout line over the whole run" eq "$(wc -l <"$TMP/B.out")" 1
start_idp R PORT=$FIXED
check "restart on the same fixed PORT" eq "$R" "http://127.0.0.1:$FIXED"
http "$R/jwks"
check "new kid after restart" ne "$(j '.keys[0].kid')" "$KID1"
http -u cc-basic:cc-basic-secret -d grant_type=client_credentials -d scope=api:read -d resource=$API "$R/token"
check "restarted IdP signs with the new kid" eq "$(jwt_header "$(j .access_token)" | jq -r .kid)" "$(curl -s "$R/jwks" | jq -r '.keys[0].kid')"
kill -TERM "$R_PID"; wait "$R_PID" 2>/dev/null
start_idp R2 PORT=$FIXED
check "second immediate restart on the same port" eq "$R2" "http://127.0.0.1:$FIXED"
kill -TERM "$R2_PID"; wait "$R2_PID" 2>/dev/null
# stdin close: node's stdin is a pipe from `sleep 3`
{ sleep 3; } | node server.mjs >"$TMP/p.out" 2>"$TMP/p.err" &
PPID_=$!; PIDS+=("$PPID_")
{ sleep 3; } | EXIT_ON_STDIN_CLOSE=0 node server.mjs >"$TMP/q.out" 2>"$TMP/q.err" &
QPID=$!; PIDS+=("$QPID")
sleep 1.5
check "stdin-watching IdP is up" has "$(cat "$TMP/p.out")" "ISSUER="
sleep 2.5
check "stdin closed -> exited" not kill -0 "$PPID_" 2>/dev/null
check "... saying so on stderr" has "$(cat "$TMP/p.err")" "stdin closed"
check "EXIT_ON_STDIN_CLOSE=0 -> still running" kill -0 "$QPID"
kill "$QPID" 2>/dev/null

echo
echo "selftest: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
