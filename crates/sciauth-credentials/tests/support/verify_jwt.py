"""Verifies JWTs made by sciauth-credentials with PyJWT, the way a UNICORE server would.

Reads a JSON list on stdin: [{"token", "pub", "sub", "iss", "etd", "lifetime"}], where "pub"
is an OpenSSH public key file. Writes a JSON list: [{"ok", "alg", "header", "claims", "error"}].
The algorithm is derived from the public key type, never from the token's header.
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def expected_alg(pub):
    if isinstance(pub, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[pub.curve.key_size]
    return "EdDSA"


def check(item):
    with open(item["pub"], "rb") as f:
        pub = serialization.load_ssh_public_key(f.read())
    want = expected_alg(pub)
    token = item["token"]
    header = jwt.get_unverified_header(token)
    if header != {"alg": want, "typ": "JWT"}:
        raise AssertionError(f"header {header}, expected alg {want}")
    claims = jwt.decode(
        token,
        pub,
        algorithms=[want],
        options={"require": ["exp", "iat", "sub", "iss"], "verify_aud": False},
    )
    if set(claims) != {"etd", "sub", "iss", "iat", "exp"}:
        raise AssertionError(f"claims are not exactly etd/sub/iss/iat/exp: {claims}")
    for key in ("sub", "iss", "etd"):
        if claims[key] != item[key]:
            raise AssertionError(f"{key} is {claims[key]!r}, expected {item[key]!r}")
    if not isinstance(claims["iat"], int) or not isinstance(claims["exp"], int):
        raise AssertionError(f"times are not integers: {claims}")
    if claims["exp"] - claims["iat"] != item["lifetime"]:
        raise AssertionError(f"lifetime {claims['exp'] - claims['iat']}, expected {item['lifetime']}")
    return {"ok": True, "alg": want, "header": header, "claims": claims}


results = []
for item in json.load(sys.stdin):
    try:
        results.append(check(item))
    except Exception as e:  # report every failure, not just the first
        results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
json.dump(results, sys.stdout)
