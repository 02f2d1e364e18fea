"""Talking to Okta: domain validation, auth (SSWS, private_key_jwt, DPoP), the HTTP client with
retries and pagination, and typed errors. The rate limiter lives in okta.ratelimit."""

from worker.okta.auth import (
    MANAGE_SCOPES,
    READ_SCOPES,
    InvalidCredentials,
    InvalidPrivateKey,
    PrivateKeyJWTAuth,
    Secret,
    SSWSAuth,
    load_private_key,
    scopes_for,
)
from worker.okta.client import OktaClient, Page, Response
from worker.okta.domain import InvalidDomain, normalize_domain
from worker.okta.errors import (
    OktaAuthenticationError,
    OktaConflict,
    OktaError,
    OktaInvalidRequest,
    OktaNotFound,
    OktaPermissionDenied,
    OktaRateLimited,
    OktaTransientError,
    RateLimitWait,
    RepeatedCursor,
    UnsafeNextLink,
    error_from_response,
)

__all__ = [
    "MANAGE_SCOPES", "READ_SCOPES", "InvalidCredentials", "InvalidPrivateKey", "PrivateKeyJWTAuth", "Secret",
    "SSWSAuth", "load_private_key", "scopes_for", "OktaClient", "Page", "Response", "InvalidDomain",
    "normalize_domain", "OktaAuthenticationError", "OktaConflict", "OktaError", "OktaInvalidRequest",
    "OktaNotFound", "OktaPermissionDenied", "OktaRateLimited", "OktaTransientError", "RateLimitWait",
    "RepeatedCursor", "UnsafeNextLink", "error_from_response",
]
