"""Alembic environment of the budget ledger: online only, on the connection the ledger hands over.

The ledger runs ``alembic upgrade head`` itself when it opens (no ``alembic.ini``): it passes an
open connection, inside a transaction that holds the migration lock, as
``config.attributes["connection"]``. To run Alembic by hand (``alembic revision``), build the same
:class:`alembic.config.Config` as :func:`greenkfp.components.governance.ledger.alembic_config`.
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the budget ledger's migrations run online, on the connection the ledger opens")
# a version table of its own: the ledger may share a PostgreSQL database with other Alembic users
context.configure(connection=connection,
                  version_table=context.config.attributes.get("version_table", "greenkfp_ledger_version"),
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
