//! Guarding the metadata service on the host.
//!
//! [`mock`] is a faithful local stand-in for the metadata services of AWS (IMDSv1 and IMDSv2:
//! session tokens with their TTL, the PUT response's hop limit, 401 for token-less requests when
//! IMDSv2 is required, `X-Forwarded-For` refused), Azure (`Metadata: true`, `api-version`), GCP
//! (`Metadata-Flavor: Google`) and the ECS and EKS Pod Identity credential endpoints, serving fake
//! but well-formed credentials: for testing policies, detections and the tools around them
//! without a cloud.
//!
//! [`proxy`] sits in front of the real service: each connection attributed to its process from
//! the socket ([`attrib`]), each request decided by the [`policy`] and written to an audit log,
//! then forwarded or refused as the service itself would refuse it.

pub mod attrib;
mod audit;
mod error;
pub mod harden;
pub mod install;
pub mod mock;
pub mod policy;
pub mod proxy;
mod redact;
mod sockdiag;
pub mod suggest;

pub use error::GuardError;
