"""The base of every typed input, and pydantic's errors as one readable sentence.

Inputs are strict (a string is not a number, ``1`` is not ``true``), closed (an unknown key is
an error, not silently dropped) and finite (JSON has no NaN or Infinity, and PostgreSQL's
``jsonb`` refuses them: one such value in a stored event once stopped every read model).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from core.errors import InvalidInput

T = TypeVar("T", bound=BaseModel)


class Input(BaseModel):
    """A JSON object received from outside: strict, closed and finite."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def _whole(value: Any) -> Any:
    """Accept ``2.0`` as ``2`` (JSON does not tell them apart); a fraction stays a float and
    is refused by the strict integer check that follows."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole)
"""Marks an integer that may arrive written as ``2.0``; it goes after the field's ``Field``
constraints (placed before them, pydantic writes ``ge``/``le`` into the JSON Schema instead
of ``minimum``/``maximum``)."""

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL stores no NUL character in ``text`` or ``jsonb``; one would fail the write."""


def text(max_length: int, min_length: int = 0) -> Any:
    """A string field of bounded length without NUL characters."""
    return Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)


def validated(model: type[T], data: Any, what: str = "the body") -> T:
    """``data`` as ``model``, or :class:`InvalidInput` naming each offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InvalidInput(describe(e, what)) from None


def describe(error: ValidationError, what: str = "the body") -> str:
    """One sentence per problem, each naming its field (``printer.nozzle_mm``)."""
    unknown = [_where(e["loc"]) for e in error.errors() if e["type"] == "extra_forbidden"]
    parts = [f"unknown parameter(s) {', '.join(unknown)}"] if unknown else []
    parts += [_sentence(e, what) for e in error.errors() if e["type"] != "extra_forbidden"]
    return "; ".join(parts)


_PHRASES = {
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number (no NaN or Infinity)",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "missing": "is required",
    "string_pattern_mismatch": "must not contain NUL characters",
}


def _sentence(error: Any, what: str) -> str:
    where = _where(error["loc"])
    kind = error["type"]
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        return f"{where}: {message}" if where else message
    if kind == "literal_error":
        phrase = f"must be one of {error['ctx']['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than",
                  "too_short", "too_long", "string_too_short", "string_too_long"):
        phrase = error["msg"].replace("Input should", "should").replace("Value should",
                                                                        "should")
    else:
        phrase = _PHRASES.get(kind, error["msg"].replace("Input should", "should"))
    return f"{where or what} {phrase}"


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)
