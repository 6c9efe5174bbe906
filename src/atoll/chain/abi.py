"""A small ABI codec over eth-abi: calls, return values and event logs.

Vyper has no overloading, so functions and events are looked up by name.
Addresses come back checksummed; ``bytes32`` values as ``bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak


def _canonical_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type string of a parameter, expanding tuples (structs)."""
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param.get("components", ()))
        return f"({inner}){typ[len('tuple') :]}"
    return typ


def _normalise(typ: str, value: Any) -> Any:
    """Checksum decoded addresses, recursively through tuples and arrays."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        return [_normalise(inner, v) for v in value]
    if typ.startswith("("):
        return tuple(_normalise(t, v) for t, v in zip(_split_tuple(typ), value, strict=True))
    if typ == "address":
        return to_checksum_address(value)
    return value


def _split_tuple(typ: str) -> list[str]:
    """``(a,(b,c),d[])`` -> ``["a", "(b,c)", "d[]"]``."""
    body = typ[1:-1]
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(body):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    if body:
        parts.append(body[start:])
    return parts


@dataclass(frozen=True)
class AbiFunction:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    selector: bytes
    mutability: str

    def encode(self, args: Sequence[Any]) -> bytes:
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} arguments, got {len(args)}")
        return self.selector + abi_encode(list(self.inputs), list(args))

    def decode(self, data: bytes) -> Any:
        """The return value: ``None`` for none, the value for one, else a tuple."""
        if not self.outputs:
            return None
        values = abi_decode(list(self.outputs), data)
        normal = tuple(_normalise(t, v) for t, v in zip(self.outputs, values, strict=True))
        return normal[0] if len(normal) == 1 else normal


@dataclass(frozen=True)
class AbiEvent:
    name: str
    topic: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """Decode a log's topics (after topic 0) and data into ``{name: value}``."""
        data_types = [t for t, ix in zip(self.types, self.indexed, strict=True) if not ix]
        data_values = iter(abi_decode(data_types, data)) if data_types else iter(())
        topic_values = iter(topics[1:])
        out: dict[str, Any] = {}
        for name, typ, ix in zip(self.names, self.types, self.indexed, strict=True):
            if ix:
                raw = next(topic_values)
                if _is_static(typ):
                    out[name] = _normalise(typ, abi_decode([typ], raw)[0])
                else:
                    out[name] = raw  # dynamic indexed values are stored as their hash
            else:
                out[name] = _normalise(typ, next(data_values))
        return out


def _is_static(typ: str) -> bool:
    return not (typ in ("bytes", "string") or typ.endswith("[]") or typ.startswith("("))


class ContractAbi:
    """Functions and events of one contract's ABI, by name and by topic."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self.functions: dict[str, AbiFunction] = {}
        self.events: dict[str, AbiEvent] = {}
        self.events_by_topic: dict[bytes, AbiEvent] = {}
        self.constructor_inputs: tuple[str, ...] = ()
        for item in abi:
            kind = item.get("type")
            if kind == "function":
                inputs = tuple(_canonical_type(p) for p in item.get("inputs", ()))
                outputs = tuple(_canonical_type(p) for p in item.get("outputs", ()))
                sig = f"{item['name']}({','.join(inputs)})"
                self.functions[str(item["name"])] = AbiFunction(
                    name=str(item["name"]),
                    inputs=inputs,
                    outputs=outputs,
                    selector=keccak(text=sig)[:4],
                    mutability=str(item.get("stateMutability", "nonpayable")),
                )
            elif kind == "event":
                params = item.get("inputs", ())
                types = tuple(_canonical_type(p) for p in params)
                ev = AbiEvent(
                    name=str(item["name"]),
                    topic=keccak(text=f"{item['name']}({','.join(types)})"),
                    names=tuple(str(p["name"]) for p in params),
                    types=types,
                    indexed=tuple(bool(p.get("indexed")) for p in params),
                )
                self.events[ev.name] = ev
                self.events_by_topic[ev.topic] = ev
            elif kind == "constructor":
                self.constructor_inputs = tuple(_canonical_type(p) for p in item.get("inputs", ()))

    def function(self, name: str) -> AbiFunction:
        try:
            return self.functions[name]
        except KeyError:
            raise AttributeError(f"the ABI has no function {name!r}") from None

    def encode_constructor(self, args: Sequence[Any]) -> bytes:
        if len(args) != len(self.constructor_inputs):
            raise TypeError(
                f"constructor takes {len(self.constructor_inputs)} arguments, got {len(args)}"
            )
        if not args:
            return b""
        return abi_encode(list(self.constructor_inputs), list(args))


ERROR_SELECTOR = keccak(text="Error(string)")[:4]
PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]


def decode_revert_reason(data: bytes) -> str:
    """The reason carried by revert data: Error(string), Panic(uint256), or hex."""
    if data[:4] == ERROR_SELECTOR:
        try:
            return str(abi_decode(["string"], data[4:])[0])
        except Exception:  # malformed revert data: fall back to hex below
            pass
    elif data[:4] == PANIC_SELECTOR:
        try:
            return f"panic {abi_decode(['uint256'], data[4:])[0]:#x}"
        except Exception:
            pass
    if not data:
        return "execution reverted"
    return "execution reverted: 0x" + data.hex()
