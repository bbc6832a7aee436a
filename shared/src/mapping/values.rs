//! Field conversions shared by the object mappings: text limits, dates and money.

use serde_json::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::MappingError;

/// Salesforce rejects over-long text with STRING_TOO_LONG, a permanent failure; a
/// truncated name is better than a missing record. Counts characters, as Salesforce does.
pub fn text(value: &str, max_chars: usize) -> Value {
    Value::String(value.chars().take(max_chars).collect())
}

/// Lago datetimes are ISO 8601 in UTC; older payloads used `YYYY-MM-DD HH:MM:SS`.
pub fn datetime(field: &str, value: &str) -> Result<OffsetDateTime, MappingError> {
    if let Ok(dt) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(dt);
    }
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(value, naive)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| MappingError::invalid(field, value, "expected an ISO 8601 datetime"))
}

/// Salesforce DateTime: ISO 8601 in UTC.
pub fn datetime_value(field: &str, value: &str) -> Result<Value, MappingError> {
    let utc = datetime(field, value)?.to_offset(UtcOffset::UTC);
    let text = utc.format(&Rfc3339).expect("a parsed datetime formats");
    Ok(Value::String(text))
}

/// Salesforce Date `YYYY-MM-DD`; a datetime gives its UTC date (contract §5).
pub fn date_value(field: &str, value: &str) -> Result<Value, MappingError> {
    let date = match Date::parse(value, format_description!("[year]-[month]-[day]")) {
        Ok(date) => date,
        Err(_) => datetime(field, value)?.to_offset(UtcOffset::UTC).date(),
    };
    let text = date
        .format(format_description!("[year]-[month]-[day]"))
        .expect("a date formats");
    Ok(Value::String(text))
}

/// An optional Lago datetime as a Salesforce DateTime: `None` (null or absent) stays out
/// of the record, so it never clears a value written before.
pub fn datetime_opt(field: &str, value: &Option<String>) -> Option<Result<Value, MappingError>> {
    value.as_deref().map(|v| datetime_value(field, v))
}

/// An optional Lago date or datetime as a Salesforce Date (its UTC date); `None` stays out.
pub fn date_opt(field: &str, value: &Option<String>) -> Option<Result<Value, MappingError>> {
    value.as_deref().map(|v| date_value(field, v))
}

/// An optional `*_amount_cents` in the record's currency; `None` stays out. An amount
/// without its currency cannot be converted (the exponent is unknown), so that is an error.
pub fn amount_opt(
    field: &str,
    cents: Option<i64>,
    currency: Option<&str>,
) -> Option<Result<Value, MappingError>> {
    let cents = cents?;
    Some(match currency {
        Some(currency) => amount(field, cents, currency),
        None => Err(MappingError::missing("currency")),
    })
}

/// Converts Lago minor units to the exact decimal amount, by the currency's ISO 4217
/// exponent. Built from the integer, never through a float, so no cent is ever lost.
pub fn amount(field: &str, cents: i64, currency: &str) -> Result<Value, MappingError> {
    let exponent = currency_exponent(currency)
        .ok_or_else(|| MappingError::invalid(field, currency, "not an ISO 4217 currency code"))?;
    let digits = cents.unsigned_abs().to_string();
    let sign = if cents < 0 { "-" } else { "" };
    let decimal = if exponent == 0 {
        format!("{sign}{digits}")
    } else {
        let padded = format!("{digits:0>width$}", width = exponent + 1);
        let (units, minor) = padded.split_at(padded.len() - exponent);
        format!("{sign}{units}.{minor}")
    };
    let number: Number = decimal.parse().expect("a decimal literal is a JSON number");
    Ok(Value::Number(number))
}

/// ISO 4217 minor-unit exponents; every code not listed here has two decimals.
fn currency_exponent(code: &str) -> Option<usize> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_follow_the_currency_exponent() {
        let cases = [
            (12345, "USD", "123.45"),
            (5, "USD", "0.05"),
            (0, "EUR", "0.00"),
            (-250, "EUR", "-2.50"),
            (12345, "JPY", "12345"),
            (12345, "KWD", "12.345"),
            (7, "KWD", "0.007"),
            (123456789012345678, "USD", "1234567890123456.78"),
            (10000, "CLF", "1.0000"),
        ];
        for (cents, currency, expected) in cases {
            let value = amount("total_amount_cents", cents, currency).unwrap();
            assert_eq!(value.to_string(), expected, "{cents} {currency}");
        }
        for bad in ["usd", "US", "EURO", ""] {
            assert!(amount("total_amount_cents", 1, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_and_datetimes_become_utc_dates() {
        let cases = [
            ("2025-03-01", "2025-03-01"),
            ("2025-03-01T10:15:02Z", "2025-03-01"),
            ("2025-03-01T00:00:00.000Z", "2025-03-01"),
            ("2025-03-01T23:30:00-02:00", "2025-03-02"),
            ("2022-10-06 09:52:00", "2022-10-06"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                date_value("f", input).unwrap(),
                Value::String(expected.into()),
                "{input}"
            );
        }
        for bad in ["01/03/2025", "2025-13-01", "soon"] {
            assert!(date_value("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn datetimes_are_normalised_to_utc() {
        assert_eq!(
            datetime_value("f", "2025-03-01T10:15:02+02:00").unwrap(),
            Value::String("2025-03-01T08:15:02Z".into())
        );
        assert_eq!(
            datetime_value("f", "2022-10-06 09:52:00").unwrap(),
            Value::String("2022-10-06T09:52:00Z".into())
        );
        // `payment_dispute_lost_at` comes with ActiveSupport's milliseconds.
        assert_eq!(
            datetime_value("f", "2025-03-01T10:15:02.123Z").unwrap(),
            Value::String("2025-03-01T10:15:02.123Z".into())
        );
    }

    #[test]
    fn absent_values_stay_absent() {
        assert!(datetime_opt("f", &None).is_none());
        assert!(date_opt("f", &None).is_none());
        assert!(amount_opt("f", None, None).is_none());
        let no_currency = amount_opt("f", Some(1), None).unwrap().unwrap_err();
        assert!(
            no_currency.to_string().contains("currency"),
            "{no_currency}"
        );
        let kwd = amount_opt("f", Some(1005), Some("KWD")).unwrap().unwrap();
        assert_eq!(kwd.to_string(), "1.005");
    }

    #[test]
    fn text_is_cut_by_characters() {
        assert_eq!(text(&"é".repeat(100), 80), Value::String("é".repeat(80)));
        assert_eq!(text("short", 80), Value::String("short".into()));
    }
}
