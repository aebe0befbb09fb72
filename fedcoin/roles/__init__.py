"""The roles that are neither miner nor server: the requester (deposit, follow, refund), the
money accounting, the auditor of the PoSap record chain, and the deployer."""
