//! One HTTP stack for every call the functions make (DynamoDB, Secrets Manager, Salesforce,
//! Lago's API): reqwest over rustls, trusting Mozilla's root certificates compiled into the
//! binary (`webpki-roots`).
//!
//! Why not the AWS SDK's own client beside reqwest: each of the two read and parsed the
//! system's certificate store at every cold start, about 290 files twice, which was most of
//! the functions' init time (BENCHMARKS.md). Compiled-in roots cost nothing to load and do
//! not depend on the image's certificate layout. The SDK is built without its default
//! client and reaches AWS through [`SdkTransport`], so there is one TLS stack in the binary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// A reqwest client builder with this project's TLS setup and user agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config())
        .user_agent(concat!("lago-salesforce-sync/", env!("CARGO_PKG_VERSION")))
}

fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc-rs supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// The AWS SDK's configuration loader with [`SdkTransport`] as its HTTP client.
pub fn aws_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(SdkTransport::default())
}

/// The AWS SDK's HTTP client, over reqwest. One reqwest client (and connection pool) per
/// distinct timeout setting the SDK asks for, built on first use.
#[derive(Debug, Default)]
pub struct SdkTransport {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for SdkTransport {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, connector)) = connectors.iter().find(|(t, _)| *t == timeouts) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(SdkConnector(build(timeouts)));
        connectors.push((timeouts, connector.clone()));
        connector
    }
}

fn build((connect, read): Timeouts) -> reqwest::Client {
    let mut builder = client_builder();
    if let Some(connect) = connect {
        builder = builder.connect_timeout(connect);
    }
    if let Some(read) = read {
        builder = builder.read_timeout(read);
    }
    builder.build().expect("the TLS configuration is valid")
}

#[derive(Debug)]
struct SdkConnector(reqwest::Client);

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let request = into_reqwest(request)?;
            let mut response = client.execute(request).await.map_err(connector_error)?;
            let mut head = http::Response::new(());
            *head.status_mut() = response.status();
            *head.version_mut() = response.version();
            *head.headers_mut() = std::mem::take(response.headers_mut());
            let body = response.bytes().await.map_err(connector_error)?;
            let (parts, ()) = head.into_parts();
            HttpResponse::try_from(http::Response::from_parts(parts, SdkBody::from(body)))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// DynamoDB and Secrets Manager requests carry their whole body in memory; a streaming body
/// would be a programming error here, not something to send half of.
fn into_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    let body = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?
        .to_vec();
    reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(e.into()))
}

/// The SDK retries timeouts and I/O errors; anything else reqwest reports before sending
/// is a malformed request.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_builder() {
        ConnectorError::user(error.into())
    } else {
        ConnectorError::io(error.into())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    fn request(url: &str, body: SdkBody) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("x-amz-target", "DynamoDB_20120810.UpdateItem")
            .body(body)
            .expect("a valid request");
        HttpRequest::try_from(request).expect("an http 1.x request converts")
    }

    /// A server that reads one request, hands it back, and answers with `answer` (or never).
    fn server(answer: Option<&'static str>) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}/", listener.local_addr().expect("bound"));
        let handle = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("a connection");
            let mut seen = vec![0; 4096];
            let n = socket.read(&mut seen).expect("a request");
            match answer {
                Some(answer) => socket.write_all(answer.as_bytes()).expect("answered"),
                None => std::thread::sleep(Duration::from_secs(2)),
            }
            String::from_utf8_lossy(&seen[..n]).into_owned()
        });
        (url, handle)
    }

    #[tokio::test]
    async fn a_request_and_its_answer_cross_unchanged() {
        let (url, sent) = server(Some(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
             x-amzn-requestid: r1\r\ncontent-length: 13\r\n\r\n{\"ok\":false}\n",
        ));
        let connector = SdkConnector(build((None, None)));
        let response = connector
            .call(request(&url, SdkBody::from("{\"TableName\":\"t\"}")))
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r1"));
        assert_eq!(response.body().bytes(), Some(&b"{\"ok\":false}\n"[..]));
        let sent = sent.join().expect("the server ran").to_ascii_lowercase();
        assert!(sent.starts_with("post / http/1.1\r\n"), "{sent}");
        assert!(
            sent.contains("x-amz-target: dynamodb_20120810.updateitem\r\n"),
            "{sent}"
        );
        assert!(sent.ends_with("{\"tablename\":\"t\"}"), "{sent}");
    }

    #[tokio::test]
    async fn failures_are_classified_for_the_sdk_retry() {
        let (url, _) = server(None);
        let silent = SdkConnector(build((None, Some(Duration::from_millis(200)))));
        let error = silent
            .call(request(&url, SdkBody::empty()))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");

        let closed = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}/", closed.local_addr().expect("bound"));
        drop(closed);
        let refused = SdkConnector(build((Some(Duration::from_secs(1)), None)));
        let error = refused
            .call(request(&url, SdkBody::empty()))
            .await
            .unwrap_err();
        assert!(error.is_io(), "{error:?}");

        let error = refused
            .call(request(&url, SdkBody::taken()))
            .await
            .unwrap_err();
        assert!(error.is_user(), "{error:?}");
    }

    #[test]
    fn the_compiled_in_roots_cover_aws_and_salesforce() {
        // DynamoDB and Secrets Manager chain to Amazon's roots, Salesforce My Domains to DigiCert's.
        for root in [
            "Amazon Root CA 1",
            "Starfield Services Root Certificate Authority - G2",
            "DigiCert Global Root G2",
        ] {
            let found = webpki_roots::TLS_SERVER_ROOTS.iter().any(|anchor| {
                anchor
                    .subject
                    .windows(root.len())
                    .any(|w| w == root.as_bytes())
            });
            assert!(found, "{root} is not among the compiled-in roots");
        }
    }
}
