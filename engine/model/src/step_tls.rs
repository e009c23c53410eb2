//! A step's `tls:` list: per-destination TLS a workflow needs for its own hosts (a private
//! CA, a client certificate), checked as far as the file alone allows. The loader checks
//! the rest (the host is allowed, the files exist and hold PEM), because it knows where the
//! workflow file is.

use crate::fields::{Field, Parser, expected, field};
use crate::template;
use crate::types::StepTls;
use crate::yaml::{Scalar, classify, marker_pos};
use marked_yaml::types::Node;

pub(crate) const STEP_TLS_FIELDS: &[&str] = &[
    "host",
    "ca",
    "client-cert",
    "client-key-secret",
    "insecure-skip-verify",
];

impl Parser<'_> {
    /// `tls: [{ host, ca, client-cert, client-key-secret, insecure-skip-verify }]`;
    /// `secrets` is the step's own list, which must grant the client key.
    pub(crate) fn step_tls(&mut self, f: &Field, secrets: &[String]) -> Option<Vec<StepTls>> {
        let Node::Sequence(items) = f.node else {
            let what = "a list like `[{ host: \"k8s.example:6443\", ca: k8s-ca.pem }]`";
            self.err(f.pos, &f.path, expected(what, f.node));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", f.path);
            let entry = Field {
                path: path.clone(),
                node: item,
                pos: marker_pos(item),
            };
            let Some(map) = self.mapping(
                &entry,
                "a mapping with `host` and `ca` or a client certificate",
            ) else {
                ok = false;
                continue;
            };
            self.check_keys(map, &path, STEP_TLS_FIELDS, "in a step's `tls` entry");
            let mut t = StepTls::default();
            match self.required(
                map,
                &path,
                "host",
                entry.pos,
                "in a `tls` entry",
                "the `host:port` it is for",
            ) {
                Some(h) => match self.tls_host(&h) {
                    Some(host) => t.host = host,
                    None => ok = false,
                },
                None => ok = false,
            }
            let text = |key: &str, p: &mut Parser| -> Result<Option<String>, ()> {
                match field(map, &path, key) {
                    Some(v) => p.non_empty_string(&v).map(Some).ok_or(()),
                    None => Ok(None),
                }
            };
            match (
                text("ca", self),
                text("client-cert", self),
                text("client-key-secret", self),
            ) {
                (Ok(ca), Ok(cert), Ok(key)) => {
                    t.ca = ca;
                    t.client_cert = cert;
                    t.client_key_secret = key;
                }
                _ => ok = false,
            }
            if let Some(v) = field(map, &path, "insecure-skip-verify") {
                match self.boolean(&v) {
                    Some(b) => t.insecure_skip_verify = b,
                    None => ok = false,
                }
            }
            ok &= self.check_step_tls(&t, map, &path, entry.pos, secrets);
            out.push(t);
        }
        ok.then_some(out)
    }

    fn tls_host(&mut self, h: &Field) -> Option<String> {
        let Node::Scalar(s) = h.node else {
            self.err(h.pos, &h.path, expected("a `host:port` string", h.node));
            return None;
        };
        if matches!(classify(s), Scalar::Null) {
            self.err(h.pos, &h.path, expected("a `host:port` string", h.node));
            return None;
        }
        let text = s.as_str();
        // Like `allow`, the host may be built from vars and is resolved now.
        let host = if template::is_templated(text) {
            self.resolve_vars(text, s, &h.path)?
        } else {
            text.to_string()
        };
        if host.starts_with("*.") {
            self.err(
                h.pos,
                &h.path,
                "a `tls` entry is for one host, not a `*.domain` pattern",
            );
            return None;
        }
        match crate::refs::check_host(&host) {
            Ok(()) => Some(host),
            Err(msg) => {
                self.err(h.pos, &h.path, msg);
                None
            }
        }
    }

    fn check_step_tls(
        &mut self,
        t: &StepTls,
        map: &marked_yaml::types::MarkedMappingNode,
        path: &str,
        at: Option<crate::diag::Pos>,
        secrets: &[String],
    ) -> bool {
        let pos_of = |key: &str| field(map, path, key).and_then(|f| f.pos).or(at);
        let mut ok = true;
        match (&t.client_cert, &t.client_key_secret) {
            (Some(_), None) => {
                self.err(
                    pos_of("client-cert"),
                    path,
                    "`client-cert` needs `client-key-secret` (the secret holding its private key)",
                );
                ok = false;
            }
            (None, Some(_)) => {
                self.err(pos_of("client-key-secret"), path, "`client-key-secret` needs `client-cert` (the certificate that goes with the key)");
                ok = false;
            }
            _ => {}
        }
        if let Some(k) = &t.client_key_secret
            && !secrets.contains(k)
        {
            let msg = format!(
                "the client key secret `{k}` must also be in the step's `secrets`, so it is granted and redacted like any secret"
            );
            self.err(
                pos_of("client-key-secret"),
                &format!("{path}.client-key-secret"),
                msg,
            );
            ok = false;
        }
        if t.insecure_skip_verify && t.ca.is_some() {
            self.err(
                pos_of("insecure-skip-verify"),
                path,
                "`insecure-skip-verify` ignores `ca`; keep one (preferably `ca`)",
            );
            ok = false;
        }
        if t.ca.is_none() && t.client_cert.is_none() && !t.insecure_skip_verify {
            self.err(at, path, "a `tls` entry needs `ca`, `client-cert` or `insecure-skip-verify`; without them the engine's settings apply anyway");
            ok = false;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_workflow;

    fn wf(tls: &str) -> String {
        format!(
            "apiVersion: medic/v1\nkind: Workflow\nname: w\nsteps:\n  - id: undo\n    phase: restore\n    uses: k8s-rollout\n    secrets: [KEY]\n    allow: [\"k8s.example:6443\"]\n    tls:\n{tls}"
        )
    }

    fn errors(tls: &str) -> Vec<String> {
        match parse_workflow("w.yaml", &wf(tls)) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_full_entry_is_read_as_written() {
        let doc = parse_workflow(
            "w.yaml",
            &wf("      - host: \"k8s.example:6443\"\n        ca: ca.pem\n        client-cert: c.pem\n        client-key-secret: KEY\n"),
        )
        .unwrap();
        let t = &doc.workflow.steps[0].tls[0];
        assert_eq!(t.host, "k8s.example:6443");
        assert_eq!(t.ca.as_deref(), Some("ca.pem"));
        assert_eq!(t.client_cert.as_deref(), Some("c.pem"));
        assert_eq!(t.client_key_secret.as_deref(), Some("KEY"));
        assert!(!t.insecure_skip_verify);
    }

    #[test]
    fn each_mistake_is_named_at_its_position() {
        let e = errors(
            "      - host: \"k8s.example:6443\"\n        client-cert: c.pem\n        client-key-secret: OTHER\n",
        );
        assert!(
            e.iter().any(|e| e.starts_with("w.yaml:13:28: steps[0].tls[0].client-key-secret: the client key secret `OTHER` must also be in the step's `secrets`")),
            "{e:?}"
        );
        let e = errors("      - host: \"k8s.example:6443\"\n        client-cert: c.pem\n");
        assert!(
            e.iter()
                .any(|e| e.contains("`client-cert` needs `client-key-secret`")),
            "{e:?}"
        );
        let e = errors(
            "      - host: \"k8s.example:6443\"\n        ca: ca.pem\n        insecure-skip-verify: true\n",
        );
        assert!(
            e.iter()
                .any(|e| e.contains("`insecure-skip-verify` ignores `ca`")),
            "{e:?}"
        );
        let e = errors("      - host: \"*.example\"\n        ca: ca.pem\n");
        assert!(
            e.iter().any(|e| e.contains("not a `*.domain` pattern")),
            "{e:?}"
        );
        let e = errors("      - host: \"k8s.example:6443\"\n        cert: c.pem\n");
        assert!(
            e.iter().any(|e| e.contains("unknown field `cert`")),
            "{e:?}"
        );
        let e = errors("      - host: \"k8s.example:6443\"\n");
        assert!(
            e.iter()
                .any(|e| e.contains("needs `ca`, `client-cert` or `insecure-skip-verify`")),
            "{e:?}"
        );
    }
}
