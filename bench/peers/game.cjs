// In-memory quiz game shared by the Node peers (ws and Socket.IO) of PartyQuiz's benchmarks.
// It mirrors the work PartyQuiz's game service does per message (phases, one answer per player
// per question, Kahoot-style scoring, ranks at reveal, top-N leaderboard) with the same JSON
// shapes, so the peers pay for the same fan-out and scoring. No I/O here: transports call in and
// get back {everyone, host, players} messages to send. Never a dependency of the product.
'use strict';

const LEADERBOARD_SIZE = 5;
const POINTS_BY_MODE = { standard: 1000, double: 2000, none: 0 };

// The quiz is PartyQuiz's import format: choices are {text}, points is a mode name.
function scoreAnswer(question, choices, elapsed) {
  const base = POINTS_BY_MODE[question.points || 'standard'];
  const correct = choices.length === question.correct.length
    && choices.every((c) => question.correct.includes(c));
  if (!correct) return { correct: false, points: 0 };
  if (elapsed < 0.5) return { correct: true, points: base };
  const t = Math.min(elapsed / question.time_limit_seconds, 1);
  return { correct: true, points: Math.round(base * (1 - t / 2)) };
}

class Game {
  constructor(quiz, now) {
    this.quiz = quiz;
    this.version = 0;
    this.phase = 'lobby';
    this.index = -1;
    this.players = new Map(); // player_id -> {nickname, score, streak, answered}
    this.openedAt = 0;
    this.deadline = 0;
    this.answered = 0;
    this.distribution = [];
    this.nextId = 1;
    this.now = now;
  }

  join(nickname, deviceId) {
    if (this.phase === 'ended') throw new Error('ended');
    const id = `p${this.nextId++}`;
    this.players.set(id, { id, nickname, deviceId, score: 0, streak: 0, answer: null });
    this.version += 1;
    return {
      welcome: {
        version: this.version, type: 'welcome', player_id: id, nickname, resume_token: `r.${id}.${deviceId}`,
        state: { phase: this.phase, player_count: this.players.size, question_count: this.quiz.questions.length },
      },
      host: {
        version: this.version, type: 'lobby', joined: [{ player_id: id, nickname }], left: [],
        player_count: this.players.size, joining_locked: false,
      },
    };
  }

  // Host command -> list of out messages {to: 'everyone'|'host'|player_id, msg}
  command(type) {
    if (type === 'start' || type === 'next') {
      if (this.phase === 'lobby' || this.phase === 'leaderboard') return this.openQuestion();
      if (this.phase === 'reveal') return this.showLeaderboard();
      throw new Error(`illegal ${type} in ${this.phase}`);
    }
    if (type === 'skip') {
      if (this.phase !== 'question') throw new Error(`illegal skip in ${this.phase}`);
      return this.close();
    }
    if (type === 'end') {
      this.phase = 'ended';
      this.version += 1;
      return [{ to: 'everyone', msg: { version: this.version, type: 'ended', reason: 'ended_by_host' } }];
    }
    throw new Error(`unknown command ${type}`);
  }

  openQuestion() {
    this.index += 1;
    if (this.index >= this.quiz.questions.length) {
      this.phase = 'podium';
      this.version += 1;
      return [{ to: 'everyone', msg: { version: this.version, type: 'podium', entries: this.top(3), player_count: this.players.size } }];
    }
    const q = this.quiz.questions[this.index];
    const now = this.now();
    this.phase = 'question';
    this.openedAt = now;
    this.deadline = now + q.time_limit_seconds;
    this.answered = 0;
    this.distribution = q.choices.map(() => 0);
    for (const p of this.players.values()) p.answer = null;
    this.version += 1;
    return [{
      to: 'everyone',
      msg: {
        version: this.version, type: 'question', index: this.index, total: this.quiz.questions.length,
        text: q.text, kind: q.kind, choices: q.choices.map((c) => c.text), time_limit: q.time_limit_seconds,
        points: q.points || 'standard', deadline: this.deadline, server_now: now,
      },
    }];
  }

  answer(playerId, questionIndex, choices) {
    const p = this.players.get(playerId);
    if (!p) return [{ to: playerId, msg: { type: 'error', code: 'not_joined', message: 'join first' } }];
    const now = this.now();
    if (this.phase !== 'question' || questionIndex !== this.index) {
      return [{ to: playerId, msg: { version: this.version, type: 'error', code: 'wrong_question', message: 'no such open question' } }];
    }
    if (now > this.deadline) return [{ to: playerId, msg: { type: 'error', code: 'late', message: 'too late' } }];
    if (p.answer !== null) return [{ to: playerId, msg: { type: 'error', code: 'duplicate', message: 'already answered' } }];
    const q = this.quiz.questions[this.index];
    if (!Array.isArray(choices) || choices.some((c) => !Number.isInteger(c) || c < 0 || c >= q.choices.length)) {
      return [{ to: playerId, msg: { version: this.version, type: 'error', code: 'invalid_choice', message: 'bad choice' } }];
    }
    const elapsed = now - this.openedAt;
    p.answer = { choices, elapsed };
    for (const c of choices) this.distribution[c] += 1;
    this.answered += 1;
    this.version += 1;
    const out = [
      { to: playerId, msg: { version: this.version, type: 'answer_receipt', question_index: this.index, choices, elapsed } },
      {
        to: 'host',
        msg: { version: this.version, type: 'answer_count', question_index: this.index, answered: this.answered, total: this.players.size },
      },
    ];
    if (this.answered === this.players.size) out.push(...this.close());
    return out;
  }

  tick() {
    if (this.phase === 'question' && this.now() >= this.deadline) return this.close();
    return [];
  }

  close() {
    const q = this.quiz.questions[this.index];
    for (const p of this.players.values()) {
      if (p.answer === null) { p.streak = 0; p.last = { correct: false, points: 0 }; continue; }
      const r = scoreAnswer(q, p.answer.choices, p.answer.elapsed);
      p.score += r.points;
      p.streak = r.correct ? p.streak + 1 : 0;
      p.last = r;
    }
    const ranked = [...this.players.values()].sort((a, b) => b.score - a.score);
    ranked.forEach((p, i) => { p.rank = i + 1; });
    this.phase = 'reveal';
    this.version += 1;
    const out = [{
      to: 'everyone',
      msg: {
        version: this.version, type: 'reveal', question_index: this.index, correct: q.correct,
        distribution: this.distribution, answered: this.answered, total: this.players.size, results: {},
      },
    }];
    for (const p of this.players.values()) {
      out.push({
        to: p.id,
        msg: {
          version: this.version, type: 'personal_result', question_index: this.index,
          result: {
            answered: p.answer !== null, correct: p.last.correct, points: p.last.points, score: p.score,
            rank: p.rank, streak: p.streak,
          },
        },
      });
    }
    return out;
  }

  top(n) {
    return [...this.players.values()].sort((a, b) => b.score - a.score).slice(0, n)
      .map((p, i) => ({ rank: i + 1, player_id: p.id, nickname: p.nickname, score: p.score, streak: p.streak }));
  }

  showLeaderboard() {
    this.phase = 'leaderboard';
    this.version += 1;
    return [{
      to: 'everyone',
      msg: {
        version: this.version, type: 'leaderboard', question_index: this.index, entries: this.top(LEADERBOARD_SIZE),
        player_count: this.players.size,
      },
    }];
  }
}

function loadQuiz(path) {
  return JSON.parse(require('fs').readFileSync(path, 'utf8'));
}

function parseArgs(argv) {
  const args = {};
  for (let i = 2; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  return args;
}

module.exports = { Game, loadQuiz, parseArgs, scoreAnswer };
