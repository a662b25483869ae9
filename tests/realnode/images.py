"""The images the real-node tier runs, named the way hack/images/build.sh tags them.

Owns only names: which image plays which part. The tier's conftest builds them (and their OCI
archives) before the first test; the `images` fixture imports them into the node.
"""

from __future__ import annotations

import os

from tests.images.podman import project_version

# hack/images/build.sh names: <repo>/partyquiz-<name>:<tag>
BUILT = {
    "web": "web",
    "ws": "ws",
    "operator": "operator",
    "postgres": "test-postgres",
    "redis": "test-redis",
    # The web image plus one additive migration: the "next version" of the upgrade test.
    "web-upgrade": "test-web-upgrade",
    # The upgrade image whose /readyz never answers 200: the broken release of the rollback test.
    "web-never-ready": "test-web-never-ready",
}


def image_tag() -> str:
    return os.environ.get("PARTYQUIZ_IMAGE_TAG", project_version())


def image_refs() -> dict[str, str]:
    """Image references by the part they play."""
    repo = os.environ.get("PARTYQUIZ_IMAGE_REPO", "localhost")
    tag = image_tag()
    return {part: f"{repo}/partyquiz-{name}:{tag}" for part, name in BUILT.items()}


# The PostgreSQL and Redis test images are built from Debian bookworm's postgresql-15 and
# redis-server 7.0 (hack/images/test/). On the node they also carry those versions as their tags,
# the way a registry mirror of the official images would: the operator reads the major version
# from the tag and refuses one that is too old.
STORE_VERSIONS = {"postgres": "15", "redis": "7.0"}


def store_ref(built: str, part: str) -> str:
    """The name ``part``'s test image (built as ``built``) goes by on the node."""
    return f"{built.rsplit(':', 1)[0]}:{STORE_VERSIONS[part]}"
