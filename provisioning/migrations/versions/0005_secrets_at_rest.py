"""Secrets at rest, device credentials, network policy, fetch audit trail.

SIP passwords and the devices' admin password were stored in clear: they are sealed here with the
node's secret key (provisioning/secretbox.py), which the engine carries. Downgrading opens them again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 07:28:11.553970
"""
from alembic import op
import sqlalchemy as sa

from provisioning.secretbox import PREFIX, box_of

#: (table, column) holding secrets written in clear before this revision
SEALED = (("line", "password"), ("organization", "device_admin_password"))


def _reseal(seal: bool) -> None:
    """Seal (or open) every value of the secret columns, in place."""
    bind = op.get_bind()
    for table, column in SEALED:
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
        if not rows:
            continue
        box = box_of(bind.dialect)  # only needed when there is something to seal
        for row_id, value in rows:
            if value is None or value.startswith(PREFIX + ":") == seal:
                continue
            new = box.seal(value) if seal else box.open(value)
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": new, "id": row_id})


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('config_fetch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mac', sa.String(length=12), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('transport', sa.String(length=8), nullable=False),
    sa.Column('source', sa.String(length=45), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('auth', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_config_fetch_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_config_fetch'))
    )
    with op.batch_alter_table('config_fetch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_config_fetch_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_config_fetch_mac'), ['mac'], unique=False)
        batch_op.create_index(batch_op.f('ix_config_fetch_organization_id'), ['organization_id'], unique=False)

    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('http_username', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('http_password', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('credentials_issued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_contact_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('config_key', sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_device_http_username'), ['http_username'])

    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.alter_column('password',
               existing_type=sa.VARCHAR(length=128),
               type_=sa.Text(),
               existing_nullable=False)

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allowed_networks', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('tftp_secret_networks', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('first_contact_minutes', sa.Integer(), nullable=True))
        batch_op.alter_column('device_admin_password',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.Text(),
               existing_nullable=False)
    _reseal(True)



def downgrade() -> None:
    _reseal(False)
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.alter_column('device_admin_password',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=64),
               existing_nullable=False)
        batch_op.drop_column('first_contact_minutes')
        batch_op.drop_column('tftp_secret_networks')
        batch_op.drop_column('allowed_networks')

    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.alter_column('password',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=128),
               existing_nullable=False)

    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_device_http_username'), type_='unique')
        batch_op.drop_column('config_key')
        batch_op.drop_column('first_contact_until')
        batch_op.drop_column('credentials_issued_at')
        batch_op.drop_column('http_password')
        batch_op.drop_column('http_username')

    with op.batch_alter_table('config_fetch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_config_fetch_organization_id'))
        batch_op.drop_index(batch_op.f('ix_config_fetch_mac'))
        batch_op.drop_index(batch_op.f('ix_config_fetch_at'))

    op.drop_table('config_fetch')
