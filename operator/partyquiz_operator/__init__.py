"""PartyQuiz Kubernetes operator: turns a ``PartyQuiz`` manifest into a running stack."""
