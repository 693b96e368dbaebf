//! `watch`'s sources that are not files: standard input and syslog listeners (UDP and TCP).
//! Lines arrive on a bounded channel from a reader thread, so a slow `watch` slows its reader
//! (standard input and TCP senders wait; UDP datagrams beyond the socket's buffer are dropped by
//! the kernel, as UDP does). A syslog frame's header names its sending host: the host of a
//! record that names none.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use imdsguard_parse::follow::Follower;

use crate::error::PipelineError;

/// A line from a stream, with the host a syslog header named for it.
type StreamLine = (Vec<u8>, Option<String>);

/// Lines taken from a stream: their bytes, how many lines came before, and the line numbers a
/// syslog header named a host for.
pub(crate) type StreamChunk = (Vec<u8>, u64, Vec<(u64, String)>);

/// A source of lines that is not a file.
pub(crate) struct Stream {
    pub(crate) name: String,
    rx: Receiver<StreamLine>,
    pub(crate) lines: u64,
    pub(crate) open: bool,
    /// Frames dropped by the reader (over 1 MiB without their end).
    pub(crate) dropped: Arc<AtomicU64>,
}

/// One input `watch` reads.
pub(crate) enum Input {
    /// A file followed as it grows.
    File(Follower),
    /// Standard input or a syslog listener.
    Stream(Stream),
}

/// Lines in flight from a stream's reader thread.
const STREAM_BOUND: usize = 10_000;

pub(crate) fn stdin_stream() -> Stream {
    let (tx, rx) = sync_channel(STREAM_BOUND);
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut r = stdin.lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match io::BufRead::read_until(&mut r, b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send((std::mem::take(&mut line), None)).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Stream {
        name: "-".into(),
        rx,
        lines: 0,
        open: true,
        dropped: Arc::new(AtomicU64::new(0)),
    }
}

/// The message of a syslog frame, as a line for the decoders (frames that are not syslog are
/// passed as they are: some senders strip the header), with the host its header names: the host
/// of a record that names none itself.
fn syslog_line(frame: &[u8]) -> StreamLine {
    let parsed = imdsguard_parse::syslog::parse(frame);
    let host = parsed.as_ref().and_then(|m| m.host).map(str::to_owned);
    let msg = parsed.map_or(frame, |m| m.msg);
    let mut line = msg.to_vec();
    line.push(b'\n');
    (line, host)
}

pub(crate) fn syslog_udp(addr: &str) -> Result<Stream, PipelineError> {
    let err = |source| PipelineError::Listen {
        proto: "udp",
        addr: addr.to_owned(),
        source,
    };
    let sock = std::net::UdpSocket::bind(addr).map_err(err)?;
    let name = format!("syslog+udp://{}", sock.local_addr().map_err(err)?);
    let (tx, rx) = sync_channel(STREAM_BOUND);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if tx.send(syslog_line(&buf[..n])).is_err() {
                break;
            }
        }
    });
    Ok(Stream {
        name,
        rx,
        lines: 0,
        open: true,
        dropped: Arc::new(AtomicU64::new(0)),
    })
}

pub(crate) fn syslog_tcp(addr: &str) -> Result<Stream, PipelineError> {
    let err = |source| PipelineError::Listen {
        proto: "tcp",
        addr: addr.to_owned(),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(err)?;
    let name = format!("syslog+tcp://{}", listener.local_addr().map_err(err)?);
    let (tx, rx) = sync_channel(STREAM_BOUND);
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&dropped);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let dropped = Arc::clone(&counted);
            let tx: SyncSender<StreamLine> = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65_536];
                loop {
                    let n = match io::Read::read(&mut conn, &mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let (frames, used) = imdsguard_parse::syslog::split_tcp(&buf);
                    for f in frames {
                        if tx.send(syslog_line(f)).is_err() {
                            return;
                        }
                    }
                    buf.drain(..used);
                    if buf.len() > 1 << 20 {
                        // A frame over 1 MiB without its end: dropped and counted.
                        dropped.fetch_add(1, Ordering::Relaxed);
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    let _ = tx.send(syslog_line(&buf));
                }
            });
        }
    });
    Ok(Stream {
        name,
        rx,
        lines: 0,
        open: true,
        dropped,
    })
}

impl Stream {
    /// The lines waiting, up to about `max_bytes`, with the line numbers a syslog header named
    /// a host for.
    pub(crate) fn take(&mut self, max_bytes: usize) -> Option<StreamChunk> {
        let mut bytes = Vec::new();
        let mut hosts = Vec::new();
        let before = self.lines;
        while bytes.len() < max_bytes {
            match self.rx.try_recv() {
                Ok((mut line, host)) => {
                    if line.last() != Some(&b'\n') {
                        line.push(b'\n');
                    }
                    bytes.extend_from_slice(&line);
                    self.lines += 1;
                    if let Some(h) = host {
                        hosts.push((self.lines, h));
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.open = false;
                    break;
                }
            }
        }
        (!bytes.is_empty()).then_some((bytes, before, hosts))
    }
}
