// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FedCoinLedger} from "./FedCoinLedger.sol";
import {CommitmentHash} from "./lib/CommitmentHash.sol";
import {MerkleTree} from "./lib/MerkleTree.sol";
import {PDistance, RevealData} from "./lib/PDistance.sol";
import {PoSapMath} from "./lib/PoSapMath.sol";

/// @title FedCoin: escrow, Proof-of-Shapley consensus and payouts for federated learning
/// @notice A requester deposits a budget V for a task with a server, listed clients and R
/// rounds. Each round: listed clients register their update hashes, the server publishes the
/// Shapley task, miners commit and reveal Shapley vectors with a bond, and anyone finalizes:
/// the iteration-weighted mean S̄ is the consensus, the earliest qualifying commitment wins
/// SapPrice, the server is credited ComPrice and clients with S̄_k > 0 share TrainPrice through
/// a Merkle root of (client, amount). See docs/contracts.md for the full design.
/// @dev Money invariant, checked by the tests after every step:
/// address(this).balance == totalEscrow + totalUnclaimed + totalCredits + totalBonds.
/// Vectors never reach storage: reveals store a rolling hash and emit the vector; finalize
/// takes the vectors back as calldata and checks them against that hash.
/// Layout: this contract is the state machine; the money buckets, withdraw and the
/// reentrancy guard are {FedCoinLedger}; pure arithmetic is {PoSapMath} and {PDistance}
/// (fedcoin/protocol/posap.py), hashes {CommitmentHash} and {MerkleTree} (commitment.py, merkle.py).
contract FedCoin is FedCoinLedger {
    // ------------------------------------------------------------------ constants

    /// @notice Basis points in a whole (the three split shares sum to this).
    uint256 public constant BPS = PoSapMath.BPS;
    /// @notice Most listed clients per task (the client Merkle tree is built in createTask).
    uint256 public constant MAX_CLIENTS = 1024;
    /// @notice Most rounds per task.
    uint256 public constant MAX_ROUNDS = 1000;
    /// @notice Most commitments per attempt, whatever K.
    uint256 public constant MAX_COMMITS = PoSapMath.MAX_COMMITS;
    /// @notice Commitments per attempt are also capped at MAX_ROUND_WORDS / K so that finalize
    /// (K*M int256 words of calldata, EIP-7623 floor 40 gas per non-zero byte) always fits the
    /// EIP-7825 per-transaction gas cap of 16,777,216.
    uint256 public constant MAX_ROUND_WORDS = PoSapMath.MAX_ROUND_WORDS;
    /// @notice How many times a round without a winner re-opens (each time D doubles) before
    /// its budget is released.
    uint256 public constant MAX_REOPENS = 3;
    /// @notice Longest commit window and longest reveal window.
    uint256 public constant MAX_WINDOW = 30 days;
    /// @notice Difficulty bounds: D^2 and D*elapsed must never overflow.
    uint256 public constant MAX_DIFFICULTY = PoSapMath.MAX_DIFFICULTY;
    /// @notice Largest accepted |s| in a revealed vector (1e9 in real units).
    int256 public constant MAX_ABS_VALUE = PDistance.MAX_ABS_VALUE;
    /// @notice Aggregation rules the server may declare: FedAvg weighted by n_k, or uniform.
    uint8 public constant AGG_WEIGHTED = 0;
    uint8 public constant AGG_UNIFORM = 1;

    // ------------------------------------------------------------------ types

    enum TaskStatus {
        None,
        Created,
        Accepted,
        Completed,
        Refunded
    }

    enum RoundStatus {
        Open,
        Published,
        Finalized,
        Abandoned
    }

    /// @notice Why an account was credited (the `reason` of {Credited}).
    enum CreditReason {
        BondReturned,
        ComPrice,
        SapPrice,
        Refund
    }

    struct Task {
        address requester;
        uint64 acceptDeadline;
        uint32 rounds;
        address server;
        uint64 roundStartedAt;
        uint32 currentRound;
        uint32 clientCount;
        uint16 trainBps;
        uint16 comBps;
        uint16 sapBps;
        TaskStatus status;
        bytes32 clientsRoot;
        uint256 budget;
        uint256 escrow; // budget not yet allocated to anyone
        uint256 unclaimed; // allocated to clients, not yet claimed
        uint256 bonds; // miner bonds held (current attempts and forfeited)
    }

    struct Round {
        RoundStatus status;
        uint8 attempt;
        uint8 p;
        uint8 aggregation;
        uint32 registered;
        uint32 commitCount;
        uint32 revealCount;
        uint64 publishedAt;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint64 commitWindow;
        uint64 revealWindow;
        bytes32 registrationAcc;
        bytes32 revealAcc;
        bytes32 specHash;
        uint256 difficulty;
        uint256 bondsHeld; // bonds of the current attempt not yet returned
        uint256 forfeited; // bonds forfeited in this round's earlier attempts
        bytes32 payoutsRoot;
    }

    struct Commitment {
        bytes32 hash;
        uint128 bond;
        uint32 seq;
        uint64 committedAt;
        bool revealed;
    }

    /// @notice One PoSap block (the paper's Table 1).
    struct BlockRecord {
        uint64 taskId;
        uint32 round;
        address winner;
        bytes32 meanHash;
        bytes32 winnerHash;
        bytes32 prevHash;
        uint256 difficulty;
        bytes32 payoutsRoot;
        bytes32 recordHash;
    }

    struct Settlement {
        uint256 train;
        uint256 com;
        uint256 sap;
        uint256 paid;
        uint256 refund;
        bytes32 root;
        bytes32 meanHash;
        bytes32 winnerHash;
        address winner;
        uint64 winnerCommittedAt;
    }

    // ------------------------------------------------------------------ errors

    /// @dev Split shares do not sum to BPS.
    error FedCoinBadSplit(uint256 trainBps, uint256 comBps, uint256 sapBps);
    /// @dev Rounds is zero or above MAX_ROUNDS.
    error FedCoinBadRounds(uint256 rounds);
    /// @dev Client list is empty or longer than MAX_CLIENTS.
    error FedCoinBadClientCount(uint256 count);
    /// @dev The client list is not strictly ascending at `index`.
    error FedCoinClientsNotSorted(uint256 index);
    /// @dev A client appears twice in the list.
    error FedCoinDuplicateClient(address client);
    /// @dev The requester, the server or the zero address is listed as a client.
    error FedCoinForbiddenClient(address client);
    /// @dev The server is the zero address.
    error FedCoinZeroServer();
    /// @dev The deposit is zero.
    error FedCoinZeroBudget();
    /// @dev The acceptance deadline is not in the future.
    error FedCoinBadAcceptDeadline(uint256 deadline);
    /// @dev No task with this id.
    error FedCoinUnknownTask(uint256 taskId);
    /// @dev The task is not in the status the call needs.
    error FedCoinWrongTaskStatus(uint256 taskId, TaskStatus status);
    /// @dev The caller is not the task's server.
    error FedCoinNotServer(address caller);
    /// @dev The acceptance deadline has passed.
    error FedCoinAcceptDeadlinePassed(uint256 taskId, uint256 deadline);
    /// @dev The acceptance deadline has not passed yet.
    error FedCoinAcceptDeadlineNotPassed(uint256 taskId, uint256 deadline);
    /// @dev The call names a round other than the task's current round.
    error FedCoinWrongRound(uint256 taskId, uint256 expected, uint256 given);
    /// @dev The round is not in the status the call needs.
    error FedCoinWrongRoundStatus(uint256 taskId, uint256 round, RoundStatus status);
    /// @dev The caller is not a listed client of the task (or the proof does not show it).
    error FedCoinNotListedClient(address caller);
    /// @dev The client already registered an update this round.
    error FedCoinAlreadyRegistered(uint256 taskId, uint256 round, address client);
    /// @dev A hash argument is zero.
    error FedCoinEmptyHash();
    /// @dev The data cost n_k is zero.
    error FedCoinZeroDataCost();
    /// @dev Publishing a round nobody registered in.
    error FedCoinNoRegistrations(uint256 taskId, uint256 round);
    /// @dev Deadlines not now < commit < reveal, or a window longer than MAX_WINDOW.
    error FedCoinBadDeadlines(uint256 commitDeadline, uint256 revealDeadline);
    /// @dev Unknown aggregation rule.
    error FedCoinBadAggregation(uint8 aggregation);
    /// @dev The commit window has closed.
    error FedCoinCommitWindowClosed(uint256 taskId, uint256 round, uint256 deadline);
    /// @dev The bond is below the minimum (or above 2^128 - 1).
    error FedCoinBadBond(uint256 value, uint256 minimum);
    /// @dev The miner already committed in this attempt.
    error FedCoinAlreadyCommitted(uint256 taskId, uint256 round, address miner);
    /// @dev The attempt has as many commitments as finalize can take.
    error FedCoinRoundFull(uint256 taskId, uint256 round, uint256 cap);
    /// @dev Reveal outside (commitDeadline, revealDeadline].
    error FedCoinOutsideRevealWindow(uint256 taskId, uint256 round, uint256 commitDeadline, uint256 revealDeadline);
    /// @dev No commitment by this miner in the current attempt.
    error FedCoinNoCommitment(uint256 taskId, uint256 round, address miner);
    /// @dev The miner already revealed.
    error FedCoinAlreadyRevealed(uint256 taskId, uint256 round, address miner);
    /// @dev The vector length differs from the number of registered clients.
    error FedCoinWrongVectorLength(uint256 given, uint256 expected);
    /// @dev A value has |s| > MAX_ABS_VALUE.
    error FedCoinValueOutOfRange(uint256 index, int256 value);
    /// @dev iterations is zero.
    error FedCoinZeroIterations();
    /// @dev The revealed data does not hash to the commitment.
    error FedCoinCommitmentMismatch(uint256 taskId, uint256 round, address miner);
    /// @dev finalize before the reveal deadline has passed.
    error FedCoinRevealWindowOpen(uint256 taskId, uint256 round, uint256 revealDeadline);
    /// @dev finalize's client list is not the registration list.
    error FedCoinClientsMismatch(uint256 taskId, uint256 round);
    /// @dev finalize's reveals are not the reveals made, in order.
    error FedCoinRevealsMismatch(uint256 taskId, uint256 round);
    /// @dev claim of a zero amount.
    error FedCoinNothingToClaim();
    /// @dev The client already claimed this round's payout.
    error FedCoinAlreadyClaimed(uint256 taskId, uint256 round, address client);
    /// @dev The (client, amount) leaf is not under the round's payout root.
    error FedCoinInvalidProof(uint256 taskId, uint256 round, address client, uint256 amount);
    /// @dev The round is not stalled (published, or still within the publish timeout).
    error FedCoinNotStalled(uint256 taskId, uint256 round, uint256 stalledAfter);
    /// @dev A constructor parameter is out of range.
    error FedCoinBadParameter(string name);

    // ------------------------------------------------------------------ events

    /// @notice A task was created with budget V and its listed clients.
    event TaskCreated(
        uint256 indexed taskId,
        address indexed requester,
        address indexed server,
        uint256 budget,
        uint256 rounds,
        uint256 trainBps,
        uint256 comBps,
        uint256 sapBps,
        uint256 acceptDeadline,
        bytes32 clientsRoot,
        address[] clients
    );
    /// @notice The server accepted the task.
    event TaskAccepted(uint256 indexed taskId, address indexed server);
    /// @notice The task ended early; its unallocated escrow was credited to the requester.
    event TaskRefunded(uint256 indexed taskId, address indexed requester, uint256 amount, bool accepted);
    /// @notice The last round was settled.
    event TaskCompleted(uint256 indexed taskId);
    /// @notice A client registered its update for a round; `index` is its vector position.
    event UpdateRegistered(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed client,
        uint256 index,
        bytes32 updateHash,
        string locator,
        uint256 dataCost
    );
    /// @notice The server published a round's Shapley task; D and p in force are recorded.
    event ShapleyTaskPublished(
        uint256 indexed taskId,
        uint256 indexed round,
        bytes32 specHash,
        string specLocator,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 difficulty,
        uint8 p,
        uint8 aggregation,
        uint256 clientCount
    );
    /// @notice A miner committed (with bond) in an attempt of a round.
    event Committed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed miner,
        uint256 attempt,
        uint256 seq,
        bytes32 commitment,
        uint256 bond
    );
    /// @notice A miner revealed its vector; the full vector is here, not in storage.
    event Revealed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed miner,
        uint256 attempt,
        uint256 seq,
        uint256 iterations,
        int256[] values
    );
    /// @notice No winner: the round re-opened with a relaxed difficulty and new windows.
    event RoundReopened(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 attempt,
        uint256 difficulty,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 forfeitedSoFar
    );
    /// @notice No winner after MAX_REOPENS re-opens: the round's Train and Sap budget and the
    /// forfeited bonds were refunded to the requester, ComPrice credited to the server.
    event RoundAbandoned(uint256 indexed taskId, uint256 indexed round, uint256 refund);
    /// @notice A round was settled: consensus mean and each client's amount, in order.
    event RoundFinalized(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed winner,
        uint256 height,
        bytes32 payoutsRoot,
        int256[] mean,
        uint256[] amounts
    );
    /// @notice A PoSap block record was appended to the record chain.
    event PoSapBlock(
        uint256 indexed height,
        uint256 indexed taskId,
        uint256 round,
        address winner,
        bytes32 meanHash,
        bytes32 winnerHash,
        bytes32 prevHash,
        uint256 difficulty,
        bytes32 payoutsRoot,
        bytes32 recordHash
    );
    /// @notice The global difficulty changed after a finalized round.
    event DifficultyAdjusted(uint256 oldDifficulty, uint256 newDifficulty, uint256 elapsed);
    /// @notice An account was credited in the pull ledger.
    event Credited(address indexed account, uint256 indexed taskId, uint256 amount, CreditReason reason);
    /// @notice A client claimed its payout for a round.
    event Claimed(uint256 indexed taskId, uint256 indexed round, address indexed client, uint256 amount);

    // ------------------------------------------------------------------ state

    /// @notice Smallest commit bond (wei).
    uint256 public immutable minBond;
    /// @notice Iteration cap: a reveal weighs min(iterations, maxIterations) in the mean.
    uint256 public immutable maxIterations;
    /// @notice The distance used for qualification: 1, 2 or 255 (infinity).
    uint8 public immutable distanceP;
    /// @notice Target seconds from publication to the winning commitment.
    uint256 public immutable targetBlockTime;
    /// @notice Seconds after a round starts (acceptance or the previous settlement) after which
    /// an unpublished round lets anyone refund the task's remaining escrow to the requester.
    uint256 public immutable publishTimeout;

    /// @notice Difficulty D in force for the next publication (fixed point, larger is easier).
    uint256 public difficulty;
    /// @notice Number of tasks created; task ids are 1..taskCount.
    uint256 public taskCount;
    /// @notice Number of PoSap block records; heights are 0..blockCount-1.
    uint256 public blockCount;
    /// @notice recordHash of the last PoSap block (zero before the first).
    bytes32 public lastRecordHash;

    mapping(uint256 => Task) private _tasks;
    mapping(uint256 => mapping(uint256 => Round)) private _rounds;
    mapping(uint256 => mapping(uint256 => mapping(uint256 => mapping(address => Commitment)))) private _commits;
    mapping(uint256 => mapping(uint256 => mapping(address => bool))) private _registered;
    mapping(uint256 => mapping(uint256 => mapping(address => bool))) private _claimed;
    mapping(uint256 => BlockRecord) private _blocks;

    /// @param minBond_ smallest commit bond in wei.
    /// @param initialDifficulty_ the first D (fixed point, 1 <= D <= MAX_DIFFICULTY).
    /// @param distanceP_ 1, 2 or 255 (infinity).
    /// @param maxIterations_ the iteration cap (>= 1, < 2^64).
    /// @param targetBlockTime_ seconds (>= 1).
    /// @param publishTimeout_ seconds (>= 1).
    constructor(
        uint256 minBond_,
        uint256 initialDifficulty_,
        uint8 distanceP_,
        uint256 maxIterations_,
        uint256 targetBlockTime_,
        uint256 publishTimeout_
    ) {
        if (initialDifficulty_ == 0 || initialDifficulty_ > MAX_DIFFICULTY) revert FedCoinBadParameter("difficulty");
        if (!PDistance.isSupported(distanceP_)) revert FedCoinBadParameter("p");
        if (maxIterations_ == 0 || maxIterations_ >= 2 ** 64) revert FedCoinBadParameter("maxIterations");
        if (targetBlockTime_ == 0 || targetBlockTime_ >= 2 ** 64) revert FedCoinBadParameter("targetBlockTime");
        if (publishTimeout_ == 0 || publishTimeout_ >= 2 ** 64) revert FedCoinBadParameter("publishTimeout");
        minBond = minBond_;
        difficulty = initialDifficulty_;
        distanceP = distanceP_;
        maxIterations = maxIterations_;
        targetBlockTime = targetBlockTime_;
        publishTimeout = publishTimeout_;
    }

    // ------------------------------------------------------------------ task lifecycle

    /// @notice Create a task: deposit V (msg.value) for `server` and the listed `clients`.
    /// @dev `clients` must be strictly ascending (this is how duplicates are rejected without
    /// storage); neither the requester, the server nor address(0) may be listed. The clients
    /// are kept as a Merkle root (leaf = keccak256(bytes.concat(keccak256(abi.encode(client)))))
    /// and emitted in full: registering needs a proof built from the event.
    /// @param server the FL server that must accept before `acceptDeadline`.
    /// @param clients the listed clients, ascending, 1..MAX_CLIENTS of them.
    /// @param rounds R, 1..MAX_ROUNDS.
    /// @param trainBps TrainPrice share; @param comBps ComPrice share; @param sapBps SapPrice
    /// share — summing to 10000 (default 7000/1000/2000).
    /// @param acceptDeadline unix time after which an unaccepted task is refundable.
    /// @return taskId the new task's id (1-based).
    function createTask(
        address server,
        address[] calldata clients,
        uint256 rounds,
        uint256 trainBps,
        uint256 comBps,
        uint256 sapBps,
        uint256 acceptDeadline
    ) external payable returns (uint256 taskId) {
        if (msg.value == 0) revert FedCoinZeroBudget();
        if (server == address(0)) revert FedCoinZeroServer();
        if (trainBps + comBps + sapBps != BPS) revert FedCoinBadSplit(trainBps, comBps, sapBps);
        if (rounds == 0 || rounds > MAX_ROUNDS) revert FedCoinBadRounds(rounds);
        uint256 k = clients.length;
        if (k == 0 || k > MAX_CLIENTS) revert FedCoinBadClientCount(k);
        if (acceptDeadline <= block.timestamp || acceptDeadline >= 2 ** 64) {
            revert FedCoinBadAcceptDeadline(acceptDeadline);
        }
        bytes32 root = _clientsRoot(clients, server);

        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.requester = msg.sender;
        t.server = server;
        t.acceptDeadline = uint64(acceptDeadline);
        t.rounds = uint32(rounds);
        t.clientCount = uint32(k);
        t.trainBps = uint16(trainBps);
        t.comBps = uint16(comBps);
        t.sapBps = uint16(sapBps);
        t.status = TaskStatus.Created;
        t.clientsRoot = root;
        t.budget = msg.value;
        t.escrow = msg.value;
        _addEscrow(msg.value);
        _emitCreated(taskId, t, clients);
    }

    /// @notice The server accepts the task, starting round 0.
    /// @dev Only the task's server, only before the acceptance deadline.
    function acceptTask(uint256 taskId) external {
        Task storage t = _taskIn(taskId, TaskStatus.Created);
        if (msg.sender != t.server) revert FedCoinNotServer(msg.sender);
        if (block.timestamp > t.acceptDeadline) revert FedCoinAcceptDeadlinePassed(taskId, t.acceptDeadline);
        t.status = TaskStatus.Accepted;
        t.roundStartedAt = uint64(block.timestamp);
        emit TaskAccepted(taskId, msg.sender);
    }

    /// @notice Refund a task the server never accepted: anyone may call after the acceptance
    /// deadline; the whole budget is credited to the requester (withdraw to collect).
    function refundUnaccepted(uint256 taskId) external {
        Task storage t = _taskIn(taskId, TaskStatus.Created);
        if (block.timestamp <= t.acceptDeadline) revert FedCoinAcceptDeadlineNotPassed(taskId, t.acceptDeadline);
        _refundRest(taskId, t, false);
    }

    /// @notice Refund a stalled task: when the current round is still unpublished
    /// `publishTimeout` seconds after it started, anyone may credit the remaining escrow to
    /// the requester. Settled rounds stay settled; the task ends.
    function refundStalled(uint256 taskId) external {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        uint256 stalledAfter = uint256(t.roundStartedAt) + publishTimeout;
        Round storage r = _rounds[taskId][t.currentRound];
        if (r.status != RoundStatus.Open || block.timestamp <= stalledAfter) {
            revert FedCoinNotStalled(taskId, t.currentRound, stalledAfter);
        }
        _refundRest(taskId, t, true);
    }

    // ------------------------------------------------------------------ rounds

    /// @notice A listed client registers its update for the current round. Registration order
    /// is the order of every Shapley vector of the round.
    /// @dev WARNING: registration closes when the server publishes; the client must prove its
    /// listing with a Merkle proof over the TaskCreated client list (see fedcoin/merkle.py).
    /// @param round must be the task's current round.
    /// @param updateHash hash of the serialized update bytes (non-zero).
    /// @param locator where the update can be fetched (CID or store key); emitted only.
    /// @param dataCost the client's data size n_k (non-zero).
    /// @param proof the client's Merkle proof in the task's client tree.
    function registerUpdate(
        uint256 taskId,
        uint256 round,
        bytes32 updateHash,
        string calldata locator,
        uint256 dataCost,
        bytes32[] calldata proof
    ) external {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Open);
        if (!MerkleTree.verify(proof, t.clientsRoot, MerkleTree.clientLeaf(msg.sender))) {
            revert FedCoinNotListedClient(msg.sender);
        }
        if (_registered[taskId][round][msg.sender]) revert FedCoinAlreadyRegistered(taskId, round, msg.sender);
        if (updateHash == bytes32(0)) revert FedCoinEmptyHash();
        if (dataCost == 0) revert FedCoinZeroDataCost();
        _registered[taskId][round][msg.sender] = true;
        uint256 index = r.registered;
        r.registered = uint32(index + 1);
        r.registrationAcc = CommitmentHash.registrationLink(r.registrationAcc, msg.sender);
        emit UpdateRegistered(taskId, round, msg.sender, index, updateHash, locator, dataCost);
    }

    /// @notice The server publishes the round's Shapley task; registration closes, the global
    /// difficulty D and the distance p in force are recorded with the round.
    /// @param specHash hash of the task-spec JSON (non-zero); @param specLocator where it lives.
    /// @param aggregation AGG_WEIGHTED (FedAvg by n_k) or AGG_UNIFORM.
    /// @param commitDeadline last second for commits (> now, at most MAX_WINDOW away).
    /// @param revealDeadline last second for reveals (> commitDeadline, window <= MAX_WINDOW).
    function publishShapleyTask(
        uint256 taskId,
        uint256 round,
        bytes32 specHash,
        string calldata specLocator,
        uint8 aggregation,
        uint256 commitDeadline,
        uint256 revealDeadline
    ) external {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        if (msg.sender != t.server) revert FedCoinNotServer(msg.sender);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Open);
        if (r.registered == 0) revert FedCoinNoRegistrations(taskId, round);
        if (specHash == bytes32(0)) revert FedCoinEmptyHash();
        if (aggregation > AGG_UNIFORM) revert FedCoinBadAggregation(aggregation);
        if (
            commitDeadline <= block.timestamp || revealDeadline <= commitDeadline
                || commitDeadline - block.timestamp > MAX_WINDOW || revealDeadline - commitDeadline > MAX_WINDOW
        ) revert FedCoinBadDeadlines(commitDeadline, revealDeadline);
        r.status = RoundStatus.Published;
        r.p = distanceP;
        r.aggregation = aggregation;
        r.publishedAt = uint64(block.timestamp);
        r.commitDeadline = uint64(commitDeadline);
        r.revealDeadline = uint64(revealDeadline);
        r.commitWindow = uint64(commitDeadline - block.timestamp);
        r.revealWindow = uint64(revealDeadline - commitDeadline);
        r.specHash = specHash;
        r.difficulty = difficulty;
        emit ShapleyTaskPublished(
            taskId, round, specHash, specLocator, commitDeadline, revealDeadline, difficulty, distanceP, aggregation, r.registered
        );
    }

    /// @notice Commit to a Shapley vector with a bond (msg.value >= minBond). One commitment
    /// per miner per attempt; the commit sequence number orders winners.
    /// @dev commitment = keccak256(abi.encode(chainid, this, taskId, round, miner, S, iterations,
    /// salt)) — see {commitmentHash} and fedcoin/commitment.py. WARNING: the bond is forfeited
    /// (to the round's winner, or the requester if no one wins) unless you reveal in
    /// (commitDeadline, revealDeadline]. Attempts cap at min(MAX_COMMITS, MAX_ROUND_WORDS / K).
    function commit(uint256 taskId, uint256 round, bytes32 commitment) external payable {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Published);
        if (block.timestamp > r.commitDeadline) revert FedCoinCommitWindowClosed(taskId, round, r.commitDeadline);
        if (msg.value < minBond || msg.value > type(uint128).max) revert FedCoinBadBond(msg.value, minBond);
        if (commitment == bytes32(0)) revert FedCoinEmptyHash();
        Commitment storage c = _commits[taskId][round][r.attempt][msg.sender];
        if (c.hash != bytes32(0)) revert FedCoinAlreadyCommitted(taskId, round, msg.sender);
        uint256 cap = PoSapMath.commitCap(r.registered);
        uint256 seq = r.commitCount;
        if (seq >= cap) revert FedCoinRoundFull(taskId, round, cap);
        c.hash = commitment;
        c.bond = uint128(msg.value);
        c.seq = uint32(seq);
        c.committedAt = uint64(block.timestamp);
        r.commitCount = uint32(seq + 1);
        r.bondsHeld += msg.value;
        t.bonds += msg.value;
        _addBonds(msg.value);
        emit Committed(taskId, round, msg.sender, r.attempt, seq, commitment, msg.value);
    }

    /// @notice Reveal the committed vector; the bond is credited back to the miner and the
    /// vector is emitted in {Revealed} (never stored).
    /// @param values S in registration order; length = registered clients, |s| <= MAX_ABS_VALUE.
    /// @param iterations samples behind S (>= 1; weighted as min(iterations, maxIterations)).
    /// @param salt the commitment's salt.
    function reveal(uint256 taskId, uint256 round, int256[] calldata values, uint256 iterations, bytes32 salt)
        external
    {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Published);
        if (block.timestamp <= r.commitDeadline || block.timestamp > r.revealDeadline) {
            revert FedCoinOutsideRevealWindow(taskId, round, r.commitDeadline, r.revealDeadline);
        }
        Commitment storage c = _commits[taskId][round][r.attempt][msg.sender];
        if (c.hash == bytes32(0)) revert FedCoinNoCommitment(taskId, round, msg.sender);
        if (c.revealed) revert FedCoinAlreadyRevealed(taskId, round, msg.sender);
        if (values.length != r.registered) revert FedCoinWrongVectorLength(values.length, r.registered);
        if (iterations == 0) revert FedCoinZeroIterations();
        for (uint256 j; j < values.length; ++j) {
            int256 v = values[j];
            if (v > MAX_ABS_VALUE || v < -MAX_ABS_VALUE) revert FedCoinValueOutOfRange(j, v);
        }
        if (CommitmentHash.commitmentHash(taskId, round, msg.sender, values, iterations, salt) != c.hash) {
            revert FedCoinCommitmentMismatch(taskId, round, msg.sender);
        }
        uint256 bond = c.bond;
        c.revealed = true;
        r.revealCount += 1;
        r.revealAcc =
            CommitmentHash.revealLink(r.revealAcc, msg.sender, c.seq, iterations, CommitmentHash.vectorHash(values));
        r.bondsHeld -= bond;
        t.bonds -= bond;
        _releaseBonds(bond);
        _credit(msg.sender, taskId, bond, CreditReason.BondReturned);
        emit Revealed(taskId, round, msg.sender, r.attempt, c.seq, iterations, values);
    }

    /// @notice Settle the round after its reveal deadline (anyone may call).
    /// @dev Pass the registered clients in registration order (from {UpdateRegistered}) and
    /// every reveal of the current attempt in reveal order (from {Revealed}); both are checked
    /// against rolling hashes. With a qualifying reveal: the earliest-committing qualifier wins
    /// SapPrice plus forfeited bonds, the server gets ComPrice, clients with mean > 0 share
    /// TrainPrice pro rata (integer division; the dust, or all of TrainPrice when no mean is
    /// positive, is refunded to the requester) and a PoSap block is appended. Without one,
    /// the round re-opens with D doubled (at most MAX_REOPENS times), then is abandoned.
    /// @param clients registered clients in registration order.
    /// @param reveals the attempt's reveals in reveal order.
    function finalize(uint256 taskId, uint256 round, address[] calldata clients, RevealData[] calldata reveals)
        external
    {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Published);
        if (block.timestamp <= r.revealDeadline) revert FedCoinRevealWindowOpen(taskId, round, r.revealDeadline);
        _checkClients(taskId, round, r, clients);
        bytes32[] memory hashes = _checkReveals(taskId, round, r, reveals);

        // Unrevealed bonds of this attempt are forfeited to the round.
        r.forfeited += r.bondsHeld;
        r.bondsHeld = 0;

        if (reveals.length > 0) {
            int256[] memory mean = PDistance.weightedMean(reveals, clients.length, maxIterations);
            (bool found, uint256 w) = _winner(reveals, mean, r.difficulty, r.p);
            if (found) {
                _settle(taskId, round, t, r, clients, mean, reveals[w].miner, hashes[w]);
                return;
            }
        }
        _reopenOrAbandon(taskId, round, t, r);
    }

    /// @notice A client collects its payout for a settled round.
    /// @dev check -> verify proof -> mark claimed -> transfer -> (event before transfer).
    /// Leaf = keccak256(bytes.concat(keccak256(abi.encode(taskId, round, client, amount)))).
    /// WARNING: a contract client must accept plain ETH transfers or its claim reverts.
    /// @param amount the client's amount from {RoundFinalized}; @param proof its Merkle proof.
    function claim(uint256 taskId, uint256 round, uint256 amount, bytes32[] calldata proof) external nonReentrant {
        if (amount == 0) revert FedCoinNothingToClaim();
        Round storage r = _rounds[taskId][round];
        if (r.status != RoundStatus.Finalized) revert FedCoinWrongRoundStatus(taskId, round, r.status);
        if (_claimed[taskId][round][msg.sender]) revert FedCoinAlreadyClaimed(taskId, round, msg.sender);
        if (!MerkleTree.verify(proof, r.payoutsRoot, MerkleTree.payoutLeaf(taskId, round, msg.sender, amount))) {
            revert FedCoinInvalidProof(taskId, round, msg.sender, amount);
        }
        _claimed[taskId][round][msg.sender] = true;
        _tasks[taskId].unclaimed -= amount;
        _releaseUnclaimed(amount);
        emit Claimed(taskId, round, msg.sender, amount);
        _send(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views and pure helpers

    /// @notice A task's fields.
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @notice A round's fields.
    function getRound(uint256 taskId, uint256 round) external view returns (Round memory) {
        return _rounds[taskId][round];
    }

    /// @notice A miner's commitment in an attempt of a round.
    function getCommitment(uint256 taskId, uint256 round, uint256 attempt, address miner)
        external
        view
        returns (Commitment memory)
    {
        return _commits[taskId][round][attempt][miner];
    }

    /// @notice The PoSap block record at `height`.
    function getBlock(uint256 height) external view returns (BlockRecord memory) {
        return _blocks[height];
    }

    /// @notice Whether `client` registered in the round.
    function isRegistered(uint256 taskId, uint256 round, address client) external view returns (bool) {
        return _registered[taskId][round][client];
    }

    /// @notice Whether `client` claimed its payout for the round.
    function isClaimed(uint256 taskId, uint256 round, address client) external view returns (bool) {
        return _claimed[taskId][round][client];
    }

    /// @notice A round's TrainPrice, ComPrice and SapPrice ({PoSapMath-roundPrices}).
    /// @dev train = V*trainBps/BPS, com = V*comBps/BPS, sap = V - train - com (the split's
    /// dust goes to SapPrice); each is cut into R equal shares, the last round taking the
    /// remainder. Mirrored by posap.round_prices.
    function roundPrices(uint256 taskId, uint256 round) public view returns (uint256 train, uint256 com, uint256 sap) {
        Task storage t = _tasks[taskId];
        return PoSapMath.roundPrices(t.budget, t.rounds, round, t.trainBps, t.comBps);
    }

    /// @notice Most commitments per attempt for a round with `k` registered clients
    /// ({PoSapMath-commitCap}: min(MAX_COMMITS, MAX_ROUND_WORDS / k)).
    function commitCap(uint256 k) public pure returns (uint256) {
        return PoSapMath.commitCap(k);
    }

    /// @notice The commitment a miner must submit ({CommitmentHash-commitmentHash}, mirrored by
    /// fedcoin/protocol/commitment.py).
    function commitmentHash(
        uint256 taskId,
        uint256 round,
        address miner,
        int256[] calldata values,
        uint256 iterations,
        bytes32 salt
    ) public view returns (bytes32) {
        return CommitmentHash.commitmentHash(taskId, round, miner, values, iterations, salt);
    }

    /// @notice keccak256 of the vector's 32-byte words concatenated (= abi.encodePacked(values)).
    function vectorHash(int256[] calldata values) public pure returns (bytes32 h) {
        h = CommitmentHash.vectorHash(values);
    }

    /// @notice One link of a round attempt's rolling reveal hash ({CommitmentHash-revealLink}).
    function revealLink(bytes32 prev, address miner, uint256 seq, uint256 iterations, bytes32 vHash)
        public
        pure
        returns (bytes32)
    {
        return CommitmentHash.revealLink(prev, miner, seq, iterations, vHash);
    }

    /// @notice The client-list Merkle leaf of `client` ({MerkleTree-clientLeaf}).
    function clientLeaf(address client) public pure returns (bytes32) {
        return MerkleTree.clientLeaf(client);
    }

    /// @notice The payout Merkle leaf of (taskId, round, client, amount) ({MerkleTree-payoutLeaf}).
    function payoutLeaf(uint256 taskId, uint256 round, address client, uint256 amount) public pure returns (bytes32) {
        return MerkleTree.payoutLeaf(taskId, round, client, amount);
    }

    /// @notice Next difficulty after a round won `elapsed` seconds after publication:
    /// clamp(d * elapsed / target, max(d / 2, 1), min(2 d, MAX_DIFFICULTY)). Larger D is
    /// easier, so slow rounds raise D. Mirrored by posap.next_difficulty.
    function nextDifficulty(uint256 d, uint256 elapsed, uint256 target) public pure returns (uint256) {
        return PoSapMath.nextDifficulty(d, elapsed, target);
    }

    // ------------------------------------------------------------------ internals

    /// @dev The client-list Merkle root, rejecting an unsorted, duplicated or forbidden entry.
    function _clientsRoot(address[] calldata clients, address server) private view returns (bytes32) {
        uint256 k = clients.length;
        bytes32[] memory leaves = new bytes32[](k);
        for (uint256 i; i < k; ++i) {
            address c = clients[i];
            if (c == address(0) || c == msg.sender || c == server) revert FedCoinForbiddenClient(c);
            if (i > 0) {
                if (c == clients[i - 1]) revert FedCoinDuplicateClient(c);
                if (c < clients[i - 1]) revert FedCoinClientsNotSorted(i);
            }
            leaves[i] = MerkleTree.clientLeaf(c);
        }
        return MerkleTree.rootInPlace(leaves);
    }

    function _emitCreated(uint256 taskId, Task storage t, address[] calldata clients) private {
        emit TaskCreated(
            taskId,
            t.requester,
            t.server,
            t.budget,
            t.rounds,
            t.trainBps,
            t.comBps,
            t.sapBps,
            t.acceptDeadline,
            t.clientsRoot,
            clients
        );
    }

    /// @dev The task, which must exist and be in `status`.
    function _taskIn(uint256 taskId, TaskStatus status) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert FedCoinUnknownTask(taskId);
        if (t.status != status) revert FedCoinWrongTaskStatus(taskId, t.status);
    }

    /// @dev The task's current round, which `round` must name and which must be in `status`.
    function _roundIn(uint256 taskId, uint256 round, Task storage t, RoundStatus status)
        private
        view
        returns (Round storage r)
    {
        if (round != t.currentRound) revert FedCoinWrongRound(taskId, t.currentRound, round);
        r = _rounds[taskId][round];
        if (r.status != status) revert FedCoinWrongRoundStatus(taskId, round, r.status);
    }

    /// @dev Checks `clients` against the round's registration count and rolling hash.
    function _checkClients(uint256 taskId, uint256 round, Round storage r, address[] calldata clients) private view {
        if (clients.length != r.registered) revert FedCoinClientsMismatch(taskId, round);
        bytes32 acc = bytes32(0);
        for (uint256 i; i < clients.length; ++i) {
            acc = CommitmentHash.registrationLink(acc, clients[i]);
        }
        if (acc != r.registrationAcc) revert FedCoinClientsMismatch(taskId, round);
    }

    /// @dev Checks `reveals` against the attempt's reveal count and rolling hash; returns each
    /// reveal's vector hash.
    function _checkReveals(uint256 taskId, uint256 round, Round storage r, RevealData[] calldata reveals)
        private
        view
        returns (bytes32[] memory hashes)
    {
        if (reveals.length != r.revealCount) revert FedCoinRevealsMismatch(taskId, round);
        hashes = new bytes32[](reveals.length);
        bytes32 acc = bytes32(0);
        uint256 k = r.registered;
        for (uint256 i; i < reveals.length; ++i) {
            RevealData calldata d = reveals[i];
            if (d.values.length != k) revert FedCoinRevealsMismatch(taskId, round);
            hashes[i] = CommitmentHash.vectorHash(d.values);
            acc = CommitmentHash.revealLink(acc, d.miner, d.seq, d.iterations, hashes[i]);
        }
        if (acc != r.revealAcc) revert FedCoinRevealsMismatch(taskId, round);
    }

    /// @dev The qualifying reveal with the smallest commitment sequence number, if any.
    function _winner(RevealData[] calldata reveals, int256[] memory mean, uint256 d, uint8 p)
        private
        pure
        returns (bool found, uint256 best)
    {
        uint256 bestSeq = type(uint256).max;
        for (uint256 i; i < reveals.length; ++i) {
            if (reveals[i].seq >= bestSeq) continue; // cannot beat the current best
            if (PDistance.qualifies(PDistance.distance(reveals[i].values, mean, p), d, p)) {
                found = true;
                best = i;
                bestSeq = reveals[i].seq;
            }
        }
    }

    /// @dev Settles a won round: allocates its prices (clients, server, winner, requester's
    /// dust), appends the PoSap block, adjusts D and moves the task on.
    function _settle(
        uint256 taskId,
        uint256 round,
        Task storage t,
        Round storage r,
        address[] calldata clients,
        int256[] memory mean,
        address winner,
        bytes32 winnerHash
    ) private {
        Settlement memory s = Settlement(0, 0, 0, 0, 0, bytes32(0), bytes32(0), bytes32(0), address(0), 0);
        (s.train, s.com, s.sap) = roundPrices(taskId, round);
        s.winner = winner;
        s.winnerHash = winnerHash;
        s.winnerCommittedAt = _commits[taskId][round][r.attempt][winner].committedAt;
        uint256[] memory amounts = _payouts(taskId, round, clients, mean, s);
        s.meanHash = CommitmentHash.vectorHashMemory(mean);

        r.payoutsRoot = s.root;
        r.status = RoundStatus.Finalized;
        uint256 forfeited = _releaseRound(t, r, s.train + s.com + s.sap);
        t.unclaimed += s.paid;
        _addUnclaimed(s.paid);
        _credit(t.server, taskId, s.com, CreditReason.ComPrice);
        _credit(winner, taskId, s.sap + forfeited, CreditReason.SapPrice);
        _credit(t.requester, taskId, s.refund, CreditReason.Refund);

        uint256 height = _appendBlock(taskId, round, r.difficulty, s);
        emit RoundFinalized(taskId, round, winner, height, s.root, mean, amounts);
        _adjustDifficulty(s.winnerCommittedAt - r.publishedAt);
        _advance(taskId, t);
    }

    /// @dev Client amounts ({PoSapMath-clientAmount}): train * mean_k / sum(positive means) for
    /// mean_k > 0, else 0. The dust (or all of train when no mean is positive) goes to s.refund
    /// (the requester); s.root is the payout tree's root (zero when no mean is positive).
    function _payouts(
        uint256 taskId,
        uint256 round,
        address[] calldata clients,
        int256[] memory mean,
        Settlement memory s
    ) private pure returns (uint256[] memory amounts) {
        uint256 k = clients.length;
        amounts = new uint256[](k);
        uint256 positive = PoSapMath.positiveTotal(mean);
        if (positive == 0) {
            s.refund = s.train;
            return amounts;
        }
        bytes32[] memory leaves = new bytes32[](k);
        uint256 train = s.train;
        uint256 paid = 0;
        for (uint256 j; j < k; ++j) {
            uint256 a = PoSapMath.clientAmount(train, mean[j], positive);
            amounts[j] = a;
            paid += a;
            leaves[j] = MerkleTree.payoutLeaf(taskId, round, clients[j], a);
        }
        s.paid = paid;
        s.refund = train - paid;
        s.root = MerkleTree.rootInPlace(leaves);
    }

    /// @dev Appends the PoSap block record of a settled round and emits {PoSapBlock}.
    function _appendBlock(uint256 taskId, uint256 round, uint256 d, Settlement memory s)
        private
        returns (uint256 height)
    {
        height = blockCount;
        bytes32 prev = lastRecordHash;
        bytes32 recordHash =
            PoSapMath.recordHash(height, taskId, round, s.winner, s.meanHash, s.winnerHash, prev, d, s.root);
        _blocks[height] = BlockRecord({
            taskId: uint64(taskId),
            round: uint32(round),
            winner: s.winner,
            meanHash: s.meanHash,
            winnerHash: s.winnerHash,
            prevHash: prev,
            difficulty: d,
            payoutsRoot: s.root,
            recordHash: recordHash
        });
        blockCount = height + 1;
        lastRecordHash = recordHash;
        emit PoSapBlock(height, taskId, round, s.winner, s.meanHash, s.winnerHash, prev, d, s.root, recordHash);
    }

    /// @dev Sets the global D by {PoSapMath-nextDifficulty} and emits {DifficultyAdjusted}.
    function _adjustDifficulty(uint256 elapsed) private {
        uint256 old = difficulty;
        uint256 next = PoSapMath.nextDifficulty(old, elapsed, targetBlockTime);
        difficulty = next;
        emit DifficultyAdjusted(old, next, elapsed);
    }

    /// @dev No winner: re-open the round with D relaxed ({PoSapMath-relaxedDifficulty}) and fresh
    /// windows, or after MAX_REOPENS re-opens abandon it (Train, Sap and forfeited bonds to the
    /// requester, ComPrice to the server) and move the task on.
    function _reopenOrAbandon(uint256 taskId, uint256 round, Task storage t, Round storage r) private {
        if (r.attempt < MAX_REOPENS) {
            uint256 d = PoSapMath.relaxedDifficulty(r.difficulty);
            r.difficulty = d;
            r.attempt += 1;
            r.commitCount = 0;
            r.revealCount = 0;
            r.revealAcc = bytes32(0);
            r.commitDeadline = uint64(block.timestamp + r.commitWindow);
            r.revealDeadline = uint64(block.timestamp + r.commitWindow + r.revealWindow);
            emit RoundReopened(taskId, round, r.attempt, d, r.commitDeadline, r.revealDeadline, r.forfeited);
            return;
        }
        (uint256 train, uint256 com, uint256 sap) = roundPrices(taskId, round);
        r.status = RoundStatus.Abandoned;
        uint256 forfeited = _releaseRound(t, r, train + com + sap);
        _credit(t.server, taskId, com, CreditReason.ComPrice);
        _credit(t.requester, taskId, train + sap + forfeited, CreditReason.Refund);
        emit RoundAbandoned(taskId, round, train + sap + forfeited);
        _advance(taskId, t);
    }

    /// @dev Takes a closing round's prices (`allocated`) out of escrow and its forfeited bonds
    /// out of the bond bucket, task and contract totals together; returns the forfeited bonds.
    /// The caller credits both amounts to their owners in the same call.
    function _releaseRound(Task storage t, Round storage r, uint256 allocated) private returns (uint256 forfeited) {
        forfeited = r.forfeited;
        r.forfeited = 0;
        t.escrow -= allocated;
        _releaseEscrow(allocated);
        t.bonds -= forfeited;
        _releaseBonds(forfeited);
    }

    /// @dev Moves the task to its next round, or completes it after the last.
    function _advance(uint256 taskId, Task storage t) private {
        uint256 next = uint256(t.currentRound) + 1;
        t.roundStartedAt = uint64(block.timestamp);
        if (next >= t.rounds) {
            t.status = TaskStatus.Completed;
            emit TaskCompleted(taskId);
        } else {
            t.currentRound = uint32(next);
        }
    }

    /// @dev Ends the task, crediting its remaining escrow to the requester.
    function _refundRest(uint256 taskId, Task storage t, bool accepted) private {
        uint256 amount = t.escrow;
        t.escrow = 0;
        t.status = TaskStatus.Refunded;
        _releaseEscrow(amount);
        _credit(t.requester, taskId, amount, CreditReason.Refund);
        emit TaskRefunded(taskId, t.requester, amount, accepted);
    }

    /// @dev Credits `amount` (if any) to `account` in the pull ledger and emits {Credited}.
    function _credit(address account, uint256 taskId, uint256 amount, CreditReason reason) private {
        if (amount == 0) return;
        _addCredit(account, amount);
        emit Credited(account, taskId, amount, reason);
    }
}
