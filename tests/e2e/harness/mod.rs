//! The harness: what the tests start and call, no tests. Real services on free 127.0.0.1
//! ports (stopped on drop), the `medic` binary in a data dir, an in-process engine, and the
//! checks shared by the provider doc pages.

/// Provider doc pages: their YAML examples pass `medic validate`.
pub mod docs;
/// The Kubernetes API test server (tests/k8s-api) and the real kubectl pointed at it.
pub mod kube_api;
/// Real Prometheus and Alertmanager, a controllable scrape target and a recording receiver.
pub mod prom_stack;
/// `medic serve` as a process, with the test token.
pub mod serve;
/// The `medic` binary, test components, an in-process engine and its `run` helper, the
/// example's stand-in service, free ports, the raw HTTP client.
pub mod support;
/// A real Synapse homeserver with users registered by shared secret.
pub mod synapse;
/// Real Unleash on a throwaway PostgreSQL cluster.
pub mod unleash;
