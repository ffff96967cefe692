"""Initial schema: organisations, users, numbers, phonebooks, devices, lines, keys, change log.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 04:30:53.111953
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('change_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(length=32), nullable=False),
    sa.Column('deps', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_event'))
    )
    with op.batch_alter_table('change_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_event_created_at'), ['created_at'], unique=False)

    op.create_table('organization',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('sip_domain', sa.String(length=253), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('outbound_proxy', sa.String(length=253), nullable=True),
    sa.Column('sip_port', sa.Integer(), nullable=False),
    sa.Column('sip_transport', sa.String(length=8), nullable=False),
    sa.Column('voicemail_number', sa.String(length=32), nullable=False),
    sa.Column('pickup_code', sa.String(length=16), nullable=False),
    sa.Column('group_toggle_code', sa.String(length=16), nullable=False),
    sa.Column('ntp_server', sa.String(length=253), nullable=True),
    sa.Column('vlan', sa.Integer(), nullable=True),
    sa.Column('device_admin_password', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organization')),
    sa.UniqueConstraint('name', name=op.f('uq_organization_name'))
    )
    op.create_table('device',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mac', sa.String(length=12), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('vendor', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=64), nullable=True),
    sa.Column('firmware', sa.String(length=64), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_ip', sa.String(length=45), nullable=True),
    sa.Column('last_user_agent', sa.String(length=512), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_device_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device')),
    sa.UniqueConstraint('mac', name=op.f('uq_device_mac'))
    )
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_organization_id'), ['organization_id'], unique=False)

    op.create_table('phonebook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_phonebook_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phonebook')),
    sa.UniqueConstraint('organization_id', 'name', name='uq_phonebook_org_name')
    )
    with op.batch_alter_table('phonebook', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phonebook_organization_id'), ['organization_id'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('extension', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_user_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('organization_id', 'extension', name='uq_user_org_extension')
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_organization_id'), ['organization_id'], unique=False)

    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phonebook_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['phonebook_id'], ['phonebook.id'], name=op.f('fk_contact_phonebook_id_phonebook'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact'))
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_phonebook_id'), ['phonebook_id'], unique=False)

    op.create_table('key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('module', sa.Integer(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('type', sa.Enum('line', 'blf', 'speed_dial', 'park', 'dtmf', 'voicemail', 'group_toggle', name='keytype', native_enum=False, length=16), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('line_index', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_key_device_id_device'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key')),
    sa.UniqueConstraint('device_id', 'module', 'slot', name='uq_key_device_module_slot')
    )
    with op.batch_alter_table('key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_device_id'), ['device_id'], unique=False)

    op.create_table('line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('auth_username', sa.String(length=64), nullable=False),
    sa.Column('password', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_line_device_id_device'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_line_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line')),
    sa.UniqueConstraint('auth_username', name=op.f('uq_line_auth_username')),
    sa.UniqueConstraint('device_id', 'index', name='uq_line_device_index')
    )
    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_user_id'), ['user_id'], unique=False)

    op.create_table('number',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('e164', sa.String(length=16), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('main', 'primary', 'mobile', name='numberrole', native_enum=False, length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_number_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_number_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_number')),
    sa.UniqueConstraint('e164', name=op.f('uq_number_e164'))
    )
    with op.batch_alter_table('number', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_number_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_number_user_id'), ['user_id'], unique=False)

    op.create_table('phonebook_member',
    sa.Column('phonebook_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['phonebook_id'], ['phonebook.id'], name=op.f('fk_phonebook_member_phonebook_id_phonebook'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_phonebook_member_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phonebook_id', 'user_id', name=op.f('pk_phonebook_member'))
    )
    with op.batch_alter_table('phonebook_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phonebook_member_user_id'), ['user_id'], unique=False)



def downgrade() -> None:

    with op.batch_alter_table('phonebook_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phonebook_member_user_id'))

    op.drop_table('phonebook_member')
    with op.batch_alter_table('number', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_number_user_id'))
        batch_op.drop_index(batch_op.f('ix_number_organization_id'))

    op.drop_table('number')
    with op.batch_alter_table('line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_user_id'))
        batch_op.drop_index(batch_op.f('ix_line_device_id'))

    op.drop_table('line')
    with op.batch_alter_table('key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_device_id'))

    op.drop_table('key')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_phonebook_id'))

    op.drop_table('contact')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_organization_id'))

    op.drop_table('user')
    with op.batch_alter_table('phonebook', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phonebook_organization_id'))

    op.drop_table('phonebook')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_organization_id'))

    op.drop_table('device')
    op.drop_table('organization')
    with op.batch_alter_table('change_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_event_created_at'))

    op.drop_table('change_event')
