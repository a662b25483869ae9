# Benchmarks (issue 10): PartyQuiz's game service side by side with Node Socket.IO, Node ws and
# a raw floor, on this machine, in one run. Never part of `make test`. Results and logs go to
# $(PARTYQUIZ_CACHE)/bench/runs/; a full run rewrites the "Game service" and "Operator" sections
# of docs/benchmarks.md.
#   make bench                  the full suite (1k/5k/10k players, 5 interleaved runs, B4, B5;
#                               ~20 min on a quiet 2-core machine, about an hour on a busy one)
#   make bench BENCH=quick      a small smoke run (200 players, 1 run; ~3 min); its figures stay
#                               in the run directory unless BENCH_ARGS has --docs
#   make bench BENCH_ARGS='--sizes 1000 --runs 3 --scenarios game --no-docs'

BENCH ?= full
BENCH_ARGS ?=
BENCH_CACHE := $(PARTYQUIZ_CACHE)/bench

.PHONY: bench bench-deps
bench: deps bench-deps ## Run the benchmarks (BENCH=quick for a small run); updates docs/benchmarks.md
	$(RUN) python -m bench --profile $(BENCH) --node-modules $(BENCH_CACHE)/node_modules \
		--results-dir $(BENCH_CACHE)/runs $(BENCH_ARGS)

bench-deps: ## Install the benchmark peers (Node, pinned npm packages into the cache) and Redis
	@bench/install.sh $(BENCH_CACHE)
