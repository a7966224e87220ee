//! TLS to upstream targets: the upstream `tls { sni; ca-file; verify; cert-file; key-file; }`
//! block, prepared once when the runtime is built and applied to each [`HttpPeer`].
//!
//! Semantics (the `upstreams.upstream.tls` block of the configuration reference promises these):
//!
//! - **On or off per upstream.** With a `tls` block, connections to every target of the
//!   upstream use TLS; without one, clear text.
//! - **Server name.** The name sent as SNI and verified against the certificate is `sni` when
//!   set, else the target's host: the host name of a `host:port` target, the IP address of an
//!   IP target (`10.0.0.5:8443` → `10.0.0.5`, `[::1]:8443` → `::1`; an IP is never sent as
//!   SNI, as RFC 6066 forbids, and is checked against the certificate's IP SANs). A name that
//!   is neither a DNS name nor an IP address is a start-up error.
//! - **Verification** (`verify #true`, the default): the certificate chain must lead to a CA of
//!   `ca-file` (a PEM bundle; only those CAs are trusted) or, without `ca-file`, to a root of
//!   the system trust store (what Pingora's rustls connector loads at start-up through
//!   `rustls-native-certs`, honouring `SSL_CERT_FILE` / `SSL_CERT_DIR`), and must be valid for
//!   the server name. Without `ca-file` an empty system trust store is a start-up error,
//!   since no certificate could ever verify. `verify #false` turns off the chain and name
//!   checks (tests only); the handshake signatures are still checked, and Pingora still needs
//!   a non-empty system trust store to build its verifier, so that is checked as well.
//! - **Client certificate** (`cert-file` + `key-file`): presented to the targets that ask for
//!   one (mTLS). `cert-file` holds the leaf first, then any intermediates.
//! - **ALPN**: `http/1.1` (Pingora's default for an HTTP peer); HTTP/2 to targets is not
//!   offered.
//! - **Files** are read and checked here, once: unreadable, not PEM, a CA bundle with no
//!   certificate or with something else than certificates, a certificate rustls cannot parse,
//!   no private key, a key that does not match the certificate — each is a start-up error
//!   naming the upstream and the file, never a panic inside the TLS stack at request time.
//! - **Failures at request time.** A handshake that fails (untrusted chain, wrong name, refused
//!   client certificate) is a connect failure: it is retried like one (`retry-on
//!   "connect-error"`), counts against the target for passive health, and ends as `502`
//!   (`errors.rs`). With TLS 1.3 a server that refuses the client certificate says so after
//!   the client's side of the handshake is done, so that case surfaces as an upstream read
//!   error: also `502` and passive health, but not retried.
//! - **Connection reuse.** Pingora's pool key covers address, SNI, verification flags and the
//!   client certificate but not the CA list, so each distinct set of trust and client material
//!   gets its own `group_key`: a connection verified against one upstream's CAs is never reused
//!   by an upstream that trusts other CAs.
//! - **Timeouts.** `connect-ms` bounds TCP connect and TLS handshake together.
//! - **Health probes.** HTTP health probes of an upstream with `tls` use the same material:
//!   [`UpstreamTls::probe_config`] builds a rustls client configuration the way Pingora's
//!   connector builds one for a request (TLS 1.2 and 1.3, the same roots, `verify #false` as a
//!   verifier that skips chain and name checks but still checks handshake signatures, the
//!   client certificate, ALPN `http/1.1`), and [`UpstreamTls::probe_name`] is the name a
//!   request sends and verifies.
//!
//! Cost: the CA certificates and the client certificate and key are parsed here once. Pingora
//! builds a rustls client configuration from them for each new connection (not for a reused
//! one), which is its per-peer design. Health probes build theirs once per upstream, when the health service
//! starts.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::panic::catch_unwind;
use std::path::Path;
use std::sync::Arc;

use pingora::prelude::HttpPeer;
use pingora::protocols::tls::CaType;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{
    CertificateDer, ClientConfig, CryptoProvider, DigitallySignedStruct, HandshakeSignatureValid,
    PrivateKeyDer, RootCertStore, RusTlsError, ServerCertVerified, ServerCertVerifier, ServerName,
    SignatureScheme, UnixTime, WebPkiServerVerifier, version,
};
use pingora::utils::tls::{CertKey, WrappedX509, parse_x509};
use zentinel_config::model::{TargetAddr, Upstream, UpstreamTls as TlsConfig};

use crate::BuildError;

/// The prepared TLS settings of one upstream.
pub(crate) struct UpstreamTls {
    /// Per target (in pool order), the name sent as SNI and verified.
    names: Vec<String>,
    /// Whether the chain and the name are verified.
    verify: bool,
    /// The CAs of `ca-file`; `None` uses the connector's (system) roots.
    ca: Option<Arc<CaType>>,
    /// The trust store requests verify against: the CAs of `ca-file`, else the system roots.
    roots: Arc<RootCertStore>,
    /// The client certificate chain and key.
    client: Option<Arc<CertKey>>,
    /// Keeps pooled connections apart when the CA lists differ.
    group_key: u64,
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("names", &self.names)
            .field("verify", &self.verify)
            .field("ca_certificates", &self.ca.as_ref().map(|c| c.len()))
            .field("roots", &self.roots.len())
            .field("client_certificate", &self.client.is_some())
            .field("group_key", &self.group_key)
            .finish()
    }
}

impl UpstreamTls {
    /// The peer for target `target` (an index in the pool) at `addr`.
    pub(crate) fn peer(&self, addr: SocketAddr, target: usize) -> HttpPeer {
        // Never empty (checked when built): Pingora skips all verification for an empty SNI.
        let mut peer = HttpPeer::new(addr, true, self.names[target].clone());
        peer.options.verify_cert = self.verify;
        peer.options.verify_hostname = self.verify;
        peer.options.ca = self.ca.clone();
        peer.client_cert_key = self.client.clone();
        peer.group_key = self.group_key;
        peer
    }

    /// The name a request to target `target` sends as SNI and verifies (Pingora's connector
    /// replaces underscores in the leftmost label of a verified name, so this does too).
    pub(crate) fn probe_name(&self, target: usize) -> Option<ServerName<'static>> {
        let name = self.names.get(target)?;
        let name = match self.verify {
            true => replace_leftmost_underscore(name).unwrap_or_else(|| name.clone()),
            false => name.clone(),
        };
        ServerName::try_from(name).ok()
    }

    /// A rustls client configuration equal to the one Pingora's connector builds for a
    /// request to this upstream; built once per upstream for the health probes.
    pub(crate) fn probe_config(&self) -> Result<Arc<ClientConfig>, String> {
        pingora::tls::install_default_crypto_provider();
        let builder =
            ClientConfig::builder_with_protocol_versions(&[&version::TLS12, &version::TLS13]);
        let builder = if self.verify {
            builder.with_root_certificates(self.roots.clone())
        } else {
            let delegate = WebPkiServerVerifier::builder(self.roots.clone())
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipChainAndName(delegate)))
        };
        let mut config = match &self.client {
            None => builder.with_no_client_auth(),
            Some(k) => {
                let certs = std::iter::once(k.leaf())
                    .chain(k.intermediates())
                    .map(CertificateDer::from)
                    .collect();
                let key = PrivateKeyDer::try_from(k.key().clone())
                    .map_err(|e| format!("unusable client key: {e}"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("unusable client certificate: {e}"))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Pingora's `replace_leftmost_underscore` (private there): `a_b.example.com` →
/// `a-b.example.com`; `None` when nothing changes.
fn replace_leftmost_underscore(sni: &str) -> Option<String> {
    let (leftmost, rest) = sni.split_once('.')?;
    if !rest.contains('.') || !leftmost.contains('_') {
        return None;
    }
    Some(format!("{}.{rest}", leftmost.replace('_', "-")))
}

/// `verify #false`, as Pingora's connector does it: the chain and the name are not checked,
/// the handshake signatures still are (by the WebPKI verifier of the same roots).
#[derive(Debug)]
struct SkipChainAndName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for SkipChainAndName {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, RusTlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Prepares the TLS settings of every upstream, in `upstreams` order: `None` for clear text.
pub(crate) fn prepare(upstreams: &[Upstream]) -> Result<Vec<Option<UpstreamTls>>, BuildError> {
    let mut system = SystemRoots::default();
    upstreams
        .iter()
        .map(|u| {
            u.tls
                .as_ref()
                .map(|t| prepare_one(u, t, &mut system))
                .transpose()
        })
        .collect()
}

fn prepare_one(
    u: &Upstream,
    t: &TlsConfig,
    system: &mut SystemRoots,
) -> Result<UpstreamTls, BuildError> {
    let names = names(u, t.sni.as_deref())?;
    let ca = t.ca_file.as_deref().map(|p| load_ca(u, p)).transpose()?;
    let client = match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => Some(load_client(u, cert, key)?),
        _ => None,
    };
    let (ca, roots) = match ca {
        Some((ca, roots)) => (Some(ca), roots),
        None => (None, system.check(u, t.verify)?),
    };
    let mut h = DefaultHasher::new();
    "zentinel upstream tls".hash(&mut h);
    for c in ca.iter().flat_map(|c| c.iter()) {
        c.borrow_raw_cert().hash(&mut h);
    }
    if let Some(k) = &client {
        k.leaf().borrow_raw_cert().hash(&mut h);
        for c in k.intermediates() {
            c.borrow_raw_cert().hash(&mut h);
        }
    }
    Ok(UpstreamTls {
        names,
        verify: t.verify,
        ca,
        roots,
        client,
        group_key: h.finish(),
    })
}

fn error(u: &Upstream, item: impl Into<String>, reason: impl Into<String>) -> BuildError {
    BuildError::UpstreamTls {
        upstream: u.id.to_string(),
        item: item.into(),
        reason: reason.into(),
    }
}

fn file_error(u: &Upstream, path: &Path, reason: impl Into<String>) -> BuildError {
    error(u, path.display().to_string(), reason)
}

/// The server name of each target: `sni`, else the target's host (an IP as an IP).
fn names(u: &Upstream, sni: Option<&str>) -> Result<Vec<String>, BuildError> {
    u.targets
        .iter()
        .map(|t| {
            let name = match (sni, &t.address) {
                (Some(s), _) => s.to_owned(),
                (None, TargetAddr::Ip(a)) => a.ip().to_string(),
                (None, TargetAddr::Dns { host, .. }) => host.clone(),
            };
            match ServerName::try_from(name.as_str()) {
                Ok(_) => Ok(name),
                Err(e) => Err(error(
                    u,
                    format!("server name \"{name}\""),
                    format!("not a DNS name or an IP address ({e})"),
                )),
            }
        })
        .collect()
}

/// The system trust store (or why it is unusable), loaded at most once per build.
#[derive(Default)]
struct SystemRoots(Option<Result<Arc<RootCertStore>, String>>);

impl SystemRoots {
    fn check(&mut self, u: &Upstream, verify: bool) -> Result<Arc<RootCertStore>, BuildError> {
        let outcome = self.0.get_or_insert_with(|| {
            let mut store = RootCertStore::empty();
            match pingora::tls::load_platform_certs_incl_env_into_store(&mut store) {
                Err(e) => Err(format!("cannot be loaded ({e})")),
                Ok(()) if store.is_empty() => Err("holds no certificate".to_owned()),
                Ok(()) => Ok(Arc::new(store)),
            }
        });
        let why = match outcome {
            Ok(store) => return Ok(store.clone()),
            Err(why) => why,
        };
        let reason = if verify {
            format!(
                "without `ca-file` certificates are verified against the system trust store, which {why}; set `ca-file`"
            )
        } else {
            format!(
                "even with `verify #false` the TLS connector needs the system trust store, which {why}"
            )
        };
        Err(error(u, "the system trust store", reason))
    }
}

/// The rustls crypto provider (ring, the one Pingora installs).
fn provider(u: &Upstream) -> Result<Arc<CryptoProvider>, BuildError> {
    pingora::tls::install_default_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| BuildError::Internal(format!("upstream {}: no TLS crypto provider", u.id)))
}

/// Reads `path` as PEM (with `rustls-pemfile`, the reader Pingora itself uses): its items as
/// (label, DER).
fn read_pem(u: &Upstream, path: &Path) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let bytes =
        std::fs::read(path).map_err(|e| file_error(u, path, format!("cannot read it: {e}")))?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(file_error(u, path, "not a PEM file (it is not text)"));
    }
    let mut reader = bytes.as_slice();
    let mut out = Vec::new();
    for item in rustls_pemfile::read_all(&mut reader) {
        let item = item.map_err(|e| file_error(u, path, format!("not a valid PEM file: {e}")))?;
        let (label, der): (&str, Vec<u8>) = match item {
            rustls_pemfile::Item::X509Certificate(c) => ("CERTIFICATE", c.to_vec()),
            rustls_pemfile::Item::Pkcs8Key(k) => ("PRIVATE KEY", k.secret_pkcs8_der().to_vec()),
            rustls_pemfile::Item::Pkcs1Key(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der().to_vec()),
            rustls_pemfile::Item::Sec1Key(k) => ("EC PRIVATE KEY", k.secret_sec1_der().to_vec()),
            _ => ("OTHER", Vec::new()),
        };
        out.push((label.to_owned(), der));
    }
    Ok(out)
}

/// Parses `der` the way Pingora will; its parser panics on input it rejects, so a certificate
/// that rustls accepted but that parser does not is turned into an error here, at start-up.
fn wrap(u: &Upstream, path: &Path, der: Vec<u8>) -> Result<WrappedX509, BuildError> {
    catch_unwind(move || WrappedX509::new(der, parse_x509))
        .map_err(|_| file_error(u, path, "a certificate cannot be parsed"))
}

/// The CA bundle of `ca-file`, as Pingora's per-peer CA list and as a trust store.
fn load_ca(u: &Upstream, path: &Path) -> Result<(Arc<CaType>, Arc<RootCertStore>), BuildError> {
    let mut roots = RootCertStore::empty();
    let mut certs = Vec::new();
    for (i, (label, der)) in read_pem(u, path)?.into_iter().enumerate() {
        if label != "CERTIFICATE" {
            return Err(file_error(
                u,
                path,
                format!(
                    "PEM block {} is \"{label}\"; a CA bundle holds certificates only",
                    i + 1
                ),
            ));
        }
        // What Pingora does with each CA when it connects, done once here.
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| file_error(u, path, format!("certificate {} is unusable: {e}", i + 1)))?;
        certs.push(wrap(u, path, der)?);
    }
    if certs.is_empty() {
        return Err(file_error(
            u,
            path,
            "the CA bundle holds no PEM certificate",
        ));
    }
    Ok((Arc::from(certs), Arc::new(roots)))
}

/// The client certificate chain of `cert-file` and the private key of `key-file`.
fn load_client(u: &Upstream, cert: &Path, key: &Path) -> Result<Arc<CertKey>, BuildError> {
    let chain: Vec<Vec<u8>> = read_pem(u, cert)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect();
    if chain.is_empty() {
        return Err(file_error(u, cert, "holds no PEM certificate"));
    }
    let Some(key_der) = read_pem(u, key)?
        .into_iter()
        .find(|(label, _)| {
            matches!(
                label.as_str(),
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            )
        })
        .map(|(_, der)| der)
    else {
        return Err(file_error(
            u,
            key,
            "holds no private key (PKCS#8, PKCS#1 or SEC1 PEM; encrypted keys are not supported)",
        ));
    };
    // Pingora turns the key bytes into a key this way at each connection: do it once here.
    let private = PrivateKeyDer::try_from(key_der.clone())
        .map_err(|e| file_error(u, key, format!("unusable private key: {e}")))?;
    let signing = provider(u)?
        .key_provider
        .load_private_key(private)
        .map_err(|e| file_error(u, key, format!("unusable private key: {e}")))?;
    let certs = chain.iter().cloned().map(CertificateDer::from).collect();
    CertifiedKey::new(certs, signing)
        .keys_match()
        .map_err(|e| {
            file_error(
                u,
                key,
                format!(
                    "the key does not match the certificate of {}: {e}",
                    cert.display()
                ),
            )
        })?;
    for der in &chain {
        wrap(u, cert, der.clone())?;
    }
    catch_unwind(move || CertKey::new(chain, key_der))
        .map(Arc::new)
        .map_err(|_| file_error(u, cert, "a certificate cannot be parsed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn upstreams(body: &str) -> Vec<Upstream> {
        let text = format!(
            "listeners {{ listener \"w\" {{ address \"127.0.0.1:1\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}\nupstreams {{ upstream \"u\" {{ {body} }} }}"
        );
        zentinel_config::load_str("t.kdl", &text)
            .unwrap_or_else(|d| panic!("{d}"))
            .upstreams
    }

    /// A file with `contents` in the temp directory, unique to this process and call.
    fn temp_file(contents: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "zentinel-upstream-tls-{}-{}.pem",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    fn prepare_error(body: &str) -> String {
        match prepare(&upstreams(body)) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn names_are_the_sni_or_each_targets_host() {
        let u =
            upstreams(r#"target "127.0.0.1:8443"; target "[::1]:8443"; target "localhost:8443";"#);
        assert_eq!(
            names(&u[0], None).unwrap_or_else(|e| panic!("{e}")),
            ["127.0.0.1", "::1", "localhost"]
        );
        assert_eq!(
            names(&u[0], Some("backend.internal")).unwrap_or_else(|e| panic!("{e}")),
            ["backend.internal"; 3]
        );
        let err = names(&u[0], Some("not a name")).map(|_| ()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("upstream \"u\": server name \"not a name\""),
            "{err}"
        );
    }

    #[test]
    fn a_clear_text_upstream_needs_nothing() {
        let t =
            prepare(&upstreams(r#"target "127.0.0.1:8080";"#)).unwrap_or_else(|e| panic!("{e}"));
        assert!(t[0].is_none());
    }

    #[test]
    fn bad_ca_files_are_errors_naming_the_upstream_and_the_file() {
        let missing = std::env::temp_dir().join("zentinel-no-such-ca.pem");
        let not_pem = temp_file("not a certificate");
        let a_key = temp_file("-----BEGIN PRIVATE KEY-----\nTWFu\n-----END PRIVATE KEY-----\n");
        let garbage = temp_file("-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----\n");
        for (path, why) in [
            (&missing, "cannot read it"),
            (&not_pem, "holds no PEM certificate"),
            (&a_key, "a CA bundle holds certificates only"),
            (&garbage, "certificate 1 is unusable"),
        ] {
            let err = prepare_error(&format!(
                r#"target "127.0.0.1:8443"; tls {{ ca-file "{}"; }}"#,
                path.display()
            ));
            assert!(
                err.starts_with(&format!("upstream \"u\": {}: ", path.display()))
                    && err.contains(why),
                "{err}"
            );
        }
        for p in [not_pem, a_key, garbage] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_client_certificate_file_without_a_certificate_or_key_is_an_error() {
        let empty = temp_file("nothing here");
        let err = prepare_error(&format!(
            r#"target "127.0.0.1:8443"; tls {{ verify #false; cert-file "{0}"; key-file "{0}"; }}"#,
            empty.display()
        ));
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let cert_only = temp_file("-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----\n");
        let err = prepare_error(&format!(
            r#"target "127.0.0.1:8443"; tls {{ verify #false; cert-file "{}"; key-file "{}"; }}"#,
            cert_only.display(),
            empty.display()
        ));
        assert!(
            err.contains(&empty.display().to_string()) && err.contains("holds no private key"),
            "{err}"
        );
        for p in [empty, cert_only] {
            let _ = std::fs::remove_file(p);
        }
    }
}
