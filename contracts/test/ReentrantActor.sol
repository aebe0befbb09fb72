// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FedCoin} from "../FedCoin.sol";

/// @title ReentrantActor (test only): a client/miner/server contract that re-enters FedCoin
/// @notice On receiving ETH it calls back into `claim` or `withdraw` (as set by `arm`) and
/// records whether that nested call failed and with which revert data. Not shipped.
contract ReentrantActor {
    FedCoin public immutable target;
    /// @notice 0 = do nothing, 1 = re-enter claim, 2 = re-enter withdraw.
    uint8 public mode;
    uint256 public taskId;
    uint256 public round;
    uint256 public amount;
    bytes32[] private _proof;
    uint256 public reentries;
    bool public reentryFailed;
    bytes public reentryRevertData;

    constructor(FedCoin target_) {
        target = target_;
    }

    /// @notice Choose what to re-enter on the next payment.
    function arm(uint8 mode_, uint256 taskId_, uint256 round_, uint256 amount_, bytes32[] calldata proof_) external {
        mode = mode_;
        taskId = taskId_;
        round = round_;
        amount = amount_;
        _proof = proof_;
    }

    /// @notice Register an update as a listed client.
    function register(uint256 taskId_, uint256 round_, bytes32 h, uint256 n, bytes32[] calldata proof_) external {
        target.registerUpdate(taskId_, round_, h, "reentrant", n, proof_);
    }

    /// @notice Commit as a miner.
    function commit(uint256 taskId_, uint256 round_, bytes32 c) external payable {
        target.commit{value: msg.value}(taskId_, round_, c);
    }

    /// @notice Reveal as a miner.
    function reveal(uint256 taskId_, uint256 round_, int256[] calldata s, uint256 it, bytes32 salt) external {
        target.reveal(taskId_, round_, s, it, salt);
    }

    /// @notice Accept a task as its server.
    function acceptTask(uint256 taskId_) external {
        target.acceptTask(taskId_);
    }

    /// @notice Claim a payout (outer call).
    function claim(uint256 taskId_, uint256 round_, uint256 amount_, bytes32[] calldata proof_) external {
        target.claim(taskId_, round_, amount_, proof_);
    }

    /// @notice Withdraw credits (outer call).
    function withdraw() external {
        target.withdraw();
    }

    receive() external payable {
        if (mode == 0) return;
        reentries += 1;
        uint8 m = mode;
        mode = 0; // one attempt per payment
        bytes memory data = m == 1
            ? abi.encodeCall(FedCoin.claim, (taskId, round, amount, _proof))
            : abi.encodeCall(target.withdraw, ());
        (bool ok, bytes memory ret) = address(target).call(data);
        reentryFailed = !ok;
        reentryRevertData = ret;
    }
}
