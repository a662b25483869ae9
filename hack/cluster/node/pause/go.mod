module partyquiz.local/pause

go 1.26.0
