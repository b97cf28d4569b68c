//! The service over TLS, callers named by their client certificate's subject DN, grants in
//! SQLite (one instance needs no PostgreSQL).

use sciauth_test_support::pki;

use pki::Pki;
use rcgen::DnType;
use sciauth_server::{Config, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_name_callers() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let (alice_cert, alice_key) = pki.issue(
        &[],
        &[
            (DnType::CountryName, "CH"),
            (DnType::OrganizationName, "Test"),
            (DnType::CommonName, "alice"),
        ],
        true,
    );
    let (stranger_cert, stranger_key) = pki.issue(&[], &[(DnType::CommonName, "stranger")], true);
    let config = Config::from_toml(
        r#"
[server.tls]
certificate = "server.pem"
key = "server.key"
client_ca = "ca.pem"
[store]
kind = "sqlite"
path = "tokens.db"
[groups.users]
properties = ["PrivateLimitedDelegation"]
[users.alice]
groups = ["users"]
dns = ["/C=CH/O=Test/CN=alice"]
"#,
        dir.path(),
    )
    .unwrap();
    let server = Server::new(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
    assert!(dir.path().join("tokens.db").exists());

    let client = |identity: Option<(&str, &str)>| {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()]);
        if let Some((cert, key)) = identity {
            builder = builder
                .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        builder.build().unwrap()
    };
    let whoami = |client: reqwest::Client| {
        let url = format!("{base}/v1/whoami");
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };

    let (status, me) = whoami(client(Some((&alice_cert, &alice_key)))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["authenticated_by"], "certificate");
    assert_eq!(me["identity"], "/C=CH/O=Test/CN=alice");

    // A certificate of the CA that names no user: 403; none at all: 401 (bearer tokens are
    // still possible, but none is configured here).
    let (status, body) = whoami(client(Some((&stranger_cert, &stranger_key)))).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = whoami(client(None)).await;
    assert_eq!(status, 401, "{body}");

    // Nothing is kept for alice yet; the answer says so (and the provider is not asked).
    let response = client(Some((&alice_cert, &alice_key)))
        .post(format!("{base}/v1/getUserTokensInfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!([])
    );
}

/// Plain slash form would print a certificate whose one `O` is `Test/CN=alice` as alice's DN
/// `/O=Test/CN=alice`; separators inside values are escaped, so it names nobody. A DN that
/// really holds a slash is configured with it escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separators_inside_a_dn_value_cannot_impersonate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let config = Config::from_toml(
        r#"
[server.tls]
certificate = "server.pem"
key = "server.key"
client_ca = "ca.pem"
[store]
kind = "memory"
[groups.users]
[users.alice]
groups = ["users"]
dns = ["/O=Test/CN=alice"]
[users.robot]
groups = ["users"]
dns = ["/O=Test/CN=robot\\/host.example.org"]
"#,
        dir.path(),
    )
    .unwrap();
    let server = Server::new(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
    let whoami = |subject: &[(DnType, &str)]| {
        let (cert, key) = pki.issue(&[], subject, true);
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap())
            .build()
            .unwrap();
        let url = format!("{base}/v1/whoami");
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };

    let (status, me) = whoami(&[
        (DnType::OrganizationName, "Test"),
        (DnType::CommonName, "alice"),
    ])
    .await;
    assert_eq!((status, &me["username"]), (200, &"alice".into()), "{me}");

    let (status, body) = whoami(&[(DnType::OrganizationName, "Test/CN=alice")]).await;
    assert_eq!(status, 403, "a forged DN was taken for alice's: {body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("/O=Test\\/CN\\=alice"), "{message}");

    // A control character in a value reaches no message raw.
    let (status, body) = whoami(&[(DnType::CommonName, "evil\u{1b}[2J")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        !body["message"].as_str().unwrap().contains('\u{1b}'),
        "{body}"
    );

    let (status, me) = whoami(&[
        (DnType::OrganizationName, "Test"),
        (DnType::CommonName, "robot/host.example.org"),
    ])
    .await;
    assert_eq!((status, &me["username"]), (200, &"robot".into()), "{me}");
    assert_eq!(me["identity"], "/O=Test/CN=robot\\/host.example.org");
}

/// A request over TLS negotiates HTTP/2 by ALPN (and HTTP/1.1 when `server.http2 = false`);
/// many requests share the one HTTP/2 connection at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let (cert, key) = pki.issue(&[], &[(DnType::CommonName, "alice")], true);
    let serve = |http2: &str| {
        let config = Config::from_toml(
            &format!(
                "[server]\n{http2}\n[server.tls]\ncertificate = \"server.pem\"\nkey = \"server.key\"\n\
                 client_ca = \"ca.pem\"\n[store]\nkind = \"memory\"\n[groups.users]\n\
                 [users.alice]\ngroups = [\"users\"]\ndns = [\"/CN=alice\"]\n"
            ),
            dir.path(),
        )
        .unwrap();
        async move {
            let server = Server::new(config).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("https://{}", listener.local_addr().unwrap());
            tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
            base
        }
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap())
        .build()
        .unwrap();

    let base = serve("").await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/v1/whoami"));
            tokio::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                let version = response.version();
                let status = response.status().as_u16();
                let me: serde_json::Value = response.json().await.unwrap();
                (version, status, me)
            })
        })
        .collect();
    for call in calls {
        let (version, status, me) = call.await.unwrap();
        assert_eq!(version, reqwest::Version::HTTP_2);
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["username"], "alice", "{me}");
        assert_eq!(me["authenticated_by"], "certificate");
    }

    let base = serve("http2 = false").await;
    let response = client
        .get(format!("{base}/v1/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
}

/// HTTP/2 with prior knowledge on a plain listener, only where `server.h2c = true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_where_configured() {
    let serve = |h2c: &str| {
        let config = Config::from_toml(
            &format!("[server]\n{h2c}\n[store]\nkind = \"memory\"\n"),
            "/",
        )
        .unwrap();
        async move {
            let server = Server::new(config).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
            base
        }
    };
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let http1 = reqwest::Client::builder().no_proxy().build().unwrap();

    let base = serve("h2c = true").await;
    let response = h2.get(format!("{base}/v1/ping")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    // HTTP/1.1 still works there.
    let response = http1.get(format!("{base}/v1/ping")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);

    let base = serve("").await;
    assert!(h2.get(format!("{base}/v1/ping")).send().await.is_err());
    let response = http1.get(format!("{base}/v1/ping")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Client CAs from a directory as the grid keeps them (`/etc/grid-security/certificates`:
/// `<hash>.pem` files beside `.0` links, `.signing_policy` files and, at times, a CA that
/// cannot be used): the usable ones are trusted, the unusable one skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_a_grid_ca_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_server_files(dir.path());
    let grid = dir.path().join("certificates");
    std::fs::create_dir(&grid).unwrap();
    std::fs::write(grid.join("1a2b3c4d.pem"), &pki.ca_pem).unwrap();
    std::fs::write(grid.join("1a2b3c4d.0"), &pki.ca_pem).unwrap();
    std::fs::write(
        grid.join("1a2b3c4d.signing_policy"),
        "access_id_CA X509 '/CN=x'\n",
    )
    .unwrap();
    std::fs::write(
        grid.join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let config = Config::from_toml(
        "[server.tls]\ncertificate = \"server.pem\"\nkey = \"server.key\"\n\
         client_ca_dir = \"certificates\"\n[store]\nkind = \"memory\"\n[groups.users]\n\
         [users.alice]\ngroups = [\"users\"]\ndns = [\"/CN=alice\"]\n",
        dir.path(),
    )
    .unwrap();
    let server = Server::new(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
    let (cert, key) = pki.issue(&[], &[(DnType::CommonName, "alice")], true);
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("{base}/v1/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let me: serde_json::Value = response.json().await.unwrap();
    assert_eq!(me["username"], "alice", "{me}");
    assert_eq!(me["authenticated_by"], "certificate");

    // A directory with nothing usable is a TLS setup error at start.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let config = Config::from_toml(
        "[server.tls]\ncertificate = \"server.pem\"\nkey = \"server.key\"\n\
         client_ca_dir = \"empty\"\n[store]\nkind = \"memory\"\n",
        dir.path(),
    )
    .unwrap();
    let error = Server::new(config).await.unwrap_err();
    assert_eq!(error.kind(), sciauth_server::ErrorKind::Tls);
    assert!(error.to_string().contains("client_ca_dir"), "{error}");
}
