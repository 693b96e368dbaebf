//! The normalizer: finds every metadata target in a string.
//!
//! A string is read as free text (a command line, a log field, a request) in layers:
//!
//! 1. **Tokens**: split at white space, quotes and shell punctuation. Each token is read as URLs
//!    (every `scheme:` in it, so a URL nested in another's parameter is found too), else as a
//!    scheme-less `host[:port][/path]` the way curl and wget take one, `/dev/tcp/host/port`, and the
//!    colon-separated forms of `--resolve`, `--connect-to` and socat.
//! 2. **Decoded layers**, each read again from step 1 with its encoding recorded: percent-decoded
//!    tokens (twice at most), backslash escapes and `${IFS}`, joined concatenations, base64
//!    (PowerShell `-EncodedCommand`, `base64 -d`). Depth is bounded.
//! 3. **Names**: metadata environment variables, request headers the services require, an HTTP
//!    method of `PUT`, and an HTTP request line with its `Host` header.
//!
//! Hosts found are classified by [`crate::host`], paths by the catalog; what is found is merged so
//! that one target read several ways is reported once with every encoding seen.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;

use crate::catalog::{Catalog, HeaderRole};
use crate::host::{classify, HostHit};
use crate::model::{Encoding, Encodings, Kind};
use crate::path::{best_match, normalize, NormPath};
use crate::text::{
    decode_escapes, has_percent_escape, is_ident, join_concatenations, percent_decode,
};
use crate::url::readings;
use crate::Target;

/// How [`Normalizer::find_as`] reads a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAs {
    /// A host name or address, with an optional port (`2852039166`, `metadata`, `[fd00:ec2::254]:80`).
    Host,
    /// A URL; without a scheme, `host[:port]/path` (as Defender's `RemoteUrl` often is).
    Url,
    /// Free text: a command line, a log message, a request.
    #[default]
    Text,
}

/// The value of a `Host` request header written in `text`, in any client's syntax: curl's
/// `-H "Host: x"`, wget's `--header=Host:x`, a raw request's `Host: x` line, Python's
/// `{'Host': 'x'}`, PowerShell's `@{Host='x'}` (the `=` form only inside a hashtable and quoted,
/// so a query string's `?host=x` is not a header).
fn host_header(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'h', b'H', &b[from..]).map(|i| from + i) {
        from = i + 1;
        if !b[i..]
            .get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"host"))
        {
            continue;
        }
        // The name stands alone: not `X-Forwarded-Host`, `hostname`, `localhost`.
        let mut k = i;
        while k > 0 && matches!(b[k - 1], b'\'' | b'"') {
            k -= 1;
        }
        let before = k.checked_sub(1).map(|k| b[k]);
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) {
            continue;
        }
        let mut j = i + 4;
        let skip = |j: &mut usize, set: &[u8]| {
            while *j < b.len() && set.contains(&b[*j]) {
                *j += 1;
            }
        };
        skip(&mut j, b"'\"");
        skip(&mut j, b" \t");
        let sep = b.get(j).copied();
        match sep {
            Some(b':') => {}
            Some(b'=') if matches!(before, Some(b'{' | b';' | b' ' | b'\t')) => {}
            _ => continue,
        }
        j += 1;
        skip(&mut j, b" \t");
        let quoted = b.get(j).is_some_and(|&c| c == b'\'' || c == b'"');
        if sep == Some(b'=') && !quoted {
            continue;
        }
        skip(&mut j, b"'\"");
        let end = b[j..]
            .iter()
            .position(|&c| {
                c.is_ascii_whitespace()
                    || matches!(c, b'\'' | b'"' | b';' | b'}' | b',' | b')' | b'\\')
            })
            .map_or(b.len(), |e| j + e);
        if end > j {
            return Some(&text[j..end]);
        }
    }
    None
}

/// How deep decoded layers may nest (percent inside base64 inside escapes...).
const MAX_DEPTH: u8 = 4;
/// Strings longer than this are read up to it; no command line or URL a client accepts is longer.
pub const MAX_INPUT: usize = 1 << 20;

/// Schemes that make a network request to the URL's host.
const SCHEMES: &[&str] = &[
    "http", "https", "ws", "wss", "ftp", "gopher", "dict", "ldap", "tftp",
];
/// Schemes the WHATWG URL Standard calls special: `\` is a slash and `//` is optional.
const SPECIAL: &[&str] = &["http", "https", "ws", "wss", "ftp"];

/// Programs whose non-option arguments are hosts or URLs.
const NETWORK_TOOLS: &[&str] = &[
    "curl",
    "wget",
    "wget2",
    "nc",
    "ncat",
    "netcat",
    "telnet",
    "socat",
    "http",
    "https",
    "xh",
    "aria2c",
    "lynx",
    "links",
    "w3m",
    "fetch",
    "ping",
    "lwp-request",
    "invoke-webrequest",
    "invoke-restmethod",
    "iwr",
    "irm",
    "bitsadmin",
    "certutil",
    "start-bitstransfer",
];
/// Library calls that take a URL, for scripts run inline (`python -c`, `powershell -c`, `node -e`).
const NETWORK_APIS: &[&str] = &[
    "webclient",
    "downloadstring",
    "downloadfile",
    "httpclient",
    "webrequest",
    "urlopen",
    "requests.",
    "urllib",
    "http.get",
    "http.request",
    "httpx.",
    "fetch(",
    "xmlhttprequest",
    "net::http",
    "open-uri",
    "file_get_contents",
    "curl_exec",
    "socket.connect",
    "tcpclient",
];
/// Options whose argument sends the request somewhere other than the URL's host.
const OVERRIDE_OPTIONS: &[&str] = &[
    "--resolve",
    "--connect-to",
    "-x",
    "--proxy",
    "--preproxy",
    "--socks4",
    "--socks5",
    "--socks5-hostname",
];

#[derive(Clone, Copy)]
struct HeaderRef {
    provider: usize,
    header: usize,
}

/// The normalizer for one catalog. Build it once and share it: it holds no state between calls.
#[derive(Debug, Clone)]
pub struct Normalizer<'c> {
    cat: &'c Catalog,
    env_ac: AhoCorasick,
    header_ac: AhoCorasick,
    header_refs: Vec<(usize, usize)>,
    /// Every variable name holds a `_`, so text without one names none (true for the built-in catalog).
    env_names_have_underscore: bool,
    /// Last labels of every catalog host name and wildcard-DNS suffix: a digit-free host whose last
    /// label is not one of these names no endpoint.
    name_tails: Vec<Vec<u8>>,
}

/// A finding before the provider is settled.
#[derive(Debug, Clone)]
struct Raw {
    endpoint: Option<usize>,
    provider: Option<usize>,
    port: Option<u16>,
    /// The port was written or logged, not implied by a scheme.
    port_explicit: bool,
    path: Option<String>,
    query: Option<String>,
    kind: Kind,
    enc: Encodings,
}

struct State<'t> {
    root: &'t str,
    raws: Vec<Raw>,
    put: bool,
    network_ctx: Option<bool>,
    /// A `Host` header in the text that names a metadata endpoint, with its port.
    host_header: Option<(HostHit, Option<u16>)>,
}

impl<'c> Normalizer<'c> {
    /// A normalizer over `cat`.
    pub fn new(cat: &'c Catalog) -> Self {
        let build = |pats: Vec<String>| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(pats)
                .unwrap_or_else(|e| panic!("catalog names are plain strings: {e}"))
        };
        let env_ac = build(cat.env_vars().iter().map(|v| v.name.clone()).collect());
        let env_names_have_underscore = cat.env_vars().iter().all(|v| v.name.contains('_'));
        let mut header_refs = Vec::new();
        let mut header_pats = Vec::new();
        for (pi, p) in cat.providers().iter().enumerate() {
            for (hi, h) in p.headers.iter().enumerate() {
                header_refs.push((pi, hi));
                header_pats.push(h.name.clone());
            }
        }
        let mut name_tails: Vec<Vec<u8>> = Vec::new();
        let names = cat
            .providers()
            .iter()
            .flat_map(|p| p.hosts.iter().map(String::as_str));
        for name in names.chain(cat.wildcard_dns().iter().map(|w| w.suffix.as_str())) {
            let tail = last_label(name.as_bytes()).to_vec();
            if !name_tails.contains(&tail) {
                name_tails.push(tail);
            }
        }
        Normalizer {
            cat,
            env_ac,
            header_ac: build(header_pats),
            header_refs,
            name_tails,
            env_names_have_underscore,
        }
    }

    /// The catalog this normalizer reads against.
    pub fn catalog(&self) -> &'c Catalog {
        self.cat
    }

    /// Every metadata target in `text`, the most severe first. Empty when there is none.
    pub fn find(&self, text: &str) -> Vec<Target<'c>> {
        let text = truncate(text, MAX_INPUT);
        let mut st = State {
            root: text,
            raws: Vec::new(),
            put: false,
            network_ctx: None,
            host_header: None,
        };
        self.scan_text(text, 0, Encodings::NONE, &mut st);
        if st.raws.is_empty() {
            return Vec::new();
        }
        let headers = self.headers_in(text);
        self.finish(st, &headers)
    }

    /// Every metadata target in `value`, read as `how` says. A record's typed fields know what
    /// they hold: a DNS query name, a destination host name or address, an HTTP `Host` or a
    /// proxy's `CONNECT` target is a host, so a bare number there (`2852039166`, `0xa9fea9fe`)
    /// is an address in inet_aton's reading, and a single label (`metadata`) a name; free text
    /// calls such weak forms a host only where a port, a path or a network client says so.
    pub fn find_as(&self, value: &str, how: ReadAs) -> Vec<Target<'c>> {
        match how {
            ReadAs::Text => self.find(value),
            ReadAs::Url if value.contains("://") => self.find(value),
            ReadAs::Url if value.trim().contains(['/', '?']) => {
                self.find(&format!("http://{}", value.trim()))
            }
            ReadAs::Url | ReadAs::Host => self.find_host(value),
        }
    }

    fn find_host(&self, value: &str) -> Vec<Target<'c>> {
        let value = truncate(value.trim(), MAX_INPUT);
        let mut st = State {
            root: value,
            raws: Vec::new(),
            put: false,
            network_ctx: Some(true),
            host_header: None,
        };
        if let Some(hit) = classify(self.cat, value) {
            self.host_target(hit, None, false, "", Encodings::NONE, &mut st);
        } else {
            for r in readings(value) {
                if !(r.rest.is_empty() || r.rest == "/") {
                    continue;
                }
                if let Some(hit) = classify(self.cat, r.host) {
                    self.host_target(hit, r.port, r.port.is_some(), "", r.enc, &mut st);
                    break;
                }
            }
        }
        if st.raws.is_empty() {
            return Vec::new();
        }
        self.finish(st, &[])
    }

    /// Whether `text` holds any metadata target. Same answer as `!find(text).is_empty()`.
    pub fn is_target(&self, text: &str) -> bool {
        !self.find(text).is_empty()
    }

    fn scan_text(&self, text: &str, depth: u8, inh: Encodings, st: &mut State<'_>) {
        self.request_line(text, inh, st);
        if st.host_header.is_none() {
            st.host_header = host_header(text).and_then(|value| {
                readings(value)
                    .into_iter()
                    .find_map(|r| classify(self.cat, r.host).map(|h| (h, r.port)))
            });
        }
        let mut prev = "";
        let mut seen = 0u16;
        let mut encoded_command = false;
        for (tok, mask) in tokens(text) {
            seen |= mask;
            if is_put_request(prev, tok) {
                st.put = true;
            }
            encoded_command |= is_encoded_command_flag(tok);
            self.scan_token(tok, mask, prev, depth, inh, st);
            prev = tok;
        }
        if seen & C_UNDERSCORE != 0 || !self.env_names_have_underscore {
            self.env_vars_in(text, inh, st);
        }
        if depth >= MAX_DEPTH {
            return;
        }
        if seen & (C_BACKSLASH | C_DOLLAR) != 0 {
            if let Some(d) = decode_escapes(text) {
                self.scan_text(
                    &d,
                    depth + 1,
                    inh.union(Encodings::of(Encoding::Escape)),
                    st,
                );
            }
        }
        if let Some(j) = join_concatenations(text) {
            self.scan_text(
                &j,
                depth + 1,
                inh.union(Encodings::of(Encoding::Concatenation)),
                st,
            );
        }
        let base64_word = seen & C_DIGIT != 0 && has_base64_word(text.as_bytes());
        for decoded in base64_layers(text, encoded_command, base64_word) {
            self.scan_text(
                &decoded,
                depth + 1,
                inh.union(Encodings::of(Encoding::Base64)),
                st,
            );
        }
    }

    /// Metadata environment variables named in `text` (whole words), each a target of its own.
    fn env_vars_in(&self, text: &str, inh: Encodings, st: &mut State<'_>) {
        let vars = self.cat.env_vars();
        let b = text.as_bytes();
        for m in self.env_ac.find_iter(text) {
            let before = m.start().checked_sub(1).map(|i| b[i]);
            let after = b.get(m.end()).copied();
            if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
                continue;
            }
            let var = &vars[m.pattern().as_usize()];
            st.raws.push(Raw {
                endpoint: var.endpoint,
                provider: Some(var.provider_index()),
                port: None,
                port_explicit: false,
                path: None,
                query: None,
                kind: var.kind,
                enc: inh.union(Encodings::of(Encoding::EnvVar)),
            });
        }
    }

    fn scan_token(
        &self,
        tok: &str,
        mask: u16,
        prev: &str,
        depth: u8,
        inh: Encodings,
        st: &mut State<'_>,
    ) {
        if tok.len() < 3 {
            return;
        }
        let before = st.raws.len();
        self.scan_token_raw(tok, mask, prev, inh, st);
        // A token that reads as a target as it is needs no decoding (percent-encoded query values
        // are ordinary); one that does not may hide one behind percent-encoding.
        if st.raws.len() == before
            && depth < MAX_DEPTH
            && mask & C_PERCENT != 0
            && has_percent_escape(tok.as_bytes())
        {
            if let Some(d) = percent_decode(tok) {
                let e = if inh.contains(Encoding::Percent) {
                    Encoding::DoublePercent
                } else {
                    Encoding::Percent
                };
                self.scan_text(&d, depth + 1, inh.union(Encodings::of(e)), st);
            }
        }
    }

    fn scan_token_raw(&self, tok: &str, mask: u16, prev: &str, inh: Encodings, st: &mut State<'_>) {
        let b = tok.as_bytes();
        let mut urls = 0usize;
        // Tokens are short: a plain scan beats memchr's set-up cost here.
        let colons = b
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == b':')
            .map(|(i, _)| i);
        let colons = colons.take(if mask & C_COLON != 0 { usize::MAX } else { 0 });
        for colon in colons {
            let mut start = colon;
            while start > 0
                && (b[start - 1].is_ascii_alphanumeric()
                    || matches!(b[start - 1], b'+' | b'.' | b'-'))
            {
                start -= 1;
            }
            while start < colon && !b[start].is_ascii_alphabetic() {
                start += 1;
            }
            let scheme = &tok[start..colon];
            let Some(&scheme) = SCHEMES.iter().find(|s| s.eq_ignore_ascii_case(scheme)) else {
                continue;
            };
            let after = &tok[colon + 1..];
            let slashes = after
                .bytes()
                .take_while(|&c| c == b'/' || c == b'\\')
                .count();
            let special = SPECIAL.contains(&scheme);
            if !special && !after.starts_with("//") {
                continue;
            }
            let mut enc = inh;
            if urls > 0 {
                enc.insert(Encoding::NestedUrl);
            }
            if after[..slashes].contains('\\') {
                enc.insert(Encoding::Backslash);
            }
            urls += 1;
            let authority = &after[slashes..];
            if is_variable(authority) {
                let rest = authority.find('/').map_or("", |i| &authority[i..]);
                self.variable_host(rest, enc.union(Encodings::of(Encoding::VariableHost)), st);
                continue;
            }
            let default_port = match scheme {
                "http" | "ws" => Some(80),
                "https" | "wss" => Some(443),
                _ => None,
            };
            for r in readings(authority) {
                // `jar:http://host!/entry`: the `!` ends the inner URL.
                let host = r.host.strip_suffix('!').unwrap_or(r.host);
                if let Some(hit) = classify(self.cat, host) {
                    let rest = if scheme == "gopher" {
                        Cow::Owned(gopher_request_path(r.rest))
                    } else {
                        Cow::Borrowed(r.rest)
                    };
                    let mut e = enc.union(r.enc);
                    if scheme == "gopher" {
                        e.insert(Encoding::Gopher);
                    }
                    let port = r.port.or(default_port);
                    self.host_target(hit, port, r.port.is_some(), &rest, e, st);
                } else if let Some((hit, port)) = st.host_header.filter(|_| scheme != "gopher") {
                    // Sent elsewhere with the service's name in `Host`: a reverse proxy or virtual
                    // host forwards the URL's path to the service.
                    let e = enc.union(Encodings::of(Encoding::HostHeader));
                    let explicit = port.is_some();
                    self.host_target(hit, port.or(default_port), explicit, r.rest, e, st);
                } else {
                    self.address_in_path(r.rest, enc, st);
                }
            }
        }
        if urls > 0 {
            return;
        }
        // Scheme-less: `key=value` and `--opt=value` carry the host after the last `=`.
        let mut piece = tok;
        if mask & C_EQUALS != 0 {
            if let Some(eq) = piece.rfind('=') {
                if !piece[..eq].contains('/') {
                    piece = &piece[eq + 1..];
                }
            }
        }
        if !self.may_be_host(piece, mask) {
            return;
        }
        let pb = piece.as_bytes();
        let dev = if mask & C_SLASH != 0 {
            pb.iter()
                .enumerate()
                .filter(|&(_, &c)| c == b'/')
                .map(|(i, _)| i)
                .find(|&i| pb[i..].starts_with(b"/dev/tcp/") || pb[i..].starts_with(b"/dev/udp/"))
        } else {
            None
        };
        if let Some(i) = dev {
            // bash's /dev/tcp/HOST/PORT: an explicit connection, weak host forms included.
            let mut parts = piece[i + "/dev/tcp/".len()..].splitn(2, '/');
            let host = parts.next().unwrap_or("");
            let port = parts.next().and_then(|p| p.parse().ok());
            if let Some(hit) = classify(self.cat, host) {
                self.host_target(hit, port, true, "", inh, st);
            }
            return;
        }
        let piece = piece.strip_prefix("//").unwrap_or(piece);
        let over = OVERRIDE_OPTIONS.iter().any(|o| {
            prev.eq_ignore_ascii_case(o)
                || tok.len() > o.len()
                    && tok.as_bytes()[..o.len()].eq_ignore_ascii_case(o.as_bytes())
                    && tok.as_bytes()[o.len()] == b'='
        });
        let mut base = inh;
        if over {
            base.insert(Encoding::ConnectOverride);
        }
        let host_end = piece.find(['/', '?', '#']).unwrap_or(piece.len());
        let colons = piece[..host_end].bytes().filter(|&c| c == b':').count();
        if colons >= 2 {
            if let Some(hit) = classify(self.cat, &piece[..host_end]) {
                self.weak_or_strong(hit, None, &piece[host_end..], base, st);
                return;
            }
        }
        let mut found = false;
        for mut r in readings(piece) {
            if r.rest.starts_with('\\') {
                // Without a scheme nothing reads `\` as a slash (curl and wget do not): it ends the
                // host and starts no path. In raw log lines it is usually an escape (`\"`, `\r\n`).
                r.rest = "";
                r.enc = r.enc.without(Encoding::Backslash);
            }
            let Some(hit) = classify(self.cat, r.host) else {
                continue;
            };
            let hostlike = r.port.is_some() || r.rest.starts_with('/') || r.rest.starts_with('$');
            if hit.strong || hostlike || (!hit.label && (over || self.network_ctx(st))) {
                self.host_target(hit, r.port, true, r.rest, base.union(r.enc), st);
                found = true;
            }
        }
        if !found && colons >= 2 {
            for part in piece[..host_end].split(':') {
                let part = part.trim_start_matches('[').trim_end_matches(']');
                if let Some(hit) = classify(self.cat, part) {
                    self.weak_or_strong(hit, None, "", base, st);
                }
            }
        }
    }

    /// A necessary condition for a scheme-less token to name an endpoint, cheap enough to run on
    /// every token: its host part starts like an address (digit, `[`, `:`, `%`) or holds a digit,
    /// `%`, non-ASCII text or two colons, or its last label ends some catalog host name.
    /// `mask` is the token's byte classes ([`C_DIGIT`] ...), a superset of the piece's.
    fn may_be_host(&self, piece: &str, mask: u16) -> bool {
        if mask & (C_DIGIT | C_PERCENT | C_NONASCII | C_COLON | C_BRACKET) == 0 {
            // Letters and punctuation only: a catalog host name or nothing.
            let b = piece.as_bytes();
            let end = b
                .iter()
                .position(|c| matches!(c, b'/' | b'?' | b'#' | b'$' | b'`' | b'\\'))
                .unwrap_or(b.len());
            let tail = last_label(&b[..end]);
            return self.name_tails.iter().any(|t| t.eq_ignore_ascii_case(tail));
        }
        if mask & C_SLASH != 0 && has_dev_path(piece.as_bytes()) {
            return true; // bash's /dev/tcp/HOST/PORT, whatever precedes it
        }
        let b = piece.as_bytes();
        let end = b
            .iter()
            .position(|c| matches!(c, b'/' | b'?' | b'#' | b'$' | b'`' | b'\\'))
            .unwrap_or(b.len());
        let host = &b[..end];
        let host = match host.iter().rposition(|&c| c == b'@') {
            Some(i) => &host[i + 1..],
            None => host,
        };
        let Some(&first) = host.first() else {
            return false;
        };
        if matches!(first, b'[' | b':' | b'%') || host.iter().any(|&c| c == b'%' || c >= 0x80) {
            return true; // IPv6 literal, percent-encoding, IDNA
        }
        if host.iter().filter(|&&c| c == b':').nth(1).is_some() {
            return true; // unbracketed IPv6, `--resolve h:p:addr`, socat `TCP:addr:port`
        }
        let name = &host[..host.iter().position(|&c| c == b':').unwrap_or(host.len())];
        if first.is_ascii_digit()
            && name
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || matches!(c, b'x' | b'X' | b'.'))
        {
            return true; // every inet_aton and WHATWG IPv4 form
        }
        let separators = name.iter().filter(|&&c| c == b'.' || c == b'-').count();
        if separators >= 3 && name.iter().any(u8::is_ascii_digit) {
            return true; // an address embedded in labels: 169.254.169.254.example, a-169-254-169-254.x
        }
        let tail = last_label(host);
        self.name_tails.iter().any(|t| t.eq_ignore_ascii_case(tail))
    }

    /// A metadata address in the path of a URL to another host: path-style proxies
    /// (`https://app/proxy/169.254.169.254/latest/meta-data/`) and redirectors
    /// (`http://redirector/redir-http-169.254.169.254:80-`). A segment that is a host in a strong
    /// form counts with the path after it; a catalog address written canonically anywhere in a
    /// segment counts without one.
    fn address_in_path(&self, rest: &str, enc: Encodings, st: &mut State<'_>) {
        let path = rest.split(['?', '#']).next().unwrap_or("");
        if !path.bytes().any(|c| c.is_ascii_digit() || c >= 0x80)
            && !path.split('/').any(|seg| self.may_be_host(seg, u16::MAX))
        {
            return;
        }
        let enc = enc.union(Encodings::of(Encoding::NestedUrl));
        let mut offset = 0;
        for seg in path.split('/') {
            let after = &path[(offset + seg.len()).min(path.len())..];
            offset += seg.len() + 1;
            if seg.is_empty() {
                continue;
            }
            if let Some(hit) = self
                .may_be_host(seg, u16::MAX)
                .then(|| classify(self.cat, seg))
                .flatten()
                .filter(|h| h.strong)
            {
                self.host_target(hit, None, false, after, enc, st);
                return;
            }
            // Runs of digits and dots compared with the catalog's addresses as written canonically.
            let b = seg.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if !b[i].is_ascii_digit() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let run = &seg[start..i];
                if let Some((_, endpoint)) = self.cat.v4_texts().find(|(text, _)| *text == run) {
                    let hit = HostHit {
                        endpoint,
                        enc: Encodings::of(Encoding::EmbeddedAddress),
                        strong: true,
                        label: false,
                    };
                    self.host_target(hit, None, false, "", enc, st);
                    return;
                }
            }
        }
    }

    fn weak_or_strong(
        &self,
        hit: HostHit,
        port: Option<u16>,
        rest: &str,
        enc: Encodings,
        st: &mut State<'_>,
    ) {
        if hit.strong
            || !hit.label && (enc.contains(Encoding::ConnectOverride) || self.network_ctx(st))
        {
            self.host_target(hit, port, true, rest, enc, st);
        }
    }

    /// A host that names an endpoint, with the port (`explicit` when written, not implied by a
    /// scheme) and what follows the host.
    fn host_target(
        &self,
        hit: HostHit,
        port: Option<u16>,
        explicit: bool,
        rest: &str,
        enc: Encodings,
        st: &mut State<'_>,
    ) {
        let endpoint = self.cat.endpoint_at(hit.endpoint);
        let serves = |pi: &usize| self.cat.provider_at(*pi).serves(port, explicit);
        if !endpoint.providers.iter().any(serves) {
            return;
        }
        let mut enc = enc.union(hit.enc);
        let mut raw = Raw {
            endpoint: Some(hit.endpoint),
            provider: None,
            port,
            port_explicit: explicit,
            path: None,
            query: None,
            kind: Kind::Other,
            enc,
        };
        if let Some(var) = rest.strip_prefix('$') {
            // The path is a shell variable: `169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
            let name: String = var
                .trim_start_matches('{')
                .bytes()
                .take_while(|&c| is_ident(c))
                .map(char::from)
                .collect();
            if let Some(v) = self
                .cat
                .env_vars()
                .iter()
                .find(|v| v.relative && v.name.eq_ignore_ascii_case(&name))
            {
                raw.provider = Some(v.provider_index());
                raw.kind = v.kind;
                raw.path = Some(format!("${name}"));
                enc.insert(Encoding::EnvVar);
                raw.enc = enc;
            }
            st.raws.push(raw);
            return;
        }
        if let Some(path) = normalize(rest) {
            if let Some((pi, pat)) = best_match(
                self.cat,
                endpoint.providers.iter().copied().filter(serves),
                &path,
                false,
            ) {
                raw.provider = Some(pi);
                raw.kind = pat.kind;
            }
            raw.enc = enc.union(path.enc);
            raw.path = Some(path.path);
            raw.query = path.query;
        }
        st.raws.push(raw);
    }

    /// A path with no usable host: evidence only when the path is one only metadata services serve.
    fn variable_host(&self, rest: &str, enc: Encodings, st: &mut State<'_>) {
        let Some(path) = normalize(rest) else { return };
        self.path_only(path, enc, st);
    }

    fn path_only(&self, path: NormPath, enc: Encodings, st: &mut State<'_>) {
        let all = 0..self.cat.providers().len();
        if let Some((pi, pat)) = best_match(self.cat, all, &path, true) {
            st.raws.push(Raw {
                endpoint: None,
                provider: Some(pi),
                port: None,
                port_explicit: false,
                kind: pat.kind,
                enc: enc.union(path.enc),
                path: Some(path.path),
                query: path.query,
            });
        }
    }

    fn request_line(&self, text: &str, inh: Encodings, st: &mut State<'_>) {
        const METHODS: &[&str] = &["GET", "PUT", "POST", "HEAD", "DELETE", "OPTIONS", "PATCH"];
        if !text.as_bytes().first().is_some_and(u8::is_ascii_uppercase) {
            return;
        }
        let first = text.lines().next().unwrap_or("");
        let mut parts = first.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        if !METHODS.contains(&method) || !target.starts_with('/') {
            return;
        }
        if parts.next().is_some_and(|v| !v.starts_with("HTTP/")) {
            return;
        }
        if method == "PUT" {
            st.put = true;
        }
        let host = text.lines().skip(1).find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("host")
                .then(|| value.trim())
        });
        match host {
            Some(h) => {
                for r in readings(h) {
                    if let Some(hit) = classify(self.cat, r.host) {
                        let port = r.port.or(Some(80));
                        let explicit = r.port.is_some();
                        self.host_target(hit, port, explicit, target, inh.union(r.enc), st);
                    }
                }
            }
            None => {
                if let Some(path) = normalize(target) {
                    self.path_only(path, inh.union(Encodings::of(Encoding::PathOnly)), st);
                }
            }
        }
    }

    fn network_ctx(&self, st: &mut State<'_>) -> bool {
        if let Some(v) = st.network_ctx {
            return v;
        }
        let lower = st.root.to_ascii_lowercase();
        let tool = tokens(&lower).any(|(t, _)| {
            let base = t.rsplit(['/', '\\']).next().unwrap_or(t);
            let base = base.strip_suffix(".exe").unwrap_or(base);
            NETWORK_TOOLS.contains(&base)
        });
        let v = tool || NETWORK_APIS.iter().any(|api| lower.contains(api));
        st.network_ctx = Some(v);
        v
    }

    /// Headers the services read, present with header syntax (`Name: value`, `Name=value`,
    /// `"Name"="value"`) and, where the catalog fixes a value, that value.
    fn headers_in(&self, text: &str) -> Vec<HeaderRef> {
        let b = text.as_bytes();
        let mut found: Vec<HeaderRef> = Vec::new();
        for m in self.header_ac.find_iter(text) {
            if m.start() > 0 && (is_ident(b[m.start() - 1]) || b[m.start() - 1] == b'-') {
                continue;
            }
            let mut i = m.end();
            let skip = |i: &mut usize| {
                while *i < b.len() && matches!(b[*i], b' ' | b'"' | b'\'') {
                    *i += 1;
                }
            };
            skip(&mut i);
            if i >= b.len() || !matches!(b[i], b':' | b'=') {
                continue;
            }
            i += 1;
            skip(&mut i);
            let (pi, hi) = self.header_refs[m.pattern().as_usize()];
            let spec = &self.cat.provider_at(pi).headers[hi];
            if let Some(want) = &spec.value {
                let have = &b[i..(i + want.len()).min(b.len())];
                if !have.eq_ignore_ascii_case(want.as_bytes()) {
                    continue;
                }
            }
            found.push(HeaderRef {
                provider: pi,
                header: hi,
            });
        }
        found
    }

    fn finish(&self, st: State<'_>, headers: &[HeaderRef]) -> Vec<Target<'c>> {
        let cat = self.cat;
        // A PUT in an input that also asks for a token belongs to the token request (IMDSv2:
        // PUT the token, then GET with it); otherwise to whatever the input requests.
        let has_token_request = st.raws.iter().any(|r| r.kind == Kind::Token);
        let method_of =
            |kind: Kind| (st.put && (!has_token_request || kind == Kind::Token)).then_some("PUT");
        let mut header_names: Vec<&'c str> = Vec::new();
        for h in headers {
            let name = cat.provider_at(h.provider).headers[h.header].name.as_str();
            if !header_names.contains(&name) {
                header_names.push(name);
            }
        }
        let mut merged: Vec<Raw> = Vec::new();
        for mut raw in st.raws {
            if raw.provider.is_none() {
                raw.provider = raw.endpoint.and_then(|ei| {
                    self.provider_by_context(ei, raw.port, raw.port_explicit, headers)
                });
            }
            if let Some(m) = merged.iter_mut().find(|m| {
                m.endpoint == raw.endpoint
                    && m.provider == raw.provider
                    && m.path == raw.path
                    && m.kind == raw.kind
            }) {
                m.enc = m.enc.union(raw.enc);
                m.port = m.port.or(raw.port);
                continue;
            }
            merged.push(raw);
        }
        // A variable read on its own says less than a request that used it: fold it into a request
        // of the same provider and kind when there is one.
        let mut i = 0;
        while i < merged.len() {
            let r = &merged[i];
            // A `Host` header's value read as a host on its own says less than the request it
            // names the service for.
            if r.path.is_none()
                && r.endpoint.is_some()
                && merged.iter().any(|m| {
                    m.endpoint == r.endpoint
                        && m.path.is_some()
                        && m.enc.contains(Encoding::HostHeader)
                })
            {
                merged.remove(i);
                continue;
            }
            if r.path.is_none() && r.enc.contains(Encoding::EnvVar) {
                if let Some(j) = (0..merged.len()).find(|&j| {
                    j != i
                        && merged[j].provider == r.provider
                        && merged[j].kind >= r.kind
                        && merged[j].path.is_some()
                }) {
                    let enc = r.enc;
                    merged[j].enc = merged[j].enc.union(enc);
                    merged.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        let mut out: Vec<Target<'c>> = merged
            .into_iter()
            .map(|r| Target {
                provider: r.provider.map(|p| cat.provider_at(p)),
                endpoint: r.endpoint.map(|e| cat.endpoint_at(e)),
                port: r.port,
                path: r.path,
                query: r.query,
                kind: r.kind,
                encoding: r.enc,
                headers: header_names.clone(),
                method: method_of(r.kind),
            })
            .collect();
        out.sort_by(|a, b| {
            b.kind
                .cmp(&a.kind)
                .then(b.encoding.len().cmp(&a.encoding.len()))
                .then(b.endpoint.is_some().cmp(&a.endpoint.is_some()))
        });
        out
    }

    /// The provider of a request without a telling path: the one whose required header it carries,
    /// else the only one serving the endpoint on that port.
    fn provider_by_context(
        &self,
        ei: usize,
        port: Option<u16>,
        explicit: bool,
        headers: &[HeaderRef],
    ) -> Option<usize> {
        let cat = self.cat;
        let serving: Vec<usize> = cat
            .endpoint_at(ei)
            .providers
            .iter()
            .copied()
            .filter(|&pi| cat.provider_at(pi).serves(port, explicit))
            .collect();
        for h in headers {
            let spec = &cat.provider_at(h.provider).headers[h.header];
            if serving.contains(&h.provider)
                && (spec.role == HeaderRole::Required || spec.role == HeaderRole::Token)
            {
                return Some(h.provider);
            }
        }
        (serving.len() == 1).then(|| serving[0])
    }
}

/// Bytes that end a token: ASCII white space, quotes and shell punctuation. Braces, brackets, `&`,
/// `=` and `$` stay inside tokens: they belong to `${VAR}`, `[v6]`, query strings and `--opt=value`.
const DELIMITERS: [bool; 256] = {
    let mut t = [false; 256];
    let set = b" \t\n\r\x0b\x0c\"'`<>|;(),\0";
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
};

/// Splits text into tokens at [`DELIMITERS`]. Every delimiter is ASCII, so each token is a valid
/// `&str` slice.
fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, pos: 0 }
}

struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

/// Byte classes a token holds ([`Tokens`] yields them with each token).
const C_COLON: u16 = 1;
const C_PERCENT: u16 = 1 << 1;
const C_EQUALS: u16 = 1 << 2;
const C_SLASH: u16 = 1 << 3;
const C_DIGIT: u16 = 1 << 4;
const C_NONASCII: u16 = 1 << 5;
const C_BRACKET: u16 = 1 << 6;
const C_UNDERSCORE: u16 = 1 << 7;
const C_BACKSLASH: u16 = 1 << 8;
const C_DOLLAR: u16 = 1 << 9;

const CLASSES: [u16; 256] = {
    let mut t = [0u16; 256];
    t[b':' as usize] = C_COLON;
    t[b'%' as usize] = C_PERCENT;
    t[b'=' as usize] = C_EQUALS;
    t[b'/' as usize] = C_SLASH;
    t[b'[' as usize] = C_BRACKET;
    t[b'_' as usize] = C_UNDERSCORE;
    t[b'\\' as usize] = C_BACKSLASH;
    t[b'$' as usize] = C_DOLLAR;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = C_DIGIT;
        d += 1;
    }
    let mut h = 0x80;
    while h < 256 {
        t[h] = C_NONASCII;
        h += 1;
    }
    t
};

/// Yields each token with its byte classes, gathered while it is split off so that later steps
/// can skip work for bytes that are not there.
impl<'a> Iterator for Tokens<'a> {
    type Item = (&'a str, u16);

    fn next(&mut self) -> Option<(&'a str, u16)> {
        let b = self.text.as_bytes();
        while self.pos < b.len() && DELIMITERS[b[self.pos] as usize] {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        let mut mask = 0u16;
        while self.pos < b.len() && !DELIMITERS[b[self.pos] as usize] {
            mask |= CLASSES[b[self.pos] as usize];
            self.pos += 1;
        }
        Some((&self.text[start..self.pos], mask))
    }
}

/// The last label of a host part, lowercase comparison aside: `metadata.google.internal:80` → `internal`.
fn last_label(host: &[u8]) -> &[u8] {
    let host = match host.iter().rposition(|&c| c == b'@') {
        Some(at) => &host[at + 1..],
        None => host,
    };
    let name = &host[..host.iter().position(|&c| c == b':').unwrap_or(host.len())];
    let name = name.strip_suffix(b".").unwrap_or(name);
    match name.iter().rposition(|&c| c == b'.') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// `-X PUT`, `-XPUT`, `--request PUT`, `--request=PUT` (curl), `--method=PUT` (wget),
/// `-Method PUT` (PowerShell).
fn is_put_request(prev: &str, tok: &str) -> bool {
    if tok.len() == 3 {
        return tok.eq_ignore_ascii_case("put")
            && ["-x", "--request", "-method", "--method"]
                .iter()
                .any(|o| prev.eq_ignore_ascii_case(o));
    }
    tok.starts_with('-')
        && ["-xput", "--request=put", "--method=put"]
            .iter()
            .any(|o| tok.eq_ignore_ascii_case(o))
}

/// Whether `b` holds `/dev/` (bash's `/dev/tcp/HOST/PORT`).
fn has_dev_path(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'/' && b[i..].starts_with(b"/dev/"))
}

/// Whether an authority starts with a variable or template instead of a host.
fn is_variable(authority: &str) -> bool {
    let b = authority.as_bytes();
    match b.first() {
        Some(b'$') => b
            .get(1)
            .is_some_and(|&c| c == b'{' || c == b'(' || c.is_ascii_alphabetic() || c == b'_'),
        Some(b'%') => {
            b.get(1)
                .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_')
                && !has_percent_escape(&b[..3.min(b.len())])
        }
        Some(b'{') => b.get(1) == Some(&b'{'),
        _ => false,
    }
}

/// The path of the HTTP request a gopher URL smuggles: `/_GET%20/latest/meta-data/%20HTTP/1.1...`.
fn gopher_request_path(rest: &str) -> String {
    // `/`, a one-character item type (`_` by convention; any character works), then the payload.
    let Some(payload) = rest.strip_prefix('/').and_then(|p| p.get(1..)) else {
        return rest.to_owned();
    };
    let payload = percent_decode(payload).unwrap_or_else(|| payload.to_owned());
    let line = payload.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(_method), Some(target)) if target.starts_with('/') => target.to_owned(),
        _ => rest.to_owned(),
    }
}

/// Text hidden in base64: the argument of PowerShell's `-EncodedCommand` (any abbreviation,
/// UTF-16LE) when such a flag is present, and, where the text decodes base64 itself
/// (`base64 -d`, `FromBase64String`), any long base64 token.
fn base64_layers(text: &str, encoded_command: bool, decodes: bool) -> Vec<String> {
    if !encoded_command && !decodes {
        return Vec::new();
    }
    let toks: Vec<&str> = tokens(text).map(|(t, _)| t).collect();
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let candidate = if encoded_command && is_encoded_command_flag(t) {
            toks.get(i + 1).copied()
        } else if decodes && t.len() >= 12 {
            Some(*t)
        } else {
            None
        };
        if let Some(decoded) = candidate.and_then(decode_base64_text) {
            out.push(decoded);
        }
    }
    out
}

fn is_encoded_command_flag(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < 2 || b.len() > 15 || !matches!(b[0], b'-' | b'/') || !matches!(b[1], b'e' | b'E') {
        return false;
    }
    let rest = &b[1..];
    rest.eq_ignore_ascii_case(b"ec")
        || b"encodedcommand"[..rest.len().min(14)].eq_ignore_ascii_case(rest) && rest.len() <= 14
}

/// Whether the text says `base64` (any case), as `base64 -d` and `FromBase64String` do.
fn has_base64_word(b: &[u8]) -> bool {
    memchr::memchr_iter(b'6', b)
        .any(|i| i >= 4 && b.get(i + 1) == Some(&b'4') && b[i - 4..i].eq_ignore_ascii_case(b"base"))
}

fn decode_base64_text(s: &str) -> Option<String> {
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_'))
    {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(s).ok())?;
    if bytes.len() >= 2
        && bytes.len() % 2 == 0
        && bytes.iter().skip(1).step_by(2).filter(|&&c| c == 0).count() * 2 >= bytes.len() / 2
    {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16(&units).ok();
    }
    let text = String::from_utf8(bytes).ok()?;
    text.chars()
        .all(|c| !c.is_control() || c.is_whitespace())
        .then_some(text)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
