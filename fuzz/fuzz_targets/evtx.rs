//! Fuzzes the EVTX reader on whole, cut and header-damaged files: the input's first byte picks
//! the shape (as given; the header's magic zeroed; behind a real file header), the rest is the
//! file. Whatever the bytes, nothing panics and every record read is counted.
#![no_main]

use imdsguard_parse::{read_evtx_bytes, ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    match shape % 3 {
        1 if file.len() >= 8 => file[..8].copy_from_slice(&[0; 8]),
        2 => {
            // A file header, then the bytes as its chunks: the chunk reader meets them.
            let mut head = vec![0u8; 4096];
            head[..8].copy_from_slice(b"ElfFile\0");
            head[0x20..0x24].copy_from_slice(&128u32.to_le_bytes());
            head[0x24..0x26].copy_from_slice(&1u16.to_le_bytes());
            head[0x26..0x28].copy_from_slice(&3u16.to_le_bytes());
            head[0x28..0x2a].copy_from_slice(&4096u16.to_le_bytes());
            head[0x2a..0x2c].copy_from_slice(&1u16.to_le_bytes());
            head.extend_from_slice(&file);
            file = head;
        }
        _ => {}
    }
    let mut summary = Summary::default();
    let mut read = 0u64;
    read_evtx_bytes("fuzz.evtx", &file, &ReadOptions::default(), &mut summary, &mut |_| {
        read += 1
    });
    assert_eq!(read, summary.total_events());
});
