"""Decide whether a live child differs from what the operator wants, without any I/O.

Owns the "patch only when it differs" rule: the desired manifest carries a hash annotation of
itself, and a live object is up to date when it carries the same hash and still holds every
field the operator sets (so hand edits are detected). Fields other managers or the API server
add are ignored. It must not talk to the cluster.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

APPLIED_HASH_ANNOTATION = "partyquiz.dev/applied-hash"

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]i?|Ki)?$")
# Decimal suffixes (k is 10^3, ..., E is 10^18) and binary ones (Ki is 2^10, ..., Ei is 2^60).
_SUFFIXES = {"": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3")}
_SUFFIXES |= {s: Decimal(10) ** (3 * i) for i, s in enumerate("kMGTPE", 1)}
_SUFFIXES |= {f"{s}i": Decimal(2) ** (10 * i) for i, s in enumerate("KMGTPE", 1)}


def parse_quantity(text: str) -> Decimal | None:
    """Return the value of a Kubernetes quantity string, or None if it is not one."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    factor = _SUFFIXES.get(suffix)
    if factor is not None:  # "E" (exa) and "Ei" are suffixes, not exponents
        return value * factor
    return value * (Decimal(10) ** int(suffix[1:]))


def manifest_hash(desired: Mapping[str, Any]) -> str:
    """Return a stable short hash of a desired manifest (excluding the hash annotation)."""
    canonical = json.dumps(desired, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def with_hash(desired: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``desired`` with its own hash recorded as an annotation."""
    digest = manifest_hash(desired)
    metadata = dict(desired.get("metadata", {}))
    metadata["annotations"] = {**metadata.get("annotations", {}), APPLIED_HASH_ANNOTATION: digest}
    return {**desired, "metadata": metadata}


def _leaf_equal(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, (str, int)) and isinstance(have, (str, int)):
        a, b = parse_quantity(str(want)), parse_quantity(str(have))
        return a is not None and a == b
    return False


def contains(have: Any, want: Any) -> bool:
    """Return whether ``have`` holds everything in ``want`` (maps by key, lists by element)."""
    if want == have:  # the common case, compared at C speed
        return True
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return False
        return all(key in have and contains(have[key], value) for key, value in want.items())
    if isinstance(want, list):
        if not isinstance(have, list):
            return False
        if all(isinstance(item, Mapping) for item in want):
            if len(have) < len(want):
                return False
            return all(any(contains(candidate, item) for candidate in have) for item in want)
        return len(want) == len(have) and all(
            _leaf_equal(w, h) for w, h in zip(want, have, strict=True)
        )
    return _leaf_equal(want, have)


def is_up_to_date(live: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Return whether applying ``desired`` (already hashed) would change nothing we own."""
    if live is None:
        return False
    want_hash = desired.get("metadata", {}).get("annotations", {}).get(APPLIED_HASH_ANNOTATION)
    have_hash = live.get("metadata", {}).get("annotations", {}).get(APPLIED_HASH_ANNOTATION)
    if want_hash is None or want_hash != have_hash:
        return False
    return contains(live, desired)


def is_owned_by(live: Mapping[str, Any], uid: str) -> bool:
    """Return whether ``live`` names the object with ``uid`` as its controller."""
    refs = live.get("metadata", {}).get("ownerReferences", [])
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)
