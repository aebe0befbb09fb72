"""Developer tooling a pip-installed miner never needs: a local Anvil and js-ipfs, the offline
compiler launcher, the artifact build, brownie's network glue, and the end-to-end demo."""
