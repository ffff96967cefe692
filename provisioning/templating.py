"""Jinja2 environment for phone templates (``templates/phones/<vendor>/``).

Every interpolated value is stripped of control characters, so a user name cannot smuggle a
line break (and with it a new setting) into a ``key = value`` file; XML templates are also
auto-escaped. Undefined variables fail loudly instead of rendering an empty SIP password.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from markupsafe import Markup

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe(value):
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub(" ", value)
    return value


class PhoneTemplates:
    def __init__(self, directory: Path) -> None:
        loader = jinja2.FileSystemLoader(str(directory))
        self._text = jinja2.Environment(
            loader=loader, undefined=jinja2.StrictUndefined, autoescape=False,
            keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=_safe,
        )
        self._xml = jinja2.Environment(
            loader=loader, undefined=jinja2.StrictUndefined, autoescape=True,
            keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=_safe,
        )

    def render(self, template: str, **values) -> bytes:
        env = self._xml if template.endswith((".xml", ".xml.j2", ".htm.j2")) else self._text
        return env.get_template(template).render(**values).encode("utf-8")
