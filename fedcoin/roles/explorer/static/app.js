// FedCoin explorer page: draws what /api/* returns (fedcoin/roles/explorer/model.py builds it) and
// re-verifies the PoSap record chain from the indexed fields (verifyChain). No request leaves
// this origin (the server's Content-Security-Policy says so too).
"use strict";

const ZERO = "0x" + "00".repeat(32);
const $main = document.getElementById("main");
const $live = document.getElementById("live");
let charts = [];
let lastHead = null;

// ---------------------------------------------------------------- helpers

async function api(path) {
  const r = await fetch("/api/" + path, { cache: "no-store" });
  if (!r.ok) throw new Error(`/api/${path}: HTTP ${r.status}`);
  return r.json();
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

const short = a => a ? `${a.slice(0, 6)}…${a.slice(-4)}` : "—";
const when = t => t == null ? "—" : new Date(Number(t) * 1000).toISOString().replace("T", " ").slice(0, 19);
const FP = 10n ** 18n;

function eth(wei) {  // exact wei as ETH with up to 6 decimals shown
  const w = BigInt(wei);
  const neg = w < 0n, a = neg ? -w : w;
  const frac = (a % FP).toString().padStart(18, "0").slice(0, 6).replace(/0+$/, "");
  return `${neg ? "-" : ""}${a / FP}${frac ? "." + frac : ""} ETH`;
}

function fixed(v, digits = 4) {  // an 18-decimal fixed-point value as a decimal string
  return (Number(BigInt(v)) / 1e18).toFixed(digits);
}

function table(cls, head, rows) {
  return `<table class="${cls}"><thead><tr>${head.map(h => `<th>${h}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>`;
}

function clearCharts() { charts.forEach(c => c.destroy()); charts = []; }

function chart(canvas, config) {
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options || {});
  charts.push(new Chart(canvas, config));
}

// ---------------------------------------------------------------- verification (keccak256 via js-sha3)

function hexBytes(hex) {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(2 * i, 2), 16);
  return out;
}
const keccak = hex => "0x" + keccak256(hexBytes(hex));
function word(v) {  // abi.encode of an int/uint: 32 bytes, two's complement
  let b = BigInt(v);
  if (b < 0n) b += 1n << 256n;
  return b.toString(16).padStart(64, "0");
}
const addrWord = a => a.slice(2).toLowerCase().padStart(64, "0");
const b32 = h => h.slice(2).toLowerCase();

function recordHash(b) {
  return keccak(word(b.height) + word(b.taskId) + word(b.round) + addrWord(b.winner) + b32(b.centreHash) +
    b32(b.winnerHash) + b32(b.prevHash) + word(b.difficulty) + b32(b.payoutsRoot) + word(b.payment || 0));
}
const vectorHash = vs => keccak(vs.map(word).join(""));
const payoutLeaf = (t, r, c, amt) => keccak(b32(keccak(word(t) + word(r) + addrWord(c) + word(amt))));
const hashPair = (a, b) => a < b ? keccak(b32(a) + b32(b)) : keccak(b32(b) + b32(a));

function merkleRoot(leaves) {
  if (!leaves.length) return ZERO;
  let level = leaves.map(x => x.toLowerCase());
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(hashPair(level[i], level[i + 1]));
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

// Every link of the record chain, from the indexed fields, anchored to the chain's own views
// (each record's stored hash, blockCount, lastRecordHash). Returns per-height verdicts and one overall.
function verifyChain(c) {
  const verdicts = [];
  let prev = ZERO;
  c.blocks.forEach((b, i) => {
    const bad = [];
    const eq = (what, x, y) => { if (String(x).toLowerCase() !== String(y).toLowerCase()) bad.push(what); };
    eq("height", b.height, i);
    eq("prevHash link", b.prevHash, prev);
    eq("recordHash", recordHash(b), b.recordHash);
    eq("chain's stored hash", b.recordHash, b.chain_record_hash || "(none)");
    if (b.mean) eq("centreHash", vectorHash(b.mean), b.centreHash); else bad.push("no RoundFinalized");
    if (b.winner_values) eq("winnerHash", vectorHash(b.winner_values), b.winnerHash); else bad.push("no winner reveal");
    if (b.mean && b.amounts) {
      const paid = b.mean.some(m => BigInt(m) > 0n);
      const root = paid ? merkleRoot(b.clients.map((cl, k) => payoutLeaf(b.taskId, b.round, cl, b.amounts[k] ?? 0))) : ZERO;
      eq("payoutsRoot", root, b.payoutsRoot);
    }
    verdicts.push({ ok: bad.length === 0, bad });
    prev = b.recordHash;
  });
  const head = [];
  if (c.blocks.length !== Number(c.block_count)) head.push(`index has ${c.blocks.length} records, chain has ${c.block_count}`);
  if (prev.toLowerCase() !== String(c.last_record_hash).toLowerCase()) head.push("head differs from lastRecordHash");
  const ok = head.length === 0 && verdicts.every(v => v.ok);
  return { verdicts, head, ok };
}

function verdictBadge(v) {
  return v.ok ? `<span class="badge ok verdict">✓ verified</span>`
    : `<span class="badge broken verdict">✗ broken: ${esc(v.bad.join(", "))}</span>`;
}

// ---------------------------------------------------------------- views

async function viewTasks() {
  const tasks = await api("tasks");
  const rows = tasks.map(t => `<tr data-task="${t.id}"><td><a href="#/task/${t.id}">Task ${t.id}</a></td>` +
    `<td class="num budget" data-wei="${t.budget}">${eth(t.budget)}</td><td>${t.split.join(" : ")}</td>` +
    `<td>${esc(t.payment_rule)}</td><td class="status">${t.status}</td>` +
    `<td class="num settled">${t.settled} / ${t.rounds}</td><td class="num">${t.clients}</td>` +
    `<td class="mono">${short(t.requester)}</td><td class="mono">${short(t.server)}</td><td>${when(t.created.time)}</td></tr>`);
  $main.innerHTML = `<h2>Tasks</h2>` + (tasks.length ? table("tasks", ["task", "budget V", "split (train : com : sap bps)",
    "payment rule", "status", "rounds settled", "clients", "requester", "server", "created"], rows)
    : `<p class="muted">No task yet.</p>`);
}

function roundHtml(t, r, verdicts) {
  const regs = r.registrations.map(e => `<tr data-client="${e.client}"><td class="num">${e.index}</td>` +
    `<td class="mono">${e.client}</td><td class="mono">${short(e.updateHash)}</td><td class="mono">${esc(e.locator)}</td>` +
    `<td class="num">${e.dataCost}</td><td>${when(e.time)}</td></tr>`);
  const pub = r.publications.map(p => `<p>Spec <code>${short(p.specHash)}</code> at <code>${esc(p.specLocator)}</code>` +
    ` · D = ${fixed(p.difficulty)} · aggregation ${p.aggregation} · commit by ${when(p.commitDeadline)},` +
    ` reveal by ${when(p.revealDeadline)} <span class="spec muted" data-round="${r.round}"></span></p>`).join("");
  const atts = r.attempts.map(a => {
    const rows = a.miners.map(m => `<tr data-miner="${m.miner}" class="${m.outcome === "winner" ? "winner" : ""}` +
      `${m.outcome.startsWith("slashed") ? " slashed" : ""}"><td class="mono">${m.miner}</td><td class="num">${m.seq}</td>` +
      `<td class="num stake" data-wei="${m.stake}">${eth(m.stake)}</td><td>${when(m.committed)}</td>` +
      `<td class="revealed">${m.revealed == null ? "—" : when(m.revealed)}</td><td class="num">${m.iterations ?? "—"}</td>` +
      `<td class="num">${m.distance == null ? "—" : fixed(m.distance)}</td>` +
      `<td class="outcome">${m.outcome}</td></tr>`);
    return `<h4>Attempt ${a.attempt} · D = ${fixed(a.difficulty)} (p = ${a.p})${a.settled ? " · settled" : ""}</h4>` +
      table("miners", ["miner", "seq", "stake", "committed", "revealed", "iterations", "‖S − centre‖", "outcome"], rows);
  }).join("");
  let consensus = "";
  if (r.finalized) {
    const blk = verdicts[r.finalized.height];
    const pays = r.payouts.map(p => `<tr data-client="${p.client}"><td class="mono">${p.client}</td>` +
      `<td class="num">${fixed(p.value, 6)}</td><td class="num amount" data-wei="${p.amount}">${p.amount}</td>` +
      `<td class="num">${eth(p.amount)}</td><td class="claimed">${p.claimed ? "claimed " + when(p.claimed_time) : (BigInt(p.amount) > 0n ? "unclaimed" : "—")}</td></tr>`);
    consensus = `<h4>Consensus S̄ · PoSap block ${r.finalized.height} ${blk ? verdictBadge(blk) : ""} · winner <code>${short(r.finalized.winner)}</code></h4>` +
      `<div class="chart"><canvas class="consensus" data-round="${r.round}"></canvas></div>` +
      `<h4>Payouts</h4>` + table("payouts", ["client", "S̄", "amount (wei)", "amount", "claim"], pays);
  }
  const abandoned = r.abandoned.length ? `<p class="broken">Abandoned: ${eth(r.abandoned[0].refund)} refunded.</p>` : "";
  return `<section class="round" data-round="${r.round}"><h3>Round ${r.round} <span class="badge">${r.status}</span></h3>` +
    `<h4>Registered clients (${r.registrations.length})</h4>` +
    table("registrations", ["#", "client", "update hash", "locator", "n_k", "time"], regs) + pub + atts + consensus + abandoned +
    `</section>`;
}

async function viewTask(id) {
  const [v, c] = await Promise.all([api("task/" + id), api("chain")]);
  if (!v) { $main.innerHTML = `<p>No task ${esc(id)} in the index.</p>`; return; }
  const { verdicts } = verifyChain(c);
  const t = v.task, live = v.live;
  const head = `<h2>Task ${t.id} <span class="badge status">${live.status}</span></h2><div class="grid">` +
    `<p>Budget <b>${eth(t.budget)}</b> · split ${t.split.join(" : ")} · ${esc(t.payment_rule)}<br>` +
    `Rounds settled <b class="settled">${t.settled} / ${t.rounds}</b> · ${t.clients} listed clients</p>` +
    `<p>Requester <code>${t.requester}</code><br>Server <code>${t.server}</code><br>` +
    (live.escrow != null ? `Escrow ${eth(live.escrow)} · unclaimed ${eth(live.unclaimed)} · bonds held ${eth(live.bonds)}` : "") + `</p></div>`;
  $main.innerHTML = head + v.rounds.map(r => roundHtml(t, r, verdicts)).join("");
  for (const r of v.rounds) {
    if (!r.finalized) continue;
    const canvas = $main.querySelector(`canvas.consensus[data-round="${r.round}"]`);
    const spec = await api(`spec/${t.id}/${r.round}`).catch(() => ({ available: false }));
    const types = spec.available ? (spec.spec.updates || []).map(u => u.type ?? u.quality ?? null) : [];
    const palette = ["#2f6fde", "#e07b16", "#15a05a", "#a23ad6", "#c2185b", "#607d8b"];
    const kinds = [...new Set(types.filter(x => x != null))];
    const colors = r.payouts.map((p, i) => types[i] != null ? palette[kinds.indexOf(types[i]) % palette.length]
      : (BigInt(p.value) > 0n ? "#2f6fde" : "#c0c4cc"));
    const el = $main.querySelector(`.spec[data-round="${r.round}"]`);
    if (el) el.textContent = spec.available ? "(spec fetched, hash verified)" : "(spec not in this machine's store)";
    chart(canvas, {
      type: "bar",
      data: { labels: r.payouts.map(p => short(p.client) + (types[r.payouts.indexOf(p)] != null ? ` (${types[r.payouts.indexOf(p)]})` : "")),
        datasets: [{ label: "consensus S̄ (Shapley value)", data: r.payouts.map(p => Number(BigInt(p.value)) / 1e18), backgroundColor: colors }] },
      options: { plugins: { legend: { display: kinds.length > 0 } } },
    });
  }
}

async function viewChain() {
  const c = await api("chain");
  const res = verifyChain(c);
  const rows = c.blocks.map((b, i) => `<tr data-height="${b.height}" class="${res.verdicts[i].ok ? "" : "broken-row"}">` +
    `<td class="num">${b.height}</td><td><a href="#/task/${b.taskId}">${b.taskId}</a> / ${b.round}</td>` +
    `<td class="mono">${short(b.winner)}</td><td class="num">${fixed(b.difficulty)}</td>` +
    `<td class="mono">${short(b.prevHash)}</td><td class="mono">${short(b.recordHash)}</td><td>${when(b.time)}</td>` +
    `<td>${verdictBadge(res.verdicts[i])}</td></tr>`);
  const overall = res.ok ? `<p id="chain-verdict" class="ok">✓ All ${c.blocks.length} records verified: every hash recomputed in this page, ` +
    `every link to its predecessor, the head equal to the contract's lastRecordHash.</p>`
    : `<p id="chain-verdict" class="broken">✗ The indexed record chain does not verify${res.head.length ? ": " + esc(res.head.join("; ")) : ""}.</p>`;
  $main.innerHTML = `<h2>PoSap block records</h2>` + overall +
    table("chain", ["height", "task / round", "winner", "D", "prev hash", "record hash", "time", "verification"], rows) +
    `<h3>Difficulty over time</h3><div class="chart"><canvas id="difficulty"></canvas></div>`;
  const pts = c.difficulty.map(d => ({ x: when(d.time), y: Number(BigInt(d.new)) / 1e18 }));
  const first = c.difficulty.length ? [{ x: "start", y: Number(BigInt(c.difficulty[0].old)) / 1e18 }] : [];
  chart(document.getElementById("difficulty"), {
    type: "line",
    data: { labels: [...first, ...pts].map(p => p.x), datasets: [{ label: "difficulty D (after each block)", data: [...first, ...pts].map(p => p.y), stepped: true, borderColor: "#2f6fde" }] },
  });
}

async function viewBalances() {
  const bs = await api("balances");
  const rows = bs.map(b => `<tr data-address="${b.address}"><td class="mono">${b.address}</td><td>${b.roles.join(", ")}</td>` +
    `<td class="num credit" data-wei="${b.credit}">${eth(b.credit)}</td>` +
    `<td>${b.unclaimed.map(u => `task ${u.task} round ${u.round}: ${eth(u.amount)}`).join("<br>") || "—"}</td>` +
    `<td class="num owed" data-wei="${b.owed}">${eth(b.owed)}</td><td>${b.command ? `<code>${esc(b.command)}</code>` : "—"}</td></tr>`);
  $main.innerHTML = `<h2>Balances</h2><p class="muted">Credit is read from the contract (<code>credits</code>); unclaimed client payouts from the index, ` +
    `each confirmed with <code>isClaimed</code>. The collecting account's key comes from <code>$FEDCOIN_PRIVATE_KEY</code> or a keystore.</p>` +
    table("balances", ["party", "roles", "credit (withdraw)", "unclaimed payouts (claim)", "owed in all", "command that collects it"], rows);
}

// ---------------------------------------------------------------- routing and live updates

async function render() {
  clearCharts();
  const h = location.hash || "#/";
  const m = h.match(/^#\/task\/(\d+)/);
  try {
    if (m) await viewTask(m[1]);
    else if (h.startsWith("#/chain")) await viewChain();
    else if (h.startsWith("#/balances")) await viewBalances();
    else await viewTasks();
    document.body.dataset.rendered = String(Date.now());
  } catch (e) {
    $main.innerHTML = `<p class="broken">${esc(e.message)}</p>`;
  }
}

async function poll() {
  try {
    const s = await api("summary");
    const head = `${s.index_head.number}:${s.index_head.hash}:${s.block_count}`;
    $live.textContent = `live · chain ${s.chain_id} · indexed to block ${s.index_head.number} · ${s.events} events · ${s.block_count} PoSap blocks`;
    $live.className = s.sync_error ? "live error" : "live";
    if (s.sync_error) $live.textContent += ` · sync error: ${s.sync_error}`;
    if (lastHead !== null && head !== lastHead) await render();
    lastHead = head;
  } catch (e) {
    $live.textContent = "explorer server unreachable";
    $live.className = "live error";
  }
}

window.addEventListener("hashchange", render);
render().then(poll);
setInterval(poll, 1500);
