//! Test certificates: a CA and leaf certificates signed by it, as PEM text.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
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

/// A serial number that is positive and non-zero as RFC 5280 §4.1.2.2 requires (the high
/// bit of the first byte clear, the first byte non-zero), distinct per call.
fn serial() -> SerialNumber {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut bytes = vec![0x42];
    bytes.extend_from_slice(&nanos.to_be_bytes());
    bytes.extend_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// A CA for [`server_leaf`] that strict path validation (the Web PKI profile sslyze checks
/// with) accepts: a positive serial number and key usages `keyCertSign`, `cRLSign`.
pub fn strict_ca(name: &str) -> TestCa {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.serial_number = Some(serial());
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key")).expect("CA certificate")
}

/// A server certificate for `names` signed by `issuer` (from [`strict_ca`]) that meets
/// Mozilla's "intermediate" certificate rules as sslyze checks them: an ECDSA P-256 key
/// signed with SHA-256 (rcgen's default), the names as DNS SANs, a lifespan of 90 days (at
/// most 366 are allowed) starting a day ago, and what strict path validation asks of a leaf:
/// an authority key identifier, a positive serial number, `serverAuth`.
/// `(certificate PEM, key PEM)`.
pub fn server_leaf(issuer: &TestCa, names: &[&str]) -> (String, String) {
    let sans: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut p = CertificateParams::new(sans).expect("server params");
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(serial());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let day = std::time::Duration::from_secs(86_400);
    p.not_before = rcgen::date_time_ymd(1970, 1, 1) + (now - day);
    p.not_after = p.not_before + 90 * day;
    let key = KeyPair::generate().expect("server key");
    let cert = p.signed_by(&key, issuer).expect("server certificate");
    (cert.pem(), key.serialize_pem())
}
