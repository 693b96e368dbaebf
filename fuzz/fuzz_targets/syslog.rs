//! Syslog frames: any bytes parse or are refused, never a panic; a TCP buffer splits into
//! frames that lie inside it, and what it consumed never exceeds it.
#![no_main]

use imdsguard_parse::syslog::{parse, split_tcp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(m) = parse(data) {
        assert!(m.msg.len() <= data.len());
        assert!(m.pri <= 191);
    }
    let (frames, used) = split_tcp(data);
    assert!(used <= data.len());
    for f in frames {
        assert!(f.len() <= used);
        let _ = parse(f);
    }
});
