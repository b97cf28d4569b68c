//! A test CA (rcgen) issuing server and client certificates, for the TLS listener's tests.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};

/// A test CA.
#[derive(Debug)]
pub struct Pki {
    /// The CA's certificate, PEM, for the side that verifies.
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    /// A new CA.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "sciauth test CA");
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Self {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and key (PEM) for `names` (server) or with subject `dn` (client).
    pub fn issue(&self, names: &[&str], dn: &[(DnType, &str)], client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let mut subject = DistinguishedName::new();
        for (kind, value) in dn {
            subject.push(kind.clone(), *value);
        }
        params.distinguished_name = subject;
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` (for 127.0.0.1) into `dir`, for a
    /// `[server.tls]` section naming them.
    pub fn write_server_files(&self, dir: &Path) {
        let (server_cert, server_key) =
            self.issue(&["127.0.0.1"], &[(DnType::CommonName, "svc")], false);
        for (name, text) in [
            ("ca.pem", &self.ca_pem),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
}
