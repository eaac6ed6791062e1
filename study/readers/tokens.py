"""Login tokens: 256 random bits, only their sha256 stored, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

#: bytes of randomness in a token (256 bits; the issue asks for at least 128)
TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh URL-safe login token (``secrets.token_urlsafe``: 256 bits from the OS CSPRNG)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The hex sha256 of a token: what the database stores (the token itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time (``hmac.compare_digest``)."""
    return hmac.compare_digest(hash_token(token).encode("ascii"), stored_hash.encode("ascii"))


def csrf_token(secret: str, session_hash: str) -> str:
    """The anti-forgery token of one login: HMAC-SHA256(server secret, the login's token hash)."""
    return hmac.new(secret.encode("ascii"), session_hash.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, session_hash: str, given: str) -> bool:
    """Whether a form's anti-forgery token is this login's, compared in constant time."""
    return hmac.compare_digest(csrf_token(secret, session_hash).encode("ascii"), (given or "").encode("utf-8"))
