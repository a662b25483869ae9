"""PartyQuiz's benchmark suite: the game service side by side with Node peers and a raw floor.

Run by ``make bench`` (see bench.mk and docs/benchmarks.md). Nothing here is imported by the
product or by the timed test suite; only the pure parts (``stats``, ``report``) have unit tests.
"""
