"""A thin DB-API layer: explicit transactions, one placeholder style, typed errors.

sqlite3 and psycopg differ in their transaction defaults and placeholders. Running both in
autocommit mode with explicit BEGIN/COMMIT, and writing SQL with "?" that is rewritten for the
backend, lets the evidence store keep a single copy of every statement.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar, Protocol, Self

from cityguard.evidence.errors import EvidenceError

logger = logging.getLogger(__name__)


class Cursor(Protocol):
    """The DB-API cursor subset used here; sqlite3 and psycopg cursors both provide it."""

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...
    def close(self) -> None: ...


class Connection(Protocol):
    """A DB-API connection already in autocommit mode."""

    def cursor(self) -> Any: ...
    def close(self) -> None: ...


class Database(ABC):
    """One connection; subclasses set the backend details below and say where they point."""

    #: how the backend spells a query parameter; SQL here is written with "?"
    placeholder: ClassVar[str] = "?"
    #: the double-precision float column type
    float_type: ClassVar[str] = "REAL"
    #: how a writing transaction starts (SQLite takes its write lock up front)
    begin_write: ClassVar[str] = "BEGIN"
    #: the driver's base exception, turned into EvidenceError
    driver_error: ClassVar[type[Exception]] = Exception

    def __init__(self, connection: Connection) -> None:
        self._connection: Connection | None = connection

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store is, safe to show: never a secret."""

    def close(self) -> None:
        """Close the connection; later calls raise EvidenceError. Closing twice is harmless."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except self.driver_error as exc:
                logger.warning("closing evidence store %s: %s", self.location, exc)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[Cursor]:
        """One transaction: committed if the block succeeds, rolled back otherwise."""
        if self._connection is None:
            raise EvidenceError(f"evidence store {self.location} is closed")
        try:
            cur: Cursor = self._connection.cursor()
            cur.execute(self.begin_write if write else "BEGIN")
        except self.driver_error as exc:
            raise EvidenceError(f"evidence store {self.location}: {exc}") from exc
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            with suppress(self.driver_error):  # the original error is the one to report
                cur.execute("ROLLBACK")
            if isinstance(exc, self.driver_error):
                raise EvidenceError(f"evidence store {self.location}: {exc}") from exc
            raise
        finally:
            cur.close()

    def _execute(self, cur: Cursor, sql: str, params: Sequence[object] = ()) -> None:
        cur.execute(sql.replace("?", self.placeholder), list(params))
