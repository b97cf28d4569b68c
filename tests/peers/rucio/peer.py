#!/usr/bin/env python3
"""Controller of the REAL Rucio server test peer (rucio 41.5.1, SQLite, gunicorn, loopback only).

Run it with the python of the venv made by ``install.sh``::

    VENV=$(tests/peers/rucio/install.sh)
    $VENV/bin/python tests/peers/rucio/peer.py start --dir RUN_DIR --ssh-pubkey id_rsa.pub [--x509] [--watch-pid PID]
    $VENV/bin/python tests/peers/rucio/peer.py expire-tokens --dir RUN_DIR [--account root | --all-accounts]
    $VENV/bin/python tests/peers/rucio/peer.py count-tokens  --dir RUN_DIR [--account root]   (alias: count-logins)
    $VENV/bin/python tests/peers/rucio/peer.py stop --dir RUN_DIR

``start`` prints exactly one line of JSON on stdout (everything else goes to stderr or to log files
in RUN_DIR) and exits 0 with the servers left running in their own sessions.  See README.md.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

ROOT_ACCOUNT = "root"
USERNAME = "rucio-test"  # maps to BOTH root and alice, with no default account -> 206 without X-Rucio-Account
PASSWORD = "rucio-test-password"
ALICE_ACCOUNT = "alice"
ALICE_USERNAME = "alice-user"  # maps to alice only
ALICE_PASSWORD = "alice-password"
VO = "def"

CLIENT_SUBJECT = [("C", "CH"), ("O", "SciAuth Test"), ("CN", "Rucio Test Client")]
BAD_CLIENT_SUBJECT = [("C", "CH"), ("O", "SciAuth Test"), ("CN", "Unregistered Test Client")]

STATE_FILE = "peer-state.json"
FLUSH_FILE = "flush-token-cache"  # must match peer_wsgi.FLUSH_FILE_NAME
LOGIN_LOG_TABLE = "peer_token_log"
# Files and dirs that ``start`` (re)creates in RUN_DIR; anything else in RUN_DIR is left alone.
GENERATED = ["rucio.cfg", "alembic.ini", "rucio.db", "rucio.db-wal", "rucio.db-shm", "rucio.db-journal",
             "bootstrap.log", "gunicorn.log", "gunicorn-access.log", "tls.log", "watchdog.log", STATE_FILE,
             "pids", FLUSH_FILE, "pki", "ca-dir", "peer.json", "idpsecrets.json"]


def log(msg):
    print("peer: " + msg, file=sys.stderr, flush=True)


def die(msg, code=1):
    log("error: " + msg)
    sys.exit(code)


# --------------------------------------------------------------------------------------------
# process bookkeeping (Linux /proc when available; plain kill(pid, 0) elsewhere)

def proc_starttime(pid):
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); field 22 is fields[19]
    if fields[0] in ("Z", "X"):
        return None  # zombie/dead: counts as gone
    return int(fields[19])


def proc_alive(pid, starttime=None):
    if pid <= 0:
        return False
    if os.path.isdir("/proc/self"):
        st = proc_starttime(pid)
        if st is None:
            return False
        return starttime is None or st == starttime
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def proc_pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def load_state(run_dir):
    try:
        with open(os.path.join(run_dir, STATE_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_state(run_dir, state):
    path = os.path.join(run_dir, STATE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, path)
    with open(os.path.join(run_dir, "pids") + ".tmp", "w") as f:
        f.write("".join("%d\n" % p["pid"] for p in state["procs"]))
    os.replace(os.path.join(run_dir, "pids") + ".tmp", os.path.join(run_dir, "pids"))


def group_members(pgid, marker):
    """PIDs in process group ``pgid`` whose command line contains ``marker`` (Linux only)."""
    out = []
    if not os.path.isdir("/proc/self"):
        return out
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if proc_pgid(pid) == pgid and proc_starttime(pid) is not None and marker in proc_cmdline(pid):
            out.append(pid)
    return out


def stop_run_dir(run_dir, exclude_pid=None, quiet=False):
    """Kill exactly the processes recorded by ``start`` in RUN_DIR (and their process groups).

    Every recorded process was started with start_new_session=True, so its pid is also its
    process group id; gunicorn's worker(s) live in the master's group.  A group is signalled
    only while it still holds a process whose command line contains RUN_DIR (guards against pid
    reuse)."""
    state = load_state(run_dir)
    if not state:
        if not quiet:
            log("nothing recorded in %s" % run_dir)
        return 0
    marker = run_dir
    procs = [p for p in state.get("procs", []) if p["pid"] != exclude_pid]

    def targets():
        t = {}
        for p in procs:
            members = group_members(p["pid"], marker) if os.path.isdir("/proc/self") else []
            if proc_alive(p["pid"], p.get("starttime")):
                members = sorted(set(members) | {p["pid"]})
            if members:
                t[p["pid"]] = members
        return t

    # SIGINT is gunicorn's "quick shutdown" (its graceful SIGTERM path waits for the workers'
    # keep-alive connections); werkzeug and the watchdog exit on it as well.
    for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGKILL, 3.0)):
        t = targets()
        if not t:
            break
        for pgid, members in t.items():
            try:
                if sig == signal.SIGKILL:
                    os.killpg(pgid, sig)  # the whole group, gunicorn's worker(s) included
                elif pgid in members:
                    os.kill(pgid, sig)  # the leader only: gunicorn's master stops its own workers
                else:
                    raise OSError("leader gone")
            except OSError:
                for m in members:
                    try:
                        os.kill(m, sig)
                    except OSError:
                        pass
        deadline = time.time() + wait
        while time.time() < deadline and targets():
            time.sleep(0.05)
    left = targets()
    if left:
        log("WARNING: still alive after SIGKILL: %s" % left)
        return 1
    for name in (STATE_FILE, "pids"):
        try:
            os.unlink(os.path.join(run_dir, name))
        except OSError:
            pass
    if not quiet:
        log("stopped %s" % ", ".join("%s=%d" % (p["name"], p["pid"]) for p in procs))
    return 0


# --------------------------------------------------------------------------------------------
# PKI (cryptography, which rucio already depends on)

def _name(parts):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    oid = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
           "CN": NameOID.COMMON_NAME, "DC": NameOID.DOMAIN_COMPONENT}
    return x509.Name([x509.NameAttribute(oid[k], v) for k, v in parts])


def _write(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def make_pki(pki_dir, ca_dir):
    """Test CA, server cert for 127.0.0.1, registered client cert, RFC 3820 proxy of it, and a
    second client cert with an unregistered DN.  Returns a dict of paths and DNs."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    os.makedirs(pki_dir, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(minutes=10)

    def key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem_cert(c):
        return c.public_bytes(serialization.Encoding.PEM)

    def pem_key(k, fmt):
        return k.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())

    def ku(ca=False):
        return x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=not ca,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    ca_key = key()
    ca_name = _name([("C", "CH"), ("O", "SciAuth Test"), ("CN", "SciAuth Rucio Peer Test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(ku(ca=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    ca_ski = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def leaf(subject, eku, san=None):
        k = key()
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(ku(), critical=True)
             .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
             .add_extension(ca_ski, critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return k, b.sign(ca_key, hashes.SHA256())

    srv_key, srv_cert = leaf(_name([("O", "SciAuth Test"), ("CN", "127.0.0.1")]), [ExtendedKeyUsageOID.SERVER_AUTH],
                             [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    cl_key, cl_cert = leaf(_name(CLIENT_SUBJECT), [ExtendedKeyUsageOID.CLIENT_AUTH])
    bad_key, bad_cert = leaf(_name(BAD_CLIENT_SUBJECT), [ExtendedKeyUsageOID.CLIENT_AUTH])

    # RFC 3820 proxy of the client cert: subject = issuer subject + CN=<serial>, signed by the
    # client key, critical proxyCertInfo (id-pe-proxyCertInfo) with policy id-ppl-inheritAll.
    px_key = key()
    px_serial = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF | 0x1000000
    px_subject = x509.Name(list(cl_cert.subject) + [x509.NameAttribute(NameOID.COMMON_NAME, str(px_serial))])
    # ProxyCertInfo ::= SEQUENCE { proxyPolicy SEQUENCE { policyLanguage OID 1.3.6.1.5.5.7.21.1 } }
    inherit_all = bytes.fromhex("06082b06010505071501")
    proxy_cert_info = b"\x30\x0c\x30\x0a" + inherit_all
    px_cert = (x509.CertificateBuilder().subject_name(px_subject).issuer_name(cl_cert.subject)
               .public_key(px_key.public_key()).serial_number(px_serial)
               .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.5.5.7.1.14"), proxy_cert_info),
                              critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .sign(cl_key, hashes.SHA256()))

    p = {k: os.path.join(pki_dir, v) for k, v in {
        "ca_cert": "ca.pem", "ca_key": "ca.key", "server_cert": "server.pem", "server_key": "server.key",
        "client_cert": "client.pem", "client_key": "client.key", "proxy": "x509up",
        "bad_client_cert": "bad-client.pem", "bad_client_key": "bad-client.key"}.items()}
    pkcs8 = serialization.PrivateFormat.PKCS8
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL
    _write(p["ca_cert"], pem_cert(ca_cert))
    _write(p["ca_key"], pem_key(ca_key, pkcs8), 0o600)
    _write(p["server_cert"], pem_cert(srv_cert) + pem_cert(ca_cert))
    _write(p["server_key"], pem_key(srv_key, pkcs8), 0o600)
    _write(p["client_cert"], pem_cert(cl_cert))
    _write(p["client_key"], pem_key(cl_key, pkcs8), 0o600)
    _write(p["bad_client_cert"], pem_cert(bad_cert))
    _write(p["bad_client_key"], pem_key(bad_key, pkcs8), 0o600)
    # x509up layout, as grid-proxy-init/voms-proxy-init write it: proxy cert, proxy key (PKCS#1), issuer chain
    _write(p["proxy"], pem_cert(px_cert) + pem_key(px_key, pkcs1) + pem_cert(cl_cert), 0o600)

    # grid-security style CA directory: <subject hash>.0 (the `openssl x509 -hash` value, i.e.
    # OpenSSL's X509_NAME_hash of the canonical subject, as c_rehash / openssl rehash name it)
    os.makedirs(ca_dir, exist_ok=True)
    try:
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", p["ca_cert"]], check=True,
                           capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        die("`openssl x509 -hash` failed (the openssl CLI is a prerequisite): %s" % e)
    shutil.copyfile(p["ca_cert"], os.path.join(ca_dir, h + ".0"))
    p["ca_hash"] = h
    p["client_dn"] = cl_cert.subject.rfc4514_string()
    p["bad_client_dn"] = bad_cert.subject.rfc4514_string()
    p["proxy_dn"] = px_cert.subject.rfc4514_string()
    return p


# --------------------------------------------------------------------------------------------
# config + DB bootstrap

def write_config(run_dir, db, oidc=False):
    import rucio  # only for its location; cheap (no config read)

    migrate_repo = os.path.join(os.path.dirname(rucio.__file__), "db", "sqla", "migrate_repo")
    url = "sqlite:///" + db
    with open(os.path.join(run_dir, "rucio.cfg"), "w") as f:
        f.write("""# generated by tests/peers/rucio/peer.py start
[common]
logdir = {run_dir}
loglevel = INFO

[database]
default = {url}

[alembic]
cfg = {run_dir}/alembic.ini

[bootstrap]
# root's userpass identity; the other identities are added by peer.py
userpass_identity = {user}
userpass_pwd = {pwd}
userpass_email = {user}@peer.invalid
x509_identity =
gss_identity =
ssh_identity =

[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash

[cache]
use_external_cache_for_auth_tokens = False
""".format(run_dir=run_dir, url=url, user=USERNAME, pwd=PASSWORD))
        if oidc:
            # Rucio-brokered OIDC: the identity provider's client in idpsecrets.json, written
            # by `peer.py oidc` once the provider runs (Rucio reads it at the first OIDC call).
            f.write("""
[oidc]
idpsecrets = {run_dir}/idpsecrets.json
admin_issuer = test
expected_audience = rucio
expected_scope = openid profile
""".format(run_dir=run_dir))
    # NB: no version_table_schema (SQLite has no schemas: "unknown database rucio")
    with open(os.path.join(run_dir, "alembic.ini"), "w") as f:
        f.write("""[alembic]
script_location = {repo}
sqlalchemy.url = {url}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = WARN
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
""".format(repo=migrate_repo, url=url))


def bootstrap_db(ssh_keys, x509_dn):
    """Schema + base VO + root (bootstrap calls), then the peer's extra accounts/identities."""
    from rucio.common.types import InternalAccount
    from rucio.core.account import add_account
    from rucio.core.identity import add_account_identity
    from rucio.db.sqla import models
    from rucio.db.sqla.constants import AccountType, IdentityType
    from rucio.db.sqla.session import get_session
    from rucio.db.sqla.util import build_database, create_base_vo, create_root_account

    build_database()
    create_base_vo()
    create_root_account()

    root = InternalAccount(ROOT_ACCOUNT, vo=VO)
    alice = InternalAccount(ALICE_ACCOUNT, vo=VO)
    session_scoped = get_session()
    with session_scoped() as s:
        with s.begin():
            add_account(alice, AccountType.USER, "alice@peer.invalid", session=s)
            add_account_identity(ALICE_USERNAME, IdentityType.USERPASS, alice, "alice@peer.invalid",
                                 default=True, password=ALICE_PASSWORD, session=s)
            # rucio-test -> root AND alice, and no default account for it, so that a userpass
            # login without X-Rucio-Account answers 206 with the account list.
            add_account_identity(USERNAME, IdentityType.USERPASS, alice, "alice@peer.invalid",
                                 default=False, session=s)
            for row in s.query(models.IdentityAccountAssociation).filter_by(identity=USERNAME):
                row.is_default = False
            for k in ssh_keys:
                add_account_identity(k, IdentityType.SSH, root, "root@peer.invalid", default=True, session=s)
            if x509_dn:
                add_account_identity(x509_dn, IdentityType.X509, root, "root@peer.invalid", default=True, session=s)


def add_login_log(db):
    """An append-only log of issued tokens, filled by an SQLite trigger.

    Rucio deletes an account's expired rows from ``tokens`` at each login of that account, so
    the row count of ``tokens`` is not a login count.  SSH challenge tokens (``challenge-...``)
    share the table and are excluded."""
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript("""
CREATE TABLE IF NOT EXISTS {t} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    identity TEXT,
    token TEXT NOT NULL,
    issued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE TRIGGER IF NOT EXISTS {t}_ins AFTER INSERT ON tokens
WHEN NEW.token NOT LIKE 'challenge-%'
BEGIN
    INSERT INTO {t}(account, identity, token) VALUES (NEW.account, NEW.identity, NEW.token);
END;
""".format(t=LOGIN_LOG_TABLE))
        con.commit()
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# start

def listen_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.set_inheritable(True)
    return s


def spawn(name, argv, run_dir, logfile, env, pass_fds=()):
    out = open(os.path.join(run_dir, logfile), "ab")
    p = subprocess.Popen(argv, cwd=run_dir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         pass_fds=pass_fds, close_fds=True, start_new_session=True)
    out.close()
    return {"name": name, "pid": p.pid, "starttime": None, "_popen": p}


def wait_ping(url, ctx, procs, deadline):
    last = None
    while time.time() < deadline:
        for p in procs:
            rc = p["_popen"].poll()
            if rc is not None:
                return "%s (pid %d) exited with status %s" % (p["name"], p["pid"], rc)
        try:
            req = urllib.request.Request(url + "/ping", headers={"Accept": "application/json"})
            # The socket listens before the server runs, so a request simply waits in the backlog
            # until the worker has booted: give it all the remaining time.
            with urllib.request.urlopen(req, timeout=max(0.2, deadline - time.time()), context=ctx) as r:
                if r.status == 200:
                    return None
        except (urllib.error.URLError, OSError, ssl.SSLError) as e:
            last = e
        time.sleep(0.05)
    return "no answer from %s/ping (%s)" % (url, last)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
    except OSError:
        return ""


def cmd_start(a):
    t0 = time.time()
    # stdout carries exactly one JSON line: send anything else (rucio/alembic prints) to stderr.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    run_dir = os.path.abspath(a.dir)
    os.makedirs(run_dir, exist_ok=True)
    st = load_state(run_dir)
    if st and any(proc_alive(p["pid"], p.get("starttime")) for p in st.get("procs", [])):
        die("servers recorded in %s are still running: run `peer.py stop --dir %s` first" % (run_dir, run_dir))
    if a.watch_pid is not None and not proc_alive(a.watch_pid):
        die("--watch-pid %d: no such process" % a.watch_pid)
    for name in GENERATED:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    ssh_keys = []
    for path in a.ssh_pubkey or []:
        try:
            with open(path) as f:
                lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except OSError as e:
            die("--ssh-pubkey %s: %s" % (path, e))
        if len(lines) != 1 or not lines[0].startswith("ssh-rsa "):
            die("--ssh-pubkey %s: expected one OpenSSH 'ssh-rsa AAAA...' public key line (Rucio accepts RSA only)"
                % path)
        ssh_keys.append(lines[0])

    db = os.path.join(run_dir, "rucio.db")
    pki = make_pki(os.path.join(run_dir, "pki"), os.path.join(run_dir, "ca-dir")) if a.x509 else None
    t_pki = time.time()

    write_config(run_dir, db, oidc=a.oidc)
    env = dict(os.environ)
    env["RUCIO_CONFIG"] = os.path.join(run_dir, "rucio.cfg")
    env["SCIAUTH_RUCIO_PEER_DIR"] = run_dir
    for k in ("RUCIO_HOME", "RUCIO_ACCOUNT", "RUCIO_VO", "RUCIO_POLICY_PACKAGE", "RUCIO_AUTH_TYPE"):
        env.pop(k, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    os.environ.clear()
    os.environ.update(env)
    bootstrap_db(ssh_keys, pki["client_dn"] if pki else None)
    add_login_log(db)
    with open(os.path.join(run_dir, FLUSH_FILE), "w") as f:
        f.write("0\n")
    t_db = time.time()

    py = sys.executable
    procs = []
    http_sock = listen_socket()
    http_port = http_sock.getsockname()[1]
    procs.append(spawn("gunicorn", [
        py, "-m", "gunicorn",
        "--bind", "fd://%d" % http_sock.fileno(),
        "--workers", "1", "--threads", str(a.threads),
        "--worker-class", "gthread",
        "--timeout", "120", "--graceful-timeout", "3", "--keep-alive", "60",
        "--pythonpath", HERE, "--chdir", run_dir,
        "--error-logfile", os.path.join(run_dir, "gunicorn.log"),
        "--access-logfile", os.path.join(run_dir, "gunicorn-access.log"),
        "--access-logformat", '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(L)ss pid=%(p)s',
        "--name", "rucio-peer",
        "peer_wsgi:application",
    ], run_dir, "gunicorn.log", env, pass_fds=(http_sock.fileno(),)))
    tls_port = None
    if a.x509:
        tls_sock = listen_socket()
        tls_port = tls_sock.getsockname()[1]
        procs.append(spawn("tls", [
            py, os.path.abspath(__file__), "_serve-tls", "--dir", run_dir, "--fd", str(tls_sock.fileno()),
            "--cert", pki["server_cert"], "--key", pki["server_key"], "--ca", pki["ca_cert"],
        ], run_dir, "tls.log", env, pass_fds=(tls_sock.fileno(),)))
        tls_sock.close()
    http_sock.close()
    if a.watch_pid is not None:
        procs.append(spawn("watchdog", [
            py, os.path.abspath(__file__), "_watchdog", "--dir", run_dir, "--pid", str(a.watch_pid),
            "--pid-starttime", str(proc_starttime(a.watch_pid) or 0),
        ], run_dir, "watchdog.log", env))
    for p in procs:
        p["starttime"] = proc_starttime(p["pid"])
    write_state(run_dir, {"run_dir": run_dir, "procs": [{k: v for k, v in p.items() if not k.startswith("_")}
                                                          for p in procs]})

    url = "http://127.0.0.1:%d" % http_port
    x509_url = "https://127.0.0.1:%d" % tls_port if tls_port else None
    deadline = time.time() + a.timeout
    err = wait_ping(url, None, procs, deadline)
    if not err and x509_url:
        ctx = ssl.create_default_context(cafile=pki["ca_cert"])
        err = wait_ping(x509_url, ctx, procs, deadline)
    if err:
        log("start failed: " + err)
        for lf in ("gunicorn.log", "tls.log"):
            t = tail(os.path.join(run_dir, lf))
            if t:
                log("--- tail of %s ---\n%s" % (lf, t))
        stop_run_dir(run_dir, quiet=True)
        sys.exit(1)
    t_up = time.time()

    out = {
        "url": url,
        "x509_url": x509_url,
        "ca_cert": pki["ca_cert"] if pki else None,
        "ca_dir": os.path.join(run_dir, "ca-dir") if pki else None,
        "client_cert": pki["client_cert"] if pki else None,
        "client_key": pki["client_key"] if pki else None,
        "proxy": pki["proxy"] if pki else None,
        "bad_client_cert": pki["bad_client_cert"] if pki else None,
        "bad_client_key": pki["bad_client_key"] if pki else None,
        "client_dn": pki["client_dn"] if pki else None,
        "bad_client_dn": pki["bad_client_dn"] if pki else None,
        "db": db,
        "run_dir": run_dir,
        "pids": [p["pid"] for p in procs],
        "vo": VO,
        "version": rucio_version(),
        "account": ROOT_ACCOUNT,
        "username": USERNAME,
        "password": PASSWORD,
        "alice_account": ALICE_ACCOUNT,
        "alice_username": ALICE_USERNAME,
        "alice_password": ALICE_PASSWORD,
        "ssh_pubkeys": [os.path.abspath(p) for p in a.ssh_pubkey or []],
    }
    with open(os.path.join(run_dir, "peer.json"), "w") as f:
        json.dump(out, f, indent=1)
    log("up in %.1fs (pki %.1fs, db %.1fs, servers %.1fs): %s%s" % (
        t_up - t0, t_pki - t0 if pki else 0.0, t_db - t_pki, t_up - t_db, url,
        " " + x509_url if x509_url else ""))
    json_out.write(json.dumps(out) + "\n")
    json_out.flush()
    return 0


def rucio_version():
    try:
        from importlib.metadata import version

        return version("rucio")
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# internal subcommands (run as daemons by start)

def cmd_serve_tls(a):
    os.environ["SCIAUTH_RUCIO_PEER_DIR"] = os.path.abspath(a.dir)
    sys.path.insert(0, HERE)
    import peer_wsgi

    peer_wsgi.serve_tls(a.fd, a.cert, a.key, a.ca)


def cmd_watchdog(a):
    run_dir = os.path.abspath(a.dir)
    starttime = a.pid_starttime or None
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    log("watching pid %d" % a.pid)
    while True:
        time.sleep(0.5)
        if not proc_alive(a.pid, starttime):
            log("pid %d is gone: stopping the peer in %s" % (a.pid, run_dir))
            stop_run_dir(run_dir, exclude_pid=os.getpid())
            return 0
        st = load_state(run_dir)
        if not st or not any(proc_alive(p["pid"], p.get("starttime")) for p in st["procs"]
                             if p["pid"] != os.getpid()):
            log("servers are gone: exiting")
            return 0


# --------------------------------------------------------------------------------------------
# DB helpers (plain sqlite3: no rucio import, fast)

def db_connect(run_dir):
    db = os.path.join(os.path.abspath(run_dir), "rucio.db")
    if not os.path.exists(db):
        die("no database at %s (was `start` run with this --dir?)" % db)
    con = sqlite3.connect(db, timeout=30)
    return con


def bump_flush_generation(run_dir):
    path = os.path.join(os.path.abspath(run_dir), FLUSH_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d.%d\n" % (time.time_ns(), os.getpid()))
    os.replace(tmp, path)


def cmd_expire_tokens(a):
    con = db_connect(a.dir)
    # SQLAlchemy's SQLite DateTime text format (naive UTC), compared as text by the server.
    past = (datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            - datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with con:
        if a.all_accounts:
            cur = con.execute("UPDATE tokens SET expired_at = ? WHERE token NOT LIKE 'challenge-%'", (past,))
        else:
            cur = con.execute("UPDATE tokens SET expired_at = ? WHERE account = ? AND token NOT LIKE 'challenge-%'",
                              (past, a.account))
    n = cur.rowcount
    con.close()
    if not a.no_flush:
        bump_flush_generation(a.dir)
    print(n)
    return 0


def cmd_age_tokens(a):
    """Moves updated_at of the account's tokens into the past: Rucio's /auth/oidc_refresh hands
    out the same token again while it was updated in the last 5 minutes, and refreshes at the
    identity provider only after that."""
    con = db_connect(a.dir)
    past = (datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            - datetime.timedelta(minutes=a.minutes)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with con:
        cur = con.execute("UPDATE tokens SET updated_at = ? WHERE account = ? AND token NOT LIKE 'challenge-%'",
                          (past, a.account))
    n = cur.rowcount
    con.close()
    bump_flush_generation(a.dir)
    print(n)
    return 0


def cmd_count_tokens(a):
    con = db_connect(a.dir)
    if a.all_accounts:
        n = con.execute("SELECT COUNT(*) FROM %s" % LOGIN_LOG_TABLE).fetchone()[0]
    else:
        n = con.execute("SELECT COUNT(*) FROM %s WHERE account = ?" % LOGIN_LOG_TABLE, (a.account,)).fetchone()[0]
    con.close()
    print(n)
    return 0


def cmd_oidc(a):
    """Registers the identity provider for Rucio-brokered OIDC: idpsecrets.json (the client
    `rucio` of tests/idp, redirecting to the TLS front end's /auth/oidc_code) and the OIDC
    identity `SUB=<sub>, ISS=<issuer>` of the account."""
    run_dir = os.path.abspath(a.dir)
    with open(os.path.join(run_dir, "peer.json")) as f:
        info = json.load(f)
    if not info.get("x509_url"):
        die("oidc needs the TLS front end (start --x509): Rucio sends browsers to https://")
    secrets = {"test": {
        "issuer": a.issuer,
        "client_id": a.client_id,
        "client_secret": a.client_secret,
        "redirect_uris": [info["x509_url"] + "/auth/oidc_code"],
        "SCIM": {"client_id": a.client_id, "client_secret": a.client_secret},
    }}
    _write(os.path.join(run_dir, "idpsecrets.json"), json.dumps(secrets, indent=1).encode(), mode=0o600)
    os.environ["RUCIO_CONFIG"] = os.path.join(run_dir, "rucio.cfg")
    from rucio.common.types import InternalAccount
    from rucio.core.identity import add_account_identity
    from rucio.db.sqla.constants import IdentityType
    identity = "SUB=%s, ISS=%s" % (a.sub, a.issuer)
    add_account_identity(identity, IdentityType.OIDC, InternalAccount(a.account, vo=VO),
                         "%s@peer.invalid" % a.sub, default=True)
    print(identity)
    return 0


def cmd_stop(a):
    return stop_run_dir(os.path.abspath(a.dir))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Real Rucio server test peer (see README.md)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("start", help="bootstrap a fresh DB in DIR and start the servers; prints one JSON line")
    s.add_argument("--dir", required=True)
    s.add_argument("--ssh-pubkey", action="append", metavar="FILE", help="RSA public key to register for root (repeatable)")
    s.add_argument("--x509", action="store_true", help="make a test PKI, register the client DN, start the TLS front end")
    s.add_argument("--watch-pid", type=int, metavar="PID", help="stop everything when PID exits (watchdog, 0.5 s poll)")
    s.add_argument("--threads", type=int, default=4, help="gunicorn threads (1 worker) [4]")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for /ping [60]")
    s.add_argument("--oidc", action="store_true",
                   help="configure Rucio-brokered OIDC ([oidc] in rucio.cfg); finish with `peer.py oidc`")
    s.set_defaults(func=cmd_start)

    s = sub.add_parser("oidc", help="register the identity provider (idpsecrets.json) and an OIDC identity")
    s.add_argument("--dir", required=True)
    s.add_argument("--issuer", required=True)
    s.add_argument("--client-id", default="rucio")
    s.add_argument("--client-secret", default="rucio-secret")
    s.add_argument("--sub", default="test-user")
    s.add_argument("--account", default=ROOT_ACCOUNT)
    s.set_defaults(func=cmd_oidc)

    s = sub.add_parser("stop", help="kill exactly the recorded PIDs (and their process groups)")
    s.add_argument("--dir", required=True)
    s.set_defaults(func=cmd_stop)

    s = sub.add_parser("expire-tokens", help="move expired_at of the account's auth tokens into the past; prints the row count")
    s.add_argument("--dir", required=True)
    s.add_argument("--account", default=ROOT_ACCOUNT)
    s.add_argument("--all-accounts", action="store_true")
    s.add_argument("--no-flush", action="store_true",
                   help="do not flush the servers' in-process token validation cache (shows that it defeats the DB change)")
    s.set_defaults(func=cmd_expire_tokens)

    s = sub.add_parser("age-tokens", help="move updated_at of the account's tokens MINUTES into the past")
    s.add_argument("--dir", required=True)
    s.add_argument("--account", default=ROOT_ACCOUNT)
    s.add_argument("--minutes", type=int, default=10)
    s.set_defaults(func=cmd_age_tokens)

    for name in ("count-tokens", "count-logins"):
        s = sub.add_parser(name, help="number of auth tokens ever issued (= successful logins) for the account")
        s.add_argument("--dir", required=True)
        s.add_argument("--account", default=ROOT_ACCOUNT)
        s.add_argument("--all-accounts", action="store_true")
        s.set_defaults(func=cmd_count_tokens)

    s = sub.add_parser("_serve-tls", help=argparse.SUPPRESS)
    s.add_argument("--dir", required=True)
    s.add_argument("--fd", type=int, required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--ca", required=True)
    s.set_defaults(func=cmd_serve_tls)

    s = sub.add_parser("_watchdog", help=argparse.SUPPRESS)
    s.add_argument("--dir", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--pid-starttime", type=int, default=0)
    s.set_defaults(func=cmd_watchdog)

    a = ap.parse_args(argv)
    return a.func(a) or 0


if __name__ == "__main__":
    sys.exit(main())
