//! An issuer or token endpoint on plain `http://` to another host is warned about, once; the
//! test provider on `http://127.0.0.1` is not. Its own binary: the log capture is global.

use sciauth_test_support::idp;
use sciauth_test_support::logs;

use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::url::Url;
use sciauth_tokens::{Issuer, ProviderMetadata, is_cleartext_remote};

fn transport() -> Transport {
    Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .unwrap()
}

fn captured() -> String {
    String::from_utf8_lossy(&logs::logs().lock().unwrap()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_another_host_is_warned_about_once() {
    let _ = logs::logs();
    // The real provider on loopback: discovery, no warning.
    let idp = idp::Idp::start().await;
    assert!(
        idp.issuer().starts_with("http://127.0.0.1:"),
        "{}",
        idp.issuer()
    );
    Issuer::builder(idp.issuer())
        .transport(transport())
        .build()
        .await
        .unwrap();
    let logged = captured();
    assert!(!logged.contains("plain http://"), "{logged}");

    // A provider elsewhere over plain http (metadata given, so nothing is fetched): warned
    // about, issuer and token endpoint each once however often it is built.
    let token_endpoint = Url::parse("http://idp.example.org/token").unwrap();
    for _ in 0..3 {
        Issuer::builder("http://idp.example.org")
            .transport(transport())
            .metadata(ProviderMetadata::new(
                "http://idp.example.org",
                token_endpoint.clone(),
            ))
            .build()
            .await
            .unwrap();
    }
    let logged = captured();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("plain http://"))
        .collect();
    assert_eq!(warnings.len(), 2, "{logged}");
    assert!(
        warnings[0].contains("issuer http://idp.example.org/"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("token endpoint http://idp.example.org/token"),
        "{warnings:?}"
    );
}

#[test]
fn what_counts_as_cleartext_to_another_host() {
    let remote = |url: &str| is_cleartext_remote(&Url::parse(url).unwrap());
    assert!(remote("http://idp.example.org"));
    assert!(remote("http://10.0.0.1:8080/x"));
    assert!(remote("http://[2001:db8::1]/"));
    assert!(!remote("http://127.0.0.1:9"));
    assert!(!remote("http://127.5.6.7/"));
    assert!(!remote("http://[::1]:80/"));
    assert!(!remote("http://LocalHost:8080/"));
    assert!(!remote("https://idp.example.org"));
}
