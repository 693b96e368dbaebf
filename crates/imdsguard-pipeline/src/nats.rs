//! NATS JetStream as the log bus: `ship` publishes each line of the files it follows, `watch
//! --nats` reads the stream.
//!
//! Subjects: a record of host H is published to `imdsguard.logs.<token>`, the token being H's
//! name in one subject token ([`subject_token`]), with H as named in the header
//! `Imdsguard-Host`. The server maps each token to one of [`PARTITIONS`] partitions
//! (`deploy/nats/imdsguard.conf`: NATS's deterministic subject partitioning, FNV-1a of the token),
//! so the stream holds `imdsguard.part.<p>.<token>`: every record of a host in one partition, read
//! by one durable consumer (`imdsguard-<p>`).
//!
//! The store keeps, per partition, the sequence number of the last message whose alerts,
//! incident links and baseline changes it committed, in the same transaction as those (as it
//! keeps a file's offset); the message is acknowledged after that commit. A worker taking a
//! partition (at start) has its consumer deliver from the message after the stored one: what a
//! killed worker had taken and not committed comes again at once and in order, rather than when
//! the server's acknowledgement timer runs out, and what it had committed but not acknowledged
//! is not read twice. A message delivered again anyway (an acknowledgement lost) is at or below
//! the stored sequence and is skipped; and since an alert's id is a hash of its rule, its record
//! (the stream and the message's sequence number) and its time, no alert is stored twice. The
//! consumer hands out at most [`MAX_ACK_PENDING`] messages not yet acknowledged: a slow worker
//! slows the stream's consumption, and nothing is dropped.

use std::time::Duration;

use imdsguard_parse::follow::{Follower, Position};

use crate::error::PipelineError;

/// The subject shippers publish to, before the host's token.
pub const LOGS: &str = "imdsguard.logs";
/// The subjects the stream holds, before the partition and the host's token.
pub const PARTS: &str = "imdsguard.part";
/// Partitions of the stream (the server's mapping must say the same).
pub const PARTITIONS: u32 = 16;
/// The header naming the host a record came from, as its shipper names it.
pub const HOST_HEADER: &str = "Imdsguard-Host";
/// Messages handed out and not yet acknowledged, per partition.
pub const MAX_ACK_PENDING: i64 = 20_000;
/// The stream's name when none is given.
pub const DEFAULT_STREAM: &str = "IMDSGUARD";

/// A host name as one subject token: lower case, every character but letters, digits, `-` and
/// `_` (the dots of a domain name, NATS's wildcards `*` and `>`, spaces) as `_`.
pub fn subject_token(host: &str) -> String {
    let t: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

/// The partition the server's mapping puts a token in: FNV-1a (32 bits) of it, modulo `n`, as
/// NATS computes `{{partition(n,1)}}`.
pub fn partition_of(token: &str, n: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in token.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % n.max(1)
}

/// The name a partition's position has in the store (its checkpoint): `nats:STREAM:P`.
pub(crate) fn partition_input(stream: &str, p: u32) -> String {
    format!("nats:{stream}:{p}")
}

/// Where `watch` reads from.
#[derive(Debug, Clone)]
pub struct NatsSource {
    /// The server (`nats://host:4222`; `tls://` to require TLS; a user and password, or a
    /// token, before `@`).
    pub url: String,
    /// The stream.
    pub stream: String,
    /// TLS and credentials beyond the URL.
    pub auth: NatsAuth,
}

/// How to reach the server over TLS and prove who this client is, beyond what the URL says.
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// Certificate authorities (PEM) to trust for the server's certificate; TLS is then
    /// required. Without it, a `tls://` URL or a server that asks for TLS is checked against the
    /// system's authorities.
    pub ca: Option<std::path::PathBuf>,
    /// A client certificate and its key (PEM), for a server that verifies its clients.
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// A NATS credentials file (a user's JWT and NKey seed, as `nsc` writes it).
    pub creds: Option<std::path::PathBuf>,
}

/// A server URL as it may be shown: a password (`user:secret@`) or a token (`secret@`) left
/// out.
pub fn shown(url: &str) -> String {
    url.split(',')
        .map(|u| {
            let (scheme, rest) = match u.split_once("://") {
                Some((s, r)) => (Some(s), r),
                None => (None, u),
            };
            let rest = match rest.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{name}@{host}"),
                    None => format!("…@{host}"),
                },
                None => rest.to_owned(),
            };
            match scheme {
                Some(s) => format!("{s}://{rest}"),
                None => rest,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The user and password (`user:password@`), or the token (`token@`), a server URL holds (the
/// first server's, percent-decoded).
fn url_credentials(url: &str) -> Option<(String, Option<String>)> {
    let first = url.split(',').next()?;
    let rest = first.split_once("://").map_or(first, |(_, r)| r);
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some(match userinfo.split_once(':') {
        Some((user, password)) => (decode(user), Some(decode(password))),
        None => (decode(userinfo), None),
    })
}

fn nats_error(url: &str, what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Nats(format!("{}: {what}: {e}", shown(url)))
}

#[cfg(feature = "nats")]
pub use with_nats::ship;
#[cfg(feature = "nats")]
pub(crate) use with_nats::NatsInput;

#[cfg(not(feature = "nats"))]
pub use without_nats::ship;
#[cfg(not(feature = "nats"))]
pub(crate) use without_nats::NatsInput;

/// What `ship` did.
#[derive(Debug, Default, Clone)]
pub struct ShipReport {
    /// Lines published and acknowledged by the stream.
    pub published: u64,
    /// Of those, lines the stream already held (published before a restart).
    pub duplicates: u64,
    /// Files read.
    pub files: u64,
}

/// `ship`: what to publish where.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// The server.
    pub url: String,
    /// TLS and credentials beyond the URL.
    pub auth: NatsAuth,
    /// The stream (created when it does not exist, as `watch` creates it).
    pub stream: String,
    /// The files.
    pub inputs: Vec<std::path::PathBuf>,
    /// The host the lines come from.
    pub host: String,
    /// Where each file's position is kept between runs.
    pub state: std::path::PathBuf,
    /// Keep following the files as they grow (else stop at their end).
    pub follow: bool,
    /// How long to wait when no file grew.
    pub poll: Duration,
    /// Most bytes read from a file at a time.
    pub max_chunk: usize,
}

/// The positions `ship` keeps, by file.
fn load_state(path: &std::path::Path) -> Result<Vec<(String, Position)>, PipelineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PipelineError::Read {
                what: "ship state",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        PipelineError::Nats(format!(
            "{}: not a ship state file ({e}); move it away to start over",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (file, p) in v.as_object().into_iter().flatten() {
        let pos = Position {
            identity: p["identity"].as_str().unwrap_or_default().to_owned(),
            offset: p["offset"].as_u64().unwrap_or(0),
            lines: p["lines"].as_u64().unwrap_or(0),
            tail: p["tail"].as_u64(),
        };
        out.push((file.clone(), pos));
    }
    Ok(out)
}

/// Writes the positions: a new file renamed over the old, so a crash leaves one or the other.
fn save_state(path: &std::path::Path, files: &[Follower]) -> Result<(), PipelineError> {
    let mut m = serde_json::Map::new();
    for f in files {
        let p = f.position();
        m.insert(
            f.path().display().to_string(),
            serde_json::json!({
                "identity": p.identity, "offset": p.offset, "lines": p.lines, "tail": p.tail,
            }),
        );
    }
    let write = |source| PipelineError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::Value::Object(m).to_string()).map_err(write)?;
    std::fs::rename(&tmp, path).map_err(write)
}

#[cfg(feature = "nats")]
mod with_nats {
    use super::*;
    use async_nats::jetstream::{self, consumer::PullConsumer};
    use futures_util::StreamExt;

    /// A client of the server, over TLS when the URL (`tls://`), `auth` or the server asks for it.
    async fn client(
        url: &str,
        auth: &NatsAuth,
        name: &str,
    ) -> Result<async_nats::Client, PipelineError> {
        let mut o = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(10))
            .name(name);
        if let Some(ca) = &auth.ca {
            if !ca.is_file() {
                return Err(nats_error(
                    url,
                    "--nats-ca",
                    format!("{}: no such file", ca.display()),
                ));
            }
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &auth.cert {
            for f in [cert, key] {
                if !f.is_file() {
                    return Err(nats_error(
                        url,
                        "--nats-cert",
                        format!("{}: no such file", f.display()),
                    ));
                }
            }
            o = o
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        // The client reads the server from the URL, not a user or token written in it.
        match url_credentials(url) {
            Some((user, Some(password))) => o = o.user_and_password(user, password),
            Some((token, None)) => o = o.token(token),
            None => {}
        }
        if let Some(creds) = &auth.creds {
            o = o
                .credentials_file(creds)
                .await
                .map_err(|e| nats_error(url, &format!("--nats-creds {}", creds.display()), e))?;
        }
        o.connect(url).await.map_err(|e| {
            // The cause says why (a certificate refused, a name it does not hold).
            let mut said = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !said.contains(&text) {
                    said = format!("{said}: {text}");
                }
                cause = c.source();
            }
            nats_error(url, "connecting", said)
        })
    }

    /// The stream, created holding `imdsguard.part.>` when it does not exist.
    async fn stream(
        js: &jetstream::Context,
        name: &str,
        url: &str,
    ) -> Result<jetstream::stream::Stream, PipelineError> {
        js.get_or_create_stream(jetstream::stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{PARTS}.>")],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_error(url, &format!("the stream {name}"), e))
    }

    /// Messages taken from one partition, for one transaction.
    pub(crate) struct Taken {
        /// The partition's position after them, to commit with their results.
        pub(crate) checkpoint: imdsguard_store::Checkpoint,
        /// The messages' payloads, one after another.
        pub(crate) payloads: Vec<u8>,
        /// Each message's stream sequence number (its records' position) and its payload's
        /// place in `payloads`.
        pub(crate) messages: Vec<(u64, std::ops::Range<usize>)>,
        /// The host each message's header or subject names, by sequence number.
        pub(crate) hosts: Vec<(u64, String)>,
        /// The partition they came from.
        pub(crate) partition: u32,
    }

    /// The stream, read through one durable consumer per partition this worker holds.
    pub(crate) struct NatsInput {
        rt: tokio::runtime::Runtime,
        client: async_nats::Client,
        stream_handle: jetstream::stream::Stream,
        /// Per partition, its consumer while this worker holds it.
        consumers: Vec<Option<PullConsumer>>,
        /// Per partition, the last sequence whose results are committed.
        committed: Vec<u64>,
        /// The partition and last sequence of the messages last taken.
        taken: Option<(usize, u64)>,
        next: usize,
        /// The last message taken and not yet acknowledged (acknowledging it acknowledges
        /// every one before it on its consumer).
        unacked: Option<jetstream::Message>,
        url: String,
        /// The stream's name.
        pub(crate) stream: String,
        /// `nats:STREAM`: the records' source.
        pub(crate) name: String,
        /// Messages taken so far.
        pub(crate) messages: u64,
    }

    impl NatsInput {
        /// Connects and creates the stream if it does not exist (holding `imdsguard.part.>`).
        /// No partition is read until [`NatsInput::claim`]ed.
        pub(crate) fn connect(src: &NatsSource) -> Result<NatsInput, PipelineError> {
            let url = src.url.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| nats_error(&url, "starting the client", e))?;
            let (client, stream_handle) = rt.block_on(async {
                let client = client(&url, &src.auth, "imdsguard watch").await?;
                let js = jetstream::new(client.clone());
                let stream = stream(&js, &src.stream, &url).await?;
                Ok::<_, PipelineError>((client, stream))
            })?;
            Ok(NatsInput {
                rt,
                client,
                stream_handle,
                consumers: (0..PARTITIONS).map(|_| None).collect(),
                committed: vec![0; PARTITIONS as usize],
                taken: None,
                next: 0,
                unacked: None,
                url,
                stream: src.stream.clone(),
                name: format!("nats:{}", src.stream),
                messages: 0,
            })
        }

        /// The partitions this worker reads.
        pub(crate) fn owned(&self) -> Vec<u32> {
            (0..PARTITIONS)
                .filter(|p| self.consumers[*p as usize].is_some())
                .collect()
        }

        /// Stops reading partition `p` (its results are committed; the worker taking it next
        /// makes its consumer again).
        pub(crate) fn release(&mut self, p: u32) {
            self.consumers[p as usize] = None;
        }

        /// Starts reading partition `p` (its lock is this worker's) after sequence `last`,
        /// the last one whose results the store holds: its durable consumer is made again to
        /// deliver from there. Messages a worker that is gone had taken would otherwise wait for
        /// their acknowledgement timer, and come after newer ones.
        pub(crate) fn claim(&mut self, p: u32, last: u64) -> Result<(), PipelineError> {
            let url = &self.url;
            let stream = &self.stream_handle;
            let c = self.rt.block_on(async {
                let name = format!("imdsguard-{p}");
                match stream.delete_consumer(&name).await {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            jetstream::stream::ConsumerErrorKind::JetStream(j)
                                if j.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND
                        ) => {}
                    Err(e) => return Err(nats_error(url, &format!("the consumer {name}"), e)),
                }
                stream
                    .create_consumer(jetstream::consumer::pull::Config {
                        durable_name: Some(name.clone()),
                        filter_subject: format!("{PARTS}.{p}.>"),
                        deliver_policy: if last == 0 {
                            jetstream::consumer::DeliverPolicy::All
                        } else {
                            jetstream::consumer::DeliverPolicy::ByStartSequence {
                                start_sequence: last + 1,
                            }
                        },
                        ack_policy: jetstream::consumer::AckPolicy::All,
                        ack_wait: Duration::from_secs(60),
                        max_ack_pending: MAX_ACK_PENDING,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| nats_error(url, &format!("the consumer {name}"), e))
            })?;
            self.consumers[p as usize] = Some(c);
            self.committed[p as usize] = last;
            Ok(())
        }

        /// Up to `max_bytes` of messages waiting on the next partition that has any, or `None`
        /// when none has.
        pub(crate) fn take(&mut self, max_bytes: usize) -> Result<Option<Taken>, PipelineError> {
            debug_assert!(
                self.unacked.is_none(),
                "the last messages taken are acknowledged first"
            );
            for _ in 0..self.consumers.len() {
                let partition = self.next as u32;
                let committed = self.committed[self.next];
                self.next = (self.next + 1) % self.consumers.len();
                let Some(c) = &self.consumers[partition as usize] else {
                    continue;
                };
                let url = &self.url;
                let mut got: Vec<jetstream::Message> = self.rt.block_on(async {
                    // By count, not bytes: a pull cut by its byte limit ends with a status
                    // the client reports as an error. A message is mostly a few hundred bytes
                    // to a few kilobytes.
                    let mut batch = c
                        .fetch()
                        .max_messages((max_bytes / 512).clamp(8, 10_000))
                        .messages()
                        .await
                        .map_err(|e| nats_error(url, "fetching", e))?;
                    let mut got = Vec::new();
                    while let Some(m) = batch.next().await {
                        got.push(m.map_err(|e| nats_error(url, "fetching", e))?);
                    }
                    Ok::<_, PipelineError>(got)
                })?;
                if got.is_empty() {
                    continue;
                }
                let mut taken = Taken {
                    checkpoint: imdsguard_store::Checkpoint {
                        input: partition_input(&self.stream, partition),
                        offset: committed,
                        lines: committed,
                        identity: None,
                        tail: None,
                    },
                    payloads: Vec::new(),
                    messages: Vec::new(),
                    hosts: Vec::new(),
                    partition,
                };
                for m in &got {
                    let seq = m
                        .info()
                        .map_err(|e| nats_error(url, "reading a message's sequence", e))?
                        .stream_sequence;
                    // Delivered again after its results were committed: done already.
                    if seq <= committed {
                        continue;
                    }
                    taken.checkpoint.offset = seq;
                    taken.checkpoint.lines = seq;
                    let at = taken.payloads.len();
                    taken.payloads.extend_from_slice(&m.payload);
                    taken.messages.push((seq, at..taken.payloads.len()));
                    let host = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(HOST_HEADER))
                        .map(|v| v.as_str().to_owned())
                        .or_else(|| m.subject.as_str().rsplit('.').next().map(str::to_owned));
                    if let Some(h) = host {
                        taken.hosts.push((seq, h));
                    }
                }
                taken.hosts.sort_by_key(|(s, _)| *s);
                self.messages += got.len() as u64;
                self.taken = Some((partition as usize, taken.checkpoint.offset));
                self.unacked = got.pop();
                return Ok(Some(taken));
            }
            Ok(None)
        }

        /// Acknowledges the messages last taken (their results are committed).
        pub(crate) fn ack(&mut self) -> Result<(), PipelineError> {
            if let Some((p, last)) = self.taken.take() {
                self.committed[p] = self.committed[p].max(last);
            }
            let Some(m) = self.unacked.take() else {
                return Ok(());
            };
            let url = &self.url;
            let client = &self.client;
            self.rt.block_on(async {
                // Confirmed by the server: a worker that stops right after must not leave them to
                // be delivered again.
                m.double_ack()
                    .await
                    .map_err(|e| nats_error(url, "acknowledging", e))?;
                client
                    .flush()
                    .await
                    .map_err(|e| nats_error(url, "acknowledging", e))
            })
        }
    }

    /// Publishes every line of the files (from where the state file says the last run
    /// stopped), each acknowledged by the stream before the position moves past it; with
    /// `follow`, until `stop` is set. `note` hears of a file that cannot be read (once each).
    pub fn ship(
        cfg: &ShipConfig,
        stop: &std::sync::atomic::AtomicBool,
        note: &mut dyn FnMut(&str),
    ) -> Result<ShipReport, PipelineError> {
        use std::sync::atomic::Ordering;
        let url = cfg.url.clone();
        let saved = load_state(&cfg.state)?;
        let mut files: Vec<Follower> = cfg
            .inputs
            .iter()
            .map(|p| {
                let name = p.display().to_string();
                let pos = saved
                    .iter()
                    .find(|(f, _)| *f == name)
                    .map(|(_, p)| p.clone());
                Follower::new(p, pos)
            })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| nats_error(&url, "starting the client", e))?;
        let js = rt.block_on(async {
            let js = jetstream::new(client(&url, &cfg.auth, "imdsguard ship").await?);
            stream(&js, &cfg.stream, &url).await?;
            Ok::<_, PipelineError>(js)
        })?;
        let subject = format!("{LOGS}.{}", subject_token(&cfg.host));
        let mut report = ShipReport {
            files: files.len() as u64,
            ..ShipReport::default()
        };
        let mut said: Vec<String> = Vec::new();
        let mut shipped = false;
        loop {
            let mut progressed = false;
            for f in files.iter_mut() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let chunk = match f.poll(cfg.max_chunk) {
                    Ok(Some(c)) => c,
                    Ok(None) => continue,
                    Err(e) => {
                        let msg = format!("{}: {e}", f.path().display());
                        if !said.contains(&msg) {
                            note(&msg);
                            said.push(msg);
                        }
                        continue;
                    }
                };
                progressed = true;
                let identity = chunk.end.identity.clone();
                let (published, duplicates) = rt.block_on(async {
                    let mut acks = Vec::new();
                    // Numbered before blank lines are left out: a line's number is its place in
                    // the file whatever chunk it was read in.
                    for (i, line) in chunk
                        .bytes
                        .split(|b| *b == b'\n')
                        .enumerate()
                        .filter(|(_, l)| !l.is_empty() && *l != b"\r")
                    {
                        // The line's place in its file: published again after a restart, the
                        // stream keeps it once (within its duplicate window).
                        let id = format!(
                            "{}:{identity}:{}",
                            cfg.host,
                            chunk.lines_before + i as u64 + 1
                        );
                        let mut headers = async_nats::HeaderMap::new();
                        headers.insert(HOST_HEADER, cfg.host.as_str());
                        headers.insert("Nats-Msg-Id", id.as_str());
                        let ack = js
                            .publish_with_headers(subject.clone(), headers, line.to_vec().into())
                            .await
                            .map_err(|e| nats_error(&url, "publishing", e))?;
                        acks.push(ack);
                    }
                    let (mut n, mut dup) = (0u64, 0u64);
                    for a in acks {
                        let got = a.await.map_err(|e| nats_error(&url, "publishing", e))?;
                        n += 1;
                        dup += u64::from(got.duplicate);
                    }
                    Ok::<_, PipelineError>((n, dup))
                })?;
                report.published += published;
                report.duplicates += duplicates;
                shipped = true;
            }
            // Every line read so far is in the stream: the positions move past them.
            if shipped {
                save_state(&cfg.state, &files)?;
                shipped = false;
            }
            if stop.load(Ordering::Relaxed) || (!progressed && !cfg.follow) {
                break;
            }
            if !progressed {
                std::thread::sleep(cfg.poll);
            }
        }
        Ok(report)
    }
}

#[cfg(not(feature = "nats"))]
mod without_nats {
    use super::*;

    const OFF: &str = "this imdsguard was built without NATS (the `nats` feature)";

    pub(crate) struct Taken {
        pub(crate) checkpoint: imdsguard_store::Checkpoint,
        pub(crate) payloads: Vec<u8>,
        pub(crate) messages: Vec<(u64, std::ops::Range<usize>)>,
        pub(crate) hosts: Vec<(u64, String)>,
        pub(crate) partition: u32,
    }

    pub(crate) struct NatsInput {
        pub(crate) name: String,
        pub(crate) stream: String,
        pub(crate) messages: u64,
    }

    impl NatsInput {
        pub(crate) fn connect(src: &NatsSource) -> Result<NatsInput, PipelineError> {
            let _ = partition_input;
            Err(PipelineError::Nats(format!("{}: {OFF}", shown(&src.url))))
        }

        pub(crate) fn owned(&self) -> Vec<u32> {
            Vec::new()
        }

        pub(crate) fn claim(&mut self, _p: u32, _last: u64) -> Result<(), PipelineError> {
            Ok(())
        }

        pub(crate) fn release(&mut self, _p: u32) {}

        pub(crate) fn take(&mut self, _max: usize) -> Result<Option<Taken>, PipelineError> {
            Ok(None)
        }

        pub(crate) fn ack(&mut self) -> Result<(), PipelineError> {
            Ok(())
        }
    }

    /// Says NATS is not in this build.
    pub fn ship(
        cfg: &ShipConfig,
        _stop: &std::sync::atomic::AtomicBool,
        _note: &mut dyn FnMut(&str),
    ) -> Result<ShipReport, PipelineError> {
        let _ = (load_state, save_state, url_credentials);
        let _ = nats_error(&cfg.url, "", "");
        Err(PipelineError::Nats(format!("{}: {OFF}", shown(&cfg.url))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_credentials_are_read_and_never_shown() {
        assert_eq!(
            url_credentials("tls://ana:p%40ss@bus:4222"),
            Some(("ana".into(), Some("p@ss".into())))
        );
        assert_eq!(
            url_credentials("nats://t0ken@bus:4222,nats://bus2:4222"),
            Some(("t0ken".into(), None))
        );
        assert_eq!(url_credentials("nats://bus:4222"), None);
        assert_eq!(
            shown("tls://ana:p%40ss@bus:4222,nats://t0ken@bus2"),
            "tls://ana@bus:4222,nats://…@bus2"
        );
        assert_eq!(shown("bus:4222"), "bus:4222");
    }

    #[test]
    fn host_names_become_one_subject_token() {
        assert_eq!(subject_token("WEB01.corp.example"), "web01_corp_example");
        assert_eq!(subject_token("a b*c>d"), "a_b_c_d");
        assert_eq!(subject_token(" "), "_");
        assert_eq!(subject_token("ip-10-0-0-1"), "ip-10-0-0-1");
    }

    #[test]
    fn partitions_are_fnv1a_of_the_token() {
        // FNV-1a 32 of "" is its offset basis; of "a", 0xe40c292c (the published test vectors).
        assert_eq!(partition_of("", u32::MAX), 0x811c_9dc5);
        assert_eq!(partition_of("a", u32::MAX), 0xe40c_292c);
        assert!(partition_of("web01", PARTITIONS) < PARTITIONS);
    }
}

/// Against a real server (`tests/nats/server.sh`).
#[cfg(all(test, feature = "nats"))]
mod server_tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A line's message id is its place in the file, blank lines counted, whatever chunks the
    /// file is read in: shipped again in other chunks, every line is known to the stream.
    #[test]
    fn a_file_shipped_again_in_other_chunks_is_kept_once() {
        let (url, dir) = imdsguard_testdata::nats!();
        let log = dir.join("blank.log");
        std::fs::write(&log, "first line\n\nthird line\n\n\nsixth line\n").unwrap();
        let run = |max_chunk: usize, state: &str| {
            let cfg = ShipConfig {
                url: url.clone(),
                auth: NatsAuth::default(),
                stream: DEFAULT_STREAM.into(),
                inputs: vec![log.clone()],
                host: "web01".into(),
                state: dir.join(state),
                follow: false,
                poll: Duration::from_millis(10),
                max_chunk,
            };
            let r = ship(&cfg, &AtomicBool::new(false), &mut |n| panic!("{n}")).unwrap();
            (r.published, r.duplicates)
        };
        assert_eq!(run(1 << 16, "a.json"), (3, 0));
        // One line at a time: each blank line ends a chunk of its own.
        assert_eq!(run(12, "b.json"), (3, 3));
    }

    /// The server's mapping, not only this file's arithmetic: every host's records land on the
    /// partition [`partition_of`] names, so a worker restoring a partition's hosts finds them.
    #[test]
    fn the_servers_mapping_puts_each_host_in_the_partition_computed_here() {
        let (url, dir) = imdsguard_testdata::nats!();
        let src = NatsSource {
            url: url.clone(),
            stream: DEFAULT_STREAM.into(),
            auth: NatsAuth::default(),
        };
        let mut input = NatsInput::connect(&src).unwrap();
        for p in 0..PARTITIONS {
            input.claim(p, 0).unwrap();
        }
        let log = dir.join("one.log");
        std::fs::write(&log, "one line\n").unwrap();
        let hosts = [
            "web01.corp.example",
            "db01",
            "ip-10-0-0-1",
            "WEB02",
            "a",
            "b",
            "c",
        ];
        for (i, host) in hosts.iter().enumerate() {
            let cfg = ShipConfig {
                url: url.clone(),
                auth: NatsAuth::default(),
                stream: DEFAULT_STREAM.into(),
                inputs: vec![log.clone()],
                host: (*host).into(),
                state: dir.join(format!("state-{i}.json")),
                follow: false,
                poll: Duration::from_millis(10),
                max_chunk: 1 << 16,
            };
            let r = ship(&cfg, &AtomicBool::new(false), &mut |n| panic!("{n}")).unwrap();
            assert_eq!((r.published, r.duplicates), (1, 0));
        }
        // Each partition's consumer hands out exactly its hosts' records.
        let mut seen = Vec::new();
        while let Some(t) = input.take(1 << 20).unwrap() {
            for (_, host) in &t.hosts {
                seen.push((host.clone(), t.partition));
            }
            input.ack().unwrap();
        }
        seen.sort();
        let mut want: Vec<(String, u32)> = hosts
            .iter()
            .map(|h| (h.to_string(), partition_of(&subject_token(h), PARTITIONS)))
            .collect();
        want.sort();
        assert_eq!(seen, want);
        // More than one partition is in use (the hash spreads them).
        let mut parts: Vec<u32> = want.iter().map(|(_, p)| *p).collect();
        parts.dedup();
        assert!(parts.len() > 1, "{want:?}");
    }
}
