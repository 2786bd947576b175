"""Bearer tokens mapped to roles from API_TOKENS: orchestra admin of one tenant, superadmin, approval service."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Role = Literal["superadmin", "approval_service", "orchestra_admin"]


class Principal(BaseModel):
    """Who is calling. The token itself is never kept here, so a principal can be logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    tenant: str | None = Field(default=None, min_length=1)
    name: str = ""  # recorded as the approver; defaults to the role

    @model_validator(mode="after")
    def _tenant_matches_role(self) -> Principal:
        if (self.role == "orchestra_admin") != (self.tenant is not None):
            raise ValueError("an orchestra_admin token names exactly one tenant; other roles name none")
        return self

    @property
    def who(self) -> str:
        return self.name or (f"orchestra_admin:{self.tenant}" if self.tenant else self.role)


class TokenConfigError(ValueError):
    """API_TOKENS cannot be read; the message never contains a token."""


def _digest(token: str) -> str:
    # Tokens are kept only as digests: a dump of the app's state shows no usable credential.
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._by_digest = {_digest(token): principal for token, principal in principals.items()}

    @classmethod
    def parse(cls, text: str) -> Tokens:
        """JSON object: token -> "superadmin" | "approval_service" | "orchestra_admin:TENANT" | {role, tenant, name}."""
        try:
            raw = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise TokenConfigError(f"API_TOKENS is not JSON (line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(raw, dict):
            raise TokenConfigError("API_TOKENS must be a JSON object of token -> role")
        principals: dict[str, Principal] = {}
        for number, (token, value) in enumerate(raw.items(), start=1):
            if len(token) < 16:
                raise TokenConfigError(f"API_TOKENS entry {number}: a token must have at least 16 characters")
            if isinstance(value, str):
                role, _, tenant = value.partition(":")
                value = {"role": role, "tenant": tenant or None}
            try:
                principals[token] = Principal.model_validate(value)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
                raise TokenConfigError(f"API_TOKENS entry {number} ({problems})") from None
        return cls(principals)

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token))
