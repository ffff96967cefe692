"""deskprov: provisioning and hardware gateway server for a hosted PBX's desk phones, DECT bases and ATAs."""

from pathlib import Path

__version__ = "0.1.0"

#: The project root in a source checkout / editable install: templates and tftp_root live there.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
