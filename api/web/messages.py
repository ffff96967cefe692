"""Voice messages (A14) for admins: listen in the browser, upload, replace, rename, speak a text,
delete. Every change goes through the messages API's own handlers (validation, normalisation to
8 kHz mono WAV, audit); a message still in use is refused with the API's list of where it is used,
shown on that message's card.
"""

from __future__ import annotations

import re

from aiohttp import web

from api.problems import Problem
from api.resources.messages import AUDIO_TYPES, LIMITS
from api.web.core import Page, RawBody, call, check_csrf, problem_text, redirect, render
from api.web.forms import Upload, UploadTooLarge, every, read_upload_form
from api.web.versioned import IfMatch, form_version
from api.web.pages import LoginRequired, _to_login, guarded, page_for, routes
from provisioning.media import espeak_binary

HOME = "/admin/messages"
VOICES = ("sv", "en")
ACCEPT = "audio/wav,audio/x-wav,audio/mpeg,audio/ogg,.wav,.mp3,.ogg,.oga"

# -- words ------------------------------------------------------------------------------------------

#: The API says where a message is used in English; the Swedish page says it in Swedish.
_WHERE_SV = [
    (re.compile(r"^the main number's calendar"), "växelnumrets kalender"),
    (re.compile(r"^calendar of group '(.*?)'(?=: )"), r"kalendern för gruppen '\1'"),
    (re.compile(r"^calendar of menu '(.*?)'(?=: )"), r"kalendern för menyn '\1'"),
    (re.compile(r"^queue of group '(.*)'$"), r"kön i gruppen '\1'"),
    (re.compile(r"^group '(.*)': no answer$"), r"gruppen '\1': när ingen svarar"),
    (re.compile(r"^menu '(.*)'(?=: )"), r"menyn '\1'"),
]
_DETAIL_SV = [
    (re.compile(r": manual override$"), ": manuell styrning"),
    (re.compile(r": public holidays$"), ": helgdagar"),
    (re.compile(r": after entry '(.*)'$"), r": efter posten '\1'"),
    (re.compile(r": entry '(.*)'$"), r": posten '\1'"),
    (re.compile(r": greeting$"), ": hälsning"),
    (re.compile(r": invalid entry$"), ": felaktigt val"),
    (re.compile(r": no choice$"), ": inget val"),
    (re.compile(r": final$"), ": sista destination"),
    (re.compile(r": key (\S+)$"), r": knapp \1"),
]


def where_text(lang: str, where: str) -> str:
    if lang != "sv":
        return where
    for rules in (_DETAIL_SV, _WHERE_SV):
        for pattern, replacement in rules:
            where, n = pattern.subn(replacement, where, count=1)
            if n:
                break
    return where


def duration_text(lang: str, seconds: float | None) -> str:
    """12.3 s as "12,3 s" (Swedish) or "12.3 s"; a minute or more as "1:05"."""
    if seconds is None:
        return "–"
    if seconds < 60:
        text = f"{seconds:.1f} s"
        return text.replace(".", ",") if lang == "sv" else text
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def size_text(lang: str, size: int | None) -> str:
    if size is None:
        return ""
    text = f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} kB"
    return text.replace(".", ",") if lang == "sv" else text


# -- the page ---------------------------------------------------------------------------------------


async def _messages_page(request: web.Request, page: Page, *, error: str | None = None, status: int = 200,
                         row_errors: dict[int, str] | None = None, values: dict | None = None,
                         open_id: int | None = None) -> web.Response:
    messages = sorted(await every(request, "list_messages"), key=lambda m: m.name.casefold())
    return render(page, "messages.html", status=status, messages=messages, error=error, row_errors=row_errors or {},
                  values=values or {}, open_id=open_id, tts=espeak_binary() is not None, voices=VOICES,
                  max_bytes=LIMITS.max_bytes, max_seconds=int(LIMITS.max_seconds), accept=ACCEPT,
                  max_mb=size_text(page.lang, LIMITS.max_bytes),
                  where=lambda w: where_text(page.lang, w), duration=lambda s: duration_text(page.lang, s),
                  size=lambda n: size_text(page.lang, n))


@routes.get(HOME)
@guarded(admin=True)
async def messages_page(request: web.Request, page: Page, form: None) -> web.Response:
    return await _messages_page(request, page)


def _problem_text(page: Page, problem: Problem) -> str:
    """The API's words for what is wrong, with the page's own for the common cases."""
    if problem.status == 412:
        return page.t("messages.error.stale")
    if problem.status == 503:
        return page.t("messages.error.tts")
    if problem.status in (413, 415, 422) and problem.errors and problem.errors[0]["loc"] == ["body"]:
        return page.t("messages.error.audio", detail=problem.errors[0]["msg"])
    if problem.status == 409 and problem.errors and any(e.get("type") == "conflict" for e in problem.errors):
        return page.t("messages.error.name")
    return problem_text(page, problem)


def _too_large(page: Page, size: int | None = None) -> str:
    return page.t("messages.error.large", max=size_text(page.lang, LIMITS.max_bytes))


def _audio(request: web.Request, upload: Upload, version: int | None = None) -> RawBody:
    """The uploaded file as the API's raw audio body; the browser's label is only a hint (the API
    decodes the content), so an unknown label is sent as octet-stream rather than refused here."""
    media = upload.content_type if upload.content_type in AUDIO_TYPES else "application/octet-stream"
    raw = RawBody(request, upload.data, media)
    if version is not None:
        raw.headers = dict(IfMatch(request, version).headers)
    return raw


def upload_page(handler):
    """An admin POST carrying a file: read with the upload limit (oversized files become an inline
    error on the page), then the same CSRF check as every other form."""
    async def page(request: web.Request) -> web.StreamResponse:
        try:
            p = await page_for(request, admin=True)
        except LoginRequired:
            return _to_login(request)
        try:
            form = await read_upload_form(request, LIMITS.max_bytes)
        except UploadTooLarge:
            response = await _messages_page(request, p, error=_too_large(p), status=413)
            response.force_close()
            return response
        if not await check_csrf(request, form):
            return render(p, "error.html", status=403, message=p.t("csrf.failed"))
        return await handler(request, p, form)
    page.__name__ = handler.__name__
    return page


def _file(form: dict) -> Upload | None:
    upload = form.get("audio")
    return upload if isinstance(upload, Upload) and (upload.size or upload.filename) else None


@routes.post(HOME + "/recordings")
@upload_page
async def message_upload(request: web.Request, page: Page, form: dict) -> web.Response:
    name = str(form.get("name", "")).strip()
    upload = _file(form)
    values = {"new_name": name}
    if not name:
        return await _messages_page(request, page, error=page.t("messages.error.noname"), status=422, values=values)
    if upload is None:
        return await _messages_page(request, page, error=page.t("messages.error.nofile"), status=422, values=values)
    if upload.too_large:
        return await _messages_page(request, page, error=_too_large(page), status=413, values=values)
    try:
        made = await call(request, "upload_message", query={"name": name, "filename": upload.filename[:200] or None},
                          raw=_audio(request, upload))
    except Problem as problem:
        return await _messages_page(request, page, error=_problem_text(page, problem), status=problem.status,
                                    values=values)
    return redirect(f"{HOME}#message-{made.id}", flash="messages.uploaded")


@routes.post(HOME + r"/{message_id:\d{1,12}}/audio")
@upload_page
async def message_replace(request: web.Request, page: Page, form: dict) -> web.Response:
    message_id = int(request.match_info["message_id"])
    upload = _file(form)

    async def again(text: str, status: int) -> web.Response:
        return await _messages_page(request, page, row_errors={message_id: text}, status=status, open_id=message_id)

    if upload is None:
        return await again(page.t("messages.error.nofile"), 422)
    if upload.too_large:
        return await again(_too_large(page), 413)
    try:
        await call(request, "replace_message_audio", path={"message_id": message_id},
                   query={"filename": upload.filename[:200] or None}, raw=_audio(request, upload, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await again(_problem_text(page, problem), problem.status)
    return redirect(f"{HOME}#message-{message_id}", flash="messages.replaced")


@routes.post(HOME + "/speech")
@guarded(admin=True)
async def message_speak(request: web.Request, page: Page, form: dict) -> web.Response:
    name, text = str(form.get("name", "")).strip(), str(form.get("text", "")).strip()
    voice = str(form.get("voice", "sv"))
    values = {"tts_name": name, "tts_text": text, "tts_voice": voice}
    if not name or not text:
        return await _messages_page(request, page, error=page.t("messages.error.notext"), status=422, values=values)
    try:
        made = await call(request, "create_message", body={"name": name, "text": text, "voice": voice})
    except Problem as problem:
        return await _messages_page(request, page, error=_problem_text(page, problem), status=problem.status,
                                    values=values)
    return redirect(f"{HOME}#message-{made.id}", flash="messages.spoken")


@routes.post(HOME + r"/{message_id:\d{1,12}}")
@guarded(admin=True)
async def message_edit(request: web.Request, page: Page, form: dict) -> web.Response:
    """Rename; for a text-to-speech message also a new text (spoken again)."""
    message_id = int(request.match_info["message_id"])
    body: dict = {"name": str(form.get("name", "")).strip()}
    if "text" in form:
        body["text"] = str(form.get("text", "")).strip()
    try:
        current = await call(request, "get_message_route", path={"message_id": message_id})
        if body.get("text") == (current.text or "") or current.origin != "generated":
            body.pop("text", None)  # unchanged: nothing to speak again
        await call(request, "update_message", path={"message_id": message_id}, body=body,
                   raw=IfMatch(request, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await _messages_page(request, page, row_errors={message_id: _problem_text(page, problem)},
                                    status=problem.status, open_id=message_id)
    return redirect(f"{HOME}#message-{message_id}", flash="messages.saved")


@routes.post(HOME + r"/{message_id:\d{1,12}}/delete")
@guarded(admin=True)
async def message_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    message_id = int(request.match_info["message_id"])
    try:
        await call(request, "delete_message", path={"message_id": message_id},
                   raw=IfMatch(request, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        if problem.status == 409 and problem.errors:
            used = "; ".join(where_text(page.lang, e["msg"]) for e in problem.errors)
            text = page.t("messages.error.inuse", where=used)
        else:
            text = _problem_text(page, problem)
        return await _messages_page(request, page, row_errors={message_id: text}, status=problem.status)
    return redirect(HOME, flash="messages.deleted")

