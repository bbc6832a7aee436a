//! `POST /api/v1/customers`, an upsert on `external_id`, as lago-api (2026-08) runs it:
//! `Customers::UpsertFromApiService` finds or initializes the customer by `external_id`,
//! sets only the keys present in the request, changes the currency through
//! `Customers::UpdateCurrencyService`, then saves it under the validations of
//! `app/models/customer.rb`; `CustomersController#create` answers the customer as
//! `V1::CustomerSerializer` shows it (without billing entity, sequential id and slug).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::{macros::format_description, OffsetDateTime};

use super::Dataset;

/// The keys of `CustomersController#create_params` that the stand-in stores; the other
/// permitted keys (billing configuration, metadata, taxes, ...) are accepted and ignored.
const KEYS: [&str; 18] = [
    "name",
    "firstname",
    "lastname",
    "country",
    "address_line1",
    "address_line2",
    "state",
    "zipcode",
    "email",
    "city",
    "url",
    "phone",
    "logo_url",
    "legal_name",
    "legal_number",
    "tax_identification_number",
    "currency",
    "external_salesforce_id",
];

/// `Customer::BILLING_ADDRESS_FIELDS`, normalized to null when blank.
const ADDRESS_KEYS: [&str; 6] = [
    "address_line1",
    "address_line2",
    "city",
    "zipcode",
    "state",
    "country",
];

/// Upserts the customer `input` describes into `data`; returns it as Lago answers it, or
/// the `error_details` of Lago's 422 (nothing is then stored).
pub(super) fn upsert(data: &mut Dataset, input: &Map<String, Value>) -> Result<Value, Value> {
    let external_id = input
        .get("external_id")
        .and_then(cast)
        .filter(|id| !blank(id));
    let stored = external_id
        .as_ref()
        .and_then(|id| data.customers.iter().position(|c| c["external_id"] == *id));
    let original = match stored {
        Some(at) => with_every_key(&data.customers[at]),
        None => new_customer(external_id.as_ref()),
    };
    let mut customer = original.clone();
    for key in KEYS.iter().filter(|key| **key != "currency") {
        if let Some(value) = input.get(*key).and_then(cast) {
            customer[*key] = normalize(key, value);
        }
    }
    if let Some(currency) = input.get("currency").and_then(cast) {
        change_currency(data, &mut customer, currency)?;
    }
    let errors = validation_errors(&customer, &original);
    if !errors.is_empty() {
        return Err(Value::Object(errors));
    }
    if stored.is_none() || customer != original {
        customer["updated_at"] = json!(now());
    }
    match stored {
        Some(at) => data.customers[at] = customer.clone(),
        None => data.customers.push(customer.clone()),
    }
    Ok(customer)
}

/// Rails' cast of a permitted scalar to a string column; arrays and objects are not
/// permitted for these keys, so they are dropped as if absent.
fn cast(value: &Value) -> Option<Value> {
    match value {
        Value::Null | Value::String(_) => Some(value.clone()),
        Value::Number(n) => Some(json!(n.to_string())),
        Value::Bool(b) => Some(json!(if *b { "t" } else { "f" })),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn blank(value: &Value) -> bool {
    value.as_str().is_none_or(|s| s.trim().is_empty())
}

/// The service upcases the country; the model strips NUL bytes from the address and
/// keeps a blank one as null, and sanitizes the e-mail (`EmailSanitizer`).
fn normalize(key: &str, value: Value) -> Value {
    let Value::String(text) = value else {
        return value;
    };
    if key == "email" {
        return json!(sanitize_email(&text));
    }
    if !ADDRESS_KEYS.contains(&key) {
        return json!(text);
    }
    let text = text.replace('\0', "");
    let text = if key == "country" {
        text.to_uppercase()
    } else {
        text
    };
    if text.trim().is_empty() {
        Value::Null
    } else {
        json!(text)
    }
}

fn sanitize_email(email: &str) -> String {
    const INVISIBLE: [char; 7] = [
        '\u{200B}', '\u{200C}', '\u{200D}', '\u{00A0}', '\u{200E}', '\u{200F}', '\u{FEFF}',
    ];
    const DASHES: [char; 6] = [
        '\u{2012}', '\u{2013}', '\u{2014}', '\u{2015}', '\u{2043}', '\u{2212}',
    ];
    let cleaned: String = email
        .chars()
        .filter(|c| !INVISIBLE.contains(c))
        .map(|c| if DASHES.contains(&c) { '-' } else { c })
        .collect();
    cleaned.trim().to_owned()
}

/// `UpdateCurrencyService` with `customer_update: true`: the same currency is a no-op,
/// and a customer with subscriptions or invoices (`Customer#editable?`) keeps its own.
fn change_currency(data: &Dataset, customer: &mut Value, currency: Value) -> Result<(), Value> {
    if customer["currency"] == currency {
        return Ok(());
    }
    let external_id = customer["external_id"].as_str().unwrap_or_default();
    if data.is_billed(external_id) {
        return Err(json!({ "currency": ["currencies_does_not_match"] }));
    }
    customer["currency"] = currency;
    Ok(())
}

/// The model's validations in their declaration order, with the codes of lago-api's
/// `config/locales/en.yml`: `country_code: true` (`ISO3166::Country.new`, alpha-2 only)
/// is `not_a_valid_country_code`; `currency, inclusion: {in: currency_list}` is
/// `value_is_invalid`; `external_id, presence: true` is `value_is_mandatory`; `email,
/// email: true` (checked when it changes to a non-blank value) is `invalid_email_format`.
fn validation_errors(customer: &Value, original: &Value) -> Map<String, Value> {
    let text = |key: &str| customer[key].as_str();
    let email =
        text("email").filter(|e| !e.trim().is_empty() && customer["email"] != original["email"]);
    let failures = [
        (
            "country",
            "not_a_valid_country_code",
            text("country").is_some_and(|c| !COUNTRIES.contains(&c)),
        ),
        (
            "currency",
            "value_is_invalid",
            text("currency").is_some_and(|c| !CURRENCIES.contains(&c)),
        ),
        (
            "external_id",
            "value_is_mandatory",
            blank(&customer["external_id"]),
        ),
        (
            "email",
            "invalid_email_format",
            email.is_some_and(|e| !valid_emails(e)),
        ),
    ];
    failures
        .into_iter()
        .filter(|(_, _, failed)| *failed)
        .map(|(key, code, _)| (key.to_owned(), json!([code])))
        .collect()
}

/// lago-api's `EmailValidator`: addresses separated by commas, each matching
/// `Regex::EMAIL` (of which quoted local parts and IP-literal domains are not modelled).
fn valid_emails(value: &str) -> bool {
    value.split(',').all(|email| valid_email(email.trim()))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let atom = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
    };
    let label = |part: &str| {
        !part.is_empty()
            && !part.starts_with('-')
            && !part.ends_with('-')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    local.split('.').all(atom) && domain.contains('.') && domain.split('.').all(label)
}

/// A customer the stand-in has not stored before: every key the serializer shows.
fn new_customer(external_id: Option<&Value>) -> Value {
    let now = now();
    let lago_id = external_id.and_then(Value::as_str).map(lago_id);
    let mut customer = json!({
        "lago_id": lago_id,
        "external_id": external_id,
        "account_type": "customer",
        "customer_type": null,
        "created_at": now,
        "updated_at": now,
        "timezone": null,
        "applicable_timezone": "UTC",
        "net_payment_term": null,
        "finalize_zero_amount_invoice": "inherit",
        "billing_configuration": {
            "invoice_grace_period": null,
            "payment_provider": null,
            "payment_provider_code": null,
            "document_locale": null,
            "subscription_invoice_issuing_date_anchor": null,
            "subscription_invoice_issuing_date_adjustment": null,
        },
        "shipping_address": {
            "address_line1": null, "address_line2": null, "city": null,
            "zipcode": null, "state": null, "country": null,
        },
        "skip_invoice_custom_sections": false,
        "metadata": [],
        "taxes": [],
        "integration_customers": [],
        "applicable_invoice_custom_sections": [],
        "error_details": [],
    });
    for key in KEYS {
        customer[key] = Value::Null;
    }
    customer
}

/// A stored customer (the generated ones lack most keys) with every key the serializer
/// shows.
fn with_every_key(stored: &Value) -> Value {
    let mut customer = new_customer(stored.get("external_id"));
    if let (Value::Object(all), Value::Object(known)) = (&mut customer, stored) {
        all.extend(known.clone());
    }
    customer
}

/// A uuid (version 4 in form) derived from the `external_id`, so that a customer gets the
/// same `lago_id` in every run.
fn lago_id(external_id: &str) -> String {
    let hex: String = Sha256::digest(external_id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Rails' `iso8601` of a timestamp: seconds, UTC as `Z`.
fn now() -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::now_utc()
        .format(&format)
        .expect("every component is known")
}

/// `Currencies::ACCEPTED_CURRENCIES` (lago-api `app/models/concerns/currencies.rb`); the
/// check is case-sensitive.
const CURRENCIES: [&str; 142] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHF", "CLF", "CLP", "CNY", "COP", "CRC", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD",
    "HNL", "HRK", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "ISK", "JMD", "JOD", "JPY", "KES",
    "KGS", "KHR", "KMF", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD",
    "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRO", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN",
    "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SEK", "SGD", "SHP", "SLL", "SOS",
    "SRD", "STD", "SZL", "THB", "TJS", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD",
    "UYU", "UZS", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW",
];

/// The alpha-2 codes of the `countries` gem (8.1.0, lago-api's version): ISO 3166-1's.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_like_lagos_regex() {
        for valid in [
            "billing@acme.test",
            "a.b+c@sub.acme-corp.io",
            "a@x.io, b@y.io",
            "élise@acme.fr",
        ] {
            assert!(valid_emails(valid), "{valid}");
        }
        for invalid in [
            "billing",
            "billing@acme",
            "a..b@acme.test",
            "a@-acme.test",
            "a@x.io,",
            "a b@acme.test",
        ] {
            assert!(!valid_emails(invalid), "{invalid}");
        }
        assert_eq!(sanitize_email(" a\u{200B}@x\u{2013}y.io "), "a@x-y.io");
    }

    #[test]
    fn the_code_lists_are_complete_and_sorted() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(lago_id("acme").len(), 36);
        assert_eq!(&lago_id("acme")[14..15], "4");
    }
}
