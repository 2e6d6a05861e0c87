"""Consumer-driven contracts on every seam, verified on both hosts, gating shifts.

Contracts are Pact files in `contracts/` (one per consumer-provider pair),
written by the consumer tests. The parts:

- `pacts`: reads a contract and refuses a malformed one;
- `attributes`: message attributes against contracts and SNS filter policies;
- `seams`: every seam the manifest implies, and which lack a contract;
- `states`, `stages`, `harness`: provider states, set through a context's
  own API beside a running host;
- `verify`: starts each host and replays every contract on it;
- `results`, `gate`: the latest verifications, and the deploy gate
  (`can_i_deploy`, and `refusal` for `migrate shift`);
- `wiring`: how an extracted service is verified (generated with it);
- `commands`: `migrate contracts verify` and `migrate can-i-deploy`.
"""
