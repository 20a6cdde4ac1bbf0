"""Message content at rest: AES-256-GCM with a key id stored beside each ciphertext.

A sealed value is ``{"kid": <key id>, "n": <96-bit nonce>, "ct": <ciphertext+tag>}``.
The associated data binds a ciphertext to where it belongs (a message id, a dialogue),
so a row copied onto another does not open. Keys rotate by adding a new id and making
it current: rows sealed under an older id still open while that key is configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import Settings

LOCAL_KEY_ID = "local"


class UnknownKey(Exception):
    """A sealed value names a key id this process does not have."""


class ContentCipher:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"message key id {current!r} is not among the configured keys")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"message key {key_id!r} must be 32 bytes (AES-256)")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    @classmethod
    def from_settings(cls, settings: Settings) -> ContentCipher:
        """The configured keys; locally, without any, one derived from the token secret
        (production refuses to start without ``AGORA_MESSAGE_KEYS``)."""
        if not settings.message_keys:
            derived = hashlib.sha256(
                b"agora message key|" + settings.token_secret.get_secret_value().encode()
            ).digest()
            return cls({LOCAL_KEY_ID: derived}, LOCAL_KEY_ID)
        keys = {}
        for key_id, value in settings.message_keys.items():
            try:
                keys[key_id] = base64.b64decode(value.get_secret_value(), validate=True)
            except binascii.Error as exc:
                raise ValueError(f"message key {key_id!r} is not base64") from exc
        current = settings.message_key_id or (next(iter(keys)) if len(keys) == 1 else None)
        if current is None:
            raise ValueError("AGORA_MESSAGE_KEY_ID must name the current key of several")
        return cls(keys, current)

    def seal(self, plaintext: str, context: str) -> dict[str, Any]:
        nonce = os.urandom(12)
        ciphertext = self._aead[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return {"kid": self.current, "n": nonce, "ct": ciphertext}

    def open(self, sealed: dict[str, Any], context: str) -> str:
        aead = self._aead.get(sealed.get("kid", ""))
        if aead is None:
            raise UnknownKey(f"no message key {sealed.get('kid')!r} is configured")
        try:
            return aead.decrypt(bytes(sealed["n"]), bytes(sealed["ct"]), context.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("sealed content does not open under its key and context") from exc
