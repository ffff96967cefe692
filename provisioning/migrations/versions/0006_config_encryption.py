"""Vendor config encryption: the organisation's and device's switch, and when a device got its key.

The key itself (``device.config_key``, sealed) came with 0005.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 09:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('config_key_delivered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('encrypt_configs', sa.Boolean(), nullable=True))
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encrypt_configs', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('encrypt_configs')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('encrypt_configs')
        batch_op.drop_column('config_key_delivered_at')
