from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from exchange.db import migrate
from exchange.db.engine import async_url
from exchange.models import metadata


async def _inspect(url: str) -> tuple[set[str], list[object], str | None]:
    def read(connection: Connection) -> tuple[set[str], list[object], str | None]:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        context = MigrationContext.configure(connection, opts={"include_object": migrate.include_object})
        diff = compare_metadata(context, metadata)
        return tables, diff, migrate.current_revision(connection)

    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def test_migrations_go_up_down_and_up_again_on_an_empty_database(empty_database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    tables, diff, revision = await _inspect(empty_database_url)
    assert {"departments", "clients", "signing_keys", "client_assertions"} <= tables
    assert revision == migrate.head_revision(empty_database_url)

    await asyncio.to_thread(migrate.downgrade, empty_database_url, "base")
    tables, _, revision = await _inspect(empty_database_url)
    assert tables == set()
    assert revision is None

    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    tables, diff, _ = await _inspect(empty_database_url)
    assert "departments" in tables
    assert diff == []


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    _, diff, _ = await _inspect(database_url)
    assert diff == []


async def test_the_crosscheck_migration_finds_the_version_that_set_each_current_value(
    empty_database_url: str,
) -> None:
    """Records written before element versions existed get them from their history: the latest valid_from
    wins, so a late report about the past (version 3 here) is not taken for the current value."""
    await asyncio.to_thread(migrate.upgrade, empty_database_url, "0006_audit_archives")
    engine = create_async_engine(async_url(empty_database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    """
                    INSERT INTO records (resource_code, subject_id, version, fields, stamps)
                    VALUES ('population.person', 's1', 3, '{"name": "李四", "sex": "1"}', '{}')
                    """
                )
            )
            await connection.execute(
                text(
                    """
                    INSERT INTO record_versions (resource_code, subject_id, version, valid_from, recorded_at,
                                                 values, client_id, department)
                    VALUES ('population.person', 's1', 1, '2024-01-01', '2024-01-01',
                            '{"name": "张三", "sex": "1"}', 'c', 'd'),
                           ('population.person', 's1', 2, '2025-01-01', '2025-01-01',
                            '{"name": "李四"}', 'c', 'd'),
                           ('population.person', 's1', 3, '2023-01-01', '2026-01-01',
                            '{"name": "王五"}', 'c', 'd');
                    """
                )
            )
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
        async with engine.connect() as connection:
            versions = await connection.scalar(text("SELECT element_versions FROM records"))
    finally:
        await engine.dispose()
    assert versions == {"name": 2, "sex": 1}
