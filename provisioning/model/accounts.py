"""Who may use the admin API: provider staff, login sessions and API tokens.

Super admins (provider staff) are their own principals, separate from organisation users.
Session and token secrets are never stored: only their SHA-256 (they are 256-bit random
values, so a slow hash adds nothing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.model.base import Base, Timestamped, Versioned, utcnow


class SuperAdmin(Versioned, Timestamped, Base):
    __tablename__ = "super_admin"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))


class LoginSession(Base):
    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True, default=None)
    super_admin_id: Mapped[int | None] = mapped_column(
        ForeignKey("super_admin.id", ondelete="CASCADE"), index=True, default=None)
    #: "Keep me logged in": a long-lived cookie; otherwise a browser-session cookie.
    persistent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    client_ip: Mapped[str | None] = mapped_column(String(45), default=None)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True, default=None)
    super_admin_id: Mapped[int | None] = mapped_column(
        ForeignKey("super_admin.id", ondelete="CASCADE"), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
