"""Retention: closed stretches of the audit log moved to compressed files that still verify.

An archive holds the chain from one sequence number to another with each event, as gzipped NDJSON. Its
digest, its last link and the digest of the archive before it are recorded in ``audit_archives``, so the
archives form a chain of their own, and verification of the live log starts from the last archive's link.
Rows are removed only after the stretch has been written and re-verified, in one transaction, by the
operator's command: the only sanctioned way rows leave the log.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit.chain import EVENT_FIELDS, GENESIS, link, plain
from exchange.audit.models import AuditArchive, AuditLink, AuditPending
from exchange.errors import Conflict

PAGE = 20_000

_ROWS = text(
    f"""
    SELECT c.seq, c.hash AS link, {", ".join(f"e.{name}" for name in EVENT_FIELDS)}
    FROM audit_chain c JOIN audit_events e ON e.id = c.event_id AND e.occurred_at = c.occurred_at
    WHERE c.seq > :after AND c.seq <= :last ORDER BY c.seq LIMIT :limit
    """  # noqa: S608 (column names are constants)
)


class ArchiveRefused(Conflict):
    code = "archive_refused"
    title = "The audit log cannot be archived as asked"


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: bytes
    sha256: str | None


async def anchor(session: AsyncSession) -> Anchor:
    """Where the live log's chain starts: after the last archive, or at the beginning."""
    last = await session.scalar(select(AuditArchive).order_by(AuditArchive.last_seq.desc()).limit(1))
    return Anchor(last.last_seq, last.last_hash, last.sha256) if last else Anchor(0, GENESIS, None)


def _line(row: Any) -> bytes:
    event = {name: plain(getattr(row, name)) for name in EVENT_FIELDS}
    return orjson.dumps({"seq": row.seq, "link": row.link.hex(), "event": event}) + b"\n"


async def archive_before(session: AsyncSession, before: datetime, directory: Path) -> AuditArchive | None:
    """Move every chained event before ``before`` (a prefix of the chain) to a file; None if none."""
    if await session.scalar(
        select(func.count()).select_from(AuditPending).where(AuditPending.occurred_at < before)
    ):
        raise ArchiveRefused(
            "Events before that time are still waiting to be chained; try again in a minute."
        )
    start = await anchor(session)
    later = await session.scalar(select(func.min(AuditLink.seq)).where(AuditLink.occurred_at >= before))
    last = (later - 1) if later is not None else await session.scalar(select(func.max(AuditLink.seq)))
    if last is None or last <= start.seq:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{start.seq + 1:012d}-{last:012d}.ndjson.gz"
    digest = hashlib.sha256()
    previous, seq = start.hash, start.seq
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        while seq < last:
            rows = (await session.execute(_ROWS, {"after": seq, "last": last, "limit": PAGE})).all()
            if not rows:
                break
            for row in rows:
                if row.seq != seq + 1 or link(previous, dict(row._mapping)) != row.link:
                    path.unlink(missing_ok=True)
                    raise ArchiveRefused(f"The log does not verify at seq {seq + 1}; nothing was archived.")
                previous, seq = row.link, row.seq
                out.write(_line(row))
    if seq != last:
        path.unlink(missing_ok=True)
        raise ArchiveRefused(f"The chain stops at {seq}, before {last}; nothing was archived.")
    digest.update(path.read_bytes())
    entry = AuditArchive(
        first_seq=start.seq + 1,
        last_seq=last,
        last_hash=previous,
        file=path.name,
        sha256=digest.hexdigest(),
        previous_sha256=start.sha256,
    )
    session.add(entry)
    await session.flush()
    for table in ("audit_events", "audit_chain"):
        await session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    await session.execute(
        text(
            "DELETE FROM audit_events e USING audit_chain c "
            "WHERE c.event_id = e.id AND c.occurred_at = e.occurred_at AND c.seq BETWEEN :first AND :last"
        ),
        {"first": start.seq + 1, "last": last},
    )
    await session.execute(
        text("DELETE FROM audit_chain WHERE seq BETWEEN :first AND :last"),
        {"first": start.seq + 1, "last": last},
    )
    for table in ("audit_events", "audit_chain"):
        await session.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    return entry


def _file_lines(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rb") as lines:
        for line in lines:
            yield orjson.loads(line)


async def verify_archives(session: AsyncSession, directory: Path) -> list[str]:
    """Problems with the archive files: digests, their chain to each other, and every link inside them."""
    problems = []
    previous, previous_sha = GENESIS, None
    for entry in await session.scalars(select(AuditArchive).order_by(AuditArchive.first_seq)):
        path = directory / entry.file
        if not path.exists():
            problems.append(f"archive {entry.file} is missing")
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry.sha256:
            problems.append(f"archive {entry.file} does not match its recorded digest")
        if entry.previous_sha256 != previous_sha:
            problems.append(f"archive {entry.file} does not name its predecessor")
        seq = entry.first_seq - 1
        try:
            for item in _file_lines(path):
                event = dict(item["event"])
                event["occurred_at"] = datetime.fromisoformat(event["occurred_at"])
                previous = link(previous, event)
                seq += 1
                if item["seq"] != seq or previous.hex() != item["link"]:
                    problems.append(f"archive {entry.file} does not verify at seq {seq}")
                    break
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            problems.append(f"archive {entry.file} cannot be read as an archive")
        if previous != entry.last_hash:
            problems.append(f"archive {entry.file} does not end with its recorded link")
        previous, previous_sha = entry.last_hash, entry.sha256
    return problems
