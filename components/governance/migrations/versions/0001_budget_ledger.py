"""The budget ledger: append-only entries, and one row per (team, period) budget to lock.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per team and month that has a limit: the row a reservation locks (SELECT ... FOR UPDATE).
    op.create_table(
        "budget_periods",
        sa.Column("team", sa.String(128), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Append-only: balances are derived from these rows, never stored.
    op.create_table(
        "budget_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("team", sa.String(128)),
        sa.Column("period", sa.String(7)),
        sa.Column("run_id", sa.String(256)),
        sa.Column("amount_g", sa.Double),
        sa.Column("to_team", sa.String(128)),
        sa.Column("pipeline", sa.String(256)),
        sa.Column("ref_id", sa.Integer),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        # "decision:<run id>", "settlement:<run id>", ...: what may happen once, enforced by the database
        sa.Column("unique_key", sa.String(300)),
        sa.UniqueConstraint("unique_key", name="uq_budget_entries_unique_key"),
    )
    op.create_index("ix_budget_entries_team_period_kind", "budget_entries", ["team", "period", "kind"])
    op.create_index("ix_budget_entries_to_team_period", "budget_entries", ["to_team", "period"])
    op.create_index("ix_budget_entries_run_id_kind", "budget_entries", ["run_id", "kind"])


def downgrade() -> None:
    op.drop_table("budget_entries")
    op.drop_table("budget_periods")
