//! The TLS client settings of the webhook: rustls with the ring provider, trusting the system's
//! certificate authorities (Debian's /etc/ssl/certs) and those of `ca_file`.

use std::sync::Arc;

use rustls::{crypto::CryptoProvider, ClientConfig, RootCertStore};

use crate::rules::alerts::CaFile;

/// ring's provider: rustls 0.23.48 deprecates it for lacking post-quantum key exchange, but the
/// alternative (aws-lc-rs) needs cmake and a C build; mail and webhooks gain little from it.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `https`: whether roots are needed at all (a plain http:// webhook needs none).
pub fn client_config(ca_file: Option<&CaFile>, https: bool) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (_, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        log::debug!("{ignored} certificates of the system store could not be used");
    }
    if let Some(ca) = ca_file {
        for c in ca.certificates() {
            roots.add(c).map_err(|e| format!("ca_file {}: {e}", ca.path.display()))?;
        }
    }
    if https && roots.is_empty() {
        return Err("no certificate authority to trust: the system store is empty (install ca-certificates) \
                    and no `ca_file` is given"
            .into());
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
