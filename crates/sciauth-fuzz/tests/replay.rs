//! Replays every committed fuzz input, the seed and minimized corpus (`fuzz/corpus/<target>/`)
//! and the crashes found (`fuzz/artifacts/<target>/`), through its target on stable: one test
//! per target, so that a failure names the target and the files.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files in `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no inputs");
    let artifacts = inputs(&fuzz_dir().join("artifacts").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(file).expect("a readable input");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panic (reproduce with `cargo +nightly fuzz run {target} \
         FILE` in fuzz/):\n  {}",
        failed.len(),
        corpus.len() + artifacts.len(),
        failed.join("\n  ")
    );
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target), sciauth_fuzz::$target);
            }
        )*

        /// The tests above, `TARGETS`, `fuzz/fuzz_targets/` and `fuzz/Cargo.toml` name the
        /// same targets.
        #[test]
        fn every_target_is_replayed_and_has_a_fuzz_target() {
            let tested: Vec<&str> = vec![$(stringify!($target)),*];
            let listed: Vec<&str> = sciauth_fuzz::TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(tested, listed, "replay_tests! and TARGETS differ");
            let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml"))
                .expect("fuzz/Cargo.toml");
            let mut files: Vec<String> = inputs(&fuzz_dir().join("fuzz_targets"))
                .iter()
                .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
                .collect();
            files.sort();
            let mut names: Vec<String> = listed.iter().map(|n| n.to_string()).collect();
            names.sort();
            assert_eq!(files, names, "fuzz/fuzz_targets/ and TARGETS differ");
            for name in &names {
                let source = std::fs::read_to_string(
                    fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")),
                )
                .expect("a fuzz target");
                assert!(
                    source.contains(&format!("sciauth_fuzz::{name}(")),
                    "fuzz/fuzz_targets/{name}.rs does not call sciauth_fuzz::{name}"
                );
                assert!(
                    manifest.contains(&format!("name = \"{name}\"")),
                    "fuzz/Cargo.toml has no [[bin]] {name}"
                );
            }
        }
    };
}

replay_tests!(
    token_response,
    oauth_error,
    discovery,
    jwks,
    jwt,
    device_authorization,
    introspection,
    token_store_file,
    token_store_row,
    rucio_config,
    rucio_login_answer,
    cli_config,
    unicore_preferences,
    ssh_private_key,
    ssh_public_key,
    server_request,
    server_config,
    service_answer,
    rucio_token_cache,
);
