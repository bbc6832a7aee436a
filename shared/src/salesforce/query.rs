//! The REST query resource (SOQL), for `lago-sync push-accounts`: one call per page of up
//! to 2,000 records, the next page at the answer's `nextRecordsUrl`.

use std::time::Instant;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::{SalesforceClient, SalesforceError};
use crate::secrets::SecretCache;

/// One page of a query's records, and where the next one is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    pub total_size: u64,
    pub records: Vec<Value>,
    /// `/services/data/vXX.X/query/<locator>`: absent on the last page.
    pub next_records_url: Option<String>,
}

impl SalesforceClient {
    /// The first page of `soql`'s records.
    pub async fn query(
        &self,
        secrets: &SecretCache,
        soql: &str,
        deadline: Instant,
    ) -> Result<QueryPage, SalesforceError> {
        let url = format!("{}/query?q={}", self.data_url(), urlencoding::encode(soql));
        self.query_page(secrets, &url, deadline).await
    }

    /// The page at a previous page's `next_records_url`.
    pub async fn query_more(
        &self,
        secrets: &SecretCache,
        next_records_url: &str,
        deadline: Instant,
    ) -> Result<QueryPage, SalesforceError> {
        // A path on the org's own host, never another: it comes from the org's answer.
        let path = next_records_url
            .strip_prefix(self.data_path())
            .filter(|rest| rest.starts_with("/query/"))
            .ok_or_else(|| {
                SalesforceError::new(
                    None,
                    "MALFORMED_RESPONSE",
                    "nextRecordsUrl is not a query locator of this API version",
                )
            })?;
        let url = format!("{}{path}", self.data_url());
        self.query_page(secrets, &url, deadline).await
    }

    async fn query_page(
        &self,
        secrets: &SecretCache,
        url: &str,
        deadline: Instant,
    ) -> Result<QueryPage, SalesforceError> {
        let body = self.call(secrets, Method::GET, url, None, deadline).await?;
        serde_json::from_slice(&body).map_err(|e| {
            SalesforceError::new(
                None,
                "MALFORMED_RESPONSE",
                format!("a query answer that is not one: {e}"),
            )
        })
    }
}
