//! What a request pays for its authentication header, and what a fresh JWT signature costs.
//!
//! Run with `cargo bench -p sciauth-credentials`; results go in `docs/benchmarks.md`.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use sciauth_credentials::{BasicToken, BearerToken, Credential, PrivateKey, Ready, SshKeyJwt};

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PrivateKey {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-f"])
        .arg(&path)
        .args(args)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    PrivateKey::from_file(&path, None).unwrap()
}

fn ready(credential: &dyn Credential) -> http::HeaderValue {
    match credential.ready_header() {
        Ready::Header(header) => header.into_parts().1,
        _ => panic!("benchmarked credentials are ready"),
    }
}

fn headers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwt = SshKeyJwt::new("demouser", keygen(dir.path(), "ed", &["-t", "ed25519"]));
    runtime.block_on(jwt.header()).unwrap();
    let bearer = BearerToken::new("x".repeat(1200)).unwrap();
    let basic = BasicToken::new("dXNlcjpwYXNzd29yZA==").unwrap();
    let value = http::HeaderValue::from_str(&"x".repeat(1200)).unwrap();

    let mut group = c.benchmark_group("header");
    group.bench_function("HeaderValue clone (baseline)", |b| {
        b.iter(|| black_box(&value).clone())
    });
    group.bench_function("cached SSH JWT, ready_header", |b| {
        b.iter(|| ready(black_box(&jwt)))
    });
    group.bench_function("cached SSH JWT, header().await", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(&jwt).header().await.unwrap() })
    });
    group.bench_function("Bearer, ready_header", |b| {
        b.iter(|| ready(black_box(&bearer)))
    });
    group.bench_function("Basic, ready_header", |b| {
        b.iter(|| ready(black_box(&basic)))
    });
    group.finish();
}

fn signing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sign a new JWT");
    for (name, args) in [
        ("EdDSA", &["-t", "ed25519"][..]),
        ("ES256", &["-t", "ecdsa", "-b", "256"][..]),
        ("ES384", &["-t", "ecdsa", "-b", "384"][..]),
        ("ES512", &["-t", "ecdsa", "-b", "521"][..]),
        ("RS256 (2048)", &["-t", "rsa", "-b", "2048"][..]),
    ] {
        let jwt = SshKeyJwt::new("demouser", keygen(dir.path(), name, args));
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { jwt.sign_new().await.unwrap() })
        });
    }
    group.finish();
}

criterion_group!(benches, headers, signing);
criterion_main!(benches);
