//! The background thread lives exactly as long as the blocking handles: every handle of the
//! process shares it, and dropping the last one ends it (alone in its test binary, so that
//! no other test's handles keep it alive).

mod support;

use std::fs;

use sciauth_blocking::{Credential, Transport};
use sciauth_transport::credentials::BearerToken;
use serde_json::Value;

/// How many threads of this process have this name (as `/proc` shows it: at most 15 bytes).
fn threads_named(name: &str) -> usize {
    let shown = &name[..name.len().min(15)];
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == shown)
        .count()
}

fn background_threads() -> usize {
    threads_named("sciauth-blocking")
}

#[test]
fn every_handle_shares_one_thread_that_ends_with_the_last_handle() {
    let api = support::Api::start(None);
    assert_eq!(background_threads(), 0);

    for round in 0..2 {
        let transport = Transport::build(support::api_transport(&api.url)).unwrap();
        let answer: Value = transport.get_json("hello").unwrap();
        assert_eq!(answer["ok"], true);
        let credential = Credential::new(BearerToken::new("a-token").unwrap());
        let clone = transport.clone();
        assert_eq!(
            background_threads(),
            1,
            "round {round}: one thread for all handles"
        );

        drop(transport);
        drop(credential);
        // The clone still holds it, and still works.
        assert_eq!(background_threads(), 1, "round {round}");
        let answer: Value = clone.get_json("again").unwrap();
        assert_eq!(answer["ok"], true);

        drop(clone);
        assert_eq!(
            background_threads(),
            0,
            "round {round}: the last drop ends the thread"
        );
        assert_eq!(
            threads_named("sciauth-pool"),
            0,
            "round {round}: and its pool"
        );
    }
    assert_eq!(api.seen().len(), 4);
}
