"""Pure renderers: typed spec in, manifest dicts out, one module per object family.

``common`` holds names, labels and pod building blocks; ``workloads`` the web and game
Deployments and what scales or shields them; ``stores`` PostgreSQL, Redis and the credentials;
``network`` Services, NetworkPolicies and the Ingress; ``jobs`` migration and backup Jobs;
``monitoring`` the Prometheus Operator objects. Nothing here does I/O, reads the clock or the
environment, or imports kopf or the Kubernetes client; randomness comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping

from partyquiz_operator.render import jobs, network, stores, workloads
from partyquiz_operator.render.common import Instance, Manifest, postgres_name, redis_name


def infrastructure(
    inst: Instance, *, credentials: Manifest, claims: Mapping[str, str | None]
) -> list[list[Manifest]]:
    """Return every child that does not depend on the revision, in waves applied in order.

    Wave 0 holds what the data stores' pods need from their first instant (their account, the
    credentials, the NetworkPolicies that fence them), wave 1 their StatefulSets (the slowest
    step before a migration can run), wave 2 everything else. ``claims`` maps a StatefulSet
    name to the storage of its existing claim template (immutable, so it is kept).
    """
    first = [workloads.build_service_account(inst), credentials]
    first += network.build_network_policies(inst)
    stateful = []
    if inst.spec.database.managed is not None:
        name = postgres_name(inst)
        stateful.append(stores.build_postgres_statefulset(inst, claim=claims.get(name)))
    if inst.spec.redis.managed is not None:
        name = redis_name(inst)
        stateful.append(stores.build_redis_statefulset(inst, claim=claims.get(name)))
    rest = [*network.build_services(inst), *workloads.build_disruption_budgets(inst)]
    if inst.spec.ingress is not None:
        rest.append(network.build_ingress(inst))
    if inst.spec.web.autoscaling is not None:
        rest.append(workloads.build_web_autoscaler(inst))
    if inst.spec.database.managed is not None:
        rest.append(network.build_backup_network_policy(inst))
        cronjob = jobs.build_backup_cronjob(inst)
        if cronjob is not None:
            rest += [jobs.build_backup_pvc(inst), cronjob]
    return [first, stateful, rest]
