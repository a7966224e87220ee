//! TLS termination: certificates chosen by SNI (exact names, then the most specific `*.`
//! wildcard, then the default), client certificates verified against a CA (optional or
//! required), a minimum TLS version, ALPN h2 / http/1.1.
//!
//! Every file is loaded and checked at start-up (and again on reload, before anything is
//! swapped), so a bad certificate is a clear error naming
//! the listener and the file, never a panic inside the TLS stack. rustls offers AEAD cipher
//! suites only (AES-GCM, ChaCha20-Poly1305), so that default needs no configuration.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{
    ClientHello, CryptoProvider, ResolvesServerCert, RootCertStore, WebPkiClientVerifier,
};
use zentinel_config::model::{ClientAuthMode, HostPattern, Listener, ListenerTls, TlsVersion};

use crate::BuildError;

/// A listener's certificates: by exact name, by wildcard suffix, and the default.
pub(crate) struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl fmt::Debug for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSet")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where a listener's resolver reads its certificates; a reload stores a new set here and
/// new handshakes use it.
pub(crate) type CertHandle = Arc<ArcSwap<CertSet>>;

/// Picks the certificate for a handshake.
#[derive(Debug)]
struct SniResolver {
    certs: CertHandle,
    tls13_only: bool,
}

impl CertSet {
    fn pick(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        // The most specific wildcard: strip one label at a time.
        let mut rest = name.as_str();
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if let Some(k) = self.wildcard.get(rest) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls always negotiates the highest common version, so a client that offers a
        // TLS 1.3 suite gets TLS 1.3; one that offers none is refused here.
        if self.tls13_only
            && !hello
                .cipher_suites()
                .iter()
                .any(|s| u16::from(*s) >> 8 == 0x13)
        {
            return None;
        }
        Some(self.certs.load().pick(hello.server_name()))
    }
}

fn tls_error(listener: &Listener, file: &Path, reason: impl Into<String>) -> BuildError {
    BuildError::Tls {
        listener: listener.id.to_string(),
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

/// The process's rustls crypto provider (ring, the one Pingora installs).
fn provider(listener: &Listener) -> Result<Arc<CryptoProvider>, BuildError> {
    pingora::tls::install_default_crypto_provider();
    CryptoProvider::get_default().cloned().ok_or_else(|| {
        BuildError::Internal(format!("listener {}: no TLS crypto provider", listener.id))
    })
}

fn certified_key(
    listener: &Listener,
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, BuildError> {
    let (cert_s, key_s) = (cert.to_string_lossy(), key.to_string_lossy());
    let loaded = pingora::tls::load_certs_and_key_files(&cert_s, &key_s).map_err(|e| {
        tls_error(
            listener,
            cert,
            format!("cannot read the certificate or key: {e}"),
        )
    })?;
    let Some((certs, private)) = loaded else {
        return Err(tls_error(
            listener,
            cert,
            format!(
                "no certificate in it, or no private key in {}",
                key.display()
            ),
        ));
    };
    let signing = provider(listener)?
        .key_provider
        .load_private_key(private)
        .map_err(|e| tls_error(listener, key, format!("unusable private key: {e}")))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match().map_err(|e| {
        tls_error(
            listener,
            key,
            format!("the key does not match the certificate: {e}"),
        )
    })?;
    Ok(Arc::new(ck))
}

/// Loads and checks the certificates of an `https` listener.
pub(crate) fn cert_set(listener: &Listener, tls: &ListenerTls) -> Result<CertSet, BuildError> {
    let default = certified_key(listener, &tls.cert_file, &tls.key_file)?;
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for s in &tls.sni {
        let k = certified_key(listener, &s.cert_file, &s.key_file)?;
        match &s.host {
            HostPattern::Exact(h) => exact.insert(h.clone(), k),
            HostPattern::Wildcard(suffix) => wildcard.insert(suffix.clone(), k),
        };
    }
    Ok(CertSet {
        exact,
        wildcard,
        default,
    })
}

/// The TLS settings of an `https` listener, and the handle that swaps its certificates.
pub(crate) fn settings(
    listener: &Listener,
    tls: &ListenerTls,
) -> Result<(TlsSettings, CertHandle), BuildError> {
    let certs: CertHandle = Arc::new(ArcSwap::from_pointee(cert_set(listener, tls)?));
    let resolver = SniResolver {
        certs: certs.clone(),
        tls13_only: tls.min_version == TlsVersion::Tls13,
    };
    let mut settings = TlsSettings::with_callbacks(Box::new(HandshakeFacts))
        .map_err(|e| tls_error(listener, &tls.cert_file, e.to_string()))?;
    settings.set_cert_resolver(Arc::new(resolver));
    if let Some(auth) = &tls.client_auth {
        let mut roots = RootCertStore::empty();
        pingora::tls::load_ca_file_into_store(&auth.ca_file, &mut roots).map_err(|e| {
            tls_error(
                listener,
                &auth.ca_file,
                format!("cannot load the CA bundle: {e}"),
            )
        })?;
        if roots.is_empty() {
            return Err(tls_error(
                listener,
                &auth.ca_file,
                "the CA bundle holds no certificate",
            ));
        }
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider(listener)?);
        let builder = match auth.mode {
            ClientAuthMode::Optional => builder.allow_unauthenticated(),
            ClientAuthMode::Required => builder,
        };
        let verifier = builder
            .build()
            .map_err(|e| tls_error(listener, &auth.ca_file, e.to_string()))?;
        settings.set_client_cert_verifier(verifier);
    }
    settings.enable_h2();
    Ok((settings, certs))
}

/// The server name the client asked for (SNI), kept with the connection for agents.
#[derive(Debug, Clone)]
pub(crate) struct ServerName(pub String);

/// After the handshake: remember the SNI, which rustls knows only during the handshake.
struct HandshakeFacts;

#[async_trait::async_trait]
impl pingora::listeners::TlsAccept for HandshakeFacts {
    async fn handshake_complete_callback(
        &self,
        tls: &pingora::protocols::tls::TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        let name = tls.server_name()?;
        Some(Arc::new(ServerName(name.to_owned())))
    }
}
