"""Discovery documents: what kubectl reads to map `deploy`/`deployments`/`rs` to apps/v1.

Legacy (unaggregated) discovery: kubectl 1.32 asks for the aggregated format first
(`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...`) and
falls back to these documents when the server answers plain `application/json`.
"""

KIND = {"deployments": "Deployment", "replicasets": "ReplicaSet"}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

DOCS = {
    "/version": {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-medic-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    },
    "/api": {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    },
    # Of the core group only namespaces (read-only, every name exists): an empty list would
    # make kubectl warn that discovery is incomplete.
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False,
         "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
    ]},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{
            "name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
        }],
    },
    "/apis/apps": {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": True,
             "kind": "Deployment", "verbs": _VERBS, "shortNames": ["deploy"], "categories": ["all"]},
            {"name": "deployments/status", "singularName": "", "namespaced": True,
             "kind": "Deployment", "verbs": ["get", "patch", "update"]},
            # The scale subresources are autoscaling/v1 Scale objects: kubectl's scale
            # client reads the group and version from here.
            {"name": "deployments/scale", "singularName": "", "namespaced": True,
             "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
            {"name": "replicasets", "singularName": "replicaset", "namespaced": True,
             "kind": "ReplicaSet", "verbs": _VERBS, "shortNames": ["rs"], "categories": ["all"]},
            {"name": "replicasets/status", "singularName": "", "namespaced": True,
             "kind": "ReplicaSet", "verbs": ["get", "patch", "update"]},
            {"name": "replicasets/scale", "singularName": "", "namespaced": True,
             "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
        ],
    },
}
