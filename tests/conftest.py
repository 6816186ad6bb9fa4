"""Session-wide fixtures (see tests/fixtures/infra.py): `infra`, `unique_name`, `mongo_db`."""

from tests.fixtures.infra import infra, mongo_db, unique_name

__all__ = ["infra", "mongo_db", "unique_name"]
