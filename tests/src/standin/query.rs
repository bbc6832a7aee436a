//! `GET query?q=<SOQL>` and the later pages of its answer, `GET query/<locator>-<offset>`
//! (its `nextRecordsUrl`). The SOQL understood is what `lago-sync push-accounts` sends,
//! parsed strictly: a select list of fields, one object, a WHERE of `=` / `!=`
//! comparisons with true, false, null or a quoted string combined with AND / OR and
//! parentheses, ORDER BY, LIMIT. Anything else is refused the way a real org refuses a
//! query it cannot run (`MALFORMED_QUERY` with the org's position report), and names the
//! metadata lacks the way it refuses those (`INVALID_TYPE`, `INVALID_FIELD`).

use std::cmp::Ordering;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{
    error::SfError,
    gate::PREFIX,
    ids,
    metadata::{FieldDef, FieldType, ObjectDef},
    rest::Reply,
    server::Org,
    sobjects::record_json,
    state::{field_value, Record, Store},
};

/// A page holds 2,000 records unless `Sforce-Query-Options: batchSize=N` asks for fewer,
/// down to 200.
const MAX_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;

/// The key prefix of Salesforce's query locators.
const LOCATOR_PREFIX: &str = "01g";

/// SOQL's reserved words, which cannot name a field or an object.
const RESERVED: [&str; 20] = [
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

/// The rows of a query's answer, kept for its later pages (Salesforce's query locator).
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    object: String,
    rows: Vec<Value>,
    /// The batch size the query asked for, which later pages keep unless they ask again.
    batch: usize,
}

pub(crate) fn run(
    org: &Org,
    store: &mut Store,
    version: &str,
    soql: Option<&str>,
    options: Option<&str>,
) -> Result<Reply, SfError> {
    let soql = soql.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        SfError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        )
    })?;
    let query = parse(org, soql)?;
    let cursor = Cursor {
        object: query.object.name.clone(),
        rows: query.rows(store, version),
        batch: batch_size(options).unwrap_or(MAX_BATCH),
    };
    // Cursors are never closed, so their count numbers the next one.
    let locator = ids::to_18(&format!("{LOCATOR_PREFIX}{:012}", store.cursors.len() + 1));
    let body = page(version, &locator, &cursor, 0, cursor.batch);
    if cursor.rows.len() > cursor.batch {
        store.cursors.insert(locator, cursor);
    }
    Ok(Reply::json(StatusCode::OK, body))
}

/// A later page: `locator` is `<query locator>-<offset>`, as the previous page named it.
pub(crate) fn more(
    store: &Store,
    version: &str,
    locator: &str,
    options: Option<&str>,
) -> Result<Reply, SfError> {
    let found = split_locator(locator).and_then(|(id, offset)| {
        let cursor = store.cursors.get(id).filter(|c| offset <= c.rows.len())?;
        Some((id, offset, cursor))
    });
    let Some((id, offset, cursor)) = found else {
        return Err(SfError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ));
    };
    let batch = batch_size(options).unwrap_or(cursor.batch);
    Ok(Reply::json(
        StatusCode::OK,
        page(version, id, cursor, offset, batch),
    ))
}

/// The object a query names after FROM, as written (for the per-object counters, which
/// count a query even when it is refused).
pub(crate) fn queried_object(soql: &str) -> Option<String> {
    let parser = Parser::new(soql);
    let from = parser.tokens.iter().position(|t| parser.is(t, "FROM"))?;
    let object = parser
        .tokens
        .get(from + 1)
        .filter(|t| t.kind == Kind::Word)?;
    Some(parser.text(object).to_owned())
}

/// The object queried by the cursor a later page's `locator` names.
pub(crate) fn cursor_object(store: &Store, locator: &str) -> Option<String> {
    let (id, _) = split_locator(locator)?;
    store.cursors.get(id).map(|cursor| cursor.object.clone())
}

fn split_locator(locator: &str) -> Option<(&str, usize)> {
    let (id, offset) = locator.rsplit_once('-')?;
    Some((id, offset.parse().ok()?))
}

/// `batchSize=N` of a `Sforce-Query-Options` header, brought within Salesforce's range.
fn batch_size(options: Option<&str>) -> Option<usize> {
    options?
        .split(',')
        .filter_map(|option| option.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("batchSize"))
        .and_then(|(_, size)| size.trim().parse::<usize>().ok())
        .map(|size| size.clamp(MIN_BATCH, MAX_BATCH))
}

fn page(version: &str, locator: &str, cursor: &Cursor, offset: usize, batch: usize) -> Value {
    let total = cursor.rows.len();
    let end = total.min(offset + batch);
    let mut body = json!({
        "totalSize": total,
        "done": end == total,
        "records": cursor.rows[offset..end],
    });
    if end < total {
        body["nextRecordsUrl"] = json!(format!("{PREFIX}/{version}/query/{locator}-{end}"));
    }
    body
}

struct Query<'o> {
    object: &'o ObjectDef,
    fields: Vec<&'o FieldDef>,
    filter: Option<Filter<'o>>,
    order: Vec<SortKey<'o>>,
    limit: Option<usize>,
}

impl Query<'_> {
    /// The matching records as the answer lists them: sorted, limited, each with the
    /// selected fields only.
    fn rows(&self, store: &Store, version: &str) -> Vec<Value> {
        let mut records: Vec<&Record> = store
            .records(&self.object.name)
            .iter()
            .filter(|record| self.filter.as_ref().is_none_or(|f| f.matches(record)))
            .collect();
        // Stable, so records equal on every key stay in insertion order.
        records.sort_by(|a, b| {
            self.order
                .iter()
                .map(|key| key.compare(a, b))
                .find(|ordering| ordering.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        records
            .into_iter()
            .take(self.limit.unwrap_or(usize::MAX))
            .map(|record| record_json(version, self.object, record, self.fields.iter().copied()))
            .collect()
    }
}

enum Filter<'o> {
    /// `field = value`, or `field != value` when not `equal`.
    Compare {
        field: &'o FieldDef,
        equal: bool,
        value: Value,
    },
    All(Vec<Filter<'o>>),
    Any(Vec<Filter<'o>>),
}

impl Filter<'_> {
    fn matches(&self, record: &Record) -> bool {
        match self {
            Filter::Compare {
                field,
                equal,
                value,
            } => same(field, &field_value(record, field), value) == *equal,
            Filter::All(terms) => terms.iter().all(|t| t.matches(record)),
            Filter::Any(terms) => terms.iter().any(|t| t.matches(record)),
        }
    }
}

/// SOQL compares text without regard to case and ids in either length; null is a value
/// like any other, so `!= 'x'` also matches an unset field.
fn same(field: &FieldDef, stored: &Value, value: &Value) -> bool {
    let is_id = field.field_type == FieldType::Id || field.field_type.reference_target().is_some();
    match (stored, value) {
        (Value::String(a), Value::String(b)) if is_id => ids::same(a, b),
        (Value::String(a), Value::String(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => stored == value,
    }
}

struct SortKey<'o> {
    field: &'o FieldDef,
    descending: bool,
    nulls_last: bool,
}

impl SortKey<'_> {
    /// Nulls go first unless `NULLS LAST`, whichever the direction; text sorts without
    /// regard to case.
    fn compare(&self, a: &Record, b: &Record) -> Ordering {
        let nulls = if self.nulls_last {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        match (field_value(a, self.field), field_value(b, self.field)) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => nulls,
            (_, Value::Null) => nulls.reverse(),
            (a, b) if self.descending => ascending(&a, &b).reverse(),
            (a, b) => ascending(&a, &b),
        }
    }
}

fn ascending(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

/// Whether `value` may be compared with `field`; otherwise the org's error code and
/// message.
fn comparable(field: &FieldDef, value: &Value) -> Result<(), (&'static str, String)> {
    let expected = match field.field_type {
        FieldType::LongTextArea { .. } => return Err(unusable(field, "filtered")),
        FieldType::Checkbox => "boolean",
        FieldType::Date => "date",
        FieldType::DateTime => "dateTime",
        FieldType::Number { .. } => "double",
        _ => "string",
    };
    let fits = match value {
        Value::Null => true,
        Value::Bool(_) => expected == "boolean",
        _ => expected == "string",
    };
    if fits {
        return Ok(());
    }
    let quotes = if expected == "string" {
        "should be enclosed in quotes"
    } else {
        "should not be enclosed in quotes"
    };
    Err((
        "INVALID_QUERY_FILTER_OPERATOR",
        format!(
            "value of filter criterion for field '{}' must be of type {expected} and {quotes}",
            field.name
        ),
    ))
}

/// Long text can be neither filtered nor sorted on.
fn unusable(field: &FieldDef, use_: &str) -> (&'static str, String) {
    (
        "INVALID_FIELD",
        format!("field '{}' can not be {use_} in a query call", field.name),
    )
}

fn parse<'o>(org: &Org<'o>, soql: &str) -> Result<Query<'o>, SfError> {
    let mut p = Parser::new(soql);
    p.expect("SELECT")?;
    let names = p.list(Parser::name)?;
    p.expect("FROM")?;
    let from = p.name()?;
    let object = org.schema.object(p.text(&from)).ok_or_else(|| {
        let message = format!("sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", p.text(&from));
        p.error(from.at, "INVALID_TYPE", &message)
    })?;
    let fields = names
        .iter()
        .map(|name| p.field(object, name))
        .collect::<Result<_, _>>()?;
    let filter = if p.accept("WHERE") {
        Some(p.condition(object)?)
    } else {
        None
    };
    let order = if p.accept("ORDER") {
        p.expect("BY")?;
        p.list(|p| p.sort_key(object))?
    } else {
        Vec::new()
    };
    let limit = if p.accept("LIMIT") {
        Some(p.number()?)
    } else {
        None
    };
    if p.peek().kind != Kind::End {
        return Err(p.unexpected());
    }
    Ok(Query {
        object,
        fields,
        filter,
        order,
        limit,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word,
    Number,
    /// A quoted string, its escapes resolved.
    Text(String),
    /// `,` `(` `)` `=` `!=` `<>`.
    Symbol,
    /// What the stand-in does not understand: other operators and characters, a string
    /// without its closing quote or with an unknown escape.
    Other,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// Byte offsets in the query.
    at: usize,
    end: usize,
}

fn tokenize(soql: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut at = 0;
    loop {
        let rest = &soql[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            break;
        }
        let (kind, len) = scan(trimmed);
        tokens.push(Token {
            kind,
            at,
            end: at + len,
        });
        at += len;
    }
    tokens.push(Token {
        kind: Kind::End,
        at: soql.len(),
        end: soql.len(),
    });
    tokens
}

/// The token `text` starts with (it is not empty and starts with no space), and its
/// length in bytes.
fn scan(text: &str) -> (Kind, usize) {
    let run = |allowed: fn(char) -> bool| text.find(|c| !allowed(c)).unwrap_or(text.len());
    match text.chars().next().expect("not empty") {
        c if c.is_ascii_alphabetic() || c == '_' => {
            (Kind::Word, run(|c| c.is_ascii_alphanumeric() || c == '_'))
        }
        c if c.is_ascii_digit() => (Kind::Number, run(|c| c.is_ascii_digit())),
        '\'' => string(text),
        ',' | '(' | ')' => (Kind::Symbol, 1),
        '=' | '!' | '<' | '>' => {
            let len = run(|c| "=!<>".contains(c));
            match &text[..len] {
                "=" | "!=" | "<>" => (Kind::Symbol, len),
                _ => (Kind::Other, len),
            }
        }
        other => (Kind::Other, other.len_utf8()),
    }
}

/// A quoted string at the start of `text`, with SOQL's escapes (`\'`, `\\`, `\n`, ...).
fn string(text: &str) -> (Kind, usize) {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' => return (Kind::Text(value), at + 1),
            '\\' => match chars.next().and_then(|(_, escaped)| unescape(escaped)) {
                Some(c) => value.push(c),
                None => break,
            },
            c => value.push(c),
        }
    }
    (Kind::Other, text.len())
}

fn unescape(c: char) -> Option<char> {
    Some(match c {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'b' => '\u{8}',
        'f' => '\u{c}',
        '\'' | '"' | '\\' => c,
        _ => return None,
    })
}

struct Parser<'q> {
    soql: &'q str,
    /// Always ends with [`Kind::End`], which is never consumed.
    tokens: Vec<Token>,
    next: usize,
}

impl<'q> Parser<'q> {
    fn new(soql: &'q str) -> Self {
        Parser {
            soql,
            tokens: tokenize(soql),
            next: 0,
        }
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.next]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::End {
            self.next += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &'q str {
        match token.kind {
            Kind::End => "<EOF>",
            _ => &self.soql[token.at..token.end],
        }
    }

    /// Whether `token` is the keyword or symbol `expected` (keywords in any case).
    fn is(&self, token: &Token, expected: &str) -> bool {
        matches!(token.kind, Kind::Word | Kind::Symbol)
            && self.text(token).eq_ignore_ascii_case(expected)
    }

    /// Takes the next token when it is `expected`.
    fn accept(&mut self, expected: &str) -> bool {
        let found = self.is(self.peek(), expected);
        if found {
            self.advance();
        }
        found
    }

    fn expect(&mut self, expected: &str) -> Result<(), SfError> {
        if self.accept(expected) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> SfError {
        let token = self.peek();
        let message = format!("unexpected token: '{}'", self.text(token));
        self.error(token.at, "MALFORMED_QUERY", &message)
    }

    /// Salesforce's report of a query error: the query's line at fault, a caret under the
    /// offending token, its row and column, then the message.
    fn error(&self, at: usize, code: &str, message: &str) -> SfError {
        let before = &self.soql[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.soql[at..]
            .find('\n')
            .map_or(self.soql.len(), |i| at + i);
        let row = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        let report = format!(
            "\n{}\n{}^\nERROR at Row:{row}:Column:{column}\n{message}",
            &self.soql[line_start..line_end],
            " ".repeat(column - 1),
        );
        SfError::new(StatusCode::BAD_REQUEST, code, report)
    }

    /// `item` once, then again after each comma.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, SfError>,
    ) -> Result<Vec<T>, SfError> {
        let mut items = vec![item(self)?];
        while self.accept(",") {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// A field or object name.
    fn name(&mut self) -> Result<Token, SfError> {
        let token = self.peek();
        let reserved = RESERVED
            .iter()
            .any(|word| self.text(token).eq_ignore_ascii_case(word));
        if token.kind != Kind::Word || reserved {
            return Err(self.unexpected());
        }
        Ok(self.advance())
    }

    fn field<'o>(&self, object: &'o ObjectDef, name: &Token) -> Result<&'o FieldDef, SfError> {
        let text = self.text(name);
        object.field(text).ok_or_else(|| {
            let message = format!("No such column '{text}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", object.name);
            self.error(name.at, "INVALID_FIELD", &message)
        })
    }

    fn number(&mut self) -> Result<usize, SfError> {
        let token = self.peek();
        match (&token.kind, self.text(token).parse()) {
            (Kind::Number, Ok(n)) => {
                self.advance();
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// Terms joined by AND, or by OR: SOQL wants parentheses to mix the two, so the other
    /// one is left unexpected.
    fn condition<'o>(&mut self, object: &'o ObjectDef) -> Result<Filter<'o>, SfError> {
        let first = self.term(object)?;
        let Some(joiner) = ["AND", "OR"]
            .into_iter()
            .find(|joiner| self.is(self.peek(), joiner))
        else {
            return Ok(first);
        };
        let mut terms = vec![first];
        while self.accept(joiner) {
            terms.push(self.term(object)?);
        }
        Ok(match joiner {
            "OR" => Filter::Any(terms),
            _ => Filter::All(terms),
        })
    }

    fn term<'o>(&mut self, object: &'o ObjectDef) -> Result<Filter<'o>, SfError> {
        if self.accept("(") {
            let inner = self.condition(object)?;
            self.expect(")")?;
            return Ok(inner);
        }
        let name = self.name()?;
        let field = self.field(object, &name)?;
        let equal = if self.accept("=") {
            true
        } else if self.accept("!=") || self.accept("<>") {
            false
        } else {
            return Err(self.unexpected());
        };
        let value = self.literal()?;
        comparable(field, &value).map_err(|(code, message)| self.error(name.at, code, &message))?;
        Ok(Filter::Compare {
            field,
            equal,
            value,
        })
    }

    fn literal(&mut self) -> Result<Value, SfError> {
        let token = self.peek();
        let value = match &token.kind {
            Kind::Text(text) => Value::String(text.clone()),
            Kind::Word => match self.text(token).to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => return Err(self.unexpected()),
            },
            _ => return Err(self.unexpected()),
        };
        self.advance();
        Ok(value)
    }

    /// `field [ASC | DESC] [NULLS FIRST | NULLS LAST]`.
    fn sort_key<'o>(&mut self, object: &'o ObjectDef) -> Result<SortKey<'o>, SfError> {
        let name = self.name()?;
        let field = self.field(object, &name)?;
        if matches!(field.field_type, FieldType::LongTextArea { .. }) {
            let (code, message) = unusable(field, "sorted");
            return Err(self.error(name.at, code, &message));
        }
        let descending = self.accept("DESC");
        if !descending {
            self.accept("ASC");
        }
        let nulls_last = if self.accept("NULLS") {
            let last = self.accept("LAST");
            if !last {
                self.expect("FIRST")?;
            }
            last
        } else {
            false
        };
        Ok(SortKey {
            field,
            descending,
            nulls_last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_their_escaped_quotes_and_unfinished_ones_are_not_understood() {
        let kinds: Vec<Kind> = tokenize(r"Name = 'O\'Brien \\ x' <> 'open")
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                Kind::Word,
                Kind::Symbol,
                Kind::Text(r"O'Brien \ x".into()),
                Kind::Symbol,
                Kind::Other,
                Kind::End
            ]
        );
    }

    #[test]
    fn errors_point_at_the_row_and_column_of_the_token() {
        let parser = Parser::new("SELECT Id\nFROM Account\nWHERE Bad__c = true");
        let error = parser.error(29, "INVALID_FIELD", "No such column");
        assert_eq!(
            error.message,
            "\nWHERE Bad__c = true\n      ^\nERROR at Row:3:Column:7\nNo such column"
        );
    }
}
