//! What breaks HTTP itself: huge, endless, slow, compressed and garbled answers, resets,
//! header floods, and redirects that would carry the client's secrets elsewhere.

use std::process::Command;
use std::time::Duration;

use sciauth_tokens::{ClientAuth, ErrorKind};

use crate::hostile::{HostileIdp, Recorder, Reply};
use crate::{
    CLIENT_SECRET, REFRESH_TOKEN, assert_refused, bounded, client_credentials, client_with, refresh,
};

async fn refused(reply: Reply, kind: ErrorKind) {
    let idp = HostileIdp::start().await;
    idp.set("/token", reply);
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, kind, &[]);
}

#[tokio::test]
async fn a_ten_megabyte_answer_is_refused_by_its_length() {
    let body = format!(
        r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
        "a".repeat(10 * 1000 * 1000)
    );
    refused(Reply::json_text(200, &body), ErrorKind::InvalidResponse).await;
}

#[tokio::test]
async fn an_endless_chunked_answer_is_cut_at_the_limit() {
    let idp = HostileIdp::start().await;
    idp.set("/token", Reply::EndlessChunks { chunk: 64 * 1024 });
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[]);
    assert!(error.to_string().contains("1048576 bytes"), "{error}");
}

#[tokio::test]
async fn a_gzip_bomb_is_never_inflated() {
    // 100 MB of zeros, gzipped to about 100 KB; sciauth asks for no compression and
    // inflates none, so the bomb stays 100 KB of bytes that are not JSON.
    let output = Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(b'\\0' * 100_000_000))",
        ])
        .output()
        .expect("python3 makes the gzip bomb");
    assert!(output.status.success());
    assert!(output.stdout.len() < 1 << 20);
    refused(
        Reply::Http {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("content-encoding".into(), "gzip".into()),
            ],
            body: output.stdout,
        },
        ErrorKind::InvalidResponse,
    )
    .await;
}

#[tokio::test]
async fn a_slow_drip_ends_at_the_timeout() {
    refused(
        Reply::Drip {
            every: Duration::from_millis(200),
        },
        ErrorKind::Transport,
    )
    .await;
}

#[tokio::test]
async fn a_hang_after_the_headers_ends_at_the_timeout() {
    refused(Reply::HangAfterHeaders, ErrorKind::Transport).await;
}

#[tokio::test]
async fn a_server_that_never_answers_ends_at_the_timeout() {
    refused(Reply::Hang, ErrorKind::Transport).await;
}

#[tokio::test]
async fn a_reset_connection_is_a_transport_error() {
    refused(Reply::Reset, ErrorKind::Transport).await;
}

#[tokio::test]
async fn bytes_that_are_not_http_are_a_transport_error() {
    let mut garbage = b"\x1b[2J\x00\xff SSH-2.0-OpenSSH\r\n".to_vec();
    garbage.extend(std::iter::repeat_n(0xfe_u8, 4096));
    refused(Reply::Raw(garbage), ErrorKind::Transport).await;
}

#[tokio::test]
async fn a_flood_of_headers_is_a_transport_error() {
    let headers = (0..10_000)
        .map(|i| (format!("x-flood-{i}"), "y".repeat(20)))
        .collect();
    refused(
        Reply::Http {
            status: 200,
            headers,
            body: b"{}".to_vec(),
        },
        ErrorKind::Transport,
    )
    .await;
}

#[tokio::test]
async fn a_header_of_a_mebibyte_is_a_transport_error() {
    refused(
        Reply::Http {
            status: 200,
            headers: vec![("x-huge".into(), "h".repeat(1 << 20))],
            body: b"{}".to_vec(),
        },
        ErrorKind::Transport,
    )
    .await;
}

/// A redirect from the token endpoint to `recorder`: the grant must stop with an error saying
/// so, and nothing (least of all a secret) may reach the recorder, although the caller's
/// transport follows redirects.
async fn redirect_is_refused(status: u16, auth: ClientAuth, refreshing: bool) {
    let idp = HostileIdp::start().await;
    let recorder = Recorder::start().await;
    idp.set(
        "/token",
        Reply::redirect(
            status,
            &format!("{}/steal?code=planted-secret", recorder.url()),
        ),
    );
    let error = if refreshing {
        refresh(&idp).await.unwrap_err()
    } else {
        let client = client_with(&idp, auth).await;
        bounded(client.client_credentials().send())
            .await
            .unwrap_err()
    };
    assert_refused(&error, ErrorKind::HttpStatus, &["planted-secret"]);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
    assert!(error.to_string().contains("not followed"), "{error}");
    assert!(error.to_string().contains(&recorder.url()), "{error}");
    assert!(
        recorder.requests().is_empty(),
        "the redirect target was reached: {:?}",
        recorder.requests()
    );
}

#[tokio::test]
async fn a_302_from_the_token_endpoint_is_not_followed_with_a_posted_secret() {
    redirect_is_refused(302, ClientAuth::secret_post(CLIENT_SECRET), false).await;
}

#[tokio::test]
async fn a_307_from_the_token_endpoint_is_not_followed_with_a_basic_secret() {
    redirect_is_refused(307, ClientAuth::secret_basic(CLIENT_SECRET), false).await;
}

#[tokio::test]
async fn a_308_from_the_token_endpoint_is_not_followed_with_a_refresh_token() {
    redirect_is_refused(308, ClientAuth::none(), true).await;
    let _ = REFRESH_TOKEN;
}
