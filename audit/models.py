"""Tables of the audit log, defined on ``SQLModel.metadata`` so that the project's
Alembic migration and ``SQLModel.metadata.create_all`` include them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import SQLModel

metadata = SQLModel.metadata
# INTEGER PRIMARY KEY is SQLite's rowid alias (no second index); BIGINT elsewhere.
BigKey = BigInteger().with_variant(Integer(), "sqlite")

entries = Table(
    "audit_entries",
    metadata,
    Column("idx", BigKey, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    # Denormalized search columns (the leaf is the source of truth).
    Column("time", DateTime, nullable=False),
    Column("actor_id", BigInteger, nullable=False),
    Column("actor_role", String(64), nullable=False),
    Column("outlet", String(64)),
    Column("partner", String(64)),
    Column("action", String(64), nullable=False),
    Column("case_no", String(64)),
    Column("matter_code", String(64)),
    Index("ix_audit_entries_time", "time"),
    Index("ix_audit_entries_actor", "actor_id", "idx"),
    Index("ix_audit_entries_outlet", "outlet", "idx"),
    Index("ix_audit_entries_partner", "partner", "idx"),
    Index("ix_audit_entries_action", "action", "idx"),
    Index("ix_audit_entries_case", "case_no", "idx"),
    Index("ix_audit_entries_matter", "matter_code", "idx"),
)

# Complete subtree hashes for level >= 1, keyed by node_id(level, index). Level 0 is
# audit_entries.leaf_hash.
nodes = Table(
    "audit_nodes",
    metadata,
    Column("id", BigKey, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# One row (id=1): how many leaves are integrated into audit_nodes. Also the row whose
# update serializes integration and signing on SQLite.
tree = Table(
    "audit_tree",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(255), nullable=False),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),  # signed note, log signatures only
    Column("created_at", DateTime, nullable=False),
)

cosignatures = Table(
    "audit_cosignatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "checkpoint_id",
        Integer,
        ForeignKey("audit_checkpoints.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("witness", String(255), nullable=False),
    Column("line", Text, nullable=False),  # the note signature line, verbatim
    Column("timestamp", BigInteger, nullable=False),
    UniqueConstraint("checkpoint_id", "witness", name="uq_audit_cosignatures_cp_witness"),
)

# Log-side view of each configured witness (what the UI's witness status shows).
witness_push = Table(
    "audit_witness_push",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("url", Text, nullable=False),
    Column("last_size", BigInteger, nullable=False, default=0),
    Column("last_checkpoint_id", Integer),
    Column("last_success_at", DateTime),
    Column("last_attempt_at", DateTime),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime),
)

ALL_TABLES = (entries, nodes, tree, checkpoints, cosignatures, witness_push)


def node_id(level: int, index: int) -> int:
    return (level << 48) | index


def create_tables(engine: object) -> None:
    """Create the audit tables only (tests, tools). The app uses its migration."""
    metadata.create_all(engine, tables=list(ALL_TABLES))  # type: ignore[arg-type]
