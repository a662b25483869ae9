// A load-generator worker: plays its share of the players (every W-th one) for the conductor
// (loadgen.cjs), which forks it and drives it over the IPC channel. It reports absolute times
// on the shared monotonic clock (protocols.now), so the conductor computes every latency
// against its own command times. It never plays the host and never samples the server.
'use strict';

const fs = require('fs');
const os = require('os');
const { connect, now, selfCpuMs, round2 } = require('./protocols.cjs');

let cfg = null;
const players = new Map(); // global index -> player
const errors = {};
const errorSamples = [];
function noteError(code, detail) {
  errors[code] = (errors[code] || 0) + 1;
  if (errorSamples.length < 10) errorSamples.push(`${code}: ${String(detail).slice(0, 300)}`);
}

function reply(msg) { process.send({ ...msg, cpu_ms: selfCpuMs() }); }

// The scheduler slice this process runs with (ns), as the kernel shows it (null where it does
// not): the load generator asks for a short one (bench/sched.py), which the workers inherit.
function schedSliceNs() {
  try {
    const m = /^se\.slice\s*:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/sched', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

// V8's helper threads (concurrent marking, sweeping, compiling) share the core with this
// thread at its priority, and one that woke took the core from it until the next scheduler
// tick (4 ms apart), sends falling due meanwhile. Niced to the bottom they run when the core
// is free and yield it as soon as this thread wakes. Threads started later (libuv's pool)
// are caught before each send window.
function helperThreads() {
  try { return fs.readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid); } catch { return []; }
}
function niceHelperThreads() {
  for (const tid of helperThreads()) {
    try { os.setPriority(tid, 19); } catch { /* thread gone */ }
  }
}
const threadNices = () => ({ main: os.getPriority(), helpers: helperThreads().map((tid) => os.getPriority(tid)) });

// ---- arrivals of one message type (a fan-out) -------------------------------------------------
let armed = null; // {id, type, left, replied}
const frameBytes = { n: 0, sum: 0 }; // the first question frames' sizes

function live() { const out = []; for (const p of players.values()) if (p.connectMs >= 0 && !p.closed) out.push(p); return out; }

function arm(id, type) {
  const targets = live();
  for (const p of targets) { p.arrival = -1; p.result = null; }
  armed = { id, type, left: new Set(targets.map((p) => p.i)), replied: false, targets };
  if (!armed.left.size) settleArrivals(true);
}

function settleArrivals(complete) {
  const a = armed;
  if (!a || a.replied) return;
  a.replied = true;
  armed = null;
  const out = {
    op: 'arrived', id: a.id, complete, times: a.targets.map((p) => [p.i, p.arrival]),
    question_bytes: frameBytes.n ? frameBytes.sum / frameBytes.n : null,
  };
  if (a.type === 'personal_result') Object.assign(out, checkResults(a.targets));
  reply(out);
}

// Lost: an answer with a receipt that is missing from the player's result; double-counted: a
// score that is not the previous score plus this question's points.
function checkResults(targets) {
  let lost = 0;
  let doubled = 0;
  let missing = 0;
  for (const p of targets) {
    const r = p.result;
    if (!r) { missing += 1; continue; }
    if (p.receiptQ === r.question_index && !(r.correct && r.points > 0)) lost += 1;
    if (r.score !== p.prevScore + r.points) doubled += 1;
    p.prevScore = r.score;
  }
  return { lost, doubled, missing };
}

// ---- answers ----------------------------------------------------------------------------------
let burst = null;

function startBurst(m) {
  const mine = [];
  m.order.forEach((i, k) => {
    const p = players.get(i);
    if (p && !m.skip.includes(i)) mine.push([p, m.base + (k * m.window) / m.order.length]);
  });
  burst = {
    id: m.id, pending: new Set(), sent: 0, late: 0, maxLate: 0, receipts: [], errors: 0, replied: false, sending: true,
    dueAt: Infinity, pump: null, // the next send's time; sends what is due (sendDue)
  };
  let next = 0;
  let timer = null;
  const pump = () => {
    const t = now();
    while (next < mine.length && mine[next][1] <= t) {
      const [p, at] = mine[next++];
      const lateBy = t - at;
      if (lateBy > 5) burst.late += 1;
      if (lateBy > burst.maxLate) burst.maxLate = lateBy;
      p.scheduled = at;
      p.receiptAt = -1;
      burst.pending.add(p.i);
      burst.sent += 1;
      p.conn.send({ type: 'answer', question_index: m.index, choices: m.choices });
    }
    if (next < mine.length) {
      // Sleep until the next send is due (timers have 1 ms steps), never spin: the workers
      // share a core, and one spinning would take the time the other needs to send on time.
      // One timer at a time: when the receive path sent what was due, the pending timer fires
      // early, finds nothing due and sleeps again.
      burst.dueAt = mine[next][1];
      if (!timer) timer = setTimeout(onTimer, Math.max(1, Math.floor(burst.dueAt - now())));
    } else {
      clearTimeout(timer);
      burst.sending = false;
      if (!burst.pending.size) settleBurst(true);
    }
  };
  const onTimer = () => { timer = null; pump(); };
  burst.pump = pump;
  pump();
}

// Called for every frame received: the frames of a clump (receipts, a fan-out to thousands of
// sockets) are all handled in one poll phase, and the send timer waits until it ends, so what
// falls due meanwhile is sent from here.
function sendDue() {
  if (burst && burst.sending && now() >= burst.dueAt) burst.pump();
}

function answered(p, ok) {
  const b = burst;
  if (!b || !b.pending.delete(p.i)) return false;
  if (!ok) b.errors += 1;
  if (!b.sending && !b.pending.size) settleBurst(true);
  return true;
}

function settleBurst(complete) {
  const b = burst;
  if (!b || b.replied) return;
  b.replied = true;
  reply({
    op: 'burst_done', id: b.id, complete, sent: b.sent, late: b.late, max_late_ms: round2(b.maxLate),
    receipts: b.receipts, answer_errors: b.errors,
  });
}

// ---- a replica draining: players come back elsewhere ------------------------------------------
let drain = null; // {id, url, left, resumed: [[i, at, scoreOk]], failed}
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000]; // the pages' gameclient.js policy

function startDrainWatch(m) {
  const targets = live().filter((p) => m.indices.includes(p.i));
  drain = { id: m.id, url: m.url, left: new Set(targets.map((p) => p.i)), resumed: [], replied: false };
  if (!drain.left.size) settleDrain(true);
}

function resumeLater(p, code) {
  // 1012 (a replica restarting): at once, the first time; otherwise the pages' back-off.
  const delay = code === 1012 && p.attempt === 0
    ? 0 : BACKOFF_MS[Math.min(p.attempt, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4);
  p.attempt += 1;
  setTimeout(() => openPlayer(p, drain.url, { type: 'resume', resume_token: p.token }), delay);
}

function settleDrain(complete) {
  const d = drain;
  if (!d || d.replied) return;
  d.replied = true;
  reply({ op: 'drained', id: d.id, complete, resumed: d.resumed, missing: [...d.left] });
}

// ---- players ----------------------------------------------------------------------------------
function onMessage(p, type, data, parse) {
  sendDue();
  if (armed && type === armed.type && p.arrival < 0 && armed.left.has(p.i)) {
    p.arrival = now();
    if (type === 'question' && frameBytes.n < 20) { frameBytes.n += 1; frameBytes.sum += data.length; }
    if (type === 'personal_result') { const m = parse(); p.result = { ...(m.result || m), question_index: m.question_index }; }
    armed.left.delete(p.i);
    if (!armed.left.size) settleArrivals(true);
    return;
  }
  switch (type) {
    case 'welcome': {
      const m = parse();
      const at = now();
      p.token = m.resume_token;
      if (p.connectMs < 0) {
        p.connectMs = at - p.t0;
        p.id = m.player_id;
        if (p.onWelcome) p.onWelcome(true);
      } else if (drain && drain.left.has(p.i)) {
        const me = m.state && m.state.me;
        drain.left.delete(p.i);
        drain.resumed.push([p.i, at, me ? me.score === p.prevScore : null]);
        p.attempt = 0;
        if (!drain.left.size) settleDrain(true);
      }
      break;
    }
    case 'answer_receipt':
      if (burst && burst.pending.has(p.i)) {
        p.receiptAt = now();
        p.receiptQ = parse().question_index;
        burst.receipts.push([p.i, round2(p.receiptAt - p.scheduled)]);
        answered(p, true);
      } else {
        noteError('unexpected_receipt', data.toString());
      }
      break;
    case 'error': {
      const m = parse();
      noteError(`error:${m.code}`, data.toString());
      if (p.connectMs < 0 && p.onWelcome) p.onWelcome(false);
      else answered(p, false);
      break;
    }
    default:
      break;
  }
}

function openPlayer(p, url, hello) {
  p.closed = false;
  p.conn = connect(cfg.protocol, url, cfg.origin, () => p.conn.hello(hello), (type, data, parse) => onMessage(p, type, data, parse), (why) => {
    p.closed = true;
    if (drain && drain.left.has(p.i)) { resumeLater(p, why); return; }
    noteError(`player_close_${why}`, `player ${p.i}`);
    if (p.connectMs < 0 && p.onWelcome) p.onWelcome(false);
    if (armed && armed.left.delete(p.i) && !armed.left.size) settleArrivals(true);
  });
}

function connectPlayer(i) {
  return new Promise((resolve) => {
    const g = i % cfg.games.length;
    const p = {
      i, game: g, t0: now(), connectMs: -1, id: null, token: null, conn: null, closed: false, arrival: -1,
      result: null, prevScore: 0, scheduled: 0, receiptAt: -1, receiptQ: -1, attempt: 0,
    };
    players.set(i, p);
    let settled = false;
    p.onWelcome = (ok) => { if (!settled) { settled = true; p.onWelcome = null; resolve(ok); } };
    const urls = cfg.player_urls;
    openPlayer(p, urls[i % urls.length], {
      type: 'join', code: cfg.games[g].join_code, nickname: `b${i}`, device_id: `bench-${cfg.run_id}-${i}`,
    });
  });
}

async function ramp(m) {
  let next = 0;
  let failed = 0;
  async function lane() {
    while (next < m.indices.length && now() < m.deadline) {
      if (!(await connectPlayer(m.indices[next++]))) failed += 1;
    }
  }
  await Promise.all(Array.from({ length: m.concurrency }, lane));
  const connected = [];
  for (const p of players.values()) if (p.connectMs >= 0) connected.push([p.i, round2(p.connectMs)]);
  reply({ op: 'ramped', id: m.id, connected, failed });
}

process.on('message', (m) => {
  switch (m.op) {
    case 'config': cfg = m.cfg; niceHelperThreads(); reply({ op: 'ready', id: m.id, slice_ns: schedSliceNs(), nices: threadNices() }); break;
    case 'ramp': ramp(m); break;
    case 'arm': arm(m.id, m.type); reply({ op: 'armed', id: m.id }); break;
    case 'collect':
      if (armed && armed.id === m.id) settleArrivals(false);
      if (burst && burst.id === m.id) settleBurst(false);
      if (drain && drain.id === m.id) settleDrain(false);
      break;
    case 'burst': startBurst(m); break;
    case 'gc': global.gc(); niceHelperThreads(); reply({ op: 'collected', id: m.id }); break;
    case 'drain': startDrainWatch(m); reply({ op: 'watching', id: m.id }); break;
    case 'errors': reply({ op: 'errors', id: m.id, errors, samples: errorSamples }); break;
    case 'close':
      for (const p of players.values()) if (p.conn) p.conn.close();
      setTimeout(() => process.exit(0), 100);
      break;
    default:
      break;
  }
});
process.on('disconnect', () => process.exit(0));
