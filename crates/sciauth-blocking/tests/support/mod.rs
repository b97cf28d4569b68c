//! A loopback API for the blocking transport to call: std threads and a raw TCP socket, no
//! async runtime in the test process but the one under test.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// An HTTP/1.1 server on 127.0.0.1 and a free port that answers every request with
/// `200 {"ok":true}` when it carries the expected `Authorization` header (or when none is
/// expected), else `401`, and remembers the `Authorization` header of each request.
pub struct Api {
    pub url: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl Api {
    pub fn start(expected: Option<String>) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        thread::Builder::new()
            .name("test-api".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    answer(stream, expected.as_deref(), &record);
                }
            })
            .unwrap();
        Api { url, seen }
    }

    /// The `Authorization` header of each request so far, in order.
    pub fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, expected: Option<&str>, seen: &Mutex<Vec<Option<String>>>) {
    let mut reader = BufReader::new(stream);
    let mut authorization = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let accepted = expected.is_none() || authorization.as_deref() == expected;
    seen.lock().unwrap().push(authorization);
    let (status, body) = if accepted {
        ("200 OK", r#"{"ok":true}"#)
    } else {
        ("401 Unauthorized", r#"{"ok":false}"#)
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A transport builder that reaches `url` directly (tests talk to 127.0.0.1 only).
pub fn api_transport(url: &str) -> sciauth_transport::TransportBuilder {
    sciauth_transport::Transport::builder()
        .base_url(url)
        .proxy_from_env(false)
}
