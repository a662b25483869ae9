"""PartyQuiz web service: host accounts, quizzes, games and history over HTTP (FastAPI)."""
