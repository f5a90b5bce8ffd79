"""Typed experiment configurations: frozen dataclasses, `key=value` overrides with
suggestions for misspelt keys, and JSON round trips."""

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ._errors import ConfigError, UnknownOverrideError

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _is_config(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def config_keys(config: Any, prefix: str = "") -> list[str]:
    """Every overridable dotted key of a (nested) dataclass config, depth first.

    **Arguments:**

    - `config`: a dataclass instance; fields that are themselves dataclasses are walked.
    - `prefix`: prepended to every key (used in the recursion).

    **Returns:**

    The keys, e.g. `["seed", "meta.lr", "meta.iterations"]`.
    """
    if not _is_config(config):
        raise TypeError(f"expected a dataclass config, got {type(config).__name__}")
    keys = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        name = prefix + field.name
        if _is_config(value):
            keys.extend(config_keys(value, name + "."))
        else:
            keys.append(name)
    return keys


def _parse_scalar(text: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in {"none", "null"}:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_scalar(text, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}={text!r}: not a valid value ({'; '.join(errors)})")
    if origin is typing.Literal:
        for allowed in args:
            if str(allowed) == text:
                return allowed
        raise ConfigError(f"{key}={text!r}: allowed values are {', '.join(repr(a) for a in args)}")
    if origin in (tuple, list) or annotation in (tuple, list):
        parts = [p.strip() for p in text.strip("()[]").split(",") if p.strip()]
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(parts) != len(args):
                raise ConfigError(f"{key}={text!r}: expected {len(args)} comma-separated values")
            return tuple(_parse_scalar(p, a, key) for p, a in zip(parts, args, strict=True))
        item = args[0] if args else Any
        values = [_parse_scalar(p, item, key) for p in parts]
        return tuple(values) if (origin is tuple or annotation is tuple) else values
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{key}={text!r}: expected true or false")
    if annotation is int:
        try:
            return int(float(text)) if float(text).is_integer() else int(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r}: expected an integer") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r}: expected a number") from None
    if annotation is str:
        return text
    raise ConfigError(f"{key}: values of type {annotation!r} cannot be set from the command line")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def apply_overrides(config: T, overrides: Sequence[str] | Mapping[str, Any]) -> T:
    """A copy of `config` with `key=value` overrides applied.

    **Arguments:**

    - `config`: a frozen dataclass instance (nested dataclasses allowed).
    - `overrides`: strings `"dotted.key=value"` (values parsed by the field's type:
      numbers, `true`/`false`, comma-separated tuples, `none` for optional fields, a
      literal's allowed values), or a mapping from dotted keys to already-typed values.

    **Returns:**

    The new config; `config` is unchanged.

    **Raises:**

    [`lorl.runs.UnknownOverrideError`][] for a key the config does not have (naming the
    closest keys), [`lorl.runs.ConfigError`][] for a value of the wrong type or a string
    without `=`.
    """
    items: list[tuple[str, Any, bool]] = []
    if isinstance(overrides, Mapping):
        items = [(k, v, False) for k, v in overrides.items()]
    else:
        for text in overrides:
            if "=" not in text:
                raise ConfigError(f"override {text!r} is not of the form key=value")
            k, v = text.split("=", 1)
            items.append((k.strip(), v.strip(), True))
    keys = config_keys(config)
    for key, value, is_text in items:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise UnknownOverrideError(
                f"unknown config key {key!r}.{hint} Keys of this experiment: {', '.join(keys)}"
            )
        config = _set(config, key.split("."), value, is_text, key)
    return config


def _set(config: Any, path: list[str], value: Any, is_text: bool, key: str) -> Any:
    name = path[0]
    if len(path) > 1:
        return dataclasses.replace(
            config, **{name: _set(getattr(config, name), path[1:], value, is_text, key)}
        )
    if is_text:
        value = _parse_scalar(value, _field_types(type(config))[name], key)
    try:
        return dataclasses.replace(config, **{name: value})
    except (ValueError, TypeError) as e:  # __post_init__ validation of the config
        raise ConfigError(f"{key}={value!r}: {e}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a (nested) dataclass config (tuples become lists)."""
    if not _is_config(config):
        raise TypeError(f"expected a dataclass config, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a config of dataclass type `cls` from [`lorl.runs.config_to_dict`][]'s output.

    **Raises:**

    [`lorl.runs.ConfigError`][] when `data` has keys `cls` does not know or lacks required ones.
    """
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # pyright: ignore[reportArgumentType]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _from_json(value, hints[name])
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"cannot rebuild {cls.__name__}: {e}") from None


def _from_json(value: Any, annotation: Any) -> Any:
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return config_from_dict(annotation, value)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return config_from_dict(arg, value)
        if isinstance(value, list):
            return tuple(value)
        return value
    if (origin is tuple or annotation is tuple) and isinstance(value, list):
        args = typing.get_args(annotation)
        if args and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_from_json(v, a) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        return tuple(_from_json(v, item) for v in value)
    return value
