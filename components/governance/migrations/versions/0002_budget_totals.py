"""Running totals on the budget row: a reservation and a status read one row instead of
aggregating the entries (which stay the record; the totals are derived from them, in the same
transaction as each entry).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TOTALS = ("limit_g", "overdraft_percent", "transferred_g", "reserved_g", "settled_g")


def upgrade() -> None:
    with op.batch_alter_table("budget_periods") as batch:
        for name in _TOTALS:
            batch.add_column(sa.Column(name, sa.Double, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tier", sa.String(8), nullable=False, server_default="hard"))
        # how many exception requests the budget has: none (the usual case), no exception query
        batch.add_column(sa.Column("exceptions", sa.Integer, nullable=False, server_default="0"))
        # no open reservation expires before this (a lower bound; None: none is open)
        batch.add_column(sa.Column("next_expiry", sa.DateTime(timezone=True)))
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Set every budget row's totals from the entries (the upgrade, and a test's check)."""
    rows = connection.execute(sa.text("SELECT team, period FROM budget_periods")).all()
    # a run id is one team's (the same at this revision, where run ids were unique across teams,
    # and since 0003, where they are per team: tests check the totals with this function)
    closed = ("NOT EXISTS (SELECT 1 FROM budget_entries c WHERE c.team = e.team AND c.run_id = e.run_id "
              "AND c.kind IN ('settlement', 'release'))")
    for team, period in rows:
        key = {"team": team, "period": period}

        def one(sql: str):
            return connection.execute(sa.text(sql), key).scalar()

        limit = connection.execute(sa.text(
            "SELECT amount_g, detail FROM budget_entries WHERE kind = 'limit' AND team = :team AND period = :period "
            "ORDER BY id DESC LIMIT 1"), key).first()
        detail = json.loads(limit[1]) if limit else {}
        values = {
            "limit_g": float(limit[0]) if limit else 0.0, "tier": detail.get("tier", "hard"),
            "overdraft_percent": float(detail.get("overdraft_percent", 0.0)),
            "transferred_g": float(one("SELECT COALESCE(SUM(amount_g), 0) FROM budget_entries WHERE kind = "
                                       "'transfer' AND to_team = :team AND period = :period") or 0)
            - float(one("SELECT COALESCE(SUM(amount_g), 0) FROM budget_entries WHERE kind = 'transfer' "
                        "AND team = :team AND period = :period") or 0),
            "reserved_g": float(one("SELECT COALESCE(SUM(amount_g), 0) FROM budget_entries e WHERE kind = "
                                    f"'reservation' AND team = :team AND period = :period AND {closed}") or 0),
            "settled_g": float(one("SELECT COALESCE(SUM(amount_g), 0) FROM budget_entries WHERE kind = "
                                   "'settlement' AND team = :team AND period = :period") or 0),
            "exceptions": int(one("SELECT COUNT(*) FROM budget_entries WHERE kind = 'exception' AND "
                                  "action = 'requested' AND team = :team AND period = :period") or 0),
        }
        connection.execute(sa.text(
            "UPDATE budget_periods SET limit_g = :limit_g, tier = :tier, overdraft_percent = :overdraft_percent, "
            "transferred_g = :transferred_g, reserved_g = :reserved_g, settled_g = :settled_g, "
            "exceptions = :exceptions, next_expiry = (SELECT MIN(e.expires_at) FROM budget_entries e WHERE "
            f"e.kind = 'reservation' AND e.team = :team AND e.period = :period AND {closed}) "
            "WHERE team = :team AND period = :period"), {**values, **key})


def downgrade() -> None:
    with op.batch_alter_table("budget_periods") as batch:
        for name in (*_TOTALS, "tier", "exceptions", "next_expiry"):
            batch.drop_column(name)
