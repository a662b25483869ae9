// Client side of each server's wire protocol for PartyQuiz's load generator: one class per
// protocol, all with the same surface (hello, send, message callback with the message's type).
//   json        PartyQuiz, the Node ws peers and the floors: one JSON object per text frame
//   socketio    Engine.IO v4 / Socket.IO over the WebSocket transport (Node and Python servers)
//   centrifugo  Centrifugo's JSON protocol: the join is the connect command (a connect proxy
//               answers it), answers and host commands are RPCs (an RPC proxy answers them),
//               broadcasts are publications; several replies may share one frame
// Messages reach the caller as (type, data, parse): parse() decodes the message object only
// when the caller needs its fields, so counting a fan-out stays cheap.
'use strict';

const { WebSocket } = require('ws');

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
  // onReady(): the connection may send its hello; onMessage(type, data, parse);
  // onClose(code or error string)
  constructor(url, origin, onReady, onMessage, onClose) {
    this.onReady = onReady;
    this.onMessage = onMessage;
    this.closed = false;
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      headers: { Origin: origin },
      handshakeTimeout: 30000,
    });
    this.ws.on('open', () => this.opened());
    this.ws.on('error', (err) => { if (!this.closed) { this.closed = true; onClose(String(err.code || err.message)); } });
    this.ws.on('close', (code) => { if (!this.closed) { this.closed = true; onClose(code); } });
    this.ws.on('message', (data) => this.received(data));
  }

  opened() { this.onReady(); }

  hello(msg) { this.send(msg); }

  send(obj) { if (this.ws.readyState === 1) this.ws.send(JSON.stringify(obj)); }

  received(data) { this.onMessage(jsonType(data), data, () => JSON.parse(data)); }

  close() { try { this.ws.terminate(); } catch { /* already gone */ } }
}

class SocketIoConn extends Conn {
  opened() { /* wait for Engine.IO's open packet, then the namespace */ }

  send(obj) {
    if (this.ws.readyState === 1) this.ws.send(`42${JSON.stringify([obj.type, obj])}`);
  }

  received(data) {
    const c = data[0];
    if (c === 0x34 && data[1] === 0x32) { // "42" event: 42["type",{...}]
      const end = data.indexOf(34, 4);
      this.onMessage(data.toString('latin1', 4, end), data, () => JSON.parse(data.toString('utf8').slice(2))[1]);
    } else if (c === 0x32) { // "2" ping
      this.ws.send('3');
    } else if (c === 0x30) { // "0" open
      this.ws.send('40');
    } else if (c === 0x34 && data[1] === 0x30) { // "40" namespace connected
      this.onReady();
    } else if (c === 0x34 && data[1] === 0x34) { // "44" connect error
      this.closed = true;
      this.ws.terminate();
    }
  }
}

class CentrifugoConn extends Conn {
  constructor(...args) {
    super(...args);
    this.nextId = 1;
    this.connectId = 0;
  }

  // The join or host hello travels as the connect command's data, for the connect proxy.
  hello(msg) {
    this.connectId = this.nextId++;
    this.raw({ id: this.connectId, connect: { data: msg, name: 'partyquiz-bench' } });
  }

  send(obj) { this.raw({ id: this.nextId++, rpc: { method: obj.type, data: obj } }); }

  raw(cmd) { if (this.ws.readyState === 1) this.ws.send(JSON.stringify(cmd)); }

  received(data) {
    const text = data.toString('utf8');
    let from = 0;
    while (from < text.length) {
      let to = text.indexOf('\n', from);
      if (to < 0) to = text.length;
      const line = text.slice(from, to);
      from = to + 1;
      if (!line) continue;
      const reply = JSON.parse(line);
      let msg = null;
      if (reply.push && reply.push.pub) {
        msg = reply.push.pub.data;
      } else if (reply.rpc) {
        msg = reply.rpc.data;
      } else if (reply.connect && reply.id === this.connectId) {
        msg = reply.connect.data;
      } else if (reply.error) {
        msg = { type: 'error', code: `centrifugo_${reply.error.code}`, message: reply.error.message };
      } else if (Object.keys(reply).length === 0) {
        this.ws.send('{}'); // ping: answer with a pong
      }
      if (msg && msg.type) this.onMessage(msg.type, line, () => msg);
    }
  }
}

const PROTOCOLS = { json: Conn, socketio: SocketIoConn, centrifugo: CentrifugoConn };

function connect(protocol, url, origin, onReady, onMessage, onClose) {
  const Kind = PROTOCOLS[protocol];
  if (!Kind) throw new Error(`unknown protocol ${protocol}`);
  return new Kind(url, origin, onReady, onMessage, onClose);
}

// One clock for every process of a run: CLOCK_MONOTONIC, in milliseconds.
const now = () => Number(process.hrtime.bigint()) / 1e6;
const selfCpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round2 = (x) => Math.round(x * 100) / 100;

module.exports = { connect, jsonType, now, selfCpuMs, sleep, round2 };
