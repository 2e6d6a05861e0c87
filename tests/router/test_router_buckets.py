"""Sticky buckets hash like nginx and move keys one way only.

How the golden vectors were derived:

- `SMHASHER_VERIFICATION` is the verification value SMHasher publishes for
  MurmurHash2 (x86, 32-bit): 0x27864C1E in its table of hashes. SMHasher
  hashes the keys {}, {0}, {0,1}, ... {0..254} with seeds 256, 255, ... 1,
  hashes the 1,024 bytes of those results (little-endian) with seed 0, and
  reads the result little-endian. It pins the reference implementation
  below, including its seed handling; `murmur2` is then checked against
  that reference with seed 0, which is nginx's.
- `PUBLISHED_SEED_ZERO` are the vectors of a public MurmurHash2 unit test
  (Yandex's `yandex_io` callkit sources, `murmurHash2`, seed 0): the empty
  string, "A", "Test", "8\\n" and a 38-byte sentence, covering every tail
  length from 0 to 3.
- `_reference_murmur2` is written here from the algorithm's description,
  byte by byte as the C reference reads memory, sharing no code with
  `migrate.router.buckets`.
"""

from __future__ import annotations

import itertools
import random

import pytest

from migrate.router.buckets import bucket_of, goes_to_service, murmur2

SMHASHER_VERIFICATION = 0x27864C1E

PUBLISHED_SEED_ZERO = [
    (b"", 0),
    (b"A", 636687721),
    (b"Test", 2493417937),
    (b"8\n", 1178050029),
    (b"An online implementation of MurmurHash", 1918338759),
]


def _reference_murmur2(data: bytes, seed: int) -> int:
    m = 0x5BD1E995
    h = (seed ^ len(data)) % 2**32
    i = 0
    remaining = len(data)
    while remaining >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = k * m % 2**32
        k ^= k >> 24
        k = k * m % 2**32
        h = h * m % 2**32
        h ^= k
        i += 4
        remaining -= 4
    if remaining == 3:
        h ^= data[i + 2] << 16
    if remaining >= 2:
        h ^= data[i + 1] << 8
    if remaining >= 1:
        h ^= data[i]
        h = h * m % 2**32
    h ^= h >> 13
    h = h * m % 2**32
    h ^= h >> 15
    return h


def _nginx_boundary(weight: int) -> int:
    # ngx_http_split_clients: percent in hundredths, uint64 product, stored
    # back into a uint32.
    return (weight * 100 * 0xFFFFFFFF // 10000) % 2**32


def _service_share(weight: int, keys: list[str]) -> set[str]:
    return {key for key in keys if goes_to_service(weight, "billing", key)}


def test_reference_implementation_passes_smhasher_verification() -> None:
    hashes = b"".join(
        _reference_murmur2(bytes(range(n)), 256 - n).to_bytes(4, "little")
        for n in range(256)
    )

    verification = _reference_murmur2(hashes, 0)

    assert verification == SMHASHER_VERIFICATION


@pytest.mark.parametrize(("data", "expected"), PUBLISHED_SEED_ZERO)
def test_murmur2_matches_published_seed_zero_vectors(
    data: bytes, expected: int
) -> None:
    assert murmur2(data) == expected


def test_murmur2_agrees_with_the_reference_at_every_length() -> None:
    rng = random.Random(20261203)
    samples = [rng.randbytes(length) for length in range(70) for _ in range(20)]

    mismatches = [s for s in samples if murmur2(s) != _reference_murmur2(s, 0)]

    assert mismatches == []


def test_bucket_hashes_salt_and_key_written_together_in_utf8() -> None:
    assert bucket_of("billing", "42") == _reference_murmur2(b"billing42", 0)
    assert bucket_of("billing", "Zoë") == _reference_murmur2(
        "billingZoë".encode(), 0
    )


def test_service_side_is_below_the_nginx_boundary_of_the_weight() -> None:
    keys = [str(n) for n in range(3000)]

    disagreements = [
        (weight, key)
        for weight in range(1, 100)
        for key in keys[::7]
        if goes_to_service(weight, "billing", key)
        != (bucket_of("billing", key) < _nginx_boundary(weight))
    ]

    assert disagreements == []


def test_weight_zero_keeps_every_key_on_the_monolith() -> None:
    keys = [str(n) for n in range(5000)]

    assert _service_share(0, keys) == set()


def test_weight_hundred_sends_every_key_to_the_service() -> None:
    keys = [str(n) for n in range(5000)]

    assert _service_share(100, keys) == set(keys)


def test_ten_percent_of_100_000_keys_is_within_half_a_percentage_point() -> None:
    """The target "within 0.5 % of 10 %", read as 0.5 percentage points:
    between 9.5 % and 10.5 % of the keys. (Half a percent *of* 10 %,
    9.95-10.05 %, is narrower than the spread chance alone gives 100,000
    keys, a standard deviation of about 0.1 point: no hash could promise
    it.)"""
    keys = [f"customer-{n}" for n in range(100_000)]

    share = len(_service_share(10, keys)) / len(keys)

    assert 0.095 <= share <= 0.105


def test_raising_the_weight_only_moves_keys_to_the_service() -> None:
    keys = [str(n) for n in range(20_000)]
    weights = [0, 1, 5, 10, 25, 26, 50, 75, 99, 100]

    shares = [_service_share(weight, keys) for weight in weights]

    for lower, higher in itertools.pairwise(shares):
        assert lower <= higher
        assert len(lower) < len(higher)


def test_lowering_the_weight_only_moves_keys_back_to_the_monolith() -> None:
    keys = [str(n) for n in range(20_000)]
    weights = [100, 60, 30, 12, 3, 0]

    on_monolith = [set(keys) - _service_share(weight, keys) for weight in weights]

    for before, after in itertools.pairwise(on_monolith):
        assert before <= after


def test_a_key_stays_on_its_side_for_the_same_weight_and_salt() -> None:
    sides = {goes_to_service(37, "billing", "customer-7") for _ in range(50)}

    assert len(sides) == 1


def test_another_salt_reshuffles_which_keys_move() -> None:
    keys = [str(n) for n in range(10_000)]

    billing = {k for k in keys if goes_to_service(20, "billing", k)}
    shipping = {k for k in keys if goes_to_service(20, "shipping", k)}

    assert billing != shipping
    assert abs(len(billing) - len(shipping)) < 500
