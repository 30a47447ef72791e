"""Run ids per team: the once-only entries' unique key (``decision:<run id>``, ...) is unique per
team, not across the ledger, so one team's run id neither blocks nor reveals another team's.

The keys themselves do not change (every entry that has one has a team), so an existing ledger
is upgraded by swapping the constraint. Downgrading fails if two teams have used the same run id
since (the old constraint cannot hold then).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budget_entries") as batch:  # SQLite: the table is rebuilt, data and indexes kept
        batch.drop_constraint("uq_budget_entries_unique_key", type_="unique")
        # the lookup of a run's entries (team and keys) is this constraint's index
        batch.create_unique_constraint("uq_budget_entries_team_unique_key", ["team", "unique_key"])


def downgrade() -> None:
    with op.batch_alter_table("budget_entries") as batch:
        batch.drop_constraint("uq_budget_entries_team_unique_key", type_="unique")
        batch.create_unique_constraint("uq_budget_entries_unique_key", ["unique_key"])
