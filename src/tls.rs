//! TLS for SIP (RFC 3261 §26) between the sip-monitor and the presence
//! server: rustls with the ring provider, certificates and keys read from
//! PEM files, and errors that name the file.

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{
    self, client::WebPkiServerVerifier, server::WebPkiClientVerifier, RootCertStore,
};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate in it",
        path.display()
    );
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("{}: no PEM private key in it", path.display()))
}

fn roots(path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for c in certs(path)? {
        roots
            .add(c)
            .with_context(|| format!("{}: not a usable authority", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// A server with `cert` and `key`; with `client_ca`, clients must present
/// a certificate that authority signed.
pub fn server(
    cert: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let b = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let b = match client_ca {
        Some(ca) => b.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                .build()
                .with_context(|| format!("{}: client verifier", ca.display()))?,
        ),
        None => b.with_no_client_auth(),
    };
    let c = b
        .with_single_cert(certs(cert)?, key(key_file)?)
        .with_context(|| format!("{} with {}", cert.display(), key_file.display()))?;
    Ok(Arc::new(c))
}

/// A client trusting `ca`, presenting `identity` (cert, key) if given.
pub fn client(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .with_context(|| format!("{}: server verifier", ca.display()))?;
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_webpki_verifier(verifier);
    let c = match identity {
        Some((cert, k)) => b
            .with_client_auth_cert(certs(cert)?, key(k)?)
            .with_context(|| format!("{} with {}", cert.display(), k.display()))?,
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(c))
}
