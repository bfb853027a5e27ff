#!/usr/bin/env python3
"""Verify a capframe token with a standard COSE library (pycose), outside capframe.

    python verify.py --key KEY TOKEN

TOKEN is a printable token (`cf1.…`), or `-` to read it from standard input (keeps it
out of `ps` and shell history). KEY is where the issuer's public key comes from:

  - 64 hex characters: the raw Ed25519 public key (`capframe keys public` prints it);
  - a file holding a JWK or a JWK Set (`capframe keys public --json > keys.json`);
  - an https:// URL of a JWK Set, e.g. a running `capframe serve`'s
    /.well-known/capframe-keys (plain http:// only for localhost).

The key is chosen by the `kid` in the token's protected header. Exit status: 0 and one
`OK …` line for a token that verifies; 2 and `DENIED <code>: <reason>` for one that does
not; 1 for a usage error (bad key source, unreadable file).

What this checks: the COSE_Sign1 signature (EdDSA / Ed25519) with pycose, the claim
types, `exp` and `nbf`. What it does NOT check: the token's `tool` against a call, the
`when` argument constraints, revocation, holder proofs (`cnf`) or delegation chains
(`prf`) -- it refuses tokens with `cnf` or `prf` rather than half-check them. For the
full decision use `capframe verify` or the AuthZEN endpoint of `capframe serve`.
"""
import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import re
import sys
import time
import urllib.parse
import urllib.request

import cbor2
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

PREFIX = "cf1."
MAX_TOKEN_BYTES = 8192  # capframe rejects larger tokens before anything else
MAX_KEYS_BYTES = 1 << 20
DEFAULT_LEEWAY = 60  # seconds a clock behind the issuer's may be, for `nbf` only
MAX_ISO_SECONDS = 253402300799  # 9999-12-31T23:59:59Z; later times print as seconds

# CWT claims (RFC 8392) and capframe's private claims, with the CBOR type each must have.
CLAIM_TYPES = {1: str, 2: str, 3: str, 4: int, 5: int, 6: int, 7: bytes, 8: dict,
               "tool": str, "cap": str, "when": list, "prf": bytes}
REQUIRED = (1, 4, 6, 7, "tool")


class Denied(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class UsageError(Exception):
    pass


def b64url_decode(text):
    """Strict unpadded base64url: one spelling per byte string, as capframe requires."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if base64.urlsafe_b64encode(data).rstrip(b"=").decode() == text else None


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(public_key):
    """capframe's kid: the first 8 bytes of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key).digest()[:8]


# --- key sources ----------------------------------------------------------------------

def fetch(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "http" and not is_loopback(parsed.hostname or ""):
        # Whoever can alter the answer could hand us their own key: insist on TLS.
        raise UsageError(f"refusing to fetch keys over plain http from {parsed.hostname}; use https")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # a redirect could lead to http or elsewhere: fail instead

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            body = response.read(MAX_KEYS_BYTES + 1)
    except Exception as error:  # noqa: BLE001 -- any failure to fetch is a usage error
        raise UsageError(f"cannot fetch {url}: {error}") from error
    if len(body) > MAX_KEYS_BYTES:
        raise UsageError(f"{url}: key set larger than {MAX_KEYS_BYTES} bytes")
    return body.decode("utf-8")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def jwk_public_key(jwk, where):
    """The raw key of an Ed25519 JWK (RFC 8037), or None for a key of another kind."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
        return None
    if "d" in jwk:
        raise UsageError(f"{where}: this JWK holds a private key; give the public key only")
    x = b64url_decode(jwk.get("x", "")) if isinstance(jwk.get("x"), str) else None
    if x is None or len(x) != 32:
        raise UsageError(f"{where}: JWK `x` must be base64url of a 32-byte Ed25519 key")
    if "kid" in jwk and jwk["kid"] != b64url(key_id(x)):
        # capframe derives kid from the key; a set where they disagree is broken or forged.
        raise UsageError(f"{where}: JWK kid {jwk['kid']!r} does not match its key (expected {b64url(key_id(x))})")
    return x


def load_keys(source):
    """Trusted keys by kid, from hex, a JWK / JWK Set file, or a JWK Set URL."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", source):
        raw = bytes.fromhex(source)
        return {key_id(raw): raw}
    if source.startswith(("https://", "http://")):
        text = fetch(source)
    else:
        try:
            with open(source, encoding="utf-8") as f:
                text = f.read(MAX_KEYS_BYTES + 1)
        except OSError as error:
            raise UsageError(f"--key: not 64 hex characters, a URL, or a readable file: {error}") from error
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{source}: not JSON: {error}") from error
    entries = doc["keys"] if isinstance(doc, dict) and isinstance(doc.get("keys"), list) else [doc]
    keys = {}
    for i, jwk in enumerate(entries):
        raw = jwk_public_key(jwk, f"{source}: key {i}")
        if raw is not None:
            keys[key_id(raw)] = raw
    if not keys:
        raise UsageError(f"{source}: no Ed25519 (OKP) signing key in it")
    return keys


# --- the token ------------------------------------------------------------------------

def decode_token(printable):
    """The COSE_Sign1 message, checked for capframe's header shape."""
    if not printable.startswith(PREFIX):
        raise Denied("malformed_token", "not a capframe token (expected cf1.<base64url>)")
    if len(printable) > len(PREFIX) + (MAX_TOKEN_BYTES * 4 + 2) // 3:
        raise Denied("malformed_token", "token is larger than 8 KiB")
    raw = b64url_decode(printable[len(PREFIX):])
    if raw is None:
        raise Denied("malformed_token", "not a capframe token (expected cf1.<base64url>)")
    try:
        msg = Sign1Message.decode(raw)
    except Exception as error:  # noqa: BLE001 -- pycose raises many kinds for bad input
        raise Denied("malformed_token", f"not a COSE_Sign1 message: {error}") from error
    if set(msg.phdr) != {Algorithm, KID} or msg.uhdr:
        raise Denied("malformed_token", "token has an unexpected COSE header (expected protected {alg, kid} only)")
    if msg.phdr[Algorithm] is not EdDSA:
        raise Denied("malformed_token", "token algorithm is not EdDSA")
    if not isinstance(msg.phdr[KID], bytes) or len(msg.phdr[KID]) != 8:
        raise Denied("malformed_token", "token kid is not 8 bytes")
    if not isinstance(msg.payload, bytes):
        raise Denied("malformed_token", "token has no payload")
    return msg


def decode_claims(payload):
    try:
        claims = cbor2.loads(payload)
    except Exception as error:  # noqa: BLE001
        raise Denied("malformed_token", f"claims are not CBOR: {error}") from error
    if not isinstance(claims, dict):
        raise Denied("malformed_token", "claims are not a CBOR map")
    for key, value in claims.items():
        expected = CLAIM_TYPES.get(key) if isinstance(key, (int, str)) and not isinstance(key, bool) else None
        if expected is None:
            # An unknown claim could be a restriction we would silently ignore.
            raise Denied("malformed_token", f"token has an unknown claim {key!r}")
        if type(value) is not expected or (expected is int and value < 0):
            raise Denied("malformed_token", f"claim {key!r} has the wrong type")
    for key in REQUIRED:
        if key not in claims:
            raise Denied("malformed_token", f"token lacks the required claim {key!r}")
    if len(claims[7]) != 16 or claims["tool"] == "":
        raise Denied("malformed_token", "token has a malformed cti or tool")
    if "prf" in claims:
        raise Denied("unsupported", "delegated token (prf): this program does not walk delegation chains; "
                                    "use `capframe verify` or the AuthZEN endpoint")
    if 8 in claims:
        raise Denied("unsupported", "holder-bound token (cnf): it is valid only with a holder proof, which this "
                                    "program does not check; use `capframe verify` or the AuthZEN endpoint")
    return claims


def iso(seconds):
    if seconds > MAX_ISO_SECONDS:
        return str(seconds)
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(value):
    """A claim value safe to print on one line."""
    if value is None:
        return "-"
    return value if re.fullmatch(r"[A-Za-z0-9._*:@/+-]+", value) else json.dumps(value)


def verify(printable, keys, leeway, now):
    msg = decode_token(printable)
    claims = decode_claims(msg.payload)
    kid = msg.phdr[KID]
    public_key = keys.get(kid)
    if public_key is None:
        raise Denied("unknown_key", f"token is signed by key {kid.hex()}, which is not among the given keys")
    msg.key = OKPKey(crv=Ed25519, x=public_key)
    try:
        valid = msg.verify_signature()
    except Exception:  # noqa: BLE001 -- a signature pycose cannot even process is not valid
        valid = False
    if not valid:
        raise Denied("bad_signature", "signature does not verify")
    if now >= claims[4]:
        raise Denied("expired", f"token expired at {iso(claims[4])}")
    if 5 in claims and now + leeway < claims[5]:
        raise Denied("not_yet_valid", f"token is not valid before {iso(claims[5])}")
    return claims


class Parser(argparse.ArgumentParser):
    def error(self, message):
        # Exit 1 for usage errors: argparse's 2 is this program's "DENIED".
        self.print_usage(sys.stderr)
        print(f"verify.py: {message}", file=sys.stderr)
        sys.exit(1)


def main(argv):
    parser = Parser(description="Verify a capframe token with pycose.")
    parser.add_argument("token", help="cf1.… token, or - to read it from standard input")
    parser.add_argument("--key", required=True,
                        help="issuer public key: 64 hex chars, a JWK / JWK Set file, or a JWK Set URL")
    parser.add_argument("--leeway", type=int, default=DEFAULT_LEEWAY,
                        help=f"seconds of clock skew allowed for nbf (default {DEFAULT_LEEWAY})")
    args = parser.parse_args(argv)
    try:
        keys = load_keys(args.key)
    except UsageError as error:
        print(f"verify.py: {error}", file=sys.stderr)
        return 1
    printable = sys.stdin.read(4 * MAX_TOKEN_BYTES).strip() if args.token == "-" else args.token.strip()
    try:
        claims = verify(printable, keys, max(0, args.leeway), int(time.time()))
    except Denied as denial:
        print(f"DENIED {denial.code}: {denial.reason}")
        return 2
    print(" ".join([
        "OK", "tok_" + b64url(claims[7]),
        f"iss={shown(claims[1])}", f"sub={shown(claims.get(2))}",
        f"tool={shown(claims['tool'])}", f"cap={shown(claims.get('cap'))}",
        f"exp={iso(claims[4])}",
    ]))
    if "when" in claims:
        print(f"note: {len(claims['when'])} `when` constraint(s) on call arguments were not checked", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
