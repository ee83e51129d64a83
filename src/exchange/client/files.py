"""Records for a batch publish: NDJSON chunks to stream, and records read from CSV or NDJSON files."""

from __future__ import annotations

import csv
import io
import json
from array import array
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic_core import to_json

from exchange.client.models import BatchResult

# A record is a publish body ({subject_id, fields, valid_from?}); bytes are sent as the line they are.
Record = Mapping[str, Any] | bytes
Progress = Callable[[int], None]
CHUNK_BYTES = 64 * 1024
TRUE = frozenset({"true", "1", "yes", "y", "是", "t"})
FALSE = frozenset({"false", "0", "no", "n", "否", "f"})


class _Chunker:
    """Gathers NDJSON lines into chunks of about CHUNK_BYTES, counting the records for ``progress``."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._buffer = bytearray()
        self._records = 0

    def add(self, record: Record) -> bytes | None:
        self._buffer += record if isinstance(record, bytes) else to_json(record)
        self._buffer += b"\n"
        self._records += 1
        return self.flush() if len(self._buffer) >= CHUNK_BYTES else None

    def flush(self) -> bytes | None:
        if not self._buffer:
            return None
        chunk = bytes(self._buffer)
        self._buffer.clear()
        if self._progress is not None:
            self._progress(self._records)
        return chunk


def ndjson_chunks(records: Iterable[Record], progress: Progress | None = None) -> Iterator[bytes]:
    """The records as NDJSON, one line each, in chunks of bounded size (any number of records)."""
    chunker = _Chunker(progress)
    for record in records:
        if (chunk := chunker.add(record)) is not None:
            yield chunk
    if (last := chunker.flush()) is not None:
        yield last


async def andjson_chunks(
    records: Iterable[Record] | AsyncIterable[Record], progress: Progress | None = None
) -> AsyncIterator[bytes]:
    """:func:`ndjson_chunks` for an async request body; the records may come from an async iterator."""
    if not isinstance(records, AsyncIterable):
        for piece in ndjson_chunks(records, progress):
            yield piece
        return
    chunker = _Chunker(progress)
    async for record in records:
        if (chunk := chunker.add(record)) is not None:
            yield chunk
    if (last := chunker.flush()) is not None:
        yield last


def cell_value(element_type: str | None, text: str) -> Any:
    """A CSV cell as the JSON value its element's type takes; left as text when it does not parse."""
    value = text.strip()
    if element_type == "integer":
        try:
            return int(value)
        except ValueError:
            return text
    if element_type == "boolean":
        folded = value.casefold()
        return True if folded in TRUE else False if folded in FALSE else text
    if element_type == "geometry":
        try:
            return json.loads(value)
        except ValueError:
            return text
    return text


class FileRecords:
    """The publish bodies of a CSV or NDJSON file, remembering which line of the file each came from.

    CSV: a header row; ``subject_column`` holds the subject id, every other column is an element named by
    ``mapping`` (column → element; a column mapped to "" is left out) or by itself; empty cells are skipped.
    NDJSON: a line with a ``fields`` object is a publish body; any other object is flat like a CSV row. A
    line that is not JSON is sent as it is, for the hub to report with the others.
    """

    def __init__(
        self,
        path: Path,
        mapping: Mapping[str, str] | None = None,
        subject_column: str = "subject_id",
        element_types: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self._mapping = dict(mapping or {})
        self._subject = subject_column
        self._types = dict(element_types or {})
        self._lines = array("L")  # the file's line number of each record sent
        self._kind = self.kind(path)
        self._file: io.TextIOWrapper = path.open(encoding="utf-8-sig", newline="")
        try:
            self._csv = self._csv_reader() if self._kind == "csv" else None
        except Exception:
            self._file.close()
            raise

    @staticmethod
    def kind(path: Path) -> str:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in {".ndjson", ".jsonl"}:
            return "ndjson"
        raise ValueError(f"{path.name}: publish .csv or .ndjson (.jsonl) files")

    def _csv_reader(self) -> csv.DictReader[str]:
        reader = csv.DictReader(self._file)
        header = list(reader.fieldnames or [])
        if self._subject not in header:
            raise ValueError(f"{self.path.name}: no column {self._subject!r} (the subject id) in the header")
        unknown = sorted(set(self._mapping) - set(header))
        if unknown:
            raise ValueError(f"{self.path.name}: --map names columns not in the header: {', '.join(unknown)}")
        return reader

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[Record]:
        return self._csv_records() if self._csv is not None else self._ndjson_records()

    def _element(self, column: str) -> str:
        return self._mapping.get(column, column)

    def _body(self, row: Mapping[str, Any], cells: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for column, value in row.items():
            element = self._element(column)
            if column == self._subject or not element:
                continue
            if cells:
                if value is None or value == "":
                    continue
                value = cell_value(self._types.get(element), value)
            fields[element] = value
        return {"subject_id": row.get(self._subject), "fields": fields}

    def _csv_records(self) -> Iterator[Record]:
        assert self._csv is not None
        for row in self._csv:
            self._lines.append(self._csv.line_num)
            yield self._body({k: v for k, v in row.items() if k is not None}, cells=True)

    def _ndjson_records(self) -> Iterator[Record]:
        for number, line in enumerate(self._file, start=1):
            if not line.strip():
                continue
            self._lines.append(number)
            try:
                item = json.loads(line)
            except ValueError:
                yield line.rstrip("\r\n").encode()
                continue
            if not isinstance(item, dict):
                yield line.rstrip("\r\n").encode()
            elif isinstance(item.get("fields"), dict):
                fields = {self._element(k): v for k, v in item["fields"].items() if self._element(k)}
                yield item | {"fields": fields}
            else:
                yield self._body(item, cells=False)

    def with_file_lines(self, result: BatchResult) -> BatchResult:
        """The hub's answer with each error's line turned into the line of the file it came from."""
        errors = [
            error.model_copy(update={"line": self._lines[error.line - 1]})
            if 0 < error.line <= len(self._lines)
            else error
            for error in result.errors
        ]
        return result.model_copy(update={"errors": errors})
