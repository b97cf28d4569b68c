//! How the service treats connections, on plain and TLS listeners: a client that sends its
//! headers or its body a byte at a time is cut off while other callers are served, an idle
//! connection is closed, and no more than `max_connections` are served at once. Also: a plain
//! listener off loopback is warned about.
//!
//! The timeouts are configured short (1 s). Nothing here asserts how long anything took: a
//! test only waits, up to a generous bound, for the server to do what it must; without the
//! limits it never would, and the bound fails the test.

use sciauth_test_support::logs;
use sciauth_test_support::pki;

use std::sync::Arc;
use std::time::Duration;

use pki::Pki;
use rcgen::DnType;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sciauth_server::{Config, Server};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long a test waits for the server to end a connection: far beyond the configured
/// timeouts, far short of forever.
const BOUND: Duration = Duration::from_secs(20);

/// The pause between two bytes of a drip.
const DRIP: Duration = Duration::from_millis(100);

/// A service with these `[server]` settings (and `[server.tls]` files in `dir` if `tls`), a
/// memory store, and alice (by certificate, `/CN=alice`); its address.
async fn start(dir: &std::path::Path, server: &str, tls: bool) -> std::net::SocketAddr {
    let tls = if tls {
        "[server.tls]\ncertificate = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n"
    } else {
        ""
    };
    let config = Config::from_toml(
        &format!(
            "[server]\n{server}\n{tls}[store]\nkind = \"memory\"\n[groups.users]\n\
             [users.alice]\ngroups = [\"users\"]\ndns = [\"/CN=alice\"]\n"
        ),
        dir,
    )
    .unwrap();
    let server = Server::new(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
    address
}

/// Sends `start`, then `drip` over and over, a pause between each, until the server closes
/// the connection; returns what the server sent. Panics if it has not closed it within
/// [`BOUND`].
async fn drip_until_closed<S>(stream: S, start: &[u8], drip: &[u8], what: &str) -> Vec<u8>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let _ = writer.write_all(start).await;
    let _ = writer.flush().await;
    let received = async {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        // Until end of stream or a reset: either way the server closed it.
        while let Ok(n @ 1..) = reader.read(&mut buffer).await {
            received.extend_from_slice(&buffer[..n]);
        }
        received
    };
    let dripping = async {
        loop {
            tokio::time::sleep(DRIP).await;
            if writer.write_all(drip).await.is_err() || writer.flush().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::time::timeout(BOUND, async {
        tokio::select! {
            received = received => received,
            () = dripping => unreachable!("dripping never ends by itself"),
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server never closed {what}"))
}

/// Reads one HTTP/1.1 answer with a Content-Length body: its status line and its body.
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> (String, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]);
                let status = head.lines().next().unwrap_or_default().to_owned();
                return (status, body.into_owned());
            }
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buffer))
            .await
            .expect("an answer")
            .expect("an answer");
        assert!(n > 0, "closed before answering: {received:?}");
        received.extend_from_slice(&buffer[..n]);
    }
}

/// Waits until the server closes `stream` (end of stream or reset), sending nothing.
async fn closed_by_server<S: AsyncRead + Unpin>(stream: &mut S, what: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(BOUND, async {
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server never closed {what}"));
    received
}

const PING: &[u8] = b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Headers that never end, and the byte that keeps them going.
const ENDLESS_HEADERS: &[u8] = b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_of_headers_is_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let address = start(dir.path(), "header_timeout_seconds = 1", false).await;
    let drips: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(async move {
                let stream = TcpStream::connect(address).await.unwrap();
                drip_until_closed(
                    stream,
                    ENDLESS_HEADERS,
                    b"a",
                    "a connection dripping headers",
                )
                .await
            })
        })
        .collect();
    // Others are served meanwhile.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..5 {
        let ping = http
            .get(format!("http://{address}/v1/ping"))
            .send()
            .await
            .unwrap();
        assert_eq!(ping.status(), 200);
    }
    for drip in drips {
        let received = drip.await.unwrap();
        assert!(
            received.is_empty(),
            "{}",
            String::from_utf8_lossy(&received)
        );
    }
    let ping = http
        .get(format!("http://{address}/v1/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_and_later_headers_are_timed_too() {
    let dir = tempfile::tempdir().unwrap();
    // Idle for longer than idle_timeout_seconds after an answer: closed.
    let address = start(dir.path(), "idle_timeout_seconds = 1", false).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(PING).await.unwrap();
    let (status, body) = read_answer(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    let after = closed_by_server(&mut stream, "an idle connection").await;
    assert!(after.is_empty(), "{}", String::from_utf8_lossy(&after));

    // A kept-alive connection gets header_timeout_seconds for each request's headers, not
    // the (long) idle time.
    let address = start(
        dir.path(),
        "header_timeout_seconds = 1\nidle_timeout_seconds = 3600",
        false,
    )
    .await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(PING).await.unwrap();
    let (status, _) = read_answer(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let received = drip_until_closed(
        stream,
        ENDLESS_HEADERS,
        b"a",
        "a kept-alive connection dripping its second request's headers",
    )
    .await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_max_connections_are_served() {
    let logs = logs::logs();
    let dir = tempfile::tempdir().unwrap();
    let address = start(dir.path(), "max_connections = 2", false).await;
    let mut first = TcpStream::connect(address).await.unwrap();
    let mut second = TcpStream::connect(address).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(PING).await.unwrap();
        let (status, _) = read_answer(stream).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    // Both are kept alive: a third is closed unanswered.
    let mut third = TcpStream::connect(address).await.unwrap();
    let _ = third.write_all(PING).await;
    let received = closed_by_server(&mut third, "a connection over the limit").await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("all connections are taken"), "{logged}");
    // The kept ones still work.
    second.write_all(PING).await.unwrap();
    let (status, _) = read_answer(&mut second).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // Once one ends, a new one is served (as soon as the server has seen it end).
    drop(first);
    tokio::time::timeout(BOUND, async {
        loop {
            let mut next = TcpStream::connect(address).await.unwrap();
            let ping = b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            if next.write_all(ping).await.is_ok() {
                let mut received = Vec::new();
                let _ = next.read_to_end(&mut received).await;
                if received.starts_with(b"HTTP/1.1 200") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a connection is served again once one ended");
}

/// A TLS client presenting alice's certificate.
fn tls_client(pki: &Pki) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(tls_client_config(pki))
}

/// The configuration of [`tls_client`].
fn tls_client_config(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let (cert, key) = pki.issue(&[], &[(DnType::CommonName, "alice")], true);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
    )
    .unwrap();
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_slow_bodies_headers_and_handshakes_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let address = start(
        dir.path(),
        "header_timeout_seconds = 1\nbody_timeout_seconds = 1",
        true,
    )
    .await;
    let connector = tls_client(&pki);
    let connect = || {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(address).await.unwrap();
            connector
                .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
                .await
                .unwrap()
        }
    };

    // An authenticated request whose chunked body never ends: 408, then closed.
    let body = tokio::spawn({
        let stream = connect().await;
        async move {
            drip_until_closed(
                stream,
                b"POST /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                  Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
                b"1\r\n \r\n",
                "a connection dripping its body",
            )
            .await
        }
    });
    // Headers that never end.
    let headers = tokio::spawn({
        let stream = connect().await;
        async move {
            drip_until_closed(
                stream,
                ENDLESS_HEADERS,
                b"a",
                "a TLS connection dripping headers",
            )
            .await
        }
    });
    // A handshake that never starts.
    let mut silent = TcpStream::connect(address).await.unwrap();

    // Others are served meanwhile.
    let mut stream = connect().await;
    stream
        .write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (status, me) = read_answer(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {me}");
    assert!(me.contains("\"alice\""), "{me}");

    let received = String::from_utf8(body.await.unwrap()).unwrap();
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.contains("request_timeout"), "{received}");
    let received = headers.await.unwrap();
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    closed_by_server(&mut silent, "a connection that never began its handshake").await;
}

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A PING frame: bytes that keep an HTTP/2 connection talking without a request.
const H2_PING: &[u8] = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingping";

/// The start of a HEADERS frame (stream 1) announcing a 16-byte header block that never comes.
const H2_HEADERS_START: &[u8] = b"\x00\x00\x10\x01\x04\x00\x00\x00\x01";

/// On HTTP/2 (TLS with ALPN h2, and h2c), a connection that sends no request, only PINGs, is
/// closed after the header timeout; one whose request's headers never end too. (hyper alone
/// answers PINGs and waits for the rest of a frame for ever.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_are_bounded_too() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let address = start(
        dir.path(),
        "header_timeout_seconds = 1\nidle_timeout_seconds = 1",
        true,
    )
    .await;
    let mut config = (*tls_client_config(&pki)).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let connect = || {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(address).await.unwrap();
            let tls = connector
                .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            tls
        }
    };
    let pings = tokio::spawn({
        let stream = connect().await;
        async move {
            drip_until_closed(
                stream,
                H2_PREFACE,
                H2_PING,
                "an HTTP/2 connection sending only PINGs",
            )
            .await
        }
    });
    let headers = tokio::spawn({
        let stream = connect().await;
        let start = [H2_PREFACE, H2_HEADERS_START].concat();
        async move {
            drip_until_closed(
                stream,
                &start,
                b"",
                "an HTTP/2 request whose headers never end",
            )
            .await
        }
    });
    pings.await.unwrap();
    headers.await.unwrap();

    // h2c likewise; and a real request is served there.
    let address = start(
        dir.path(),
        "h2c = true\nheader_timeout_seconds = 1\nidle_timeout_seconds = 1",
        false,
    )
    .await;
    let stream = TcpStream::connect(address).await.unwrap();
    drip_until_closed(
        stream,
        H2_PREFACE,
        H2_PING,
        "an h2c connection sending only PINGs",
    )
    .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let ping = http
        .get(format!("http://{address}/v1/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.version(), reqwest::Version::HTTP_2);
    assert_eq!(ping.status(), 200);
}

#[tokio::test]
async fn a_plain_listener_off_loopback_is_warned_about() {
    let logs = logs::logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let server = |listen: &str, tls: bool| {
        let tls = if tls {
            "[server.tls]\ncertificate = \"server.pem\"\nkey = \"server.key\"\n"
        } else {
            ""
        };
        let config = Config::from_toml(
            &format!("[server]\nlisten = \"{listen}\"\n{tls}[store]\nkind = \"memory\"\n"),
            dir.path(),
        )
        .unwrap();
        Server::with_token_store(config, Arc::new(sciauth_tokens::MemoryStore::new())).unwrap()
    };
    let warnings = || {
        String::from_utf8_lossy(&logs.lock().unwrap())
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("plain http://"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Nothing is bound: the warning is about the configuration.
    server("0.0.0.0:19181", false);
    server("127.0.0.1:19182", false);
    server("[::1]:19183", false);
    server("192.0.2.1:19184", true);
    let warnings = warnings();
    assert!(
        warnings.iter().any(|w| w.contains("0.0.0.0:19181")),
        "{warnings:?}"
    );
    for quiet in ["19182", "19183", "19184"] {
        assert!(!warnings.iter().any(|w| w.contains(quiet)), "{warnings:?}");
    }
}
