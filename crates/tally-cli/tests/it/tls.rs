//! HTTPS with `--tls-cert` / `--tls-key`: clients trusting a private authority connect, a
//! renewed certificate is served after SIGHUP while open connections carry on, and files
//! that do not load leave the certificate in force.

use crate::support::{free_port, Server};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls").join(name)
}

/// A TLS connection trusting only the test authority.
async fn connect(port: u16) -> TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap()
}

fn served(stream: &TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn certificate(name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(fixture(name)).unwrap().to_vec()
}

/// Sends a GET for `/healthz` on an open connection and returns the status line.
async fn health_on(stream: &mut TlsStream<tokio::net::TcpStream>) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..read]).lines().next().unwrap_or_default().to_owned()
}

fn install(directory: &Path, which: &str) {
    std::fs::copy(fixture(&format!("server-{which}.pem")), directory.join("cert.pem")).unwrap();
    std::fs::copy(fixture(&format!("server-{which}.key")), directory.join("key.pem")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_and_a_renewed_certificate_is_taken_on_sighup_without_dropping_connections() {
    let directory = tempfile::tempdir().unwrap();
    install(directory.path(), "a");
    let port = free_port();
    let (cert, key) = (directory.path().join("cert.pem"), directory.path().join("key.pem"));
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let server = Server::start_with(&directory.path().join("data"), port, &tls);
    let url = format!("https://127.0.0.1:{port}");
    let client = tally_client::Client::with_ca(&url, &std::fs::read(fixture("ca.pem")).unwrap()).unwrap();
    let server = server.healthy_through(client.clone()).await;
    assert_eq!(client.create_asset("USD", 2).await.unwrap().results[0].result, "created");
    assert!(tally_client::Client::new(&format!("http://127.0.0.1:{port}")).health().await.is_err(), "no plain HTTP on a TLS port");

    let mut open = connect(port).await;
    assert_eq!(served(&open), certificate("server-a.pem"));
    assert!(health_on(&mut open).await.contains(" 200 "));

    install(directory.path(), "b");
    std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    let mut renewed = false;
    for _ in 0..100 {
        if served(&connect(port).await) == certificate("server-b.pem") {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewed, "new connections get the renewed certificate");
    assert!(health_on(&mut open).await.contains(" 200 "), "the connection opened before the reload still works");

    std::fs::write(directory.path().join("cert.pem"), "not a certificate").unwrap();
    std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served(&connect(port).await), certificate("server-b.pem"), "a bad file leaves the certificate in force");
    assert!(server.terminate().success());
}
