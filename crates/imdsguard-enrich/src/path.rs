//! Executable paths: one normalized spelling for matching, and the class of place a binary runs
//! from (the "unusual locations" of the Suspicious IMDS API Request rule).

/// Lowercase, `/` separators, without `\\?\`, `\device\harddiskvolumeN` or a drive letter, without a
/// ` (deleted)` suffix or a prelink `;hex` suffix, always starting with `/`.
///
/// `C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe` and
/// `\device\harddiskvolume2\program files\amazon\ssm\amazon-ssm-agent.exe` both become
/// `/program files/amazon/ssm/amazon-ssm-agent.exe`. Dropping the volume makes a path on `D:`
/// match one written for `C:`; writing to `D:\Program Files` needs the same rights as to `C:`.
pub fn normalize_path(p: &str) -> String {
    let mut s = strip_deleted(p.trim())
        .to_ascii_lowercase()
        .replace('\\', "/");
    for prefix in ["//?/", "/??/", "//./"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_owned();
        }
    }
    if let Some(rest) = s.strip_prefix("/device/harddiskvolume") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            s = rest[digits..].to_owned();
        }
    }
    let b = s.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        s.drain(..2);
    }
    if !s.starts_with('/') {
        s.insert(0, '/');
    }
    s
}

/// The path without a Linux ` (deleted)` suffix and the `;5f3a9c1e` suffix prelink leaves on a
/// replaced binary (`/usr/bin/python2.7;58d1ccfb (deleted)`).
pub fn strip_deleted(p: &str) -> &str {
    let p = p.strip_suffix(" (deleted)").unwrap_or(p);
    match p.rsplit_once(';') {
        Some((head, tail)) if tail.len() == 8 && tail.bytes().all(|c| c.is_ascii_hexdigit()) => {
            head
        }
        _ => p,
    }
}

/// The last component of a normalized path.
pub fn basename(norm: &str) -> &str {
    norm.rsplit('/').next().unwrap_or(norm)
}

/// Where a binary runs from, as far as suspicion goes. Ordered: the first that applies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// The binary was deleted after it started, or runs from memory (`memfd:`).
    Deleted,
    /// `/dev/shm`, `/run/shm`: memory-backed and world-writable.
    SharedMemory,
    /// A temporary directory: `/tmp`, `/var/tmp`, `%TEMP%`, `C:\Windows\Temp`.
    Temp,
    /// A downloads folder.
    Downloads,
    /// Another place users can write: home directories, `C:\Users\Public`, `AppData`,
    /// `C:\ProgramData`, web roots, `C:\Windows\Tasks`, the recycle bin.
    UserWritable,
    /// Operating-system and package-managed directories.
    System,
    /// Anything else.
    Other,
}

impl Location {
    /// Every value, in output order.
    pub const ALL: &'static [Location] = &[
        Location::Deleted,
        Location::SharedMemory,
        Location::Temp,
        Location::Downloads,
        Location::UserWritable,
        Location::System,
        Location::Other,
    ];

    /// The name rules and outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Deleted => "deleted",
            Location::SharedMemory => "shared-memory",
            Location::Temp => "temp",
            Location::Downloads => "downloads",
            Location::UserWritable => "user-writable",
            Location::System => "system",
            Location::Other => "other",
        }
    }

    /// Where the binary runs from, in words, for alert reasons.
    pub fn describe(self) -> &'static str {
        match self {
            Location::Deleted => "a deleted or memory-only binary",
            Location::SharedMemory => "shared memory (/dev/shm)",
            Location::Temp => "a temporary directory",
            Location::Downloads => "a downloads folder",
            Location::UserWritable => "a user-writable directory",
            Location::System => "a system directory",
            Location::Other => "an ordinary directory",
        }
    }

    /// Substrings of an executable path (matched without regard to case, in their Windows and
    /// Linux spellings) that put it in an unusual class (deleted, shared memory, temp, downloads,
    /// user-writable), for rule exports that cannot call [`Location::of`].
    pub fn unusual_path_markers() -> &'static [&'static str] {
        &[
            " (deleted)",
            "memfd:",
            "/dev/shm/",
            "/run/shm/",
            "/tmp/",
            "/var/tmp/",
            "\\temp\\",
            "\\tmp\\",
            "/temp/",
            "\\downloads\\",
            "/downloads/",
            "/home/",
            "/root/",
            "/var/www/",
            "/srv/",
            "/run/user/",
            "\\users\\",
            "\\programdata\\",
            "\\windows\\tasks\\",
            "\\windows\\tracing\\",
            "\\perflogs\\",
            "\\$recycle.bin\\",
            "\\appdata\\",
        ]
    }

    /// Classifies an executable path as written.
    pub fn of(image: &str) -> Location {
        let raw = image.trim();
        let lower = raw.to_ascii_lowercase();
        if lower.ends_with(" (deleted)")
            || lower.starts_with("memfd:")
            || lower.starts_with("/memfd:")
        {
            return Location::Deleted;
        }
        let n = normalize_path(raw);
        let segs: Vec<&str> = n.split('/').filter(|s| !s.is_empty()).collect();
        let dirs = &segs[..segs.len().saturating_sub(1)];
        let starts = |p: &[&str]| dirs.len() >= p.len() && dirs[..p.len()] == *p;
        if starts(&["dev", "shm"]) || starts(&["run", "shm"]) {
            return Location::SharedMemory;
        }
        if starts(&["tmp"])
            || starts(&["var", "tmp"])
            || dirs.iter().any(|d| matches!(*d, "temp" | "tmp"))
        {
            return Location::Temp;
        }
        if dirs.contains(&"downloads") {
            return Location::Downloads;
        }
        let writable = starts(&["home"])
            || starts(&["root"])
            || starts(&["var", "www"])
            || starts(&["srv"])
            || starts(&["run", "user"])
            || starts(&["users"])
            || starts(&["programdata"])
            || starts(&["windows", "tasks"])
            || starts(&["windows", "tracing"])
            || starts(&["perflogs"])
            || starts(&["$recycle.bin"])
            || dirs.contains(&"appdata");
        if writable {
            return Location::UserWritable;
        }
        let system = starts(&["usr"])
            || starts(&["bin"])
            || starts(&["sbin"])
            || starts(&["lib"])
            || starts(&["lib64"])
            || starts(&["opt"])
            || starts(&["snap"])
            || starts(&["windows"])
            || dirs.first().is_some_and(|d| d.starts_with("program files"));
        if system {
            Location::System
        } else {
            Location::Other
        }
    }
}

impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_across_spellings() {
        let want = "/program files/amazon/ssm/amazon-ssm-agent.exe";
        for p in [
            r"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe",
            r"\device\harddiskvolume2\program files\amazon\ssm\amazon-ssm-agent.exe",
            r"\\?\C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe",
            r"\??\C:\PROGRAM FILES\Amazon\SSM\amazon-ssm-agent.exe",
        ] {
            assert_eq!(normalize_path(p), want, "{p}");
        }
        assert_eq!(
            normalize_path("/usr/bin/python2.7;58d1ccfb (deleted)"),
            "/usr/bin/python2.7"
        );
        assert_eq!(normalize_path("curl"), "/curl");
        assert_eq!(normalize_path("/opt/a;b"), "/opt/a;b");
    }

    #[test]
    fn locations_classify() {
        let cases = [
            ("/dev/shm/.x/c", Location::SharedMemory),
            ("/tmp/kinsing", Location::Temp),
            ("/var/tmp/.ICE/x", Location::Temp),
            (r"C:\Users\bob\AppData\Local\Temp\a.exe", Location::Temp),
            (r"C:\Windows\Temp\x.exe", Location::Temp),
            (r"C:\Users\bob\Downloads\tool.exe", Location::Downloads),
            (r"C:\Users\Public\x.exe", Location::UserWritable),
            (
                r"C:\Users\bob\AppData\Roaming\x.exe",
                Location::UserWritable,
            ),
            (r"C:\ProgramData\x.exe", Location::UserWritable),
            ("/home/ubuntu/x", Location::UserWritable),
            ("/var/www/html/uploads/x", Location::UserWritable),
            ("/usr/bin/curl", Location::System),
            (r"C:\Windows\System32\curl.exe", Location::System),
            (r"C:\Program Files (x86)\x\y.exe", Location::System),
            ("/usr/bin/python3 (deleted)", Location::Deleted),
            ("memfd:x (deleted)", Location::Deleted),
            ("/app/server", Location::Other),
        ];
        for (p, want) in cases {
            assert_eq!(Location::of(p), want, "{p}");
        }
    }
}
