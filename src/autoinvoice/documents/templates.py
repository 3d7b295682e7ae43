"""The words on the PDF invoice: label catalogues and text templates, per language, which a
tenant can override file by file. See ``docs/templates.md`` for the files and their variables.

Built-in files live in ``documents/templates/`` (flat): ``labels.<lang>.toml`` (short labels,
``str.format`` placeholders such as ``{page}``) and Jinja2 text templates ``terms.<lang>.j2``,
``payment.<lang>.j2``, ``footer.<lang>.j2``. A tenant's ``template_dir`` may hold any of them by
the same name: a template there replaces the built-in one; a label catalogue there overrides key
by key (missing keys fall back to the built-in).

``load_templates`` caches per (template_dir, language): files are read once per process, so a
changed template takes effect on restart. Every problem in a tenant's file (TOML or Jinja
syntax, an unknown label key or placeholder, an unknown variable when rendered) raises
``TemplateError`` naming the file.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["BUILT_IN", "LANGUAGES", "TEXTS", "TemplateError", "Templates", "load_templates",
           "stray_files"]

BUILT_IN = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("en", "de")
TEXTS = ("terms", "payment", "footer")
#: label tables whose keys are data slugs (any key allowed; unknown slugs are humanized)
SLUG_TABLES = ("line_kind", "service_type", "asset_type", "signature_method")
_KNOWN_FILE = re.compile(rf"^(labels\.({'|'.join(LANGUAGES)})\.toml|"
                         rf"({'|'.join(TEXTS)})\.({'|'.join(LANGUAGES)})\.j2)$")


class TemplateError(ValueError):
    """A template or label catalogue that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class Templates:
    """The labels and text templates of one language, tenant overrides applied."""

    language: str
    labels: Mapping[str, str]
    texts: Mapping[str, jinja2.Template]
    paths: Mapping[str, Path]  # where each text template and "labels" came from

    def label(self, key: str, **values: object) -> str:
        """The label ``key`` with its placeholders filled: ``label("page", page=1, pages=2)``."""
        text = self.labels[key]
        try:
            return text.format(**values)
        except (LookupError, ValueError) as exc:
            raise TemplateError(f"{self.paths['labels']}: label {key!r}: {exc!r}") from exc

    def term(self, table: str, slug: str) -> str:
        """A data slug in words (``service_type``, ``emergency_repair``), else humanized."""
        return self.labels.get(f"{table}.{slug}") or humanize(slug)

    def render(self, name: str, context: Mapping[str, Any]) -> list[str]:
        """Template ``name`` rendered: its non-blank lines, stripped."""
        try:
            text = self.texts[name].render(context)
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise TemplateError(f"{self.paths[name]}: {type(exc).__name__}: {exc}") from exc
        return [row.strip() for row in text.splitlines() if row.strip()]


def humanize(slug: str) -> str:
    """``emergency_repair`` -> ``Emergency repair``."""
    return slug.replace("_", " ").replace("-", " ").strip().capitalize()


@functools.lru_cache(maxsize=64)
def load_templates(template_dir: Path | None, language: str) -> Templates:
    """The templates for ``language``, files in ``template_dir`` overriding the built-in ones."""
    if language not in LANGUAGES:
        raise TemplateError(f"unknown language {language!r} (known: {', '.join(LANGUAGES)})")
    if template_dir is not None and not Path(template_dir).is_dir():
        raise TemplateError(f"{template_dir}: template_dir is not a directory")
    labels, label_path = _labels(template_dir, language)
    texts, paths = {}, {"labels": label_path}
    for name in TEXTS:
        path = _pick(template_dir, f"{name}.{language}.j2")
        texts[name], paths[name] = _compile(path), path
    return Templates(language, labels, texts, paths)


def stray_files(template_dir: Path | None) -> list[str]:
    """Files in ``template_dir`` that look like templates but match no known name (typos)."""
    if template_dir is None or not Path(template_dir).is_dir():
        return []
    return [f"{path}: not a known template file name (known: labels.<lang>.toml, "
            f"{', '.join(f'{n}.<lang>.j2' for n in TEXTS)}; <lang> one of {', '.join(LANGUAGES)})"
            for path in sorted(Path(template_dir).iterdir())
            if path.suffix in (".toml", ".j2", ".jinja", ".jinja2")
            and not _KNOWN_FILE.match(path.name)]


# --------------------------------------------------------------------------- loading
def _pick(template_dir: Path | None, name: str) -> Path:
    if template_dir is not None and (Path(template_dir) / name).is_file():
        return Path(template_dir) / name
    return BUILT_IN / name


def _read_toml(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise TemplateError(f"{path}: not a valid label catalogue: {exc}") from exc
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in SLUG_TABLES:
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    bad = [key for key, value in flat.items() if not isinstance(value, str)]
    if bad:
        raise TemplateError(f"{path}: labels must be strings: {', '.join(sorted(bad))}")
    return flat


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _labels(template_dir: Path | None, language: str) -> tuple[dict[str, str], Path]:
    built_in = BUILT_IN / f"labels.{language}.toml"
    labels = _read_toml(built_in)
    path = _pick(template_dir, f"labels.{language}.toml")
    if path == built_in:
        return labels, path
    for key, text in _read_toml(path).items():
        if key not in labels and key.split(".")[0] not in SLUG_TABLES:
            raise TemplateError(f"{path}: unknown label key {key!r}")
        try:
            fields = _placeholders(text)
        except ValueError as exc:
            raise TemplateError(f"{path}: label {key!r}: {exc} (write {{{{ for a brace)") from exc
        allowed = _placeholders(labels.get(key, ""))
        if fields - allowed:
            raise TemplateError(
                f"{path}: label {key!r}: unknown placeholder(s) "
                f"{', '.join('{' + f + '}' for f in sorted(fields - allowed))} "
                f"(allowed: {', '.join('{' + f + '}' for f in sorted(allowed)) or 'none'})")
        labels[key] = text
    return labels, path


@functools.cache
def _environment() -> jinja2.Environment:
    # A tenant's template is text from outside the code: sandboxed, so it can read the values
    # it is given but reach no Python internals (``__class__``, ``__globals__``…) and change
    # nothing (Jinja2's documented sandbox, https://jinja.palletsprojects.com/en/stable/sandbox/)
    return ImmutableSandboxedEnvironment(
        autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=False)


def _compile(path: Path) -> jinja2.Template:
    try:
        return _environment().from_string(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{path}:{exc.lineno}: template syntax error: {exc.message}") from exc
    except (UnicodeDecodeError, OSError) as exc:
        raise TemplateError(f"{path}: cannot read template: {exc}") from exc
