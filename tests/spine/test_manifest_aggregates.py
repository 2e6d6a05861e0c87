"""Declared aggregates and ports in the manifest: what is accepted, what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.errors import ManifestError
from migrate.extract.generate import generate
from migrate.manifest import DEFAULT_PATH, load


def manifest_with(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PATH.read_text()
    assert old in text, old
    path = tmp_path / "contexts.toml"
    path.write_text(text.replace(old, new, 1))
    return path


SHIPPING = 'shipment = { root = "shipments", key = ["order_id"] }'


def test_the_reference_contexts_declare_what_their_replicas_follow() -> None:
    manifest = load()

    assert all(c.follows for c in manifest.contexts.values())
    assert all(
        c.unfollowed_tables() == []
        for c in manifest.contexts.values() if c.replica is None
    )


def test_an_aggregate_over_another_contexts_table_is_refused(tmp_path: Path) -> None:
    path = manifest_with(tmp_path, SHIPPING,
                         'shipment = { root = "orders", key = ["order_id"] }')

    with pytest.raises(ManifestError, match="names table 'orders', which context "
                                            "shipping does not own"):
        load(path)


def test_a_table_in_two_aggregates_is_refused(tmp_path: Path) -> None:
    path = manifest_with(
        tmp_path, SHIPPING,
        'shipment = { root = "shipments", key = ["order_id"], '
        'children = ["shippers"] }',
    )

    with pytest.raises(ManifestError, match="table 'shippers' is in aggregates"):
        load(path)


def test_a_replica_module_and_aggregates_together_are_refused(tmp_path: Path) -> None:
    path = manifest_with(
        tmp_path, 'handlers = "monolith.shipping.handlers"',
        'handlers = "monolith.shipping.handlers"\n'
        'replica = "monolith.billing.replica"',
    )

    with pytest.raises(ManifestError, match="both a replica module and aggregates"):
        load(path)


def test_extraction_refuses_a_table_no_aggregate_covers(tmp_path: Path) -> None:
    path = manifest_with(tmp_path, SHIPPING, "")

    with pytest.raises(ManifestError, match="table 'shipments' is in no declared "
                                            "aggregate"):
        generate(load(path), "shipping", tmp_path / "extracted")

    assert not (tmp_path / "extracted").exists()


def test_extraction_refuses_a_key_its_root_lacks(tmp_path: Path) -> None:
    path = manifest_with(tmp_path, SHIPPING,
                         'shipment = { root = "shipments", key = ["order_no"] }')

    with pytest.raises(ManifestError, match="key column 'order_no' is not a column of "
                                        "shipments"):
        generate(load(path), "shipping", tmp_path / "extracted")

    assert not (tmp_path / "extracted").exists()


def test_aggregates_with_a_service_of_another_shape_are_refused(
    tmp_path: Path,
) -> None:
    path = manifest_with(
        tmp_path, 'handlers = "monolith.shipping.handlers"',
        'handlers = "monolith.shipping.handlers"\n'
        'service_metadata = "monolith.shipping.tables:metadata"',
    )

    with pytest.raises(ManifestError, match="row images apply to the context's own"):
        load(path)
