// Minimal Node Socket.IO peer for PartyQuiz's benchmarks: WebSocket transport only, compression
// off, one room for the game, the shared in-memory Game. Each JSON message travels as the data of
// an event named after its `type`, so payload bytes match the other servers'. Usage:
//   node socketio_server.cjs --port P --quiz quiz.json
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { Game, loadQuiz, parseArgs } = require('./game.cjs');

const args = parseArgs(process.argv);
const quiz = loadQuiz(args.quiz);
const game = new Game(quiz, () => Date.now() / 1000);
const sockets = new Map(); // player_id -> socket
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

function emit(socket, msg) {
  if (socket) socket.emit(msg.type, msg);
}

function deliver(out) {
  for (const { to, msg } of out) {
    if (to === 'everyone') {
      io.to('game').emit(msg.type, msg);
    } else if (to === 'host') {
      emit(host, msg);
    } else {
      emit(sockets.get(to), msg);
    }
    if (msg.type === 'question') armTimer();
  }
}

function armTimer() {
  clearTimeout(timer);
  timer = setTimeout(() => deliver(game.tick()), Math.max(0, (game.deadline - Date.now() / 1000) * 1000) + 1);
}

function guarded(socket, fn) {
  return (msg) => {
    try { fn(msg || {}); } catch (err) { emit(socket, { type: 'error', code: 'illegal', message: String(err.message) }); }
  };
}

io.on('connection', (socket) => {
  let playerId = null;
  socket.on('join', guarded(socket, (msg) => {
    const r = game.join(msg.nickname, msg.device_id);
    playerId = r.welcome.player_id;
    sockets.set(playerId, socket);
    socket.join('game');
    emit(socket, r.welcome);
    emit(host, r.host);
  }));
  socket.on('host', guarded(socket, () => {
    host = socket;
    socket.join('game');
    emit(socket, { type: 'host_welcome', version: game.version, phase: game.phase });
  }));
  socket.on('answer', guarded(socket, (msg) => deliver(game.answer(playerId, msg.question_index, msg.choices))));
  for (const command of ['start', 'next', 'skip', 'end']) {
    socket.on(command, guarded(socket, () => {
      if (socket !== host) throw new Error('host only');
      if (game.phase === 'question') clearTimeout(timer);
      deliver(game.command(command));
    }));
  }
  socket.on('disconnect', () => {
    if (playerId) sockets.delete(playerId);
    if (socket === host) host = null;
  });
});

server.listen(Number(args.port), '127.0.0.1', 1024, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
