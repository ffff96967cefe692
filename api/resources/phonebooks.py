"""External contacts (A9): shared phonebooks, granted to users by membership, shown on their phones."""

from __future__ import annotations


from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.access import creation_org, get_contact, get_phonebook, org_user_ids, visible_org_ids
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem
from api.types import Id, PhoneNumber, Text, Timestamp
from provisioning.audit import record
from provisioning.model import Contact, Phonebook, PhonebookMember


class ContactIn(BaseModel):
    name: Text(200, 1)
    number: PhoneNumber
    mobile: PhoneNumber | None = None
    company: Text(200, 1) | None = None


class ContactPatch(BaseModel):
    name: Text(200, 1) | None = None
    number: PhoneNumber | None = None
    mobile: PhoneNumber | None = None
    company: Text(200, 1) | None = None


class ContactOut(BaseModel):
    id: int
    name: str
    number: str
    mobile: str | None
    company: str | None
    version: int


class ContactPage(Page[ContactOut]):
    pass


class PhonebookOut(BaseModel):
    id: int
    organization_id: int
    name: str
    members: list[int] = Field(description="ids of the users it is granted to")
    contact_count: int
    version: int
    updated_at: Timestamp


class PhonebookPage(Page[PhonebookOut]):
    pass


class PhonebookCreate(BaseModel):
    organization_id: Id | None = None
    name: Text(100, 1)
    members: list[Id] = Field([], max_length=2000)
    contacts: list[ContactIn] = Field([], max_length=2000)


class PhonebookPatch(BaseModel):
    name: Text(100, 1) | None = None
    members: list[Id] | None = Field(None, max_length=2000)


class PhonebookQuery(PageQuery):
    organization_id: Id | None = None


def book_out(book: Phonebook) -> PhonebookOut:
    return PhonebookOut(id=book.id, organization_id=book.organization_id, name=book.name,
                        members=sorted(m.user_id for m in book.members), contact_count=len(book.contacts),
                        version=book.version, updated_at=book.updated_at)


def contact_out(c: Contact) -> ContactOut:
    return ContactOut(id=c.id, name=c.name, number=c.number, mobile=c.mobile, company=c.company, version=c.version)


async def _load(ctx: Ctx, book_id: int) -> Phonebook:
    return (await ctx.db.execute(select(Phonebook).where(Phonebook.id == book_id).options(
        selectinload(Phonebook.members), selectinload(Phonebook.contacts))
        .execution_options(populate_existing=True))).scalar_one()


async def _name_free(ctx: Ctx, org_id: int, name: str, but: int | None = None) -> None:
    other = (await ctx.db.execute(select(Phonebook.id).where(
        Phonebook.organization_id == org_id, Phonebook.name == name))).scalar_one_or_none()
    if other is not None and other != but:
        raise Problem(409, f"a phonebook named {name!r} exists",
                      errors=[{"loc": ["body", "name"], "msg": "already in use", "type": "conflict"}])


async def _set_members(ctx: Ctx, book: Phonebook, user_ids: list[int]) -> None:
    wanted = await org_user_ids(ctx, book.organization_id, user_ids, ["body", "members"])
    for member in list(book.members):
        if member.user_id not in wanted:
            book.members.remove(member)
    have = {m.user_id for m in book.members}
    for uid in wanted:
        if uid not in have:
            book.members.append(PhonebookMember(user_id=uid))


@api.route("GET", "/phonebooks", summary="List phonebooks", tags="phonebooks", auth="admin",
           query=PhonebookQuery, response=PhonebookPage)
async def list_phonebooks(ctx: Ctx):
    q: PhonebookQuery = ctx.query
    stmt = select(Phonebook).options(selectinload(Phonebook.members), selectinload(Phonebook.contacts))
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(Phonebook.organization_id == org)
    rows, cursor = await paginate(ctx.db, stmt, Phonebook.id, q)
    return PhonebookPage(items=[book_out(b) for b in rows], next_cursor=cursor)


@api.route("POST", "/phonebooks", summary="Create a phonebook", tags="phonebooks", auth="admin",
           body=PhonebookCreate, response=PhonebookOut, status=201, etag=True, errors=(409,))
async def create_phonebook(ctx: Ctx):
    body: PhonebookCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    await _name_free(ctx, org_id, body.name)
    book = Phonebook(organization_id=org_id, name=body.name, members=[], contacts=[
        Contact(name=c.name, number=c.number, mobile=c.mobile, company=c.company) for c in body.contacts])
    await org_user_ids(ctx, org_id, body.members, ["body", "members"])
    ctx.db.add(book)
    await ctx.db.flush()
    await _set_members(ctx, book, body.members)
    await ctx.db.flush()
    book = await _load(ctx, book.id)
    out = book_out(book)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="phonebook", entity_id=book.id,
           organization_id=org_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(book.version))


@api.route("GET", "/phonebooks/{phonebook_id}", summary="One phonebook", tags="phonebooks", auth="admin",
           response=PhonebookOut, etag=True)
async def get_phonebook_route(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    return Reply(book_out(book), etag=etag_of(book.version))


@api.route("PATCH", "/phonebooks/{phonebook_id}", summary="Rename or change who has the phonebook",
           tags="phonebooks", auth="admin", body=PhonebookPatch, response=PhonebookOut, etag=True, if_match=True,
           errors=(409,))
async def update_phonebook(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    check_if_match(ctx, book.version)
    body: PhonebookPatch = ctx.body
    before = book_out(book).model_dump(mode="json")
    if "name" in body.model_fields_set:
        if body.name is None:
            raise field_problem(["body", "name"], "may not be null")
        await _name_free(ctx, book.organization_id, body.name, book.id)
        book.name = body.name
    if "members" in body.model_fields_set:
        await _set_members(ctx, book, body.members or [])
    await ctx.db.flush()
    book = await _load(ctx, book.id)
    after = book_out(book).model_dump(mode="json")
    if after != before:
        book.updated_at = ctx.now
        await ctx.db.flush()
        book = await _load(ctx, book.id)
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="phonebook", entity_id=book.id,
               organization_id=book.organization_id, before=before, after=book_out(book).model_dump(mode="json"))
    return Reply(book_out(book), etag=etag_of(book.version))


@api.route("DELETE", "/phonebooks/{phonebook_id}", summary="Delete a phonebook", tags="phonebooks",
           auth="admin", if_match=True)
async def delete_phonebook(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    check_if_match(ctx, book.version)
    before = book_out(book).model_dump(mode="json")
    await ctx.db.delete(book)
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="phonebook", entity_id=book.id,
           organization_id=book.organization_id, before=before)
    return None


@api.route("GET", "/phonebooks/{phonebook_id}/contacts", summary="The contacts of a phonebook",
           tags="phonebooks", auth="admin", query=PageQuery, response=ContactPage)
async def list_contacts(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    rows, cursor = await paginate(ctx.db, select(Contact).where(Contact.phonebook_id == book.id), Contact.id,
                                  ctx.query)
    return ContactPage(items=[contact_out(c) for c in rows], next_cursor=cursor)


@api.route("POST", "/phonebooks/{phonebook_id}/contacts", summary="Add a contact", tags="phonebooks",
           auth="admin", body=ContactIn, response=ContactOut, status=201, etag=True)
async def create_contact(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    body: ContactIn = ctx.body
    contact = Contact(phonebook_id=book.id, name=body.name, number=body.number, mobile=body.mobile,
                      company=body.company)
    ctx.db.add(contact)
    book.updated_at = ctx.now
    await ctx.db.flush()
    out = contact_out(contact)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="contact", entity_id=contact.id,
           organization_id=book.organization_id, after=out.model_dump(mode="json") | {"phonebook_id": book.id})
    return Reply(out, etag=etag_of(contact.version))


@api.route("PATCH", "/phonebooks/{phonebook_id}/contacts/{contact_id}", summary="Change a contact",
           tags="phonebooks", auth="admin", body=ContactPatch, response=ContactOut, etag=True, if_match=True)
async def update_contact(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    contact = await get_contact(ctx, book, ctx.path["contact_id"])
    check_if_match(ctx, contact.version)
    body: ContactPatch = ctx.body
    before = contact_out(contact).model_dump(mode="json")
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name in ("name", "number"):
            raise field_problem(["body", name], "may not be null")
        setattr(contact, name, value)
    await ctx.db.flush()
    after = contact_out(contact).model_dump(mode="json")
    if after != before:
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="contact", entity_id=contact.id,
               organization_id=book.organization_id, before=before, after=after)
    return Reply(contact_out(contact), etag=etag_of(contact.version))


@api.route("DELETE", "/phonebooks/{phonebook_id}/contacts/{contact_id}", summary="Remove a contact",
           tags="phonebooks", auth="admin", if_match=True)
async def delete_contact(ctx: Ctx):
    book = await get_phonebook(ctx, ctx.path["phonebook_id"])
    contact = await get_contact(ctx, book, ctx.path["contact_id"])
    check_if_match(ctx, contact.version)
    before = contact_out(contact).model_dump(mode="json")
    book.contacts.remove(contact)
    book.updated_at = ctx.now
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="contact", entity_id=contact.id,
           organization_id=book.organization_id, before=before)
    return None
