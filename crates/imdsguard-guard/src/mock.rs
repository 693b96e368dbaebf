//! A mock of the cloud metadata services, answering as the real ones do.
//!
//! What each provider's service does, from its public documentation:
//! - AWS (EC2 instance metadata, "Use the Instance Metadata Service to access instance metadata"):
//!   IMDSv2 sessions start with `PUT /latest/api/token` carrying
//!   `X-aws-ec2-metadata-token-ttl-seconds` (1–21600, else 400); a PUT carrying `X-Forwarded-For`
//!   gets no token (403); the token reply leaves with the instance's hop limit as its IP TTL, so a
//!   container or a host one router further away never receives it; a GET carrying an invalid or
//!   expired token gets 401, and so does a token-less GET when IMDSv2 is required.
//! - Azure (Azure Instance Metadata Service): every request needs `Metadata: true` and an
//!   `api-version` query parameter (400 otherwise); requests carrying `X-Forwarded-For` are
//!   refused; managed identity tokens come from `/metadata/identity/oauth2/token?resource=…`.
//! - GCP (Compute Engine "About VM metadata"): `/computeMetadata/v1/` needs
//!   `Metadata-Flavor: Google` (403 otherwise), refuses `X-Forwarded-For`, and answers with
//!   `Metadata-Flavor: Google`.
//! - ECS task credentials (`169.254.170.2/v2/credentials/ID`) and EKS Pod Identity
//!   (`169.254.170.23/v1/credentials`, which needs the pod's token in `Authorization`).
//!
//! The answers are computed by [`Mock::answer`], a plain function of the request, so they are
//! tested without a network; [`serve`] puts them behind HTTP/1.1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::GuardError;

/// Which service the mock plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// EC2 instance metadata (IMDSv1 and IMDSv2).
    Aws,
    /// Azure Instance Metadata Service.
    Azure,
    /// Google Compute Engine metadata server.
    Gcp,
    /// ECS task credentials and EKS Pod Identity.
    Ecs,
    /// All of them, told apart by path.
    All,
}

impl Provider {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
            Provider::Ecs => "ecs",
            Provider::All => "all",
        }
    }

    fn serves(self, p: Provider) -> bool {
        self == Provider::All || self == p
    }
}

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The service played.
    pub provider: Provider,
    /// AWS: refuse token-less requests (IMDSv2 required), as an instance with
    /// `HttpTokens=required` does.
    pub require_token: bool,
    /// AWS: the IP TTL (IPv6 hop limit) of the token reply; the service's default is 1 (2 is
    /// the usual setting for container hosts).
    pub hop_limit: u8,
    /// The IAM role (AWS, ECS) or service account (GCP) whose credentials are handed out.
    pub role: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            provider: Provider::All,
            require_token: false,
            hop_limit: 1,
            role: "imdsguard-mock-role".to_owned(),
        }
    }
}

/// A request as the mock reads it.
#[derive(Debug, Clone, Default)]
pub struct MockRequest {
    /// `GET`, `PUT` …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without the `?`.
    pub query: String,
    /// Header names (any case) and values.
    pub headers: Vec<(String, String)>,
}

impl MockRequest {
    /// A request with no headers.
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        MockRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
        }
    }

    /// The same request with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, decoded (`%2F`, `+`).
    fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// The mock's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MockResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers beyond `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
    /// The IP TTL / hop limit the reply must leave with, when the service sets one.
    pub hop_limit: Option<u8>,
}

impl MockResponse {
    fn new(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        MockResponse {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
            hop_limit: None,
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The longest an IMDSv2 session token lives (six hours), as the service allows.
const MAX_TOKEN_TTL: u64 = 21_600;

/// The mock's state: its configuration, fake identity and the IMDSv2 tokens it issued.
pub struct Mock {
    config: MockConfig,
    identity: Identity,
    credentials: Credentials,
    tokens: Mutex<HashMap<String, Instant>>,
}

/// The role's current credentials: the services hand out the same ones until they rotate them.
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    token: String,
    issued: String,
    expires: String,
}

impl Credentials {
    fn fresh() -> Self {
        Credentials {
            access_key_id: format!("ASIA{}", random_upper(16)),
            secret_access_key: random_base64(40),
            token: random_base64(400),
            issued: now_text(0),
            expires: now_text(6 * 3600),
        }
    }
}

/// The fake instance the mock describes.
struct Identity {
    instance_id: String,
    account: String,
    region: &'static str,
    zone: &'static str,
    local_ipv4: &'static str,
}

impl Mock {
    /// A mock with a fresh fake instance identity.
    pub fn new(config: MockConfig) -> Self {
        Mock {
            config,
            identity: Identity {
                instance_id: format!("i-0{}", random_hex(16)),
                account: "123456789012".to_owned(),
                region: "us-east-1",
                zone: "us-east-1a",
                local_ipv4: "10.0.1.23",
            },
            credentials: Credentials::fresh(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// The answer to `req` at `now`.
    pub fn answer(&self, req: &MockRequest, now: Instant) -> MockResponse {
        let p = self.config.provider;
        let path = req.path.as_str();
        if path.starts_with("/latest") && p.serves(Provider::Aws) {
            self.aws(req, now).with("Server", "EC2ws")
        } else if path.starts_with("/metadata") && p.serves(Provider::Azure) {
            self.azure(req)
        } else if path.starts_with("/computeMetadata") && p.serves(Provider::Gcp) {
            self.gcp(req).with("Server", "Metadata Server for VM")
        } else if (path.starts_with("/v2/credentials") || path.starts_with("/v1/credentials"))
            && p.serves(Provider::Ecs)
        {
            self.ecs(req)
        } else if path == "/" && p == Provider::Aws {
            MockResponse::new(200, "text/plain", "latest")
        } else {
            not_found()
        }
    }

    fn aws(&self, req: &MockRequest, now: Instant) -> MockResponse {
        if req.path == "/latest/api/token" {
            return self.aws_token(req, now);
        }
        if req.method != "GET" && req.method != "HEAD" {
            return aws_status(405, "Method Not Allowed").with("Allow", "GET, HEAD");
        }
        let remaining = match req.get_header("X-aws-ec2-metadata-token") {
            Some(token) => match self.token_ttl(token, now) {
                Some(left) => Some(left),
                None => return aws_status(401, "Unauthorized"),
            },
            None if self.config.require_token => return aws_status(401, "Unauthorized"),
            None => None,
        };
        let mut resp = self.aws_path(&req.path);
        if let Some(left) = remaining {
            resp = resp.with("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", left.to_string());
        }
        resp
    }

    fn aws_token(&self, req: &MockRequest, now: Instant) -> MockResponse {
        if req.method != "PUT" {
            return aws_status(405, "Method Not Allowed").with("Allow", "PUT");
        }
        if req.get_header("X-Forwarded-For").is_some() {
            return aws_status(403, "Forbidden");
        }
        let ttl = req
            .get_header("X-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|t| (1..=MAX_TOKEN_TTL).contains(t));
        let Some(ttl) = ttl else {
            return aws_status(400, "Bad Request");
        };
        let token = format!("AQAEA{}==", random_base64(51));
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, exp| *exp > now);
        tokens.insert(token.clone(), now + Duration::from_secs(ttl));
        let mut resp = MockResponse::new(200, "text/plain", token)
            .with("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl.to_string());
        resp.hop_limit = Some(self.config.hop_limit);
        resp
    }

    /// Seconds left on a token this mock issued, if it is valid at `now`.
    fn token_ttl(&self, token: &str, now: Instant) -> Option<u64> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let exp = *tokens.get(token.trim())?;
        (exp > now).then(|| exp.duration_since(now).as_secs().max(1))
    }

    fn aws_path(&self, path: &str) -> MockResponse {
        let id = &self.identity;
        let role = &self.config.role;
        let text = |body: String| MockResponse::new(200, "text/plain", body);
        let rel = path.trim_start_matches("/latest");
        match rel {
            "" | "/" => text("dynamic\nmeta-data\nuser-data".to_owned()),
            "/meta-data" | "/meta-data/" => text(
                [
                    "ami-id",
                    "ami-launch-index",
                    "hostname",
                    "iam/",
                    "identity-credentials/",
                    "instance-id",
                    "instance-type",
                    "local-hostname",
                    "local-ipv4",
                    "mac",
                    "placement/",
                    "security-groups",
                ]
                .join("\n"),
            ),
            "/meta-data/ami-id" => text("ami-0abcdef1234567890".to_owned()),
            "/meta-data/ami-launch-index" => text("0".to_owned()),
            "/meta-data/hostname" | "/meta-data/local-hostname" => {
                text(format!("ip-10-0-1-23.{}.compute.internal", id.region))
            }
            "/meta-data/instance-id" => text(id.instance_id.clone()),
            "/meta-data/instance-type" => text("t3.micro".to_owned()),
            "/meta-data/local-ipv4" => text(id.local_ipv4.to_owned()),
            "/meta-data/mac" => text("0e:12:34:56:78:9a".to_owned()),
            "/meta-data/security-groups" => text("default".to_owned()),
            "/meta-data/placement" | "/meta-data/placement/" => {
                text("availability-zone\nregion".to_owned())
            }
            "/meta-data/placement/availability-zone" => text(id.zone.to_owned()),
            "/meta-data/placement/region" => text(id.region.to_owned()),
            "/meta-data/iam" | "/meta-data/iam/" => text("info\nsecurity-credentials/".to_owned()),
            "/meta-data/iam/info" => MockResponse::new(
                200,
                "text/plain",
                pretty(&json!({
                    "Code": "Success",
                    "LastUpdated": now_text(0),
                    "InstanceProfileArn": format!("arn:aws:iam::{}:instance-profile/{role}", id.account),
                    "InstanceProfileId": format!("AIPA{}", random_upper(17)),
                })),
            ),
            "/meta-data/iam/security-credentials" | "/meta-data/iam/security-credentials/" => {
                text(role.clone())
            }
            "/meta-data/identity-credentials/ec2/security-credentials/ec2-instance" => {
                self.aws_credentials()
            }
            "/user-data" => text("#!/bin/bash\necho imdsguard mock user-data\n".to_owned()),
            "/dynamic/instance-identity/document" => MockResponse::new(
                200,
                "text/plain",
                pretty(&json!({
                    "accountId": id.account,
                    "architecture": "x86_64",
                    "availabilityZone": id.zone,
                    "imageId": "ami-0abcdef1234567890",
                    "instanceId": id.instance_id,
                    "instanceType": "t3.micro",
                    "pendingTime": now_text(-3600),
                    "privateIp": id.local_ipv4,
                    "region": id.region,
                    "version": "2017-09-30",
                })),
            ),
            _ => match rel.strip_prefix("/meta-data/iam/security-credentials/") {
                Some(r) if r == role => self.aws_credentials(),
                _ => not_found(),
            },
        }
    }

    fn aws_credentials(&self) -> MockResponse {
        let c = &self.credentials;
        MockResponse::new(
            200,
            "text/plain",
            pretty(&json!({
                "Code": "Success",
                "LastUpdated": c.issued,
                "Type": "AWS-HMAC",
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key,
                "Token": c.token,
                "Expiration": c.expires,
            })),
        )
    }

    fn azure(&self, req: &MockRequest) -> MockResponse {
        let bad = |msg: &str| {
            MockResponse::new(400, "application/json", json!({ "error": msg }).to_string())
        };
        if req.get_header("X-Forwarded-For").is_some() {
            return bad("Bad request. Request contains the X-Forwarded-For header");
        }
        if !req
            .get_header("Metadata")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return bad("Bad request. Required metadata header not specified");
        }
        if req.method != "GET" {
            return MockResponse::new(
                405,
                "application/json",
                json!({ "error": "Method not allowed" }).to_string(),
            );
        }
        if req.path == "/metadata/versions" {
            return MockResponse::new(
                200,
                "application/json",
                json!({ "apiVersions": ["2018-02-01", "2021-02-01", "2023-07-01"] }).to_string(),
            );
        }
        if req.query_param("api-version").is_none_or(|v| v.is_empty()) {
            return MockResponse::new(
                400,
                "application/json",
                json!({
                    "error": "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds",
                    "newest-versions": ["2023-07-01", "2021-02-01", "2018-02-01"],
                })
                .to_string(),
            );
        }
        let id = &self.identity;
        match req.path.as_str() {
            "/metadata/instance" | "/metadata/instance/" => MockResponse::new(
                200,
                "application/json",
                json!({
                    "compute": {
                        "location": "eastus",
                        "name": "imdsguard-mock-vm",
                        "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
                        "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
                        "resourceGroupName": "imdsguard-mock",
                        "osType": "Linux",
                        "vmSize": "Standard_B1s",
                    },
                    "network": { "interface": [{ "ipv4": { "ipAddress": [{ "privateIpAddress": id.local_ipv4 }] } }] },
                })
                .to_string(),
            ),
            "/metadata/identity/oauth2/token" => {
                let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
                    return MockResponse::new(
                        400,
                        "application/json",
                        json!({
                            "error": "invalid_request",
                            "error_description": "Required audience parameter not specified",
                        })
                        .to_string(),
                    );
                };
                let now = jiff::Timestamp::now().as_second();
                MockResponse::new(
                    200,
                    "application/json",
                    json!({
                        "access_token": fake_jwt(),
                        "client_id": "5b6cbd7f-61e6-4c4a-a4b2-6d5cc1b3e6d1",
                        "expires_in": "86399",
                        "expires_on": (now + 86_399).to_string(),
                        "ext_expires_in": "86399",
                        "not_before": now.to_string(),
                        "resource": resource,
                        "token_type": "Bearer",
                    })
                    .to_string(),
                )
            }
            _ => MockResponse::new(404, "application/json", json!({ "error": "Not found" }).to_string()),
        }
    }

    fn gcp(&self, req: &MockRequest) -> MockResponse {
        let denied = |why: &str| {
            MockResponse::new(403, "text/html; charset=UTF-8", format!("<p>{why}</p>\n"))
                .with("Metadata-Flavor", "Google")
        };
        if req.get_header("X-Forwarded-For").is_some() {
            return denied("Request denied: the request carries an X-Forwarded-For header.");
        }
        if req
            .get_header("Metadata-Flavor")
            .is_none_or(|v| v.trim() != "Google")
        {
            return denied("Your client does not have permission to get URL from this server. Missing Metadata-Flavor:Google header.");
        }
        if req.method != "GET" {
            return MockResponse::new(405, "text/plain", "Method not allowed")
                .with("Metadata-Flavor", "Google");
        }
        let sa = format!(
            "{}@imdsguard-mock.iam.gserviceaccount.com",
            self.config.role
        );
        let text = |b: String| {
            MockResponse::new(200, "application/text", b).with("Metadata-Flavor", "Google")
        };
        let rel = req.path.trim_start_matches("/computeMetadata/v1");
        let resp = match rel {
            "" | "/" => text("instance/\nproject/".to_owned()),
            "/project/project-id" => text("imdsguard-mock".to_owned()),
            "/project/numeric-project-id" => text("123456789012".to_owned()),
            "/instance/hostname" => text("imdsguard-mock.c.imdsguard-mock.internal".to_owned()),
            "/instance/id" => text("4520031799277581759".to_owned()),
            "/instance/zone" => text("projects/123456789012/zones/us-central1-a".to_owned()),
            "/instance/service-accounts" | "/instance/service-accounts/" => {
                text(format!("default/\n{sa}/"))
            }
            _ => {
                let Some(rest) = rel.strip_prefix("/instance/service-accounts/") else {
                    return not_found().with("Metadata-Flavor", "Google");
                };
                let (account, what) = rest.split_once('/').unwrap_or((rest, ""));
                if account != "default" && account != sa {
                    return not_found().with("Metadata-Flavor", "Google");
                }
                match what {
                    "email" => text(sa.clone()),
                    "scopes" => text("https://www.googleapis.com/auth/cloud-platform".to_owned()),
                    "token" => MockResponse::new(
                        200,
                        "application/json",
                        json!({
                            "access_token": format!("ya29.{}", random_base64url(160)),
                            "expires_in": 3599,
                            "token_type": "Bearer",
                        })
                        .to_string(),
                    )
                    .with("Metadata-Flavor", "Google"),
                    "identity" => match req.query_param("audience") {
                        Some(a) if !a.is_empty() => text(fake_jwt()),
                        _ => MockResponse::new(
                            400,
                            "text/plain",
                            "non-empty audience parameter required",
                        )
                        .with("Metadata-Flavor", "Google"),
                    },
                    _ => not_found().with("Metadata-Flavor", "Google"),
                }
            }
        };
        resp
    }

    fn ecs(&self, req: &MockRequest) -> MockResponse {
        if req.method != "GET" {
            return MockResponse::new(405, "text/plain", "Method not allowed");
        }
        let id = &self.identity;
        let role = &self.config.role;
        if let Some(cred_id) = req.path.strip_prefix("/v2/credentials/") {
            if cred_id.is_empty() {
                return MockResponse::new(
                    400,
                    "application/json",
                    json!({ "code": "InvalidIdInRequest", "message": "CredentialsV2Request: No Credential ID in the request" }).to_string(),
                );
            }
            return MockResponse::new(
                200,
                "application/json",
                json!({
                    "RoleArn": format!("arn:aws:iam::{}:role/{role}", id.account),
                    "AccessKeyId": self.credentials.access_key_id,
                    "SecretAccessKey": self.credentials.secret_access_key,
                    "Token": self.credentials.token,
                    "Expiration": self.credentials.expires,
                })
                .to_string(),
            );
        }
        if req.path == "/v1/credentials" {
            // EKS Pod Identity: the pod's projected service-account token in `Authorization`.
            if req
                .get_header("Authorization")
                .is_none_or(|t| t.trim().is_empty())
            {
                return MockResponse::new(
                    400,
                    "text/plain",
                    "Service account token cannot be empty",
                );
            }
            return MockResponse::new(
                200,
                "application/json",
                json!({
                    "AccessKeyId": self.credentials.access_key_id,
                    "SecretAccessKey": self.credentials.secret_access_key,
                    "Token": self.credentials.token,
                    "AccountId": id.account,
                    "Expiration": self.credentials.expires,
                })
                .to_string(),
            );
        }
        not_found()
    }
}

fn aws_status(status: u16, what: &str) -> MockResponse {
    MockResponse::new(
        status,
        "text/html",
        format!(
            "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{status} - {what}</title>\n </head>\n <body>\n  <h1>{status} - {what}</h1>\n </body>\n</html>\n"
        ),
    )
}

fn not_found() -> MockResponse {
    aws_status(404, "Not Found")
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The time `offset` seconds from now, as the services write it (`2026-12-07T17:00:00Z`).
fn now_text(offset: i64) -> String {
    let t = jiff::Timestamp::now().as_second() + offset;
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A JWT-shaped token (header, claims and signature of random text): never a valid one.
fn fake_jwt() -> String {
    format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.{}",
        random_base64url(120),
        random_base64url(86)
    )
}

/// `n` random bytes from the kernel (`/dev/urandom`), or from the standard library's hasher
/// seeds where that cannot be read.
fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok()
    {
        return buf;
    }
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(Instant::now().elapsed().as_nanos() as u64);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
    buf
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    random_bytes(n)
        .into_iter()
        .map(|b| alphabet[b as usize % alphabet.len()] as char)
        .collect()
}

fn random_hex(n: usize) -> String {
    random_from(b"0123456789abcdef", n)
}

fn random_upper(n: usize) -> String {
    random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
}

/// Base64url characters: what JWTs and Google's access tokens are made of.
fn random_base64url(n: usize) -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        n,
    )
}

fn random_base64(n: usize) -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        n,
    )
}

/// Serves `mock` on `listener` until the process ends: HTTP/1.1, one task per connection.
pub async fn serve(listener: tokio::net::TcpListener, mock: Arc<Mock>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of descriptors, or a connection reset before it was accepted: go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let mock = Arc::clone(&mock);
        tokio::spawn(async move {
            // A second handle on the same socket, so the IP TTL can be set for the token reply
            // while hyper owns the stream.
            let Ok(raw) = second_handle(&stream) else {
                return;
            };
            let raw = Arc::new(raw);
            let ttl_changed = Arc::new(AtomicBool::new(false));
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mock = Arc::clone(&mock);
                let raw = Arc::clone(&raw);
                let ttl_changed = Arc::clone(&ttl_changed);
                async move {
                    let r = to_mock_request(&req);
                    let answer = mock.answer(&r, Instant::now());
                    // Only the token reply is hop-limited; later replies on the same connection
                    // leave with the system's default again.
                    if let Some(hops) = answer.hop_limit {
                        set_hops(&raw, u32::from(hops));
                        ttl_changed.store(true, Ordering::Relaxed);
                    } else if ttl_changed.swap(false, Ordering::Relaxed) {
                        set_hops(&raw, DEFAULT_TTL);
                    }
                    Ok::<_, Infallible>(to_hyper(answer, r.method == "HEAD"))
                }
            });
            let _ = http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The TTL Linux gives unicast packets unless told otherwise (`net.ipv4.ip_default_ttl`).
pub(crate) const DEFAULT_TTL: u32 = 64;

/// A second handle on a connection's socket (a duplicated descriptor), through which its IP TTL
/// can be set while hyper owns the stream.
pub(crate) fn second_handle(
    stream: &tokio::net::TcpStream,
) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::AsFd;
    Ok(std::net::TcpStream::from(
        stream.as_fd().try_clone_to_owned()?,
    ))
}

/// Sets the IP TTL, or the IPv6 unicast hop limit, of the connection's replies.
pub(crate) fn set_hops(s: &std::net::TcpStream, hops: u32) {
    let sock = socket2::SockRef::from(s);
    let _ = match s.local_addr() {
        Ok(SocketAddr::V6(_)) => {
            // A dual-stack socket serving an IPv4 client (`::ffff:a.b.c.d`) sends IPv4
            // packets: both limits are set.
            let _ = sock.set_ttl_v4(hops);
            sock.set_unicast_hops_v6(hops)
        }
        _ => sock.set_ttl_v4(hops),
    };
}

fn to_mock_request(req: &hyper::Request<hyper::body::Incoming>) -> MockRequest {
    MockRequest {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or("").to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    }
}

fn to_hyper(a: MockResponse, head: bool) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(a.status);
    for (k, v) in &a.headers {
        b = b.header(*k, v.as_str());
    }
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(a.body)
    };
    b.body(Full::new(body))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

/// Binds `addr` and serves the mock until interrupted (Ctrl-C or SIGTERM); `on_ready` is called
/// with the bound address once it listens.
pub fn run(
    addr: SocketAddr,
    config: MockConfig,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), GuardError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(GuardError::Runtime)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| GuardError::Bind { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        on_ready(bound);
        let mock = Arc::new(Mock::new(config));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(GuardError::Runtime)?;
        tokio::select! {
            _ = serve(listener, mock) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock(provider: Provider, require_token: bool) -> Mock {
        Mock::new(MockConfig {
            provider,
            require_token,
            ..MockConfig::default()
        })
    }

    fn header<'r>(r: &'r MockResponse, name: &str) -> Option<&'r str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn token(m: &Mock, ttl: &str, now: Instant) -> MockResponse {
        m.answer(
            &MockRequest::new("PUT", "/latest/api/token")
                .header("X-aws-ec2-metadata-token-ttl-seconds", ttl),
            now,
        )
    }

    #[test]
    fn aws_imdsv2_session_tokens_live_for_their_ttl() {
        let m = mock(Provider::Aws, true);
        let t0 = Instant::now();
        let creds = "/latest/meta-data/iam/security-credentials/imdsguard-mock-role";
        // Token-less: refused when IMDSv2 is required.
        assert_eq!(m.answer(&MockRequest::new("GET", creds), t0).status, 401);
        let put = token(&m, "60", t0);
        assert_eq!(put.status, 200);
        assert_eq!(put.hop_limit, Some(1));
        assert_eq!(
            header(&put, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"),
            Some("60")
        );
        let with = |t: &str, at| {
            m.answer(
                &MockRequest::new("GET", creds).header("X-aws-ec2-metadata-token", t),
                at,
            )
        };
        let ok = with(&put.body, t0 + Duration::from_secs(10));
        assert_eq!(ok.status, 200);
        assert_eq!(
            header(&ok, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"),
            Some("50")
        );
        assert_eq!(ok.hop_limit, None, "only the token reply is hop-limited");
        let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
        assert_eq!(v["Code"], "Success");
        assert_eq!(v["Type"], "AWS-HMAC");
        let key = v["AccessKeyId"].as_str().unwrap();
        assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
        assert_eq!(v["SecretAccessKey"].as_str().unwrap().len(), 40);
        // Expired, forged.
        assert_eq!(with(&put.body, t0 + Duration::from_secs(61)).status, 401);
        assert_eq!(with("AQAEAforged==", t0).status, 401);
    }

    #[test]
    fn aws_token_requests_are_checked_as_the_service_checks_them() {
        let m = mock(Provider::Aws, false);
        let t0 = Instant::now();
        for bad in ["0", "21601", "-1", "sixty", ""] {
            assert_eq!(token(&m, bad, t0).status, 400, "ttl {bad:?}");
        }
        assert_eq!(token(&m, "21600", t0).status, 200);
        let no_ttl = m.answer(&MockRequest::new("PUT", "/latest/api/token"), t0);
        assert_eq!(no_ttl.status, 400);
        let forwarded = m.answer(
            &MockRequest::new("PUT", "/latest/api/token")
                .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
                .header("x-forwarded-for", "203.0.113.9"),
            t0,
        );
        assert_eq!(forwarded.status, 403);
        let get_token = m.answer(&MockRequest::new("GET", "/latest/api/token"), t0);
        assert_eq!(get_token.status, 405);
        // IMDSv1 allowed: a token-less GET is served; a wrong role is not found.
        let v1 = m.answer(
            &MockRequest::new("GET", "/latest/meta-data/placement/region"),
            t0,
        );
        assert_eq!((v1.status, v1.body.as_str()), (200, "us-east-1"));
        let other = m.answer(
            &MockRequest::new("GET", "/latest/meta-data/iam/security-credentials/admin"),
            t0,
        );
        assert_eq!(other.status, 404);
        // A provider played alone does not answer for the others.
        let azure = m.answer(
            &MockRequest::new("GET", "/metadata/instance?api-version=2021-02-01")
                .header("Metadata", "true"),
            t0,
        );
        assert_eq!(azure.status, 404);
    }

    #[test]
    fn azure_needs_its_header_and_an_api_version() {
        let m = mock(Provider::Azure, false);
        let t0 = Instant::now();
        let tok = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F";
        assert_eq!(m.answer(&MockRequest::new("GET", tok), t0).status, 400);
        let ok = m.answer(&MockRequest::new("GET", tok).header("Metadata", "true"), t0);
        assert_eq!(ok.status, 200);
        let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
        assert_eq!(v["resource"], "https://management.azure.com/");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["access_token"].as_str().unwrap().split('.').count(), 3);
        let no_version = m.answer(
            &MockRequest::new("GET", "/metadata/instance").header("Metadata", "true"),
            t0,
        );
        assert_eq!(no_version.status, 400);
        assert!(no_version.body.contains("api-version"));
        let no_resource = m.answer(
            &MockRequest::new(
                "GET",
                "/metadata/identity/oauth2/token?api-version=2018-02-01",
            )
            .header("Metadata", "true"),
            t0,
        );
        assert_eq!(no_resource.status, 400);
        let forwarded = m.answer(
            &MockRequest::new("GET", tok)
                .header("Metadata", "true")
                .header("X-Forwarded-For", "203.0.113.9"),
            t0,
        );
        assert_eq!(forwarded.status, 400);
    }

    #[test]
    fn gcp_needs_metadata_flavor_and_answers_with_it() {
        let m = mock(Provider::Gcp, false);
        let t0 = Instant::now();
        let path = "/computeMetadata/v1/instance/service-accounts/default/token";
        let bare = m.answer(&MockRequest::new("GET", path), t0);
        assert_eq!(bare.status, 403);
        let ok = m.answer(
            &MockRequest::new("GET", path).header("Metadata-Flavor", "Google"),
            t0,
        );
        assert_eq!(ok.status, 200);
        assert_eq!(header(&ok, "Metadata-Flavor"), Some("Google"));
        let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
        assert!(v["access_token"].as_str().unwrap().starts_with("ya29."));
        let forwarded = m.answer(
            &MockRequest::new("GET", path)
                .header("Metadata-Flavor", "Google")
                .header("X-Forwarded-For", "203.0.113.9"),
            t0,
        );
        assert_eq!(forwarded.status, 403);
        let email = m.answer(
            &MockRequest::new(
                "GET",
                "/computeMetadata/v1/instance/service-accounts/default/email",
            )
            .header("Metadata-Flavor", "Google"),
            t0,
        );
        assert!(
            email.body.ends_with(".iam.gserviceaccount.com"),
            "{}",
            email.body
        );
    }

    #[test]
    fn ecs_and_pod_identity_credentials() {
        let m = mock(Provider::Ecs, false);
        let t0 = Instant::now();
        let task = m.answer(
            &MockRequest::new(
                "GET",
                "/v2/credentials/5f3b1c9e-2a4d-4f6e-8b7a-1c2d3e4f5a6b",
            ),
            t0,
        );
        assert_eq!(task.status, 200);
        let v: serde_json::Value = serde_json::from_str(&task.body).unwrap();
        assert!(v["RoleArn"]
            .as_str()
            .unwrap()
            .ends_with(":role/imdsguard-mock-role"));
        let pod = |auth: Option<&str>| {
            let mut r = MockRequest::new("GET", "/v1/credentials");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            m.answer(&r, t0).status
        };
        assert_eq!(pod(None), 400);
        assert_eq!(pod(Some("eyJhbGciOiJSUzI1NiJ9.e30.sig")), 200);
    }

    #[test]
    fn the_role_keeps_its_credentials_and_each_mock_has_its_own() {
        let r = MockRequest::new(
            "GET",
            "/latest/meta-data/iam/security-credentials/imdsguard-mock-role",
        );
        let t0 = Instant::now();
        let a = mock(Provider::All, false);
        let key = |m: &Mock| {
            let v: serde_json::Value = serde_json::from_str(&m.answer(&r, t0).body).unwrap();
            v["AccessKeyId"].as_str().unwrap().to_owned()
        };
        assert_eq!(key(&a), key(&a));
        assert_ne!(key(&a), key(&mock(Provider::All, false)));
        // ECS hands out the same role's credentials.
        let ecs = a.answer(&MockRequest::new("GET", "/v2/credentials/abc"), t0);
        let v: serde_json::Value = serde_json::from_str(&ecs.body).unwrap();
        assert_eq!(v["AccessKeyId"].as_str().unwrap(), key(&a));
    }
}
