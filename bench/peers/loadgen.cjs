// Load generator for PartyQuiz's benchmarks: this conductor plays the host(s) and forks
// `workers` processes (loadgen_worker.cjs) that play the players, every W-th one each, so no
// single event loop reads every frame of a fan-out. All of them time on one monotonic clock.
// It speaks the server's protocol (protocols.cjs), samples the servers' CPU
// (/proc/<pid>/task/*/schedstat, ns; user/system ticks from /proc/<pid>/stat) and, when a
// Redis is involved, its INFO commandstats around each phase, and writes one JSON result to
// cfg.result_path. The Python harness computes percentiles and medians. Every wait is bounded.
//   node loadgen.cjs config.json
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { fork, spawn } = require('child_process');
const { connect, now, selfCpuMs, sleep, round2 } = require('./protocols.cjs');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
cfg.games = cfg.games || [{ join_code: cfg.join_code, host_token: cfg.host_token }];
cfg.host_urls = cfg.host_urls || [cfg.url];
const N = cfg.players;
const log = (...a) => process.stderr.write(`[loadgen ${cfg.kind} n=${N}] ${a.join(' ')}\n`);

// ---- /proc and Redis sampling -----------------------------------------------------------------
function cpuNsOf(pid) {
  let total = 0;
  let tasks = [];
  try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { return 0; }
  for (const tid of tasks) {
    try { total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  return total;
}
const serverCpuNs = () => cfg.server_pids.reduce((sum, pid) => sum + cpuNsOf(pid), 0);
const cpuByPid = () => cfg.server_pids.map(cpuNsOf);
// utime and stime (clock ticks) summed over the servers: what the kernel charged to user
// space and to system calls (loopback TCP included).
function userSysTicks() {
  let user = 0;
  let sys = 0;
  for (const pid of cfg.server_pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]);
      sys += Number(fields[12]);
    } catch { /* exited */ }
  }
  return [user, sys];
}
function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}
const serverRssKiB = () => cfg.server_pids.reduce((sum, pid) => sum + rssOf(pid), 0);

// INFO commandstats as {command: calls}; null when no Redis is involved.
function redisCommandCalls() {
  if (!cfg.redis_port) return Promise.resolve(null);
  return new Promise((resolve) => {
    const sock = net.connect(cfg.redis_port, '127.0.0.1');
    let buf = '';
    const done = (v) => { sock.destroy(); resolve(v); };
    sock.setTimeout(5000, () => done(null));
    sock.on('error', () => done(null));
    sock.on('connect', () => sock.write('*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const m = /^\$(\d+)\r\n/.exec(buf);
      if (!m || buf.length < m[0].length + Number(m[1])) return;
      const calls = {};
      for (const c of buf.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) calls[c[1]] = Number(c[2]);
      done(calls);
    });
  });
}
function callsDelta(a, b) {
  if (!a || !b) return null;
  const out = {};
  for (const [cmd, n] of Object.entries(b)) {
    const d = n - (a[cmd] || 0);
    if (d > 0) out[cmd] = d;
  }
  return out;
}
const sumCalls = (d) => (d ? Object.values(d).reduce((s, n) => s + n, 0) : null);
const publishes = (d) => (d ? (d.publish || 0) + (d.spublish || 0) : null);

// Everything a phase is charged: servers' CPU (total and per pid), user/system ticks, Redis
// commands, and the load generator's own CPU (this process and every worker).
async function mark() {
  return {
    t: now(), cpu: serverCpuNs(), byPid: cpuByPid(), ticks: userSysTicks(),
    redis: await redisCommandCalls(), self: selfCpuMs(), workers: workerCpuMs(),
  };
}
function charged(a, b) {
  const wall = b.t - a.t;
  const d = callsDelta(a.redis, b.redis);
  return {
    server_cpu_ms: (b.cpu - a.cpu) / 1e6,
    server_cpu_ms_by_pid: b.byPid.map((x, k) => round2((x - a.byPid[k]) / 1e6)),
    server_user_ticks: b.ticks[0] - a.ticks[0],
    server_system_ticks: b.ticks[1] - a.ticks[1],
    redis_calls: d,
    redis_ops: sumCalls(d),
    publish_calls: publishes(d),
    loadgen_util: (b.self - a.self + b.workers - a.workers) / wall / cfg.loadgen_cores,
  };
}

// ---- profiles of one phase (--py-spy): py-spy on every game-service process -----------------
function profileStart(phase, seconds) {
  if (!cfg.profile) return [];
  return cfg.profile.pids.map((pid) => spawn(cfg.profile.py_spy, [
    'record', '--pid', String(pid), '--nonblocking', '--format', 'raw', '--rate', '250',
    '--duration', String(Math.ceil(seconds)), '--output', `${cfg.profile.prefix}-profile-${pid}-${phase}.txt`,
  ], { stdio: 'ignore' }));
}
function profileEnd(children) {
  return Promise.all(children.map((child) => new Promise((resolve) => {
    if (child.exitCode !== null) { resolve(); return; }
    const t = setTimeout(() => { child.kill('SIGINT'); resolve(); }, 15000);
    child.on('exit', () => { clearTimeout(t); resolve(); });
  })));
}

// ---- workers ----------------------------------------------------------------------------------
const W = Math.max(1, cfg.workers || 2);
const workers = [];
const workerCpu = new Array(W).fill(0);
// Each worker's young generation is fixed at 64 MiB a semi-space (V8 starts it small and grows
// it up to 16 MiB): with 5,000 sockets a worker's scavenge stops its event loop for 5-45 ms, and
// at the default size one or two fell into most 1-s send windows. --expose-gc: the conductor has
// the workers collect their garbage before each send window (op gc), so none falls due in it.
const WORKER_V8_FLAGS = ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'];
const workerCpuMs = () => workerCpu.reduce((s, x) => s + x, 0);
let nextId = 1;
const waiting = new Map(); // `${id}:${op}` -> {left, replies, resolve}

function startWorkers() {
  for (let w = 0; w < W; w += 1) {
    const child = fork(path.join(__dirname, 'loadgen_worker.cjs'), [], {
      execArgv: WORKER_V8_FLAGS, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m) => {
      workerCpu[w] = m.cpu_ms;
      const key = `${m.id}:${m.op}`;
      const wait = waiting.get(key);
      if (!wait) return;
      wait.replies[w] = m;
      wait.left -= 1;
      if (wait.left === 0) { waiting.delete(key); wait.resolve(wait.replies); }
    });
    child.on('exit', (code) => { if (!finished) { log(`worker ${w} exited (${code})`); finish({ aborted: `worker ${w} exited` }); } });
    workers.push(child);
  }
}

// Send one op to every worker (or one message per worker) and return, for each reply op
// named, a promise of every worker's reply. A worker replies once per op and id.
function request(msgs, ops) {
  const id = nextId++;
  const replies = {};
  for (const op of ops) {
    replies[op] = new Promise((resolve) => { waiting.set(`${id}:${op}`, { left: W, replies: new Array(W), resolve }); });
  }
  workers.forEach((child, w) => child.send({ ...(Array.isArray(msgs) ? msgs[w] : msgs), id }));
  return { id, replies };
}
const ask = async (msgs, op) => request(msgs, [op]).replies[op];

// Wait for `promise` (the replies of request `id`) at most `timeoutMs`; then tell the workers
// to reply with what they have.
async function bounded(id, promise, timeoutMs) {
  let timer;
  const early = await Promise.race([promise, new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
  clearTimeout(timer);
  if (early) return early;
  workers.forEach((child) => child.send({ op: 'collect', id }));
  return promise;
}

// ---- hosts ------------------------------------------------------------------------------------
const hosts = [];
const hostSeen = [];
const errors = {};
const errorSamples = [];
function noteError(code, detail) {
  errors[code] = (errors[code] || 0) + 1;
  if (errorSamples.length < 10) errorSamples.push(`${code}: ${String(detail).slice(0, 300)}`);
}

function connectHost(g, url) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`host ${g} did not get host_welcome`)), 30000);
    const hello = { type: 'host', host_token: cfg.games[g].host_token };
    const conn = connect(cfg.protocol, url, cfg.origin, () => conn.hello(hello), (type, data, parse) => {
      if (type === 'host_welcome') { clearTimeout(t); resolve(conn); }
      if (type === 'error') noteError(`host_error:${parse().code}`, data.toString());
      if (hostSeen.length < 200) hostSeen.push(type);
    }, (why) => {
      if (hosts[g] === conn && draining && why === 1012) {
        // The host's replica drains too: the big screen comes back elsewhere at once.
        connectHost(g, cfg.drain.alt_url).then((c) => { hosts[g] = c; }, (err) => noteError('host_resume', err.message));
        return;
      }
      noteError(`host_close_${why}`, `host ${g}`);
    });
  });
}
const hostCommand = (type) => { for (const h of hosts) h.send({ type }); };

// ---- phases -----------------------------------------------------------------------------------
const waitMs = () => Math.max(10000, N * 2);
let live = []; // connected player indices, in order
let questionBytes = null;

// Arm the workers for `type`, send `command` to every host, wait until every live player got
// `type`: latencies from the command (null where it never came).
async function fanOut(command, type) {
  const armed = request({ op: 'arm', type }, ['armed', 'arrived']);
  await armed.replies.armed;
  await sleep(50);
  const a = await mark();
  // Latencies run from the command itself: mark() reads /proc and asks Redis first.
  const tCommand = now();
  hostCommand(command);
  const replies = await bounded(armed.id, armed.replies.arrived, waitMs());
  const t1 = now();
  const b = await mark();
  await sleep(100); // trailing work (host frames, metrics) is charged to the fan-out
  const c = await mark();
  const lat = new Float64Array(N).fill(-1);
  let complete = true;
  const checks = { lost: 0, doubled: 0, missing: 0 };
  for (const r of replies) {
    complete = complete && r.complete;
    if (r.question_bytes) questionBytes = r.question_bytes;
    for (const [i, at] of r.times) if (at >= 0) lat[i] = at - tCommand;
    for (const k of Object.keys(checks)) checks[k] += r[k] || 0;
  }
  const received = Array.from(lat).filter((x) => x >= 0);
  return {
    command, type, complete, received: received.length, wall_ms: t1 - a.t,
    // When the last player got it, on the workers' clock: what the conductor learns later
    // over IPC (and, niced, while the workers read) is not the server's time.
    last_ms: received.length ? round2(received.reduce((x, y) => Math.max(x, y))) : null,
    ...charged(a, c),
    server_util: (b.cpu - a.cpu) / 1e6 / (t1 - a.t),
    loadgen_util: charged(a, b).loadgen_util,
    checks,
    latencies_ms: Array.from(lat, (x) => (x >= 0 ? round2(x) : null)),
  };
}

async function main() {
  const hardStop = setTimeout(() => { log('hard time limit reached'); finish({ aborted: 'time limit' }); }, cfg.total_timeout_s * 1000);
  hardStop.unref();
  startWorkers();
  // The workers keep the schedule; this process only reads the hosts' frames meanwhile (one
  // answer_count per answer), so it yields the shared core to them: niced after the fork.
  os.setPriority(Math.min(19, os.getPriority() + 10));
  const ready = await ask({ op: 'config', cfg }, 'ready');
  for (let g = 0; g < cfg.games.length; g += 1) hosts.push(await connectHost(g, cfg.host_urls[g % cfg.host_urls.length]));
  await sleep(200);
  const rss0 = serverRssKiB();
  const m0 = await mark();
  const deadline = now() + cfg.ramp_timeout_s * 1000;
  const lanes = Math.max(1, Math.ceil(cfg.concurrency / W));
  const ramped = await ask(workers.map((_, w) => ({
    op: 'ramp', indices: range(N).filter((i) => i % W === w), concurrency: lanes, deadline,
  })), 'ramped');
  const m1 = await mark();
  const rampMs = m1.t - m0.t;
  const connects = [];
  let failed = 0;
  for (const r of ramped) {
    failed += r.failed;
    for (const [i, ms] of r.connected) { connects.push(ms); live.push(i); }
  }
  live.sort((x, y) => x - y);
  log(`ramp: ${live.length} connected, ${failed} failed in ${Math.round(rampMs)} ms`);
  await sleep(cfg.settle_ms);
  const result = {
    kind: cfg.kind, players: N, connected: live.length, failed, workers: W, games: cfg.games.length,
    worker_slices_ns: ready.map((r) => r.slice_ns),
    worker_thread_nices: ready.map((r) => r.nices),
    server_pids: cfg.server_pids, redis_pid: cfg.redis_pid || null,
    ramp: {
      wall_ms: rampMs, rss_before_kib: rss0, rss_after_kib: serverRssKiB(),
      ...charged(m0, m1),
      connect_latencies_ms: connects,
      rss_after_kib_per_pid: cfg.server_pids.map(rssOf),
    },
    fanouts: [],
    round_fanouts: [],
    answer_path: null,
    burst: null,
    drain: null,
  };
  const rounds = cfg.warmup + cfg.rounds;
  const fanOnly = cfg.fanout_only;
  let question = -1;
  for (let r = 0; r < rounds && live.length; r += 1) {
    const q = await fanOut(r === 0 ? 'start' : 'next', 'question');
    question += 1;
    q.warmup = r < cfg.warmup;
    result.fanouts.push(q);
    log(`question ${r}: ${q.received}/${live.length} in ${Math.round(q.wall_ms)} ms, server ${q.server_cpu_ms.toFixed(1)} ms CPU`);
    if (fanOnly) continue;
    const rev = await fanOut('skip', 'personal_result');
    const lb = await fanOut('next', 'leaderboard');
    result.round_fanouts.push({ reveal: strip(rev), leaderboard: strip(lb) });
  }
  if (!fanOnly && live.length && cfg.answer_path) {
    // Every player but one answers: the question stays open, so the CPU counted from the first
    // send until every receipt is back (and trailing work settled) is the answer path alone.
    const q = await fanOut(question < 0 ? 'start' : 'next', 'question');
    question += 1;
    result.answer_path_question = strip(q);
    const profiling = profileStart('answers', cfg.burst_window_s + 1);
    result.answer_path = await answers(question, [live[live.length - 1]], false);
    await profileEnd(profiling);
    log(`answer path: ${result.answer_path.receipts}/${result.answer_path.sent} receipts, server ${result.answer_path.server_cpu_ms.toFixed(1)} ms CPU`);
    const rev = await fanOut('skip', 'personal_result');
    const lb = await fanOut('next', 'leaderboard');
    result.answer_path_close = { reveal: strip(rev), leaderboard: strip(lb) };
  }
  if (!fanOnly && live.length && cfg.burst) {
    const q = await fanOut(question < 0 ? 'start' : 'next', 'question');
    question += 1;
    result.burst_question = strip(q);
    const profiling = profileStart('burst', cfg.burst_window_s + 2);
    result.burst = await answers(question, [], true);
    await profileEnd(profiling);
    log(`burst: ${result.burst.receipts}/${result.burst.players} receipts, lost ${result.burst.lost}, late sends ${result.burst.late_sends}`);
  }
  if (cfg.drain && live.length) result.drain = await drainReplica();
  result.question_bytes = questionBytes;
  finish(result);
}

const range = (n) => Array.from({ length: n }, (_, i) => i);
const strip = (f) => ({ ...f, latencies_ms: undefined });

// Every live player but `skip` answers `question` on an open-loop schedule spread over the
// window. With `close`, the question closes when the last answer is in: the personal results
// are timed from the window's end, then the host's `next` brings the leaderboard.
async function answers(question, skip, close) {
  const choices = cfg.correct[question % cfg.correct.length];
  let armed = null;
  if (close) {
    armed = request({ op: 'arm', type: 'personal_result' }, ['armed', 'arrived']);
    await armed.replies.armed;
  }
  await ask({ op: 'gc' }, 'collected');
  const window = cfg.burst_window_s * 1000;
  const base = now() + 50;
  const order = live.filter((i) => !skip.includes(i));
  const a = await mark();
  const sending = request({ op: 'burst', index: question, choices, base, window, order: live, skip }, ['burst_done']);
  const done = await bounded(sending.id, sending.replies.burst_done, window + cfg.burst_result_timeout_s * 1000);
  const tReceipts = now();
  const b = await mark();
  let sent = 0; let late = 0; let maxLate = 0; let answerErrors = 0; let complete = true;
  const receipts = [];
  for (const r of done) {
    sent += r.sent; late += r.late; answerErrors += r.answer_errors; complete = complete && r.complete;
    maxLate = Math.max(maxLate, r.max_late_ms);
    for (const [, ms] of r.receipts) receipts.push(ms);
  }
  const tDeadline = base + ((live.length - 1) * window) / live.length; // the last send
  const out = {
    players: order.length, sent, late_sends: late, max_late_ms: maxLate, receipts: receipts.length,
    answer_errors: answerErrors, complete, receipt_latencies_ms: receipts,
  };
  if (!close) {
    await sleep(100);
    const c = await mark();
    return { ...out, ...charged(a, c), receipts_wall_ms: tReceipts - a.t, loadgen_util: charged(a, b).loadgen_util };
  }
  const results = await bounded(armed.id, armed.replies.arrived, cfg.burst_result_timeout_s * 1000);
  const tResult = now();
  const c = await mark();
  let lost = 0; let doubled = 0; let missing = 0; let gotAll = true;
  const resultLat = [];
  for (const r of results) {
    gotAll = gotAll && r.complete;
    lost += r.lost; doubled += r.doubled; missing += r.missing;
    for (const [, at] of r.times) if (at >= 0) resultLat.push(round2(at - tDeadline));
  }
  const lb = await fanOut('next', 'leaderboard');
  const lastResult = resultLat.length ? resultLat.reduce((x, y) => Math.max(x, y)) : null;
  return {
    ...out, all_results: gotAll, missing_results: missing, lost, double_counted: doubled,
    deadline_to_last_result_ms: lastResult,
    result_latencies_ms: resultLat,
    // The server's part: deadline -> the last player's result, then the host's `next` -> the
    // last player's leaderboard, both timed where the players got them. The harness's own
    // delay between them (the workers reporting, the conductor arming the next fan-out) is
    // left out; so is the conductor learning of arrivals late, kept here to compare.
    deadline_to_last_leaderboard_ms: lb.complete && lastResult !== null ? round2(lastResult + lb.last_ms) : null,
    conductor_deadline_to_leaderboard_ms: lb.complete ? round2((tResult - tDeadline) + lb.wall_ms) : null,
    leaderboard: strip(lb),
    ...charged(a, c),
    loadgen_util: charged(a, c).loadgen_util,
  };
}

// A replica drains (SIGTERM to cfg.drain.pid): its players reconnect to the other one with
// their resume tokens, as the pages do; each resume's time from the signal and whether the
// welcome carried the player's score are recorded.
let draining = false;
async function drainReplica() {
  const d = cfg.drain;
  const urls = cfg.player_urls;
  const mine = live.filter((i) => urls[i % urls.length] === d.url);
  const watch = request({ op: 'drain', url: d.alt_url, indices: mine }, ['watching', 'drained']);
  await watch.replies.watching;
  draining = true;
  cfg.profile = cfg.profile && { ...cfg.profile, pids: cfg.profile.pids.filter((pid) => pid !== d.pid) };
  const profiling = profileStart('drain', 15);
  const a = await mark();
  process.kill(d.pid, 'SIGTERM');
  const replies = await bounded(watch.id, watch.replies.drained, d.timeout_s * 1000);
  await profileEnd(profiling);
  const b = await mark();
  const resumed = [];
  let scoresIntact = 0; let scoresWrong = 0; let missing = 0;
  for (const r of replies) {
    missing += r.missing.length;
    for (const [, at, ok] of r.resumed) {
      resumed.push(round2(at - a.t));
      if (ok === true) scoresIntact += 1; else scoresWrong += 1;
    }
  }
  // The game goes on: one more question reaches everyone, resumed players included.
  const after = await fanOut('next', 'question');
  log(`drain: ${resumed.length}/${mine.length} resumed, last after ${resumed.length ? Math.max(...resumed).toFixed(0) : '-'} ms`);
  return {
    players: mine.length, resumed: resumed.length, missing, scores_intact: scoresIntact, scores_wrong: scoresWrong,
    resume_latencies_ms: resumed, last_resume_ms: resumed.length ? Math.max(...resumed) : null,
    ...charged(a, b), question_after: strip(after),
  };
}

let finished = false;
async function finish(result) {
  if (finished) return;
  finished = true;
  if (!result.aborted) {
    const asked = request({ op: 'errors' }, ['errors']);
    const reports = await bounded(asked.id, asked.replies.errors, 5000);
    for (const r of reports || []) {
      if (!r) continue;
      for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] || 0) + n;
      for (const s of r.samples) if (errorSamples.length < 20) errorSamples.push(s);
    }
  }
  result.errors = errors;
  result.error_samples = errorSamples;
  result.host_seen = hostSeen.slice(0, 30);
  // A file, written synchronously: a large write to a pipe can be cut short by exit().
  fs.writeFileSync(cfg.result_path, `${JSON.stringify(result)}\n`);
  for (const h of hosts) h.close();
  for (const child of workers) { try { child.send({ op: 'close' }); } catch { /* gone */ } }
  setTimeout(() => process.exit(0), 300).unref();
}

main().catch((err) => { log(err.stack || err); finish({ aborted: String(err.message || err) }); });
