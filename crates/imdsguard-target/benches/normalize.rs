//! Normalizer throughput: strings per second on one core.
//!
//! Corpus: the file named by `IMDSGUARD_BENCH_CORPUS` (one string per line), which
//! `bench/run-normalize.sh` fills with the real command lines and URLs of `../shared/data`; without
//! it, the bundled `samples/targets.txt`. Groups:
//! - `corpus`: every line as it is, including multi-kilobyte PowerShell `-EncodedCommand` lines
//!   whose decoded scripts are read in full;
//! - `typical`: the corpus lines up to 1 KiB (typical command lines);
//! - `targets`: the metadata targets of `samples/targets.txt`, each decoded in full.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn lines(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let samples = lines(&root.join("samples/targets.txt"));
    let corpus = match std::env::var_os("IMDSGUARD_BENCH_CORPUS") {
        Some(p) => lines(&PathBuf::from(p)),
        None => samples.clone(),
    };
    let n = imdsguard_target::builtin();
    let targets: Vec<&String> = samples.iter().filter(|s| n.is_target(s)).collect();
    let typical: Vec<&String> = corpus.iter().filter(|s| s.len() <= 1024).collect();
    let avg = |v: &[&String]| v.iter().map(|s| s.len()).sum::<usize>() / v.len().max(1);
    let all: Vec<&String> = corpus.iter().collect();
    eprintln!(
        "corpus: {} strings ({} bytes avg); typical: {} ({} bytes avg); targets: {} ({} bytes avg)",
        all.len(),
        avg(&all),
        typical.len(),
        avg(&typical),
        targets.len(),
        avg(&targets),
    );
    let mut g = c.benchmark_group("normalize");
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("corpus", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|s| n.find(black_box(s)).len())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(typical.len() as u64));
    g.bench_function("typical", |b| {
        b.iter(|| {
            typical
                .iter()
                .map(|s| n.find(black_box(s)).len())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(targets.len() as u64));
    g.bench_function("targets", |b| {
        b.iter(|| {
            targets
                .iter()
                .map(|s| n.find(black_box(s)).len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
