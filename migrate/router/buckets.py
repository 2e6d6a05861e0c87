"""Sticky buckets: which side of a weighted split a key falls on.

A key (a customer id, an invoice id) always lands on the same side for a
given weight and salt, and moving the weight moves keys one way only:
raising it sends more keys to the service and never takes one back, lowering
it returns keys to the monolith and never sends a new one out. So a customer
who once saw the service keeps seeing it while the weight only grows.

The arithmetic is nginx's `split_clients`, so a routing table compiled to an
nginx configuration (`split_clients "${salt}${key}" $side { W% service; *
monolith; }`) sends every key where this router sends it:

- the hash is nginx's MurmurHash2 (32 bits, seed 0, little-endian blocks)
  over the UTF-8 bytes of salt and key written one after the other;
- the service side is the first part, so a key goes there when its hash is
  below `W * 100 * 0xffffffff // 10000` (nginx keeps percents in hundredths).

At the two ends this module is stricter than nginx: weight 0 is never the
service (nginx rejects a 0 % part, so the compiler must leave it out) and
weight 100 is always the service (nginx at 100 % leaves out the one hash
equal to 0xffffffff, so the compiler must not emit a split at all).
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")

# The boundary below which a hash goes to the service, per whole percent.
_BOUNDARY = tuple(percent * 100 * _MASK // 10000 for percent in range(101))


def murmur2(data: bytes) -> int:
    """nginx's `ngx_murmur_hash2`: MurmurHash2, 32 bits, seed 0."""
    return _murmur2(data, 0)


def bucket_of(salt: str, key: str) -> int:
    """The 32-bit bucket of a key; the salt reshuffles keys per context."""
    return _murmur2((salt + key).encode(), 0)


def goes_to_service(weight: int, salt: str, key: str) -> bool:
    """Whether a key's reads go to the service at this weight (0-100)."""
    if weight <= 0:
        return False

    if weight >= 100:
        return True

    return _murmur2((salt + key).encode(), 0) < _BOUNDARY[weight]


def _murmur2(data: bytes, seed: int) -> int:
    length = len(data)
    h = (seed ^ length) & _MASK
    whole = length - length % 4

    for (k,) in _WORDS.iter_unpack(data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k

    if whole < length:
        # The 1 to 3 trailing bytes read as one little-endian number are
        # exactly what the reference's fall-through switch xors in.
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * _M) & _MASK

    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def boundary(weight: int) -> int:
    """The hash below which a key goes to the service at this weight."""
    return _BOUNDARY[max(0, min(100, weight))]


def hash_below(prefix: bytes, key: str, limit: int) -> bool:
    """Whether salt-then-key hashes below `limit`; `prefix` is the encoded
    salt, so the router encodes it once per table, not once per request."""
    return _murmur2(prefix + key.encode(), 0) < limit
