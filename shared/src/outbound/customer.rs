//! An Account of an outbound message → the body of Lago's `POST /api/v1/customers`, an
//! upsert by `external_id` that sets only the keys sent (contract §8). Pure, table-tested.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::mapping::{values, MappingError};

/// A customer to create or update in Lago, and what orders the Account's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerPush {
    /// The Account's 18-character id.
    pub account_id: String,
    /// The Account's `SystemModstamp` in ms: a message older than the one pushed is a no-op.
    pub version: i64,
    /// `{"customer": {...}}`.
    pub body: Value,
}

/// Account field → Lago customer key, each sent only when the Account has a value.
const FIELDS: [(&str, &str); 8] = [
    ("Name", "name"),
    ("Lago_Billing_Email__c", "email"),
    (
        "Lago_Tax_Identification_Number__c",
        "tax_identification_number",
    ),
    ("BillingCity", "city"),
    ("BillingState", "state"),
    ("BillingPostalCode", "zipcode"),
    ("Phone", "phone"),
    ("Website", "url"),
];

/// The customer for the Account of `fields` (an sObject of the outbound message, or a
/// record of the SOQL query of `lago-sync push-accounts`).
///
/// An Account already linked to a Lago customer (`Lago_Customer_Id__c`, written by the
/// customer webhook) updates that customer, by its own `external_id`; any other gets a
/// customer whose `external_id` is the Account id, so pushing it again never creates a
/// second one.
pub fn customer_push(fields: &BTreeMap<String, String>) -> Result<CustomerPush, MappingError> {
    let get = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let account_id = get("Id").ok_or_else(|| MappingError::missing("Id"))?;
    if account_id.len() != 18 || !account_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(MappingError::invalid(
            "Id",
            account_id,
            "not an 18-character Salesforce id",
        ));
    }
    let modstamp = get("SystemModstamp").ok_or_else(|| MappingError::missing("SystemModstamp"))?;
    let version = (values::datetime("SystemModstamp", &rfc3339_offset(modstamp))?
        .unix_timestamp_nanos()
        / 1_000_000) as i64;
    let external_id = match (
        get("Lago_Customer_Id__c"),
        get("Lago_External_Customer_Id__c"),
    ) {
        (Some(_), Some(linked)) => linked,
        _ => account_id,
    };
    let mut customer = Map::new();
    customer.insert("external_id".into(), external_id.into());
    customer.insert("external_salesforce_id".into(), account_id.into());
    for (field, key) in FIELDS {
        if let Some(value) = get(field) {
            customer.insert(key.into(), value.into());
        }
    }
    if let Some(currency) = get("Lago_Currency__c") {
        customer.insert("currency".into(), currency.to_ascii_uppercase().into());
    }
    if let Some(street) = get("BillingStreet") {
        let mut lines = street.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(first) = lines.next() {
            customer.insert("address_line1".into(), first.into());
        }
        let rest: Vec<&str> = lines.collect();
        if !rest.is_empty() {
            customer.insert("address_line2".into(), rest.join(", ").into());
        }
    }
    // Lago takes ISO 3166 alpha-2 codes only; Salesforce's BillingCountry is free text
    // unless the org uses state and country picklists. A name is left out rather than
    // have Lago refuse the whole customer.
    if let Some(country) =
        get("BillingCountry").filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        customer.insert("country".into(), country.to_ascii_uppercase().into());
    }
    Ok(CustomerPush {
        account_id: account_id.to_owned(),
        version,
        body: serde_json::json!({ "customer": customer }),
    })
}

/// The REST API writes datetimes with a `+0000` offset, outbound messages with `Z`;
/// RFC 3339 wants `+00:00`.
fn rfc3339_offset(text: &str) -> String {
    let (head, offset) = text.split_at(text.len().saturating_sub(5));
    let bytes = offset.as_bytes();
    let numeric = bytes.len() == 5
        && matches!(bytes[0], b'+' | b'-')
        && bytes[1..].iter().all(u8::is_ascii_digit);
    match numeric {
        true => format!("{head}{}:{}", &offset[..3], &offset[3..]),
        false => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str = "001000000000001AAA";

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut all: BTreeMap<String, String> = [
            ("Id", ACCOUNT),
            ("SystemModstamp", "2026-12-02T07:30:00.000Z"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        all.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        all
    }

    #[test]
    fn accounts_map_to_customers() {
        let cases = [
            (
                "every field; the street's first line, the rest on the second",
                fields(&[
                    ("Name", "Acme"),
                    ("Lago_Sync__c", "true"),
                    ("Lago_Billing_Email__c", "billing@acme.test"),
                    ("Lago_Currency__c", "eur"),
                    ("Lago_Tax_Identification_Number__c", "FR123"),
                    ("BillingStreet", "1 rue de la Paix\nBâtiment B\n3e étage"),
                    ("BillingCity", "Paris"),
                    ("BillingState", "IDF"),
                    ("BillingPostalCode", "75002"),
                    ("BillingCountry", "fr"),
                    ("Phone", "+33 1 23 45 67 89"),
                    ("Website", "https://acme.test"),
                ]),
                json!({ "customer": {
                    "external_id": ACCOUNT, "external_salesforce_id": ACCOUNT, "name": "Acme",
                    "email": "billing@acme.test", "currency": "EUR", "tax_identification_number": "FR123",
                    "address_line1": "1 rue de la Paix", "address_line2": "Bâtiment B, 3e étage",
                    "city": "Paris", "state": "IDF", "zipcode": "75002", "country": "FR",
                    "phone": "+33 1 23 45 67 89", "url": "https://acme.test",
                }}),
            ),
            (
                "only what has a value; a country name is left out",
                fields(&[("Name", "Acme"), ("BillingCountry", "France")]),
                json!({ "customer": { "external_id": ACCOUNT, "external_salesforce_id": ACCOUNT, "name": "Acme" }}),
            ),
            (
                "an Account linked to a customer updates that customer",
                fields(&[
                    ("Name", "Acme"),
                    ("Lago_Customer_Id__c", "cus-1"),
                    ("Lago_External_Customer_Id__c", "acme-eur"),
                ]),
                json!({ "customer": { "external_id": "acme-eur", "external_salesforce_id": ACCOUNT, "name": "Acme" }}),
            ),
        ];
        for (name, fields, expected) in cases {
            let push = customer_push(&fields).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(push.body, expected, "{name}");
            assert_eq!(push.account_id, ACCOUNT);
            assert_eq!(push.version, 1_796_196_600_000, "{name}");
        }
    }

    #[test]
    fn both_salesforce_datetime_forms_give_one_version() {
        let rest = fields(&[("SystemModstamp", "2026-12-02T07:30:00.000+0000")]);
        let outbound = fields(&[("SystemModstamp", "2026-12-02T07:30:00.000Z")]);
        assert_eq!(
            customer_push(&rest).unwrap().version,
            customer_push(&outbound).unwrap().version
        );
    }

    #[test]
    fn an_account_that_cannot_be_pushed_says_why() {
        let mut no_id = fields(&[]);
        no_id.remove("Id");
        let mut no_stamp = fields(&[]);
        no_stamp.remove("SystemModstamp");
        let cases = [
            (no_id, "Id"),
            (fields(&[("Id", "001000000000001")]), "18-character"),
            (no_stamp, "SystemModstamp"),
            (fields(&[("SystemModstamp", "yesterday")]), "SystemModstamp"),
        ];
        for (fields, expected) in cases {
            let error = customer_push(&fields).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
