"""C2SP tlog-policy parsing and quorum evaluation."""

from __future__ import annotations

import pytest

from audit.errors import PolicyError
from audit.note import ALG_COSIGNATURE_V1, Signer
from audit.policy import Policy

LOG = Signer("log.example/a", b"\x01" * 32)
WS = [Signer(f"w{i}.example", bytes([i + 2]) * 32, ALG_COSIGNATURE_V1) for i in range(6)]


def spec_example() -> str:
    # The example of the tlog-policy spec, with real keys.
    x = "\n".join(f"witness X{i + 1} {WS[i].vkey}" for i in range(3))
    y = "\n".join(f"witness Y{i + 1} {WS[i + 3].vkey}" for i in range(3))
    return (f"log {LOG.vkey}\n\n{x}\ngroup X-witnesses 2 X1 X2 X3\n\n{y}\n"
            "group Y-witnesses any Y1 Y2 Y3\n\n  # comment\n"
            "group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n")  # fmt: skip


def test_policy_spec_example_quorum() -> None:
    p = Policy.parse(spec_example())
    assert p.satisfied({"X1", "X3", "Y2"})
    assert not p.satisfied({"X1", "Y2"})
    assert not p.satisfied({"X1", "X2", "X3"})


def test_policy_round_trips_through_encode() -> None:
    p = Policy.build([LOG.vkey], {"a": WS[0].vkey, "b": WS[1].vkey}, "all")
    q = Policy.parse(p.encode())
    assert q.satisfied({"a", "b"}) and not q.satisfied({"a"})
    assert [v.vkey for v in q.logs] == [LOG.vkey]


@pytest.mark.parametrize("text", [
    f"log {LOG.vkey}\n",  # no quorum
    "quorum none\nquorum none\n",
    "quorum W\n",  # undefined
    f"witness A {WS[0].vkey}\ngroup G 2 A\nquorum G\n",  # k > n
    f"witness A {WS[0].vkey}\ngroup G any A A\nquorum G\n",  # duplicate member
    f"witness A {WS[0].vkey}\nwitness B {WS[0].vkey}\nquorum A\n",  # duplicate key
    f"witness A {LOG.vkey}\nquorum A\n",  # wrong signature type
    "log nonsense\nquorum none\n",
    "quorum none\nfrobnicate x\n",
])  # fmt: skip
def test_policy_rejects_malformed(text: str) -> None:
    with pytest.raises(PolicyError):
        Policy.parse(text)


def test_policy_quorum_none_needs_no_witness() -> None:
    assert Policy.parse(f"log {LOG.vkey}\nquorum none\n").satisfied(set())
