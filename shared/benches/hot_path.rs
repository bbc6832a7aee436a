//! The pure hot path of a function, per family: signature check, envelope parse, family
//! and type check, mapping; no I/O. Bodies are the OpenAPI-derived samples of `samples/`
//! (they carry an Account id), plus an invoice with 200 fees.
//!
//! `cargo bench -p lago-sync --bench hot_path`

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lago_sync::lago::Envelope;
use lago_sync::mapping::{self, Plan};
use lago_sync::{signature, Family};
use serde_json::Value;

const HMAC_KEY: &[u8] = b"5f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b";

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `invoice.created` whose one fee is repeated `fees` times.
fn invoice_with_fees(fees: usize) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&sample("invoice.created.json")).unwrap();
    let fee = body["invoice"]["fees"][0].clone();
    body["invoice"]["fees"] = Value::Array(vec![fee; fees]);
    serde_json::to_vec(&body).unwrap()
}

/// What the pipeline does before its first I/O, once the HMAC key is known.
fn hot_path(family: Family, body: &[u8], signature: &str) -> Plan {
    signature::verify(HMAC_KEY, body, signature).expect("a valid signature");
    let envelope = Envelope::parse(body).expect("a Lago envelope");
    assert!(family.writes(&envelope.webhook_type));
    mapping::plan(family, &envelope).expect("a Salesforce write")
}

fn benches(c: &mut Criterion) {
    let cases = [
        (
            Family::Customer,
            "customer.updated",
            sample("customer.updated.json"),
        ),
        (
            Family::Subscription,
            "subscription.started",
            sample("subscription.started.json"),
        ),
        (
            Family::Invoice,
            "invoice.created",
            sample("invoice.created.json"),
        ),
        (
            Family::Invoice,
            "invoice.created, 200 fees",
            invoice_with_fees(200),
        ),
        (
            Family::CreditNote,
            "credit_note.created",
            sample("credit_note.created.json"),
        ),
    ];
    let mut group = c.benchmark_group("hot_path");
    for (family, name, body) in &cases {
        let signature = signature::sign(HMAC_KEY, body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| hot_path(*family, black_box(body), black_box(&signature)))
        });
    }
    group.finish();
}

criterion_group!(hot_path_benches, benches);
criterion_main!(hot_path_benches);
