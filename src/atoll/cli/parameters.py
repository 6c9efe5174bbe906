"""Consumer parameters on the command line: declared by ``publish algorithm --param
NAME[:TYPE[:required]][=DEFAULT]`` and ``--choice NAME=A,B,C``, given by ``compute run
--param NAME=VALUE``. Every mistake is refused here, before anything is sent or paid for."""

from __future__ import annotations

from typing import cast, get_args

import pydantic

from atoll.errors import BadRequest
from atoll.models.ddo import ConsumerParameter, ParamType
from atoll.models.parameters import validate_parameters

TYPES: tuple[str, ...] = get_args(ParamType)


def declared(specs: list[str], choices: list[str]) -> list[ConsumerParameter]:
    """The parameters ``--param`` declares, with the options ``--choice`` gives the select
    ones, and each default checked against its type (and options) and stored as that type."""
    options = _choices(choices)
    out: list[ConsumerParameter] = []
    for spec in specs:
        head, has_default, default = spec.partition("=")
        name, kind, required = _head(head, spec)
        try:
            param = ConsumerParameter(
                name=name, type=kind, required=required, options=options.pop(name, [])
            )
        except pydantic.ValidationError:
            raise BadRequest(
                f"--param {spec!r}: a name is letters, digits and _, not starting with a digit"
            ) from None
        if param.options and param.type != "select":
            raise BadRequest(f"--choice {name}: {name} is a {param.type} parameter, not select")
        if param.type == "select" and not param.options:
            raise BadRequest(f"--param {spec!r}: a select parameter needs --choice {name}=A,B,C")
        if has_default:
            param.default = validate_parameters([param], {name: default})[name]
        if any(p.name == name for p in out):
            raise BadRequest(f"--param {name} is declared twice")
        out.append(param)
    for name in options:
        raise BadRequest(f"--choice {name}: no select parameter {name} is declared with --param")
    return out


def _head(head: str, spec: str) -> tuple[str, ParamType, bool]:
    parts = head.split(":")
    if len(parts) > 3:
        raise BadRequest(f"--param takes NAME[:TYPE[:required]][=DEFAULT], not {spec!r}")
    name = parts[0]
    kind = parts[1] if len(parts) > 1 else "text"
    flag = parts[2] if len(parts) > 2 else ""
    if kind not in TYPES:
        raise BadRequest(f"--param {spec!r}: the type is one of {', '.join(TYPES)}")
    if flag not in ("", "required"):
        raise BadRequest(f"--param {spec!r}: after the type only 'required' may follow")
    return name, cast(ParamType, kind), flag == "required"


def _choices(choices: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in choices:
        name, sep, listed = item.partition("=")
        options = [o.strip() for o in listed.split(",") if o.strip()]
        if not sep or not name or not options:
            raise BadRequest(f"--choice takes NAME=A,B,C, not {item!r}")
        if name in out:
            raise BadRequest(f"--choice {name} is given twice")
        if len(set(options)) != len(options):
            raise BadRequest(f"--choice {item!r}: an option is listed twice")
        out[name] = options
    return out


def given(pairs: list[str]) -> dict[str, str]:
    """The values ``compute run --param NAME=VALUE`` gives."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BadRequest(f"--param takes NAME=VALUE, not {pair!r}")
        if name in out:
            raise BadRequest(f"--param {name} is given twice")
        out[name] = value
    return out
