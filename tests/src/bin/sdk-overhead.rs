//! What one DynamoDB `UpdateItem` costs the calling thread through the AWS SDK (with the
//! functions' transport, `lago_sync::transport`) against the same request as a bare reqwest
//! POST, both answered at once by a local server on another thread. Prints wall time and the
//! caller's CPU time per call: the SDK's share of a function's warm overhead (BENCHMARKS.md).
//!
//! Usage: `sdk-overhead [--calls N (3000)]`; scripts/bench.sh builds and runs it.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;

const WARM_UP: usize = 200;

fn main() {
    let calls = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .map_or(3000, |n| n.parse().expect("--calls takes a number"));
    let url = answer_at_once();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let sdk = lago_sync::transport::aws_config_loader()
            .endpoint_url(&url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("a", "b", None, None, "bench"))
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let update = || {
            dynamodb
                .update_item()
                .table_name("bench")
                .key("pk", AttributeValue::S("delivery#invoice#k".into()))
                .update_expression("SET #status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", AttributeValue::S("completed".into()))
                .send()
        };
        let sdk = measure(calls, || async { update().await.expect("an answer") }).await;

        let http = lago_sync::transport::client_builder()
            .build()
            .expect("a client");
        let body = vec![b' '; 700];
        let post = || async {
            let answer = http
                .post(&url)
                .header("x-amz-target", "DynamoDB_20120810.UpdateItem")
                .body(body.clone())
                .send()
                .await
                .expect("an answer");
            answer.bytes().await.expect("a body")
        };
        let bare = measure(calls, post).await;

        println!("per call, over {calls} calls (µs):  wall   caller CPU");
        println!(
            "  AWS SDK UpdateItem            {:>6.1} {:>12.1}",
            sdk.0, sdk.1
        );
        println!(
            "  bare reqwest POST             {:>6.1} {:>12.1}",
            bare.0, bare.1
        );
        println!(
            "  the SDK's own work            {:>6.1} {:>12.1}",
            sdk.0 - bare.0,
            sdk.1 - bare.1
        );
    });
}

/// Wall and caller-thread CPU microseconds per call, after a warm-up.
async fn measure<F: std::future::Future>(calls: usize, call: impl Fn() -> F) -> (f64, f64) {
    for _ in 0..WARM_UP {
        call().await;
    }
    let (wall, cpu) = (Instant::now(), thread_cpu());
    for _ in 0..calls {
        call().await;
    }
    let per_call = |d: Duration| d.as_secs_f64() * 1e6 / calls as f64;
    (per_call(wall.elapsed()), per_call(thread_cpu() - cpu))
}

/// A server on its own thread that answers every request `200 {}` at once; its URL.
fn answer_at_once() -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free port");
            let address = listener.local_addr().expect("bound");
            sender.send(format!("http://{address}")).expect("sent");
            let json = [("content-type", "application/x-amz-json-1.0")];
            let router = Router::new().fallback(move || async move { (json, "{}") });
            axum::serve(listener, router).await.expect("serving");
        });
    });
    receiver.recv().expect("the server started")
}

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
