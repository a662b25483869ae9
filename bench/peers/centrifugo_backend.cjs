// The game backend behind Centrifugo for PartyQuiz's benchmarks: how an app built on Centrifugo
// plays the shared in-memory Game (game.cjs). Centrifugo holds the WebSocket connections; this
// process answers its connect proxy (a join or host hello becomes the connection's user and its
// server-side subscriptions: the game channel, the player's own channel, the host channel) and
// its RPC proxy (answers, host commands), and publishes through Centrifugo's HTTP API: one
// publish per broadcast, a reveal's personal results as one batch of per-player publishes, the
// host's answer count at most every 20 ms. Usage:
//   node centrifugo_backend.cjs --port P --api-port A --api-key K --quiz quiz.json
'use strict';

const http = require('http');
const { Game, loadQuiz, parseArgs } = require('./game.cjs');

const args = parseArgs(process.argv);
const game = new Game(loadQuiz(args.quiz), () => Date.now() / 1000);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const COUNT_EVERY_MS = 20;
let timer = null;
let pendingCount = null;
let countTimer = null;

function api(method, body) {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port: Number(args['api-port']), path: `/api/${method}`, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length, 'X-API-Key': args['api-key'] },
    }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', (err) => { process.stderr.write(`api ${method}: ${err.message}\n`); resolve(); });
    req.end(data);
  });
}

const personal = (playerId) => `p_${playerId}`;

// Everything but the RPC caller's own reply goes out through the API.
function deliver(out, caller) {
  let reply = null;
  const batch = [];
  for (const { to, msg } of out) {
    if (to === 'everyone') {
      flushBatch(batch);
      api('publish', { channel: 'game', data: msg });
    } else if (to === 'host') {
      if (msg.type === 'answer_count') queueCount(msg);
      else api('publish', { channel: 'host', data: msg });
    } else if (to === caller && !reply) {
      reply = msg;
    } else {
      batch.push({ publish: { channel: personal(to), data: msg } });
    }
    if (msg.type === 'question') armTimer();
  }
  flushBatch(batch);
  return reply;
}

function flushBatch(batch) {
  if (batch.length) api('batch', { commands: batch.splice(0) });
}

function queueCount(msg) {
  pendingCount = msg;
  if (!countTimer) {
    countTimer = setTimeout(() => {
      countTimer = null;
      api('publish', { channel: 'host', data: pendingCount });
    }, COUNT_EVERY_MS);
  }
}

function armTimer() {
  clearTimeout(timer);
  timer = setTimeout(() => deliver(game.tick(), null), Math.max(0, (game.deadline - Date.now() / 1000) * 1000) + 1);
}

function connect(req) {
  const hello = req.data || {};
  if (hello.type === 'host') {
    return { user: 'host', channels: ['game', 'host'], data: { type: 'host_welcome', version: game.version, phase: game.phase } };
  }
  const r = game.join(hello.nickname, hello.device_id);
  api('publish', { channel: 'host', data: r.host });
  return { user: r.welcome.player_id, channels: ['game', personal(r.welcome.player_id)], data: r.welcome };
}

function rpc(req) {
  const msg = req.data || {};
  if (req.method === 'answer') {
    return deliver(game.answer(req.user, msg.question_index, msg.choices), req.user) || { type: 'ack' };
  }
  if (req.user !== 'host') throw new Error('host only');
  if (game.phase === 'question') clearTimeout(timer);
  deliver(game.command(req.method), null);
  return { type: 'ack' };
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let out;
    try {
      const body = JSON.parse(Buffer.concat(chunks));
      if (req.url === '/connect') out = { result: connect(body) };
      else if (req.url === '/rpc') out = { result: { data: rpc(body) } };
      else out = { error: { code: 1404, message: 'not found' } };
    } catch (err) {
      out = { error: { code: 1400, message: String(err.message) } };
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(out));
  });
}).listen(Number(args.port), '127.0.0.1', 1024, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
