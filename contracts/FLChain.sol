// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregateJury} from "./AggregateJury.sol";
import {FedCoin} from "./FedCoin.sol";
import {FedCoinLedger} from "./FedCoinLedger.sol";
import {CommitmentHash} from "./lib/CommitmentHash.sol";
import {MerkleTree} from "./lib/MerkleTree.sol";

/// @title FLChain: trainers with deposits, misbehaviour reports, reliability and a model marketplace beside FedCoin
/// @notice The parts of FLChain (Bao et al.) that FedCoin lacks, as a second contract that reads
/// FedCoin's state and never writes it: a trainer registry whose deposits a task can require
/// and freeze (Table I), collaboration intentions for the federation allocation (Algorithm 1,
/// computed off chain by fedcoin/flchain/federation.py), misbehaviour reports with rewards and
/// compensation (Tables III and IV), a reliability record per trainer, and a marketplace for a
/// finished task's model whose revenue is claimed through the payout Merkle path (Table II).
/// It holds its money in the same ledger as FedCoin (its own instance of {FedCoinLedger}):
/// deposits in `bonds`, unclaimed sale revenue in `unclaimed`, everything owed in `credits`,
/// so address(this).balance == liabilities() holds here too.
/// @dev Judgements are deterministic functions of FedCoin's state where they can be: an update
/// is invalid or unavailable exactly when the server excluded it in a round that finalized
/// (every miner re-checks the exclusions before committing, so a finalized round's exclusions
/// are the miners' consensus, never one party's word). Only "unqualified" is judged by an
/// authority (`auth`, the paper's AUTH), which takes that report's fee. Mirrored by
/// fedcoin/flchain/rules.py (reliability, the sale split, the confiscation split).
contract FLChain is FedCoinLedger {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant PPM = 1_000_000;
    uint8 internal constant TASK_CREATED = 1;
    uint8 internal constant TASK_ACCEPTED = 2;
    uint8 internal constant TASK_COMPLETED = 3;
    uint8 internal constant TASK_REFUNDED = 4;
    uint8 internal constant ROUND_FINALIZED = 2;
    uint8 internal constant MAX_SCORE = 5;
    /// @notice FedCoin's MAX_ROUNDS bounds listModel's loop over a task's rounds.
    uint256 internal constant MAX_ROUNDS = 1000;

    enum TrainerStatus {
        None,
        Qualified,
        Unqualified,
        Suspended
    }

    enum ModelStatus {
        Unavailable,
        OnSale,
        Problematic
    }

    enum ReportKind {
        InvalidUpdate,
        Unqualified,
        Aggregate
    }

    enum ReportState {
        None,
        Pending,
        Upheld,
        Rejected
    }

    /// @notice One trainer's record (the paper's Table I, DP). `deposit` is all it holds here,
    /// free and frozen; `epoch` counts confiscations, so a freeze from before one is void.
    struct Trainer {
        uint128 deposit;
        uint128 frozen;
        TrainerStatus status;
        bool available;
        uint32 version;
        uint32 epoch;
        uint64 height; // block of this version of the record
        uint64 prevHeight; // block of the previous version (0 for the first)
        uint32 rounds; // recorded rounds it took part in
        uint32 positive; // of those, rounds with a positive consensus Shapley value
        uint32 upheld; // upheld reports against it
        uint32 models; // models listed that it trained
        uint32 evalCount;
        uint64 evalSum;
        bytes32 dataHash; // keccak of the data resource description (JSON at the locator)
    }

    struct Join {
        uint128 amount;
        uint64 joinedAt; // block number; miners exclude updates registered before it
        uint32 epoch;
        bool released;
    }

    struct Report {
        ReportKind kind;
        ReportState state;
        address reporter;
        address accused;
        uint64 taskId;
        uint32 round;
        uint128 fee;
    }

    /// @notice A listed model (Table II, FLM). The split is fixed at listing: each sale owes
    /// trainer j `amount_j` (the leaf of `splitRoot`) and the lister `dust`.
    struct Model {
        uint64 taskId;
        ModelStatus status;
        address lister;
        uint128 price;
        uint128 dust;
        uint64 prevModel;
        uint64 height;
        uint32 sales;
        uint32 evalCount;
        uint64 evalSum;
        bytes32 trainersHash;
        bytes32 splitRoot;
        bytes32 modelHash;
    }

    struct Request {
        address requester;
        uint32 seats;
        uint64 deadline;
        bytes32 descHash;
    }

    /// @notice FedCoin, whose tasks, rounds and blocks FLChain reads.
    FedCoin public immutable fedcoin;
    /// @notice The miners' verdicts on global models, for Aggregate reports.
    AggregateJury public immutable jury;
    /// @notice The authority that judges "unqualified" reports (the paper's AUTH).
    address public immutable auth;
    /// @notice The least deposit a trainer registers with (the paper's d).
    uint256 public immutable minDeposit;
    /// @notice The fee a report costs (f).
    uint256 public immutable reportFee;
    /// @notice The fee a collaboration intention costs (f_CI), paid to `auth`.
    uint256 public immutable intentionFee;
    /// @notice Share of a confiscated deposit for the reporter (r = deposit * rewardBps / BPS).
    uint256 public immutable rewardBps;
    /// @notice Share of a confiscated deposit for the round's honest trainers (cp, split equally).
    uint256 public immutable compensationBps;

    mapping(address => Trainer) private _trainers;
    mapping(uint256 => uint256) public requiredDeposit; // per FedCoin task; 0: none
    mapping(uint256 => uint256) public taskRequest; // per FedCoin task: federation request id + 1; 0: none
    mapping(uint256 => mapping(address => Join)) private _joins;
    mapping(uint256 => bool) public problematic; // per FedCoin task: an upheld report
    mapping(uint256 => mapping(uint256 => bool)) public recorded; // task, round
    mapping(uint256 => mapping(address => uint256)) public contribution; // task, trainer: sum of positive S
    mapping(uint256 => uint256) public taskContribution;
    mapping(bytes32 => bool) private _reported; // keccak(kind, task, round, accused)
    Report[] private _reports;
    Model[] private _models;
    mapping(uint256 => mapping(address => bool)) public bought;
    mapping(uint256 => mapping(address => bool)) private _evaluated;
    mapping(uint256 => mapping(address => uint256)) public claimedSales;
    Request[] private _requests;

    // ------------------------------------------------------------------ errors

    error FLChainBadParameter(string name);
    error FLChainBadDeposit(uint256 value, uint256 minimum);
    error FLChainBadFee(uint256 value, uint256 fee);
    error FLChainAlreadyRegistered(address trainer);
    error FLChainNotTrainer(address account);
    error FLChainWrongStatus(address trainer, TrainerStatus status);
    error FLChainDepositFrozen(uint256 amount, uint256 free);
    error FLChainNotRequester(uint256 taskId, address caller);
    error FLChainNotServer(uint256 taskId, address caller);
    error FLChainWrongTaskStatus(uint256 taskId, uint8 status);
    error FLChainRequirementSet(uint256 taskId);
    error FLChainNoRequirement(uint256 taskId);
    error FLChainAlreadyJoined(uint256 taskId, address trainer);
    error FLChainNotJoined(uint256 taskId, address trainer);
    error FLChainNothingToRelease(uint256 taskId, address trainer);
    error FLChainRoundNotFinalized(uint256 taskId, uint256 round);
    error FLChainClientsMismatch(uint256 taskId, uint256 round);
    error FLChainBadIndex(uint256 index, uint256 count);
    error FLChainAlreadyReported(bytes32 key);
    error FLChainNotAuth(address caller);
    error FLChainReportNotPending(uint256 reportId);
    error FLChainWrongBlock(uint256 height);
    error FLChainCentreMismatch(uint256 taskId, uint256 round);
    error FLChainAlreadyRecorded(uint256 taskId, uint256 round);
    error FLChainRoundNotRecorded(uint256 taskId, uint256 round);
    error FLChainBadTrainers(uint256 index);
    error FLChainNoContributors(uint256 taskId);
    error FLChainUnknownModel(uint256 modelId);
    error FLChainNotForSale(uint256 modelId, ModelStatus status);
    error FLChainAlreadyBought(uint256 modelId, address buyer);
    error FLChainNotBuyer(uint256 modelId, address caller);
    error FLChainAlreadyEvaluated(uint256 modelId, address buyer);
    error FLChainBadScore(uint256 score);
    error FLChainInvalidProof(uint256 modelId, address trainer, uint256 amount);
    error FLChainNothingToClaim(uint256 modelId, address trainer);
    error FLChainUnknownRequest(uint256 requestId);
    error FLChainIntentionClosed(uint256 requestId, uint256 deadline);
    error FLChainIntentionsOpen(uint256 requestId, uint256 deadline);
    error FLChainNotLister(uint256 modelId, address caller);
    error FLChainSpecMismatch(uint256 taskId, uint256 round);
    error FLChainBadEvidence(uint256 at);
    error FLChainUnverifiedReason(uint256 index);

    // ------------------------------------------------------------------ events

    /// @notice A trainer's record, new (version 1) or updated (it points to the previous one).
    event TrainerRecord(
        address indexed trainer, uint32 version, uint64 prevHeight, bytes32 dataHash, string dataLocator
    );
    event DepositChanged(address indexed trainer, uint256 deposit, uint256 frozen);
    event AvailabilitySet(address indexed trainer, bool available);
    event TrainerStatusChanged(address indexed trainer, TrainerStatus status);
    event TrainersRequired(uint256 indexed taskId, uint256 minDeposit, uint256 request);
    event Joined(uint256 indexed taskId, address indexed trainer, uint256 amount);
    event Released(uint256 indexed taskId, address indexed trainer, uint256 amount);
    event ReportFiled(
        uint256 indexed reportId,
        ReportKind kind,
        address indexed reporter,
        address indexed accused,
        uint256 taskId,
        uint256 round,
        uint256 fee
    );
    /// @notice A report decided. Upheld: `confiscated` split into `reward` (to the reporter, besides
    /// its fee back for an InvalidUpdate), `compensation` (each of `compensated` honest trainers)
    /// and `rest` (to the task's requester, or to auth for Unqualified).
    event ReportDecided(
        uint256 indexed reportId,
        bool upheld,
        uint256 confiscated,
        uint256 reward,
        uint256 compensation,
        uint256 compensated,
        uint256 rest
    );
    event CreditedBy(address indexed account, uint256 amount, uint256 indexed reportId);
    event RoundRecorded(uint256 indexed taskId, uint256 indexed round, uint256 trainers, uint256 positive);
    event ModelListed(
        uint256 indexed modelId,
        uint256 indexed taskId,
        address indexed lister,
        uint256 price,
        uint256 prevModel,
        bytes32 modelHash,
        string locator,
        address[] trainers,
        uint256[] amounts,
        uint256 dust
    );
    event ModelStatusChanged(uint256 indexed modelId, ModelStatus status);
    event Bought(uint256 indexed modelId, address indexed buyer, uint256 price);
    event Evaluated(uint256 indexed modelId, address indexed buyer, uint256 score);
    event SalesClaimed(uint256 indexed modelId, address indexed trainer, uint256 amount);
    event RequestPublished(
        uint256 indexed requestId, address indexed requester, uint256 seats, uint256 deadline, bytes32 descHash, string locator
    );
    event IntentionPosted(
        uint256 indexed requestId, address indexed trainer, uint256 expectedPrice, uint256 expectedIncome, uint256 cost
    );

    /// @param fedcoin_ the FedCoin deployment this registry serves.
    /// @param jury_ the AggregateJury reading the same FedCoin.
    /// @param auth_ the authority for "unqualified" reports.
    /// @param minDeposit_ d; must make the reward exceed the fee: d * rewardBps / BPS > reportFee.
    constructor(
        address fedcoin_,
        address jury_,
        address auth_,
        uint256 minDeposit_,
        uint256 reportFee_,
        uint256 intentionFee_,
        uint256 rewardBps_,
        uint256 compensationBps_
    ) {
        if (fedcoin_.code.length == 0) revert FLChainBadParameter("fedcoin");
        if (jury_.code.length == 0) revert FLChainBadParameter("jury");
        if (auth_ == address(0)) revert FLChainBadParameter("auth");
        if (minDeposit_ == 0 || minDeposit_ > type(uint128).max) revert FLChainBadParameter("minDeposit");
        if (rewardBps_ + compensationBps_ > BPS) revert FLChainBadParameter("split");
        if (minDeposit_ * rewardBps_ / BPS <= reportFee_) revert FLChainBadParameter("reward");
        fedcoin = FedCoin(fedcoin_);
        jury = AggregateJury(jury_);
        auth = auth_;
        minDeposit = minDeposit_;
        reportFee = reportFee_;
        intentionFee = intentionFee_;
        rewardBps = rewardBps_;
        compensationBps = compensationBps_;
    }

    // ------------------------------------------------------------------ registry

    /// @notice Register as a trainer with a deposit of at least `minDeposit` (msg.value).
    /// @param dataHash keccak256 of the data resource description (features, samples, labels).
    /// @param dataLocator where that JSON document is (a content-store locator).
    function register(bytes32 dataHash, string calldata dataLocator) external payable {
        Trainer storage tr = _trainers[msg.sender];
        if (tr.status != TrainerStatus.None) revert FLChainAlreadyRegistered(msg.sender);
        if (msg.value < minDeposit || msg.value > type(uint128).max) revert FLChainBadDeposit(msg.value, minDeposit);
        tr.status = TrainerStatus.Qualified;
        tr.available = true;
        tr.version = 1;
        tr.height = uint64(block.number);
        tr.dataHash = dataHash;
        tr.deposit = uint128(msg.value);
        _addBonds(msg.value);
        emit TrainerRecord(msg.sender, 1, 0, dataHash, dataLocator);
        emit DepositChanged(msg.sender, msg.value, 0);
    }

    /// @notice Publish a new version of the caller's record; it points to the previous one.
    function updateRecord(bytes32 dataHash, string calldata dataLocator) external {
        Trainer storage tr = _trainer(msg.sender);
        tr.prevHeight = tr.height;
        tr.height = uint64(block.number);
        tr.version += 1;
        tr.dataHash = dataHash;
        emit TrainerRecord(msg.sender, tr.version, tr.prevHeight, dataHash, dataLocator);
    }

    /// @notice Say whether the caller takes new work (intentions need it).
    function setAvailable(bool available) external {
        _trainer(msg.sender).available = available;
        emit AvailabilitySet(msg.sender, available);
    }

    /// @notice Add msg.value to the caller's deposit. A suspended trainer cannot.
    function addDeposit() external payable {
        Trainer storage tr = _trainer(msg.sender);
        if (tr.status == TrainerStatus.Suspended) revert FLChainWrongStatus(msg.sender, tr.status);
        uint256 d = tr.deposit + msg.value;
        if (msg.value == 0 || d > type(uint128).max) revert FLChainBadDeposit(msg.value, 1);
        tr.deposit = uint128(d);
        _addBonds(msg.value);
        emit DepositChanged(msg.sender, d, tr.frozen);
    }

    /// @notice Move `amount` of the caller's free deposit to its credit (then {withdraw}).
    /// What stays must be 0 or at least `minDeposit`.
    function withdrawDeposit(uint256 amount) external {
        Trainer storage tr = _trainer(msg.sender);
        uint256 free = tr.deposit - tr.frozen;
        if (amount == 0 || amount > free) revert FLChainDepositFrozen(amount, free);
        uint256 left = tr.deposit - amount;
        if (left != 0 && left < minDeposit) revert FLChainBadDeposit(left, minDeposit);
        tr.deposit = uint128(left);
        _releaseBonds(amount);
        _addCredit(msg.sender, amount);
        emit DepositChanged(msg.sender, left, tr.frozen);
        emit CreditedBy(msg.sender, amount, type(uint256).max);
    }

    // ------------------------------------------------------------------ tasks

    /// @notice The requester of FedCoin task `taskId` requires its clients to be trainers who
    /// froze `deposit` for it. Only before the server accepts, once. Miners then exclude the
    /// update of any client that had not joined ({join}) when it registered.
    /// @param request 0, or the id + 1 of the requester's federation request whose allocation
    /// the task's client list is (its intention deadline must have passed, so the allocation is
    /// final; `fedcoin audit` recomputes it from the intentions and reliabilities as of this call).
    function requireTrainers(uint256 taskId, uint256 deposit, uint256 request) external {
        (address requester,, uint8 status) = _task(taskId);
        if (msg.sender != requester) revert FLChainNotRequester(taskId, msg.sender);
        if (status != TASK_CREATED) revert FLChainWrongTaskStatus(taskId, status);
        if (requiredDeposit[taskId] != 0) revert FLChainRequirementSet(taskId);
        if (deposit < minDeposit || deposit > type(uint128).max) revert FLChainBadDeposit(deposit, minDeposit);
        if (request != 0) {
            if (request > _requests.length) revert FLChainUnknownRequest(request - 1);
            Request storage q = _requests[request - 1];
            if (q.requester != msg.sender) revert FLChainNotRequester(taskId, msg.sender);
            if (block.timestamp < q.deadline) revert FLChainIntentionsOpen(request - 1, q.deadline);
        }
        requiredDeposit[taskId] = deposit;
        taskRequest[taskId] = request;
        emit TrainersRequired(taskId, deposit, request);
    }

    /// @notice Freeze the task's required deposit out of the caller's free deposit for the task.
    /// The task's server joins first (its deposit is what an Aggregate report confiscates), so
    /// no trainer's update is valid in a task whose server has not put a deposit at stake.
    function join(uint256 taskId) external {
        uint256 need = requiredDeposit[taskId];
        if (need == 0) revert FLChainNoRequirement(taskId);
        (, address server, uint8 status) = _task(taskId);
        if (status != TASK_CREATED && status != TASK_ACCEPTED) revert FLChainWrongTaskStatus(taskId, status);
        if (msg.sender != server && _joins[taskId][server].joinedAt == 0) revert FLChainNotJoined(taskId, server);
        Trainer storage tr = _trainer(msg.sender);
        if (tr.status != TrainerStatus.Qualified) revert FLChainWrongStatus(msg.sender, tr.status);
        Join storage j = _joins[taskId][msg.sender];
        if (j.joinedAt != 0) revert FLChainAlreadyJoined(taskId, msg.sender);
        uint256 free = tr.deposit - tr.frozen;
        if (free < need) revert FLChainDepositFrozen(need, free);
        tr.frozen += uint128(need);
        j.amount = uint128(need);
        j.joinedAt = uint64(block.number);
        j.epoch = tr.epoch;
        emit Joined(taskId, msg.sender, need);
        emit DepositChanged(msg.sender, tr.deposit, tr.frozen);
    }

    /// @notice Unfreeze the caller's deposit for a task that completed or was refunded, unless
    /// it was confiscated since.
    function release(uint256 taskId) external {
        (,, uint8 status) = _task(taskId);
        if (status != TASK_COMPLETED && status != TASK_REFUNDED) revert FLChainWrongTaskStatus(taskId, status);
        Join storage j = _joins[taskId][msg.sender];
        Trainer storage tr = _trainers[msg.sender];
        if (j.joinedAt == 0 || j.released || j.epoch != tr.epoch) revert FLChainNothingToRelease(taskId, msg.sender);
        j.released = true;
        tr.frozen -= j.amount;
        emit Released(taskId, msg.sender, j.amount);
        emit DepositChanged(msg.sender, tr.deposit, tr.frozen);
    }

    // ------------------------------------------------------------------ reports

    /// @notice Report that registration `index` of a finalized round is invalid or unavailable,
    /// paying `reportFee`. Decided at once from FedCoin's state: upheld exactly when the round's
    /// consensus excluded that update. Upheld: the offender's whole deposit is confiscated, the
    /// reporter gets its fee back plus `rewardBps` of it, the round's included clients share
    /// `compensationBps` of it equally, the rest goes to the requester; the task's model becomes
    /// problematic. Rejected: the fee goes to the accused trainer.
    /// Only a reason the miners verify themselves confiscates: the round's spec must show it
    /// (`"unavailable"` is the server's word, and `"unregistered-trainer"` an update no deposit of
    /// this task stood behind, so a report of either reverts and costs nothing).
    /// @param clients the round's registered clients and @param dataCosts their n_k, in
    /// registration order (checked against the round's registration hash).
    /// @param spec the round's spec bytes (keccak256 must be the round's specHash); needed only
    /// when the update was excluded. @param at the byte offset in `spec` of the exclusion's
    /// `"index":<index>,"reason":"` (canonical JSON, fedcoin/content/spec.py).
    function reportInvalidUpdate(
        uint256 taskId,
        uint256 round,
        uint256 index,
        address[] calldata clients,
        uint256[] calldata dataCosts,
        bytes calldata spec,
        uint256 at
    ) external payable returns (uint256 reportId) {
        if (msg.value != reportFee) revert FLChainBadFee(msg.value, reportFee);
        bytes32[10] memory rw = _finalizedRound(taskId, round, clients, dataCosts);
        if (index >= clients.length) revert FLChainBadIndex(index, clients.length);
        address accused = clients[index];
        if (_joins[taskId][accused].joinedAt == 0) revert FLChainNotJoined(taskId, accused);
        reportId = _file(ReportKind.InvalidUpdate, accused, taskId, round);
        if (!fedcoin.isExcluded(taskId, round, index)) return _reject(reportId, accused);
        _checkReason(spec, at, index, rw[4]);
        _uphold(reportId, accused, clients, uint256(rw[0]));
    }

    /// @notice Report that the global model round `round`'s spec names is not the aggregate of
    /// round `round - 1`'s included updates, paying `reportFee`. Decided at once by the miners'
    /// verdict ({AggregateJury-verdict}: more than half of the round's revealed stake attested
    /// "wrong"). Upheld: the server's deposit is confiscated and split as for an invalid update
    /// (fee back + reward to the reporter, compensation to the round's included clients, the
    /// rest to the requester). Rejected: the fee goes to the server.
    /// @param clients the round's registered clients and @param dataCosts their n_k, in order.
    function reportAggregate(uint256 taskId, uint256 round, address[] calldata clients, uint256[] calldata dataCosts)
        external
        payable
        returns (uint256 reportId)
    {
        if (msg.value != reportFee) revert FLChainBadFee(msg.value, reportFee);
        bytes32[10] memory rw = _finalizedRound(taskId, round, clients, dataCosts);
        (, address server,) = _task(taskId);
        if (_joins[taskId][server].joinedAt == 0) revert FLChainNotJoined(taskId, server);
        reportId = _file(ReportKind.Aggregate, server, taskId, round);
        (bool wrong,,) = jury.verdict(taskId, round);
        if (!wrong) return _reject(reportId, server);
        _uphold(reportId, server, clients, uint256(rw[0]));
    }

    /// @dev A report the evidence does not bear out: its fee goes to the accused.
    function _reject(uint256 reportId, address accused) private returns (uint256) {
        _reports[reportId].state = ReportState.Rejected;
        _creditFrom(accused, msg.value, reportId);
        emit ReportDecided(reportId, false, 0, 0, 0, 0, 0);
        return reportId;
    }

    /// @dev The upheld InvalidUpdate: confiscate, reward, compensate, the rest to the requester.
    function _uphold(uint256 reportId, address accused, address[] calldata clients, uint256 word0) private {
        Report storage rep = _reports[reportId];
        rep.state = ReportState.Upheld;
        problematic[rep.taskId] = true;
        uint256 d = _confiscate(accused, TrainerStatus.Suspended);
        uint256 reward = d * rewardBps / BPS;
        _creditFrom(msg.sender, msg.value + reward, reportId);
        uint256 honest = uint32(word0 >> 40) - uint32(word0 >> 72); // registered - excluded
        uint256 each = _compensate(rep, clients, honest, d * compensationBps / BPS, reportId);
        _finishUphold(rep, reportId, d, reward, each, honest);
    }

    function _finishUphold(Report storage rep, uint256 reportId, uint256 d, uint256 reward, uint256 each, uint256 honest)
        private
    {
        uint256 rest = d - reward - each * honest;
        (address requester,,) = _task(rep.taskId);
        _creditFrom(requester, rest, reportId);
        emit ReportDecided(reportId, true, d, reward, each, honest, rest);
    }

    /// @notice Report that `trainer` is unqualified (e.g. its data is not what its record says),
    /// paying `reportFee`, which goes to `auth`, the judge.
    function reportUnqualified(address trainer) external payable returns (uint256 reportId) {
        if (msg.value != reportFee) revert FLChainBadFee(msg.value, reportFee);
        Trainer storage tr = _trainer(trainer);
        if (tr.status != TrainerStatus.Qualified) revert FLChainWrongStatus(trainer, tr.status);
        reportId = _file(ReportKind.Unqualified, trainer, 0, 0);
        _reports[reportId].state = ReportState.Pending;
        _creditFrom(auth, msg.value, reportId);
    }

    /// @notice `auth` decides an "unqualified" report. Upheld: the trainer's deposit is
    /// confiscated, the reporter gets `rewardBps` of it, auth the rest; the trainer becomes
    /// Unqualified. Rejected: nothing more moves (the fee was auth's), and the trainer may be
    /// reported again (a rejected report does not bar the next one).
    function judgeUnqualified(uint256 reportId, bool upheld) external {
        if (msg.sender != auth) revert FLChainNotAuth(msg.sender);
        if (reportId >= _reports.length || _reports[reportId].state != ReportState.Pending) {
            revert FLChainReportNotPending(reportId);
        }
        Report storage rep = _reports[reportId];
        if (!upheld) {
            rep.state = ReportState.Rejected;
            // a rejected report bars nothing: else one false report (even the trainer's own,
            // from a second address) would make it immune to every later one, for one fee
            _reported[_reportKey(ReportKind.Unqualified, rep.accused, 0, 0)] = false;
            emit ReportDecided(reportId, false, 0, 0, 0, 0, 0);
            return;
        }
        rep.state = ReportState.Upheld;
        uint256 d = _confiscate(rep.accused, TrainerStatus.Unqualified);
        uint256 reward = d * rewardBps / BPS;
        _creditFrom(rep.reporter, reward, reportId);
        _creditFrom(auth, d - reward, reportId);
        emit ReportDecided(reportId, true, d, reward, 0, 0, d - reward);
    }

    // ------------------------------------------------------------------ reliability

    /// @notice Record a finalized round's consensus Shapley values into its trainers' records
    /// (anyone may call, once per round): each joined trainer gets a round, and a positive one
    /// when its centre entry is > 0; its task contribution grows by that entry.
    /// @param height the round's PoSap block height in FedCoin; @param centre its consensus vector.
    function recordRound(
        uint256 taskId,
        uint256 round,
        uint256 height,
        address[] calldata clients,
        uint256[] calldata dataCosts,
        int256[] calldata centre
    ) external {
        _finalizedRound(taskId, round, clients, dataCosts);
        if (recorded[taskId][round]) revert FLChainAlreadyRecorded(taskId, round);
        FedCoin.BlockRecord memory b = fedcoin.getBlock(height);
        if (b.taskId != taskId || b.round != round || b.recordHash == bytes32(0)) revert FLChainWrongBlock(height);
        if (centre.length != clients.length || CommitmentHash.vectorHash(centre) != b.centreHash) {
            revert FLChainCentreMismatch(taskId, round);
        }
        recorded[taskId][round] = true;
        (uint256 n, uint256 pos, uint256 total) = _tally(taskId, clients, centre);
        taskContribution[taskId] += total;
        emit RoundRecorded(taskId, round, n, pos);
    }

    function _tally(uint256 taskId, address[] calldata clients, int256[] calldata centre)
        private
        returns (uint256 n, uint256 pos, uint256 total)
    {
        for (uint256 i; i < clients.length; ++i) {
            if (_joins[taskId][clients[i]].joinedAt == 0) continue;
            Trainer storage tr = _trainers[clients[i]];
            tr.rounds += 1;
            ++n;
            if (centre[i] > 0) {
                tr.positive += 1;
                contribution[taskId][clients[i]] += uint256(centre[i]);
                total += uint256(centre[i]);
                ++pos;
            }
        }
    }

    /// @notice A trainer's reliability in parts per million ({_reliability}).
    function reliability(address trainer) public view returns (uint256) {
        Trainer storage tr = _trainers[trainer];
        return _reliability(tr.rounds, tr.positive, tr.evalCount, tr.evalSum, tr.upheld);
    }

    /// @dev RELY = s * e / (1 + upheld), in ppm, where s = (positive + 1) / (rounds + 2) is the
    /// Laplace-smoothed share of rounds with a positive Shapley value and e = (evalSum + 3) /
    /// (5 * (evalCount + 1)) the buyers' mean score out of 5 with one prior score of 3. A new
    /// trainer starts at 0.5 * 0.6 = 300,000 ppm. Mirrored by rules.reliability.
    function _reliability(uint256 rounds, uint256 positive, uint256 evalCount, uint256 evalSum, uint256 upheld)
        internal
        pure
        returns (uint256)
    {
        uint256 s = (positive + 1) * PPM / (rounds + 2);
        uint256 e = (evalSum + 3) * PPM / (MAX_SCORE * (evalCount + 1));
        return s * e / PPM / (1 + upheld);
    }

    // ------------------------------------------------------------------ marketplace

    /// @notice The task's server lists its final model for sale at `price`. The revenue split is
    /// fixed now: trainer j gets floor(price * w_j / sum w) per sale with w_j = contribution_j *
    /// reliability_j (the paper's p * shares_j * RELY_j, normalised so the amounts and the
    /// lister's dust sum to the price). Every finalized round must be recorded first.
    /// @param trainers every trainer with a positive contribution to the task, ascending.
    /// @param prevModel the model this one supersedes (its id + 1; 0 for none), also the lister's.
    function listModel(
        uint256 taskId,
        uint256 price,
        uint256 prevModel,
        bytes32 modelHash,
        string calldata locator,
        address[] calldata trainers
    ) external returns (uint256 modelId) {
        _checkListing(taskId, price);
        (uint256[] memory amounts, uint256 dust, bytes32 root) = _split(taskId, price, trainers);
        modelId = _models.length;
        if (prevModel != 0) _supersede(prevModel - 1);
        ModelStatus st = _pushModel(taskId, price, dust, prevModel, modelHash, root, keccak256(abi.encode(trainers)));
        emit ModelListed(modelId, taskId, msg.sender, price, prevModel, modelHash, locator, trainers, amounts, dust);
        emit ModelStatusChanged(modelId, st);
    }

    function _checkListing(uint256 taskId, uint256 price) private view {
        (, address server, uint8 status) = _task(taskId);
        if (msg.sender != server) revert FLChainNotServer(taskId, msg.sender);
        if (status != TASK_COMPLETED) revert FLChainWrongTaskStatus(taskId, status);
        if (price == 0 || price > type(uint128).max) revert FLChainBadParameter("price");
        _checkRecorded(taskId);
    }

    function _pushModel(
        uint256 taskId,
        uint256 price,
        uint256 dust,
        uint256 prevModel,
        bytes32 modelHash,
        bytes32 root,
        bytes32 trainersHash
    ) private returns (ModelStatus) {
        Model storage m = _models.push();
        m.taskId = uint64(taskId);
        m.lister = msg.sender;
        m.price = uint128(price);
        m.dust = uint128(dust);
        m.prevModel = uint64(prevModel);
        m.height = uint64(block.number);
        m.trainersHash = trainersHash;
        m.splitRoot = root;
        m.modelHash = modelHash;
        m.status = problematic[taskId] ? ModelStatus.Problematic : ModelStatus.OnSale;
        return m.status;
    }

    /// @notice The lister takes its model off sale.
    function delist(uint256 modelId) external {
        Model storage m = _model(modelId);
        if (msg.sender != m.lister) revert FLChainNotLister(modelId, msg.sender);
        m.status = ModelStatus.Unavailable;
        emit ModelStatusChanged(modelId, ModelStatus.Unavailable);
    }

    /// @notice Buy a licence to a model on sale (msg.value == price, once per buyer). The
    /// trainers' shares become claimable ({claimSales}); the lister is credited the dust.
    function buy(uint256 modelId) external payable {
        Model storage m = _model(modelId);
        ModelStatus st = modelStatus(modelId);
        if (st != ModelStatus.OnSale) revert FLChainNotForSale(modelId, st);
        if (msg.value != m.price) revert FLChainBadFee(msg.value, m.price);
        if (bought[modelId][msg.sender]) revert FLChainAlreadyBought(modelId, msg.sender);
        bought[modelId][msg.sender] = true;
        m.sales += 1;
        _addUnclaimed(msg.value - m.dust);
        if (m.dust != 0) {
            _addCredit(m.lister, m.dust);
            emit CreditedBy(m.lister, m.dust, type(uint256).max);
        }
        emit Bought(modelId, msg.sender, msg.value);
    }

    /// @notice A buyer scores a model 1..5, once; the score enters the reliability of each of
    /// its trainers (`trainers`, as listed).
    function evaluate(uint256 modelId, uint256 score, address[] calldata trainers) external {
        Model storage m = _model(modelId);
        if (!bought[modelId][msg.sender]) revert FLChainNotBuyer(modelId, msg.sender);
        if (_evaluated[modelId][msg.sender]) revert FLChainAlreadyEvaluated(modelId, msg.sender);
        if (score == 0 || score > MAX_SCORE) revert FLChainBadScore(score);
        if (keccak256(abi.encode(trainers)) != m.trainersHash) revert FLChainBadTrainers(0);
        _evaluated[modelId][msg.sender] = true;
        m.evalCount += 1;
        m.evalSum += uint64(score);
        for (uint256 i; i < trainers.length; ++i) {
            Trainer storage tr = _trainers[trainers[i]];
            tr.evalCount += 1;
            tr.evalSum += uint64(score);
        }
        emit Evaluated(modelId, msg.sender, score);
    }

    /// @notice Claim the caller's share of every sale of a model so far: `amount` per sale, the
    /// leaf {MerkleTree-payoutLeaf}(modelId, 0, caller, amount) of the model's split root.
    /// @dev check -> verify proof -> effects -> event -> transfer, under nonReentrant.
    function claimSales(uint256 modelId, uint256 amount, bytes32[] calldata proof) external nonReentrant {
        Model storage m = _model(modelId);
        if (!MerkleTree.verify(proof, m.splitRoot, MerkleTree.payoutLeaf(modelId, 0, msg.sender, amount))) {
            revert FLChainInvalidProof(modelId, msg.sender, amount);
        }
        uint256 due = amount * m.sales;
        uint256 owed = due - claimedSales[modelId][msg.sender];
        if (owed == 0) revert FLChainNothingToClaim(modelId, msg.sender);
        claimedSales[modelId][msg.sender] = due;
        _releaseUnclaimed(owed);
        emit SalesClaimed(modelId, msg.sender, owed);
        _send(msg.sender, owed);
    }

    // ------------------------------------------------------------------ federation

    /// @notice A requester publishes a model description for which trainers post intentions
    /// until `deadline` (unix time); the federation of `seats` trainers is then allocated off
    /// chain by Algorithm 1 from the intentions and the trainers' reliability.
    function publishRequest(bytes32 descHash, string calldata locator, uint256 seats, uint256 deadline)
        external
        returns (uint256 requestId)
    {
        if (seats == 0 || seats > type(uint32).max) revert FLChainBadParameter("seats");
        if (deadline <= block.timestamp || deadline > type(uint64).max) revert FLChainBadParameter("deadline");
        requestId = _requests.length;
        _requests.push(Request(msg.sender, uint32(seats), uint64(deadline), descHash));
        emit RequestPublished(requestId, msg.sender, seats, deadline, descHash, locator);
    }

    /// @notice A qualified, available trainer posts (or replaces) its collaboration intention for
    /// a request, paying `intentionFee` to auth (the paper's f_CI).
    function postIntention(uint256 requestId, uint256 expectedPrice, uint256 expectedIncome, uint256 cost)
        external
        payable
    {
        if (requestId >= _requests.length) revert FLChainUnknownRequest(requestId);
        Request storage q = _requests[requestId];
        if (block.timestamp >= q.deadline) revert FLChainIntentionClosed(requestId, q.deadline);
        if (msg.value != intentionFee) revert FLChainBadFee(msg.value, intentionFee);
        Trainer storage tr = _trainer(msg.sender);
        if (tr.status != TrainerStatus.Qualified || !tr.available) revert FLChainWrongStatus(msg.sender, tr.status);
        if (msg.value != 0) {
            _addCredit(auth, msg.value);
            emit CreditedBy(auth, msg.value, type(uint256).max);
        }
        emit IntentionPosted(requestId, msg.sender, expectedPrice, expectedIncome, cost);
    }

    // ------------------------------------------------------------------ views

    /// @notice A trainer's record.
    function getTrainer(address trainer) external view returns (Trainer memory) {
        return _trainers[trainer];
    }

    /// @notice A trainer's freeze for a task.
    function getJoin(uint256 taskId, address trainer) external view returns (Join memory) {
        return _joins[taskId][trainer];
    }

    /// @notice The block at which `trainer` joined `taskId` (0: never). Miners exclude an update
    /// registered in an earlier block, or by a client that never joined, when the task requires
    /// trainers.
    function joinedAt(uint256 taskId, address trainer) external view returns (uint256) {
        return _joins[taskId][trainer].joinedAt;
    }

    function getReport(uint256 reportId) external view returns (Report memory) {
        return _reports[reportId];
    }

    /// @notice A model's status: Problematic once a report against its task is upheld, even one
    /// upheld after listing (the stored status is the lister's).
    function modelStatus(uint256 modelId) public view returns (ModelStatus) {
        Model storage m = _model(modelId);
        if (m.status == ModelStatus.OnSale && problematic[m.taskId]) return ModelStatus.Problematic;
        return m.status;
    }

    function getModel(uint256 modelId) external view returns (Model memory) {
        return _models[modelId];
    }

    // ------------------------------------------------------------------ internals

    function _trainer(address account) private view returns (Trainer storage tr) {
        tr = _trainers[account];
        if (tr.status == TrainerStatus.None) revert FLChainNotTrainer(account);
    }

    function _model(uint256 modelId) private view returns (Model storage) {
        if (modelId >= _models.length) revert FLChainUnknownModel(modelId);
        return _models[modelId];
    }

    /// @dev (requester, server, status) of a FedCoin task, from its storage words.
    function _task(uint256 taskId) private view returns (address requester, address server, uint8 status) {
        bytes32[10] memory w = fedcoin.getTask(taskId);
        requester = address(uint160(uint256(w[0])));
        server = address(uint160(uint256(w[1])));
        status = uint8(uint256(w[2]) >> 80);
    }

    /// @dev The round's words, after checking it finalized and that `clients`/`dataCosts` are its
    /// registrations in order.
    function _finalizedRound(uint256 taskId, uint256 round, address[] calldata clients, uint256[] calldata dataCosts)
        private
        view
        returns (bytes32[10] memory rw)
    {
        rw = fedcoin.getRound(taskId, round);
        if (uint8(uint256(rw[0])) != ROUND_FINALIZED) revert FLChainRoundNotFinalized(taskId, round);
        bytes32 acc = fedcoin.judge().registrationAcc(clients, dataCosts);
        if (acc != rw[2]) revert FLChainClientsMismatch(taskId, round);
    }

    /// @dev The key that bars a second report of the same offence while the first stands.
    function _reportKey(ReportKind kind, address accused, uint256 taskId, uint256 round) private pure returns (bytes32) {
        return keccak256(abi.encode(kind, taskId, round, accused));
    }

    function _file(ReportKind kind, address accused, uint256 taskId, uint256 round) private returns (uint256 id) {
        bytes32 key = _reportKey(kind, accused, taskId, round);
        if (_reported[key]) revert FLChainAlreadyReported(key);
        _reported[key] = true;
        id = _reports.length;
        _reports.push(
            Report(kind, ReportState.None, msg.sender, accused, uint64(taskId), uint32(round), uint128(msg.value))
        );
        emit ReportFiled(id, kind, msg.sender, accused, taskId, round, msg.value);
    }

    /// @dev Takes all of `trainer`'s deposit out of the bond bucket (the caller credits it out
    /// in the same call) and voids its freezes.
    function _confiscate(address trainer, TrainerStatus status) private returns (uint256 d) {
        Trainer storage tr = _trainers[trainer];
        d = tr.deposit;
        tr.deposit = 0;
        tr.frozen = 0;
        tr.epoch += 1;
        tr.upheld += 1;
        tr.status = status;
        _releaseBonds(d);
        emit DepositChanged(trainer, 0, 0);
        emit TrainerStatusChanged(trainer, status);
    }


    /// @dev Credits cp / honest to each client the round did not exclude; returns that amount.
    function _compensate(Report storage rep, address[] calldata clients, uint256 honest, uint256 cp, uint256 reportId)
        private
        returns (uint256 each)
    {
        if (honest == 0) return 0;
        each = cp / honest;
        if (each == 0) return 0;
        (uint256 taskId, uint256 round) = (rep.taskId, rep.round);
        for (uint256 i; i < clients.length; ++i) {
            if (!fedcoin.isExcluded(taskId, round, i)) _creditFrom(clients[i], each, reportId);
        }
    }

    /// @dev Reverts unless `spec` hashes to `specHash` and holds, at `at`, the exclusion of
    /// `index` with a reason other than "unavailable" or "unregistered-trainer". Canonical JSON escapes every quote inside
    /// a string and only exclusion objects have "index" and "reason" keys, so the match is the
    /// exclusion itself.
    function _checkReason(bytes calldata spec, uint256 at, uint256 index, bytes32 specHash) private pure {
        if (keccak256(spec) != specHash) revert FLChainSpecMismatch(0, 0);
        bytes memory pattern = abi.encodePacked('"index":', _decimal(index), ',"reason":"');
        uint256 end = at + pattern.length;
        if (end > spec.length || keccak256(spec[at:end]) != keccak256(pattern)) revert FLChainBadEvidence(at);
        uint256 stop = end;
        while (stop < spec.length && spec[stop] != '"') ++stop;
        if (stop == spec.length) revert FLChainBadEvidence(at);
        bytes32 reason = keccak256(spec[end:stop]);
        // "unavailable" is the server's word; "unregistered-trainer" means the client had not joined
        // when it registered, so no deposit of this task stood behind that update
        if (reason == keccak256("unavailable") || reason == keccak256("unregistered-trainer")) {
            revert FLChainUnverifiedReason(index);
        }
    }

    function _decimal(uint256 v) private pure returns (bytes memory out) {
        if (v == 0) return "0";
        uint256 len = 0;
        for (uint256 x = v; x != 0; x /= 10) ++len;
        out = new bytes(len);
        for (; v != 0; v /= 10) out[--len] = bytes1(uint8(48 + v % 10));
    }

    function _creditFrom(address account, uint256 amount, uint256 reportId) private {
        if (amount == 0) return;
        _addCredit(account, amount);
        emit CreditedBy(account, amount, reportId);
    }

    function _checkRecorded(uint256 taskId) private view {
        bytes32[10] memory w = fedcoin.getTask(taskId);
        uint256 rounds = uint32(uint256(w[0]) >> 224);
        if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
        for (uint256 r; r < rounds; ++r) {
            bytes32[10] memory rw = fedcoin.getRound(taskId, r);
            if (uint8(uint256(rw[0])) == ROUND_FINALIZED && !recorded[taskId][r]) revert FLChainRoundNotRecorded(taskId, r);
        }
    }

    /// @dev The sale split of {listModel}: amounts, the lister's dust and the Merkle root.
    function _split(uint256 taskId, uint256 price, address[] calldata trainers)
        private
        returns (uint256[] memory amounts, uint256 dust, bytes32 root)
    {
        uint256 n = trainers.length;
        amounts = new uint256[](n);
        uint256 sumContribution = 0;
        uint256 sumWeight = 0;
        for (uint256 i; i < n; ++i) {
            if (i > 0 && trainers[i] <= trainers[i - 1]) revert FLChainBadTrainers(i);
            uint256 c = contribution[taskId][trainers[i]];
            if (c == 0) revert FLChainBadTrainers(i);
            sumContribution += c;
            amounts[i] = c * reliability(trainers[i]); // weight, in place
            sumWeight += amounts[i];
            _trainers[trainers[i]].models += 1;
        }
        if (sumContribution != taskContribution[taskId]) revert FLChainBadTrainers(n);
        if (sumWeight == 0) revert FLChainNoContributors(taskId);
        uint256 modelId = _models.length;
        bytes32[] memory leaves = new bytes32[](n);
        uint256 paid = 0;
        for (uint256 i; i < n; ++i) {
            amounts[i] = price * amounts[i] / sumWeight;
            paid += amounts[i];
            leaves[i] = MerkleTree.payoutLeaf(modelId, 0, trainers[i], amounts[i]);
        }
        dust = price - paid;
        root = MerkleTree.rootInPlace(leaves);
    }

    function _supersede(uint256 prev) private {
        Model storage p = _model(prev);
        if (p.lister != msg.sender) revert FLChainNotLister(prev, msg.sender);
        p.status = ModelStatus.Unavailable;
        emit ModelStatusChanged(prev, ModelStatus.Unavailable);
    }
}
