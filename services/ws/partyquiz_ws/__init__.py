"""PartyQuiz game service: live games over WebSockets, with game state kept in Redis."""
