//! The org's schema as the stand-in knows it: read from the project's Salesforce DX
//! source (`objects/<Object>/...-meta.xml`), so a field the metadata does not deploy is
//! rejected here exactly as the real org would reject it.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use roxmltree::{Document, Node};

const NS: &str = "http://soap.sforce.com/2006/04/metadata";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// A record's own `Id`: 15 or 18 characters naming the same record.
    Id,
    Text {
        length: usize,
    },
    /// Salesforce's Url fields hold at most 255 characters.
    Url,
    Date,
    DateTime,
    Number {
        precision: u32,
        scale: u32,
    },
    Picklist {
        values: Vec<String>,
        restricted: bool,
    },
    Lookup {
        target: String,
        relationship_name: String,
    },
    /// A JSON boolean; Salesforce never stores null in a checkbox (unset is false).
    Checkbox,
    /// Long text, up to `length` characters (Salesforce's maximum is 131,072).
    LongTextArea {
        length: usize,
    },
    /// A lookup the child cannot exist without: required on insert, never cleared.
    MasterDetail {
        target: String,
        relationship_name: String,
    },
}

impl FieldType {
    /// The parent object of a Lookup or Master-Detail field.
    pub fn reference_target(&self) -> Option<&str> {
        match self {
            FieldType::Lookup { target, .. } | FieldType::MasterDetail { target, .. } => {
                Some(target)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    pub external_id: bool,
    pub unique: bool,
    pub case_sensitive: bool,
    /// False for the fields Salesforce sets itself (`Id`, `SystemModstamp`).
    pub updateable: bool,
}

impl FieldDef {
    /// Whether a stored value equals `value` the way Salesforce matches external ids.
    pub(crate) fn value_matches(&self, stored: &str, value: &str) -> bool {
        if self.case_sensitive {
            stored == value
        } else {
            stored.to_lowercase() == value.to_lowercase()
        }
    }
}

#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub key_prefix: String,
    /// The standard `Name` field: Text(80) on custom objects, Text(255) on Account.
    pub name_field: FieldDef,
    /// The other standard fields the stand-in knows, which the metadata never defines:
    /// `Id` and `SystemModstamp` on every object, and on Account those the project reads.
    pub standard_fields: Vec<FieldDef>,
    /// The custom fields deployed by the metadata, sorted by API name.
    pub fields: Vec<FieldDef>,
}

impl ObjectDef {
    /// Field names are case-insensitive in the API.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.all_fields()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Every field: the standard ones (`Id` first, `Name` last), then the custom ones.
    pub fn all_fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.standard_fields
            .iter()
            .chain(std::iter::once(&self.name_field))
            .chain(&self.fields)
    }
}

#[derive(Debug, Clone)]
pub struct Schema {
    objects: BTreeMap<String, ObjectDef>,
}

impl Schema {
    /// Reads every `objects/<Object>/` directory under `dir`. Field types the stand-in
    /// does not model are an error, so nobody silently tests against a wrong schema.
    pub fn load(dir: &Path) -> Result<Schema, String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_dir())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut custom_objects = 0;
        let mut objects = BTreeMap::new();
        for name in names {
            let key_prefix = if name.ends_with("__c") {
                custom_objects += 1;
                format!("a{custom_objects:02}")
            } else {
                "001".to_owned()
            };
            let object = read_object(&dir.join(&name), &name, key_prefix)?;
            objects.insert(name, object);
        }
        let schema = Schema { objects };
        schema.check_lookup_targets()?;
        Ok(schema)
    }

    /// Object names are case-insensitive in the API.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects
            .values()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    pub fn objects(&self) -> impl Iterator<Item = &ObjectDef> {
        self.objects.values()
    }

    fn check_lookup_targets(&self) -> Result<(), String> {
        for object in self.objects() {
            for field in &object.fields {
                if let Some(target) = field.field_type.reference_target() {
                    if !self.objects.contains_key(target) {
                        return Err(format!(
                            "{}.{} looks up {target}, which the metadata does not define",
                            object.name, field.name
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn read_object(dir: &Path, name: &str, key_prefix: String) -> Result<ObjectDef, String> {
    let name_field = if name.ends_with("__c") {
        custom_name_field(&dir.join(format!("{name}.object-meta.xml")))?
    } else if name == "Account" {
        text_field("Name", "Account Name", 255)
    } else {
        return Err(format!(
            "{}: standard object {name} is not modelled by the stand-in",
            dir.display()
        ));
    };
    let mut standard_fields = vec![
        system_field("Id", "Record ID", FieldType::Id),
        system_field("SystemModstamp", "System Modstamp", FieldType::DateTime),
    ];
    if name == "Account" {
        standard_fields.extend(account_fields());
    }
    let fields_dir = dir.join("fields");
    let mut paths: Vec<PathBuf> = match fs::read_dir(&fields_dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    paths.retain(|p| p.to_string_lossy().ends_with(".field-meta.xml"));
    paths.sort();
    let fields = paths
        .iter()
        .map(|p| read_field(p))
        .collect::<Result<_, _>>()?;
    Ok(ObjectDef {
        name: name.to_owned(),
        key_prefix,
        name_field,
        standard_fields,
        fields,
    })
}

/// Account's standard fields that the project reads (its outbound message and
/// `push-accounts`), with their lengths in a real org; BillingStreet is a Text Area(255),
/// filterable like text.
fn account_fields() -> [FieldDef; 7] {
    [
        text_field("BillingStreet", "Billing Street", 255),
        text_field("BillingCity", "Billing City", 40),
        text_field("BillingState", "Billing State/Province", 80),
        text_field("BillingPostalCode", "Billing Zip/Postal Code", 20),
        text_field("BillingCountry", "Billing Country", 80),
        text_field("Phone", "Account Phone", 40),
        standard_field("Website", "Website", FieldType::Url),
    ]
}

fn text_field(name: &str, label: &str, length: usize) -> FieldDef {
    standard_field(name, label, FieldType::Text { length })
}

fn standard_field(name: &str, label: &str, field_type: FieldType) -> FieldDef {
    FieldDef {
        name: name.to_owned(),
        label: label.to_owned(),
        field_type,
        external_id: false,
        unique: false,
        case_sensitive: false,
        updateable: true,
    }
}

/// A field only Salesforce writes.
fn system_field(name: &str, label: &str, field_type: FieldType) -> FieldDef {
    FieldDef {
        updateable: false,
        ..standard_field(name, label, field_type)
    }
}

fn custom_name_field(path: &Path) -> Result<FieldDef, String> {
    let source = read(path)?;
    let doc = parse(&source, path, "CustomObject")?;
    let root = doc.root_element();
    let err = |msg: &str| format!("{}: {msg}", path.display());
    let name_field = child(root, "nameField").ok_or_else(|| err("no <nameField>"))?;
    match text(name_field, "type") {
        Some("Text") => Ok(text_field(
            "Name",
            text(name_field, "label").unwrap_or("Name"),
            80,
        )),
        other => Err(err(&format!(
            "nameField type {other:?} is not modelled (only Text)"
        ))),
    }
}

fn read_field(path: &Path) -> Result<FieldDef, String> {
    let source = read(path)?;
    let doc = parse(&source, path, "CustomField")?;
    let root = doc.root_element();
    let err = |msg: String| format!("{}: {msg}", path.display());
    let required = |tag: &str| text(root, tag).ok_or_else(|| err(format!("no <{tag}>")));
    let number = |tag: &str| -> Result<u32, String> {
        required(tag)?
            .parse()
            .map_err(|e| err(format!("<{tag}>: {e}")))
    };
    let flag = |tag: &str| text(root, tag) == Some("true");
    let field_type = match required("type")? {
        "Text" => FieldType::Text {
            length: number("length")? as usize,
        },
        "Url" => FieldType::Url,
        "Date" => FieldType::Date,
        "DateTime" => FieldType::DateTime,
        "Number" => FieldType::Number {
            precision: number("precision")?,
            scale: number("scale")?,
        },
        "Picklist" => {
            let value_set = child(root, "valueSet").ok_or_else(|| err("no <valueSet>".into()))?;
            FieldType::Picklist {
                restricted: text(value_set, "restricted") == Some("true"),
                values: value_set
                    .descendants()
                    .filter(|n| n.has_tag_name((NS, "value")))
                    .filter_map(|v| text(v, "fullName").map(str::to_owned))
                    .collect(),
            }
        }
        "Lookup" => FieldType::Lookup {
            target: required("referenceTo")?.to_owned(),
            relationship_name: required("relationshipName")?.to_owned(),
        },
        "MasterDetail" => FieldType::MasterDetail {
            target: required("referenceTo")?.to_owned(),
            relationship_name: required("relationshipName")?.to_owned(),
        },
        "Checkbox" => FieldType::Checkbox,
        "LongTextArea" => FieldType::LongTextArea {
            length: number("length")? as usize,
        },
        other => {
            return Err(err(format!(
                "field type {other} is not modelled by the stand-in"
            )))
        }
    };
    let name = required("fullName")?;
    if !path
        .to_string_lossy()
        .ends_with(&format!("/{name}.field-meta.xml"))
    {
        return Err(err(format!(
            "<fullName>{name}</fullName> does not match the file name"
        )));
    }
    Ok(FieldDef {
        name: name.to_owned(),
        label: required("label")?.to_owned(),
        field_type,
        external_id: flag("externalId"),
        unique: flag("unique"),
        case_sensitive: flag("caseSensitive"),
        updateable: true,
    })
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse<'a>(source: &'a str, path: &Path, root_tag: &str) -> Result<Document<'a>, String> {
    let doc = Document::parse(source).map_err(|e| format!("{}: {e}", path.display()))?;
    if !doc.root_element().has_tag_name((NS, root_tag)) {
        return Err(format!(
            "{}: root must be <{root_tag} xmlns=\"{NS}\">",
            path.display()
        ));
    }
    Ok(doc)
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name((NS, tag)))
}

fn text<'a>(node: Node<'a, '_>, tag: &str) -> Option<&'a str> {
    child(node, tag).and_then(|c| c.text()).map(str::trim)
}
