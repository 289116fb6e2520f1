//! What one sign-in costs on this machine with the chosen Argon2id parameters, and that an
//! unknown email costs the same as a wrong password (the decoy hash).
//!
//! Run with `cargo bench --bench passwords`. Logins per second per core is about
//! 1 / (time of `verify_known_account`); see also `paranimo-loadtest login` for the whole
//! HTTP path.

use criterion::{Criterion, criterion_group, criterion_main};
use paranimo::auth::{hash_password_blocking, verify_password_blocking};
use std::hint::black_box;

fn passwords(c: &mut Criterion) {
    let password = "lantern mosaic quietly orbit 47";
    let stored = hash_password_blocking(password).expect("hash");
    // Build the decoy once outside the measurement.
    verify_password_blocking("warm-up", None);

    let mut group = c.benchmark_group("argon2id_19MiB_t2_p1");
    group.sample_size(30);
    group.bench_function("hash_new_password", |b| {
        b.iter(|| hash_password_blocking(black_box(password)).expect("hash"))
    });
    group.bench_function("verify_known_account", |b| {
        b.iter(|| verify_password_blocking(black_box(password), Some(&stored)))
    });
    group.bench_function("verify_wrong_password", |b| {
        b.iter(|| verify_password_blocking(black_box("not the password 1"), Some(&stored)))
    });
    group.bench_function("verify_unknown_email_decoy", |b| {
        b.iter(|| verify_password_blocking(black_box(password), None))
    });
    group.finish();
}

criterion_group!(benches, passwords);
criterion_main!(benches);
