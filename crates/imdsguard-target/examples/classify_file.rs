//! Classifies every line of a file N times and prints strings per second: a driver for profilers
//! (`perf record`, `valgrind --tool=callgrind`) over the same corpus the criterion bench uses.
//! Usage: cargo run --release --example classify_file -- FILE [ROUNDS]

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: classify_file FILE [ROUNDS]");
    let rounds: usize = args
        .next()
        .map_or(200, |r| r.parse().expect("ROUNDS is a number"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let n = imdsguard_target::builtin();
    let start = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for l in &lines {
            found += n.find(l).len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = lines.len() * rounds;
    println!(
        "{total} strings in {secs:.3} s: {:.0} strings/s, {found} targets",
        total as f64 / secs
    );
}
