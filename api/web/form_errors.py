"""An API problem as the sentence an admin form shows: the field named with the form's own
label in the page language, a stale version (412) explained, not a status code."""

from __future__ import annotations

from api.problems import Problem
from api.web.core import Page, problem_text


def field_label(page: Page, loc: list, labels: dict[str, str]) -> str:
    """The label of the innermost field of ``loc`` that the form knows ("from" -> "Från")."""
    for part in reversed([str(p) for p in loc]):
        if part in labels:
            return page.t(labels[part])
    return str(loc[-1]) if loc else ""


def form_error(page: Page, problem: Problem, labels: dict[str, str] | None = None) -> str:
    if problem.status == 412:
        return page.t("edit.stale")
    if problem.status == 409 and problem.errors and all(e.get("type") == "in_use" for e in problem.errors):
        return page.t("edit.in_use", detail="; ".join(e["msg"] for e in problem.errors))
    if problem.errors:
        return page.t("edit.invalid", detail="; ".join(
            f"{field_label(page, e['loc'], labels or {})}: {e['msg']}" for e in problem.errors))
    return problem_text(page, problem)


def error_fields(problem: Problem | None, labels: dict[str, str]) -> set[str]:
    """The form fields to mark aria-invalid."""
    if problem is None or not problem.errors:
        return set()
    return {str(p) for e in problem.errors for p in e["loc"] if str(p) in labels}
