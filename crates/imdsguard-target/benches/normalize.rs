//! Normalizer throughput: strings per second on one core.
//!
//! Corpus: the file named by `IMDSGUARD_BENCH_CORPUS` (one string per line), which
//! `bench/run-normalize.sh` fills with the real command lines and URLs of `../shared/data`; without
//! it, the bundled `samples/targets.txt`. Three groups: the whole corpus as it is (mostly benign
//! command lines, the common case in logs), the metadata targets of `samples/targets.txt` (every
//! one decoded in full), and the corpus with every line a non-target (the fast path).

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
    let benign: Vec<&String> = corpus.iter().filter(|s| !n.is_target(s)).collect();
    let bytes = |v: &[&String]| v.iter().map(|s| s.len()).sum::<usize>();
    eprintln!(
        "corpus: {} strings ({} bytes avg); targets: {}; non-targets: {} ({} bytes avg)",
        corpus.len(),
        corpus.iter().map(String::len).sum::<usize>() / corpus.len().max(1),
        targets.len(),
        benign.len(),
        bytes(&benign) / benign.len().max(1),
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
    g.throughput(Throughput::Elements(benign.len() as u64));
    g.bench_function("non-targets", |b| {
        b.iter(|| {
            benign
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
