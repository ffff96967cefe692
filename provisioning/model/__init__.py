"""The organisation model: one module per aggregate, all sharing one declarative Base."""

from provisioning.model.base import Base
from provisioning.model.changes import ChangeEvent
from provisioning.model.devices import NUMBER_TARGET_KEYS, Device, Key, KeyType, Line
from provisioning.model.numbers import Number, NumberRole
from provisioning.model.phonebooks import Contact, Phonebook, PhonebookMember
from provisioning.model.tenancy import Organization
from provisioning.model.users import User

__all__ = [
    "Base", "ChangeEvent", "Contact", "Device", "Key", "KeyType", "Line", "NUMBER_TARGET_KEYS", "Number",
    "NumberRole", "Organization", "Phonebook", "PhonebookMember", "User",
]
