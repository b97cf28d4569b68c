//! What a request leaves in the logs: a span with method, URL, status, time and attempts;
//! never a credential, a session, a password or a body.
//!
//! A test binary of its own: `tracing` caches per call site whether anyone listens, and a
//! test on another thread that reaches a call site first could leave that cache saying "no
//! one" while this test's subscriber is being installed.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sciauth_transport::Transport;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use support::{Pki, RenewingToken, TestServer, recording, respond};

/// Log lines, collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One thread, so that the subscriber set for this test sees everything: the transport, the
// reqwest and hyper connection tasks, and the server.
#[tokio::test(flavor = "current_thread")]
async fn trace_logs_of_a_full_request_hold_no_secret() {
    // reqwest and rustls log through the `log` crate; route it into tracing too.
    let _ = tracing_log::LogTracer::init();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    let pki = Pki::new();
    let (router, log) = recording(|seen, _| {
        if seen.header("authorization") == Some("Bearer tok3n-s3cret-2") {
            respond(200, &[("x-unicore-securitysession", "sess-s3cret")], "{}")
        } else if seen.header("x-unicore-securitysession") == Some("sess-s3cret") {
            respond(200, &[], "{}")
        } else {
            respond(401, &[], "")
        }
    });
    let server = TestServer::https(router, pki.server_config(false)).await;
    let token = RenewingToken::new("tok3n-s3cret", true);
    let transport = Transport::builder()
        .base_url(&server.localhost_url("/rest"))
        .root_ca_pem_file(pki.path("ca.pem"))
        .shared_credential(token)
        .build()
        .unwrap();

    // Rejected, renewed, resent; the answer opens a security session.
    let response = transport
        .post("jobs?access_token=qu3ry-s3cret")
        .sensitive_header("x-rucio-password", "passw0rd-s3cret")
        .body("b0dy-s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The session goes back.
    transport.get("jobs").send().await.unwrap();
    assert_eq!(log.len(), 3);

    drop(guard);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();

    // The capture worked: our span, and the HTTP client's own internals.
    assert!(logs.contains("http_request"), "{logs}");
    assert!(
        logs.contains("status=401") || logs.contains("renewed"),
        "{logs}"
    );
    assert!(logs.contains("attempt=2"), "{logs}");
    assert!(
        logs.contains("reqwest") || logs.contains("hyper"),
        "no client internals captured:\n{logs}"
    );
    for secret in [
        "tok3n-s3cret",
        "sess-s3cret",
        "passw0rd-s3cret",
        "b0dy-s3cret",
        "qu3ry-s3cret",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} appears in the logs:\n{logs}"
        );
    }
}
