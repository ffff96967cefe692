"""The organisation model: one module per aggregate, all sharing one declarative Base."""

from provisioning.model.accounts import ApiToken, LoginSession, SuperAdmin
from provisioning.model.audit import AuditEntry
from provisioning.model.base import Base
from provisioning.model.changes import ChangeEvent
from provisioning.model.devices import NUMBER_TARGET_KEYS, Device, Key, KeyType, Line
from provisioning.model.fetches import ConfigFetch
from provisioning.model.diversions import Diversion, DiversionReason, DiversionTarget
from provisioning.model.groups import AnswerGroup, GroupMember
from provisioning.model.media import VoiceMessage
from provisioning.model.menus import Menu, MenuOption
from provisioning.model.numbers import MobileProfile, Number, NumberRole
from provisioning.model.outbox import OutboxMessage
from provisioning.model.phonebooks import Contact, Phonebook, PhonebookMember
from provisioning.model.schedules import Schedule, ScheduleEntry, ScheduleOwner
from provisioning.model.sightings import Sighting
from provisioning.model.tenancy import Organization
from provisioning.model.users import CallerId, User

__all__ = [
    "AnswerGroup", "ApiToken", "AuditEntry", "Base", "CallerId", "ChangeEvent", "ConfigFetch", "Contact", "Device", "Diversion",
    "DiversionReason", "DiversionTarget", "GroupMember", "Key", "KeyType", "Line", "LoginSession", "Menu", "MenuOption",
    "MobileProfile", "NUMBER_TARGET_KEYS", "Number", "NumberRole", "Organization", "OutboxMessage", "Phonebook",
    "PhonebookMember", "Schedule", "ScheduleEntry", "ScheduleOwner", "Sighting", "SuperAdmin", "User",
    "VoiceMessage",
]
