# Benchmarks: PartyQuiz's game service side by side with its peers (Node ws, Socket.IO,
# python-socketio, Centrifugo) and the C floor, embedded and on Redis, on this machine, in one
# run. Never part of `make test`. Results and logs go to $(PARTYQUIZ_CACHE)/bench/runs/; a full
# run on a quiet machine rewrites the "Game service", "Operator" and "Operator fail-fast" sections of
# docs/benchmarks.md and the raw figures in docs/benchmarks/ (see bench/README.md).
#   make bench                  the full suite (about an hour on a quiet 2-core machine)
#   make bench BENCH=quick      a small smoke run (200 players, 1 run; ~5 min); its figures stay
#                               in the run directory unless BENCH_ARGS has --docs
#   make bench BENCH_ARGS='--sizes 1000 --runs 3 --scenarios game --no-docs'
# B5 and B6 each start a control plane of their own on PARTYQUIZ_BENCH_CLUSTER_PORT_BASE (default 27000);
# give concurrent runs different bases.

BENCH ?= full
BENCH_ARGS ?=
BENCH_CACHE := $(PARTYQUIZ_CACHE)/bench

.PHONY: bench bench-deps
bench: deps bench-deps ## Run the benchmarks (BENCH=quick for a small run); updates docs/benchmarks.md
	$(RUN) python -m bench --profile $(BENCH) --peers-dir $(BENCH_CACHE) \
		--results-dir $(BENCH_CACHE)/runs $(BENCH_ARGS)

bench-deps: ## Install the benchmark peers into the cache (npm, python-socketio, C floor, Centrifugo)
	@bench/install.sh $(BENCH_CACHE)
