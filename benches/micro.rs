//! Micro-benchmarks (criterion) of the hot spots: compiling field expressions and search
//! queries, rendering values as report cells, and the CSV sink. `cargo bench --bench micro`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use userport::sink::render::json_cell;
use userport::sink::{Format, Options, Shape, create};
use userport::source::schema::json_field;

fn compiling(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    for (name, text) in [
        ("path", "user.user_metadata.name"),
        ("or", "user.user_metadata.name || user.name"),
        (
            "ternary",
            "user.logins_count > 10 ? user.email.toLowerCase() : 'n/a'",
        ),
    ] {
        group.bench_function(format!("expression/{name}"), |b| {
            b.iter(|| userport::expr::compile(black_box(text), "bench").unwrap())
        });
    }
    for (name, text) in [
        ("term", "email_verified:true"),
        ("range", "email_verified:true AND logins_count:[5 TO *]"),
        (
            "nested",
            "(user_metadata.plan:pro OR app_metadata.roles:admin) AND NOT blocked:true",
        ),
    ] {
        group.bench_function(format!("search/{name}"), |b| {
            b.iter(|| userport::search::compile(black_box(text), "bench").unwrap())
        });
    }
    group.finish();
}

fn rendering(c: &mut Criterion) {
    let values = [
        r#""Ada Lovelace""#,
        "1234",
        "0.1",
        "1e21",
        "true",
        "null",
        r#"{"plan":"pro","seats":[1,2,3],"nested":{"a":"b"}}"#,
    ];
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("json_cell", |b| {
        let mut out = String::new();
        b.iter(|| {
            for v in values {
                out.clear();
                json_cell(black_box(v), &mut out);
            }
        })
    });
    group.finish();
}

/// A batch of 8192 rows: text, JSON text, booleans and integers.
fn batch() -> RecordBatch {
    let rows = 8192;
    let schema = Arc::new(Schema::new(vec![
        Field::new("email", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        json_field("plan"),
        Field::new("email_verified", DataType::Boolean, true),
        Field::new("logins_count", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("user{i}@example.com")),
        )),
        Arc::new(StringArray::from_iter(
            (0..rows).map(|i| (i % 5 != 0).then(|| format!("Name, \"{i}\""))),
        )),
        Arc::new(StringArray::from_iter_values((0..rows).map(|i| {
            match i % 3 {
                0 => r#""pro""#.to_string(),
                1 => i.to_string(),
                _ => r#"{"a":[1,2]}"#.to_string(),
            }
        }))),
        Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0)))),
        Arc::new(Int64Array::from_iter_values(0..rows as i64)),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn csv_sink(c: &mut Criterion) {
    let batch = batch();
    let mut group = c.benchmark_group("sink");
    group.throughput(Throughput::Elements(batch.num_rows() as u64));
    group.bench_function("csv/8192 rows", |b| {
        b.iter(|| {
            let mut sink = create(
                Format::Csv,
                Shape::Columns,
                batch.schema(),
                Vec::with_capacity(1 << 20),
                "bench",
                Options::default(),
            )
            .unwrap();
            sink.write(black_box(&batch)).unwrap();
            sink.finish().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, compiling, rendering, csv_sink);
criterion_main!(benches);
