//! One socket's inode and owner from the kernel, by its exact four-tuple: a `SOCK_DIAG_BY_FAMILY`
//! request over netlink (`sock_diag(7)`), answered with that one socket however many others the
//! host has (reading `/proc/net/tcp` costs a line per socket, TIME_WAIT ones included: tens of
//! milliseconds on a busy host).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

const AF_NETLINK: i32 = 16;
const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
/// `INET_DIAG_NOCOOKIE`: match by addresses, not by a cookie.
const NO_COOKIE: u32 = !0;
/// `struct nlmsghdr`.
const HEADER: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then the 48-byte socket id.
const REQUEST: usize = 8 + 48;

/// One end's address in the kernel's layout: 16 bytes, an IPv4 address in the first four.
type Addr = [u8; 16];

/// The inode and owner uid of the TCP socket whose local end is `src` and remote end `dst`.
pub(crate) fn lookup(src: SocketAddr, dst: SocketAddr) -> Result<(u64, u32), String> {
    let sock = Socket::new(
        Domain::from(AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(NETLINK_SOCK_DIAG)),
    )
    .map_err(|e| format!("netlink: {e}"))?;
    let mut last = String::from("no such socket");
    for (family, s, d) in forms(src.ip(), dst.ip()) {
        match ask(&sock, family, (s, src.port()), (d, dst.port())) {
            Ok(found) => return Ok(found),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The families and address forms a connection's socket may have: an IPv4 connection may belong
/// to an IPv6 socket (a dual-stack client asking for `::ffff:169.254.169.254`).
fn forms(src: IpAddr, dst: IpAddr) -> Vec<(u8, Addr, Addr)> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    let v6 = |a: IpAddr| match a {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    };
    match (v4(src), v4(dst)) {
        (Some(s), Some(d)) => {
            let pad = |a: std::net::Ipv4Addr| {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                b
            };
            vec![(AF_INET, pad(s), pad(d)), (AF_INET6, v6(src), v6(dst))]
        }
        _ => vec![(AF_INET6, v6(src), v6(dst))],
    }
}

/// The request for one socket: `nlmsghdr` then `inet_diag_req_v2` (host byte order but for the
/// ports and addresses, which are in network order).
fn request(family: u8, src: (Addr, u16), dst: (Addr, u16)) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + REQUEST);
    m.extend_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    m.extend_from_slice(&(!0u32).to_ne_bytes()); // every state
    m.extend_from_slice(&src.1.to_be_bytes());
    m.extend_from_slice(&dst.1.to_be_bytes());
    m.extend_from_slice(&src.0);
    m.extend_from_slice(&dst.0);
    m.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    m.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    m.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    m
}

fn ask(
    sock: &Socket,
    family: u8,
    src: (Addr, u16),
    dst: (Addr, u16),
) -> Result<(u64, u32), String> {
    sock.send(&request(family, src, dst))
        .map_err(|e| format!("netlink send: {e}"))?;
    let mut buf = [0u8; 8192];
    let n = (&*sock)
        .read(&mut buf)
        .map_err(|e| format!("netlink receive: {e}"))?;
    parse_answer(&buf[..n])
}

/// Reads the kernel's answer: one `inet_diag_msg` (its uid at byte 64, inode at 68), or an
/// error message.
fn parse_answer(b: &[u8]) -> Result<(u64, u32), String> {
    let u16_at = |i: usize| b.get(i..i + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let u32_at = |i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
    };
    let kind = u16_at(4).ok_or("short netlink answer")?;
    if kind == NLMSG_ERROR {
        let errno = u32_at(HEADER).map(|e| -(e as i32)).unwrap_or(0);
        return Err(std::io::Error::from_raw_os_error(errno).to_string());
    }
    if kind != SOCK_DIAG_BY_FAMILY {
        return Err(format!("unexpected netlink message type {kind}"));
    }
    let uid = u32_at(HEADER + 64).ok_or("short inet_diag_msg")?;
    let inode = u32_at(HEADER + 68).ok_or("short inet_diag_msg")?;
    Ok((u64::from(inode), uid))
}
