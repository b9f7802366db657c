from __future__ import annotations

import os
from typing import TYPE_CHECKING

from materialize.mzcompose.services.cockroach import Cockroach

if TYPE_CHECKING:
    from materialize.mzcompose.services.postgres import PostgresMetadata


def metadata_store_name() -> str:
    return os.getenv("EXTERNAL_METADATA_STORE", "postgres-metadata")


METADATA_STORE: str = metadata_store_name()


def _get_cockroach_or_postgres_metadata() -> type[Cockroach | PostgresMetadata]:
    # Called at load time below, so this import runs at load time too.
    from materialize.mzcompose.services.postgres import PostgresMetadata

    return PostgresMetadata


CockroachOrPostgresMetadata = _get_cockroach_or_postgres_metadata()
