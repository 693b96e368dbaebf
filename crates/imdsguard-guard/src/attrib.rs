//! Which process is behind a TCP connection: from the socket, never from an address or a header.
//!
//! The client's socket is found in the kernel's table of TCP sockets of this network namespace
//! (`/proc/net/tcp`, `/proc/net/tcp6`) by its own address and port (the connection's peer as the
//! proxy sees it), which gives its inode and owner; the process holding that inode is found among
//! the `/proc/PID/fd` links of that owner's processes. Its executable, command line, user and
//! cgroup (and a container id in it) come from `/proc/PID`. A connection whose socket or process
//! cannot be found (the process exited, another namespace, no permission) is marked
//! unattributed with the reason, never guessed.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// A process, as `/proc` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// The executable (`/proc/PID/exe`), when readable.
    pub exe: Option<String>,
    /// The command line, argument by argument.
    pub cmdline: Vec<String>,
    /// The socket owner's user id.
    pub uid: u32,
    /// Its name, from `/etc/passwd`, when listed.
    pub user: Option<String>,
    /// The process's cgroup (v2 path, or the v1 hierarchies joined).
    pub cgroup: Option<String>,
    /// A container id (64 hexadecimal digits) found in the cgroup path.
    pub container: Option<String>,
}

/// Who is behind a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// The process holding the client's socket.
    Process(Arc<Process>),
    /// Nobody could be named, and why.
    Unattributed(String),
}

/// Finds processes behind connections, caching what `/proc` said about each process (keyed by
/// pid and start time, so a reused pid is not mistaken for the old process; its executable and
/// command line read again each time, so a process that ran `exec` is not mistaken for what it
/// was).
pub struct Attributor {
    proc_root: std::path::PathBuf,
    cache: Mutex<HashMap<(u32, u64), Cached>>,
    users: Mutex<Option<HashMap<u32, String>>>,
    /// Processes that opened connections lately, most recent first: clients come back (an agent
    /// polling, an SDK refreshing), and their descriptors are searched before all of `/proc`.
    recent: Mutex<Vec<Recent>>,
}

/// A process as read, with what tells it ran `exec` since.
#[derive(Debug, Clone)]
struct Cached {
    process: Arc<Process>,
    exe: Option<std::path::PathBuf>,
    cmdline: Vec<u8>,
}

/// How many recent clients are searched first.
const RECENT: usize = 16;
/// How many of a recent client's descriptor numbers are tried before its whole table.
const RECENT_FDS: usize = 64;

/// A recent client and the descriptors its connections were found on, latest first.
#[derive(Debug, Clone)]
struct Recent {
    pid: u32,
    fds: Vec<u32>,
}

impl Default for Attributor {
    fn default() -> Self {
        Attributor::new("/proc")
    }
}

/// The most processes' details kept; beyond it the cache starts again.
const CACHE_MAX: usize = 4096;

impl Attributor {
    /// An attributor reading the given `/proc`.
    pub fn new(proc_root: impl AsRef<Path>) -> Self {
        Attributor {
            proc_root: proc_root.as_ref().to_path_buf(),
            cache: Mutex::new(HashMap::new()),
            users: Mutex::new(None),
            recent: Mutex::new(Vec::new()),
        }
    }

    /// The process behind the TCP connection whose client end is `peer` and whose other end is,
    /// as the client sees it, `local` (the server's address, or the address the client asked
    /// for when a redirect brought it to the server).
    pub fn attribute(&self, peer: SocketAddr, local: SocketAddr) -> Attribution {
        let sock = match self.find_socket(peer, local) {
            Ok(s) => s,
            Err(why) => return Attribution::Unattributed(why),
        };
        let pid = match self.find_pid(sock.inode, sock.uid) {
            Some(p) => p,
            None => {
                return Attribution::Unattributed(format!(
                    "no process holds socket {} (uid {}): it exited, or lives where this one cannot see",
                    sock.inode, sock.uid
                ))
            }
        };
        match self.process(pid, sock.uid) {
            Some(p) => Attribution::Process(p),
            None => Attribution::Unattributed(format!("process {pid} exited while being read")),
        }
    }

    /// `attribute`'s quick path, or `None` where the answer needs a search: the kernel's socket
    /// for the four-tuple held by a recent client on a descriptor number one of its connections
    /// had. A handful of system calls, cheap enough to make on the thread serving connections;
    /// `None` sends the caller to `attribute` (off that thread).
    pub fn attribute_quick(&self, peer: SocketAddr, local: SocketAddr) -> Option<Attribution> {
        if self.proc_root != Path::new("/proc") {
            return None;
        }
        let (inode, uid) = crate::sockdiag::lookup(canonical(peer), canonical(local)).ok()?;
        if inode == 0 {
            return None;
        }
        let (pid, fd) = self.hinted(&self.recent(), &format!("socket:[{inode}]"))?;
        let p = self.process(pid, uid)?;
        self.remember(pid, fd);
        Some(Attribution::Process(p))
    }

    fn find_socket(&self, peer: SocketAddr, local: SocketAddr) -> Result<Socket, String> {
        let peer = canonical(peer);
        let local = canonical(local);
        // Asked of the kernel by the exact four-tuple when it can; the TCP tables otherwise.
        if self.proc_root == Path::new("/proc") {
            if let Ok((inode, uid)) = crate::sockdiag::lookup(peer, local) {
                if inode != 0 {
                    return Ok(Socket {
                        local: peer,
                        remote: local,
                        uid,
                        inode,
                    });
                }
            }
        }
        for table in ["net/tcp", "net/tcp6"] {
            let Ok(text) = fs::read_to_string(self.proc_root.join(table)) else {
                continue;
            };
            // Both ends must match: the kernel gives one local port to several connections to
            // different destinations, so the client's address alone could name another socket.
            if let Some(s) = text
                .lines()
                .skip(1)
                .filter_map(parse_tcp_line)
                .find(|s| s.local == peer && s.remote == local && s.inode != 0)
            {
                return Ok(s);
            }
        }
        // A container's connection, redirected on its way out of the container's namespace:
        // its socket is in that namespace's tables.
        self.in_other_namespaces(peer, local).ok_or_else(|| {
            format!("no socket {peer} to {local} in any network namespace's TCP tables (already closed?)")
        })
    }

    /// The socket from `peer` to `dst` in the TCP tables of another network namespace than this
    /// process's, read through one process of each (`/proc/PID/net/tcp` shows its namespace's).
    fn in_other_namespaces(&self, peer: SocketAddr, dst: SocketAddr) -> Option<Socket> {
        let own = fs::read_link(self.proc_root.join("self/ns/net")).ok();
        let mut seen = std::collections::HashSet::new();
        for e in fs::read_dir(&self.proc_root).ok()?.flatten() {
            let name = e.file_name();
            if name.to_str().and_then(|n| n.parse::<u32>().ok()).is_none() {
                continue;
            }
            let Ok(ns) = fs::read_link(e.path().join("ns/net")) else {
                continue;
            };
            if own.as_ref() == Some(&ns) || !seen.insert(ns) {
                continue;
            }
            for table in ["net/tcp", "net/tcp6"] {
                let Ok(text) = fs::read_to_string(e.path().join(table)) else {
                    continue;
                };
                let found = text
                    .lines()
                    .skip(1)
                    .filter_map(parse_tcp_line)
                    .find(|s| s.local == peer && s.remote == dst && s.inode != 0);
                if found.is_some() {
                    return found;
                }
            }
        }
        None
    }

    /// The pid holding `socket:[inode]`, among the processes of user `uid` (root's sockets among
    /// all).
    ///
    /// Recent clients first, and in them first the descriptor numbers their earlier connections
    /// had, the longest-held first: a process that closes a connection and opens the next gets
    /// the same number back (the kernel hands out the lowest free one), and of its connections
    /// the one found longest ago is the likeliest to have ended, so one `readlink` or two
    /// usually finds it. The link is the proof either way; the hints only decide where to look
    /// first.
    fn find_pid(&self, inode: u64, uid: u32) -> Option<u32> {
        let want = format!("socket:[{inode}]");
        let recent = self.recent();
        let (found, fd) = match self.hinted(&recent, &want) {
            Some(hit) => hit,
            None => recent
                .iter()
                .find_map(|r| self.holds(r.pid, &want).map(|fd| (r.pid, fd)))
                .or_else(|| self.scan(&want, uid))?,
        };
        self.remember(found, fd);
        Some(found)
    }

    fn recent(&self) -> Vec<Recent> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The recent client and descriptor that are `want`, trying only the descriptor numbers
    /// their connections were found on.
    fn hinted(&self, recent: &[Recent], want: &str) -> Option<(u32, u32)> {
        recent.iter().find_map(|r| {
            r.fds
                .iter()
                .rev()
                .find(|&&fd| self.fd_is(r.pid, fd, want))
                .map(|&fd| (r.pid, fd))
        })
    }

    /// `pid` held a connection on `fd`: searched first next time.
    fn remember(&self, found: u32, fd: u32) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut fds = match recent.iter().position(|r| r.pid == found) {
            Some(i) => recent.remove(i).fds,
            None => Vec::new(),
        };
        fds.retain(|&f| f != fd);
        fds.insert(0, fd);
        fds.truncate(RECENT_FDS);
        recent.insert(0, Recent { pid: found, fds });
        recent.truncate(RECENT);
    }

    /// Whether descriptor `fd` of process `pid` is `want` (`socket:[inode]`).
    fn fd_is(&self, pid: u32, fd: u32, want: &str) -> bool {
        let mut path = self.proc_root.join(pid.to_string());
        path.push("fd");
        path.push(fd.to_string());
        fs::read_link(path).is_ok_and(|l| l.as_os_str() == want)
    }

    /// The descriptor of process `pid` on `want` (`socket:[inode]`), if it has one.
    fn holds(&self, pid: u32, want: &str) -> Option<u32> {
        let fds = fs::read_dir(self.proc_root.join(pid.to_string()).join("fd")).ok()?;
        fds.flatten().find_map(|fd| {
            let n = fd.file_name().to_str()?.parse().ok()?;
            fs::read_link(fd.path())
                .is_ok_and(|l| l.as_os_str() == want)
                .then_some(n)
        })
    }

    /// Every process of `uid` (all of them for root's sockets), searched for `want`.
    fn scan(&self, want: &str, uid: u32) -> Option<(u32, u32)> {
        let entries = fs::read_dir(&self.proc_root).ok()?;
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if uid != 0 && owner(&e.path()) != Some(uid) {
                continue;
            }
            if let Some(fd) = self.holds(pid, want) {
                return Some((pid, fd));
            }
        }
        None
    }

    fn process(&self, pid: u32, uid: u32) -> Option<Arc<Process>> {
        let dir = self.proc_root.join(pid.to_string());
        let start = start_time(&dir)?;
        let raw_cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
        let exe_link = fs::read_link(dir.join("exe")).ok();
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(pid, start))
        {
            // The same process, still running what it ran (or exiting: its executable and
            // command line are gone, and it ran no other since), under the same user.
            let same = c.exe == exe_link && c.cmdline == raw_cmdline;
            let exiting = exe_link.is_none() && raw_cmdline.is_empty();
            if (same || exiting) && c.process.uid == uid {
                return Some(Arc::clone(&c.process));
            }
        }
        let cmdline = raw_cmdline
            .split(|&c| c == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let exe = exe_link.as_ref().map(|p| p.to_string_lossy().into_owned());
        let cgroup = fs::read_to_string(dir.join("cgroup"))
            .ok()
            .map(|c| cgroup_path(&c));
        let container = cgroup.as_deref().and_then(container_id);
        // The process may have exited between the two reads of its start time.
        if start_time(&dir)? != start {
            return None;
        }
        let p = Arc::new(Process {
            pid,
            exe,
            cmdline,
            uid,
            user: self.user_name(uid),
            cgroup,
            container,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            (pid, start),
            Cached {
                process: Arc::clone(&p),
                exe: exe_link,
                cmdline: raw_cmdline,
            },
        );
        Some(p)
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let map = users.get_or_insert_with(|| {
            fs::read_to_string("/etc/passwd")
                .map(|t| parse_passwd(&t))
                .unwrap_or_default()
        });
        map.get(&uid).cloned()
    }
}

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Socket {
    local: SocketAddr,
    remote: SocketAddr,
    uid: u32,
    inode: u64,
}

/// Reads a row: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`.
fn parse_tcp_line(line: &str) -> Option<Socket> {
    let mut f = line.split_whitespace();
    let _sl = f.next()?;
    let local = parse_hex_addr(f.next()?)?;
    let remote = parse_hex_addr(f.next()?)?;
    let _state = f.next()?;
    let _queues = f.next()?;
    let _timer = f.next()?;
    let _retransmits = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let _timeout = f.next()?;
    let inode = f.next()?.parse().ok()?;
    Some(Socket {
        local: canonical(local),
        remote: canonical(remote),
        uid,
        inode,
    })
}

/// `0100007F:1F90` (IPv4 as a host-order word) or 32 hex digits of IPv6 (four host-order
/// words), then the port in hex.
fn parse_hex_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_le_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// IPv4-mapped IPv6 addresses as IPv4, so either table's form of a connection compares equal.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

fn owner(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir).ok().map(|m| m.uid())
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
fn start_time(dir: &Path) -> Option<u64> {
    let stat = fs::read_to_string(dir.join("stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The cgroup v2 path (`0::/…`), or every v1 hierarchy's path joined with `;`.
fn cgroup_path(text: &str) -> String {
    if let Some(v2) = text.lines().find_map(|l| l.strip_prefix("0::")) {
        return v2.to_owned();
    }
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .collect::<Vec<_>>()
        .join(";")
}

/// A container id in a cgroup path: 64 hex digits after `docker-`, `cri-containerd-`,
/// `crio-`, `libpod-` or as a path segment (`/docker/ID`, `/kubepods/…/ID`).
fn container_id(cgroup: &str) -> Option<String> {
    cgroup
        .split(['/', ';'])
        .filter_map(|seg| {
            let seg = seg.strip_suffix(".scope").unwrap_or(seg);
            let id = seg.rsplit(['-', ':']).next()?;
            (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
        })
        .next_back()
}

fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_tcp_tables() {
        let v4 = "   3: 0100007F:D2C4 FEA9FEA9:0050 01 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 20 4 30 10 -1";
        let s = parse_tcp_line(v4).unwrap();
        assert_eq!(s.local, "127.0.0.1:53956".parse().unwrap());
        assert_eq!(s.remote, "169.254.169.254:80".parse().unwrap());
        assert_eq!((s.uid, s.inode), (1000, 123456));
        // IPv6: ::1 and the IPv4-mapped 169.254.169.254, read as IPv4.
        let v6 = "   0: 00000000000000000000000001000000:0050 0000000000000000FFFF0000FEA9FEA9:1F90 01 00000000:00000000 00:00000000 00000000     0        0 42 1 0000000000000000 20 4 30 10 -1";
        let s = parse_tcp_line(v6).unwrap();
        assert_eq!(s.local, "[::1]:80".parse().unwrap());
        assert_eq!(s.remote, "169.254.169.254:8080".parse().unwrap());
        assert!(parse_tcp_line("  sl  local_address rem_address   st").is_none());
    }

    #[test]
    fn the_kernel_names_the_same_socket_as_the_tcp_table() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        let (inode, uid) = crate::sockdiag::lookup(peer, server).expect("sock_diag answers");
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let row = table
            .lines()
            .filter_map(parse_tcp_line)
            .find(|s| s.local == peer && s.remote == server)
            .expect("the client socket is in the table");
        assert_eq!((inode, uid), (row.inode, row.uid));
        assert_eq!(uid, own_uid());
        // IPv6 loopback, where the machine has it.
        if let Ok(l6) = std::net::TcpListener::bind("[::1]:0") {
            let s6 = l6.local_addr().unwrap();
            let _c6 = std::net::TcpStream::connect(s6).unwrap();
            let (_a6, p6) = l6.accept().unwrap();
            let (i6, _) = crate::sockdiag::lookup(p6, s6).expect("sock_diag answers for IPv6");
            assert!(i6 > 0 && i6 != inode);
        }
        // No such connection: an error, not a guess.
        assert!(crate::sockdiag::lookup("127.0.0.1:9".parse().unwrap(), server).is_err());
        drop(client);
    }

    #[test]
    fn cgroups_and_container_ids() {
        let id = "4f1c0a7e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
        assert_eq!(
            container_id(&format!("/system.slice/docker-{id}.scope")).as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id(&format!("/kubepods/burstable/pod1234/{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id(&format!("/system.slice/cri-containerd-{id}.scope")).as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id("/user.slice/user-1000.slice/session-3.scope"),
            None
        );
        assert_eq!(cgroup_path("0::/user.slice\n"), "/user.slice");
        assert_eq!(
            cgroup_path("12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n"),
            "/docker/abc;/docker/abc"
        );
    }

    #[test]
    fn names_the_process_behind_a_real_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A child process holds the client end, so the pid found must be the child's.
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket,sys,time; s=socket.create_connection(('127.0.0.1',{})); sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(30)",
                    addr.port()
                ),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let (conn, peer) = listener.accept().unwrap();
        let a = Attributor::default();
        let got = a.attribute(peer, conn.local_addr().unwrap());
        let _ = child.kill();
        let _ = child.wait();
        match got {
            Attribution::Process(p) => {
                assert_eq!(p.pid, child.id());
                assert!(p.cmdline.iter().any(|a| a.contains("create_connection")));
                assert!(
                    p.exe.as_deref().is_some_and(|e| e.contains("python")),
                    "{p:?}"
                );
                assert_eq!(p.uid, own_uid());
            }
            other => panic!("{other:?}"),
        }
        // A peer that is no socket here.
        let none = a.attribute("127.0.0.1:9".parse().unwrap(), addr);
        assert!(matches!(none, Attribution::Unattributed(_)), "{none:?}");
    }

    /// A client that connects, reconnects (the quick path finds it on the descriptor number its
    /// last connection had), then runs `exec` and connects again: the same pid and start time,
    /// another command line, which the attribution must show rather than the cached one.
    #[test]
    fn a_returning_client_is_found_quickly_and_an_exec_is_seen() {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let port = addr.port();
        let second = format!(
            "import socket,sys,time; s=socket.create_connection(('127.0.0.1',{port})); print('stage-two', flush=True); time.sleep(30)"
        );
        let first = format!(
            "import os,socket,sys\nfor n in (1, 2):\n  s=socket.create_connection(('127.0.0.1',{port})); print('stage-one', n, flush=True); sys.stdin.readline(); s.close()\nos.execvp('python3', ['python3', '-c', {second:?}])"
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &first])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut stdin = child.stdin.take().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let a = Attributor::default();
        let mut line = String::new();
        let mut next = |a: &Attributor, quick: bool| {
            let (conn, peer) = listener.accept().unwrap();
            line.clear();
            out.read_line(&mut line).unwrap();
            let local = conn.local_addr().unwrap();
            let got = if quick {
                a.attribute_quick(peer, local)
            } else {
                Some(a.attribute(peer, local))
            };
            (got, line.clone(), conn)
        };
        let (got, said, _c1) = next(&a, false);
        assert_eq!(said.trim(), "stage-one 1");
        let Some(Attribution::Process(p1)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(p1.pid, child.id());
        writeln!(stdin).unwrap();
        let (got, said, _c2) = next(&a, true);
        assert_eq!(said.trim(), "stage-one 2");
        match got {
            Some(Attribution::Process(p)) => assert!(Arc::ptr_eq(&p, &p1), "{p:?}"),
            other => panic!("the returning client was not found quickly: {other:?}"),
        }
        writeln!(stdin).unwrap();
        let (got, said, _c3) = next(&a, false);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(said.trim(), "stage-two");
        match got {
            Some(Attribution::Process(p)) => {
                assert_eq!(p.pid, p1.pid);
                assert_eq!(p.cmdline.last(), Some(&second), "{p:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// This process's user id, read from `/proc/self/status` (no `libc` call needed).
    fn own_uid() -> u32 {
        fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|u| u.parse().ok())
            .unwrap()
    }
}
