// The game-service connection shared by the player and host pages (see docs/protocol.md).
// Owns reconnecting (back-off, 1012 = at once, 4003 and 4009 = never), dropping stale versions, the
// server clock estimate and keep-alive pings. It draws nothing: pages get messages and states.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
const PING_EVERY_MS = 15000;
const CLOSE_KICKED = 4003;
// The same player connected again elsewhere (another tab or device): coming back would only
// push that one out in turn.
const CLOSE_REPLACED = 4009;
const CLOSE_RESTARTING = 1012;
const DECODER = new TextDecoder();

export class GameConnection {
  /**
   * @param {object} options
   * @param {string} options.url the game service WebSocket URL
   * @param {() => object} options.hello the first frame (join, resume or host) for each attempt
   * @param {(msg: object) => void} options.onMessage every message that is not stale
   * @param {(status: string, detail?: object) => void} options.onStatus
   *   "connecting" | "connected" | "reconnecting" (detail.delay ms) | "stopped"
   */
  constructor({ url, hello, onMessage, onStatus }) {
    this.url = url;
    this.hello = hello;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.version = 0;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.pinger = null;
    this.stopped = true;
    this.welcomed = false;
    this.everWelcomed = false;
    this.offset = 0; // server clock minus client clock, seconds
    this.bestRtt = Infinity;
    this.onOnline = () => {
      if (!this.stopped && !this.socket) this.open();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.open();
  }

  /** Stop for good (kicked, game over, or the page gives up). */
  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
    window.clearInterval(this.pinger);
    window.removeEventListener("online", this.onOnline);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000);
    this.onStatus("stopped");
  }

  /** Send a frame now; false when there is no open connection (the caller may retry later). */
  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || !this.welcomed) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Server time now, in epoch seconds, from the last clock estimate. */
  serverNow() {
    return Date.now() / 1000 + this.offset;
  }

  open() {
    window.clearTimeout(this.timer);
    if (this.stopped) return;
    this.welcomed = false;
    this.onStatus(this.everWelcomed ? "reconnecting" : "connecting", { delay: 0 });
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.retry(null);
      return;
    }
    this.socket = socket;
    // The protocol promises text frames, but some servers send JSON as binary frames; read both.
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      socket.send(JSON.stringify(this.hello()));
      this.ping();
      window.clearInterval(this.pinger);
      this.pinger = window.setInterval(() => this.ping(), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      let msg;
      try {
        const text = typeof event.data === "string" ? event.data : DECODER.decode(event.data);
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (msg && typeof msg === "object") this.receive(msg);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      window.clearInterval(this.pinger);
      this.retry(event.code);
    });
  }

  ping() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "ping", t: Date.now() / 1000 }));
    }
  }

  receive(msg) {
    if (msg.type === "pong") {
      const now = Date.now() / 1000;
      if (typeof msg.t === "number" && typeof msg.server_now === "number") {
        const rtt = Math.max(0, now - msg.t);
        // The fastest round trip gives the tightest estimate of the server clock.
        if (rtt <= this.bestRtt * 1.5) {
          this.bestRtt = Math.min(this.bestRtt, rtt);
          this.offset = msg.server_now + rtt / 2 - now;
        }
      }
      return;
    }
    const snapshot = msg.type === "welcome" || msg.type === "host_welcome";
    if (snapshot) {
      // A snapshot is the whole truth after a (re)connect, even from a restarted service.
      this.version = msg.version || 0;
      this.welcomed = true;
      this.everWelcomed = true;
      this.attempt = 0;
      this.onStatus("connected");
    } else if (typeof msg.version === "number" && msg.version > 0) {
      if (msg.version < this.version) return;
      this.version = msg.version;
    }
    if (this.bestRtt === Infinity && typeof msg.server_now === "number") {
      this.offset = msg.server_now - Date.now() / 1000;
    }
    this.onMessage(msg);
  }

  retry(code) {
    if (this.stopped) return;
    if (code === CLOSE_KICKED || code === CLOSE_REPLACED) {
      this.stop();
      return;
    }
    let delay;
    if (code === CLOSE_RESTARTING && this.attempt === 0) {
      // A replica is draining: another one can take us now. Only once in a row, so a service
      // that keeps refusing is not hammered.
      delay = 0;
    } else {
      const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      delay = Math.round(base * (0.8 + Math.random() * 0.4));
    }
    this.attempt += 1;
    this.onStatus("reconnecting", { delay, code });
    this.timer = window.setTimeout(() => this.open(), delay);
  }
}

/**
 * Whether `now` is still before `at`, the end of a question's step ("get ready" until
 * `showsAt`, reading until `opensAt`) as a message of the server sent it, with its clock
 * (`serverNow`) at sending. A step that had ended when the message left has nothing left: a page
 * whose estimate of the server's clock lags a little would otherwise flash it ("Get ready!",
 * "Answers open in 0") for as long as it lags.
 */
export function before(at, serverNow, now) {
  return Boolean(at) && at > (serverNow ?? 0) && now < at;
}

/**
 * How long until the question step drawn at `now` ("ready" until `showsAt`, "read" until
 * `opensAt`) ends, in ms; null for answering, which ends with the question. Take the step and
 * this from one reading of the clock: read twice, a draw that outlasted what was left of the
 * step would leave no timer and the step stuck.
 */
export function stepEndsIn(step, { showsAt, opensAt }, now) {
  const ends = { ready: showsAt, read: opensAt }[step];
  return ends ? Math.max(0, ends - now) * 1000 + 30 : null;
}

/**
 * A countdown drawn from the server's deadline: `deadline - server_now` of the same message is
 * the time left when it arrived, so a wrong client clock does not move the end.
 */
export class Countdown {
  constructor(countEl, fillEl, onTick) {
    this.countEl = countEl;
    this.fillEl = fillEl;
    this.onTick = onTick || (() => {});
    this.endAt = null;
    this.total = 1;
    this.frozen = null;
    this.handle = null;
  }

  run(deadline, serverNow, totalSeconds) {
    this.total = Math.max(1, totalSeconds);
    this.frozen = null;
    this.endAt = performance.now() + Math.max(0, deadline - serverNow) * 1000;
    this.schedule();
  }

  freeze(remaining, totalSeconds) {
    this.total = Math.max(1, totalSeconds || this.total);
    this.frozen = Math.max(0, remaining);
    this.endAt = null;
    window.clearInterval(this.handle);
    this.draw(this.frozen);
  }

  stop() {
    window.clearInterval(this.handle);
    this.handle = null;
  }

  remaining() {
    if (this.frozen !== null) return this.frozen;
    if (this.endAt === null) return 0;
    return Math.max(0, (this.endAt - performance.now()) / 1000);
  }

  schedule() {
    window.clearInterval(this.handle);
    this.draw(this.remaining());
    this.handle = window.setInterval(() => {
      const left = this.remaining();
      this.draw(left);
      if (left <= 0) this.stop();
    }, 100);
  }

  draw(left) {
    const seconds = Math.ceil(left);
    if (this.countEl.textContent !== String(seconds)) {
      this.countEl.textContent = String(seconds);
      this.onTick(seconds);
    }
    if (this.fillEl) this.fillEl.style.width = `${Math.min(100, (left / this.total) * 100)}%`;
  }
}
