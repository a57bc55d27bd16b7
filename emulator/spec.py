"""The vendored OpenAPI spec, compiled once per process for request and response checks.

OpenAPI 3.0 schemas are turned into JSON Schema (draft 4, which shares 3.0's keyword
semantics): ``nullable: true`` becomes a ``null`` type, ``$ref`` to components is inlined.
Path templates become regular expressions, most literal segments first, so
``/workspaces/team/{teamId}`` wins over ``/workspaces/{workspaceId}``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema

SPEC_PATH = Path(__file__).resolve().parents[1] / "spec" / "codesphere-openapi.json"

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # RFC 3339 needs a date, a "T" and an offset; fromisoformat checks the rest.
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    _dt.datetime.fromisoformat(value)
    return True


def to_json_schema(schema: Any, components: dict[str, Any]) -> Any:
    """Convert an OpenAPI 3.0 schema object into plain JSON Schema (draft 4)."""
    if isinstance(schema, list):
        return [to_json_schema(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return to_json_schema(components[ref.rsplit("/", 1)[1]], components)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("nullable", "discriminator", "example", "xml", "externalDocs", "deprecated"):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: to_json_schema(sub, components) for name, sub in value.items()}
        else:
            out[key] = to_json_schema(value, components)
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _messages(validator: Any, instance: Any, where: str) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    out = []
    for error in errors:
        at = "/".join(str(p) for p in error.absolute_path)
        out.append(f"{where}{('.' + at) if at else ''}: {error.message}")
    return out


@dataclass
class Operation:
    """One (method, path template) of the spec."""

    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    literal_segments: int
    path_params: dict[str, Any]
    query_params: dict[str, tuple[bool, Any]]
    body_schema: Any | None
    body_required: bool
    responses: dict[str, dict[str, Any]]
    _components: dict[str, Any] = field(repr=False)
    _validators: dict[str, Any] = field(default_factory=dict, repr=False)

    def _validator(self, key: str, schema: Any) -> Any:
        found = self._validators.get(key)
        if found is None:
            found = jsonschema.Draft4Validator(
                to_json_schema(schema, self._components), format_checker=_FORMATS
            )
            self._validators[key] = found
        return found

    @property
    def streams(self) -> bool:
        content = self.responses.get("200", {}).get("content", {})
        return "text/event-stream" in content

    def check_path_params(self, raw: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
        """Convert raw (percent-encoded) path values to their schema types and validate them."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, schema in self.path_params.items():
            text = unquote(raw[name])
            value, problem = _convert(text, schema)
            if problem:
                problems.append(f"path parameter {name}: {text!r} {problem}")
                continue
            problems += _messages(self._validator("path:" + name, schema), value, f"path {name}")
            values[name] = value
        return values, problems

    def check_query(self, query: dict[str, str]) -> list[str]:
        problems: list[str] = []
        for name, (required, schema) in self.query_params.items():
            if name not in query:
                if required:
                    problems.append(f"query parameter {name} is required")
                continue
            value, problem = _convert(query[name], schema)
            if problem:
                problems.append(f"query parameter {name}: {query[name]!r} {problem}")
            else:
                problems += _messages(self._validator("query:" + name, schema), value, name)
        return problems

    def check_body(
        self, present: bool, content_type: str, body: Any, parse_error: str | None
    ) -> list[str]:
        if self.body_schema is None:
            return ["operation takes no request body, but one was sent"] if present else []
        if not present:
            return ["request body is missing (application/json expected)"]
        if content_type.split(";", maxsplit=1)[0].strip().lower() != "application/json":
            return [f"request body Content-Type is {content_type!r}, expected application/json"]
        if parse_error:
            return [f"request body is not JSON: {parse_error}"]
        return _messages(self._validator("body", self.body_schema), body, "body")

    def check_response(self, status: int, body: Any) -> list[str]:
        """Validate a JSON response body against the spec's schema for that status."""
        spec = self.responses.get(str(status))
        if spec is None:
            return [f"status {status} is not documented for {self.method} {self.template}"]
        content = spec.get("content")
        if not content or "application/json" not in content:
            if body is not None:
                return [f"status {status} of {self.method} {self.template} has no documented body"]
            return []
        schema = content["application/json"].get("schema")
        if schema is None:
            return []
        return _messages(self._validator(f"response:{status}", schema), body, "response")

    def check_sse_event(self, event: str, data: Any) -> list[str]:
        """Validate one SSE event (``data`` or ``problem``) of a streaming operation."""
        schema = self.responses["200"]["content"]["text/event-stream"]["schema"]
        mapping = schema["discriminator"]["mapping"]
        ref = mapping.get(event)
        if ref is None:
            return [f"SSE event type {event!r} is not documented"]
        return _messages(
            self._validator("sse:" + event, {"$ref": ref}), {"event": event, "data": data}, "event"
        )


def _convert(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    kind = schema.get("type")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", text):
            return None, "is not an integer"
        return int(text), None
    if kind == "number":
        try:
            return float(text), None
        except ValueError:
            return None, "is not a number"
    if kind == "boolean":
        if text not in ("true", "false"):
            return None, "is not a boolean"
        return text == "true", None
    return text, None


@dataclass
class RouteMatch:
    operation: Operation | None
    raw_params: dict[str, str]
    allowed: list[str]  # methods that exist on the path when the method does not


class Spec:
    """The compiled spec: route lookup and validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components: dict[str, Any] = document.get("components", {}).get("schemas", {})
        self.operations: list[Operation] = []
        self.by_id: dict[str, Operation] = {}
        for template, item in document["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method == "parameters":
                    continue
                params = [*shared, *op.get("parameters", [])]
                pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
                body = op.get("requestBody")
                operation = Operation(
                    method=method.upper(),
                    template=template,
                    operation_id=op.get("operationId", f"{method} {template}"),
                    regex=re.compile(pattern + r"\Z"),
                    literal_segments=sum(
                        1 for s in template.split("/") if s and not s.startswith("{")
                    ),
                    path_params={p["name"]: p["schema"] for p in params if p["in"] == "path"},
                    query_params={
                        p["name"]: (bool(p.get("required")), p["schema"])
                        for p in params
                        if p["in"] == "query"
                    },
                    body_schema=(
                        body["content"]["application/json"]["schema"]
                        if body and "application/json" in body.get("content", {})
                        else None
                    ),
                    body_required=bool(body and body.get("required")),
                    responses=op.get("responses", {}),
                    _components=self.components,
                )
                self.operations.append(operation)
                self.by_id[operation.operation_id] = operation
        self.operations.sort(key=lambda o: -o.literal_segments)

    def match(self, method: str, path: str) -> RouteMatch:
        """Find the operation for ``path`` (without the ``/api`` prefix, still percent-encoded)."""
        allowed: list[str] = []
        found: tuple[int, Operation, dict[str, str]] | None = None
        for operation in self.operations:
            hit = operation.regex.match(path)
            if not hit:
                continue
            if operation.method == method.upper():
                if found is None or operation.literal_segments > found[0]:
                    found = (operation.literal_segments, operation, hit.groupdict())
            else:
                allowed.append(operation.method)
        if found:
            return RouteMatch(found[1], found[2], [])
        return RouteMatch(None, {}, sorted(set(allowed)))

    def operation(self, method: str, template: str) -> Operation:
        for operation in self.operations:
            if operation.method == method.upper() and operation.template == template:
                return operation
        raise KeyError(f"{method} {template} is not in the spec")

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Validate a response body for a concrete request path (for the emulator's own tests)."""
        route = self.match(method, path)
        if route.operation is None:
            return [f"no operation {method} {path} in the spec"]
        return route.operation.check_response(status, body)


@functools.cache
def load_spec(path: str = str(SPEC_PATH)) -> Spec:
    """Parse and compile the spec once per process."""
    with open(path, encoding="utf-8") as handle:
        return Spec(json.load(handle))
