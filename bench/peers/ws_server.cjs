// Minimal Node `ws` peer for PartyQuiz's benchmarks: one game, the shared in-memory Game, JSON
// frames shaped like PartyQuiz's, compression off. Broadcasts serialise once and send the same
// buffer to every socket, as an idiomatic ws app does. With --prebuilt 1 a broadcast also builds
// the WebSocket frame once (ws's Sender.frame) and writes the same bytes to every socket, which
// is what PartyQuiz's fan-out does: the fair peer for CPU per fan-out. Usage:
//   node ws_server.cjs --port P --quiz quiz.json [--prebuilt 1]
'use strict';

const http = require('http');
const { WebSocketServer, Sender } = require('ws');
const { Game, loadQuiz, parseArgs } = require('./game.cjs');

const args = parseArgs(process.argv);
const prebuilt = args.prebuilt === '1';
const quiz = loadQuiz(args.quiz);
const game = new Game(quiz, () => Date.now() / 1000);
const sockets = new Map(); // player_id -> ws
let host = null;
let timer = null;

function send(ws, msg) {
  if (ws && ws.readyState === 1) ws.send(Buffer.from(JSON.stringify(msg)), { binary: false });
}

function deliver(out) {
  for (const { to, msg } of out) {
    if (to === 'everyone') {
      const data = Buffer.from(JSON.stringify(msg));
      if (prebuilt) {
        const frame = Buffer.concat(Sender.frame(data, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
        for (const ws of sockets.values()) if (ws.readyState === 1) ws._socket.write(frame);
      } else {
        for (const ws of sockets.values()) if (ws.readyState === 1) ws.send(data, { binary: false });
      }
      if (host) send(host, msg);
    } else if (to === 'host') {
      send(host, msg);
    } else {
      send(sockets.get(to), msg);
    }
    if (msg.type === 'question') armTimer();
  }
}

function armTimer() {
  clearTimeout(timer);
  timer = setTimeout(() => deliver(game.tick()), Math.max(0, (game.deadline - Date.now() / 1000) * 1000) + 1);
}

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404);
  res.end();
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, maxPayload: 4096 });

wss.on('connection', (ws) => {
  let playerId = null;
  ws.on('message', (data) => {
    let msg;
    try { msg = JSON.parse(data); } catch { return send(ws, { type: 'error', code: 'bad_json', message: 'not JSON' }); }
    try {
      if (msg.type === 'join') {
        const r = game.join(msg.nickname, msg.device_id);
        playerId = r.welcome.player_id;
        sockets.set(playerId, ws);
        send(ws, r.welcome);
        send(host, r.host);
      } else if (msg.type === 'host') {
        host = ws;
        send(ws, { type: 'host_welcome', version: game.version, phase: game.phase });
      } else if (msg.type === 'answer') {
        deliver(game.answer(playerId, msg.question_index, msg.choices));
      } else if (ws === host) {
        if (game.phase === 'question' && msg.type !== 'question') clearTimeout(timer);
        deliver(game.command(msg.type));
      } else {
        send(ws, { type: 'error', code: 'forbidden', message: 'host only' });
      }
    } catch (err) {
      send(ws, { type: 'error', code: 'illegal', message: String(err.message) });
    }
  });
  ws.on('close', () => {
    if (playerId) sockets.delete(playerId);
    if (ws === host) host = null;
  });
});

server.listen(Number(args.port), '127.0.0.1', 1024, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
