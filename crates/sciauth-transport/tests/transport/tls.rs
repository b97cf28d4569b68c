//! TLS: extra roots from a file or a grid CA directory, client certificates and proxies.

use axum::Router;
use sciauth_transport::{ErrorKind, Transport};

use crate::support::{Pki, TestServer, recording, respond, write};

fn hello() -> Router {
    recording(|_, _| respond(200, &[], "hello over TLS")).0
}

#[tokio::test]
async fn a_server_certified_by_an_added_ca_is_trusted() {
    let pki = Pki::new();
    let server = TestServer::https(hello(), pki.server_config(false)).await;
    let transport = Transport::builder()
        .root_ca_pem_file(pki.path("ca.pem"))
        .build()
        .unwrap();

    let by_name = transport
        .get_text(&server.localhost_url("/"))
        .await
        .unwrap();
    let by_address = transport.get_text(&server.url("/")).await.unwrap();

    assert_eq!(by_name, "hello over TLS");
    assert_eq!(by_address, "hello over TLS");
}

#[tokio::test]
async fn a_server_from_an_unknown_ca_is_refused() {
    let pki = Pki::new();
    let server = TestServer::https(hello(), pki.server_config(false)).await;
    // Another CA than the server's, on top of the platform's roots.
    let transport = Transport::builder()
        .root_ca_pem_file(pki.path("other-ca.pem"))
        .build()
        .unwrap();

    let error = transport
        .get(&server.localhost_url("/"))
        .send()
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
    assert!(
        error.to_string().contains("TLS handshake failed"),
        "{error}"
    );
    // Not retried or failed over as a connect error would be.
    assert!(!error.is_connect());
}

#[tokio::test]
async fn a_grid_ca_directory_is_read() {
    let pki = Pki::new();
    let server = TestServer::https(hello(), pki.server_config(false)).await;
    let transport = Transport::builder()
        .root_ca_dir(pki.grid_ca_dir())
        .platform_roots(false)
        .build()
        .unwrap();

    let text = transport
        .get_text(&server.localhost_url("/"))
        .await
        .unwrap();

    assert_eq!(text, "hello over TLS");
}

#[tokio::test]
async fn bad_root_settings_are_reported_by_build() {
    let pki = Pki::new();
    let error = Transport::builder()
        .platform_roots(false)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Builder);

    let error = Transport::builder()
        .root_ca_pem_file(pki.path("missing.pem"))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Builder);
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let not_a_cert = write(pki.dir.path(), "notes.pem", "hello\n");
    let error = Transport::builder()
        .root_ca_pem_file(not_a_cert)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");

    let empty_dir = pki.path("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    let error = Transport::builder()
        .root_ca_dir(&empty_dir)
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("no usable certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_certificate_opens_a_server_that_requires_one() {
    let pki = Pki::new();
    let server = TestServer::https(hello(), pki.server_config(true)).await;
    let with_cert = Transport::builder()
        .root_ca_pem_file(pki.path("ca.pem"))
        .client_cert_pem_files(pki.path("client.pem"), pki.path("client.key"))
        .build()
        .unwrap();

    let text = with_cert
        .get_text(&server.localhost_url("/"))
        .await
        .unwrap();
    assert_eq!(text, "hello over TLS");

    let without = Transport::builder()
        .root_ca_pem_file(pki.path("ca.pem"))
        .build()
        .unwrap();
    let error = without
        .get(&server.localhost_url("/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");

    let stranger = Transport::builder()
        .root_ca_pem_file(pki.path("ca.pem"))
        .client_cert_pem_files(pki.path("stranger.pem"), pki.path("stranger.key"))
        .build()
        .unwrap();
    let error = stranger
        .get(&server.localhost_url("/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
}

#[tokio::test]
async fn an_x509_proxy_file_carries_certificate_key_and_chain() {
    let pki = Pki::new();
    let server = TestServer::https(hello(), pki.server_config(true)).await;
    // The server knows only the root CA: the intermediate must come from the proxy file.
    let transport = Transport::builder()
        .root_ca_pem_file(pki.path("ca.pem"))
        .client_proxy_pem_file(pki.path("x509up_u1000"))
        .build()
        .unwrap();

    let text = transport
        .get_text(&server.localhost_url("/"))
        .await
        .unwrap();

    assert_eq!(text, "hello over TLS");
}

#[tokio::test]
async fn unusable_client_keys_are_reported_by_build() {
    let pki = Pki::new();
    let encrypted = write(
        pki.dir.path(),
        "userkey.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let error = Transport::builder()
        .client_cert_pem_files(pki.path("client.pem"), &encrypted)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Builder);
    assert!(error.to_string().contains("encrypted"), "{error}");

    let error = Transport::builder()
        .client_proxy_pem_file(pki.path("ca.pem"))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("no PEM private key"), "{error}");
}

#[tokio::test]
async fn verification_can_be_turned_off_explicitly() {
    let pki = Pki::new();
    let server = TestServer::https(hello(), pki.server_config(false)).await;
    let transport = Transport::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();

    let text = transport
        .get_text(&server.localhost_url("/"))
        .await
        .unwrap();

    assert_eq!(text, "hello over TLS");
}

/// A real grid proxy's leaf carries the critical proxyCertInfo extension (RFC 3820), which
/// webpki refuses to parse; rustls's key check must not turn that into a build error. (The
/// Rucio peer in sciauth-rucio's tests accepts such a proxy over TLS.)
#[test]
fn an_rfc3820_proxy_with_its_critical_extension_builds() {
    use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair};

    let dir = tempfile::tempdir().unwrap();
    let proxy_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "1234567");
    // proxyCertInfo ::= SEQUENCE { proxyPolicy SEQUENCE { id-ppl-inheritAll } }
    let mut proxy_cert_info = CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 14],
        vec![
            0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x01,
        ],
    );
    proxy_cert_info.set_criticality(true);
    params.custom_extensions.push(proxy_cert_info);
    let proxy = params.self_signed(&proxy_key).unwrap();
    let proxy_file = write(
        dir.path(),
        "x509up_u1000",
        &format!("{}{}", proxy.pem(), proxy_key.serialize_pem()),
    );
    Transport::builder()
        .client_proxy_pem_file(&proxy_file)
        .build()
        .unwrap();

    // A key that does not belong to an ordinary certificate is still refused at build.
    let pki = Pki::new();
    let stranger_key = KeyPair::generate().unwrap();
    let key_file = write(dir.path(), "other.key", &stranger_key.serialize_pem());
    let error = Transport::builder()
        .client_cert_pem_files(pki.path("client.pem"), &key_file)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Builder);
    assert!(error.to_string().contains("does not belong"), "{error}");
}
