"""C2SP tlog-policy: which logs and witnesses to trust, and the witness quorum."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import KeyFileError, PolicyError
from .note import ALG_COSIGNATURE_V1, ALG_ED25519, Verifier

# tlog-policy §Implementation limits: "at least up to 32 logs, 32 witnesses, and 32 groups".
MAX_ITEMS = 1024  # of each kind
MAX_POLICY_BYTES = 1_000_000


@dataclass(frozen=True)
class Group:
    threshold: int
    members: tuple[str, ...]


@dataclass
class Policy:
    logs: list[Verifier] = field(default_factory=list)
    log_urls: dict[str, str] = field(default_factory=dict)
    witnesses: dict[str, Verifier] = field(default_factory=dict)
    witness_urls: dict[str, str] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str = "none"

    # -- construction ----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        log_vkeys: Iterable[str],
        witness_vkeys: Mapping[str, str] | None = None,
        quorum: str | int = "none",
    ) -> Policy:
        """A policy over the given keys. ``quorum``: "none", "any", "all", a number of
        witnesses, or the name of one witness."""
        p = cls(logs=[Verifier.from_vkey(v) for v in log_vkeys])
        for name, vkey in (witness_vkeys or {}).items():
            p.witnesses[name] = _witness_key(vkey, name)
        if quorum in ("any", "all") or isinstance(quorum, int):
            if not p.witnesses:
                raise PolicyError(f"quorum {quorum!r} needs at least one witness")
            k = {"any": 1, "all": len(p.witnesses)}.get(str(quorum), quorum)
            p.groups["witnesses"] = Group(int(k), tuple(p.witnesses))
            p.quorum = "witnesses"
        else:
            p.quorum = str(quorum)
        p._check_defined(p.quorum, "quorum", allow_none=True)
        return p

    @classmethod
    def parse(cls, text: str | bytes) -> Policy:
        """Parse a policy file (C2SP tlog-policy §Policy file syntax and structure).

        §Character set: octets with the high bit set are opaque (UTF-8 recommended, not
        required), so bytes are decoded with ``surrogateescape``: a comment in GBK is fine,
        and names stay distinct octet strings. Raises :class:`PolicyError` with the line."""
        if isinstance(text, bytes):
            if len(text) > MAX_POLICY_BYTES:
                raise PolicyError(f"policy file is larger than {MAX_POLICY_BYTES} bytes")
            text = text.decode("utf-8", errors="surrogateescape")
        p = cls()
        quorum_seen = False
        seen_keys: set[bytes] = set()
        for n, raw in enumerate(text.split("\n"), start=1):
            if any(ord(c) < 0x20 and c != "\t" for c in raw) or "\x7f" in raw:
                raise PolicyError(f"policy line {n}: control character (only tab and newline are allowed)")
            words = raw.replace("\t", " ").split(" ")
            words = [w for w in words if w]
            if not words or words[0].startswith("#"):
                continue
            kind, args = words[0], words[1:]
            try:
                if kind == "log" and len(args) in (1, 2):
                    v = Verifier.from_vkey(args[0])
                    if v.alg != ALG_ED25519:
                        raise PolicyError(f"policy line {n}: log key must be type 0x01")
                    if v.public_key in seen_keys:
                        raise PolicyError(f"policy line {n}: duplicate key")
                    seen_keys.add(v.public_key)
                    p.logs.append(v)
                    if len(args) == 2:
                        p.log_urls[v.vkey] = args[1]
                elif kind == "witness" and len(args) in (2, 3):
                    name = args[0]
                    p._check_new_name(name, n)
                    v = _witness_key(args[1], name)
                    if v.public_key in seen_keys:
                        raise PolicyError(f"policy line {n}: duplicate key")
                    seen_keys.add(v.public_key)
                    p.witnesses[name] = v
                    if len(args) == 3:
                        p.witness_urls[name] = args[2]
                elif kind == "group" and len(args) >= 3:
                    name, k_word, members = args[0], args[1], tuple(args[2:])
                    p._check_new_name(name, n)
                    if len(set(members)) != len(members):
                        raise PolicyError(f"policy line {n}: a member is listed twice")
                    for m in members:
                        p._check_defined(m, f"policy line {n}", allow_none=False)
                    k = {"any": 1, "all": len(members)}.get(k_word)
                    if k is None:  # "decimal … 1 <= k <= n"; ASCII digits only, bounded
                        if not (k_word.isascii() and k_word.isdigit() and len(k_word) <= 6
                                and 1 <= int(k_word) <= len(members)):
                            raise PolicyError(f"policy line {n}: bad threshold {k_word[:20]!r}")
                        k = int(k_word)
                    p.groups[name] = Group(k, members)
                elif kind == "quorum" and len(args) == 1:
                    if quorum_seen:
                        raise PolicyError(f"policy line {n}: more than one quorum line")
                    p._check_defined(args[0], f"policy line {n}", allow_none=True)
                    p.quorum, quorum_seen = args[0], True
                else:
                    raise PolicyError(f"policy line {n}: cannot parse {raw.strip()[:80]!r}")
            except KeyFileError as exc:
                raise PolicyError(f"policy line {n}: {exc}") from exc
            if max(len(p.logs), len(p.witnesses), len(p.groups)) > MAX_ITEMS:
                raise PolicyError(f"policy line {n}: more than {MAX_ITEMS} logs, witnesses or groups")
        if not quorum_seen:
            raise PolicyError("policy has no quorum line")
        return p

    def _check_new_name(self, name: str, n: int) -> None:
        if name == "none" or name in self.witnesses or name in self.groups:
            raise PolicyError(f"policy line {n}: name {name!r} is reserved or already defined")

    def _check_defined(self, name: str, where: str, *, allow_none: bool) -> None:
        if name == "none" and allow_none:
            return
        if name not in self.witnesses and name not in self.groups:
            raise PolicyError(f"{where}: {name!r} is not a witness or group defined before")

    # -- use -------------------------------------------------------------------------
    def encode(self) -> str:
        lines = ["# C2SP tlog-policy"]
        for v in self.logs:
            url = self.log_urls.get(v.vkey)
            lines.append(f"log {v.vkey}" + (f" {url}" if url else ""))
        for name, v in self.witnesses.items():
            url = self.witness_urls.get(name)
            lines.append(f"witness {name} {v.vkey}" + (f" {url}" if url else ""))
        for name, g in self.groups.items():
            k = "all" if g.threshold == len(g.members) else str(g.threshold)
            lines.append(f"group {name} {k} {' '.join(g.members)}")
        lines.append(f"quorum {self.quorum}")
        return "\n".join(lines) + "\n"

    def satisfied(self, cosigned: set[str], name: str | None = None) -> bool:
        """Whether witnesses named in ``cosigned`` meet the quorum (or group ``name``)."""
        name = self.quorum if name is None else name
        if name == "none":
            return True
        if name in self.witnesses:
            return name in cosigned
        g = self.groups[name]
        return sum(self.satisfied(cosigned, m) for m in g.members) >= g.threshold

    def describe_quorum(self) -> str:
        if self.quorum == "none":
            return "none"
        if self.quorum in self.witnesses:
            return f"witness {self.quorum}"
        g = self.groups[self.quorum]
        return f"{g.threshold} of {', '.join(g.members)}"


def _witness_key(vkey: str, name: str) -> Verifier:
    v = Verifier.from_vkey(vkey)
    if v.alg != ALG_COSIGNATURE_V1:
        raise PolicyError(f"witness {name}: key must be a cosignature/v1 (type 0x04) key")
    return v
