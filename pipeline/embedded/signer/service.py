"""The remote-signing service (dịch vụ ký số từ xa): a subset of the CSC API v2 over HTTP.

Endpoints (all ``POST``, JSON; served under ``/csc/v2/`` and, for clients that speak CSC
v1 such as pyHanko's ``CSCSigner``, the same handlers under ``/csc/v1/``):

=============================  ===========================================================
``info``                       service description (no authentication)
``auth/login``                 HTTP Basic user/password → bearer ``access_token``
``auth/revoke``                revoke the bearer token
``credentials/list``           credential IDs of the user
``credentials/info``           key, certificate chain (base64 DER), status, auth mode, SCAL
``credentials/authorize``      PIN + hashes → SAD bound to exactly those hashes
``signatures/signHash``        SAD + hashes → signature values
=============================  ===========================================================

Plus the PKI's services, answered by Certomancer (:mod:`.pki`): ``POST /tsa`` (RFC 3161
time-stamping), ``GET /sohoa/crls/{root,issuing}/latest.crl`` (the CRLs the certificates
name) and ``POST /sohoa/ocsp/issuing`` (OCSP, RFC 6960). Administration (revocation, users)
is not exposed over HTTP: it works on the state directory (:mod:`pipeline.embedded.signer.admin`).

Errors are CSC-style JSON ``{"error": ..., "error_description": ...}``: 401 for missing,
wrong or expired credentials/tokens (``invalid_token``, ``authentication_error``), 400 for
the rest (``invalid_request``, ``invalid_pin``). Wrong passwords and PINs are counted per user
and persisted in the state directory (``pin-lockouts.json``, ``login-lockouts.json``): too many wrong passwords throttle that
user's logins (429 ``authentication_error`` with ``Retry-After``), too many wrong PINs lock that
user's use of that credential (403 ``invalid_pin`` with ``Retry-After``), for a time that doubles
with each further lock; neither affects other users, and a restart lifts neither.
"""



import base64
import binascii
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from certomancer.registry import CertomancerObjectNotFoundError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.embedded.signer import keystore
from pipeline.embedded.signer.algorithms import (
    HASH_BY_OID,
    HASHES,
    OID_P256,
    OID_P384,
    AlgorithmError,
    resolve_scheme,
    sign_digest,
    supported_sign_algos,
)
from pipeline.embedded.signer.auth import AttemptLimiter, PinChecker, TokenError, TokenStore, User, UserStore, login_key
from pipeline.embedded.signer.config import ServiceConfig
from pipeline.embedded.signer.models import (
    AuthorizeRequest,
    CredentialsInfoRequest,
    CredentialsListRequest,
    InfoRequest,
    LoginRequest,
    RevokeTokenRequest,
    SignHashRequest,
)
from pipeline.embedded.signer.pki import ARCH
from pipeline.embedded.signer.sad import SADError, SADStore

log = logging.getLogger("sohoa.signer")

CSC_V2_SPECS = "2.0.0.2"
CSC_V1_SPECS = "1.0.4.0"
_LEN_TO_HASH = {length: name for name, (_, _, length) in HASHES.items()}


class CSCError(Exception):
    """An error answered as CSC JSON with an HTTP status."""

    def __init__(
        self, status: int, error: str, description: str, *, challenge: str | None = None, retry_after: float | None = None
    ):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.challenge = challenge  # WWW-Authenticate scheme of a 401: "Basic" or "Bearer"
        self.retry_after = retry_after  # seconds, for a Retry-After header (429/403 of a lock)


def _generalized_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ")


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def _dn(name) -> str:
    """A DN in RFC 4514 form, Unicode kept (``CN=Văn phòng Chính phủ,...``)."""
    return name.rfc4514_string()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode_hashes(values: list[str]) -> list[bytes]:
    out = []
    for value in values:
        try:
            out.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise CSCError(400, "invalid_request", "Invalid Base64 hash string parameter") from None
    return out


class SignerService:
    """The CSC operations on a loaded :class:`~pipeline.embedded.signer.keystore.SignerState`."""

    def __init__(self, state: keystore.SignerState, config: ServiceConfig):
        self.state = state
        self.config = config
        self.users = UserStore(state.layout.users_file)
        self.tokens = TokenStore(config.token_ttl_s)
        self.sads = SADStore(config.sad_ttl_s)
        self.pins = PinChecker(AttemptLimiter(
            state.layout.pin_lockouts_file,
            max_failures=config.max_pin_failures,
            window_s=config.pin_failure_window_s,
            lockout_s=config.pin_lockout_s,
            max_lockout_s=config.max_pin_lockout_s,
        ))
        self.logins = AttemptLimiter(
            state.layout.login_lockouts_file,
            max_failures=config.max_login_failures,
            window_s=config.login_failure_window_s,
            lockout_s=config.login_lockout_s,
            max_lockout_s=config.max_login_lockout_s,
        )

    # --- info and authentication ---------------------------------------------------------

    def info(self, version: str) -> dict[str, Any]:
        return {
            "specs": CSC_V2_SPECS if version == "v2" else CSC_V1_SPECS,
            "name": self.config.name,
            "logo": "",
            "region": "VN",
            "lang": self.config.lang,
            "description": "Dịch vụ ký số từ xa của hệ thống số hóa sohoa (CSC API)",
            "authType": ["basic"],
            "oauth2": "",
            "methods": [
                "auth/login",
                "auth/revoke",
                "credentials/list",
                "credentials/info",
                "credentials/authorize",
                "signatures/signHash",
            ],
        }

    def login(self, authorization: str | None) -> dict[str, Any]:
        if not authorization or not authorization.lower().startswith("basic "):
            raise CSCError(401, "invalid_request", "HTTP Basic authorization (username:password) is required", challenge="Basic")
        try:
            username, sep, password = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise CSCError(401, "invalid_request", "Malformed HTTP Basic authorization header", challenge="Basic") from None
        if not sep:
            raise CSCError(401, "invalid_request", "Malformed HTTP Basic authorization header", challenge="Basic")
        key = login_key(username)
        until = self.logins.locked_until(key)
        if until is not None:  # refused before any password check: no scrypt work, no guess tested
            wait = max(1, int(until - time.time() + 0.999))
            raise CSCError(
                429,
                "authentication_error",
                f"Too many failed logins for this user: try again in {wait} s",
                retry_after=wait,
            )
        user = self.users.authenticate(username, password)
        if user is None:
            locked = self.logins.failure(key)
            if locked is not None:
                log.warning("logins of user %r throttled until %s after repeated wrong passwords", username, _iso(locked))
            else:
                log.warning("login refused for user %r", username)
            raise CSCError(401, "authentication_error", "Authentication error: wrong username or password", challenge="Basic")
        self.logins.success(key)
        token, expires_in = self.tokens.issue(user)
        return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}

    def user_for(self, authorization: str | None) -> User:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise CSCError(401, "invalid_token", "The request has no bearer access token (call auth/login)", challenge="Bearer")
        try:
            return self.tokens.user_for(authorization[7:].strip())
        except TokenError as exc:
            raise CSCError(401, "invalid_token", str(exc), challenge="Bearer") from None

    def revoke_token(self, authorization: str | None, req: RevokeTokenRequest) -> None:
        self.user_for(authorization)
        self.tokens.revoke(req.token or authorization[7:].strip())  # type: ignore[index]

    # --- credentials -----------------------------------------------------------------

    def _credential(self, user: User, credential_id: str) -> keystore.Credential:
        cred = self.state.credentials.get(credential_id)
        if cred is None or not user.may_use(credential_id):
            raise CSCError(400, "invalid_request", "Invalid parameter credentialID")
        return cred

    def _require_usable(self, cred: keystore.Credential) -> None:
        status = self.state.credential_status(cred)
        if status == "valid":
            return
        subject = _dn(cred.certificate.subject)
        if status == "revoked":
            rev = self.state.revocations.lookup(cred.certificate.serial_number)
            when = rev.revoked_at.isoformat() if rev else "?"
            raise CSCError(400, "invalid_request", f"Signing certificate '{subject}' is revoked (since {when})")
        raise CSCError(400, "invalid_request", f"Signing certificate '{subject}' is {status.replace('_', ' ')}")

    def credential_info(self, cred: keystore.Credential, *, certificates: str, cert_info: bool, auth_info: bool) -> dict[str, Any]:
        cert = cred.certificate
        public_key = cert.public_key()
        status = self.state.credential_status(cred)
        key: dict[str, Any] = {
            "status": "enabled" if status == "valid" else "disabled",
            "algo": supported_sign_algos(public_key),  # type: ignore[arg-type]
            "len": public_key.key_size,  # type: ignore[union-attr]
        }
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            key["curve"] = OID_P256 if public_key.curve.name == "secp256r1" else OID_P384
        cert_out: dict[str, Any] = {
            "status": status,
            "validFrom": _generalized_time(cert.not_valid_before_utc),
            "validTo": _generalized_time(cert.not_valid_after_utc),
        }
        if certificates != "none":
            chain = cred.chain if certificates == "chain" else cred.chain[:1]
            cert_out["certificates"] = [_b64(c.public_bytes(serialization.Encoding.DER)) for c in chain]
        if cert_info:
            cert_out["issuerDN"] = _dn(cert.issuer)
            cert_out["subjectDN"] = _dn(cert.subject)
            cert_out["serialNumber"] = format(cert.serial_number, "x")
        pin_object = {"type": "Password", "id": "PIN", "format": "N", "label": "PIN", "description": "Mã PIN của khóa ký"}
        out: dict[str, Any] = {
            "credentialID": cred.credential_id,
            "description": cred.description,
            "key": key,
            "cert": cert_out,
            "authMode": "explicit",
            "PIN": {"presence": "true", "format": "N", "label": "PIN", "description": pin_object["description"]},
            "SCAL": "2",
            "multisign": self.config.multisign,
            "lang": self.config.lang,
        }
        if auth_info:
            out["auth"] = {"mode": "explicit", "expression": "PIN", "objects": [pin_object]}
        return out

    def list_credentials(self, user: User, req: CredentialsListRequest) -> dict[str, Any]:
        if req.userID not in (None, user.username):
            raise CSCError(400, "invalid_request", "Invalid parameter userID")
        ids = [cid for cid in self.state.credentials if user.may_use(cid)]
        if req.onlyValid:
            ids = [cid for cid in ids if self.state.credential_status(self.state.credentials[cid]) == "valid"]
        if req.maxResults:
            ids = ids[: req.maxResults]
        out: dict[str, Any] = {"credentialIDs": ids}
        if req.credentialInfo:
            out["credentialInfos"] = [
                self.credential_info(
                    self.state.credentials[cid], certificates=req.certificates, cert_info=req.certInfo, auth_info=req.authInfo
                )
                for cid in ids
            ]
        return out

    def get_credential_info(self, user: User, req: CredentialsInfoRequest) -> dict[str, Any]:
        cred = self._credential(user, req.credentialID)
        out = self.credential_info(cred, certificates=req.certificates, cert_info=req.certInfo, auth_info=req.authInfo)
        out.pop("credentialID")
        until = self.pins.locked_until(user.username, cred.credential_id)
        if until is not None:  # this user's PIN is locked: the key is not usable by it (CSC key.status)
            out["key"]["status"] = "disabled"
            out["lockedUntil"] = _iso(until)  # an extension: when the lock ends
        return out

    # --- authorisation and signing -------------------------------------------------

    def authorize(self, user: User, req: AuthorizeRequest) -> dict[str, Any]:
        cred = self._credential(user, req.credentialID)
        self._require_usable(cred)
        self._require_pin_unlocked(user, cred)
        if not req.PIN:
            raise CSCError(400, "invalid_request", "Missing (or invalid type) string parameter PIN")
        if not self.pins.check(user.username, cred.credential_id, req.PIN, cred.pin_record):
            self._require_pin_unlocked(user, cred)  # this wrong PIN may have been the last one allowed
            left = self.pins.attempts_left(user.username, cred.credential_id)
            raise CSCError(400, "invalid_pin", f"The PIN is invalid ({left} attempt(s) left before it locks)")
        if not req.hashes:
            raise CSCError(400, "invalid_request", "Missing (or invalid type) array parameter hashes (SCAL2 binds the SAD to hashes)")
        if len(req.hashes) != req.numSignatures:
            raise CSCError(400, "invalid_request", "Invalid parameter numSignatures: it must equal the number of hashes")
        if req.numSignatures > self.config.multisign:
            raise CSCError(400, "invalid_request", f"Invalid parameter numSignatures: at most {self.config.multisign} (multisign)")
        values = _decode_hashes(req.hashes)
        if req.hashAlgorithmOID is not None:
            name = HASH_BY_OID.get(req.hashAlgorithmOID)
            if name is None:
                raise CSCError(400, "invalid_request", "Invalid parameter hashAlgorithmOID")
        else:  # CSC v1 has no hash algorithm in authorize: infer it from the length
            name = _LEN_TO_HASH.get(len(values[0]))
            if name is None:
                raise CSCError(400, "invalid_request", "Invalid parameter hashes: unknown digest length")
        oid, _, length = HASHES[name]
        if any(len(v) != length for v in values):
            raise CSCError(400, "invalid_request", f"Invalid parameter hashes: every hash must have {length} bytes")
        sad, expires_in = self.sads.issue(user.username, cred.credential_id, oid, values)
        return {"SAD": sad, "expiresIn": expires_in}

    def _require_pin_unlocked(self, user: User, cred: keystore.Credential) -> None:
        until = self.pins.locked_until(user.username, cred.credential_id)
        if until is None:
            return
        wait = max(1, int(until - time.time() + 0.999))
        log.warning("PIN of credential %s locked for user %r until %s", cred.credential_id, user.username, _iso(until))
        raise CSCError(
            403,
            "invalid_pin",
            f"The PIN of credential {cred.credential_id} is locked for this user after too many wrong attempts, "
            f"until {_iso(until)} (retry in {wait} s)",
            retry_after=wait,
        )

    def sign_hash(self, user: User, req: SignHashRequest) -> dict[str, Any]:
        cred = self._credential(user, req.credentialID)
        self._require_usable(cred)
        if req.operationMode != "S":
            raise CSCError(400, "invalid_request", "Invalid parameter operationMode: only synchronous mode 'S' is supported")
        params = None
        if req.signAlgoParams:
            try:
                params = base64.b64decode(req.signAlgoParams, validate=True)
            except (binascii.Error, ValueError):
                raise CSCError(400, "invalid_request", "Invalid Base64 signAlgoParams") from None
        try:
            scheme = resolve_scheme(cred.private_key, req.signAlgo, req.hashAlgorithmOID, params)
        except AlgorithmError as exc:
            raise CSCError(400, "invalid_request", str(exc)) from None
        values = _decode_hashes(req.hashes)
        if any(len(v) != scheme.digest_size for v in values):
            raise CSCError(400, "invalid_request", f"Invalid parameter hashes: {scheme.hash_name.upper()} hashes have {scheme.digest_size} bytes")
        try:
            self.sads.consume(req.SAD, user.username, cred.credential_id, scheme.hash_oid, values)
        except SADError as exc:
            raise CSCError(400, "invalid_request", str(exc)) from None
        signatures = [_b64(sign_digest(cred.private_key, v, scheme)) for v in values]
        return {"signatures": signatures}

    # --- PKI publication -------------------------------------------------------------

    def timestamp(self, request_der: bytes) -> bytes:
        return self.state.pki.timestamp(request_der)

    def crl(self, repo: str) -> bytes | None:
        """The current DER CRL of ``repo`` (``root``, ``issuing``), None for an unknown one."""
        return keystore.current_crls(self.state).get(repo)

    def ocsp(self, responder: str, request_der: bytes) -> bytes:
        return self.state.current_pki().ocsp(responder, request_der)


# --- HTTP -------------------------------------------------------------------------------------


def create_app(service: SignerService):
    """The FastAPI application of a :class:`SignerService`."""
    from fastapi import APIRouter, FastAPI, Request  # deferred: loads fastapi, starlette
    from fastapi.exceptions import RequestValidationError  # deferred: loads fastapi, starlette
    from fastapi.responses import JSONResponse, Response  # deferred: loads fastapi, starlette

    app = FastAPI(title=service.config.name, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(CSCError)
    async def _csc_error(_request: Request, exc: CSCError):
        headers = {}
        if exc.challenge == "Basic":
            headers["WWW-Authenticate"] = 'Basic realm="sohoa-signer", charset="UTF-8"'
        elif exc.challenge == "Bearer":
            headers["WWW-Authenticate"] = f'Bearer realm="sohoa-signer", error="{exc.error}"'
        if exc.retry_after is not None:
            headers["Retry-After"] = str(int(exc.retry_after))
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if first.get("type") == "json_invalid" or not loc:
            description = "The request body is not valid JSON"
        else:
            description = f"Missing (or invalid type) parameter {'.'.join(loc)}"
        return JSONResponse({"error": "invalid_request", "error_description": description}, status_code=400)

    def csc_router(version: str) -> APIRouter:
        router = APIRouter()

        @router.post("/info")
        def info(body: InfoRequest | None = None):
            return service.info(version)

        @router.post("/auth/login")
        def login(request: Request, body: LoginRequest | None = None):
            return service.login(request.headers.get("authorization"))

        @router.post("/auth/revoke", status_code=204)
        def revoke(request: Request, body: RevokeTokenRequest | None = None):
            service.revoke_token(request.headers.get("authorization"), body or RevokeTokenRequest())
            return Response(status_code=204)

        @router.post("/credentials/list")
        def credentials_list(request: Request, body: CredentialsListRequest | None = None):
            user = service.user_for(request.headers.get("authorization"))
            return service.list_credentials(user, body or CredentialsListRequest())

        @router.post("/credentials/info")
        def credentials_info(request: Request, body: CredentialsInfoRequest):
            user = service.user_for(request.headers.get("authorization"))
            return service.get_credential_info(user, body)

        @router.post("/credentials/authorize")
        def credentials_authorize(request: Request, body: AuthorizeRequest):
            user = service.user_for(request.headers.get("authorization"))
            return service.authorize(user, body)

        @router.post("/signatures/signHash")
        def sign_hash(request: Request, body: SignHashRequest):
            user = service.user_for(request.headers.get("authorization"))
            return service.sign_hash(user, body)

        return router

    app.include_router(csc_router("v2"), prefix="/csc/v2")
    app.include_router(csc_router("v1"), prefix="/csc/v1")

    @app.post("/tsa")
    async def tsa(request: Request):
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/timestamp-query":
            return Response(status_code=415, content=b"expected application/timestamp-query")
        try:
            reply = service.timestamp(await request.body())
        except ValueError as exc:
            return Response(status_code=400, content=str(exc).encode())
        return Response(reply, media_type="application/timestamp-reply")

    @app.get(f"/{ARCH}/crls/{{repo}}/latest.crl")
    def crl(repo: str):
        data = service.crl(repo)
        if data is None:
            return JSONResponse({"error": "not_found", "error_description": f"no CRL {repo}"}, status_code=404)
        return Response(data, media_type="application/pkix-crl")

    @app.post(f"/{ARCH}/ocsp/{{responder}}")
    async def ocsp(responder: str, request: Request):
        try:
            reply = service.ocsp(responder, await request.body())
        except CertomancerObjectNotFoundError:
            return JSONResponse({"error": "not_found", "error_description": f"no OCSP responder {responder}"}, status_code=404)
        return Response(reply, media_type="application/ocsp-response")

    return app


def build_service(state_dir: Path, *, passphrase: bytes | str | None = None, config: ServiceConfig | None = None) -> SignerService:
    """Create the state on first start (CA, credentials, first user), load it, build the service."""
    config = config or ServiceConfig()
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = keystore.resolve_passphrase(state_dir, passphrase)
    if keystore.init_state(state_dir, secret, public_url=config.public_url):
        log.info("created signer state in %s", state_dir)
    return SignerService(keystore.load_state(state_dir, secret), config)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(service: SignerService, sock: socket.socket, *, log_level: str = "warning"):
    """A uvicorn server for ``service`` on an already bound socket (not started)."""
    import uvicorn  # deferred: loads uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def serve(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    passphrase: bytes | str | None = None,
    config: ServiceConfig | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "info",
) -> None:
    """Run the signing service in the foreground until interrupted (``sohoa signer``).

    ``passphrase`` decrypts the keys; None uses the one generated into the state directory
    when it was created without one. ``on_ready`` receives the base URL once listening.
    """
    service = build_service(state_dir, passphrase=passphrase, config=config)
    sock = bind_socket(host, port)
    server = make_server(service, sock, log_level=log_level)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
    log.info("sohoa signer on %s (state %s)", url, state_dir)
    if on_ready is not None:
        def _notify() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.02)
            if server.started:
                on_ready(url)

        threading.Thread(target=_notify, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
