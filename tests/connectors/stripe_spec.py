"""Validate recorded Stripe requests against Stripe's own OpenAPI spec.

``SpecValidator(load_spec(path)).problems(method, url, body)`` finds the operation by method and
path template, decodes the form body (or the query string of a GET) into nested values, coerces
the strings to the schema's types (integer, number, boolean, arrays from indexed keys) and
validates them with jsonschema against the operation's request schema, ``$ref`` resolved within
the spec. Stripe's request schemas set ``additionalProperties: false``, so an undocumented
parameter is a problem; query parameters are checked against the operation's ``parameters``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path("vendor-specs") / "stripe" / "spec3.2023-09-12.yaml"
SPEC_URI = "urn:stripe:spec3"
FORM = "application/x-www-form-urlencoded"
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    """The parsed spec, once per process (it is a 4 MB YAML file)."""
    with path.open("rb") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=Loader)  # a safe loader
    return spec


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: dict[str, Any]

    @property
    def pointer(self) -> str:
        escaped = self.template.replace("~", "~0").replace("/", "~1")
        return f"#/paths/{escaped}/{self.method}/requestBody/content/{FORM.replace('/', '~1')}"


class SpecValidator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
        self._routes = sorted(
            ((method, template, _template_regex(template))
             for template, item in spec["paths"].items() for method in item),
            key=lambda route: route[1].count("{"))  # literal paths before templated ones

    def operation(self, method: str, path: str) -> Operation | None:
        method = method.lower()
        for route_method, template, regex in self._routes:
            if route_method == method and regex.fullmatch(path):
                return Operation(method, template, self.spec["paths"][template][method])
        return None

    def problems(self, method: str, url: str, body: str = "") -> list[str]:
        """Everything the spec has against this request; an empty list when it conforms."""
        parts = urlsplit(url)
        operation = self.operation(method, parts.path)
        if operation is None:
            return [f"{method} {parts.path}: no such operation in the spec"]
        found = list(self._query_problems(operation, parts.query))
        if method.upper() == "POST":
            found.extend(self._body_problems(operation, body))
        return [f"{method} {operation.template}: {problem}" for problem in found]

    def _query_problems(self, operation: Operation, query: str) -> Iterator[str]:
        declared = {p["name"]: p for p in operation.spec.get("parameters", [])
                    if p["in"] == "query"}
        given = decode_form(query)
        for name in given:
            if name not in declared:
                yield f"undocumented query parameter {name!r}"
        for name, parameter in declared.items():
            if parameter.get("required") and name not in given:
                yield f"missing required query parameter {name!r}"
            elif name in given:
                yield from self._errors(coerce(given[name], parameter["schema"], self),
                                        parameter["schema"], name)

    def _body_problems(self, operation: Operation, body: str) -> Iterator[str]:
        content = operation.spec.get("requestBody", {}).get("content", {})
        if FORM not in content:
            yield "the operation takes no form body"
            return
        schema = {"$ref": f"{SPEC_URI}{operation.pointer}/schema"}
        data = coerce(decode_form(body), schema, self)
        yield from self._errors(data, schema, "body")

    def _errors(self, data: Any, schema: dict[str, Any], where: str) -> Iterator[str]:
        validator = Draft4Validator(schema, registry=self._registry)
        for error in validator.iter_errors(data):
            path = "".join(f"[{p}]" for p in error.absolute_path)
            yield f"{where}{path}: {error.message[:300]}"

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with its ``$ref`` chain followed (refs are relative to the spec)."""
        while "$ref" in schema:
            schema = self._registry.resolver(SPEC_URI).lookup(schema["$ref"]).contents
        return schema

    def is_valid(self, data: Any, schema: dict[str, Any]) -> bool:
        return Draft4Validator(schema, registry=self._registry).is_valid(data)


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.compile(pattern)


# ---------------------------------------------------------------------------------------------
# Decoding and coercion (deliberately independent of the sandbox's own decoder)


def decode_form(text: str) -> dict[str, Any]:
    """``a[b][0]=x`` into ``{"a": {"b": ["x"]}}`` (index-keyed dicts become lists)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        names = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1] or str(len(node))] = value  # "tax_rates[]" appends
    return _lists(root)


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    value = {k: _lists(v) for k, v in value.items()}
    if value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def coerce(value: Any, schema: dict[str, Any], spec: SpecValidator) -> Any:
    """Form strings as the schema's types, so jsonschema can judge them."""
    schema = spec.resolve(schema)
    if "anyOf" in schema:
        options = [coerce(value, option, spec) for option in schema["anyOf"]]
        valid = [o for o, s in zip(options, schema["anyOf"], strict=True) if spec.is_valid(o, s)]
        return valid[0] if valid else options[0]
    kind = schema.get("type")
    if isinstance(value, str):
        return _scalar(value, kind)
    if isinstance(value, dict) and kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {k: coerce(v, properties.get(k) or (extra if isinstance(extra, dict) else {}),
                          spec) for k, v in value.items()}
    if isinstance(value, list) and kind == "array":
        return [coerce(item, schema.get("items", {}), spec) for item in value]
    return value


def _scalar(value: str, kind: str | None) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
