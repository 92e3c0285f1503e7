"""The wire encoding of jobs.

On the wire a job is msgpack (default) or JSON, produced by one reused encoder/decoder pair per
:class:`JobCodec`. Payloads must be plain data (dict, list, str, int, float, bool, None, bytes
for msgpack): never pickle.

Compression (optional): bodies at or above ``compression_threshold`` bytes are
zlib-compressed and prefixed with the marker ``b"\\x00qz1"``; bodies without the
marker are read as they are, so old and new entries decode side by side.
"""

from __future__ import annotations

import zlib
from typing import Literal

import msgspec

from queuestore._job import Job, JobBody
from queuestore.errors import InvalidJobError, SerializationError

__all__ = ["JobCodec"]

_COMPRESSED = b"\x00qz1"

# the fields besides the payload that hold caller text, checked by name when a job does not encode
_TEXT_FIELDS = ("type", "idempotency_key", "tags", "metadata")


class JobCodec:
    """Encodes and decodes jobs with one reused msgspec encoder/decoder.

    Args:
        format: ``"msgpack"`` (default) or ``"json"``.
        compression: zlib-compress bodies of at least ``compression_threshold`` bytes.
        compression_threshold: size in bytes from which a body is compressed.
    """

    __slots__ = ("_body_dec", "_dec", "_enc", "compression", "compression_threshold", "format")

    def __init__(
        self,
        format: Literal["msgpack", "json"] = "msgpack",
        *,
        compression: bool = False,
        compression_threshold: int = 1024,
    ) -> None:
        self.format = format
        self.compression = compression
        self.compression_threshold = compression_threshold
        if format == "msgpack":
            self._enc: msgspec.msgpack.Encoder | msgspec.json.Encoder = msgspec.msgpack.Encoder()
            self._dec: msgspec.msgpack.Decoder[Job] | msgspec.json.Decoder[Job] = msgspec.msgpack.Decoder(Job)
            self._body_dec: msgspec.msgpack.Decoder[JobBody] | msgspec.json.Decoder[JobBody] = (
                msgspec.msgpack.Decoder(JobBody)
            )
        elif format == "json":
            self._enc = msgspec.json.Encoder()
            self._dec = msgspec.json.Decoder(Job)
            self._body_dec = msgspec.json.Decoder(JobBody)
        else:
            raise InvalidJobError("format", f"unknown encoding {format!r} (use 'msgpack' or 'json')")

    def _encode(self, job: Job | JobBody) -> bytes:
        try:
            return self._enc.encode(job)
        except RecursionError:
            raise InvalidJobError("payload", f"is nested too deeply to encode as {self.format}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            field = self._culprit(job)
            raise InvalidJobError(field, f"cannot be encoded as {self.format}: {exc}") from exc

    def _culprit(self, job: Job | JobBody) -> str:
        """The first field of ``job`` that does not encode alone (``"payload"`` when each does):
        the field an encode error names, found only once encoding failed."""
        for name in _TEXT_FIELDS:
            try:
                self._enc.encode(getattr(job, name, None))
            except (TypeError, ValueError, OverflowError, RecursionError):
                return name
        return "payload"

    def encode(self, job: Job) -> bytes:
        """Encode a job.

        Raises:
            InvalidJobError: the payload (or another field) cannot be encoded, or is nested
                too deeply (about a thousand levels).
        """
        data = self._encode(job)
        if self.compression and len(data) >= self.compression_threshold:
            return _COMPRESSED + zlib.compress(data, 6)
        return data

    def encode_checked(self, job: Job | JobBody) -> bytes:
        """Encode a job (or a :class:`JobBody`) and check that it decodes back as a job (a
        field of a type the decoder refuses), on the uncompressed bytes, before compressing.

        Raises:
            InvalidJobError: the payload (or another field) cannot be encoded, or it is
                nested too deeply to encode or decode.
            SerializationError: the encoded job does not decode (the message names the field).
        """
        data = self._encode(job)
        try:
            # a body is checked as a body: as a Job, each check would draw an id for nothing
            (self._body_dec if type(job) is JobBody else self._dec).decode(data)
        except RecursionError:
            raise InvalidJobError("payload", f"is nested too deeply to decode as {self.format}") from None
        except msgspec.DecodeError as exc:
            raise SerializationError(f"undecodable job entry ({exc}); first bytes {data[:40]!r}") from exc
        if self.compression and len(data) >= self.compression_threshold:
            return _COMPRESSED + zlib.compress(data, 6)
        return data

    def decode(self, data: bytes | bytearray | memoryview | str) -> Job:
        """Decode a job, whatever the compression setting it was written with.

        Raises:
            SerializationError: the data is not a job in this codec's format, or it is
                nested too deeply to decode.
        """
        raw = data if type(data) is bytes else bytes(data.encode() if isinstance(data, str) else data)
        try:
            if raw[:1] == b"\x00" and raw.startswith(_COMPRESSED):  # a 1-byte slice: cheaper than the call
                raw = zlib.decompress(raw[len(_COMPRESSED) :])
            return self._dec.decode(raw)
        except RecursionError:
            preview = raw[:40]
            too_deep = f"job entry nested too deeply to decode; first bytes {preview!r}"
            raise SerializationError(too_deep) from None
        except (msgspec.DecodeError, zlib.error) as exc:
            preview = raw[:40]
            raise SerializationError(f"undecodable job entry ({exc}); first bytes {preview!r}") from exc
