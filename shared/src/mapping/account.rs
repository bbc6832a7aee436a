//! Which Salesforce Account a Lago customer belongs to (contract §4).

use super::MappingError;
use crate::lago::Customer;

/// `external_salesforce_id`, else the Salesforce integration's `external_customer_id`;
/// it must look like a Salesforce id (15 or 18 letters and digits).
pub fn account_id(customer: &Customer) -> Result<String, MappingError> {
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let candidate = non_empty(&customer.external_salesforce_id).or_else(|| {
        customer
            .integration_customers
            .iter()
            .filter(|i| i.kind.as_deref() == Some("salesforce"))
            .find_map(|i| non_empty(&i.external_customer_id))
    });
    let who = customer
        .external_id
        .as_deref()
        .or(customer.lago_id.as_deref())
        .unwrap_or("(unknown)");
    let id = candidate.ok_or_else(|| {
        MappingError::NoAccount(format!(
            "customer {who} has no Salesforce Account id (external_salesforce_id or a Salesforce integration)"
        ))
    })?;
    if matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        let shown: String = id.chars().take(40).collect();
        Err(MappingError::NoAccount(format!(
            "customer {who} has Salesforce Account id {shown:?}, which is not a Salesforce id (15 or 18 letters and digits)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lago::IntegrationCustomer;

    /// `integration_customers` as (type, external_customer_id) pairs.
    type Integrations<'a> = &'a [(&'a str, Option<&'a str>)];

    fn customer(external_salesforce_id: Option<&str>, integrations: Integrations) -> Customer {
        Customer {
            external_id: Some("cus_42".into()),
            external_salesforce_id: external_salesforce_id.map(Into::into),
            integration_customers: integrations
                .iter()
                .map(|(kind, id)| IntegrationCustomer {
                    kind: Some(kind.to_string()),
                    external_customer_id: id.map(Into::into),
                })
                .collect(),
            ..Customer::default()
        }
    }

    #[test]
    fn account_id_sources_in_order() {
        let ok: &[(Option<&str>, Integrations, &str)] = &[
            (Some("001Dn00000AbCdEfGH"), &[], "001Dn00000AbCdEfGH"),
            (Some("001Dn00000AbCdE"), &[], "001Dn00000AbCdE"),
            (Some(" 001Dn00000AbCdEfGH "), &[], "001Dn00000AbCdEfGH"),
            (
                Some("001Dn00000AbCdEfGH"),
                &[("salesforce", Some("001Dn00000ZZZZZZZZ"))],
                "001Dn00000AbCdEfGH",
            ),
            (
                None,
                &[
                    ("hubspot", Some("123")),
                    ("salesforce", Some("001Dn00000ZZZZZZZZ")),
                ],
                "001Dn00000ZZZZZZZZ",
            ),
            (
                Some(""),
                &[("salesforce", Some("001Dn00000ZZZZZZZZ"))],
                "001Dn00000ZZZZZZZZ",
            ),
        ];
        for (legacy, integrations, expected) in ok {
            assert_eq!(
                account_id(&customer(*legacy, integrations)).unwrap(),
                *expected
            );
        }
    }

    #[test]
    fn missing_or_malformed_ids_are_reasons_to_skip() {
        let bad: &[(Option<&str>, Integrations)] = &[
            (None, &[]),
            (None, &[("hubspot", Some("001Dn00000ZZZZZZZZ"))]),
            (None, &[("salesforce", None)]),
            (Some("001Dn00000AbCd"), &[]),
            (Some("001Dn00000AbCdEfGHI"), &[]),
            (Some("001Dn00000AbCd-fGH"), &[]),
            (
                Some("https://acme.my.salesforce.com/001Dn00000AbCdEfGH"),
                &[],
            ),
        ];
        for (legacy, integrations) in bad {
            let err = account_id(&customer(*legacy, integrations)).unwrap_err();
            assert!(
                matches!(&err, MappingError::NoAccount(m) if m.contains("cus_42")),
                "{err}"
            );
        }
    }
}
