"""Request bodies of the CSC API (v2 names; the v1 names pyHanko sends are accepted as aliases)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    clientData: str | None = None


class InfoRequest(_Request):
    lang: str | None = None


class LoginRequest(_Request):
    rememberMe: bool = False


class RevokeTokenRequest(_Request):
    token: str | None = None
    token_type_hint: str | None = None


CertificatesChoice = Literal["none", "single", "chain"]


class CredentialsListRequest(_Request):
    userID: str | None = None
    credentialInfo: bool = False
    certificates: CertificatesChoice = "single"
    certInfo: bool = False
    authInfo: bool = False
    onlyValid: bool = False
    maxResults: int | None = Field(default=None, ge=1)


class CredentialsInfoRequest(_Request):
    credentialID: str
    certificates: CertificatesChoice = "single"
    certInfo: bool = False
    authInfo: bool = False
    lang: str | None = None


class AuthorizeRequest(_Request):
    """``credentials/authorize`` (v2 §11.6; v1 sends ``hash`` instead of ``hashes``)."""

    credentialID: str
    numSignatures: int = Field(ge=1)
    hashes: list[str] | None = Field(default=None, validation_alias=AliasChoices("hashes", "hash"))
    hashAlgorithmOID: str | None = Field(default=None, validation_alias=AliasChoices("hashAlgorithmOID", "hashAlgo"))
    PIN: str | None = None
    OTP: str | None = None
    description: str | None = None


class SignHashRequest(_Request):
    """``signatures/signHash`` (v2 §11.10; v1 sends ``hash`` and ``hashAlgo``)."""

    credentialID: str
    SAD: str
    hashes: list[str] = Field(min_length=1, validation_alias=AliasChoices("hashes", "hash"))
    hashAlgorithmOID: str | None = Field(default=None, validation_alias=AliasChoices("hashAlgorithmOID", "hashAlgo"))
    signAlgo: str
    signAlgoParams: str | None = None
    operationMode: Literal["S", "A"] = "S"
