from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from waimai.platform.accounts.models import Role

PHONE_PATTERN = r"^\+?\d{6,15}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(Strict):
    phone: str = Field(pattern=PHONE_PATTERN, examples=["13800000001"])
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type
    role: str
    user_id: int
    expires_in: int


class UserCreate(Strict):
    phone: str = Field(pattern=PHONE_PATTERN)
    name: str = Field(min_length=1, max_length=80)
    role: Role
    password: str = Field(min_length=8, max_length=200)
    merchant_id: int | None = Field(default=None, ge=1)


class UserChange(Strict):
    role: Role | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: str
    phone_masked: str
    merchant_id: int | None
