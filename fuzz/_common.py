"""Shared by the atheris harnesses: find the project, instrument only its own code."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Finding(AssertionError):
    """A property the harness checks was broken: atheris reports it as a crash."""
