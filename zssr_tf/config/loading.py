"""Reading a config: a YAML file (`base:` includes, shipped presets in `PRESETS_DIR`) and
`key=value` overrides, each key placed in its section and each value coerced to its field's type,
then validated; and writing a config back as YAML (`save_config`)."""

from __future__ import annotations

import dataclasses
import difflib
import math
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from zssr_tf.config.schema import KEY_TO_SECTION, NUMBER_OR_WORDS, SECTIONS, Config, ScalePair
from zssr_tf.config.validation import validate
from zssr_tf.errors import ZSSRError


PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (defaults when `path` is None) and apply `key=value` overrides.

    Raises ZSSRError naming the file, key and fix for any unknown key or invalid value.
    """
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        _merge(values, _read_yaml_with_bases(_resolve_config_path(path), seen=()), str(path))
    _merge(values, parse_overrides(overrides), "command line")
    return build_config(values)


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["noise_std=0.02", "train.max_iters=500"]` -> {"noise_std": 0.02, "train.max_iters": 500}.

    Values are parsed as YAML (`yaml.safe_load`), so lists like `[[2,2]]` work; never `eval`.
    """
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ZSSRError(f"override {item!r} is not of the form key=value (e.g. noise_std=0.02)")
        try:
            parsed[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ZSSRError(f"override {item!r}: the value is not valid YAML ({err})") from None
    return parsed


def build_config(values: dict[str, Any]) -> Config:
    """Validate nested or flat `values` (as read from YAML) into a Config."""
    by_section = _group_by_section(values, "config")
    sections = {}
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        kwargs = {
            key: _coerce(f"{section}.{key}", value, hints[key])
            for key, value in by_section.get(section, {}).items()
        }
        sections[section] = cls(**kwargs)
    config = Config(**sections)
    validate(config)
    return config


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML that `load_config` reads back to an equal Config."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def _resolve_config_path(path: str | Path, relative_to: Path | None = None) -> Path:
    """A config path as given, relative to the including file, or a shipped preset name."""
    candidates = [Path(path)]
    if relative_to is not None:
        candidates.insert(0, relative_to / path)
    candidates += [PRESETS_DIR / str(path), PRESETS_DIR / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    presets = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    raise ZSSRError(f"config file {str(path)!r} not found; give a path to a YAML file or a preset name: {presets}")


def read_yaml_mapping(path: Path, kind: str) -> dict[str, Any]:
    """The mapping a YAML file holds (empty file: {}); ZSSRError naming the `kind` of file
    ("config", "sweep") and the path when it is unreadable, invalid YAML or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ZSSRError(f"{kind} {path} is not valid YAML: {err}") from None
    except OSError as err:
        raise ZSSRError(f"{kind} {path} cannot be read: {err.strerror}") from None
    if not isinstance(data, dict):
        raise ZSSRError(f"{kind} {path} must be a mapping of keys, not {type(data).__name__}")
    return data


def suggest(name: str, valid) -> str:
    """"; did you mean 'x'?" for the closest of `valid` to `name`, else the list of valid names."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {sorted(valid)}"


def _read_yaml_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ZSSRError(f"config {path}: 'base' includes form a cycle ({' -> '.join(map(str, seen))})")
    data = read_yaml_mapping(path, "config")
    merged: dict[str, Any] = {}
    base = data.pop("base", None)
    if base is not None:
        base_path = _resolve_config_path(base, relative_to=path.parent)
        _merge(merged, _read_yaml_with_bases(base_path, seen + (path.resolve(),)), str(base_path))
    _merge(merged, data, str(path))
    return merged


def _merge(into: dict[str, Any], values: dict[str, Any], source: str) -> None:
    """Merge `values` (nested sections, flat keys or dotted keys) into nested `into`."""
    for section, keys in _group_by_section(values, source).items():
        into.setdefault(section, {}).update(keys)


def _group_by_section(values: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        key = str(key)
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ZSSRError(f"{source}: section {key!r} must be a mapping of keys, not {value!r}")
            for sub_key, sub_value in value.items():
                _check_key(str(sub_key), key, source)
                grouped.setdefault(key, {})[str(sub_key)] = sub_value
            continue
        section, _, name = key.rpartition(".")
        if section:
            if section not in SECTIONS:
                raise ZSSRError(f"{source}: unknown section {section!r} in {key!r}{suggest(section, SECTIONS)}")
            _check_key(name, section, source)
        else:
            if name not in KEY_TO_SECTION:
                raise ZSSRError(f"{source}: unknown config key {name!r}{suggest(name, KEY_TO_SECTION)}")
            section = KEY_TO_SECTION[name]
        grouped.setdefault(section, {})[name] = value
    return grouped


def _check_key(key: str, section: str, source: str) -> None:
    if KEY_TO_SECTION.get(key) != section:
        where = f" (it belongs in section {KEY_TO_SECTION[key]!r})" if key in KEY_TO_SECTION else ""
        names = [f.name for f in dataclasses.fields(SECTIONS[section])]
        raise ZSSRError(f"{source}: unknown key {key!r} in section {section!r}{where}{suggest(key, names)}")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Convert a YAML value to the field's type, or raise ZSSRError naming key and value."""
    hint_text = str(hint)
    if value is None:
        if "None" in hint_text:
            return None
        raise ZSSRError(f"{key} needs a value, got nothing")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ZSSRError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        return _to_int(key, value)
    if hint is float or hint_text == "float | None":
        return _to_float(key, value)
    if hint_text in ("int | str", "float | str"):  # a number or "auto" (NUMBER_OR_WORDS: other words)
        words = NUMBER_OR_WORDS.get(key, ("auto",))
        if value in words:
            return value
        try:
            return _to_int(key, value) if hint_text.startswith("int") else _to_float(key, value)
        except ZSSRError:
            kind = "a whole number" if hint_text.startswith("int") else "a number"
            raise ZSSRError(f"{key} must be {kind} or {' or '.join(words)}, got {value!r}") from None
    if hint is str or hint_text == "str | None":
        if isinstance(value, str):
            return value
        raise ZSSRError(f"{key} must be a string, got {value!r}")
    if hint == tuple[ScalePair, ...]:
        if not isinstance(value, (list, tuple)):
            raise ZSSRError(f"{key} must be a list of scale steps like [[2.0, 2.0]], got {value!r}")
        return tuple(_to_scale_pair(f"{key}[{i}]", v) for i, v in enumerate(value))
    if hint == tuple[int, ...]:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_to_int(key, v) for v in items)
    raise TypeError(f"no coercion for {key} of type {hint_text}")  # a programming error


def _to_float(key: str, value: Any) -> float:
    # PyYAML reads `1e-4` (no dot) as a string: accept any text that is a number.
    if isinstance(value, bool):
        raise ZSSRError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ZSSRError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ZSSRError(f"{key} must be a finite number, got {value!r}")
    return number


def _to_int(key: str, value: Any) -> int:
    number = _to_float(key, value)
    if number != int(number):
        raise ZSSRError(f"{key} must be a whole number, got {value!r}")
    return int(number)


def _to_scale_pair(key: str, value: Any) -> ScalePair:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ZSSRError(f"{key} must be one factor or a pair [vertical, horizontal], got {value!r}")
        return (_to_float(key, value[0]), _to_float(key, value[1]))
    factor = _to_float(key, value)
    return (factor, factor)
