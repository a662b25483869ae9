# Local Kubernetes cluster: the control plane (etcd, kube-apiserver, controller-manager,
# scheduler) with kwok's simulated node, or with NODE=real a real node (kubelet, containerd,
# CoreDNS ...) in a network namespace of its own. Included by the top Makefile; see
# docs/development.md.

# NODE=kwok|real for cluster-build/cluster-up/cluster-reset; cluster-down and cluster-status
# follow the mode the state dir was started in.
NODE ?=
CLUSTER_NODE_ENV := $(if $(NODE),PARTYQUIZ_CLUSTER_NODE=$(NODE))
CLUSTER_BUILD_ARGS := $(if $(filter real,$(NODE)),--node)

.PHONY: cluster-build
cluster-build: ## Build the pinned cluster binaries and helm into the cache (NODE=real: node too; no-op when cached)
	@hack/cluster/build.sh $(CLUSTER_BUILD_ARGS)
	@$(if $(filter real,$(NODE)),hack/images/bootstrap.sh)

.PHONY: cluster-up
cluster-up: cluster-build ## Start the local cluster (NODE=real: a real node); reuses a running one, prints the KUBECONFIG
	@$(CLUSTER_NODE_ENV) hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster (a real node: everything it started, its namespaces, cgroups), keeping its state
	@hack/cluster/down.sh

.PHONY: cluster-status
cluster-status: ## Show whether each cluster component runs, with logs of crashed ones
	@hack/cluster/status.sh

.PHONY: cluster-reset
cluster-reset: cluster-build ## Stop the cluster, delete its state (etcd data, certs, node) and start afresh
	@hack/cluster/down.sh --purge
	@$(CLUSTER_NODE_ENV) hack/cluster/up.sh
