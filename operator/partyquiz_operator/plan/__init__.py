"""The pure core of the operator: every lifecycle decision, as data.

``lifecycle.decide`` turns a PartyQuiz and what a pass has seen into a ``Plan``; ``rollout``
judges a Deployment's rollout, ``status`` speaks the status vocabulary, ``drift`` tells whether a
live object matches what the operator wants. No I/O, no clock; neither kopf nor the Kubernetes
client is imported here (import-linter enforces it).
"""
