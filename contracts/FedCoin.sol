// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FedCoinLedger} from "./FedCoinLedger.sol";
import {CommitmentHash} from "./lib/CommitmentHash.sol";
import {MerkleTree} from "./lib/MerkleTree.sol";
import {PDistance, RevealData, Rule, Verdicts} from "./lib/PDistance.sol";
import {PoSapMath} from "./lib/PoSapMath.sol";
import {Payout, PoSapJudge} from "./PoSapJudge.sol";

/// @title FedCoin: escrow, Byzantine-robust Proof-of-Shapley consensus and payouts for federated learning
/// @notice A requester deposits a budget V for a task with a server, listed clients, R rounds and
/// its own consensus parameters (D absolute or relative, p, windows, claim expiry). Each round:
/// listed clients register their update hashes during a registration period, the server
/// publishes the Shapley task, miners commit and reveal Shapley vectors with a stake, and anyone
/// finalizes: the consensus centre is the per-coordinate stake-weighted lower median of the
/// revealed vectors (passed as calldata and verified), miners within D of it share SapPrice pro
/// rata to stake, reveals beyond SLASH_MULTIPLE * D and non-reveals forfeit their bond to the
/// requester, the server is credited ComPrice and clients with c_k > 0 share TrainPrice through
/// a Merkle root of (client, amount). See docs/contracts.md for the threat model and proofs.
/// @dev Money invariant, checked by the tests after every step:
/// address(this).balance == totalEscrow + totalUnclaimed + totalCredits + totalBonds.
/// Vectors never reach storage: reveals store a rolling hash and emit the vector; finalize
/// takes the vectors back as calldata and checks them against that hash.
/// Layout: this contract is the state machine; the money buckets, withdraw and the
/// reentrancy guard are {FedCoinLedger}; pure arithmetic is {PoSapMath} and {PDistance}
/// (fedcoin/protocol/posap.py), hashes {CommitmentHash} and {MerkleTree} (commitment.py, merkle.py).
contract FedCoin is FedCoinLedger {
    // ------------------------------------------------------------------ constants
    // Internal (no getters: EIP-170 room); fedcoin/protocol/posap.py holds the same numbers and
    // tests/test_posap_reference.py checks them against behaviour.

    /// @notice Basis points in a whole (the three split shares sum to this).
    uint256 internal constant BPS = PoSapMath.BPS;
    /// @notice Most listed clients per task (the client Merkle tree is built in createTask).
    uint256 internal constant MAX_CLIENTS = 1024;
    /// @notice Most rounds per task.
    uint256 internal constant MAX_ROUNDS = 1000;
    /// @notice Most commitments per attempt, whatever K.
    uint256 internal constant MAX_COMMITS = PoSapMath.MAX_COMMITS;
    /// @notice Commitments per attempt are also capped at MAX_ROUND_WORDS / K so that finalize
    /// (K*M int256 words of calldata, EIP-7623 floor 40 gas per non-zero byte) always fits the
    /// EIP-7825 per-transaction gas cap of 16,777,216.
    uint256 internal constant MAX_ROUND_WORDS = PoSapMath.MAX_ROUND_WORDS;
    /// @notice How many times a round without consensus re-opens before it is abandoned.
    uint256 internal constant MAX_REOPENS = PoSapMath.MAX_REOPENS;
    /// @notice Window bounds ({PoSapMath}): registration, commit and reveal windows in
    /// [MIN_WINDOW, MAX_WINDOW] = [20 s, 7 days], so no round is unminable by construction; the
    /// claim window in [1 day, 365 days].
    uint256 internal constant MIN_WINDOW = PoSapMath.MIN_WINDOW;
    uint256 internal constant MAX_WINDOW = PoSapMath.MAX_WINDOW;
    /// @notice A reveal farther than SLASH_MULTIPLE * D from the centre forfeits its bond.
    uint256 internal constant SLASH_MULTIPLE = PDistance.SLASH_MULTIPLE;
    /// @notice Largest absolute D (D^2 and D*elapsed must never overflow).
    uint256 internal constant MAX_DIFFICULTY = PoSapMath.MAX_DIFFICULTY;
    /// @notice Largest relative D: 5e17 = 50% of ||centre||_p.
    uint256 internal constant MAX_RELATIVE_DIFFICULTY = PoSapMath.MAX_RELATIVE_DIFFICULTY;
    /// @notice Largest accepted |s| in a revealed vector (1e9 in real units).
    int256 internal constant MAX_ABS_VALUE = PDistance.MAX_ABS_VALUE;
    /// @notice Storage words of a Task and of a Round (checked against the compiler's storage
    /// layout by tests/test_artifacts.py).
    uint256 internal constant TASK_WORDS = 10;
    uint256 internal constant ROUND_WORDS = 10;
    /// @notice Aggregation rules the server may declare: FedAvg weighted by n_k, or uniform.
    uint8 internal constant AGG_WEIGHTED = 0;
    uint8 internal constant AGG_UNIFORM = 1;

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
        Refund,
        Forfeited,
        Expired,
        Payout
    }

    /// @notice What finalize made of one reveal (the `verdict` of {Judged}).
    enum Verdict {
        Qualified,
        Returned,
        Slashed
    }

    /// @notice Everything the requester chooses at createTask (one calldata argument).
    /// @param server the FL server that must accept before `acceptDeadline`.
    /// @param clients the listed clients, strictly ascending, 1..MAX_CLIENTS of them.
    /// @param rounds R, 1..MAX_ROUNDS.
    /// @param trainBps TrainPrice, comBps ComPrice, sapBps SapPrice shares, summing to BPS.
    /// @param acceptDeadline unix time after which an unaccepted task is refundable.
    /// @param difficulty the task's first D: absolute fixed point (1..MAX_DIFFICULTY) or, with
    /// `relative`, a fraction of ||centre||_p in 1e18 units (1..MAX_RELATIVE_DIFFICULTY).
    /// @param p the distance: 1, 2 or 255 (infinity).
    /// @param relative whether D is relative to ||centre||_p.
    /// @param registrationWindow seconds each round accepts registrations after it starts.
    /// @param commitWindow seconds from publication to the commit deadline.
    /// @param revealWindow seconds from the commit deadline to the reveal deadline.
    /// @param claimWindow seconds after finalization during which clients may claim.
    /// @param payment how TrainPrice is split among the round's clients: 0 `shapley` (pro rata to
    /// the positive centre entries), 1 `data-cost` (Record-and-Reward: pro rata to the registered
    /// n_k of every update not excluded), 2 `data-cost-gated` (pro rata to n_k among the updates
    /// whose centre entry is > 0). See {PoSapJudge-payouts}.
    /// @param maxDataCost the largest n_k a client may register (1..2^64-1): a cap on data-cost
    /// inflation fixed before anyone registers.
    struct TaskConfig {
        address server;
        address[] clients;
        uint256 rounds;
        uint256 trainBps;
        uint256 comBps;
        uint256 sapBps;
        uint256 acceptDeadline;
        uint256 difficulty;
        uint8 p;
        bool relative;
        uint256 registrationWindow;
        uint256 commitWindow;
        uint256 revealWindow;
        uint256 claimWindow;
        uint8 payment;
        uint256 maxDataCost;
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
        uint8 p;
        bool relative;
        uint64 registrationWindow;
        uint64 commitWindow;
        uint64 revealWindow;
        uint64 claimWindow;
        uint8 payment;
        uint64 maxDataCost;
        bytes32 clientsRoot;
        uint256 difficulty; // this task's D for its next publication
        uint256 budget;
        uint256 escrow; // budget not yet allocated to anyone
        uint256 unclaimed; // allocated to clients, not yet claimed
        uint256 bonds; // miner bonds held (current attempts and forfeited)
    }

    struct Round {
        RoundStatus status;
        uint8 attempt;
        uint8 p;
        bool relative;
        uint8 aggregation;
        uint32 registered;
        uint32 excludedCount;
        uint32 commitCount; // live commitments in the current attempt (<= commitCap)
        uint32 nextSeq; // commitments ever made in the current attempt (displaced ones included)
        uint32 revealCount;
        uint64 publishedAt;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint64 finalizedAt;
        bytes32 registrationAcc;
        bytes32 revealAcc;
        bytes32 specHash;
        uint256 difficulty;
        uint256 bondsHeld; // bonds of the current attempt's live commitments
        uint256 forfeited; // bonds forfeited in this round's earlier attempts
        uint256 unclaimed; // client payouts of this round not yet claimed (or reclaimed)
        bytes32 payoutsRoot;
    }

    struct Commitment {
        bytes32 hash;
        uint128 bond;
        uint32 seq;
        uint64 committedAt;
        bool revealed;
    }

    /// @notice One PoSap block (the paper's Table 1). `winner` is the recorded representative of
    /// the qualifying miners: the one with the largest bond (ties: lowest commit seq).
    struct BlockRecord {
        uint64 taskId;
        uint32 round;
        address winner;
        uint8 payment;
        bytes32 centreHash;
        bytes32 winnerHash;
        bytes32 prevHash;
        uint256 difficulty;
        bytes32 payoutsRoot;
        bytes32 recordHash;
    }

    /// @dev What finalize makes of an attempt's reveals (memory only).
    struct Judgement {
        uint256[] bonds;
        uint256[] dists;
        uint8[] verdicts;
        uint256 qualifiedStake;
        uint256 qualified;
        uint256 best; // index of the recorded representative
        uint256 lastQualifiedAt;
    }

    struct Settlement {
        uint256 train;
        uint256 com;
        uint256 sap;
        uint256 paid;
        uint256 refund;
        uint256 forfeited;
        bytes32 root;
        bytes32 centreHash;
        bytes32 winnerHash;
        address winner;
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
    /// @dev D is zero or above its ceiling (MAX_DIFFICULTY, or MAX_RELATIVE_DIFFICULTY if relative).
    error FedCoinBadDifficulty(uint256 difficulty, bool relative);
    /// @dev p is not 1, 2 or 255.
    error FedCoinBadP(uint8 p);
    /// @dev A window is outside its contract-wide bounds; `which`: 0 registration, 1 commit,
    /// 2 reveal, 3 claim.
    error FedCoinBadWindow(uint8 which, uint256 value);
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
    /// @dev The round's registration period is over.
    error FedCoinRegistrationClosed(uint256 taskId, uint256 round, uint256 deadline);
    /// @dev Publishing before every listed client registered and before the registration deadline.
    error FedCoinRegistrationOpen(uint256 taskId, uint256 round, uint256 deadline);
    /// @dev A hash argument is zero.
    error FedCoinEmptyHash();
    /// @dev The data cost n_k is zero.
    error FedCoinBadDataCost(uint256 dataCost, uint256 maxDataCost);
    /// @dev Publishing a round nobody registered in.
    error FedCoinNoRegistrations(uint256 taskId, uint256 round);
    /// @dev The exclusion list is not strictly ascending, names an index >= registered, or
    /// excludes every registration; `position` is where it fails.
    error FedCoinBadExclusions(uint256 position);
    /// @dev Unknown aggregation rule.
    error FedCoinBadAggregation(uint8 aggregation);
    /// @dev The commit window has closed.
    error FedCoinCommitWindowClosed(uint256 taskId, uint256 round, uint256 deadline);
    /// @dev The task's server may not mine its own rounds (it knows the spec before publishing).
    error FedCoinServerCannotMine(address server);
    /// @dev The bond is below the minimum (or above 2^128 - 1).
    error FedCoinBadBond(uint256 value, uint256 minimum);
    /// @dev The miner already committed in this attempt.
    error FedCoinAlreadyCommitted(uint256 taskId, uint256 round, address miner);
    /// @dev The attempt is full and the bond is below `displaceBond` (smallest held + minBond).
    error FedCoinRoundFull(uint256 taskId, uint256 round, uint256 cap, uint256 displaceBond);
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
    /// @dev A value at an excluded registration index is not zero.
    error FedCoinExcludedValue(uint256 index, int256 value);
    /// @dev iterations is zero or above maxIterations.
    error FedCoinBadIterations(uint256 iterations, uint256 maximum);
    /// @dev The revealed data does not hash to the commitment.
    error FedCoinCommitmentMismatch(uint256 taskId, uint256 round, address miner);
    /// @dev finalize before the reveal deadline has passed.
    error FedCoinRevealWindowOpen(uint256 taskId, uint256 round, uint256 revealDeadline);
    /// @dev finalize's client list is not the registration list.
    error FedCoinClientsMismatch(uint256 taskId, uint256 round);
    /// @dev finalize's reveals are not the reveals made, in order.
    error FedCoinRevealsMismatch(uint256 taskId, uint256 round);
    /// @dev finalize's centre is not the stake-weighted lower median at coordinate `index`.
    error FedCoinBadCentre(uint256 index);
    /// @dev claim of a zero amount.
    error FedCoinNothingToClaim();
    /// @dev The client already claimed this round's payout.
    error FedCoinAlreadyClaimed(uint256 taskId, uint256 round, address client);
    /// @dev The (client, amount) leaf is not under the round's payout root.
    error FedCoinInvalidProof(uint256 taskId, uint256 round, address client, uint256 amount);
    /// @dev The round's claim window closed at `expiry`.
    error FedCoinClaimExpired(uint256 taskId, uint256 round, uint256 expiry);
    /// @dev reclaimExpired before the claim window closed at `expiry`.
    error FedCoinClaimNotExpired(uint256 taskId, uint256 round, uint256 expiry);
    /// @dev reclaimExpired of a round with nothing unclaimed.
    error FedCoinNothingToReclaim(uint256 taskId, uint256 round);
    /// @dev claimTo's signature was not made by `client`.
    error FedCoinBadSignature(address client);
    /// @dev claimTo names the zero address as recipient.
    error FedCoinZeroRecipient();
    /// @dev The round is not stalled: before `stalledAfter`, or bonds are at stake (finalize it).
    error FedCoinNotStalled(uint256 taskId, uint256 round, uint256 stalledAfter);
    /// @dev A constructor parameter is out of range.
    error FedCoinBadParameter(string name);
    /// @dev The payment rule is not 0..2 or maxDataCost is not in 1..2^64-1.
    error FedCoinBadPayment(uint8 payment, uint256 maxDataCost);

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
    /// @notice The requester's consensus parameters and windows for the task (same transaction).
    event TaskConfigured(
        uint256 indexed taskId,
        uint256 difficulty,
        uint8 p,
        bool relative,
        uint256 registrationWindow,
        uint256 commitWindow,
        uint256 revealWindow,
        uint256 claimWindow,
        uint8 payment,
        uint256 maxDataCost
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
    /// @notice The server published a round's Shapley task; the task's D in force is recorded (p
    /// and the relative flag are the task's, {TaskConfigured}), and `excluded` lists the registration indices the server excluded (the spec says why).
    event ShapleyTaskPublished(
        uint256 indexed taskId,
        uint256 indexed round,
        bytes32 specHash,
        string specLocator,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 difficulty,
        uint8 aggregation,
        uint256 clientCount,
        uint32[] excluded
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
    /// @notice A full attempt's smallest commitment was displaced by a larger bond; its bond was
    /// credited back to it.
    event CommitDisplaced(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed displaced,
        uint256 attempt,
        address by,
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
    /// @notice No consensus: the round re-opened with a relaxed difficulty and new windows.
    event RoundReopened(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 attempt,
        uint256 difficulty,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 forfeitedSoFar
    );
    /// @notice No consensus after MAX_REOPENS re-opens (or past the round's escrow bound): the
    /// round's Train, Com and Sap price (`refund`) and its forfeited bonds were credited to the requester.
    event RoundAbandoned(uint256 indexed taskId, uint256 indexed round, uint256 refund, uint256 forfeited);
    /// @notice What finalize made of one reveal: its distance from the centre, its verdict and reward.
    event Judged(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed miner,
        uint256 distance,
        uint256 bond,
        Verdict verdict,
        uint256 reward
    );
    /// @notice A round was settled: the consensus centre and each client's amount, in order.
    event RoundFinalized(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed winner,
        uint256 height,
        bytes32 payoutsRoot,
        int256[] centre,
        uint256[] amounts
    );
    /// @notice A PoSap block record was appended to the record chain.
    event PoSapBlock(
        uint256 indexed height,
        uint256 indexed taskId,
        uint256 round,
        address winner,
        uint8 payment,
        bytes32 centreHash,
        bytes32 winnerHash,
        bytes32 prevHash,
        uint256 difficulty,
        bytes32 payoutsRoot,
        bytes32 recordHash
    );
    /// @notice The task's difficulty changed after a round settled by at least two qualifying stakes.
    event DifficultyAdjusted(
        uint256 indexed taskId, uint256 indexed round, uint256 oldDifficulty, uint256 newDifficulty, uint256 elapsed
    );
    /// @notice An account was credited in the pull ledger.
    event Credited(address indexed account, uint256 indexed taskId, uint256 amount, CreditReason reason);
    /// @notice A client's payout for a round was claimed: sent to the client (`to == client`,
    /// claim) or credited to `to` in the pull ledger (claimTo).
    event Claimed(uint256 indexed taskId, uint256 indexed round, address indexed client, address to, uint256 amount);
    /// @notice A round's unclaimed payouts expired and were credited to the requester.
    event PayoutsExpired(uint256 indexed taskId, uint256 indexed round, uint256 amount);

    // ------------------------------------------------------------------ state

    /// @notice Smallest commit bond (wei); also the least margin by which a bond must exceed the
    /// smallest held bond to displace it from a full attempt.
    uint256 public immutable minBond;
    /// @notice Largest iteration count a reveal may record (iterations are recorded, never weighted).
    uint256 public immutable maxIterations;
    /// @notice Target seconds from publication to a complete qualifying set (the difficulty target).
    uint256 public immutable targetBlockTime;
    /// @notice The stateless verifier this contract created ({PoSapJudge}): centre check,
    /// distances and payout root, called with STATICCALL from finalize. Holds no money.
    PoSapJudge public immutable judge;

    /// @notice Number of tasks created; task ids are 1..taskCount.
    uint256 public taskCount;
    /// @notice Number of PoSap block records; heights are 0..blockCount-1.
    uint256 public blockCount;
    /// @notice recordHash of the last PoSap block (zero before the first).
    bytes32 public lastRecordHash;

    mapping(uint256 => Task) private _tasks;
    mapping(uint256 => mapping(uint256 => Round)) private _rounds;
    mapping(uint256 => mapping(uint256 => mapping(uint256 => mapping(address => Commitment)))) private _commits;
    mapping(uint256 => mapping(uint256 => mapping(uint256 => address[]))) private _committers;
    mapping(uint256 => mapping(uint256 => mapping(uint256 => uint256))) private _excluded; // bitmap words
    mapping(uint256 => mapping(uint256 => mapping(address => bool))) private _registered;
    mapping(uint256 => mapping(uint256 => mapping(address => bool))) private _claimed;
    mapping(uint256 => BlockRecord) private _blocks;

    /// @param minBond_ smallest commit bond in wei (>= 1).
    /// @param maxIterations_ the largest recordable iteration count (>= 1, < 2^64).
    /// @param targetBlockTime_ seconds (>= 1, < 2^64).
    constructor(uint256 minBond_, uint256 maxIterations_, uint256 targetBlockTime_) {
        if (minBond_ == 0) revert FedCoinBadParameter("minBond");
        if (maxIterations_ == 0 || maxIterations_ >= 2 ** 64) revert FedCoinBadParameter("maxIterations");
        if (targetBlockTime_ == 0 || targetBlockTime_ >= 2 ** 64) revert FedCoinBadParameter("targetBlockTime");
        minBond = minBond_;
        maxIterations = maxIterations_;
        targetBlockTime = targetBlockTime_;
        judge = new PoSapJudge();
    }

    // ------------------------------------------------------------------ task lifecycle

    /// @notice Create a task: deposit V (msg.value) for `cfg.server` and the listed `cfg.clients`,
    /// with the task's own D, p, windows and claim expiry (see {TaskConfig}).
    /// @dev `clients` must be strictly ascending (this is how duplicates are rejected without
    /// storage); neither the requester, the server nor address(0) may be listed. The clients
    /// are kept as a Merkle root (leaf = keccak256(bytes.concat(keccak256(abi.encode(client)))))
    /// and emitted in full: registering needs a proof built from the event.
    /// @return taskId the new task's id (1-based).
    function createTask(TaskConfig calldata cfg) external payable returns (uint256 taskId) {
        if (msg.value == 0) revert FedCoinZeroBudget();
        if (cfg.server == address(0)) revert FedCoinZeroServer();
        if (cfg.trainBps + cfg.comBps + cfg.sapBps != BPS) revert FedCoinBadSplit(cfg.trainBps, cfg.comBps, cfg.sapBps);
        if (cfg.rounds == 0 || cfg.rounds > MAX_ROUNDS) revert FedCoinBadRounds(cfg.rounds);
        uint256 k = cfg.clients.length;
        if (k == 0 || k > MAX_CLIENTS) revert FedCoinBadClientCount(k);
        if (cfg.acceptDeadline <= block.timestamp || cfg.acceptDeadline >= 2 ** 64) {
            revert FedCoinBadAcceptDeadline(cfg.acceptDeadline);
        }
        _checkConfig(cfg);
        bytes32 root = _clientsRoot(cfg.clients, cfg.server);

        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.requester = msg.sender;
        t.server = cfg.server;
        t.acceptDeadline = uint64(cfg.acceptDeadline);
        t.rounds = uint32(cfg.rounds);
        t.clientCount = uint32(k);
        t.trainBps = uint16(cfg.trainBps);
        t.comBps = uint16(cfg.comBps);
        t.sapBps = uint16(cfg.sapBps);
        t.status = TaskStatus.Created;
        t.p = cfg.p;
        t.relative = cfg.relative;
        t.registrationWindow = uint64(cfg.registrationWindow);
        t.commitWindow = uint64(cfg.commitWindow);
        t.revealWindow = uint64(cfg.revealWindow);
        t.claimWindow = uint64(cfg.claimWindow);
        t.payment = cfg.payment;
        t.maxDataCost = uint64(cfg.maxDataCost);
        t.clientsRoot = root;
        t.difficulty = cfg.difficulty;
        t.budget = msg.value;
        t.escrow = msg.value;
        _addEscrow(msg.value);
        _emitCreated(taskId, t, cfg.clients);
        emit TaskConfigured(
            taskId,
            cfg.difficulty,
            cfg.p,
            cfg.relative,
            cfg.registrationWindow,
            cfg.commitWindow,
            cfg.revealWindow,
            cfg.claimWindow,
            cfg.payment,
            cfg.maxDataCost
        );
    }

    /// @notice The server accepts the task, starting round 0 (and its registration period).
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
        _refundRest(taskId, t, false, false);
    }

    /// @notice Refund a stalled task: once the current round has not settled by {stalledAfter}
    /// (roundStartedAt + registrationWindow + (MAX_REOPENS + 1) * (commitWindow + revealWindow)
    /// + FINALIZE_GRACE), anyone may end the task and credit its remaining escrow (the current
    /// round's ComPrice included) and the round's forfeited bonds to the requester. Settled
    /// rounds stay settled.
    /// @dev Works on an unpublished round and on a published one whose current attempt holds no
    /// bond; with bonds at stake, finalize it instead (past the bound, finalize without consensus
    /// abandons the round and refunds the rest the same way, never re-opens).
    function refundStalled(uint256 taskId) external {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        uint256 after_ = stalledAfter(taskId);
        Round storage r = _rounds[taskId][t.currentRound];
        if (block.timestamp <= after_ || r.bondsHeld != 0) {
            revert FedCoinNotStalled(taskId, t.currentRound, after_);
        }
        _refundRest(taskId, t, true, true);
    }

    // ------------------------------------------------------------------ rounds

    /// @notice A listed client registers its update for the current round. Registration order
    /// is the order of every Shapley vector of the round.
    /// @dev WARNING: registration closes at the round's registration deadline
    /// (roundStartedAt + registrationWindow) or when the server publishes; the client proves its
    /// listing with a Merkle proof over the TaskCreated client list (see fedcoin/protocol/merkle.py).
    /// @param round must be the task's current round.
    /// @param updateHash hash of the serialized update bytes (non-zero).
    /// @param locator where the update can be fetched (CID or store key); emitted only.
    /// @param dataCost the client's data size n_k (1..the task's maxDataCost).
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
        uint256 deadline = uint256(t.roundStartedAt) + t.registrationWindow;
        if (block.timestamp > deadline) revert FedCoinRegistrationClosed(taskId, round, deadline);
        if (!MerkleTree.verify(proof, t.clientsRoot, MerkleTree.clientLeaf(msg.sender))) {
            revert FedCoinNotListedClient(msg.sender);
        }
        if (_registered[taskId][round][msg.sender]) revert FedCoinAlreadyRegistered(taskId, round, msg.sender);
        if (updateHash == bytes32(0)) revert FedCoinEmptyHash();
        if (dataCost == 0 || dataCost > t.maxDataCost) revert FedCoinBadDataCost(dataCost, t.maxDataCost);
        _registered[taskId][round][msg.sender] = true;
        uint256 index = r.registered;
        r.registered = uint32(index + 1);
        r.registrationAcc = CommitmentHash.registrationLink(r.registrationAcc, msg.sender, dataCost);
        emit UpdateRegistered(taskId, round, msg.sender, index, updateHash, locator, dataCost);
    }

    /// @notice The server publishes the round's Shapley task: allowed once every listed client
    /// registered or the registration deadline passed. The deadlines follow from the task's
    /// windows (commit = now + commitWindow, reveal = commit + revealWindow); the task's D, p and
    /// mode are recorded with the round.
    /// @param specHash hash of the task-spec JSON (non-zero); @param specLocator where it lives.
    /// @param aggregation AGG_WEIGHTED (FedAvg by n_k) or AGG_UNIFORM.
    /// @param excluded registration indices the server excluded, strictly ascending, fewer than
    /// the registrations (the spec says why; miners re-check). Revealed vectors must carry 0
    /// there, so excluded clients are paid nothing and cannot move the centre.
    function publishShapleyTask(
        uint256 taskId,
        uint256 round,
        bytes32 specHash,
        string calldata specLocator,
        uint8 aggregation,
        uint32[] calldata excluded
    ) external {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        if (msg.sender != t.server) revert FedCoinNotServer(msg.sender);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Open);
        uint256 registered = r.registered;
        if (registered == 0) revert FedCoinNoRegistrations(taskId, round);
        uint256 regDeadline = uint256(t.roundStartedAt) + t.registrationWindow;
        if (registered < t.clientCount && block.timestamp <= regDeadline) {
            revert FedCoinRegistrationOpen(taskId, round, regDeadline);
        }
        if (specHash == bytes32(0)) revert FedCoinEmptyHash();
        if (aggregation > AGG_UNIFORM) revert FedCoinBadAggregation(aggregation);
        _storeExclusions(taskId, round, registered, excluded);
        r.status = RoundStatus.Published;
        r.p = t.p;
        r.relative = t.relative;
        r.aggregation = aggregation;
        r.excludedCount = uint32(excluded.length);
        r.publishedAt = uint64(block.timestamp);
        r.commitDeadline = uint64(block.timestamp + t.commitWindow);
        r.revealDeadline = uint64(block.timestamp + t.commitWindow + t.revealWindow);
        r.specHash = specHash;
        r.difficulty = t.difficulty;
        _emitPublished(taskId, round, specLocator, excluded);
    }

    /// @notice Commit to a Shapley vector with a bond (msg.value >= minBond). One commitment
    /// per miner per attempt; the task's server may not commit.
    /// @dev commitment = keccak256(abi.encode(chainid, this, taskId, round, miner, S, iterations,
    /// salt)) — see fedcoin/protocol/commitment.py. An attempt holds at most
    /// min(MAX_COMMITS, MAX_ROUND_WORDS / K) commitments; when full, a bond at least minBond
    /// above the smallest held bond displaces it (its bond is credited back at once; ties: the
    /// latest of the smallest goes). Finding the smallest is a loop over at most MAX_COMMITS = 64
    /// entries. WARNING: the bond is returned only at finalize and only if you reveal in
    /// (commitDeadline, revealDeadline] within SLASH_MULTIPLE * D of the centre; otherwise it is
    /// forfeited to the requester.
    function commit(uint256 taskId, uint256 round, bytes32 commitment) external payable {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Published);
        if (block.timestamp > r.commitDeadline) revert FedCoinCommitWindowClosed(taskId, round, r.commitDeadline);
        if (msg.sender == t.server) revert FedCoinServerCannotMine(msg.sender);
        if (msg.value < minBond || msg.value > type(uint128).max) revert FedCoinBadBond(msg.value, minBond);
        if (commitment == bytes32(0)) revert FedCoinEmptyHash();
        uint256 attempt = r.attempt;
        Commitment storage c = _commits[taskId][round][attempt][msg.sender];
        if (c.hash != bytes32(0)) revert FedCoinAlreadyCommitted(taskId, round, msg.sender);
        uint256 cap = PoSapMath.commitCap(r.registered);
        uint256 live = _committers[taskId][round][attempt].length;
        if (live < cap) {
            _committers[taskId][round][attempt].push(msg.sender);
            r.commitCount = uint32(live + 1);
        } else {
            _displace(taskId, round, attempt, t, r, cap);
        }
        uint256 seq = r.nextSeq;
        r.nextSeq = uint32(seq + 1);
        c.hash = commitment;
        c.bond = uint128(msg.value);
        c.seq = uint32(seq);
        c.committedAt = uint64(block.timestamp);
        r.bondsHeld += msg.value;
        t.bonds += msg.value;
        _addBonds(msg.value);
        emit Committed(taskId, round, msg.sender, attempt, seq, commitment, msg.value);
    }

    /// @notice Reveal the committed vector; it is emitted in {Revealed} (never stored). The bond
    /// stays held until finalize judges the reveal against the centre.
    /// @param values S in registration order; length = registered clients, |s| <= MAX_ABS_VALUE,
    /// 0 at every excluded index.
    /// @param iterations samples behind S (1..maxIterations; recorded, never weighted).
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
        if (iterations == 0 || iterations > maxIterations) revert FedCoinBadIterations(iterations, maxIterations);
        _checkValues(taskId, round, r.excludedCount > 0, values);
        if (CommitmentHash.commitmentHash(taskId, round, msg.sender, values, iterations, salt) != c.hash) {
            revert FedCoinCommitmentMismatch(taskId, round, msg.sender);
        }
        c.revealed = true;
        r.revealCount += 1;
        r.revealAcc =
            CommitmentHash.revealLink(r.revealAcc, msg.sender, c.seq, iterations, CommitmentHash.vectorHash(values));
        emit Revealed(taskId, round, msg.sender, r.attempt, c.seq, iterations, values);
    }

    /// @notice Settle the round's current attempt after its reveal deadline (anyone may call).
    /// @dev Pass the registered clients and their data costs in registration order (from {UpdateRegistered}), every
    /// reveal of the attempt in reveal order (from {Revealed}) — both checked against rolling
    /// hashes — and the centre: the per-coordinate stake-weighted lower median of the reveals
    /// (weights = bonds, read from storage), verified here in O(K * M) and unique, so the caller
    /// has no choice (fedcoin/protocol/posap.py computes it; the binding does it for you).
    /// Consensus = at least one reveal within D of the centre (‖S − c‖_p ≤ D, or ≤ D·‖c‖_p/1e18
    /// for a relative D). Then: qualifying miners share SapPrice pro rata to bond and get their
    /// bond back; reveals within SLASH_MULTIPLE * D get their bond back; the rest and the
    /// non-reveals forfeit their bonds to the requester; the server is credited ComPrice;
    /// clients share TrainPrice by the task's payment rule ({PoSapJudge-payouts}; dust to the
    /// requester); a PoSap block is
    /// appended and, with at least two qualifying stakes, the task's D adjusts. Without
    /// consensus every revealed bond is returned, unrevealed ones are forfeited, and the round
    /// re-opens with D doubled (at most MAX_REOPENS times, and not past {stalledAfter}), else it
    /// is abandoned with its whole price refunded to the requester.
    /// @param clients registered clients in registration order.
    /// @param dataCosts their registered n_k, in the same order.
    /// @param reveals the attempt's reveals in reveal order.
    /// @param centre the consensus centre (length K; ignored when there are no reveals).
    function finalize(
        uint256 taskId,
        uint256 round,
        address[] calldata clients,
        uint256[] calldata dataCosts,
        RevealData[] calldata reveals,
        int256[] calldata centre
    ) external {
        Task storage t = _taskIn(taskId, TaskStatus.Accepted);
        Round storage r = _roundIn(taskId, round, t, RoundStatus.Published);
        if (block.timestamp <= r.revealDeadline) revert FedCoinRevealWindowOpen(taskId, round, r.revealDeadline);
        // One hash over (client, n_k) in registration order: a list of another length, order or
        // data cost cannot match without a keccak collision, so no separate length check.
        if (judge.registrationAcc(clients, dataCosts) != r.registrationAcc) revert FedCoinClientsMismatch(taskId, round);
        _checkReveals(taskId, round, r, reveals);
        if (reveals.length > 0) {
            if (centre.length != clients.length) revert FedCoinWrongVectorLength(centre.length, clients.length);
            Judgement memory j = _judge(taskId, round, r, reveals, centre);
            if (j.qualified > 0) {
                _settle(taskId, round, t, r, clients, dataCosts, reveals, centre, j);
                return;
            }
            _returnRevealed(taskId, t, r, reveals, j.bonds);
        }
        _reopenOrAbandon(taskId, round, t, r);
    }

    /// @notice A client collects its payout for a settled round (before the claim window closes).
    /// @dev check -> verify proof -> mark claimed -> event -> transfer, under nonReentrant.
    /// Leaf = keccak256(bytes.concat(keccak256(abi.encode(taskId, round, client, amount)))).
    /// WARNING: a contract client must accept plain ETH transfers or its claim reverts (use claimTo).
    /// @param amount the client's amount from {RoundFinalized}; @param proof its Merkle proof.
    function claim(uint256 taskId, uint256 round, uint256 amount, bytes32[] calldata proof) external nonReentrant {
        _takePayout(taskId, round, msg.sender, amount, proof);
        emit Claimed(taskId, round, msg.sender, msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Anyone submits a client's claim with the client's signature naming `to`; the
    /// payout is credited to `to` in the pull ledger (reason Payout; `to` withdraws it).
    /// @dev The client signs the EIP-191 personal message of keccak256(abi.encode("FedCoin
    /// claimTo", chainid, this, taskId, round, client, to)) ({CommitmentHash-claimToDigest},
    /// fedcoin/protocol/commitment.py `claim_to_digest`). Crediting instead of sending keeps the
    /// only transfers to msg.sender and works for any `to`, contract or not.
    /// @param signature 65 bytes (r, s, v) by `client`, low s.
    function claimTo(
        uint256 taskId,
        uint256 round,
        address client,
        uint256 amount,
        bytes32[] calldata proof,
        address to,
        bytes calldata signature
    ) external {
        if (to == address(0)) revert FedCoinZeroRecipient();
        if (judge.recover(CommitmentHash.claimToDigest(taskId, round, client, to), signature) != client) {
            revert FedCoinBadSignature(client);
        }
        _takePayout(taskId, round, client, amount, proof);
        emit Claimed(taskId, round, client, to, amount);
        _credit(to, taskId, amount, CreditReason.Payout);
    }

    /// @notice After a round's claim window (finalizedAt + claimWindow), anyone may credit its
    /// unclaimed payouts to the requester (reason Expired); later claims revert.
    function reclaimExpired(uint256 taskId, uint256 round) external {
        Round storage r = _rounds[taskId][round];
        if (r.status != RoundStatus.Finalized) revert FedCoinWrongRoundStatus(taskId, round, r.status);
        Task storage t = _tasks[taskId];
        uint256 expiry = uint256(r.finalizedAt) + t.claimWindow;
        if (block.timestamp <= expiry) revert FedCoinClaimNotExpired(taskId, round, expiry);
        uint256 amount = r.unclaimed;
        if (amount == 0) revert FedCoinNothingToReclaim(taskId, round);
        r.unclaimed = 0;
        t.unclaimed -= amount;
        _releaseUnclaimed(amount);
        emit PayoutsExpired(taskId, round, amount);
        _credit(t.requester, taskId, amount, CreditReason.Expired);
    }

    // ------------------------------------------------------------------ views and pure helpers

    /// @notice A task's storage words: the {Task} struct as Solidity lays it out (packed fields,
    /// slot by slot). fedcoin.chain decodes them with the storage layout shipped in the artifact;
    /// a raw getter because ABI-encoding two 20-field structs would cost 2 KB of the 24 KB limit.
    function getTask(uint256 taskId) external view returns (bytes32[TASK_WORDS] memory w) {
        Task storage t = _tasks[taskId];
        assembly ("memory-safe") {
            for { let i := 0 } lt(i, TASK_WORDS) { i := add(i, 1) } { mstore(add(w, mul(i, 0x20)), sload(add(t.slot, i))) }
        }
    }

    /// @notice A round's storage words: the {Round} struct as Solidity lays it out (see {getTask}).
    function getRound(uint256 taskId, uint256 round) external view returns (bytes32[ROUND_WORDS] memory w) {
        Round storage r = _rounds[taskId][round];
        assembly ("memory-safe") {
            for { let i := 0 } lt(i, ROUND_WORDS) { i := add(i, 1) } { mstore(add(w, mul(i, 0x20)), sload(add(r.slot, i))) }
        }
    }

    /// @notice A miner's commitment in an attempt of a round (zero hash: none, or displaced).
    function getCommitment(uint256 taskId, uint256 round, uint256 attempt, address miner)
        external
        view
        returns (Commitment memory)
    {
        return _commits[taskId][round][attempt][miner];
    }

    /// @notice The live committers of an attempt (a displaced one is replaced in its slot).
    function getCommitters(uint256 taskId, uint256 round, uint256 attempt) external view returns (address[] memory) {
        return _committers[taskId][round][attempt];
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

    /// @notice Whether registration index `index` of the round was excluded by the server.
    function isExcluded(uint256 taskId, uint256 round, uint256 index) external view returns (bool) {
        return (_excluded[taskId][round][index >> 8] >> (index & 255)) & 1 == 1;
    }

    /// @notice When the task's current round counts as stalled ({PoSapMath-stalledAfter}).
    function stalledAfter(uint256 taskId) public view returns (uint256) {
        Task storage t = _tasks[taskId];
        return PoSapMath.stalledAfter(t.roundStartedAt, t.registrationWindow, t.commitWindow, t.revealWindow);
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

    // ------------------------------------------------------------------ internals

    /// @dev The task's D, p and windows within the contract-wide bounds ({PoSapJudge-checkConfig}).
    function _checkConfig(TaskConfig calldata cfg) private view {
        uint256[4] memory windows = [cfg.registrationWindow, cfg.commitWindow, cfg.revealWindow, cfg.claimWindow];
        uint256 code = judge.checkConfig(cfg.difficulty, cfg.p, cfg.relative, windows, cfg.payment, cfg.maxDataCost);
        if (code == 7) revert FedCoinBadPayment(cfg.payment, cfg.maxDataCost);
        if (code == 1) revert FedCoinBadDifficulty(cfg.difficulty, cfg.relative);
        if (code == 2) revert FedCoinBadP(cfg.p);
        if (code >= 3) revert FedCoinBadWindow(uint8(code - 3), windows[code - 3]);
    }

    /// @dev The client-list Merkle root from {PoSapJudge-clientsRoot}, rejecting an unsorted,
    /// duplicated or forbidden entry.
    function _clientsRoot(address[] calldata clients, address server) private view returns (bytes32 root) {
        uint256 code;
        uint256 at;
        (root, code, at) = judge.clientsRoot(clients, msg.sender, server);
        if (code == 1) revert FedCoinForbiddenClient(clients[at]);
        if (code == 2) revert FedCoinDuplicateClient(clients[at]);
        if (code == 3) revert FedCoinClientsNotSorted(at);
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

    function _emitPublished(uint256 taskId, uint256 round, string calldata specLocator, uint32[] calldata excluded)
        private
    {
        Round storage r = _rounds[taskId][round];
        emit ShapleyTaskPublished(
            taskId,
            round,
            r.specHash,
            specLocator,
            r.commitDeadline,
            r.revealDeadline,
            r.difficulty,
            r.aggregation,
            r.registered,
            excluded
        );
    }

    /// @dev Validates the exclusion list (strictly ascending, < registered, not all) and sets its bits.
    function _storeExclusions(uint256 taskId, uint256 round, uint256 registered, uint32[] calldata excluded) private {
        uint256 n = excluded.length;
        if (n >= registered && n > 0) revert FedCoinBadExclusions(registered - 1);
        for (uint256 i; i < n; ++i) {
            uint256 x = excluded[i];
            if (x >= registered || (i > 0 && x <= excluded[i - 1])) revert FedCoinBadExclusions(i);
            _excluded[taskId][round][x >> 8] |= 1 << (x & 255);
        }
    }

    /// @dev Range check of a revealed vector and, when the round has exclusions, zero at each
    /// excluded index (bitmap read one 256-bit word at a time).
    function _checkValues(uint256 taskId, uint256 round, bool hasExclusions, int256[] calldata values) private view {
        uint256 word = 0;
        for (uint256 j; j < values.length; ++j) {
            int256 v = values[j];
            if (v > MAX_ABS_VALUE || v < -MAX_ABS_VALUE) revert FedCoinValueOutOfRange(j, v);
            if (hasExclusions) {
                if (j & 255 == 0) word = _excluded[taskId][round][j >> 8];
                if (v != 0 && (word >> (j & 255)) & 1 == 1) revert FedCoinExcludedValue(j, v);
            }
        }
    }

    /// @dev A full attempt: the smallest held bond (ties: the latest commit) is displaced when
    /// msg.value >= smallest + minBond; its bond is credited back and its commitment deleted.
    /// Bounded: `live` has at most MAX_COMMITS = 64 entries.
    function _displace(uint256 taskId, uint256 round, uint256 attempt, Task storage t, Round storage r, uint256 cap)
        private
    {
        mapping(address => Commitment) storage cs = _commits[taskId][round][attempt];
        address[] storage live = _committers[taskId][round][attempt];
        uint256 slot = 0;
        uint256 smallest = type(uint256).max;
        uint256 latest = 0;
        for (uint256 i; i < live.length; ++i) {
            Commitment storage x = cs[live[i]];
            uint256 b = x.bond;
            if (b < smallest || (b == smallest && x.seq > latest)) {
                smallest = b;
                latest = x.seq;
                slot = i;
            }
        }
        if (msg.value < smallest + minBond) revert FedCoinRoundFull(taskId, round, cap, smallest + minBond);
        address out = live[slot];
        _committers[taskId][round][attempt][slot] = msg.sender;
        delete cs[out];
        r.bondsHeld -= smallest;
        t.bonds -= smallest;
        _releaseBonds(smallest);
        emit CommitDisplaced(taskId, round, out, attempt, msg.sender, smallest);
        _credit(out, taskId, smallest, CreditReason.BondReturned);
    }

    /// @dev Checks `reveals` against the attempt's reveal count and rolling hash.
    function _checkReveals(uint256 taskId, uint256 round, Round storage r, RevealData[] calldata reveals)
        private
        view
    {
        if (reveals.length != r.revealCount) revert FedCoinRevealsMismatch(taskId, round);
        bytes32 acc = bytes32(0);
        uint256 k = r.registered;
        for (uint256 i; i < reveals.length; ++i) {
            RevealData calldata d = reveals[i];
            if (d.values.length != k) revert FedCoinRevealsMismatch(taskId, round);
            acc = CommitmentHash.revealLink(acc, d.miner, d.seq, d.iterations, CommitmentHash.vectorHash(d.values));
        }
        if (acc != r.revealAcc) revert FedCoinRevealsMismatch(taskId, round);
    }

    /// @dev Reads each reveal's bond and commit time, has {PoSapJudge-judge} verify the centre and
    /// judge every reveal, and records the qualifying stake, the representative (largest
    /// qualifying bond, ties: lowest seq) and the latest qualifying commit time.
    function _judge(
        uint256 taskId,
        uint256 round,
        Round storage r,
        RevealData[] calldata reveals,
        int256[] calldata centre
    ) private view returns (Judgement memory j) {
        uint256 m = reveals.length;
        j.bonds = new uint256[](m);
        uint256[] memory at = new uint256[](m);
        mapping(address => Commitment) storage cs = _commits[taskId][round][r.attempt];
        for (uint256 i; i < m; ++i) {
            Commitment storage c = cs[reveals[i].miner];
            j.bonds[i] = c.bond;
            at[i] = c.committedAt;
        }
        _callJudge(Rule(r.difficulty, r.p, r.relative), reveals, centre, j);
        for (uint256 i; i < m; ++i) {
            if (j.verdicts[i] != uint8(Verdict.Qualified)) continue;
            if (at[i] > j.lastQualifiedAt) j.lastQualifiedAt = at[i];
            uint256 b = j.bonds[i];
            if (j.qualified == 0 || b > j.bonds[j.best] || (b == j.bonds[j.best] && reveals[i].seq < reveals[j.best].seq)) {
                j.best = i;
            }
            j.qualified += 1;
            j.qualifiedStake += b;
        }
    }

    function _callJudge(Rule memory rule, RevealData[] calldata reveals, int256[] calldata centre, Judgement memory j)
        private
        view
    {
        Verdicts memory v = judge.judge(reveals, j.bonds, centre, rule);
        if (!v.ok) revert FedCoinBadCentre(v.bad);
        j.dists = v.dists;
        j.verdicts = v.codes;
    }

    /// @dev Settles a round with consensus: allocates its prices (clients, server, qualifying
    /// miners, the requester's dust), returns or forfeits every bond, appends the PoSap block,
    /// adjusts the task's D and moves the task on.
    function _settle(
        uint256 taskId,
        uint256 round,
        Task storage t,
        Round storage r,
        address[] calldata clients,
        uint256[] calldata dataCosts,
        RevealData[] calldata reveals,
        int256[] calldata centre,
        Judgement memory j
    ) private {
        Settlement memory s = Settlement(0, 0, 0, 0, 0, 0, bytes32(0), bytes32(0), bytes32(0), address(0));
        (s.train, s.com, s.sap) = roundPrices(taskId, round);
        s.winner = reveals[j.best].miner;
        s.winnerHash = CommitmentHash.vectorHash(reveals[j.best].values);
        s.centreHash = CommitmentHash.vectorHash(centre);
        uint256[] memory amounts = _payouts(taskId, round, t.payment, clients, dataCosts, centre, s);
        _allocate(taskId, round, t, r, reveals, j, s);
        _record(taskId, round, r, centre, amounts, s);
        if (j.qualified >= 2) _adjustDifficulty(taskId, round, t, j.lastQualifiedAt - r.publishedAt);
        _advance(taskId, t);
    }

    /// @dev The money of a settled round: escrow to clients (unclaimed), server, miners and the
    /// requester; every bond of the round returned or forfeited to the requester.
    function _allocate(
        uint256 taskId,
        uint256 round,
        Task storage t,
        Round storage r,
        RevealData[] calldata reveals,
        Judgement memory j,
        Settlement memory s
    ) private {
        r.payoutsRoot = s.root;
        r.status = RoundStatus.Finalized;
        r.finalizedAt = uint64(block.timestamp);
        r.unclaimed = s.paid;
        t.escrow -= s.train + s.com + s.sap;
        _releaseEscrow(s.train + s.com + s.sap);
        t.unclaimed += s.paid;
        _addUnclaimed(s.paid);
        _credit(t.server, taskId, s.com, CreditReason.ComPrice);
        s.refund += s.sap - _payMiners(taskId, round, t, r, reveals, j, s.sap);
        s.forfeited = r.forfeited;
        r.forfeited = 0;
        t.bonds -= s.forfeited;
        _releaseBonds(s.forfeited);
        _credit(t.requester, taskId, s.refund, CreditReason.Refund);
        _credit(t.requester, taskId, s.forfeited, CreditReason.Forfeited);
    }

    /// @dev Appends the PoSap block and emits {RoundFinalized}.
    function _record(
        uint256 taskId,
        uint256 round,
        Round storage r,
        int256[] calldata centre,
        uint256[] memory amounts,
        Settlement memory s
    ) private {
        uint256 height = _appendBlock(taskId, round, r.difficulty, _tasks[taskId].payment, s);
        emit RoundFinalized(taskId, round, s.winner, height, s.root, centre, amounts);
    }

    /// @dev Judged reveals: qualifiers get bond + sap * bond / qualifiedStake, the middle band its
    /// bond, slashed reveals nothing; every bond of the attempt leaves the bond bucket and what is
    /// not returned (slashed and unrevealed) is added to r.forfeited. Returns SapPrice paid.
    function _payMiners(
        uint256 taskId,
        uint256 round,
        Task storage t,
        Round storage r,
        RevealData[] calldata reveals,
        Judgement memory j,
        uint256 sap
    ) private returns (uint256 paid) {
        uint256 returned = 0;
        for (uint256 i; i < reveals.length; ++i) {
            address miner = reveals[i].miner;
            uint256 bond = j.bonds[i];
            uint256 reward = 0;
            if (j.verdicts[i] == uint8(Verdict.Qualified)) {
                reward = PoSapMath.sapShare(sap, bond, j.qualifiedStake);
                paid += reward;
            }
            if (j.verdicts[i] != uint8(Verdict.Slashed)) {
                returned += bond;
                _credit(miner, taskId, bond, CreditReason.BondReturned);
            }
            _credit(miner, taskId, reward, CreditReason.SapPrice);
            emit Judged(taskId, round, miner, j.dists[i], bond, Verdict(j.verdicts[i]), reward);
        }
        uint256 held = r.bondsHeld;
        r.bondsHeld = 0;
        r.forfeited += held - returned;
        t.bonds -= returned;
        _releaseBonds(returned);
    }

    /// @dev No consensus: every revealed bond is credited back; unrevealed ones are forfeited.
    function _returnRevealed(
        uint256 taskId,
        Task storage t,
        Round storage r,
        RevealData[] calldata reveals,
        uint256[] memory bonds
    ) private {
        uint256 returned = 0;
        for (uint256 i; i < reveals.length; ++i) {
            returned += bonds[i];
            _credit(reveals[i].miner, taskId, bonds[i], CreditReason.BondReturned);
        }
        r.bondsHeld -= returned;
        t.bonds -= returned;
        _releaseBonds(returned);
    }

    /// @dev Client amounts from {PoSapJudge-payouts} under the task's rule (the round's exclusion
    /// bitmap words go along for `data-cost`); the dust (or all of train when no client has
    /// weight) goes to s.refund (the requester); s.root is the payout root (zero when none is paid).
    function _payouts(
        uint256 taskId,
        uint256 round,
        uint8 payment,
        address[] calldata clients,
        uint256[] calldata dataCosts,
        int256[] calldata centre,
        Settlement memory s
    ) private view returns (uint256[] memory amounts) {
        uint256[] memory words = new uint256[]((clients.length + 255) >> 8);
        for (uint256 i; i < words.length; ++i) words[i] = _excluded[taskId][round][i];
        (amounts, s.paid, s.root) =
            judge.payouts(Payout(taskId, round, payment, s.train), clients, dataCosts, words, centre);
        s.refund = s.train - s.paid;
    }

    /// @dev Appends the PoSap block record of a settled round and emits {PoSapBlock}.
    function _appendBlock(uint256 taskId, uint256 round, uint256 d, uint8 payment, Settlement memory s)
        private
        returns (uint256 height)
    {
        height = blockCount;
        bytes32 prev = lastRecordHash;
        bytes32 recordHash =
            PoSapMath.recordHash(height, taskId, round, s.winner, s.centreHash, s.winnerHash, prev, d, s.root, payment);
        _blocks[height] = BlockRecord({
            taskId: uint64(taskId),
            round: uint32(round),
            winner: s.winner,
            payment: payment,
            centreHash: s.centreHash,
            winnerHash: s.winnerHash,
            prevHash: prev,
            difficulty: d,
            payoutsRoot: s.root,
            recordHash: recordHash
        });
        blockCount = height + 1;
        lastRecordHash = recordHash;
        emit PoSapBlock(height, taskId, round, s.winner, payment, s.centreHash, s.winnerHash, prev, d, s.root, recordHash);
    }

    /// @dev Sets the task's D by {PoSapMath-nextDifficulty} and emits {DifficultyAdjusted}.
    function _adjustDifficulty(uint256 taskId, uint256 round, Task storage t, uint256 elapsed) private {
        uint256 old = t.difficulty;
        uint256 next =
            PoSapMath.nextDifficulty(old, elapsed, targetBlockTime, PoSapMath.difficultyCeiling(t.relative));
        t.difficulty = next;
        emit DifficultyAdjusted(taskId, round, old, next, elapsed);
    }

    /// @dev No consensus: re-open the round with D relaxed and fresh windows, or — after
    /// MAX_REOPENS re-opens, or once past {stalledAfter} — abandon it (Train, Com, Sap and the
    /// forfeited bonds to the requester) and move the task on (past the bound: end it, refunding
    /// the rest).
    function _reopenOrAbandon(uint256 taskId, uint256 round, Task storage t, Round storage r) private {
        // Unrevealed bonds of this attempt are forfeited to the round.
        r.forfeited += r.bondsHeld;
        r.bondsHeld = 0;
        bool stalled = block.timestamp > stalledAfter(taskId);
        if (r.attempt < MAX_REOPENS && !stalled) {
            uint256 d = PoSapMath.relaxedDifficulty(r.difficulty, PoSapMath.difficultyCeiling(r.relative));
            r.difficulty = d;
            r.attempt += 1;
            r.commitCount = 0;
            r.nextSeq = 0;
            r.revealCount = 0;
            r.revealAcc = bytes32(0);
            r.commitDeadline = uint64(block.timestamp + t.commitWindow);
            r.revealDeadline = uint64(block.timestamp + t.commitWindow + t.revealWindow);
            emit RoundReopened(taskId, round, r.attempt, d, r.commitDeadline, r.revealDeadline, r.forfeited);
            return;
        }
        (uint256 train, uint256 com, uint256 sap) = roundPrices(taskId, round);
        r.status = RoundStatus.Abandoned;
        uint256 forfeited = r.forfeited;
        r.forfeited = 0;
        t.escrow -= train + com + sap;
        _releaseEscrow(train + com + sap);
        t.bonds -= forfeited;
        _releaseBonds(forfeited);
        _credit(t.requester, taskId, train + com + sap, CreditReason.Refund);
        _credit(t.requester, taskId, forfeited, CreditReason.Forfeited);
        emit RoundAbandoned(taskId, round, train + com + sap, forfeited);
        if (stalled) _refundRest(taskId, t, true, false);
        else _advance(taskId, t);
    }

    /// @dev Moves the task to its next round (starting its registration period), or completes
    /// it after the last.
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

    /// @dev Ends the task, crediting its remaining escrow (and, for a stalled round, the round's
    /// forfeited bonds) to the requester.
    function _refundRest(uint256 taskId, Task storage t, bool accepted, bool stalled) private {
        if (stalled) {
            Round storage r = _rounds[taskId][t.currentRound];
            uint256 forfeited = r.forfeited;
            r.forfeited = 0;
            t.bonds -= forfeited;
            _releaseBonds(forfeited);
            _credit(t.requester, taskId, forfeited, CreditReason.Forfeited);
        }
        uint256 amount = t.escrow;
        t.escrow = 0;
        t.status = TaskStatus.Refunded;
        _releaseEscrow(amount);
        _credit(t.requester, taskId, amount, CreditReason.Refund);
        emit TaskRefunded(taskId, t.requester, amount, accepted);
    }

    /// @dev Checks a client's payout leaf and marks it claimed, taking it out of the unclaimed buckets.
    function _takePayout(uint256 taskId, uint256 round, address client, uint256 amount, bytes32[] calldata proof)
        private
    {
        if (amount == 0) revert FedCoinNothingToClaim();
        Round storage r = _rounds[taskId][round];
        if (r.status != RoundStatus.Finalized) revert FedCoinWrongRoundStatus(taskId, round, r.status);
        Task storage t = _tasks[taskId];
        uint256 expiry = uint256(r.finalizedAt) + t.claimWindow;
        if (block.timestamp > expiry) revert FedCoinClaimExpired(taskId, round, expiry);
        if (_claimed[taskId][round][client]) revert FedCoinAlreadyClaimed(taskId, round, client);
        if (!MerkleTree.verify(proof, r.payoutsRoot, MerkleTree.payoutLeaf(taskId, round, client, amount))) {
            revert FedCoinInvalidProof(taskId, round, client, amount);
        }
        _claimed[taskId][round][client] = true;
        r.unclaimed -= amount;
        t.unclaimed -= amount;
        _releaseUnclaimed(amount);
    }

    /// @dev Credits `amount` (if any) to `account` in the pull ledger and emits {Credited}.
    function _credit(address account, uint256 taskId, uint256 amount, CreditReason reason) private {
        if (amount > 0) {
            _addCredit(account, amount);
            emit Credited(account, taskId, amount, reason);
        }
    }
}
