"""PartyQuiz domain core: quizzes, the game state machine, scoring, wire protocol, join codes.

Pure by contract: no I/O, no clock reads (callers pass ``now``), no randomness of its own
(callers pass a ``random.Random``), and no web, Redis or Kubernetes imports. import-linter
enforces the last part.
"""
