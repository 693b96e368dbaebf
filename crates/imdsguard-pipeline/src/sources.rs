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
    /// What the reader left out and says once: connections that sent frames over 1 MiB
    /// (each counted once), connections refused over the cap, idle connections closed.
    pub(crate) counts: Arc<Counts>,
    /// How much of `counts` was said already.
    pub(crate) said: (u64, u64, u64),
    /// A UDP listener's socket, by inode: the kernel counts the datagrams it dropped for it.
    udp: Option<KernelDrops>,
}

/// The datagrams the kernel dropped for a UDP socket (its receive buffer full: `watch` read
/// slower than they came), as `/proc/net/udp` and `udp6` show them in their `drops` column —
/// the counter `SO_RXQ_OVFL` reports.
struct KernelDrops {
    inode: u64,
    /// When last read, and what it was then (read at most once a second).
    read_at: Option<std::time::Instant>,
    dropped: u64,
    said: u64,
}

impl KernelDrops {
    fn of(sock: &std::net::UdpSocket) -> Option<KernelDrops> {
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", sock.as_raw_fd())).ok()?;
        let inode = link
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        Some(KernelDrops {
            inode,
            read_at: None,
            dropped: 0,
            said: 0,
        })
    }

    /// The count now (the last one read within the second).
    fn dropped(&mut self) -> u64 {
        if self
            .read_at
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
        {
            return self.dropped;
        }
        self.read_at = Some(std::time::Instant::now());
        if let Some(n) = self.read() {
            self.dropped = n;
        }
        self.dropped
    }

    /// The count in the kernel's tables, if the socket is there.
    fn read(&self) -> Option<u64> {
        ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .find_map(|table| {
                std::fs::read_to_string(table)
                    .ok()
                    .and_then(|t| udp_drops(&t, self.inode))
            })
    }
}

/// The `drops` column of the row of `/proc/net/udp` whose inode is `inode`.
fn udp_drops(table: &str, inode: u64) -> Option<u64> {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 13 && f[9].parse() == Ok(inode)).then(|| f[12].parse().ok())?
    })
}

/// What a stream's reader left out.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) oversized: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) idle: AtomicU64,
}

impl Stream {
    /// What the reader left out since the last call, in sentences.
    pub(crate) fn news(&mut self) -> Vec<String> {
        let now = (
            self.counts.oversized.load(Ordering::Relaxed),
            self.counts.refused.load(Ordering::Relaxed),
            self.counts.idle.load(Ordering::Relaxed),
        );
        let mut out = Vec::new();
        if now.0 > self.said.0 {
            out.push(format!(
                "{}: {} connections sent a frame over 1 MiB (dropped, said once per connection)",
                self.name,
                now.0 - self.said.0
            ));
        }
        if now.1 > self.said.1 {
            out.push(format!(
                "{}: {} connections refused: at most {MAX_TCP_CONNECTIONS} are open at once",
                self.name,
                now.1 - self.said.1
            ));
        }
        if now.2 > self.said.2 {
            out.push(format!(
                "{}: {} idle connections closed",
                self.name,
                now.2 - self.said.2
            ));
        }
        self.said = now;
        if let Some(k) = &mut self.udp {
            let dropped = k.dropped();
            if dropped > k.said {
                out.push(format!(
                    "{}: {} datagrams dropped by the kernel: its receive buffer was full (watch read slower than they came)",
                    self.name,
                    dropped - k.said
                ));
                k.said = dropped;
            }
        }
        out
    }

    /// Datagrams the kernel dropped for a UDP listener since it was opened.
    pub(crate) fn dropped(&mut self) -> Option<u64> {
        self.udp.as_mut().map(KernelDrops::dropped)
    }
}

/// At most this many syslog TCP connections are open at once (one reading thread each); more
/// are closed as they come, and counted.
pub(crate) const MAX_TCP_CONNECTIONS: usize = 256;

/// The longest frame read whole.
const MAX_FRAME: usize = 1 << 20;

/// One input `watch` reads.
pub(crate) enum Input {
    /// A file followed as it grows.
    File(Follower),
    /// Standard input or a syslog listener.
    Stream(Stream),
    /// A NATS JetStream stream.
    Nats(Box<crate::nats::NatsInput>),
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
        counts: Arc::default(),
        said: (0, 0, 0),
        udp: None,
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
    let udp = KernelDrops::of(&sock);
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
        counts: Arc::default(),
        said: (0, 0, 0),
        udp,
    })
}

/// A syslog TCP listener: one reading thread per connection, at most [`MAX_TCP_CONNECTIONS`] at
/// once; a connection silent for `idle` is closed (senders reconnect); a frame over 1 MiB
/// without its end is dropped and said once per connection.
pub(crate) fn syslog_tcp(addr: &str, idle: std::time::Duration) -> Result<Stream, PipelineError> {
    let err = |source| PipelineError::Listen {
        proto: "tcp",
        addr: addr.to_owned(),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(err)?;
    let name = format!("syslog+tcp://{}", listener.local_addr().map_err(err)?);
    let (tx, rx) = sync_channel(STREAM_BOUND);
    let counts: Arc<Counts> = Arc::default();
    let counted = Arc::clone(&counts);
    std::thread::spawn(move || {
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if open.load(Ordering::Relaxed) >= MAX_TCP_CONNECTIONS {
                counted.refused.fetch_add(1, Ordering::Relaxed);
                drop(conn);
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            let _ = conn.set_read_timeout(Some(idle));
            let (tx, counts, open): (SyncSender<StreamLine>, _, _) =
                (tx.clone(), Arc::clone(&counted), Arc::clone(&open));
            std::thread::spawn(move || {
                read_connection(conn, &tx, &counts);
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    Ok(Stream {
        name,
        rx,
        lines: 0,
        open: true,
        counts,
        said: (0, 0, 0),
        udp: None,
    })
}

/// Reads one sender's frames until it closes, goes idle, or the stream is gone.
fn read_connection(mut conn: std::net::TcpStream, tx: &SyncSender<StreamLine>, counts: &Counts) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65_536];
    let mut oversized = false;
    loop {
        let n = match io::Read::read(&mut conn, &mut chunk) {
            Ok(0) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                counts.idle.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Err(_) => break,
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
        if buf.len() > MAX_FRAME {
            // A frame over 1 MiB without its end: dropped; said once for the connection.
            if !oversized {
                counts.oversized.fetch_add(1, Ordering::Relaxed);
                oversized = true;
            }
            buf.clear();
        }
    }
    if !buf.is_empty() {
        let _ = tx.send(syslog_line(&buf));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drops_column_of_a_udp_socket_is_found_by_inode() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  211: 0100007F:0202 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4512 2 0000000000000000 0
 1003: 0100007F:D431 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 98765 2 0000000000000000 1744
";
        assert_eq!(udp_drops(table, 98765), Some(1744));
        assert_eq!(udp_drops(table, 4512), Some(0));
        assert_eq!(udp_drops(table, 1), None);
    }

    #[test]
    fn a_bound_udp_socket_is_found_in_the_kernel_table() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let k = KernelDrops::of(&sock).expect("/proc/self/fd names the socket");
        assert_eq!(k.read(), Some(0));
    }
}
