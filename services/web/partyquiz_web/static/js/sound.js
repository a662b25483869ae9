// Music and stings for the big screen, synthesised with Web Audio (no audio files to license).
// Owns the mute state (kept in localStorage) and the "reduced motion means quiet" rule: when the
// operating system asks for reduced motion the screen starts silent, and the host can still
// turn sound on. Browsers only start audio after a click or key press on the page; until then
// the music waits. Phones never load this module.

const MUTE_KEY = "partyquiz.screen.muted";

// Notes as semitones from A4 (440 Hz).
const hz = (semitones) => 440 * 2 ** (semitones / 12);
const LOBBY = [-9, -5, -2, 3, -2, -5, -9, -5, 0, 3, 7, 3];
const QUESTION = [-9, -9, -2, -9, -9, -2, -7, -4];
const REVEAL = [3, 7, 10, 15];
const FANFARE = [-2, 2, 5, 10, 5, 10, 14];

export class Sound {
  constructor() {
    this.reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    const stored = window.localStorage.getItem(MUTE_KEY);
    this.muted = stored === null ? this.reducedMotion : stored === "1";
    this.context = null;
    this.loop = null;
    this.mood = null;
    this.unlock = () => this.ensureContext();
    window.addEventListener("pointerdown", this.unlock);
    window.addEventListener("keydown", this.unlock);
    this.publish();
  }

  /** "on", "muted" or "off-reduced-motion" (muted because the system asks for less motion). */
  state() {
    if (!this.muted) return "on";
    return this.reducedMotion && window.localStorage.getItem(MUTE_KEY) === null ? "off-reduced-motion" : "muted";
  }

  publish() {
    document.body.dataset.sound = this.state();
  }

  toggle() {
    this.muted = !this.muted;
    window.localStorage.setItem(MUTE_KEY, this.muted ? "1" : "0");
    this.publish();
    if (this.muted) this.stopLoop();
    else {
      this.ensureContext();
      this.play(this.mood);
    }
  }

  ensureContext() {
    if (this.muted) return;
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!this.context) {
      this.context = new Context();
      this.master = this.context.createGain();
      this.master.gain.value = 0.18;
      this.master.connect(this.context.destination);
    }
    if (this.context.state === "suspended") this.context.resume().then(() => this.play(this.mood)).catch(() => {});
    else if (this.mood && !this.loop) this.play(this.mood);
  }

  tone(frequency, start, length, { type = "triangle", volume = 1 } = {}) {
    const ctx = this.context;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = type;
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(volume, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
    osc.connect(gain).connect(this.master);
    osc.start(start);
    osc.stop(start + length + 0.05);
  }

  stopLoop() {
    if (this.loop) window.clearInterval(this.loop);
    this.loop = null;
  }

  ready() {
    return !this.muted && this.context && this.context.state === "running";
  }

  /** Background music for a phase: "lobby", "question", or null for silence. */
  play(mood) {
    this.mood = mood;
    this.stopLoop();
    if (!mood || !this.ready()) return;
    const notes = mood === "lobby" ? LOBBY : QUESTION;
    const step = mood === "lobby" ? 0.32 : 0.25;
    const bar = () => {
      if (!this.ready()) return;
      const now = this.context.currentTime + 0.05;
      notes.forEach((n, i) => this.tone(hz(n), now + i * step, step * 0.9, { volume: mood === "lobby" ? 0.5 : 0.35 }));
    };
    bar();
    this.loop = window.setInterval(bar, notes.length * step * 1000);
  }

  /** A short sting: "reveal" when the answers show, "podium" for the winners. */
  sting(kind) {
    this.stopLoop();
    this.mood = null;
    if (!this.ready()) return;
    const notes = kind === "podium" ? FANFARE : REVEAL;
    const step = kind === "podium" ? 0.22 : 0.09;
    const now = this.context.currentTime + 0.05;
    notes.forEach((n, i) => this.tone(hz(n), now + i * step, i === notes.length - 1 ? 0.9 : step * 1.4, { type: "square", volume: 0.4 }));
  }

  close() {
    this.stopLoop();
    window.removeEventListener("pointerdown", this.unlock);
    window.removeEventListener("keydown", this.unlock);
    if (this.context) this.context.close().catch(() => {});
    delete document.body.dataset.sound;
  }
}
