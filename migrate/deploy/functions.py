"""The Lambda functions a context's side effects become.

Each side effect declared in the manifest (`[contexts.<c>.side_effects.<e>]`
with `on` and `function`) is one function, fed by one queue. Its AWS name is
the queue's name (`northwind-billing-invoice-email`), so a function, its
queue, its log group and its dead-letter queue read alike in the console.

The settings every function gets unless told otherwise (`Settings`):
timeout 30 s, 256 MB, batches of up to 10 gathered for up to 1 s, and at most
2 batches at once (the least Lambda allows as a maximum concurrency).
"""

from __future__ import annotations

import dataclasses

from migrate import names
from migrate.deploy.errors import DeployError
from migrate.manifest import Manifest


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a function runs; times in seconds, memory in MB."""

    timeout: int = 30
    memory: int = 256
    batch_size: int = 10
    batching_window: int = 1
    concurrency: int = 2

    def __post_init__(self) -> None:
        rules = (
            ("timeout", self.timeout, 1, 900, "Lambda runs 1-900 seconds"),
            ("memory", self.memory, 128, 10240, "Lambda gives 128-10240 MB"),
            ("batch_size", self.batch_size, 1, 10, "an SQS batch holds 1-10"),
            ("batching_window", self.batching_window, 0, 300, "0-300 seconds"),
            ("concurrency", self.concurrency, 2, 1000, "SQS mappings run 2-1000"),
        )
        for name, value, low, high, rule in rules:
            if not low <= value <= high:
                raise DeployError(f"{name} {value}: {rule}")


@dataclasses.dataclass(frozen=True)
class Function:
    """One side effect as a Lambda function."""

    context: str
    effect: str
    on: str
    spec: str
    queue: str

    @property
    def name(self) -> str:
        return self.queue

    @property
    def module(self) -> str:
        return self.spec.partition(":")[0]

    @property
    def handler(self) -> str:
        """Lambda's handler string: `package.module.function`."""
        module, _, function = self.spec.partition(":")
        return f"{module}.{function}"

    @property
    def logical_id(self) -> str:
        return "".join(part.capitalize() for part in self.effect.split("_"))

    @property
    def archive(self) -> str:
        return f"{self.name}.zip"


def functions_of(manifest: Manifest, context: str) -> list[Function]:
    """The context's side effects as functions, in manifest order."""
    declared = manifest.context(context)
    found = []
    for effect in declared.side_effects:
        module, separator, attribute = effect.function.partition(":")
        if not separator or not module or not attribute:
            raise DeployError(
                f"side effect {context}.{effect.name} names function "
                f"{effect.function!r}; write it as package.module:function"
            )

        queue = names.side_effect_queue(manifest.name, context, effect.name)
        found.append(Function(context, effect.name, effect.on, effect.function, queue))
    return found
