"""``sohoa pii init|rotate|show``: the personal-data key ring (registered by :mod:`pipeline.cli`).

::

    sohoa pii init   [--keyring PATH] [--if-missing]   # a new ring: one X25519 key pair
    sohoa pii rotate [--keyring PATH]                  # a new current key; old keys stay
    sohoa pii show   [--keyring PATH]                  # key ids and kinds, never key material

``PATH`` defaults to ``SOHOA_PII_KEYRING``, else ``<home>/pii/keyring.json``. The ring is the
readers' (API, export, review): workers need no copy, the driver ships them its public part
(:func:`pipeline.records.pii.with_encryption_keys`). Rotating a ring whose current key is a legacy
symmetric key moves new records to a public key (issue 22).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.cli.common import Command, add_common_options, settings_from_args
from pipeline.runtime.errors import ConfigurationError, ExitCode


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    p = sub.add_parser("pii", help="the personal-data key ring: create, rotate, show (Decree 13/2023)")
    actions = p.add_subparsers(dest="pii_action", required=True)
    for name, text in (("init", "create a key ring (X25519 key pair and blind-index key), mode 0600"),
                       ("rotate", "add a new current key (old keys stay for reading and lookups)"),
                       ("show", "key ids, which is current, and what this ring can do (no key material)")):  # fmt: skip
        a = actions.add_parser(name, help=text)
        add_common_options(a)
        a.add_argument("--keyring", type=Path, metavar="PATH", help="default: $SOHOA_PII_KEYRING or <home>/pii/keyring.json")
        if name == "init":
            a.add_argument("--if-missing", action="store_true", help="succeed without change when the ring exists")
    commands["pii"] = cmd_pii


def cmd_pii(args: argparse.Namespace) -> int:
    from pipeline.records.pii import KeyRing, keyring_path  # deferred: loads numpy, cryptography, pydantic

    settings = settings_from_args(args)
    path = Path(args.keyring or settings.pii_keyring or keyring_path(settings.home))
    if args.pii_action == "init":
        if path.exists():
            if args.if_missing:
                KeyRing.load(path)  # it must at least be a ring
                print(f"PII key ring exists: {path}")
                return ExitCode.ok
            raise ConfigurationError(f"PII key ring exists: {path} (use `sohoa pii rotate` for a new key)")
        ring = KeyRing.generate()
        ring.save(path)
        print(f"wrote PII key ring {path} (current key {ring.current_kid}); back it up: without it no record's "
              "personal data can be read")  # fmt: skip
        return ExitCode.ok
    ring = KeyRing.load(path)
    if args.pii_action == "rotate":
        kid = ring.rotate()
        ring.save(path)
        print(f"PII key ring {path}: current key now {kid}; restart the API and drivers to use it")
        return ExitCode.ok
    print(json.dumps({
        "keyring": str(path), "current_kid": ring.current_kid, "can_decrypt": ring.can_decrypt,
        "public_keys": sorted(ring.public_keys), "private_keys": sorted(ring.private_keys),
        "legacy_symmetric_keys": sorted(ring.keys),
    }, indent=1))  # fmt: skip
    return ExitCode.ok
