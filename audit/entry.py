"""Audit entries: validation, canonical JSON leaf bytes, keyed pseudonyms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import EntryError

VERSION = 1
PSEUDONYM_PREFIX = "hmac-sha256:"
FIELDS = (
    "v", "time", "actor", "outlet", "partner", "action", "case", "matter", "grant",
    "outcome", "digests", "state", "subject",
)  # fmt: skip
# Optional fields: absent from a leaf unless the action carries them (so adding one never
# changes the bytes of existing entries). "rating": see docs/audit.md, "Ratings"; "queue":
# docs/queue.md; "terms": docs/audit.md, "Case terms"; "client": docs/security.md, "Client address".
OPTIONAL_FIELDS = ("rating", "queue", "terms", "client")
DIGEST_KINDS = ("material", "snapshot", "recording", "text", "evidence", "photo", "signature")
RATING_STAGES = ("before", "during", "after")
RATING_CHANNELS = ("device", "qr", "call")
RATING_OBJECTS = ("case", "outlet", "staff", "assist")
RATING_DIMENSIONS = ("overall", "efficiency", "competence", "attitude")
RATING_VIEWS = ("satisfied", "basic", "unsatisfied")  # 反馈: 满意 / 基本满意 / 不满意
QUEUE_KEYS = frozenset({"line", "ticket", "counter", "priority", "arrived"})
QUEUE_OPTIONAL = frozenset({"to_line", "to_counter", "recalls", "booking", "slot"})
TERMS_DATES = frozenset({"received", "accepted", "due"})
TERMS_COUNTS = frozenset({"workdays", "corrections"})
# What a staff-account entry changed (docs/audit.md, "Staff changes"): {"from", "to"} pairs.
TERMS_CHANGES = frozenset({"roles", "outlet", "partner", "active", "domain", "level"})

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PSEUDONYM = re.compile(re.escape(PSEUDONYM_PREFIX) + r"[A-Za-z0-9_-]{43}")
# PII that must never reach a leaf in clear (DOMAIN.md, "Personal data"): one pass.
_PII = re.compile(
    r"(?P<id18>(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z]))"
    r"|(?P<id15>(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z]))"
    r"|(?P<mobile>(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z]))"
    r"|(?P<email>[^\s@]+@[^\s@]+\.[A-Za-z]{2,})"
)
# The same strings match as with _PII, for the question "any PII at all?" asked of every
# entry: a match must begin at the first digit of a number (a digit whose previous character
# is no letter or digit) or at the "@" of an address (its local part is then any non-space
# run before it), so the scan skips every other character at C speed instead of trying the
# address's greedy local part at each position (quadratic in a long case number).
_PII_ANY = re.compile(
    r"[0-9@](?:(?<=[0-9])(?<![0-9A-Za-z][0-9])(?:\d{16}[0-9Xx]|\d{14}|(?<=1)[3-9]\d{9})(?![0-9A-Za-z])"
    r"|(?<=[^\s@]@)[^\s@]+\.[A-Za-z]{2,})"
)
_PII_NAMES = {"id18": "an 18-character resident ID number", "id15": "a 15-digit ID number",
              "mobile": "a mobile phone number", "email": "an e-mail address"}  # fmt: skip


def pseudonym(key: bytes, value: str) -> str:
    """Keyed pseudonym of an applicant identifier: ``hmac-sha256:<base64url, no padding>``.

    Without ``key`` nobody can test guesses against the log; erasing the key (or the
    mapping) never breaks a proof because the leaf holds only the pseudonym."""
    if len(key) < 16:
        raise EntryError("pseudonym key must be at least 16 bytes")
    mac = hmac.new(key, value.strip().upper().encode("utf-8"), hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def format_time(t: datetime) -> str:
    if t.tzinfo is None:
        raise EntryError("entry time must be timezone-aware (UTC)")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> datetime:
    """Entry time as a naive UTC datetime (what the search column stores)."""
    return datetime.fromisoformat(s[:-1]).replace(tzinfo=None)


def canonical_json(obj: Any) -> bytes:
    """UTF-8, sorted keys, ``,``/``:`` separators, no ASCII escaping of text."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def normalize(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an entry and fill optional fields; raise EntryError on any problem."""
    unknown = set(entry) - set(FIELDS) - set(OPTIONAL_FIELDS)
    if unknown:
        raise EntryError(f"unknown entry key(s): {', '.join(sorted(unknown))}")
    e: dict[str, Any] = {
        "v": VERSION, "outlet": None, "partner": None, "case": None, "matter": None,
        "grant": None, "digests": [], "state": {"from": None, "to": None}, "subject": None,
    }  # fmt: skip
    e.update(entry)
    for key in ("time", "actor", "action", "outcome"):
        if key not in entry:
            raise EntryError(f"entry needs {key!r}")
    if e["v"] != VERSION:
        raise EntryError(f"unsupported entry version {e['v']!r}")
    if isinstance(e["time"], datetime):
        e["time"] = format_time(e["time"])
    _check(isinstance(e["time"], str) and _TIME.fullmatch(e["time"]), "time",
           "must be ISO-8601 UTC like 2026-11-21T08:30:00.123456Z")  # fmt: skip
    _check_actor(e["actor"])
    for key in ("outlet", "partner", "case"):
        _check(e[key] is None or _is_code(e[key]), key, "must be a code string or null")
    _check(isinstance(e["action"], str) and _ACTION.fullmatch(e["action"]), "action",
           "must look like 'case.accept'")  # fmt: skip
    m = e["matter"]
    _check(m is None or (isinstance(m, Mapping) and set(m) == {"code", "version"}
           and _is_code(m["code"]) and _is_int(m["version"])), "matter",
           "must be {code, version} or null")  # fmt: skip
    _check(e["grant"] is None or _is_int(e["grant"]), "grant", "must be an integer or null")
    _check_outcome(e["outcome"])
    _check_digests(e["digests"])
    s = e["state"]
    _check(isinstance(s, Mapping) and set(s) == {"from", "to"}
           and all(x is None or _is_code(x) for x in s.values()), "state",
           "must be {from, to} with state names or null")  # fmt: skip
    _check(e["subject"] is None or (isinstance(e["subject"], str)
           and _PSEUDONYM.fullmatch(e["subject"])), "subject",
           "must be audit.pseudonym(key, value) or null")  # fmt: skip
    if "rating" in e:
        _check_rating(e["rating"])
    if "queue" in e:
        _check_queue(e["queue"])
    if "terms" in e:
        _check_terms(e["terms"])
    if "client" in e:
        _check_client(e["client"])
    _check_pii(e)
    return e


def leaf_bytes(entry: Mapping[str, Any]) -> bytes:
    """The exact leaf bytes of an entry (validated, canonical, no newline inside)."""
    return canonical_json(normalize(entry))


def parse_leaf(data: bytes) -> dict[str, Any]:
    """Parse leaf bytes and check they are a canonical v1 entry; raise EntryError."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EntryError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EntryError("not a JSON object")
    norm = normalize(obj)
    if canonical_json(norm) != data:
        raise EntryError("not in canonical form (sorted keys, compact, all fields)")
    return norm


def _check(ok: object, key: str, msg: str) -> None:
    if not ok:
        raise EntryError(f"entry {key!r} {msg}")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and -(2**63) <= x < 2**63


def _is_code(x: object) -> bool:
    return isinstance(x, str) and bool(_CODE.fullmatch(x))


def _check_actor(a: object) -> None:
    _check(isinstance(a, Mapping) and set(a) == {"id", "role"} and _is_int(a["id"])
           and _is_code(a["role"]), "actor", "must be {id: int, role: str}")  # fmt: skip


def _check_outcome(o: object) -> None:
    ok = isinstance(o, Mapping) and (
        dict(o) == {"result": "done"}
        or (set(o) == {"result", "reason"} and o["result"] == "refused" and _is_code(o["reason"]))
    )
    _check(ok, "outcome", "must be {result: done} or {result: refused, reason: <code>}")


def _level(x: object) -> bool:
    return _is_int(x) and 1 <= x <= 5  # type: ignore[operator]


def _check_rating(r: object) -> None:
    """``{"entry": <index of the rating.submit entry>}`` on the handling steps (plus
    ``"view"`` on ``rating.feedback``: the rater's view of the outcome), or the full rating on
    ``rating.submit`` (no free text, no phone: those stay out of leaves)."""
    if isinstance(r, Mapping) and set(r) in ({"entry"}, {"entry", "view"}):
        _check(_is_int(r["entry"]) and r["entry"] >= 0, "rating", "entry must be a log index")
        _check(r.get("view", "satisfied") in RATING_VIEWS, "rating",
               "view must be " + " | ".join(RATING_VIEWS))
        return
    keys = {"level", "stage", "channel", "dimensions", "reasons", "real_name", "object"}
    ok = (
        isinstance(r, Mapping) and set(r) == keys and _level(r["level"])
        and r["stage"] in RATING_STAGES and r["channel"] in RATING_CHANNELS
        and r["object"] in RATING_OBJECTS and isinstance(r["real_name"], bool)
        and isinstance(r["dimensions"], Mapping)
        and all(k in RATING_DIMENSIONS and _level(v) for k, v in r["dimensions"].items())
        and isinstance(r["reasons"], list) and all(_is_code(c) for c in r["reasons"])
    )  # fmt: skip
    _check(ok, "rating", "must be {entry} or {level, stage, channel, dimensions, reasons, "
           "real_name, object} with the documented values")


def _check_queue(q: object) -> None:
    """A ticket or booking step: line prefix, ticket number, counter number, priority code
    and arrival time (all may be null), optionally the transfer target, recall count,
    booking id and slot start. Codes only: no name, no phone."""
    def code_or_none(x: object) -> bool:
        return x is None or _is_code(x)

    def time_or_none(x: object) -> bool:
        return x is None or (isinstance(x, str) and bool(_TIME.fullmatch(x)))

    ok = isinstance(q, Mapping) and QUEUE_KEYS <= set(q) <= QUEUE_KEYS | QUEUE_OPTIONAL
    if ok:
        assert isinstance(q, Mapping)
        ok = (all(code_or_none(q.get(k)) for k in ("line", "ticket", "priority", "to_line"))
              and all(q.get(k) is None or _is_int(q[k]) for k in ("counter", "to_counter", "recalls", "booking"))
              and time_or_none(q["arrived"]) and time_or_none(q.get("slot")))  # fmt: skip
    _check(ok, "queue", "must be {line, ticket, counter, priority, arrived} with codes, "
           "integers and times (optionally to_line, to_counter, recalls, booking, slot)")


def _check_terms(t: object) -> None:
    """The dates and counts a case figure needs (docs/audit.md, "Case terms"): Beijing
    calendar dates ``YYYY-MM-DD`` (received, accepted, due) and non-negative integers
    (workdays: working days from acceptance to completion; corrections: 补正 rounds); or what
    a staff-account entry changed ("Staff changes"): ``{from, to}`` pairs of null, a boolean
    or a printable string of at most 64 characters (no PII: :func:`_check_pii` applies)."""
    def post_value(x: object) -> bool:  # a role list, outlet/partner code, domain, level, or active
        return x is None or isinstance(x, bool) or (isinstance(x, str) and 0 < len(x) <= 64 and x.isprintable())

    ok = (isinstance(t, Mapping) and bool(t) and set(t) <= TERMS_DATES | TERMS_COUNTS | TERMS_CHANGES
          and all(isinstance(t[k], str) and bool(_DATE.fullmatch(t[k])) for k in TERMS_DATES & set(t))
          and all(_is_int(t[k]) and t[k] >= 0 for k in TERMS_COUNTS & set(t))
          and all(isinstance(t[k], Mapping) and set(t[k]) == {"from", "to"} and t[k]["from"] != t[k]["to"]
                  and post_value(t[k]["from"]) and post_value(t[k]["to"]) for k in TERMS_CHANGES & set(t)))  # fmt: skip
    _check(ok, "terms", "must be {received?, accepted?, due?: YYYY-MM-DD, workdays?, "
           "corrections?: integers >= 0, roles?, outlet?, partner?, active?, domain?, level?: {from, to}}")


_NET = re.compile(r"[0-9a-f.:]{2,45}/\d{1,3}")
_TAG = re.compile(r"[0-9a-f]{12}")


def _check_client(c: object) -> None:
    """The client address of a failed login (docs/security.md, "Client address"): never the
    address itself — its network (``net``: IPv4 /24, IPv6 /48) and a keyed tag (``tag``: 12
    hex of an HMAC with the pseudonym key)."""
    ok = (isinstance(c, Mapping) and bool(c) and set(c) <= {"net", "tag"}
          and all(isinstance(c[k], str) for k in c)
          and ("net" not in c or bool(_NET.fullmatch(c["net"])))
          and ("tag" not in c or bool(_TAG.fullmatch(c["tag"]))))  # fmt: skip
    _check(ok, "client", "must be {net?: 'a.b.c.0/24' or an IPv6 /48, tag?: 12 hex}")


def _check_digests(ds: object) -> None:
    ok = isinstance(ds, list) and all(
        isinstance(d, Mapping) and set(d) == {"kind", "sha256"} and d["kind"] in DIGEST_KINDS
        and isinstance(d["sha256"], str) and _SHA256.fullmatch(d["sha256"])
        for d in ds
    )  # fmt: skip
    _check(ok, "digests", "must be a list of {kind: " + "|".join(DIGEST_KINDS) + ", sha256: hex}")


_SCALARS = frozenset({int, float, bool, type(None)})  # exact types that hold no text


def _strings(obj: Any) -> list[str]:
    """Every string inside ``obj`` (mappings' values and lists, depth first, in order)."""
    out: list[str] = []
    _collect_strings(obj, out)
    return out


def _collect_strings(obj: Any, out: list[str]) -> None:
    # Checked per entry on every append: the cheap exact-type tests come before the
    # Mapping ABC's isinstance, which is a Python-level call for every non-dict value.
    if isinstance(obj, str):
        out.append(obj)
    elif type(obj) in _SCALARS:
        return
    elif isinstance(obj, dict) or isinstance(obj, Mapping):
        for v in obj.values():
            _collect_strings(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _collect_strings(v, out)


_PII_SKIP = frozenset({"subject", "digests", "time", "v"})


def _check_pii(e: Mapping[str, Any]) -> None:
    # One search over every field (fields joined by "\n", which no PII pattern spans and
    # which is no letter or digit for the look-arounds): it matches iff some field does.
    # Only then is each field searched alone, to name it.
    fields = ["\x00".join(texts) for key, value in e.items()
              if key not in _PII_SKIP and (texts := _strings(value))]
    if fields and _PII_ANY.search("\n".join(fields)):
        _name_pii_field(e)
    if 10**14 <= abs(e["actor"]["id"]):
        raise EntryError("entry 'actor.id' looks like an ID number, not a staff id")


def _name_pii_field(e: Mapping[str, Any]) -> None:
    for key, value in e.items():
        if key in _PII_SKIP:
            continue
        texts = _strings(value)
        if not texts:
            continue
        m = _PII.search("\x00".join(texts))
        if m:
            raise EntryError(f"entry {key!r} looks like it holds {_PII_NAMES[m.lastgroup or '']}; "
                             "store audit.pseudonym(key, value) instead")  # fmt: skip
