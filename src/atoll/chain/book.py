"""Where one deployment's contracts live: the address book a provider keeps in its home and
hands to its clients."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from atoll.signing import checksum_address

# AddressBook field per contract name.
_BOOK_FIELDS: dict[str, str] = {
    "AtollToken": "token",
    "DIDRegistry": "did_registry",
    "TemplateStore": "template_store",
    "AgreementStore": "agreement_store",
    "LockPaymentCondition": "lock_payment",
    "ComputeExecutionCondition": "compute_execution",
    "EscrowPaymentCondition": "escrow_payment",
    "ComputeTemplate": "compute_template",
    "AccessCondition": "access_condition",
    "AccessEscrowPayment": "access_escrow",
    "AccessTemplate": "access_template",
}

#: the access service's contracts: a deployment made before it lacks them until they are
#: added (:meth:`atoll.chain.contracts.Contracts.deploy_access`)
ACCESS_FIELDS = ("access_condition", "access_escrow", "access_template")

#: a book entry deployed from another contract's code: the access escrow is an
#: EscrowPaymentCondition whose condition is the access condition
_CODE_OF = {"AccessEscrowPayment": "EscrowPaymentCondition"}


def code_of(contract: str) -> str:
    """The contract (source and ABI) an address book entry was deployed from."""
    return _CODE_OF.get(contract, contract)


@dataclass(frozen=True)
class AddressBook:
    """Where the contracts of one deployment live; serialisable to JSON."""

    chain_id: int
    governance: str
    #: Block of the first deployment transaction: event scans start here, never at 0.
    deployed_block: int
    token: str
    did_registry: str
    template_store: str
    agreement_store: str
    lock_payment: str
    compute_execution: str
    escrow_payment: str
    compute_template: str
    access_condition: str = ""
    access_escrow: str = ""
    access_template: str = ""

    @property
    def has_access(self) -> bool:
        """Whether the access service's contracts are deployed."""
        return all(getattr(self, f) for f in ACCESS_FIELDS)

    def address_of(self, contract: str) -> str:
        """Address of a contract by its name (e.g. ``"DIDRegistry"``)."""
        address = str(getattr(self, _BOOK_FIELDS[contract]))
        if not address:
            raise ValueError(
                f"this deployment has no {contract}: the provider adds it when it starts"
            )
        return address

    def contracts(self) -> dict[str, str]:
        """``{contract name: address}`` of the contracts deployed (an older deployment
        may lack the access service's)."""
        return {
            name: str(getattr(self, field))
            for name, field in _BOOK_FIELDS.items()
            if getattr(self, field)
        }

    def core_contracts(self) -> dict[str, str]:
        """The contracts every deployment has (the access service's aside)."""
        return {
            name: address
            for name, address in self.contracts().items()
            if _BOOK_FIELDS[name] not in ACCESS_FIELDS
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AddressBook:
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in ACCESS_FIELDS and not data.get(name):
                continue  # a deployment from before the access service
            if name not in data:
                raise ValueError(f"address book lacks {name!r}")
            raw = data[name]
            values[name] = (
                int(raw) if name in ("chain_id", "deployed_block") else checksum_address(raw)
            )
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AddressBook:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AddressBook:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
