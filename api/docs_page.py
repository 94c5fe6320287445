"""The API reference as one plain HTML page, rendered here from the OpenAPI document.

No script and nothing fetched: the studio runs on machines without internet, so a viewer
that loads itself from a CDN would show an empty page. Each operation lists its access rule,
parameters, body fields (type, range, default, meaning) and answers.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 2rem;
color:#1d232b}
h1{margin-bottom:0}h2{margin-top:2.5rem;border-bottom:1px solid #ccd}
section{margin:1.2rem 0;padding:.6rem 1rem;border:1px solid #dde;border-radius:6px}
h3{margin:.2rem 0;font-family:ui-monospace,monospace;font-size:1rem}
.method{display:inline-block;min-width:4.5rem;font-weight:700}
.get{color:#1a6}.post{color:#26c}.patch{color:#a60}.delete{color:#c33}
table{border-collapse:collapse;margin:.3rem 0 .6rem}
td,th{border:1px solid #dde;padding:.15rem .5rem;text-align:left;vertical-align:top}
code{font-family:ui-monospace,monospace;font-size:.9em}.muted{color:#667}
nav a{margin-right:1rem}
"""

MAX_NESTING = 4


def render_docs(document: dict[str, Any]) -> str:
    """The whole page: operations grouped by their first path segment, in route order."""
    groups: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(_operation(path, method, operation, document))
    info = document["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(info['title'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])}</h1>",
        f"<p class=muted>OpenAPI {escape(document['openapi'])} · "
        "<a href=openapi.json>openapi.json</a></p>",
        f"<p>{escape(info.get('description', ''))}</p>",
        "<p>Send <code>Authorization: Bearer &lt;token&gt;</code> (a token from "
        "<code>POST /api/v1/auth/tokens</code>) or the session cookie. Errors are "
        "<code>application/problem+json</code> (RFC 9457) whose <code>detail</code> names "
        "what was wrong.</p>",
        "<nav>" + "".join(f"<a href='#{escape(t)}'>{escape(t)}</a>" for t in groups) + "</nav>",
    ]
    for tag, operations in groups.items():
        parts.append(f"<h2 id='{escape(tag)}'>{escape(tag)}</h2>")
        parts.extend(operations)
    parts.append("</body></html>")
    return "\n".join(parts)


def _operation(path: str, method: str, operation: dict[str, Any],
               document: dict[str, Any]) -> str:
    parts = [
        "<section>",
        f"<h3><span class='method {method}'>{method.upper()}</span> {escape(path)}</h3>",
        f"<p><b>{_prose(operation.get('summary', ''))}</b> "
        f"{_prose(operation.get('description', ''))}</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{_type(p['schema'], document)}</td>"
            f"<td>{'required' if p.get('required') else 'optional'}</td>"
            f"<td>{_prose(p.get('description', ''))}</td></tr>" for p in parameters)
        parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th>"
                     f"<th>meaning</th></tr>{rows}</table>")
    body = operation.get("requestBody")
    if body:
        for media_type, content in body["content"].items():
            need = "required" if body.get("required") else "optional"
            parts.append(f"<p>Body ({need}), <code>{escape(media_type)}</code>:</p>")
            parts.append(_schema(content["schema"], document, 0))
    answers = ", ".join(
        f"<code>{escape(status)}</code> {escape(answer.get('description', ''))}"
        + "".join(f" <span class=muted>{escape(m)}</span>" for m in answer.get("content", {}))
        for status, answer in operation["responses"].items())
    parts.append(f"<p>Answers: {answers}</p></section>")
    return "\n".join(parts)


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return resolved
    return schema


def _schema(schema: dict[str, Any], document: dict[str, Any], depth: int) -> str:
    """An object as a table of its fields; a choice of objects as one table per choice."""
    schema = _resolve(schema, document)
    choices = schema.get("oneOf") or schema.get("anyOf")
    if choices and depth < MAX_NESTING:
        inner = "".join(f"<li>{_schema(c, document, depth + 1)}</li>" for c in choices)
        return f"<p>one of:</p><ul>{inner}</ul>"
    properties = schema.get("properties")
    if not properties or depth >= MAX_NESTING:
        return f"<p>{_type(schema, document)}</p>"
    required = set(schema.get("required", []))
    rows = []
    for name, field in properties.items():
        field = _resolve(field, document)
        nested = _object_of(field, document)
        detail = _schema(nested, document, depth + 1) if nested else ""
        rows.append(
            f"<tr><td><code>{escape(name)}</code></td><td>{_type(field, document)}</td>"
            f"<td>{'required' if name in required else 'optional'}</td>"
            f"<td>{_default(field)}</td>"
            f"<td>{_prose(field.get('description', ''))}{detail}</td></tr>")
    closed = " Other fields are refused." if schema.get("additionalProperties") is False else ""
    title = _prose(schema.get("description", "") or "")
    return (f"<p class=muted>{title}{closed}</p><table><tr><th>field</th><th>type</th><th></th>"
            f"<th>default</th><th>meaning</th></tr>{''.join(rows)}</table>")


def _object_of(field: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    """The object a field holds (directly or as the non-null choice), for a nested table."""
    for candidate in [field, *field.get("anyOf", [])]:
        candidate = _resolve(candidate, document)
        if candidate.get("properties"):
            return candidate
    return None


def _default(field: dict[str, Any]) -> str:
    if "default" not in field:
        return ""
    return f"<code>{escape(_json(field['default']))}</code>"


def _type(schema: dict[str, Any], document: dict[str, Any]) -> str:
    """A one-line type: ``number ≥ 0 ≤ 0.5``, ``"mm" | "cm"``, ``list of 3 number``."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return f"<i>{escape(ref.rsplit('/', 1)[-1])}</i>"
    if "const" in schema:
        return f"<code>{escape(_json(schema['const']))}</code>"
    if "enum" in schema:
        return " | ".join(f"<code>{escape(_json(v))}</code>" for v in schema["enum"])
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        return " or ".join(_type(choice, document) for choice in choices)
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    text = escape(str(kind))
    if kind == "array" and isinstance(schema.get("items"), dict):
        count = _count(schema)
        text = f"list of {count}{_type(schema['items'], document)}"
    if "format" in schema:
        text += f" <span class=muted>({escape(schema['format'])})</span>"
    bounds = [(key, symbol) for key, symbol in (
        ("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
        ("exclusiveMaximum", "<"), ("minLength", "length ≥"), ("maxLength", "length ≤"))
        if key in schema]
    text += "".join(f" {symbol} {escape(_json(schema[key]))}" for key, symbol in bounds)
    return text


def _count(schema: dict[str, Any]) -> str:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and low == high:
        return f"{low} "
    return ""


_LITERAL = re.compile(r"``?([^`]+)``?")


def _prose(text: str) -> str:
    """Escaped text with its ``literals`` (as docstrings write them) set as code."""
    return _LITERAL.sub(r"<code>\1</code>", escape(text))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
