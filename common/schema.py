"""Typed configs from untrusted mappings (a YAML file, a checkpoint, command-line overrides).

:func:`from_mapping` turns a plain mapping into a (nested) dataclass, checking every key against
the field's annotation — ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``tuple[int, ...]``,
``X | None``, ``dict``, a nested dataclass — and the dataclass's own ``check()`` for ranges. A
problem is an :class:`InputError` that names the key, the value and what is expected, e.g.
``config: trainer.epochs: expected an integer, got 'abc'``. Nothing in the mapping is ever looked
up or called by name: a value is data, whatever it says.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union

from common.errors import InputError


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} values" if origin is tuple else "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is dict or origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp, where: str, problem) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad():
        shown = repr(value)
        raise problem(f"{where}: expected {_describe(tp)}, got {shown[:80]}")

    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, where, problem)
            except InputError:
                continue
        bad()
    if tp is bool:
        if isinstance(value, bool):
            return value
        bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        bad()
    if tp is str:
        if isinstance(value, str):
            return value
        bad()
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        bad()
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            bad()
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                bad()
            return tuple(_convert(v, a, f"{where}[{i}]", problem) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        converted = [_convert(v, item, f"{where}[{i}]", problem) for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where, problem=problem)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            bad()
        if origin is dict and args:
            return {_convert(k, args[0], f"{where}.{k}", problem): _convert(v, args[1], f"{where}.{k}", problem)
                    for k, v in value.items()}
        return dict(value)
    raise TypeError(f"{where}: unsupported annotation {tp!r}")  # a bug in the schema, not the input


def from_mapping(cls, data, where: str, *, ignore: tuple[str, ...] = (), problem=InputError):
    """``cls(**data)`` with every field converted and checked (see the module docstring). Keys in
    ``ignore`` are dropped silently (fields an older writer stored); any other unknown key is an
    error, so a typo never passes as a default. After conversion ``cls.check(instance)`` runs when
    it exists and may raise ``ValueError``, reported under ``where``."""
    if dataclasses.is_dataclass(data):
        data = dataclasses.asdict(data)
    if not isinstance(data, dict):
        raise problem(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in data if k not in fields and k not in ignore)
    if unknown:
        raise problem(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{where}.{name}", problem)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise problem(f"{where}.{name}: missing")
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise problem(f"{where}: {exc}") from None
    return instance
