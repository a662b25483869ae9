# Local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok).
# Included by the top Makefile; see docs/development.md.

.PHONY: cluster-build
cluster-build: ## Build the pinned control-plane binaries and helm into the cache (no-op when cached)
	@hack/cluster/build.sh

.PHONY: cluster-up
cluster-up: cluster-build ## Start the local control plane (reuses a running one); prints the KUBECONFIG
	@hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local control plane, keeping its state
	@hack/cluster/down.sh

.PHONY: cluster-status
cluster-status: ## Show whether each control-plane component runs, with logs of crashed ones
	@hack/cluster/status.sh

.PHONY: cluster-reset
cluster-reset: cluster-build ## Stop the control plane, delete its state (etcd data, certs) and start afresh
	@hack/cluster/down.sh --purge
	@hack/cluster/up.sh
