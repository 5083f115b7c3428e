"""Is the From address proven? Read from the receiving provider's Authentication-Results.

Only the topmost Authentication-Results header, and only when its authserv-id is the
provider's own (Gmail: mx.google.com), counts: a sender can write any header it likes
below it. The address is proven when SPF passed for an envelope domain, DKIM passed for a
signing domain, or DMARC passed, aligned with the From domain (RFC 7489 relaxed alignment:
the same domain or one a subdomain of the other).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_-]+)")
_PROPERTY = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]+)\s*=\s*\"?([^\s;\"]+)\"?")


def _strip_comments(value: str) -> str:
    for _ in range(5):  # nested comments, a few levels deep
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value


def _domain(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip().strip(".").lower()


def aligned(a: str, b: str) -> bool:
    """Relaxed alignment: equal, or one a subdomain of the other (never a bare TLD)."""
    a, b = a.lower().strip("."), b.lower().strip(".")
    if not a or not b:
        return False
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def passed_domains(header: str, authserv_id: str) -> tuple[str, ...]:
    """The domains this header says passed SPF, DKIM or DMARC (none when the header is not
    the trusted provider's)."""
    parts = _strip_comments(header).split(";")
    if not parts or parts[0].strip().split(" ")[0].lower() != authserv_id.lower():
        return ()
    found: list[str] = []
    for resinfo in parts[1:]:
        result = _RESULT.match(resinfo)
        if result is None or result.group(2).lower() != "pass":
            continue
        method = result.group(1).lower()
        props = {
            f"{m.group(1).lower()}.{m.group(2).lower()}": m.group(3)
            for m in _PROPERTY.finditer(resinfo[result.end() :])
        }
        keys = {
            "spf": ("smtp.mailfrom", "smtp.helo"),
            "dkim": ("header.d", "header.i"),
            "dmarc": ("header.from",),
        }.get(method, ())
        found.extend(_domain(props[k]) for k in keys if props.get(k))
    return tuple(d for d in found if d)


def sender_verified(headers: Sequence[str], from_address: str, authserv_id: str) -> bool:
    """`headers`: the message's Authentication-Results values, topmost first."""
    if not headers or "@" not in from_address:
        return False
    from_domain = _domain(from_address)
    return any(aligned(d, from_domain) for d in passed_domains(headers[0], authserv_id))
