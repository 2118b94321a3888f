"""The bundle as an in-toto Statement: what was decided, by which policy, over exactly which files.

An approval system or an auditor should not have to trust a folder of files. ``evidence.intoto.json``
is an in-toto attestation (Statement v1). Its subject is the candidate, by the commit or artifact
digest when one is given. Its predicate holds the verdict, the checks, the policy inputs and the
sha256 of every other file in the bundle, the recorded inputs included. When
``RELIABILITY_SIGNING_KEY`` names a PEM private key, the Statement is wrapped in a DSSE envelope
signed with it (securesystemslib). Otherwise it is written unsigned, and says so.
:func:`verify` checks a bundle against it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from reliability.errors import ConfigurationError

STATEMENT = "evidence.intoto.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/love-reliability/deploy-gate/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
KEY_VARIABLE = "RELIABILITY_SIGNING_KEY"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: Not part of the evidence: the Statement itself, the kernel's log (kept only in a failed run) and re-renders.
_NOT_EVIDENCE = (STATEMENT, "kernel.log")


def bundle_files(out: Path) -> dict[str, str]:
    """sha256 of every file in the bundle that is evidence, by path relative to it."""
    return {str(f.relative_to(out)): _sha256(f) for f in sorted(out.rglob("*"))
            if f.is_file() and f.name not in _NOT_EVIDENCE and "rerendered" not in f.relative_to(out).parts}


def subject(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidate, named by its build: a git commit (40 or 64 hex), an artifact sha256, or nothing."""
    build = (evidence.get("build") or {}).get("id") or ""
    name = str(evidence.get("candidate"))
    hexa = all(c in "0123456789abcdef" for c in build.lower())
    if build.startswith("sha256:"):
        return [{"name": name, "digest": {"sha256": build.removeprefix("sha256:")}}]
    if hexa and len(build) in (40, 64):
        return [{"name": name, "digest": {"gitCommit": build.lower()}}]
    return [{"name": name, "digest": {}, "annotations": {"build": build or "not given"}}]


def statement(out: Path, evidence: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement for the bundle in ``out``."""
    policy = {k: evidence["reliability"].get(k) for k in ("threshold", "confidence", "method")}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject(evidence),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verdict": evidence["verdict"],
            "reasons": evidence["reasons"],
            "checks": evidence["checks"],
            "policy": {**policy, "window": evidence["window"], "scope": evidence["scope"],
                       "stable": evidence["stable"]},
            "inputs": evidence["inputs"],
            "generated_at": evidence.get("generated_at"),
            "files": {name: {"sha256": digest} for name, digest in bundle_files(out).items()},
        },
    }


def write(out: Path, evidence: dict[str, Any]) -> tuple[Path, bool]:
    """Write ``evidence.intoto.json`` into ``out``; signed when a key is configured. (path, signed)"""
    body = json.dumps(statement(out, evidence), indent=2, sort_keys=True).encode()
    key = os.environ.get(KEY_VARIABLE)
    path = out / STATEMENT
    if not key:
        path.write_bytes(body + b"\n")
        return path, False
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload=body, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(_signer(key))
    path.write_text(json.dumps(envelope.to_dict(), indent=2) + "\n")
    return path, True


def _signer(key_file: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        private = load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"{KEY_VARIABLE}={key_file}: not an unencrypted PEM private key ({exc}); "
                                 "make one with `openssl genpkey -algorithm ed25519 -out key.pem`") from None
    return CryptoSigner(private)


def _public_key(key_file: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    try:
        return SSlibKey.from_crypto(load_pem_public_key(Path(key_file).read_bytes()))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"--key {key_file}: not a PEM public key ({exc}); export it with "
                                 "`openssl pkey -in key.pem -pubout -out key.pub`") from None


def verify(bundle: Path, *, public_key: str | None = None) -> tuple[list[str], str]:
    """Check a bundle against its Statement: (problems, what was checked). No problems: verified."""
    path = bundle / STATEMENT
    if not path.is_file():
        raise ConfigurationError(f"{path} does not exist: pass a directory written by `reliability proof`")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        return [f"{STATEMENT} is not JSON ({exc})"], "nothing"
    signed = "payload" in doc
    if signed:
        if public_key is None:
            return [f"{STATEMENT} is signed: pass --key with the signer's public key to verify it"], "nothing"
        from securesystemslib.dsse import Envelope
        from securesystemslib.exceptions import VerificationError

        envelope = Envelope.from_dict(doc)
        try:
            envelope.verify([_public_key(public_key)], 1)
        except VerificationError as exc:
            return [f"the signature does not verify with {public_key} ({exc})"], "the signature"
        doc = json.loads(base64.b64decode(doc["payload"]))
    elif public_key is not None:
        return [f"{STATEMENT} is not signed, so --key {public_key} cannot verify it"], "nothing"
    if doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        kind = f"{doc.get('_type')}, {doc.get('predicateType')}"
        return [f"{STATEMENT} is not a deploy-gate Statement ({kind})"], "nothing"
    recorded = {k: v["sha256"] for k, v in doc["predicate"]["files"].items()}
    present = bundle_files(bundle)
    problems = [f"{name}: missing" for name in sorted(set(recorded) - set(present))]
    problems += [f"{name}: sha256 {present[name][:16]}… differs from the recorded {digest[:16]}…"
                 for name, digest in sorted(recorded.items()) if name in present and present[name] != digest]
    problems += [f"{name}: not in the Statement (added after it was written)"
                 for name in sorted(set(present) - set(recorded))]
    what = f"{len(recorded)} file hashes" + (" and the signature" if signed else " (unsigned)")
    return problems, what
