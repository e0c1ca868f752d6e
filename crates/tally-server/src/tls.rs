//! HTTPS: a certificate chain and its key, read from PEM files, served with rustls (ring, the
//! one crypto provider in the workspace). `reload` reads the files again, so a renewed
//! certificate is served to new connections (on SIGHUP) while open ones carry on undisturbed;
//! files that do not load leave the certificate in force as it was.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

fn load(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let named = |path: &Path, error: &dyn std::fmt::Display| io::Error::other(format!("{}: {error}", path.display()));
    let chain =
        CertificateDer::pem_file_iter(cert).map_err(|e| named(cert, &e))?.collect::<Result<Vec<_>, _>>().map_err(|e| named(cert, &e))?;
    if chain.is_empty() {
        return Err(named(cert, &"no certificate in the file"));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| named(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| named(key, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> io::Result<Arc<Tls>> {
        let config = load(cert, key)?;
        Ok(Arc::new(Tls { cert: cert.to_path_buf(), key: key.to_path_buf(), config: RwLock::new(config) }))
    }

    /// Reads the files again; on failure the certificate served stays as it was.
    pub fn reload(&self) -> io::Result<()> {
        let config = load(&self.cert, &self.key)?;
        *self.config.write().expect("tls lock") = config;
        Ok(())
    }

    /// What a new connection is served with.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().expect("tls lock").clone())
    }
}
