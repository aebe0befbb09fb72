// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FedCoin} from "./FedCoin.sol";

/// @title AggregateJury: the miners' stake-weighted verdict on a round's global model
/// @notice Round t+1's spec names the global model w_{t+1} the server says is FedAvg of round t's
/// included updates. Every miner of round t+1 recomputes it (miners/aggregate_check.py). Each
/// miner with a live commitment in the round's current attempt then attests here, before the
/// round finalizes, whether the model is that aggregate. Once the round finalizes, {verdict} is
/// the verdict of the revealed stake: the model is wrong when the stake of revealed commitments
/// attesting "wrong" exceeds half of all revealed stake. FLChain's `reportAggregate` confiscates
/// a server's deposit on that verdict. It holds no money.
/// @dev Security rests on the same stake as the Shapley consensus: a majority of revealed stake
/// that lies here could as well move the centre. Attestations are public when sent, so a lazy
/// miner can copy the ones before it. Copying does not change the verdict unless the stake
/// attesting first is itself the dishonest majority.
contract AggregateJury {
    uint8 internal constant ROUND_PUBLISHED = 1;
    uint8 internal constant ROUND_FINALIZED = 2;
    uint8 internal constant RIGHT = 1;
    uint8 internal constant WRONG = 2;

    /// @notice The FedCoin whose rounds are judged.
    FedCoin public immutable fedcoin;

    /// @dev task => round => attempt => miner => RIGHT / WRONG (0: no attestation).
    mapping(uint256 => mapping(uint256 => mapping(uint256 => mapping(address => uint8)))) private _attested;

    error JuryRoundNotPublished(uint256 taskId, uint256 round);
    error JuryRoundNotFinalized(uint256 taskId, uint256 round);
    error JuryNotCommitted(uint256 taskId, uint256 round, address miner);
    error JuryAlreadyAttested(uint256 taskId, uint256 round, address miner);
    error JuryBadParameter();

    /// @notice A miner's attestation on round `round`'s global model.
    event Attested(uint256 indexed taskId, uint256 indexed round, address indexed miner, uint256 attempt, bool wrong);

    constructor(address fedcoin_) {
        if (fedcoin_.code.length == 0) revert JuryBadParameter();
        fedcoin = FedCoin(fedcoin_);
    }

    /// @notice Attest, once per attempt, whether the round's global model is the aggregate of the
    /// previous round's included updates. Only a miner with a live commitment in the current
    /// attempt may attest, and only while the round is published (before it finalizes).
    function attest(uint256 taskId, uint256 round, bool wrong) external {
        bytes32 w0 = fedcoin.getRound(taskId, round)[0];
        if (uint8(uint256(w0)) != ROUND_PUBLISHED) revert JuryRoundNotPublished(taskId, round);
        uint256 attempt = uint8(uint256(w0) >> 8);
        if (fedcoin.getCommitment(taskId, round, attempt, msg.sender).hash == bytes32(0)) {
            revert JuryNotCommitted(taskId, round, msg.sender);
        }
        mapping(address => uint8) storage a = _attested[taskId][round][attempt];
        if (a[msg.sender] != 0) revert JuryAlreadyAttested(taskId, round, msg.sender);
        a[msg.sender] = wrong ? WRONG : RIGHT;
        emit Attested(taskId, round, msg.sender, attempt, wrong);
    }

    /// @notice The verdict on a finalized round: `wrong` when the revealed stake attesting
    /// "wrong" is more than half of the round's revealed stake (in the attempt that finalized).
    /// @dev Loops over the attempt's committers, at most FedCoin's MAX_COMMITS = 64.
    function verdict(uint256 taskId, uint256 round)
        external
        view
        returns (bool wrong, uint256 wrongStake, uint256 revealedStake)
    {
        bytes32 w0 = fedcoin.getRound(taskId, round)[0];
        if (uint8(uint256(w0)) != ROUND_FINALIZED) revert JuryRoundNotFinalized(taskId, round);
        uint256 attempt = uint8(uint256(w0) >> 8);
        address[] memory miners = fedcoin.getCommitters(taskId, round, attempt);
        mapping(address => uint8) storage a = _attested[taskId][round][attempt];
        for (uint256 i; i < miners.length; ++i) {
            FedCoin.Commitment memory c = fedcoin.getCommitment(taskId, round, attempt, miners[i]);
            if (!c.revealed) continue;
            revealedStake += c.bond;
            if (a[miners[i]] == WRONG) wrongStake += c.bond;
        }
        wrong = 2 * wrongStake > revealedStake;
    }

    /// @notice A miner's attestation in an attempt: 0 none, 1 right, 2 wrong.
    function attestation(uint256 taskId, uint256 round, uint256 attempt, address miner) external view returns (uint8) {
        return _attested[taskId][round][attempt][miner];
    }
}
