# Container images: build them with podman and prove them. Included by the top Makefile.
# PARTYQUIZ_IMAGE_REPO (default localhost) and PARTYQUIZ_IMAGE_TAG (default: the project
# version) name the images; see docs/images.md for pushing them to a real registry.

.PHONY: images
images: ## Build the web, ws and operator images with podman and print their sizes
	@hack/images/build.sh

.PHONY: images-test
images-test: ## Build the PostgreSQL, Redis and Caddy test images (stand-ins for the official images)
	@hack/images/build.sh test-postgres test-redis test-caddy

.PHONY: images-smoke
images-smoke: deps images images-test ## Run the built images: migrate+serve, bot game, drain, operator CLI, test images
	@hack/images/bootstrap.sh --smoke
	PARTYQUIZ_IMAGES_PREBUILT=1 $(PYTEST) tests/images
