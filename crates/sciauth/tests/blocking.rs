//! `sciauth::blocking` (cargo feature `blocking`): there, usable without a runtime, and its
//! errors convert into the facade's `Error` with `?`.
#![cfg(feature = "blocking")]

use sciauth::blocking;
use sciauth::credentials::BearerToken;

fn header() -> sciauth::Result<String> {
    let credential = blocking::Credential::new(BearerToken::new("a-token")?);
    let header = credential.header()?.expect("a bearer header");
    Ok(header.value().to_str().unwrap_or_default().to_owned())
}

fn fetch(url: &str) -> sciauth::Result<String> {
    let transport = blocking::Transport::build(
        sciauth::Transport::builder()
            .base_url(url)
            .proxy_from_env(false)
            .retries(0),
    )?;
    Ok(transport.get_text("x")?)
}

#[test]
fn the_blocking_api_works_without_a_runtime_and_its_errors_are_the_facades() {
    assert_eq!(header().unwrap(), "Bearer a-token");

    // A port nothing listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let error = fetch(&url).unwrap_err();
    assert_eq!(error.kind(), sciauth::ErrorKind::Transport);
    assert!(error.is_network(), "{error}");
}
