// Load generator for PartyQuiz's benchmarks: one Node process (pinned to its own core by the
// harness) that plays the host and N players against one server, speaking that server's
// protocol: PartyQuiz / Node ws / raw floor (JSON text frames) or Socket.IO (Engine.IO v4 over
// the WebSocket transport only). It samples the server's CPU (/proc/<pid>/task/*/schedstat, ns)
// and RSS around each phase and its own CPU, and writes one JSON result; the
// Python harness computes percentiles and medians. The result is written to cfg.result_path.
// Every wait is bounded; it exits by itself.
//   node loadgen.cjs config.json
'use strict';

const fs = require('fs');
const { WebSocket } = require('ws');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const N = cfg.players;
const now = () => performance.now();
const log = (...a) => process.stderr.write(`[loadgen ${cfg.kind} n=${N}] ${a.join(' ')}\n`);

// ---- /proc sampling ---------------------------------------------------------------------------
function serverCpuNs() {
  let total = 0;
  for (const pid of cfg.server_pids) {
    let tasks = [];
    try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tasks) {
      try { total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
    }
  }
  return total;
}
function serverRssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; } // exited
}
function serverRssKiB() {
  return cfg.server_pids.reduce((sum, pid) => sum + serverRssOf(pid), 0);
}
// PUBLISH + SPUBLISH calls so far, from INFO commandstats; null when no Redis is involved.
function redisPublishCalls() {
  if (!cfg.redis_port) return Promise.resolve(null);
  return new Promise((resolve) => {
    const sock = require('net').connect(cfg.redis_port, '127.0.0.1');
    let buf = '';
    const done = (v) => { sock.destroy(); resolve(v); };
    sock.setTimeout(5000, () => done(null));
    sock.on('error', () => done(null));
    sock.on('connect', () => sock.write('*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const m = /^\$(\d+)\r\n/.exec(buf);
      if (!m || buf.length < m[0].length + Number(m[1])) return;
      let calls = 0;
      for (const cmd of ['publish', 'spublish']) {
        const c = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(buf);
        if (c) calls += Number(c[1]);
      }
      done(calls);
    });
  });
}
const selfCpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- connections ------------------------------------------------------------------------------
const TYPE_KEY = Buffer.from('"type":"');
function jsonType(buf) {
  // The top-level "type" sits in the first few bytes of every server's frames ("version" may
  // come first); nested objects never carry one. Fall back to a full parse otherwise.
  const at = buf.indexOf(TYPE_KEY);
  if (at >= 0 && at < 48) {
    const end = buf.indexOf(34, at + 8);
    if (end > 0) return buf.toString('latin1', at + 8, end);
  }
  try { return JSON.parse(buf).type; } catch { return 'unparsable'; }
}

class Conn {
  constructor(url, onReady, onMessage, onClose) {
    this.onMessage = onMessage;
    this.sio = cfg.kind === 'socketio';
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      headers: { Origin: cfg.origin },
      handshakeTimeout: 30000,
    });
    this.ws.on('open', () => { if (!this.sio) onReady(); });
    this.ws.on('error', (err) => onClose(String(err.code || err.message)));
    this.ws.on('close', (code) => onClose(`close_${code}`));
    this.ws.on('message', (data) => {
      if (!this.sio) {
        this.onMessage(jsonType(data), data);
        return;
      }
      const c = data[0];
      if (c === 0x34 && data[1] === 0x32) { // "42" event
        const end = data.indexOf(34, 4);
        this.onMessage(data.toString('latin1', 4, end), data);
      } else if (c === 0x32) { // "2" ping
        this.ws.send('3');
      } else if (c === 0x30) { // "0" open
        this.ws.send('40');
      } else if (c === 0x34 && data[1] === 0x30) { // "40" namespace connected
        onReady();
      } else if (c === 0x34 && data[1] === 0x34) {
        onClose('sio_connect_error');
      }
    });
  }

  send(obj) {
    if (this.ws.readyState !== 1) return;
    this.ws.send(this.sio ? `42${JSON.stringify([obj.type, obj])}` : JSON.stringify(obj));
  }

  parse(data) {
    return this.sio ? JSON.parse(data.toString('utf8').slice(2))[1] : JSON.parse(data);
  }

  close() { try { this.ws.terminate(); } catch { /* already gone */ } }
}

// ---- waiting for fan-outs ---------------------------------------------------------------------
const counts = new Map();
let waiter = null;
function bump(type) {
  const n = (counts.get(type) || 0) + 1;
  counts.set(type, n);
  if (waiter && waiter.type === type && n >= waiter.target) { const w = waiter; waiter = null; w.resolve(true); }
}
function waitCount(type, target, timeoutMs) {
  if ((counts.get(type) || 0) >= target) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { waiter = null; resolve(false); }, timeoutMs);
    waiter = { type, target, resolve: (v) => { clearTimeout(t); resolve(v); } };
  });
}

const errors = {};
const errorSamples = [];
function noteError(code, detail) {
  errors[code] = (errors[code] || 0) + 1;
  if (errorSamples.length < 10) errorSamples.push(`${code}: ${String(detail).slice(0, 300)}`);
}

// ---- players ----------------------------------------------------------------------------------
const players = [];
let fanout = null; // {type, index?, lat: Float64Array, t0}
const questionBytes = { n: 0, bytes: 0 };

function makePlayer(i) {
  const p = {
    i, t0: now(), connectMs: -1, id: null, receipt: null, result: null, conn: null, closed: false,
    scheduled: 0, receiptMs: -1, resultAt: -1, prevScore: 0,
  };
  return p;
}

function onPlayerMessage(p, type, data) {
  if (fanout && type === fanout.type) {
    if (fanout.lat[p.i] < 0) {
      fanout.lat[p.i] = now() - fanout.t0;
      if (type === 'question' && questionBytes.n < 50) {
        questionBytes.n += 1;
        questionBytes.bytes += data.length;
      }
      if (type === 'personal_result') { const m = p.conn.parse(data); p.result = m.result || m; }
      bump(type);
    }
    return;
  }
  switch (type) {
    case 'welcome':
      if (p.connectMs < 0) {
        p.connectMs = now() - p.t0;
        p.id = p.conn.parse(data).player_id;
        bump('welcome');
      }
      break;
    case 'answer_receipt':
      if (p.receiptMs < 0) {
        p.receiptMs = now() - p.scheduled;
        p.receipt = p.conn.parse(data);
        bump('answer_receipt');
      } else {
        noteError('second_receipt', data.toString());
      }
      break;
    case 'error':
      noteError(`error:${p.conn.parse(data).code}`, data.toString());
      bump('answer_error');
      break;
    default:
      break;
  }
}

function playerUrl(i) {
  const urls = cfg.player_urls || [cfg.url];
  return urls[i % urls.length];
}

function connectPlayer(i) {
  return new Promise((resolve) => {
    const p = makePlayer(i);
    players[i] = p;
    let settled = false;
    const done = (ok) => { if (!settled) { settled = true; resolve(ok); } };
    p.conn = new Conn(playerUrl(i), () => {
      p.conn.send({ type: 'join', code: cfg.join_code, nickname: `b${i}`, device_id: `bench-${cfg.run_id}-${i}` });
    }, (type, data) => {
      onPlayerMessage(p, type, data);
      if (type === 'welcome') done(true);
      else if (type === 'error' && p.connectMs < 0) done(false);
    }, (why) => {
      if (!p.closed) { p.closed = true; noteError(`player_${why}`, `player ${i}`); }
      done(false);
    });
  });
}

async function ramp() {
  let next = 0;
  let failed = 0;
  const deadline = now() + cfg.ramp_timeout_s * 1000;
  async function worker() {
    while (next < N && now() < deadline) {
      const i = next++;
      if (!(await connectPlayer(i))) failed += 1;
    }
  }
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  return failed;
}

// ---- host -------------------------------------------------------------------------------------
let host = null;
const hostSeen = [];
function connectHost() {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('host did not get host_welcome')), 15000);
    host = new Conn(cfg.url, () => host.send({ type: 'host', host_token: cfg.host_token }), (type, data) => {
      if (type === 'host_welcome') { clearTimeout(t); resolve(); }
      if (type === 'error') noteError(`host_error:${host.parse(data).code}`, data.toString());
      if (hostSeen.length < 200) hostSeen.push(type);
    }, (why) => noteError(`host_${why}`, 'host connection'));
  });
}

// ---- phases -----------------------------------------------------------------------------------
const waitMs = () => Math.max(10000, N * 2);

async function fanOut(command, type) {
  counts.set(type, 0);
  const lat = new Float64Array(N).fill(-1);
  await sleep(50);
  const cpuA = serverCpuNs();
  const selfA = selfCpuMs();
  const t0 = now();
  const pubA = await redisPublishCalls();
  fanout = { type, lat, t0 };
  host.send({ type: command });
  const complete = await waitCount(type, liveCount(), waitMs());
  const t1 = now();
  const cpuB = serverCpuNs();
  const selfB = selfCpuMs();
  fanout = null;
  await sleep(100); // let the server finish trailing work (host frames, metrics) so it is counted
  const cpuC = serverCpuNs();
  const pubB = pubA === null ? null : await redisPublishCalls();
  const received = Array.from(lat).filter((x) => x >= 0);
  return {
    command, type, complete, received: received.length, wall_ms: t1 - t0,
    server_cpu_ms: (cpuC - cpuA) / 1e6,
    server_util: (cpuB - cpuA) / 1e6 / (t1 - t0),
    loadgen_util: (selfB - selfA) / (t1 - t0),
    publish_calls: pubB === null ? null : pubB - pubA,
    latencies_ms: Array.from(lat, (x) => (x >= 0 ? Math.round(x * 100) / 100 : null)),
  };
}

function liveCount() { return players.filter((p) => p && p.connectMs >= 0 && !p.closed).length; }

async function burst(index, correctChoices) {
  const live = players.filter((p) => p.connectMs >= 0 && !p.closed);
  counts.set('answer_receipt', 0);
  counts.set('answer_error', 0);
  const window = cfg.burst_window_s * 1000;
  const base = now() + 50;
  live.forEach((p, k) => { p.scheduled = base + (k * window) / live.length; p.receiptMs = -1; p.result = null; });
  const cpuA = serverCpuNs();
  const selfA = selfCpuMs();
  let sent = 0;
  let lateSends = 0;
  await new Promise((resolve) => {
    const pump = () => {
      const t = now();
      while (sent < live.length && live[sent].scheduled <= t) {
        const p = live[sent++];
        if (t - p.scheduled > 5) lateSends += 1;
        p.conn.send({ type: 'answer', question_index: index, choices: correctChoices });
      }
      if (sent < live.length) setImmediate(pump); else resolve();
    };
    setTimeout(pump, 45);
  });
  const tDeadline = live[live.length - 1].scheduled;
  // The question closes once everyone answered (or at its deadline); wait for the personal results.
  counts.set('personal_result', 0);
  const lat = new Float64Array(N).fill(-1);
  fanout = { type: 'personal_result', lat, t0: tDeadline };
  const gotAll = await waitCount('personal_result', live.length, cfg.burst_result_timeout_s * 1000);
  const tResult = now();
  fanout = null;
  const cpuB = serverCpuNs();
  const selfB = selfCpuMs();
  const receipts = live.filter((p) => p.receiptMs >= 0);
  let lost = 0;
  let doubled = 0;
  let missingResult = 0;
  for (const p of live) {
    if (!p.result) { missingResult += 1; continue; }
    const r = p.result;
    if (p.receiptMs >= 0 && !(r.correct && r.points > 0)) lost += 1;
    if (r.score !== p.prevScore + r.points) doubled += 1;
  }
  const lb = await fanOut('next', 'leaderboard');
  const resultLat = Array.from(lat).filter((x) => x >= 0);
  delete lb.latencies_ms;
  return {
    players: live.length, sent, late_sends: lateSends, receipts: receipts.length,
    answer_errors: counts.get('answer_error') || 0,
    receipt_latencies_ms: receipts.map((p) => Math.round(p.receiptMs * 100) / 100),
    publish_calls: null,
    all_results: gotAll, missing_results: missingResult, lost, double_counted: doubled,
    deadline_to_last_result_ms: resultLat.length ? Math.max(...resultLat) : null,
    result_latencies_ms: resultLat.map((x) => Math.round(x * 100) / 100),
    deadline_to_last_leaderboard_ms: lb.complete ? (tResult - tDeadline) + lb.wall_ms : null,
    leaderboard: lb,
    server_cpu_ms: (cpuB - cpuA) / 1e6,
    loadgen_util: (selfB - selfA) / (tResult - base),
  };
}

async function main() {
  const hardStop = setTimeout(() => { log('hard time limit reached'); finish({ aborted: 'time limit' }); }, cfg.total_timeout_s * 1000);
  hardStop.unref();
  await connectHost();
  await sleep(200);
  const rss0 = serverRssKiB();
  const cpu0 = serverCpuNs();
  const self0 = selfCpuMs();
  const r0 = now();
  const failed = await ramp();
  const rampMs = now() - r0;
  const self1 = selfCpuMs();
  const cpu1 = serverCpuNs();
  const connected = liveCount();
  log(`ramp: ${connected} connected, ${failed} failed in ${Math.round(rampMs)} ms`);
  await sleep(cfg.settle_ms);
  const rss1 = serverRssKiB();
  const result = {
    kind: cfg.kind, players: N, connected, failed,
    ramp: {
      wall_ms: rampMs, rss_before_kib: rss0, rss_after_kib: rss1,
      server_cpu_ms: (cpu1 - cpu0) / 1e6, loadgen_util: (self1 - self0) / rampMs,
      connect_latencies_ms: players.filter((p) => p && p.connectMs >= 0).map((p) => Math.round(p.connectMs * 100) / 100),
      rss_after_kib_per_pid: cfg.server_pids.map((pid) => serverRssOf(pid)),
    },
    fanouts: [],
    round_fanouts: [],
    burst: null,
  };
  const rounds = cfg.warmup + cfg.rounds;
  for (let r = 0; r < rounds && connected > 0; r += 1) {
    const q = await fanOut(r === 0 ? 'start' : 'next', 'question');
    q.warmup = r < cfg.warmup;
    result.fanouts.push(q);
    log(`question ${r}: ${q.received}/${connected} in ${Math.round(q.wall_ms)} ms, server ${q.server_cpu_ms.toFixed(1)} ms CPU`);
    if (cfg.kind === 'raw') continue;
    const rev = await fanOut('skip', 'personal_result');
    for (const p of players) if (p && p.result) p.prevScore = p.result.score;
    const lb = await fanOut('next', 'leaderboard');
    result.round_fanouts.push({ reveal: { ...rev, latencies_ms: undefined }, leaderboard: { ...lb, latencies_ms: undefined } });
  }
  if (cfg.burst && cfg.kind !== 'raw' && connected > 0) {
    const q = await fanOut('next', 'question');
    result.burst_question = { ...q, latencies_ms: undefined };
    result.burst = await burst(rounds, cfg.correct[rounds]);
    log(`burst: ${result.burst.receipts}/${result.burst.players} receipts, lost ${result.burst.lost}`);
  }
  result.question_bytes = questionBytes.n ? questionBytes.bytes / questionBytes.n : null;
  finish(result);
}

let finished = false;
function finish(result) {
  if (finished) return;
  finished = true;
  result.errors = errors;
  result.error_samples = errorSamples;
  result.host_seen = hostSeen.slice(0, 30);
  // A file, written synchronously: a large write to a pipe can be cut short by exit().
  fs.writeFileSync(cfg.result_path, `${JSON.stringify(result)}\n`);
  for (const p of players) if (p) p.conn.close();
  if (host) host.close();
  setTimeout(() => process.exit(0), 200).unref();
}

main().catch((err) => { log(err.stack || err); finish({ aborted: String(err.message || err) }); });
