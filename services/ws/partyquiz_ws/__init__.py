"""PartyQuiz game service: live games over WebSockets, with game state kept in Redis.

``server`` (connections, probes, drain) → inbox → ``runner`` (the owner applies batches with
``engine``) → one publish → ``fanout`` on every replica. ``backends`` holds the storage
interfaces (``redis_backend``, ``memory_backend``); ``cli`` and ``bots`` are the console scripts.
The wire protocol is in ``partyquiz_core.protocol`` and docs/protocol.md.
"""
