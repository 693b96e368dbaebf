//! TLS to PostgreSQL with libpq's options in the URL, so that a URL that works with `psql` works
//! here: `sslmode` (`disable`, `allow`, `prefer` — the default —, `require`, `verify-ca`,
//! `verify-full`), `sslrootcert` (a PEM file of the certificate authorities to trust, or `system`
//! for the system's), `sslcert` and `sslkey` (a client certificate and its key, PEM).
//!
//! As libpq does: `prefer` and `require` encrypt without checking the server's certificate unless
//! `sslrootcert` is given (then as `verify-ca`); `verify-ca` checks that an authority trusted
//! signed it; `verify-full` also that it names the host connected to. `verify-*` without
//! `sslrootcert` use `~/.postgresql/root.crt`, as libpq does. The PostgreSQL client knows only
//! `disable`, `prefer` and `require`; the rest are read here and taken out of the URL it reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// No TLS.
    Off,
    /// Encrypted, the certificate not checked (`prefer`, `require`).
    Encrypt,
    /// Signed by a trusted authority (`verify-ca`).
    Authority,
    /// And naming the host (`verify-full`).
    Full,
}

/// Where the trusted authorities come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    File(PathBuf),
    System,
}

/// libpq's TLS options of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// `sslmode` as the PostgreSQL client reads it (`disable`, `prefer` or `require`).
    pub(crate) mode: &'static str,
    pub(crate) check: Check,
    pub(crate) roots: Option<Roots>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// A query value as written in a URL, `%XX` decoded.
fn unescape(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The URL the PostgreSQL client reads (its `sslmode` one it knows, the other TLS options taken
/// out) and the TLS options; or what is wrong with them.
pub(crate) fn split(url: &str) -> Result<(String, Options), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = None;
    let mut roots = None;
    let mut cert = None;
    let mut key = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => mode = Some(unescape(v)),
            "sslrootcert" => {
                let v = unescape(v);
                roots = Some(if v == "system" {
                    Roots::System
                } else {
                    Roots::File(v.into())
                });
            }
            "sslcert" => cert = Some(PathBuf::from(unescape(v))),
            "sslkey" => key = Some(PathBuf::from(unescape(v))),
            _ => kept.push(pair),
        }
    }
    let (client_mode, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => ("disable", Check::Off),
        // Plain first, as libpq tries: here TLS first, as `prefer`; both fall back.
        "allow" | "prefer" => ("prefer", Check::Encrypt),
        "require" => ("require", Check::Encrypt),
        "verify-ca" => ("require", Check::Authority),
        "verify-full" => ("require", Check::Full),
        other => {
            return Err(format!(
            "sslmode={other}: not one of disable, allow, prefer, require, verify-ca, verify-full"
        ))
        }
    };
    // A trusted authority given: `prefer` and `require` check with it (libpq's `verify-ca`).
    let check = match (check, &roots) {
        (Check::Encrypt, Some(_)) => Check::Authority,
        (c, _) => c,
    };
    let roots = match (check, roots) {
        (Check::Authority | Check::Full, None) => {
            let default = std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".postgresql/root.crt"))
                .filter(|p| p.exists());
            match default {
                Some(p) => Some(Roots::File(p)),
                None => {
                    return Err(
                        "sslmode=verify-ca and verify-full need the authorities to trust: \
                         sslrootcert=FILE (PEM), sslrootcert=system, or ~/.postgresql/root.crt"
                            .into(),
                    )
                }
            }
        }
        (_, r) => r,
    };
    if cert.is_some() != key.is_some() {
        return Err("sslcert and sslkey go together".into());
    }
    kept.push(match client_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((
        format!("{base}?{}", kept.join("&")),
        Options {
            mode: client_mode,
            check,
            roots,
            cert,
            key,
        },
    ))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS connector for the options.
pub(crate) fn connector(o: &Options) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut store = rustls::RootCertStore::empty();
    match &o.roots {
        Some(Roots::File(p)) => {
            for c in CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("sslrootcert {}: {e}", p.display()))?
            {
                let c = c.map_err(|e| format!("sslrootcert {}: {e}", p.display()))?;
                store
                    .add(c)
                    .map_err(|e| format!("sslrootcert {}: {e}", p.display()))?;
            }
            if store.is_empty() {
                return Err(format!(
                    "sslrootcert {}: no certificate in it (PEM expected)",
                    p.display()
                ));
            }
        }
        Some(Roots::System) => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = store.add(c);
            }
            if store.is_empty() {
                return Err("sslrootcert=system: no certificate authority on this system".into());
            }
        }
        None => {}
    }
    let verifier: Arc<dyn ServerCertVerifier> = match o.check {
        Check::Off | Check::Encrypt => Arc::new(Unchecked(provider.clone())),
        Check::Authority | Check::Full => {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider,
            )
            .build()
            .map_err(|e| e.to_string())?;
            if o.check == Check::Full {
                webpki
            } else {
                Arc::new(AnyName(webpki))
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&o.cert, &o.key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<_, _>>())
                .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("sslkey {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("sslcert: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Accepts any certificate (libpq's `prefer` and `require`: encrypted, not authenticated); the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A trusted authority's certificate for any name (libpq's `verify-ca`).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpqs_options_are_read_and_the_client_gets_a_mode_it_knows() {
        let (url, o) = split(
            "postgres://u@db/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@db/x?application_name=a&sslmode=require");
        assert_eq!(o.check, Check::Full);
        assert_eq!(o.roots, Some(Roots::File("/etc/ca.pem".into())));
        let (url, o) = split("postgres://u@db/x").unwrap();
        assert_eq!(url, "postgres://u@db/x?sslmode=prefer");
        assert_eq!((o.mode, o.check), ("prefer", Check::Encrypt));
        let (_, o) = split("postgres://u@db/x?sslmode=require&sslrootcert=system").unwrap();
        assert_eq!((o.check, o.roots), (Check::Authority, Some(Roots::System)));
        let (url, o) = split("postgres://u@db/x?sslmode=disable").unwrap();
        assert_eq!(
            (url.as_str(), o.check),
            ("postgres://u@db/x?sslmode=disable", Check::Off)
        );
        assert!(split("postgres://u@db/x?sslmode=verify")
            .unwrap_err()
            .contains("sslmode=verify:"));
        assert!(split("postgres://u@db/x?sslcert=/c.pem")
            .unwrap_err()
            .contains("go together"));
    }
}
