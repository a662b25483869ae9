// Minimal Node Socket.IO peer for PartyQuiz's benchmarks: WebSocket transport only, compression
// off, one room for the game, the shared in-memory Game. Each JSON message travels as the data of
// an event named after its `type`, so payload bytes match the other servers'. Usage:
//   node socketio_server.cjs --port P --quiz quiz.json [--redis-port R --owner 1|0]
// With --redis-port, nodes share rooms through @socket.io/redis-adapter, as a Socket.IO app
// scaled to several nodes does: the node the host connects to (--owner 1) keeps the game;
// the others forward joins and answers to it with serverSideEmit, and the owner's broadcasts
// and replies reach their sockets through the adapter (one Redis PUBLISH per broadcast, and one
// per message to a socket on another node). Nothing is stored in Redis: unlike PartyQuiz's
// inbox, an answer on its way to the owner is lost if the owner dies.
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { Game, loadQuiz, parseArgs } = require('./game.cjs');

const args = parseArgs(process.argv);
const quiz = loadQuiz(args.quiz);
const clustered = Boolean(args['redis-port']);
const owner = !clustered || args.owner === '1';
const game = owner ? new Game(quiz, () => Date.now() / 1000) : null;
const sids = new Map(); // player_id -> socket id (any node)
const players = new Map(); // socket id -> player_id
let host = null;
let timer = null;

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404);
  res.end();
});
const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: 4096,
});

// To one socket: directly when it is on this node, else through the adapter.
function emitTo(sid, msg) {
  if (!sid) return;
  const local = io.sockets.sockets.get(sid);
  if (local) local.emit(msg.type, msg);
  else if (clustered) io.to(sid).emit(msg.type, msg);
}

function deliver(out) {
  for (const { to, msg } of out) {
    if (to === 'everyone') {
      io.to('game').emit(msg.type, msg);
    } else if (to === 'host') {
      if (host) host.emit(msg.type, msg);
    } else {
      emitTo(sids.get(to), msg);
    }
    if (msg.type === 'question') armTimer();
  }
}

function armTimer() {
  clearTimeout(timer);
  timer = setTimeout(() => deliver(game.tick()), Math.max(0, (game.deadline - Date.now() / 1000) * 1000) + 1);
}

function failed(sid, err) {
  emitTo(sid, { type: 'error', code: 'illegal', message: String(err.message) });
}

// The owner's side of a join and an answer, whichever node the socket is on.
function join(sid, msg) {
  try {
    const r = game.join(msg.nickname, msg.device_id);
    sids.set(r.welcome.player_id, sid);
    players.set(sid, r.welcome.player_id);
    if (clustered && !io.sockets.sockets.has(sid)) io.in(sid).socketsJoin('game');
    else io.sockets.sockets.get(sid).join('game');
    emitTo(sid, r.welcome);
    if (host) host.emit(r.host.type, r.host);
  } catch (err) { failed(sid, err); }
}

function answer(sid, msg) {
  try { deliver(game.answer(players.get(sid), msg.question_index, msg.choices)); } catch (err) { failed(sid, err); }
}

if (clustered) {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pub = createClient({ url: `redis://127.0.0.1:${args['redis-port']}` });
  const sub = pub.duplicate();
  Promise.all([pub.connect(), sub.connect()]).then(() => {
    io.adapter(createAdapter(pub, sub));
    listen();
  });
  if (owner) {
    io.on('join', (sid, msg) => join(sid, msg));
    io.on('answer', (sid, msg) => answer(sid, msg));
  }
} else {
  listen();
}

io.on('connection', (socket) => {
  socket.on('join', (msg) => {
    msg = msg || {};
    if (owner) join(socket.id, msg);
    else io.serverSideEmit('join', socket.id, { nickname: msg.nickname, device_id: msg.device_id });
  });
  socket.on('answer', (msg) => {
    msg = msg || {};
    if (owner) answer(socket.id, msg);
    else io.serverSideEmit('answer', socket.id, { question_index: msg.question_index, choices: msg.choices });
  });
  socket.on('host', () => {
    if (!owner) return failed(socket.id, new Error('the game is on another node'));
    host = socket;
    socket.join('game');
    socket.emit('host_welcome', { type: 'host_welcome', version: game.version, phase: game.phase });
    return undefined;
  });
  for (const command of ['start', 'next', 'skip', 'end']) {
    socket.on(command, () => {
      try {
        if (socket !== host) throw new Error('host only');
        if (game.phase === 'question') clearTimeout(timer);
        deliver(game.command(command));
      } catch (err) { failed(socket.id, err); }
    });
  }
  socket.on('disconnect', () => {
    if (socket === host) host = null;
  });
});

function listen() {
  server.listen(Number(args.port), '127.0.0.1', 1024, () => process.stdout.write('ready\n'));
}
process.on('SIGTERM', () => process.exit(0));
