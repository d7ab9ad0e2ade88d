"""AWS Signature Version 4 for the lean client's one request shape: a POST with a JSON body and four headers.

The derived signing key depends only on the secret key, the day, the region and the service, so it is kept
and reused until one of them changes: a call then costs two SHA-256 digests and one HMAC. The result is the
same `Authorization` header botocore's `SigV4Auth` produces (a test signs the same request with both).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import NamedTuple

CONTENT_TYPE = "application/x-amz-json-1.0"
_ALGORITHM = "AWS4-HMAC-SHA256"


class FrozenCredentials(NamedTuple):
    """The shape of botocore's ReadOnlyCredentials: what one call is signed with."""

    access_key: str
    secret_key: str
    token: str | None


class Signer:
    """Signs SQS JSON-protocol requests to one host, for one region and service."""

    def __init__(self, host: str, region: str, service: str = "sqs", path: str = "/") -> None:
        self.host = host
        self.path = path
        self.region = region
        self.service = service
        self._key_for: tuple[str, str] = ("", "")  # (secret key, day) the cached key was derived for
        self._key = b""

    def headers(
        self, target: str, body: bytes, credentials: FrozenCredentials, now_s: float | None = None
    ) -> dict[str, str]:
        """The request headers, `Authorization` included, for a call of `target` (AmazonSQS.<Operation>)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_s))
        day = stamp[:8]
        token = credentials.token
        headers = {"Content-Type": CONTENT_TYPE, "Host": self.host, "X-Amz-Date": stamp, "X-Amz-Target": target}
        if token:
            headers["X-Amz-Security-Token"] = token
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
            canonical_headers = (
                f"content-type:{CONTENT_TYPE}\nhost:{self.host}\nx-amz-date:{stamp}\n"
                f"x-amz-security-token:{token}\nx-amz-target:{target}\n"
            )
        else:
            signed = "content-type;host;x-amz-date;x-amz-target"
            canonical_headers = (
                f"content-type:{CONTENT_TYPE}\nhost:{self.host}\nx-amz-date:{stamp}\nx-amz-target:{target}\n"
            )
        payload = hashlib.sha256(body).hexdigest()
        canonical = f"POST\n{self.path}\n\n{canonical_headers}\n{signed}\n{payload}"
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{_ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.digest(self._signing_key(credentials.secret_key, day), to_sign.encode(), "sha256").hex()
        headers["Authorization"] = (
            f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _signing_key(self, secret_key: str, day: str) -> bytes:
        if self._key_for != (secret_key, day):
            key = _hmac(("AWS4" + secret_key).encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._key, self._key_for = key, (secret_key, day)
        return self._key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode(), "sha256")
