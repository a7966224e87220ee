//! Test certificates: a CA and leaf certificates signed by it, as PEM text.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A self-signed CA that can sign leaf certificates.
pub type TestCa = CertifiedIssuer<'static, KeyPair>;

/// A new CA called `name`.
pub fn ca(name: &str) -> TestCa {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key")).expect("CA certificate")
}

/// A certificate for `names` signed by `issuer` (a client certificate when `client`), and its
/// key: `(certificate PEM, key PEM)`.
pub fn leaf(issuer: &TestCa, names: &[&str], client: bool) -> (String, String) {
    let sans: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut p = CertificateParams::new(sans).expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, names[0]);
    if client {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let key = KeyPair::generate().expect("leaf key");
    let cert = p.signed_by(&key, issuer).expect("leaf certificate");
    (cert.pem(), key.serialize_pem())
}

/// Named PEM files for a test's temp directory.
#[derive(Debug)]
pub struct Pki {
    /// `(file name, PEM text)`.
    pub files: Vec<(String, String)>,
}

impl Pki {
    /// The files as `Proxy::start_with_files` takes them.
    pub fn files(&self) -> Vec<(&str, &str)> {
        self.files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }
}
