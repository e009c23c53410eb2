//! TLS per destination for the steps' outgoing HTTPS requests.
//!
//! wasmtime-wasi-http's own sender (`default_send_request`) trusts the public web roots
//! only, offers no client certificate and reports every certificate problem as a bare
//! TLS error. A Kubernetes API server presents a certificate from the cluster's own CA and
//! often wants a client certificate, so the host makes HTTPS connections itself with
//! rustls: per `host:port`, a private CA bundle, a client certificate and key (mutual TLS),
//! or, only where explicitly asked, no verification at all. Destinations without an entry
//! use the public roots (webpki-roots), as before. A certificate problem becomes a
//! [`TlsProblem`] that names the host and the reason, which the sandbox turns into the
//! attempt's error.

use http_body_util::BodyExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// TLS settings for one destination, as configured (`[[tls]]` in medic.toml, or a
/// kubeconfig context). PEM text, not paths: the caller reads files and secrets.
#[derive(Clone, Default)]
pub struct TlsDestination {
    /// `host:port` (port 443 when left out), as in a step's `allow:` list.
    pub host: String,
    /// PEM bundle of CA certificates to trust for this host, instead of the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain for mutual TLS (with `client_key_pem`).
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM private key of the client certificate. A secret: never printed.
    pub client_key_pem: Option<Vec<u8>>,
    /// Accept any server certificate. Warned about on every connection.
    pub insecure_skip_verify: bool,
    /// Where the entry came from, for messages (e.g. `medic.toml [[tls]] #1`).
    pub origin: String,
}

impl TlsDestination {
    /// A step's `tls` entry with its files read: `ca` and `client_cert` are paths (the
    /// loader made them absolute), `client_key_pem` the value of its `client_key_secret`.
    /// `origin` names the step for messages, e.g. `step rollback tls[0]`.
    ///
    /// # Errors
    /// [`TlsError::Invalid`] naming the host and the file when a file cannot be read, or the
    /// secret named by `client_key_secret` has no value.
    pub fn from_step(
        t: &medic_model::StepTls,
        origin: String,
        client_key_pem: Option<String>,
    ) -> Result<TlsDestination, TlsError> {
        let err = |message: String| TlsError::Invalid {
            host: normalise_host(&t.host),
            origin: origin.clone(),
            message,
        };
        let read = |what: &str, path: &str| {
            std::fs::read(path).map_err(|e| err(format!("{what}: cannot read {path}: {e}")))
        };
        let ca_pem = t.ca.as_deref().map(|p| read("ca", p)).transpose()?;
        let client_cert_pem = t
            .client_cert
            .as_deref()
            .map(|p| read("client-cert", p))
            .transpose()?;
        let client_key_pem = match (&t.client_key_secret, client_key_pem) {
            (Some(_), Some(k)) => Some(k.into_bytes()),
            (Some(name), None) => {
                return Err(err(format!(
                    "client-key-secret: the secret {name} has no value"
                )));
            }
            (None, _) => None,
        };
        Ok(TlsDestination {
            host: t.host.clone(),
            ca_pem,
            client_cert_pem,
            client_key_pem,
            insecure_skip_verify: t.insecure_skip_verify,
            origin,
        })
    }
}

impl std::fmt::Debug for TlsDestination {
    // The client key is a secret; say only whether there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDestination")
            .field("host", &self.host)
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field(
                "client_key",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("origin", &self.origin)
            .finish()
    }
}

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The destination's settings are unusable: bad PEM, a key without a certificate, ...
    #[error("TLS settings for {host} ({origin}): {message}")]
    Invalid {
        /// The destination, `host:port`.
        host: String,
        /// Where the settings came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The client configurations for every configured destination, plus the default (public
/// roots) for the rest. Cheap to clone.
#[derive(Clone)]
pub struct TlsSettings {
    by_host: Arc<HashMap<String, Arc<Destination>>>,
    public: Arc<ClientConfig>,
}

struct Destination {
    config: Arc<ClientConfig>,
    insecure: bool,
    origin: String,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hosts: Vec<&String> = self.by_host.keys().collect();
        hosts.sort();
        f.debug_struct("TlsSettings")
            .field("hosts", &hosts)
            .finish()
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            by_host: Arc::new(HashMap::new()),
            public: Arc::new(
                builder()
                    .with_root_certificates(public_roots())
                    .with_no_client_auth(),
            ),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
}

fn public_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

/// `host:port` in lower case, port 443 when left out; `[v6]:port` kept bracketed.
pub fn normalise_host(host: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    let has_port = match h.rsplit_once(':') {
        Some((before, p)) => {
            p.parse::<u16>().is_ok() && (!before.contains(':') || before.ends_with(']'))
        }
        None => false,
    };
    if has_port { h } else { format!("{h}:443") }
}

impl TlsSettings {
    /// Builds a client configuration per destination.
    ///
    /// # Errors
    /// [`TlsError::Invalid`] naming the host when a PEM bundle holds no certificate, a
    /// certificate or key cannot be parsed, only one of certificate and key is given, or
    /// the same host is configured twice.
    pub fn new(destinations: Vec<TlsDestination>) -> Result<TlsSettings, TlsError> {
        let mut by_host = HashMap::new();
        for d in destinations {
            let host = normalise_host(&d.host);
            let err = |message: String| TlsError::Invalid {
                host: host.clone(),
                origin: d.origin.clone(),
                message,
            };
            let b = if d.insecure_skip_verify {
                builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            } else {
                let mut roots = RootCertStore::empty();
                match &d.ca_pem {
                    Some(pem) => {
                        let certs = CertificateDer::pem_slice_iter(pem)
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| err(format!("ca: not a PEM certificate bundle: {e}")))?;
                        if certs.is_empty() {
                            return Err(err("ca: the file holds no PEM certificate".into()));
                        }
                        for c in certs {
                            roots
                                .add(c)
                                .map_err(|e| err(format!("ca: unusable certificate: {e}")))?;
                        }
                    }
                    None => roots = public_roots(),
                }
                builder().with_root_certificates(roots)
            };
            let config = match (&d.client_cert_pem, &d.client_key_pem) {
                (Some(cert), Some(key)) => {
                    let chain = CertificateDer::pem_slice_iter(cert)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| err(format!("client certificate: not PEM: {e}")))?;
                    if chain.is_empty() {
                        return Err(err("client certificate: no PEM certificate found".into()));
                    }
                    // The parser's message could quote the key; say only what is wrong.
                    let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
                        err("client key: not a PEM private key (PKCS#8, PKCS#1 or SEC1)".into())
                    })?;
                    b.with_client_auth_cert(chain, key).map_err(|e| {
                        err(format!(
                            "client certificate and key do not go together or are unusable: {e}"
                        ))
                    })?
                }
                (None, None) => b.with_no_client_auth(),
                (Some(_), None) => {
                    return Err(err("a client certificate needs its key too".into()));
                }
                (None, Some(_)) => {
                    return Err(err("a client key needs its certificate too".into()));
                }
            };
            let dest = Destination {
                config: Arc::new(config),
                insecure: d.insecure_skip_verify,
                origin: d.origin.clone(),
            };
            if by_host.insert(host.clone(), Arc::new(dest)).is_some() {
                return Err(err("configured twice; keep one entry per host".into()));
            }
        }
        Ok(TlsSettings {
            by_host: Arc::new(by_host),
            ..TlsSettings::default()
        })
    }

    /// These settings with `over` in the place of any entry for the same host: a step's own
    /// `tls` list over the engine's `[[tls]]`.
    ///
    /// # Errors
    /// As [`TlsSettings::new`], for the entries of `over`.
    pub fn with_overrides(&self, over: Vec<TlsDestination>) -> Result<TlsSettings, TlsError> {
        let extra = TlsSettings::new(over)?;
        let mut by_host = (*self.by_host).clone();
        by_host.extend(extra.by_host.iter().map(|(h, d)| (h.clone(), d.clone())));
        Ok(TlsSettings {
            by_host: Arc::new(by_host),
            public: self.public.clone(),
        })
    }

    /// The destinations with their own settings, `host:port`, sorted.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.by_host.keys().cloned().collect();
        hosts.sort();
        hosts
    }

    fn for_authority(&self, authority: &str) -> (Arc<ClientConfig>, Option<String>) {
        match self.by_host.get(&normalise_host(authority)) {
            Some(d) => (d.config.clone(), d.insecure.then(|| d.origin.clone())),
            None => (self.public.clone(), None),
        }
    }
}

/// Why a TLS connection failed, in words for the person on call: the host and the
/// reason (unknown issuer, expired, wrong name, client certificate refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsProblem(pub(crate) String);

/// What sending failed with: the guest's error code, and for certificate problems the
/// full reason for the attempt's error.
pub(crate) struct SendFailure {
    pub(crate) error: HttpError,
    pub(crate) problem: Option<TlsProblem>,
}

impl From<HttpError> for SendFailure {
    fn from(error: HttpError) -> Self {
        SendFailure {
            error,
            problem: None,
        }
    }
}

/// Sends an HTTPS request with the destination's TLS settings and returns the response
/// whose body streams from a spawned connection task. Plain HTTP goes to wasmtime's
/// default sender unchanged.
pub(crate) async fn send(
    settings: &TlsSettings,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, SendFailure> {
    if request.uri().scheme() != Some(&http::uri::Scheme::HTTPS) {
        let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
        // The connection future drives the body: it must run while the body is read.
        tokio::spawn(io);
        return Ok(response.map(|b| b.boxed_unsync()));
    }
    let authority = request
        .uri()
        .authority()
        .ok_or(HttpError::HttpRequestUriInvalid)?;
    let authority = match authority.port() {
        Some(_) => authority.to_string(),
        None => format!("{authority}:443"),
    };
    let (config, insecure) = settings.for_authority(&authority);
    if let Some(origin) = insecure {
        // Loud on every use: a skipped verification must never become normal.
        eprintln!(
            "medic: WARNING: TLS certificate verification is OFF for {authority} ({origin}: insecure_skip_verify); anyone on the path can impersonate this server"
        );
    }
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(Duration::from_secs(600));
    let tcp =
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&authority))
            .await
        {
            Ok(s) => s.map_err(HttpError::Connect)?,
            Err(_) => return Err(HttpError::ConnectionTimeout.into()),
        };
    let name = server_name(&authority).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = match tokio::time::timeout(connect_timeout, connector.connect(name, tcp)).await {
        Err(_) => return Err(HttpError::ConnectionTimeout.into()),
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(failure(&authority, &e)),
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await
            .map_err(HttpError::from)?;
    tokio::spawn(conn);
    // The request line carries only the path: scheme and authority are for proxies.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failure(&authority, &e))?;
    Ok(response.map(|b| b.map_err(HttpError::from).boxed_unsync()))
}

/// The rustls server name of `host:port` (an IP literal or a DNS name).
fn server_name(authority: &str) -> Result<ServerName<'static>, String> {
    if let Ok(addr) = authority.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::from(addr.ip()));
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    ServerName::try_from(host)
        .map(|n| n.to_owned())
        .map_err(|e| e.to_string())
}

/// A failed handshake or exchange: a certificate problem gets its reason and the host;
/// anything else stays the guest's ordinary error.
fn failure(authority: &str, e: &(dyn std::error::Error + 'static)) -> SendFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        // io::Error's `source()` skips the error it wraps, so look inside it.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(t) = err.downcast_ref::<rustls::Error>().or(inner) {
            let (error, reason) = describe(t);
            return SendFailure {
                error,
                problem: Some(TlsProblem(format!("TLS to {authority}: {reason}"))),
            };
        }
        source = err.source();
    }
    let error = match e.downcast_ref::<hyper::Error>() {
        Some(h) if h.is_timeout() => HttpError::HttpResponseTimeout,
        _ => HttpError::ConnectionTerminated,
    };
    SendFailure {
        error,
        problem: None,
    }
}

/// The guest's error code and the person's reason for a rustls error.
fn describe(e: &rustls::Error) -> (HttpError, String) {
    use rustls::AlertDescription as A;
    const CA_HINT: &str = "give medic the CA that signed it (`ca` in a [[tls]] entry for this host in medic.toml, or the kubeconfig context's certificate-authority)";
    let cert = |reason: String| (HttpError::TlsCertificateError, reason);
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => cert(format!(
                "the server's certificate is not trusted: unknown issuer (signed by a CA medic does not trust for this host); {CA_HINT}"
            )),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => cert(format!(
                "the server's certificate has expired ({c:?}); the server needs a renewed certificate"
            )),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => cert(
                format!("the server's certificate is not valid yet ({c:?}); check the clocks"),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                cert(format!(
                    "the server's certificate is for another name: wrong name ({c:?}); use the server name its certificate names"
                ))
            }
            CertificateError::Revoked => cert("the server's certificate is revoked".into()),
            CertificateError::BadSignature => {
                cert("the server's certificate has a bad signature".into())
            }
            other => cert(format!("the server's certificate was refused: {other:?}")),
        },
        rustls::Error::AlertReceived(
            a @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::HandshakeFailure
            | A::CertificateUnknown
            | A::AccessDenied),
        ) => (
            HttpError::TlsAlertReceived {
                alert_id: Some(u8::from(*a)),
                alert_message: Some(format!("{a:?}")),
            },
            format!(
                "the server refused the connection ({a:?}): it wants a client certificate it trusts; configure `client_cert` and `client_key` for this host (or the kubeconfig user's client-certificate)"
            ),
        ),
        rustls::Error::AlertReceived(a) => (
            HttpError::TlsAlertReceived {
                alert_id: Some(u8::from(*a)),
                alert_message: Some(format!("{a:?}")),
            },
            format!("the server ended the TLS handshake with alert {a:?}"),
        ),
        other => (HttpError::TlsProtocolError, format!("TLS error: {other}")),
    }
}

/// Accepts any server certificate (`insecure_skip_verify = true`): the handshake
/// signatures are still checked, the chain and the name are not.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(normalise_host("K8s.Prod.Example"), "k8s.prod.example:443");
        assert_eq!(normalise_host("k8s:6443"), "k8s:6443");
        assert_eq!(normalise_host("[::1]:6443"), "[::1]:6443");
        assert_eq!(normalise_host("[::1]"), "[::1]:443");
    }

    #[test]
    fn unusable_settings_name_the_host() {
        let bad = |d: TlsDestination| TlsSettings::new(vec![d]).unwrap_err().to_string();
        let d = TlsDestination {
            host: "k8s:6443".into(),
            origin: "medic.toml [[tls]] #1".into(),
            ..TlsDestination::default()
        };
        let msg = bad(TlsDestination {
            ca_pem: Some(b"not pem".to_vec()),
            ..d.clone()
        });
        assert!(
            msg.contains("k8s:6443") && msg.contains("no PEM certificate"),
            "{msg}"
        );
        let msg = bad(TlsDestination {
            client_key_pem: Some(
                b"-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n".to_vec(),
            ),
            ..d.clone()
        });
        assert!(msg.contains("needs its certificate"), "{msg}");
        assert!(!msg.contains("QUJD"), "{msg}");
        let twice = TlsSettings::new(vec![d.clone(), d])
            .unwrap_err()
            .to_string();
        assert!(twice.contains("configured twice"), "{twice}");
    }
}
