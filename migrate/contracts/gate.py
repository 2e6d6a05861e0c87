"""Can a context be deployed (its traffic shifted)? Yes or no, with reasons.

The answer comes from the latest stored verifications, never from a run of
its own, so it is instant and the same for everyone who asks. A context may
be deployed when all of these hold:

- every contract can be read, and every seam that involves the context has
  one (`migrate.contracts.seams`);
- as a provider: on each host it runs on (the monolith, and its service once
  extracted) its latest verification kept every contract its consumers
  hold now, with the contract files and the provider's code unchanged since;
- as a consumer: each provider it relies on kept the context's contracts in
  that provider's latest verification on each of the provider's hosts.

`refusal(context)` is the gate `migrate shift` asks before raising a weight:
None when the answer is yes, else one line saying why.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from migrate.contracts import seams
from migrate.contracts.errors import ContractError
from migrate.contracts.pacts import Contract
from migrate.contracts.results import Verification, code_digest, latest
from migrate.contracts.states import MONOLITH, SERVICE
from migrate.contracts.verify import CONTRACTS_DIR, load_contracts
from migrate.extract.generate import extraction_of
from migrate.manifest import Manifest
from migrate.manifest import load as load_manifest
from migrate.settings import PROJECT_ROOT, Settings

# A refusal quotes this many reasons; `migrate can-i-deploy` lists them all.
QUOTED_REASONS = 3


@dataclasses.dataclass(frozen=True)
class Answer:
    context: str
    deployable: bool
    reasons: tuple[str, ...]
    kept: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def can_i_deploy(
    context: str,
    settings: Settings | None = None,
    *,
    folder: Path = CONTRACTS_DIR,
    root: Path = PROJECT_ROOT,
    manifest: Manifest | None = None,
) -> Answer:
    settings = settings or Settings.from_env()
    manifest = manifest or load_manifest()
    manifest.context(context)
    try:
        contracts = load_contracts(folder, manifest)
    except ContractError as error:
        return Answer(context, False, (str(error),), ())

    reasons = [f"no contract covers the seam {seam.text()}"
               for seam in seams.uncovered(manifest, contracts)
               if seam.involves(context)]
    kept: list[str] = []
    _as_provider(context, contracts, settings, manifest, root, reasons, kept)
    _as_consumer(context, contracts, settings, reasons, kept)
    if not any(seam.involves(context) for seam in seams.seams(manifest)):
        kept.append(f"{context} has no seams, so no contracts to keep")
    return Answer(context, not reasons, tuple(reasons), tuple(kept))


def refusal(context: str, settings: Settings | None = None) -> str | None:
    """Why `context`'s traffic may not shift now; None when it may."""
    answer = can_i_deploy(context, settings)
    if answer.deployable:
        return None

    quoted = "; ".join(answer.reasons[:QUOTED_REASONS])
    more = len(answer.reasons) - QUOTED_REASONS
    rest = f"; and {more} more" if more > 0 else ""
    return (f"{context}'s contracts do not allow it: {quoted}{rest} "
            f"(see `migrate can-i-deploy {context}`)")


def hosts_of(context: str, settings: Settings) -> list[str]:
    extracted = extraction_of(context, settings.extracted_dir) is not None
    return [MONOLITH, SERVICE] if extracted else [MONOLITH]


def _as_provider(
    context: str, contracts: list[Contract], settings: Settings,
    manifest: Manifest, root: Path, reasons: list[str], kept: list[str],
) -> None:
    held = [c for c in contracts if c.provider == context]
    if not held:
        return

    package = manifest.context(context).package
    for host in hosts_of(context, settings):
        found = latest(settings, context, host)
        if found is None:
            reasons.append(f"{context} was never verified on the {host}; run "
                           f"`migrate contracts verify --provider {context}`")
            continue

        before = len(reasons)
        reasons += [f"on the {host}, {m.text()}" for m in found.mismatches]
        reasons += _stale_contracts(found, held)
        extraction = settings.extracted_dir / context if host == SERVICE else None
        if found.code_digest != code_digest(package, root=root, extraction=extraction):
            reasons.append(f"{context}'s code changed since it was verified on the "
                           f"{host} ({found.verified_at}); verify it again")
        if len(reasons) == before:
            consumers = ", ".join(c.consumer for c in held)
            kept.append(f"{context} keeps the contracts of {consumers} on the "
                        f"{host} (verified {found.verified_at})")


def _stale_contracts(found: Verification, held: list[Contract]) -> list[str]:
    stale = []
    for contract in held:
        result = found.pact(contract.consumer)
        if result is None:
            stale.append(f"{contract.name} was not yet verified on the {found.host}")
        elif result.digest != contract.digest:
            stale.append(f"{contract.name} changed since it was verified on the "
                         f"{found.host} ({found.verified_at})")
    return stale


def _as_consumer(
    context: str, contracts: list[Contract], settings: Settings,
    reasons: list[str], kept: list[str],
) -> None:
    ours = seams.participants_of(context, {c.consumer for c in contracts})
    for contract in contracts:
        if contract.consumer not in ours or contract.provider == context:
            continue

        provider = contract.provider
        for host in hosts_of(provider, settings):
            found = latest(settings, provider, host)
            result = found.pact(contract.consumer) if found else None
            if found is None or result is None:
                reasons.append(f"{provider} has not verified {contract.name} on "
                               f"the {host}; run `migrate contracts verify "
                               f"--provider {provider}`")
            elif result.digest != contract.digest:
                reasons.append(f"{contract.name} changed since {provider} verified "
                               f"it on the {host} ({found.verified_at})")
            elif not result.ok:
                reasons += [f"on the {host}, {m.text()}" for m in found.mismatches
                            if m.consumer == contract.consumer]
            else:
                kept.append(f"{provider} keeps {contract.name} on the {host} "
                            f"(verified {found.verified_at})")
