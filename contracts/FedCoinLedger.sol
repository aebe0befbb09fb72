// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FedCoinLedger: the money FedCoin holds, its four buckets, the pull ledger and the exit
/// @notice Every wei the contract holds sits in exactly one bucket: escrow (budgets not yet
/// allocated), unclaimed (client payouts allocated, not yet claimed), credits (the pull
/// ledger: server fees, miner rewards, returned bonds, refunds) or bonds (miner bonds held).
/// Value leaves only through {withdraw} and the derived contract's claim, both via {_send}.
/// @dev Abstract base of FedCoin, never deployed alone: FedCoin is still one contract, so the
/// invariant address(this).balance == {liabilities} holds in one place. The contract-wide
/// totals are written only by the internal functions below; FedCoin keeps the per-task
/// buckets (its Task struct) beside them, each task total moving with its contract total.
/// The reason an account is credited ({FedCoin-Credited}) is FedCoin's: its enum is part of
/// FedCoin's ABI, so FedCoin emits that event around {_addCredit}.
abstract contract FedCoinLedger {
    /// @notice Sum of every task's unallocated escrow.
    uint256 public totalEscrow;
    /// @notice Sum of client payouts allocated and not yet claimed.
    uint256 public totalUnclaimed;
    /// @notice Sum of the pull ledger.
    uint256 public totalCredits;
    /// @notice Sum of miner bonds held.
    uint256 public totalBonds;
    /// @notice The pull ledger: what each account may withdraw.
    mapping(address => uint256) public credits;

    uint256 private _lock = 1;

    /// @dev withdraw with a zero credit.
    error FedCoinNothingToWithdraw(address account);
    /// @dev The value transfer failed (the recipient reverted).
    error FedCoinTransferFailed(address to, uint256 amount);
    /// @dev A reentrant call into a nonReentrant function.
    error FedCoinReentrantCall();

    /// @notice An account withdrew its whole credit.
    event Withdrawn(address indexed account, uint256 amount);

    /// @dev Rejects a call made while another nonReentrant call is on the stack.
    modifier nonReentrant() {
        if (_lock != 1) revert FedCoinReentrantCall();
        _lock = 2;
        _;
        _lock = 1;
    }

    /// @notice Withdraw the caller's whole credit (server fees, miner rewards, returned bonds,
    /// requester refunds).
    /// @dev Checks, effects, event, then the transfer, under nonReentrant. WARNING: a contract
    /// account must accept plain ETH transfers or its withdrawal reverts (its credit stays).
    function withdraw() external nonReentrant {
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert FedCoinNothingToWithdraw(msg.sender);
        credits[msg.sender] = 0;
        totalCredits -= amount;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice The money the contract owes: must equal its balance at all times.
    function liabilities() external view returns (uint256) {
        return totalEscrow + totalUnclaimed + totalCredits + totalBonds;
    }

    /// @dev A deposit (msg.value) enters escrow.
    function _addEscrow(uint256 amount) internal {
        totalEscrow += amount;
    }

    /// @dev `amount` leaves escrow (into another bucket, in the same call).
    function _releaseEscrow(uint256 amount) internal {
        totalEscrow -= amount;
    }

    /// @dev A bond (msg.value) is held.
    function _addBonds(uint256 amount) internal {
        totalBonds += amount;
    }

    /// @dev `amount` of bonds leaves the bond bucket (into credits, in the same call).
    function _releaseBonds(uint256 amount) internal {
        totalBonds -= amount;
    }

    /// @dev Client payouts of `amount` are allocated (moved from escrow, in the same call).
    function _addUnclaimed(uint256 amount) internal {
        totalUnclaimed += amount;
    }

    /// @dev A client claimed `amount`; the caller then sends it with {_send}.
    function _releaseUnclaimed(uint256 amount) internal {
        totalUnclaimed -= amount;
    }

    /// @dev Credits `amount` to `account` in the pull ledger. Emits nothing: the caller emits
    /// FedCoin's Credited event with the reason.
    function _addCredit(address account, uint256 amount) internal {
        credits[account] += amount;
        totalCredits += amount;
    }

    /// @dev Sends `amount` wei to `to`, reverting with {FedCoinTransferFailed} if it reverts.
    /// WARNING: the only way value leaves the contract. Call it last, after every effect and
    /// event, from a nonReentrant function, with `to == msg.sender` and an amount already
    /// taken out of the caller's own bucket.
    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert FedCoinTransferFailed(to, amount);
    }
}
