"""The example app's one table: reports that a background job builds."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import CheckConstraint, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

__all__ = ["FINISHED_STATUSES", "STATUSES", "TITLE_MAX_LENGTH", "Report"]

STATUSES = ("pending", "running", "done", "failed")
FINISHED_STATUSES = ("done", "failed")
TITLE_MAX_LENGTH = 200


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


class Report(db.Model):  # type: ignore[name-defined,misc]
    """A report requested from the web page and built by the `build_report` job."""

    __tablename__ = "report"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name="report_status_valid"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str | None] = mapped_column(Text, default=None)
    job_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def finished(self) -> bool:
        """Whether the report's job has come to an end, well or badly."""
        return self.status in FINISHED_STATUSES

    def __repr__(self) -> str:
        return f"<Report {self.id} {self.title!r} {self.status}>"
