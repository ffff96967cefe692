"""Accounts and self-service: super admins, sessions, API tokens, user fields (A2-A7), feature
flags (A8), answer groups and their members (U5), diversions (U4), numbers owned by exactly one
user, group or organisation, the audit log, the installation outbox (U7), version counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:41:03.481163
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ONE_OWNER = (
    "(role IN ('primary', 'mobile') AND user_id IS NOT NULL AND group_id IS NULL)"
    " OR (role = 'group' AND group_id IS NOT NULL AND user_id IS NULL)"
    " OR (role = 'main' AND user_id IS NULL AND group_id IS NULL)"
)


def upgrade() -> None:
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=200), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('after', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_organization_id'), ['organization_id'], unique=False)

    op.create_table('super_admin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_super_admin')),
    sa.UniqueConstraint('username', name=op.f('uq_super_admin_username'))
    )
    op.create_table('answer_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_answer_group_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_answer_group')),
    sa.UniqueConstraint('organization_id', 'name', name='uq_answer_group_org_name')
    )
    with op.batch_alter_table('answer_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answer_group_organization_id'), ['organization_id'], unique=False)

    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('super_admin_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['super_admin_id'], ['super_admin.id'], name=op.f('fk_api_token_super_admin_id_super_admin'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_super_admin_id'), ['super_admin_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('diversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Enum('lunch', 'meeting', 'away', 'vacation', 'sick', 'other', name='diversionreason', native_enum=False, length=16), nullable=False),
    sa.Column('target', sa.Enum('voicemail', 'colleague', 'switchboard', 'message', name='diversiontarget', native_enum=False, length=16), nullable=False),
    sa.Column('target_number', sa.String(length=16), nullable=True),
    sa.Column('message', sa.String(length=200), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('set_by', sa.String(length=8), nullable=False),
    sa.Column('set_by_name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_diversion_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_diversion_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diversion'))
    )
    with op.batch_alter_table('diversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_diversion_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_diversion_user_id'), ['user_id'], unique=False)

    op.create_table('group_member',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('logged_in', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['answer_group.id'], name=op.f('fk_group_member_group_id_answer_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_group_member_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_group_member'))
    )
    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_member_user_id'), ['user_id'], unique=False)

    op.create_table('login_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('super_admin_id', sa.Integer(), nullable=True),
    sa.Column('persistent', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client_ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['super_admin_id'], ['super_admin.id'], name=op.f('fk_login_session_super_admin_id_super_admin'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_login_session_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_session_token_hash'))
    )
    with op.batch_alter_table('login_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_session_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_session_super_admin_id'), ['super_admin_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_session_user_id'), ['user_id'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_outbox_message_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_outbox_message_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_outbox_message_code_hash'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('number', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('mobile_profile', sa.Enum('mex', 'non_mex', name='mobileprofile', native_enum=False, length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_number_group_id'), ['group_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_number_group_id_answer_group'), 'answer_group', ['group_id'], ['id'], ondelete='CASCADE')
        # Not found by autogenerate: a number has exactly one owner, matching its role.
        batch_op.create_check_constraint('one_owner', ONE_OWNER)

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('phonebook', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('is_admin', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('softphone_licence', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('caller_id', sa.Enum('fixed', 'mobile', 'main', 'hidden', name='callerid', native_enum=False, length=16), server_default='fixed', nullable=False))
        batch_op.add_column(sa.Column('keywords', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('search_text', sa.String(length=2000), server_default='', nullable=False))
        batch_op.add_column(sa.Column('deactivation_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('picture_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('picture_type', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('voicemail', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('voicemail_operator_option', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('call_waiting_fixed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('call_waiting_mobile', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('diversion_affects_mobile', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('forwarding_affects_mobile', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('show_mobile_outside_hours', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_user_removed_at'), ['removed_at'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_user_username'), ['username'])



def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_user_username'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_user_removed_at'))
        batch_op.drop_column('version')
        batch_op.drop_column('show_mobile_outside_hours')
        batch_op.drop_column('forwarding_affects_mobile')
        batch_op.drop_column('diversion_affects_mobile')
        batch_op.drop_column('call_waiting_mobile')
        batch_op.drop_column('call_waiting_fixed')
        batch_op.drop_column('voicemail_operator_option')
        batch_op.drop_column('voicemail')
        batch_op.drop_column('picture_type')
        batch_op.drop_column('picture_sha256')
        batch_op.drop_column('removed_at')
        batch_op.drop_column('deactivation_date')
        batch_op.drop_column('search_text')
        batch_op.drop_column('keywords')
        batch_op.drop_column('caller_id')
        batch_op.drop_column('softphone_licence')
        batch_op.drop_column('is_admin')
        batch_op.drop_column('password_hash')
        batch_op.drop_column('username')

    with op.batch_alter_table('phonebook', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('number', schema=None) as batch_op:
        batch_op.drop_constraint('one_owner', type_='check')
        batch_op.drop_constraint(batch_op.f('fk_number_group_id_answer_group'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_number_group_id'))
        batch_op.drop_column('mobile_profile')
        batch_op.drop_column('group_id')

    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_user_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_organization_id'))

    op.drop_table('outbox_message')
    with op.batch_alter_table('login_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_login_session_super_admin_id'))
        batch_op.drop_index(batch_op.f('ix_login_session_expires_at'))

    op.drop_table('login_session')
    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_member_user_id'))

    op.drop_table('group_member')
    with op.batch_alter_table('diversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_diversion_user_id'))
        batch_op.drop_index(batch_op.f('ix_diversion_organization_id'))

    op.drop_table('diversion')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))
        batch_op.drop_index(batch_op.f('ix_api_token_super_admin_id'))

    op.drop_table('api_token')
    with op.batch_alter_table('answer_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_group_organization_id'))

    op.drop_table('answer_group')
    op.drop_table('super_admin')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_organization_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_at'))

    op.drop_table('audit_entry')
