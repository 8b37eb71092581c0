//! CommerceML reader throughput on a generated 10 000-order upload (parse + extraction).
//! The side-by-side comparison with Python's ElementTree is `make bench-cml`.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shared::formats::commerceml::{read, synthetic};
use std::hint::black_box;

fn reader(c: &mut Criterion) {
    let file = synthetic::generate(10_000).into_bytes();
    let mut group = c.benchmark_group("commerceml");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.sample_size(10);
    group.bench_function("read+extract 10k orders", |b| {
        b.iter(|| synthetic::extract(&read(black_box(&file)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, reader);
criterion_main!(benches);
