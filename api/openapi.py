"""The OpenAPI 3.1 document, generated from the route declarations and their pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

import provisioning
from api.framework import PATH_PARAMS, PREFIX, Api, Operation
from api.principals import COOKIE
from api.problems import ProblemModel
from api.types import MAX_ID

REF = "#/components/schemas/{model}"

_STATUS_TEXT = {
    400: "the body is not valid JSON", 401: "not logged in (no valid session cookie or API token)",
    403: "logged in, but not allowed to do this", 404: "no such resource (or not yours to see)",
    409: "conflicts with existing data (a number, username, MAC... already in use)",
    412: "If-Match does not match the resource's current ETag", 413: "body too large",
    415: "unsupported media type", 422: "a field is invalid (see errors)",
    429: "too many failed logins; wait Retry-After seconds", 500: "internal error",
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict:
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self._put(name, sub)
        self._put(model.__name__, schema)
        return {"$ref": REF.format(model=model.__name__)}

    def _put(self, name: str, schema: dict) -> None:
        existing = self.components.get(name)
        if existing is not None and existing != schema:
            raise ValueError(f"schema {name} differs between uses; give input and output their own models")
        self.components[name] = schema


def _parameters(op: Operation, schemas: _Schemas) -> list[dict]:
    params = []
    for name in op.path_params:
        _, low, high = PATH_PARAMS.get(name, (int, 1, MAX_ID))
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {"type": "integer", "minimum": low, "maximum": high}})
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=REF, mode="validation")
        for sub_name, sub in schema.pop("$defs", {}).items():
            schemas._put(sub_name, sub)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    if op.if_match:
        params.append({"name": "If-Match", "in": "header", "required": False,
                       "description": "the ETag you read; a stale one gets 412",
                       "schema": {"type": "string"}})
    return params


def _operation(op: Operation, schemas: _Schemas) -> dict:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": list(op.tags)}
    if op.description:
        out["description"] = op.description
    params = _parameters(op, schemas)
    if params:
        out["parameters"] = params
    if op.body is not None:
        ref = schemas.ref(op.body, "validation")
        out["requestBody"] = {"required": True, "content": {m: {"schema": ref} for m in op.body_media}}
    elif op.body_media != ("application/json",):
        out["requestBody"] = {"required": True, "content": {
            m: {"schema": {"type": "string", "format": "binary"}} for m in op.body_media}}
    success: dict[str, Any] = {"description": "success"}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": schemas.ref(op.response, "serialization")}}
    elif op.response_media != ("application/json",):
        success["content"] = {m: {"schema": {"type": "string", "format": "binary"}} for m in op.response_media}
    if op.etag:
        success["headers"] = {"ETag": {"description": "the resource's version, for If-Match",
                                       "schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status if op.response or op.response_media != ("application/json",)
                                     else 204): success}
    problem = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
    codes = set(op.errors) | {500}
    if op.auth != "public":
        codes |= {401}
    if op.auth in ("admin", "super"):
        codes |= {403}
    if op.path_params:
        codes |= {404}
    if op.query is not None or op.body is not None:
        codes |= {422}
    if op.body is not None:
        codes |= {400, 413, 415}
    if op.if_match:
        codes |= {412}
    for code in sorted(codes):
        responses[str(code)] = {"description": _STATUS_TEXT.get(code, "error"), "content": problem}
    responses["default"] = {"description": "any other error, as problem details", "content": problem}
    out["responses"] = responses
    if op.auth == "public":
        out["security"] = []
    return out


def build(api: Api) -> dict:
    schemas = _Schemas()
    schemas._put("Problem", ProblemModel.model_json_schema(ref_template=REF)
                 | {"title": "Problem"})
    for name, sub in ProblemModel.model_json_schema(ref_template=REF).get("$defs", {}).items():
        schemas._put(name, sub)
    schemas.components["Problem"].pop("$defs", None)
    paths: dict[str, dict] = {}
    for op in api.operations:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "deskprov admin and self-service API", "version": provisioning.__version__,
                 "description": "Organisations, users, numbers, answer groups, diversions, phonebooks, "
                                "desk phones and their keys. Errors are RFC 9457 problem details."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                            "description": "set by POST /api/v1/auth/login"},
                "token": {"type": "http", "scheme": "bearer",
                          "description": "an API token from POST /api/v1/tokens"},
            },
        },
        "security": [{"session": []}, {"token": []}],
    }
