"""Routing model: voice messages, menus and their numbers, calendars (schedules) on the main
number, groups and menus, and the answer groups' distribution, no-answer and queue settings
with ordered members (A10-A12, A14).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:45:49.971636
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_ONE_OWNER = (
    "(role IN ('primary', 'mobile') AND user_id IS NOT NULL AND group_id IS NULL)"
    " OR (role = 'group' AND group_id IS NOT NULL AND user_id IS NULL)"
    " OR (role = 'main' AND user_id IS NULL AND group_id IS NULL)"
)
#: A menu owns its numbers too; the main number may be answered by a group or a menu.
ONE_OWNER = (
    "(role IN ('primary', 'mobile') AND user_id IS NOT NULL AND group_id IS NULL AND menu_id IS NULL)"
    " OR (role = 'group' AND group_id IS NOT NULL AND user_id IS NULL AND menu_id IS NULL)"
    " OR (role = 'menu' AND menu_id IS NOT NULL AND user_id IS NULL AND group_id IS NULL)"
    " OR (role = 'main' AND user_id IS NULL AND (group_id IS NULL OR menu_id IS NULL))"
)


def upgrade() -> None:
    op.create_table('voice_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('text', sa.String(length=5000), nullable=True),
    sa.Column('voice', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('source_format', sa.String(length=8), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_voice_message_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_message')),
    sa.UniqueConstraint('organization_id', 'name', name='uq_voice_message_org_name')
    )
    with op.batch_alter_table('voice_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_message_organization_id'), ['organization_id'], unique=False)

    op.create_table('menu',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('timeout', sa.Float(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('invalid_message_id', sa.Integer(), nullable=True),
    sa.Column('timeout_kind', sa.String(length=16), nullable=True),
    sa.Column('timeout_target', sa.String(length=32), nullable=True),
    sa.Column('final_kind', sa.String(length=16), nullable=False),
    sa.Column('final_target', sa.String(length=32), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invalid_message_id'], ['voice_message.id'], name=op.f('fk_menu_invalid_message_id_voice_message'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['message_id'], ['voice_message.id'], name=op.f('fk_menu_message_id_voice_message'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_menu_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_menu')),
    sa.UniqueConstraint('organization_id', 'name', name='uq_menu_org_name')
    )
    with op.batch_alter_table('menu', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_menu_invalid_message_id'), ['invalid_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_menu_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_menu_organization_id'), ['organization_id'], unique=False)

    op.create_table('menu_option',
    sa.Column('menu_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['menu_id'], ['menu.id'], name=op.f('fk_menu_option_menu_id_menu'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('menu_id', 'key', name=op.f('pk_menu_option'))
    )
    op.create_table('schedule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=8), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('menu_id', sa.Integer(), nullable=True),
    sa.Column('override_action', sa.String(length=8), nullable=True),
    sa.Column('override_message_id', sa.Integer(), nullable=True),
    sa.Column('override_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('holidays_country', sa.String(length=2), nullable=True),
    sa.Column('holidays_action', sa.String(length=8), nullable=True),
    sa.Column('holidays_message_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(owner = 'main' AND group_id IS NULL AND menu_id IS NULL) OR (owner = 'group' AND group_id IS NOT NULL AND menu_id IS NULL) OR (owner = 'menu' AND menu_id IS NOT NULL AND group_id IS NULL)", name=op.f('ck_schedule_one_owner')),
    sa.ForeignKeyConstraint(['group_id'], ['answer_group.id'], name=op.f('fk_schedule_group_id_answer_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['holidays_message_id'], ['voice_message.id'], name=op.f('fk_schedule_holidays_message_id_voice_message'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['menu_id'], ['menu.id'], name=op.f('fk_schedule_menu_id_menu'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_schedule_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['override_message_id'], ['voice_message.id'], name=op.f('fk_schedule_override_message_id_voice_message'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule')),
    sa.UniqueConstraint('group_id', name=op.f('uq_schedule_group_id')),
    sa.UniqueConstraint('menu_id', name=op.f('uq_schedule_menu_id'))
    )
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_holidays_message_id'), ['holidays_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_schedule_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_schedule_override_message_id'), ['override_message_id'], unique=False)

    op.create_table('schedule_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('date_first', sa.Date(), nullable=True),
    sa.Column('date_last', sa.Date(), nullable=True),
    sa.Column('weekdays', sa.String(length=32), server_default='', nullable=False),
    sa.Column('time_from', sa.Time(), nullable=True),
    sa.Column('time_to', sa.Time(), nullable=True),
    sa.Column('then_kind', sa.String(length=16), nullable=True),
    sa.Column('then_target', sa.String(length=32), nullable=True),
    sa.Column('holiday', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['voice_message.id'], name=op.f('fk_schedule_entry_message_id_voice_message'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedule.id'], name=op.f('fk_schedule_entry_schedule_id_schedule'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_entry'))
    )
    with op.batch_alter_table('schedule_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_entry_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_schedule_entry_schedule_id'), ['schedule_id'], unique=False)

    with op.batch_alter_table('answer_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_code', sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column('strategy', sa.String(length=16), server_default='ring_all', nullable=False))
        batch_op.add_column(sa.Column('ring_time', sa.Integer(), server_default='20', nullable=False))
        batch_op.add_column(sa.Column('no_answer_time', sa.Integer(), server_default='60', nullable=False))
        batch_op.add_column(sa.Column('repeat', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('retry_delay', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('no_answer_kind', sa.String(length=16), server_default='hangup', nullable=False))
        batch_op.add_column(sa.Column('no_answer_target', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('queue_enabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('queue_max_callers', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_max_wait', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_message_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_first_announcement', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_announce_interval', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_announce_position', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('queue_join_empty', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_answer_group_queue_message_id'), ['queue_message_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_answer_group_queue_message_id_voice_message'), 'voice_message', ['queue_message_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('ring_time', sa.Integer(), nullable=True))

    with op.batch_alter_table('number', schema=None) as batch_op:
        batch_op.add_column(sa.Column('menu_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_number_menu_id'), ['menu_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_number_menu_id_menu'), 'menu', ['menu_id'], ['id'], ondelete='CASCADE')
        # Not found by autogenerate: the owner check now knows menus.
        batch_op.drop_constraint('one_owner', type_='check')
        batch_op.create_check_constraint('one_owner', ONE_OWNER)

    # Existing members keep their order (by user id) as explicit positions.
    group_member = sa.table('group_member', sa.column('group_id', sa.Integer()), sa.column('user_id', sa.Integer()),
                            sa.column('position', sa.Integer()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(group_member.c.group_id, group_member.c.user_id)
                        .order_by(group_member.c.group_id, group_member.c.user_id)).all()
    positions: dict[int, int] = {}
    for group_id, user_id in rows:
        position = positions.get(group_id, 0)
        positions[group_id] = position + 1
        if position:
            conn.execute(group_member.update().where(group_member.c.group_id == group_id,
                                                     group_member.c.user_id == user_id).values(position=position))


def downgrade() -> None:
    op.execute("DELETE FROM number WHERE role = 'menu'")
    op.execute("UPDATE number SET group_id = NULL WHERE role = 'main'")
    with op.batch_alter_table('number', schema=None) as batch_op:
        batch_op.drop_constraint('one_owner', type_='check')
        batch_op.drop_constraint(batch_op.f('fk_number_menu_id_menu'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_number_menu_id'))
        batch_op.drop_column('menu_id')
        batch_op.create_check_constraint('one_owner', OLD_ONE_OWNER)

    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.drop_column('ring_time')
        batch_op.drop_column('position')

    with op.batch_alter_table('answer_group', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_answer_group_queue_message_id_voice_message'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_answer_group_queue_message_id'))
        batch_op.drop_column('queue_join_empty')
        batch_op.drop_column('queue_announce_position')
        batch_op.drop_column('queue_announce_interval')
        batch_op.drop_column('queue_first_announcement')
        batch_op.drop_column('queue_message_id')
        batch_op.drop_column('queue_max_wait')
        batch_op.drop_column('queue_max_callers')
        batch_op.drop_column('queue_enabled')
        batch_op.drop_column('no_answer_target')
        batch_op.drop_column('no_answer_kind')
        batch_op.drop_column('retry_delay')
        batch_op.drop_column('repeat')
        batch_op.drop_column('no_answer_time')
        batch_op.drop_column('ring_time')
        batch_op.drop_column('strategy')
        batch_op.drop_column('group_code')

    with op.batch_alter_table('schedule_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_entry_schedule_id'))
        batch_op.drop_index(batch_op.f('ix_schedule_entry_message_id'))

    op.drop_table('schedule_entry')
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_override_message_id'))
        batch_op.drop_index(batch_op.f('ix_schedule_organization_id'))
        batch_op.drop_index(batch_op.f('ix_schedule_holidays_message_id'))

    op.drop_table('schedule')
    op.drop_table('menu_option')
    with op.batch_alter_table('menu', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_menu_organization_id'))
        batch_op.drop_index(batch_op.f('ix_menu_message_id'))
        batch_op.drop_index(batch_op.f('ix_menu_invalid_message_id'))

    op.drop_table('menu')
    with op.batch_alter_table('voice_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_message_organization_id'))

    op.drop_table('voice_message')
