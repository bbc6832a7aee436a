//! The Salesforce DX metadata under `salesforce/` (contract §5, §6, §8): converted by the real
//! Salesforce CLI (`sf project convert source`), and checked file by file against the
//! contract and against the rules a deploy enforces (element order, which fields a
//! permission set may name, what each layout, list view, page and flow refers to).
//!
//! `scripts/tools.sh` installs the CLI (`@salesforce/cli` from npm) and links `sf` into the
//! tools' `bin` directory. Without it the conversion test fails under `CI=true` and tells
//! how to install it elsewhere.

use std::{
    collections::{BTreeMap, BTreeSet},
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use roxmltree::{Document, Node};
use sync_testkit::standin::{FieldType as StandinType, Schema, StandinConfig};

const NS: &str = "http://soap.sforce.com/2006/04/metadata";

/// The custom objects the project deploys.
const LAGO_OBJECTS: [&str; 5] = [
    "Lago_Subscription__c",
    "Lago_Invoice__c",
    "Lago_Invoice_Line_Item__c",
    "Lago_Credit_Note__c",
    "Lago_Sync_Issue__c",
];

/// The objects with a tab in the Lago app, in the app's order after Account.
const TABBED_OBJECTS: [&str; 4] = [
    "Lago_Subscription__c",
    "Lago_Invoice__c",
    "Lago_Credit_Note__c",
    "Lago_Sync_Issue__c",
];

const APP: &str = "Lago";
const ACCOUNT_PAGE: &str = "Lago_Account_Record_Page";
const REPORT_TYPE: &str = "Accounts_with_Lago_Invoices";
const OUTBOUND_MESSAGE: &str = "Lago_Customer";
const FLOW: &str = "Lago_Sync_Account";
/// What `lago-sync salesforce-metadata` replaces: no deployment's URL, token or user is
/// committed, and `.invalid` never resolves, so an unrendered deploy sends nowhere.
const ENDPOINT_PLACEHOLDER: &str =
    "https://lago-sync.invalid/salesforce/accounts/RENDERED-BY-lago-sync";
const USER_PLACEHOLDER: &str = "integration-user@lago-sync.invalid";
/// Contract §8: what the outbound message carries, in its order.
const SENT_FIELDS: [&str; 14] = [
    "Id",
    "SystemModstamp",
    "Name",
    "Lago_Sync__c",
    "Lago_Billing_Email__c",
    "Lago_Currency__c",
    "Lago_Tax_Identification_Number__c",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "Phone",
    "Website",
];
/// Carried too, not watched: the Account's link to a Lago customer, so that an Account
/// linked before it was flagged updates that customer instead of creating a second one.
const LINK_FIELDS: [&str; 2] = ["Lago_Customer_Id__c", "Lago_External_Customer_Id__c"];
/// The Account's Lago fields the flow must not watch:
/// lago-salesforce-sync writes them, and a write of these alone sends no message. (The
/// carried ones it writes back send one more message only when Lago's value differs, and
/// that one changes nothing: the two directions never loop.)
const WRITTEN_BACK_ONLY: [&str; 6] = [
    "Lago_Sync_Status__c",
    "Lago_Sync_Error__c",
    "Lago_Customer_Id__c",
    "Lago_External_Customer_Id__c",
    "Lago_Customer_Name__c",
    "Lago_Customer_Updated_At__c",
];

// ------------------------------------------------------------------ the contract's fields

#[derive(Debug, Clone, Copy, PartialEq)]
enum Type {
    Text(usize),
    Number(u32, u32),
    Checkbox,
    Date,
    DateTime,
    Url,
    LongTextArea(usize),
    Picklist(&'static [&'static str]),
    Lookup(&'static str),
    MasterDetail(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    No,
    /// External ID, not unique.
    External,
    /// External ID, Unique.
    Unique,
}

use Key::{External, No, Unique};
use Type::*;

const AMOUNT: Type = Number(18, 3);
const ID: (Type, Key) = (Text(36), Unique);

/// An object's fields: name, type, external id.
type Fields = Vec<(&'static str, Type, Key)>;

/// Contract §5 and the fields §6 adds, object by object.
fn contract() -> Vec<(&'static str, Fields)> {
    let f = |name, t| (name, t, No);
    vec![
        (
            "Account",
            vec![
                ("Lago_Customer_Id__c", Text(36), External),
                f("Lago_External_Customer_Id__c", Text(255)),
                f("Lago_Customer_Name__c", Text(255)),
                f("Lago_Billing_Email__c", Text(255)),
                f("Lago_Currency__c", Text(3)),
                f("Lago_Tax_Identification_Number__c", Text(255)),
                f("Lago_Customer_Updated_At__c", DateTime),
                // §8
                f("Lago_Sync__c", Checkbox),
                f(
                    "Lago_Sync_Status__c",
                    Picklist(&["pending", "synced", "failed"]),
                ),
                f("Lago_Sync_Error__c", Text(255)),
            ],
        ),
        (
            "Lago_Subscription__c",
            vec![
                ("Lago_Id__c", ID.0, ID.1),
                f("Account__c", Lookup("Account")),
                f("External_Id__c", Text(255)),
                f("Plan_Code__c", Text(255)),
                f(
                    "Status__c",
                    Picklist(&["pending", "active", "terminated", "canceled", "incomplete"]),
                ),
                f("Billing_Time__c", Picklist(&["calendar", "anniversary"])),
                f("Start_Date__c", Date),
                f("Termination_Date__c", Date),
                // §6
                f("Plan_Name__c", Text(255)),
                f("Ending_Date__c", Date),
                f("Trial_Ended_Date__c", Date),
                f("Canceled_Date__c", Date),
            ],
        ),
        (
            "Lago_Invoice__c",
            vec![
                ("Lago_Id__c", ID.0, ID.1),
                f("Account__c", Lookup("Account")),
                f("Number__c", Text(255)),
                f(
                    "Status__c",
                    Picklist(&["draft", "finalized", "voided", "failed", "pending"]),
                ),
                f(
                    "Payment_Status__c",
                    Picklist(&["pending", "succeeded", "failed"]),
                ),
                f(
                    "Invoice_Type__c",
                    Picklist(&[
                        "subscription",
                        "add_on",
                        "credit",
                        "one_off",
                        "advance_charges",
                        "progressive_billing",
                    ]),
                ),
                f("Issuing_Date__c", Date),
                f("Payment_Due_Date__c", Date),
                f("Total_Amount__c", AMOUNT),
                f("Currency__c", Text(3)),
                f("File_Url__c", Url),
                // §6
                f("Total_Due_Amount__c", AMOUNT),
                f("Sub_Total_Excluding_Taxes__c", AMOUNT),
                f("Taxes_Amount__c", AMOUNT),
                f("Payment_Overdue__c", Checkbox),
                f("Payment_Dispute_Lost_At__c", DateTime),
                f("Voided_At__c", DateTime),
                f("Purchase_Order_Number__c", Text(255)),
                f("Lago_Url__c", Url),
            ],
        ),
        (
            "Lago_Credit_Note__c",
            vec![
                ("Lago_Id__c", ID.0, ID.1),
                f("Account__c", Lookup("Account")),
                f("Invoice__c", Lookup("Lago_Invoice__c")),
                f("Lago_Invoice_Id__c", Text(36)),
                f("Number__c", Text(255)),
                f("Invoice_Number__c", Text(255)),
                f(
                    "Credit_Status__c",
                    Picklist(&["available", "consumed", "voided"]),
                ),
                f(
                    "Refund_Status__c",
                    Picklist(&["pending", "succeeded", "failed"]),
                ),
                f(
                    "Reason__c",
                    Picklist(&[
                        "duplicated_charge",
                        "product_unsatisfactory",
                        "order_change",
                        "order_cancellation",
                        "fraudulent_charge",
                        "other",
                    ]),
                ),
                f("Issuing_Date__c", Date),
                f("Total_Amount__c", AMOUNT),
                f("Currency__c", Text(3)),
                f("File_Url__c", Url),
                // §6
                f("Credit_Amount__c", AMOUNT),
                f("Refund_Amount__c", AMOUNT),
                f("Balance_Amount__c", AMOUNT),
            ],
        ),
        (
            "Lago_Invoice_Line_Item__c",
            vec![
                ("Lago_Id__c", ID.0, ID.1),
                f("Invoice__c", MasterDetail("Lago_Invoice__c")),
                f(
                    "Item_Type__c",
                    Picklist(&[
                        "subscription",
                        "charge",
                        "add_on",
                        "credit",
                        "commitment",
                        "fixed_charge",
                    ]),
                ),
                f("Item_Code__c", Text(255)),
                f("Item_Name__c", Text(255)),
                f("Units__c", Number(18, 6)),
                f("Amount__c", AMOUNT),
                f("Taxes_Amount__c", AMOUNT),
                f("Total_Amount__c", AMOUNT),
                f("Currency__c", Text(3)),
                f("From_Date__c", Date),
                f("To_Date__c", Date),
            ],
        ),
        (
            "Lago_Sync_Issue__c",
            vec![
                ("Delivery_Key__c", Text(255), Unique),
                f("Status__c", Picklist(&["open", "resolved"])),
                f("Family__c", Text(255)),
                f("Webhook_Type__c", Text(255)),
                f("Lago_Id__c", Text(255)),
                f("Error_Code__c", Text(255)),
                f("Error_Message__c", LongTextArea(32768)),
                f("Attempts__c", Number(6, 0)),
                f("First_Failed_At__c", DateTime),
                f("Last_Failed_At__c", DateTime),
                f("Resolved_At__c", DateTime),
                f("Account__c", Lookup("Account")),
            ],
        ),
    ]
}

// ------------------------------------------------------------------ reading the source

fn salesforce_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../salesforce")
}

fn source_dir() -> PathBuf {
    salesforce_dir().join("force-app/main/default")
}

/// An element of a parsed file.
type N = Node<'static, 'static>;

/// One metadata file, parsed. Source and tree are leaked: tests read a hundred small files.
struct Xml {
    path: PathBuf,
    doc: &'static Document<'static>,
}

impl Xml {
    fn load(path: impl AsRef<Path>, root: &str) -> Xml {
        let path = path.as_ref().to_path_buf();
        let source =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let source: &'static str = Box::leak(source.into_boxed_str());
        let doc = Document::parse(source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            doc.root_element().has_tag_name((NS, root)),
            "{}: the root must be <{root} xmlns=\"{NS}\">",
            path.display()
        );
        Xml {
            path,
            doc: Box::leak(Box::new(doc)),
        }
    }

    fn root(&self) -> N {
        self.doc.root_element()
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

fn children(node: N, tag: &str) -> Vec<N> {
    node.children()
        .filter(|c| c.has_tag_name((NS, tag)))
        .collect()
}

fn child(node: N, tag: &str) -> Option<N> {
    children(node, tag).into_iter().next()
}

fn text(node: N, tag: &str) -> Option<&'static str> {
    child(node, tag).and_then(|c| c.text()).map(str::trim)
}

fn texts(node: N, tag: &str) -> Vec<&'static str> {
    children(node, tag)
        .into_iter()
        .filter_map(|c| c.text())
        .map(str::trim)
        .collect()
}

fn flag(node: N, tag: &str) -> bool {
    text(node, tag) == Some("true")
}

/// Files in `dir` ending with `suffix`, sorted; none when the directory is missing.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn component_name(path: &Path, suffix: &str) -> String {
    let file = path.file_name().unwrap().to_string_lossy();
    file.strip_suffix(suffix).unwrap().to_owned()
}

/// A field as its `.field-meta.xml` defines it.
struct FieldDef {
    xml: Xml,
}

impl FieldDef {
    fn node(&self) -> N {
        self.xml.root()
    }
    fn kind(&self) -> &'static str {
        text(self.node(), "type").unwrap_or_default()
    }
    /// Salesforce refuses field permissions on required fields, and master-detail fields
    /// are always required.
    fn permissions_allowed(&self) -> bool {
        !flag(self.node(), "required") && self.kind() != "MasterDetail"
    }
    fn picklist_values(&self) -> Vec<&'static str> {
        self.node()
            .descendants()
            .filter(|n| n.has_tag_name((NS, "value")))
            .filter_map(|v| text(v, "fullName"))
            .collect()
    }
}

/// Every object directory: object name → (object file when custom, fields by name).
struct Metadata {
    objects: BTreeMap<String, (Option<Xml>, BTreeMap<String, FieldDef>)>,
}

impl Metadata {
    fn load() -> Metadata {
        let dir = source_dir().join("objects");
        let mut objects = BTreeMap::new();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let object_file = dir.join(&name).join(format!("{name}.object-meta.xml"));
            let object = object_file
                .exists()
                .then(|| Xml::load(&object_file, "CustomObject"));
            let mut fields = BTreeMap::new();
            for path in files(&dir.join(&name).join("fields"), ".field-meta.xml") {
                let field = FieldDef {
                    xml: Xml::load(&path, "CustomField"),
                };
                let full_name = text(field.node(), "fullName").unwrap_or_default();
                assert_eq!(
                    full_name,
                    component_name(&path, ".field-meta.xml"),
                    "{}: fullName must match the file name",
                    field.xml.name()
                );
                fields.insert(full_name.to_owned(), field);
            }
            objects.insert(name, (object, fields));
        }
        Metadata { objects }
    }

    fn fields(&self, object: &str) -> &BTreeMap<String, FieldDef> {
        &self
            .objects
            .get(object)
            .unwrap_or_else(|| panic!("the metadata has no object {object}"))
            .1
    }

    fn object(&self, object: &str) -> &Xml {
        self.objects[object]
            .0
            .as_ref()
            .unwrap_or_else(|| panic!("{object} has no .object-meta.xml"))
    }

    fn field(&self, object: &str, field: &str) -> Option<&FieldDef> {
        self.fields(object).get(field)
    }

    /// Every custom field, as `Object.Field`.
    fn all_fields(&self) -> impl Iterator<Item = (&str, &str, &FieldDef)> {
        self.objects.iter().flat_map(|(object, (_, fields))| {
            fields
                .iter()
                .map(move |(name, def)| (object.as_str(), name.as_str(), def))
        })
    }

    /// The child relationship name (`X__r`) of the lookup `object.field`.
    fn child_relationship(&self, object: &str, field: &str) -> String {
        let def = self.field(object, field).unwrap();
        format!("{}__r", text(def.node(), "relationshipName").unwrap())
    }

    /// Whether a layout, list view or compact layout may name `field` on `object`.
    fn has_field(&self, object: &str, field: &str) -> bool {
        matches!(field, "Name" | "NAME") || self.fields(object).contains_key(field)
    }

    fn label(&self, object: &str) -> &'static str {
        text(self.object(object).root(), "label").unwrap()
    }

    fn is_detail(&self, object: &str) -> bool {
        self.fields(object)
            .values()
            .any(|f| f.kind() == "MasterDetail")
    }
}

// ------------------------------------------------------------------ element order

/// The order of the child elements of the metadata types this project writes, as the
/// Metadata API's WSDL sequences them (a deploy rejects an element out of its place
/// with "Element ... invalid at this location"). Keyed by (root type, element); only the
/// elements this project uses, or might soon, are listed.
fn element_orders() -> BTreeMap<(&'static str, &'static str), Vec<&'static str>> {
    const CUSTOM_FIELD: &str = "fullName businessOwnerGroup businessOwnerUser businessStatus \
        caseSensitive complianceGroup customDataType defaultValue deleteConstraint deprecated \
        description displayFormat encryptionScheme externalId fieldManageability formula \
        formulaTreatBlanksAs inlineHelpText label length lookupFilter populateExistingRows \
        precision referenceTargetField referenceTo relationshipLabel relationshipName \
        relationshipOrder reparentableMasterDetail required restrictedAdminField scale \
        securityClassification startingNumber stripMarkup summarizedField summaryFilterItems \
        summaryForeignKey summaryOperation trackFeedHistory trackHistory trackTrending \
        translateData type unique valueSet visibleLines writeRequiresMasterRead";
    let sequences: [(&str, &str, &str); 39] = [
        ("CustomField", "CustomField", CUSTOM_FIELD),
        (
            "CustomField",
            "valueSet",
            "controllingField restricted valueSetDefinition valueSetName valueSettings",
        ),
        ("CustomField", "valueSetDefinition", "sorted value"),
        (
            "CustomField",
            "value",
            "fullName color default description isActive label",
        ),
        (
            "CustomObject",
            "CustomObject",
            "fullName actionOverrides allowInChatterGroups businessProcesses \
             compactLayoutAssignment compactLayouts customHelp customHelpPage deploymentStatus \
             deprecated description enableActivities enableBulkApi enableFeeds enableHistory \
             enableLicensing enableReports enableSearch enableSharing enableStreamingApi \
             externalSharingModel fieldSets fields label listViews nameField pluralLabel \
             recordTypes searchLayouts sharingModel validationRules visibility webLinks",
        ),
        ("CustomObject", "nameField", CUSTOM_FIELD),
        ("CompactLayout", "CompactLayout", "fullName fields label"),
        (
            "ListView",
            "ListView",
            "fullName booleanFilter columns division filterScope filters label language \
             queue sharedTo",
        ),
        ("ListView", "filters", "field operation value"),
        (
            "Layout",
            "Layout",
            "fullName customButtons customConsoleComponents emailDefault excludeButtons \
             feedLayout headers layoutSections miniLayout multilineLayoutFields \
             platformActionList quickActionList relatedContent relatedLists relatedObjects \
             runAssignmentRulesDefault showEmailCheckbox showHighlightsPanel \
             showInteractionLogPanel showKnowledgeComponent showRunAssignmentRulesCheckbox \
             showSolutionSection showSubmitAndAttachButton summaryLayout",
        ),
        (
            "Layout",
            "layoutSections",
            "customLabel detailHeading editHeading label layoutColumns style",
        ),
        ("Layout", "layoutColumns", "layoutItems reserved"),
        (
            "Layout",
            "layoutItems",
            "analyticsCloudComponent behavior canvas component customLink emptySpace field \
             height page reportChartComponent scontrol showLabel showScrollbars width",
        ),
        (
            "Layout",
            "relatedLists",
            "customButtons excludeButtons fields quickActions relatedList sortField sortOrder",
        ),
        (
            "PermissionSet",
            "PermissionSet",
            "fullName applicationVisibilities classAccesses customMetadataTypeAccesses \
             customPermissions customSettingAccesses description externalDataSourceAccesses \
             fieldPermissions flowAccesses hasActivationRequired label license \
             objectPermissions pageAccesses recordTypeVisibilities tabSettings userPermissions",
        ),
        (
            "PermissionSet",
            "applicationVisibilities",
            "application visible",
        ),
        (
            "PermissionSet",
            "fieldPermissions",
            "editable field readable",
        ),
        (
            "PermissionSet",
            "objectPermissions",
            "allowCreate allowDelete allowEdit allowRead modifyAllRecords object viewAllFields \
             viewAllRecords",
        ),
        ("PermissionSet", "tabSettings", "tab visibility"),
        (
            "CustomTab",
            "CustomTab",
            "fullName actionOverrides auraComponent customObject description flexiPage \
             frameHeight hasSidebar icon label lwcComponent motif page scontrol splashPageLink \
             url urlEncodingKey",
        ),
        (
            "CustomApplication",
            "CustomApplication",
            "fullName actionOverrides brand consoleConfig defaultLandingTab description \
             formFactors isNavAutoTempTabsDisabled isNavPersonalizationDisabled \
             isNavTabPersistenceDisabled isOmniPinnedViewEnabled isServiceCloudConsole label \
             logo navType preferences profileActionOverrides setupExperience subscriberTabs \
             tabs uiType utilityBar workspaceConfig",
        ),
        (
            "CustomApplication",
            "actionOverrides",
            "actionName comment content formFactor skipRecordTypeSelect type pageOrSobjectType",
        ),
        (
            "CustomApplication",
            "brand",
            "footerColor headerColor logo logoVersion shouldOverrideOrgTheme",
        ),
        (
            "FlexiPage",
            "FlexiPage",
            "fullName description events flexiPageRegions masterLabel parentFlexiPage \
             platformActionlist quickActionList sobjectType template type",
        ),
        (
            "FlexiPage",
            "flexiPageRegions",
            "appendable itemInstances mode name prependable replaceable type",
        ),
        (
            "FlexiPage",
            "itemInstances",
            "componentInstance fieldInstance",
        ),
        (
            "FlexiPage",
            "componentInstance",
            "componentInstanceProperties componentName identifier visibilityRule",
        ),
        (
            "FlexiPage",
            "componentInstanceProperties",
            "name type value valueList",
        ),
        (
            "FlexiPage",
            "fieldInstance",
            "fieldInstanceProperties fieldItem identifier visibilityRule",
        ),
        ("FlexiPage", "fieldInstanceProperties", "name value"),
        ("FlexiPage", "template", "name properties"),
        (
            "ReportType",
            "ReportType",
            "fullName autogenerated baseObject category deployed description join label \
             sections",
        ),
        ("ReportType", "join", "join outerJoin relationship"),
        (
            "Workflow",
            "Workflow",
            "fullName alerts fieldUpdates flowActions knowledgePublishes outboundMessages \
             rules send tasks",
        ),
        (
            "Workflow",
            "outboundMessages",
            "fullName apiVersion description endpointUrl fields includeSessionId \
             integrationUser name protected useDeadLetterQueue",
        ),
        (
            "Flow",
            "Flow",
            "fullName actionCalls apiVersion assignments decisions description environments \
             formulas interviewLabel label processMetadataValues processType recordLookups \
             recordUpdates start status variables",
        ),
        ("Flow", "processMetadataValues", "name value"),
        // A flow node's elements start with those of FlowNode, which it extends.
        (
            "Flow",
            "actionCalls",
            "processMetadataValues description name label locationX locationY actionName \
             actionType connector faultConnector flowTransactionModel inputParameters \
             nameSegment offset outputParameters storeOutputAutomatically versionSegment",
        ),
        (
            "Flow",
            "start",
            "processMetadataValues description name label locationX locationY connector \
             doesRequireRecordChangedToMeetCriteria filterFormula filterLogic filters object \
             recordTriggerType scheduledPaths triggerType",
        ),
    ];
    let mut orders: BTreeMap<(&str, &str), Vec<&str>> = sequences
        .into_iter()
        .map(|(root, element, order)| ((root, element), order.split_whitespace().collect()))
        .collect();
    orders.insert(("ReportType", "sections"), vec!["columns", "masterLabel"]);
    orders.insert(
        ("ReportType", "columns"),
        vec!["checkedByDefault", "displayNameOverride", "field", "table"],
    );
    orders
}

/// Every element with a known sequence has only known children, in that sequence.
fn check_element_order(xml: &Xml, orders: &BTreeMap<(&str, &str), Vec<&str>>) {
    let root = xml.root().tag_name().name();
    for node in xml.root().descendants().filter(Node::is_element) {
        let Some(order) = orders.get(&(root, node.tag_name().name())) else {
            continue;
        };
        let mut last = 0;
        let mut last_name = "";
        for c in node.children().filter(Node::is_element) {
            let name = c.tag_name().name();
            let at = order.iter().position(|o| *o == name).unwrap_or_else(|| {
                panic!(
                    "{}: <{name}> is not an element of <{}>",
                    xml.name(),
                    node.tag_name().name()
                )
            });
            assert!(
                at >= last,
                "{}: <{name}> must come before <{last_name}> in <{}>",
                xml.name(),
                node.tag_name().name()
            );
            (last, last_name) = (at, name);
        }
    }
}

fn all_metadata_files() -> Vec<(PathBuf, &'static str)> {
    let root = source_dir();
    let mut found = Vec::new();
    let mut walk = vec![root.clone()];
    while let Some(dir) = walk.pop() {
        for entry in fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                walk.push(path);
                continue;
            }
            let name = path.to_string_lossy().into_owned();
            let kind = [
                (".field-meta.xml", "CustomField"),
                (".object-meta.xml", "CustomObject"),
                (".compactLayout-meta.xml", "CompactLayout"),
                (".listView-meta.xml", "ListView"),
                (".layout-meta.xml", "Layout"),
                (".permissionset-meta.xml", "PermissionSet"),
                (".tab-meta.xml", "CustomTab"),
                (".app-meta.xml", "CustomApplication"),
                (".flexipage-meta.xml", "FlexiPage"),
                (".reportType-meta.xml", "ReportType"),
                (".workflow-meta.xml", "Workflow"),
                (".flow-meta.xml", "Flow"),
            ]
            .into_iter()
            .find(|(suffix, _)| name.ends_with(suffix))
            .map(|(_, kind)| kind);
            match kind {
                Some(kind) => found.push((path, kind)),
                // A type this list does not know yet is checked by the conversion alone.
                None => assert!(name.ends_with("-meta.xml"), "{name}: not a metadata file"),
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_file_parses_and_keeps_the_wsdl_element_order() {
    let orders = element_orders();
    let all = all_metadata_files();
    assert!(all.len() > 50, "only {} metadata files found", all.len());
    for (path, kind) in all {
        check_element_order(&Xml::load(&path, kind), &orders);
    }
}

// ------------------------------------------------------------------ fields

#[test]
fn every_contract_field_exists_with_its_type() {
    let metadata = Metadata::load();
    for (object, fields) in contract() {
        if object != "Account" {
            let root = metadata.object(object).root();
            let name_field = child(root, "nameField").expect("nameField");
            assert_eq!(
                text(name_field, "type"),
                Some("Text"),
                "{object}.Name is Text(80)"
            );
        }
        for (name, expected, key) in fields {
            let def = metadata
                .field(object, name)
                .unwrap_or_else(|| panic!("{object}.{name} is missing"));
            let node = def.node();
            let at = format!("{object}.{name}");
            let number = |tag: &str| text(node, tag).and_then(|v| v.parse::<u32>().ok());
            match expected {
                Text(length) => {
                    assert_eq!(def.kind(), "Text", "{at}");
                    assert_eq!(number("length"), Some(length as u32), "{at} length");
                }
                LongTextArea(length) => {
                    assert_eq!(def.kind(), "LongTextArea", "{at}");
                    assert_eq!(number("length"), Some(length as u32), "{at} length");
                    assert!(number("visibleLines").is_some(), "{at} needs visibleLines");
                }
                Number(precision, scale) => {
                    assert_eq!(def.kind(), "Number", "{at}");
                    assert_eq!(
                        (number("precision"), number("scale")),
                        (Some(precision), Some(scale)),
                        "{at} precision and scale"
                    );
                }
                Checkbox => {
                    assert_eq!(def.kind(), "Checkbox", "{at}");
                    // Salesforce requires a checkbox's default value.
                    assert_eq!(text(node, "defaultValue"), Some("false"), "{at} default");
                }
                Date => assert_eq!(def.kind(), "Date", "{at}"),
                DateTime => assert_eq!(def.kind(), "DateTime", "{at}"),
                Url => assert_eq!(def.kind(), "Url", "{at}"),
                Picklist(values) => {
                    assert_eq!(def.kind(), "Picklist", "{at}");
                    assert_eq!(def.picklist_values(), values, "{at} values");
                }
                Lookup(target) => {
                    assert_eq!(def.kind(), "Lookup", "{at}");
                    assert_eq!(text(node, "referenceTo"), Some(target), "{at} target");
                    // A missing parent never blocks the child (credit note before invoice).
                    assert_eq!(text(node, "deleteConstraint"), Some("SetNull"), "{at}");
                    assert!(!flag(node, "required"), "{at} must not be required");
                }
                MasterDetail(target) => {
                    assert_eq!(def.kind(), "MasterDetail", "{at}");
                    assert_eq!(text(node, "referenceTo"), Some(target), "{at} target");
                    // An upsert sends the master again on the update path, which
                    // Salesforce accepts only from a reparentable master-detail field.
                    assert!(flag(node, "reparentableMasterDetail"), "{at} reparentable");
                    assert_eq!(text(node, "required"), None, "{at}: no <required>");
                    let sharing = text(metadata.object(object).root(), "sharingModel");
                    assert_eq!(sharing, Some("ControlledByParent"), "{object} sharing");
                }
            }
            if matches!(expected, Lookup(_) | MasterDetail(_)) {
                assert!(
                    text(node, "relationshipName").is_some(),
                    "{at} relationship"
                );
            }
            assert_eq!(
                (flag(node, "externalId"), flag(node, "unique")),
                match key {
                    No => (false, false),
                    External => (true, false),
                    Unique => (true, true),
                },
                "{at} external id and uniqueness"
            );
        }
    }
    let delivery = metadata
        .field("Lago_Sync_Issue__c", "Delivery_Key__c")
        .unwrap();
    assert!(
        flag(delivery.node(), "caseSensitive"),
        "delivery keys differ by case: their uniqueness must be case-sensitive"
    );
}

#[test]
fn picklists_are_unrestricted_and_no_lago_field_is_required() {
    let metadata = Metadata::load();
    for (object, name, def) in metadata.all_fields() {
        if def.kind() == "Picklist" {
            let restricted = child(def.node(), "valueSet").and_then(|v| text(v, "restricted"));
            assert_eq!(
                restricted,
                Some("false"),
                "{object}.{name}: a new Lago value must land"
            );
        }
        assert!(
            !flag(def.node(), "required"),
            "{object}.{name}: a required field would block writes that omit it"
        );
    }
}

#[test]
fn the_standin_loads_every_object_and_field_type() {
    let schema = Schema::load(&StandinConfig::repo_metadata_dir()).unwrap();
    let metadata = Metadata::load();
    for object in metadata.objects.keys() {
        let def = schema
            .object(object)
            .unwrap_or_else(|| panic!("the stand-in does not load {object}"));
        assert_eq!(def.fields.len(), metadata.fields(object).len(), "{object}");
    }
    let line_item = schema.object("Lago_Invoice_Line_Item__c").unwrap();
    assert!(matches!(
        line_item.field("Invoice__c").unwrap().field_type,
        StandinType::MasterDetail { .. }
    ));
    let invoice = schema.object("Lago_Invoice__c").unwrap();
    assert_eq!(
        invoice.field("Payment_Overdue__c").unwrap().field_type,
        StandinType::Checkbox
    );
    let issue = schema.object("Lago_Sync_Issue__c").unwrap();
    assert_eq!(
        issue.field("Error_Message__c").unwrap().field_type,
        StandinType::LongTextArea { length: 32768 }
    );
}

// ------------------------------------------------------------------ permission sets

struct PermissionSet {
    xml: Xml,
}

impl PermissionSet {
    fn load(name: &str) -> PermissionSet {
        let path = source_dir().join(format!("permissionsets/{name}.permissionset-meta.xml"));
        PermissionSet {
            xml: Xml::load(path, "PermissionSet"),
        }
    }

    /// Field → (readable, editable).
    fn fields(&self) -> BTreeMap<&'static str, (bool, bool)> {
        let mut found = BTreeMap::new();
        for p in children(self.xml.root(), "fieldPermissions") {
            let field = text(p, "field").unwrap();
            let access = (flag(p, "readable"), flag(p, "editable"));
            assert!(
                found.insert(field, access).is_none(),
                "{}: {field} is listed twice",
                self.xml.name()
            );
        }
        found
    }

    /// Object → (create, read, edit, delete, view all, modify all).
    fn objects(&self) -> BTreeMap<&'static str, [bool; 6]> {
        children(self.xml.root(), "objectPermissions")
            .into_iter()
            .map(|p| {
                (
                    text(p, "object").unwrap(),
                    [
                        flag(p, "allowCreate"),
                        flag(p, "allowRead"),
                        flag(p, "allowEdit"),
                        flag(p, "allowDelete"),
                        flag(p, "viewAllRecords"),
                        flag(p, "modifyAllRecords"),
                    ],
                )
            })
            .collect()
    }
}

/// Every custom field, with the access a permission set may grant on it (None: Salesforce
/// refuses any field permission on it).
fn expected_field_access(
    metadata: &Metadata,
    access: (bool, bool),
) -> BTreeMap<String, (bool, bool)> {
    metadata
        .all_fields()
        .filter(|(_, _, def)| def.permissions_allowed())
        .map(|(object, name, _)| (format!("{object}.{name}"), access))
        .collect()
}

#[test]
fn lago_sync_reads_and_edits_every_lago_field_and_object() {
    let metadata = Metadata::load();
    let set = PermissionSet::load("Lago_Sync");
    let granted: BTreeMap<String, (bool, bool)> = set
        .fields()
        .into_iter()
        .map(|(f, a)| (f.to_owned(), a))
        .collect();
    assert_eq!(granted, expected_field_access(&metadata, (true, true)));
    let objects = set.objects();
    assert_eq!(
        objects.get("Account"),
        Some(&[false, true, true, false, false, false]),
        "Lago_Sync reads and edits Accounts, never creates them"
    );
    for object in LAGO_OBJECTS {
        assert_eq!(
            objects.get(object),
            Some(&[true, true, true, false, false, false]),
            "Lago_Sync creates, reads and edits {object}"
        );
    }
    assert_eq!(objects.len(), LAGO_OBJECTS.len() + 1);
}

#[test]
fn lago_viewer_reads_every_lago_field_object_tab_and_the_app() {
    let metadata = Metadata::load();
    let set = PermissionSet::load("Lago_Viewer");
    let granted: BTreeMap<String, (bool, bool)> = set
        .fields()
        .into_iter()
        .map(|(f, a)| (f.to_owned(), a))
        .collect();
    // Read only, but for the one field users set: ticking Bill with Lago (contract §8).
    let mut expected = expected_field_access(&metadata, (true, false));
    *expected.get_mut("Account.Lago_Sync__c").unwrap() = (true, true);
    assert_eq!(granted, expected);
    let editable: Vec<&str> = granted
        .iter()
        .filter(|(_, (_, edit))| *edit)
        .map(|(field, _)| field.as_str())
        .collect();
    assert_eq!(editable, ["Account.Lago_Sync__c"]);
    let objects = set.objects();
    for object in LAGO_OBJECTS.iter().chain(&["Account"]) {
        assert_eq!(
            objects.get(object),
            Some(&[false, true, false, false, false, false]),
            "Lago_Viewer only reads {object}"
        );
    }
    assert_eq!(objects.len(), LAGO_OBJECTS.len() + 1);

    let tabs: BTreeMap<&str, &str> = children(set.xml.root(), "tabSettings")
        .into_iter()
        .map(|t| (text(t, "tab").unwrap(), text(t, "visibility").unwrap()))
        .collect();
    let expected: BTreeMap<&str, &str> = TABBED_OBJECTS.iter().map(|t| (*t, "Visible")).collect();
    assert_eq!(tabs, expected);

    let apps: Vec<(&str, bool)> = children(set.xml.root(), "applicationVisibilities")
        .into_iter()
        .map(|a| (text(a, "application").unwrap(), flag(a, "visible")))
        .collect();
    assert_eq!(apps, [(APP, true)]);
}

// ------------------------------------------------------------------ the app

#[test]
fn the_lago_app_has_its_tabs_and_its_own_account_page() {
    let metadata = Metadata::load();
    let app = Xml::load(
        source_dir().join("applications/Lago.app-meta.xml"),
        "CustomApplication",
    );
    let root = app.root();
    assert_eq!(text(root, "label"), Some("Lago"));
    assert_eq!(text(root, "navType"), Some("Standard"));
    assert_eq!(text(root, "uiType"), Some("Lightning"));
    let mut expected = vec!["standard-Account"];
    expected.extend(TABBED_OBJECTS);
    assert_eq!(texts(root, "tabs"), expected);
    for object in TABBED_OBJECTS {
        let tab = Xml::load(
            source_dir().join(format!("tabs/{object}.tab-meta.xml")),
            "CustomTab",
        );
        assert!(
            flag(tab.root(), "customObject"),
            "{object} tab shows the object"
        );
        let motif = text(tab.root(), "motif").unwrap_or_default();
        assert!(
            motif.starts_with("Custom") && motif.contains(": "),
            "{object} tab motif {motif:?}"
        );
        assert!(metadata.objects.contains_key(object));
    }
    assert_eq!(
        files(&source_dir().join("tabs"), ".tab-meta.xml").len(),
        TABBED_OBJECTS.len()
    );

    // The Account page is this app's default, for this app only: no profile or record
    // type narrows it, and nothing touches the org's own Account layout.
    let overrides = children(root, "actionOverrides");
    assert!(!overrides.is_empty());
    for o in &overrides {
        assert_eq!(text(*o, "actionName"), Some("View"));
        assert_eq!(text(*o, "type"), Some("Flexipage"));
        assert_eq!(text(*o, "content"), Some(ACCOUNT_PAGE));
        assert_eq!(text(*o, "pageOrSobjectType"), Some("Account"));
    }
    assert!(overrides
        .iter()
        .any(|o| text(*o, "formFactor") == Some("Large")));
    for o in children(root, "profileActionOverrides") {
        assert_eq!(text(o, "content"), Some(ACCOUNT_PAGE));
    }
    assert!(files(&source_dir().join("layouts"), ".layout-meta.xml")
        .iter()
        .all(|p| !component_name(p, ".layout-meta.xml").starts_with("Account-")));

    let page = Xml::load(
        source_dir().join(format!("flexipages/{ACCOUNT_PAGE}.flexipage-meta.xml")),
        "FlexiPage",
    );
    let page_root = page.root();
    assert_eq!(text(page_root, "type"), Some("RecordPage"));
    assert_eq!(text(page_root, "sobjectType"), Some("Account"));
    let template = child(page_root, "template").and_then(|t| text(t, "name"));
    assert_eq!(template, Some("flexipage:recordHomeTemplateDesktop"));
    let instances: Vec<N> = page_root
        .descendants()
        .filter(|n| {
            n.has_tag_name((NS, "componentInstance")) || n.has_tag_name((NS, "fieldInstance"))
        })
        .collect();
    let identifiers: Vec<&str> = instances
        .iter()
        .filter_map(|c| text(*c, "identifier"))
        .collect();
    let unique: BTreeSet<&str> = identifiers.iter().copied().collect();
    assert_eq!(
        identifiers.len(),
        instances.len(),
        "every component and field has an identifier"
    );
    assert_eq!(
        unique.len(),
        identifiers.len(),
        "identifiers are unique on the page"
    );
    let components: Vec<N> = instances
        .iter()
        .copied()
        .filter(|n| n.has_tag_name((NS, "componentInstance")))
        .collect();
    let name_of = |c: &N| text(*c, "componentName").unwrap_or_default();
    assert!(components.iter().any(|c| name_of(c) == "force:detailPanel"));
    assert!(components
        .iter()
        .any(|c| name_of(c) == "force:highlightsPanel"));
    let property = |c: &N, name: &str| {
        children(*c, "componentInstanceProperties")
            .into_iter()
            .find(|p| text(*p, "name") == Some(name))
            .and_then(|p| text(p, "value"))
    };
    let related: BTreeSet<String> = components
        .iter()
        .filter(|c| name_of(c) == "force:relatedListSingleContainer")
        .map(|c| {
            assert_eq!(property(c, "parentFieldApiName"), Some("Account.Id"));
            property(c, "relatedListApiName").unwrap().to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = [
        "Lago_Subscription__c",
        "Lago_Invoice__c",
        "Lago_Credit_Note__c",
    ]
    .into_iter()
    .map(|o| metadata.child_relationship(o, "Account__c"))
    .collect();
    assert_eq!(
        related, expected,
        "the Account's subscriptions, invoices and credit notes"
    );

    // Contract §8 where users see it: a field section (Dynamic Forms) at the top of the
    // page's main region, where users tick Bill with Lago and read what came of it.
    let regions: BTreeMap<&str, N> = children(page_root, "flexiPageRegions")
        .into_iter()
        .map(|r| (text(r, "name").unwrap(), r))
        .collect();
    let facet = |name: Option<&str>| {
        let region = name.and_then(|n| regions.get(n)).copied();
        let region = region.unwrap_or_else(|| panic!("no facet named {name:?}"));
        assert_eq!(text(region, "type"), Some("Facet"), "{name:?}");
        region
    };
    let sections: Vec<&N> = components
        .iter()
        .filter(|c| name_of(c) == "flexipage:fieldSection")
        .collect();
    assert_eq!(sections.len(), 1, "one field section");
    let main = regions["main"];
    let first = main
        .descendants()
        .find(|n| n.has_tag_name((NS, "componentInstance")));
    assert_eq!(
        first,
        Some(*sections[0]),
        "the section opens the main region"
    );
    let mut fields = Vec::new();
    let columns = facet(property(sections[0], "columns"));
    for column in columns
        .descendants()
        .filter(|n| n.has_tag_name((NS, "componentInstance")))
    {
        assert_eq!(name_of(&column), "flexipage:column");
        for field in facet(property(&column, "body"))
            .descendants()
            .filter(|n| n.has_tag_name((NS, "fieldInstance")))
        {
            let behavior = children(field, "fieldInstanceProperties")
                .into_iter()
                .find(|p| text(*p, "name") == Some("uiBehavior"))
                .and_then(|p| text(p, "value"));
            fields.push((text(field, "fieldItem").unwrap(), behavior.unwrap()));
        }
    }
    // The status and the error are the project's to set.
    assert_eq!(
        fields,
        [
            ("Record.Lago_Sync__c", "none"),
            ("Record.Lago_Sync_Status__c", "readonly"),
            ("Record.Lago_Sync_Error__c", "readonly"),
        ]
    );
}

// ------------------------------------------------------------------ Salesforce → Lago

fn source_api_version() -> String {
    let project = fs::read_to_string(salesforce_dir().join("sfdx-project.json")).unwrap();
    let project: serde_json::Value = serde_json::from_str(&project).unwrap();
    project["sourceApiVersion"].as_str().unwrap().to_owned()
}

#[test]
fn bill_with_lago_and_its_outcome_speak_to_users() {
    let metadata = Metadata::load();
    for (field, label) in [
        ("Lago_Sync__c", "Bill with Lago"),
        ("Lago_Sync_Status__c", "Lago Sync Status"),
        ("Lago_Sync_Error__c", "Lago Sync Error"),
    ] {
        let node = metadata.field("Account", field).unwrap().node();
        assert_eq!(text(node, "label"), Some(label));
        assert!(
            text(node, "inlineHelpText").is_some_and(|help| !help.is_empty()),
            "{field}: users read what it does"
        );
    }
}

#[test]
fn the_outbound_message_carries_the_account_to_a_placeholder_endpoint() {
    let metadata = Metadata::load();
    let workflow = Xml::load(
        source_dir().join("workflows/Account.workflow-meta.xml"),
        "Workflow",
    );
    let root = workflow.root();
    // The outbound message alone: Workflow Rules are retired, the flow sends it.
    let elements: Vec<&str> = root
        .children()
        .filter(Node::is_element)
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(elements, ["outboundMessages"]);
    let message = child(root, "outboundMessages").unwrap();
    assert_eq!(text(message, "fullName"), Some(OUTBOUND_MESSAGE));
    assert!(text(message, "name").is_some(), "its label is required");
    let carried: Vec<&str> = SENT_FIELDS.iter().chain(&LINK_FIELDS).copied().collect();
    assert_eq!(texts(message, "fields"), carried);
    for field in carried.iter().filter(|f| f.ends_with("__c")) {
        assert!(
            metadata.field("Account", field).is_some(),
            "Account.{field}?"
        );
    }
    let api_version = source_api_version();
    assert_eq!(text(message, "apiVersion"), Some(api_version.as_str()));
    assert_eq!(
        text(message, "includeSessionId"),
        Some("false"),
        "no Salesforce session leaves the org"
    );
    assert_eq!(text(message, "protected"), Some("false"));
    assert_eq!(text(message, "endpointUrl"), Some(ENDPOINT_PLACEHOLDER));
    assert_eq!(text(message, "integrationUser"), Some(USER_PLACEHOLDER));
}

#[test]
fn the_flow_sends_the_message_when_a_billed_account_is_new_or_what_it_carries_changed() {
    let metadata = Metadata::load();
    let flow = Xml::load(
        source_dir().join(format!("flows/{FLOW}.flow-meta.xml")),
        "Flow",
    );
    let root = flow.root();
    assert_eq!(text(root, "processType"), Some("AutoLaunchedFlow"));
    assert_eq!(text(root, "status"), Some("Active"));
    let api_version = source_api_version();
    assert_eq!(text(root, "apiVersion"), Some(api_version.as_str()));
    assert!(text(root, "label").is_some());

    let start = child(root, "start").unwrap();
    assert_eq!(text(start, "object"), Some("Account"));
    assert_eq!(text(start, "triggerType"), Some("RecordAfterSave"));
    assert_eq!(text(start, "recordTriggerType"), Some("CreateAndUpdate"));
    // The formula alone decides; "only when updated to meet the conditions" would refuse
    // its ISCHANGED.
    for other in [
        "filters",
        "filterLogic",
        "doesRequireRecordChangedToMeetCriteria",
    ] {
        assert!(child(start, other).is_none(), "<{other}> in the start");
    }
    let formula: String = text(start, "filterFormula")
        .unwrap()
        .split_whitespace()
        .collect();
    // What the message carries, but its Id (never changes) and SystemModstamp (changes on
    // every save, also the project's own writes).
    let changed: Vec<String> = SENT_FIELDS[2..]
        .iter()
        .map(|f| format!("ISCHANGED({{!$Record.{f}}})"))
        .collect();
    let expected = format!(
        "AND({{!$Record.Lago_Sync__c}},OR(ISNEW(),{}))",
        changed.join(",")
    );
    assert_eq!(formula, expected);
    for field in WRITTEN_BACK_ONLY {
        assert!(
            !formula.contains(field),
            "a write of {field} would send the message again"
        );
    }
    let account_fields: BTreeSet<&str> = metadata
        .fields("Account")
        .keys()
        .map(String::as_str)
        .collect();
    let sent_or_not_watched: BTreeSet<&str> = SENT_FIELDS
        .iter()
        .filter(|f| f.ends_with("__c"))
        .chain(&WRITTEN_BACK_ONLY)
        .copied()
        .collect();
    assert_eq!(
        account_fields, sent_or_not_watched,
        "a new Account field is either carried (and watched) or listed as not watched"
    );

    // One action, the outbound message, named as the Metadata API names it.
    let actions = children(root, "actionCalls");
    assert_eq!(actions.len(), 1);
    let action = actions[0];
    let message = format!("Account.{OUTBOUND_MESSAGE}");
    assert_eq!(text(action, "actionType"), Some("outboundMessage"));
    assert_eq!(text(action, "actionName"), Some(message.as_str()));
    assert_eq!(text(action, "nameSegment"), Some(message.as_str()));
    assert!(child(action, "connector").is_none(), "nothing after it");
    let first = child(start, "connector").and_then(|c| text(c, "targetReference"));
    assert_eq!(first, text(action, "name"));
}

// ------------------------------------------------------------------ layouts

#[test]
fn each_lago_object_has_a_full_layout_and_a_compact_layout() {
    let metadata = Metadata::load();
    let system = ["CreatedById", "LastModifiedById", "OwnerId"];
    for object in LAGO_OBJECTS {
        let label = metadata.label(object);
        // The name Salesforce gives the layout it creates with the object, so deploying
        // replaces that layout and keeps its profile assignments.
        let path = source_dir().join(format!("layouts/{object}-{label} Layout.layout-meta.xml"));
        let layout = Xml::load(&path, "Layout");
        let mut placed: Vec<&str> = Vec::new();
        let sections = children(layout.root(), "layoutSections");
        assert!(sections.len() >= 3, "{object}: sections group the fields");
        for section in sections {
            for item in section
                .descendants()
                .filter(|n| n.has_tag_name((NS, "layoutItems")))
            {
                let field = text(item, "field").unwrap();
                let behavior = text(item, "behavior").unwrap();
                if system.contains(&field) {
                    assert!(
                        !(field == "OwnerId" && metadata.is_detail(object)),
                        "{object} is a detail: it has no owner"
                    );
                    continue;
                }
                assert!(
                    metadata.has_field(object, field),
                    "{object} layout: {field}?"
                );
                let required = field == "Name"
                    || metadata.field(object, field).map(FieldDef::kind) == Some("MasterDetail");
                assert_eq!(
                    behavior == "Required",
                    required,
                    "{object} layout: {field} is {behavior}"
                );
                placed.push(field);
            }
        }
        let mut expected: Vec<&str> = metadata.fields(object).keys().map(String::as_str).collect();
        expected.push("Name");
        expected.sort();
        placed.sort();
        assert_eq!(placed, expected, "{object}: every field once on its layout");

        for related in children(layout.root(), "relatedLists") {
            let list = text(related, "relatedList").unwrap();
            let (child_object, field) = list.split_once('.').unwrap();
            let def = metadata.field(child_object, field).unwrap();
            assert_eq!(text(def.node(), "referenceTo"), Some(object), "{list}");
            for column in texts(related, "fields") {
                assert!(
                    metadata.has_field(child_object, column),
                    "{list}: {column}?"
                );
            }
        }

        let assigned = text(metadata.object(object).root(), "compactLayoutAssignment")
            .unwrap_or_else(|| panic!("{object} has no compactLayoutAssignment"));
        let compact = Xml::load(
            source_dir().join(format!(
                "objects/{object}/compactLayouts/{assigned}.compactLayout-meta.xml"
            )),
            "CompactLayout",
        );
        assert_eq!(text(compact.root(), "fullName"), Some(assigned));
        let fields = texts(compact.root(), "fields");
        assert!(
            (3..=10).contains(&fields.len()),
            "{object} compact layout size"
        );
        assert_eq!(fields[0], "Name");
        for field in fields {
            assert!(
                metadata.has_field(object, field),
                "{object} compact: {field}?"
            );
            let kind = metadata.field(object, field).map(FieldDef::kind);
            assert_ne!(
                kind,
                Some("LongTextArea"),
                "compact layouts refuse long text"
            );
        }
    }
    let invoice = Xml::load(
        source_dir().join("layouts/Lago_Invoice__c-Lago Invoice Layout.layout-meta.xml"),
        "Layout",
    );
    let lists: Vec<&str> = children(invoice.root(), "relatedLists")
        .into_iter()
        .filter_map(|r| text(r, "relatedList"))
        .collect();
    assert!(lists.contains(&"Lago_Invoice_Line_Item__c.Invoice__c"));
    assert!(lists.contains(&"Lago_Credit_Note__c.Invoice__c"));
}

// ------------------------------------------------------------------ list views

fn list_view(object: &str, name: &str) -> Xml {
    Xml::load(
        source_dir().join(format!(
            "objects/{object}/listViews/{name}.listView-meta.xml"
        )),
        "ListView",
    )
}

fn filters(view: &Xml) -> BTreeSet<(&'static str, &'static str, &'static str)> {
    children(view.root(), "filters")
        .into_iter()
        .map(|f| {
            (
                text(f, "field").unwrap(),
                text(f, "operation").unwrap(),
                text(f, "value").unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn list_views_filter_as_stated() {
    let metadata = Metadata::load();
    for object in LAGO_OBJECTS {
        let all = list_view(object, "All");
        assert_eq!(text(all.root(), "label"), Some("All"));
        assert_eq!(text(all.root(), "filterScope"), Some("Everything"));
        assert!(filters(&all).is_empty(), "{object}: All shows everything");
        for path in files(
            &source_dir().join(format!("objects/{object}/listViews")),
            ".listView-meta.xml",
        ) {
            let view = Xml::load(&path, "ListView");
            assert_eq!(
                text(view.root(), "fullName"),
                Some(component_name(&path, ".listView-meta.xml").as_str())
            );
            assert_eq!(text(view.root(), "filterScope"), Some("Everything"));
            for column in texts(view.root(), "columns") {
                assert!(
                    metadata.has_field(object, column),
                    "{}: {column}?",
                    view.name()
                );
            }
            for (field, _, value) in filters(&view) {
                let def = metadata.field(object, field).unwrap();
                if def.kind() == "Picklist" {
                    assert!(def.picklist_values().contains(&value), "{field} = {value}");
                }
            }
        }
    }
    let cases = [
        (
            "Lago_Invoice__c",
            "Unpaid",
            "Unpaid",
            vec![
                ("Status__c", "equals", "finalized"),
                ("Payment_Status__c", "notEqual", "succeeded"),
            ],
        ),
        (
            "Lago_Invoice__c",
            "Overdue",
            "Overdue",
            // A checkbox filter compares with 1 (true) or 0 (false).
            vec![("Payment_Overdue__c", "equals", "1")],
        ),
        (
            "Lago_Subscription__c",
            "Active",
            "Active",
            vec![("Status__c", "equals", "active")],
        ),
        (
            "Lago_Sync_Issue__c",
            "Open_Issues",
            "Open issues",
            vec![("Status__c", "equals", "open")],
        ),
    ];
    for (object, name, label, expected) in cases {
        let view = list_view(object, name);
        assert_eq!(text(view.root(), "label"), Some(label));
        assert_eq!(
            filters(&view),
            expected.into_iter().collect(),
            "{object} {name}"
        );
        assert_eq!(
            text(view.root(), "booleanFilter"),
            None,
            "filters are ANDed"
        );
    }
}

// ------------------------------------------------------------------ report type

#[test]
fn the_report_type_joins_accounts_to_their_lago_invoices() {
    let metadata = Metadata::load();
    let report = Xml::load(
        source_dir().join(format!("reportTypes/{REPORT_TYPE}.reportType-meta.xml")),
        "ReportType",
    );
    let root = report.root();
    assert_eq!(text(root, "label"), Some("Accounts with Lago Invoices"));
    assert_eq!(text(root, "baseObject"), Some("Account"));
    assert!(flag(root, "deployed"));
    let relationship = metadata.child_relationship("Lago_Invoice__c", "Account__c");
    let join = child(root, "join").unwrap();
    assert_eq!(text(join, "relationship"), Some(relationship.as_str()));
    let invoices_table = format!("Account.{relationship}");
    let mut seen = BTreeSet::new();
    for column in root
        .descendants()
        .filter(|n| n.has_tag_name((NS, "columns")))
    {
        let (field, table) = (
            text(column, "field").unwrap(),
            text(column, "table").unwrap(),
        );
        let object = if table == "Account" {
            "Account"
        } else {
            assert_eq!(table, invoices_table);
            "Lago_Invoice__c"
        };
        assert!(metadata.has_field(object, field), "{table}.{field}?");
        seen.insert(object);
    }
    assert_eq!(seen.len(), 2, "columns of both Accounts and invoices");
}

// ------------------------------------------------------------------ the Salesforce CLI

/// Where `sf` is: `LAGO_SYNC_SF`, then `PATH` (scripts/tools.sh links it into the tools'
/// bin directory), then the npm prefixes scripts/tools.sh installs into.
fn find_sf() -> Option<PathBuf> {
    if let Some(path) = env::var_os("LAGO_SYNC_SF") {
        return Some(PathBuf::from(path));
    }
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = env::var_os("PATH").unwrap_or_default();
    if let Some(found) = env::split_paths(&path)
        .map(|dir| dir.join("sf"))
        .find(|p| executable(p))
    {
        return Some(found);
    }
    let mut prefixes = Vec::new();
    if let Some(prefix) = env::var_os("LAGO_SYNC_NPM") {
        prefixes.push(PathBuf::from(prefix));
    }
    prefixes.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/npm"));
    if let Some(home) = env::var_os("HOME") {
        prefixes.push(PathBuf::from(home).join(".cache/lago-salesforce-sync/npm"));
    }
    prefixes
        .into_iter()
        .map(|prefix| prefix.join("node_modules/.bin/sf"))
        .find(|p| executable(p))
}

fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// package.xml's members by type.
fn package_members(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let package = Xml::load(path, "Package");
    children(package.root(), "types")
        .into_iter()
        .map(|t| {
            (
                text(t, "name").unwrap().to_owned(),
                texts(t, "members").into_iter().map(str::to_owned).collect(),
            )
        })
        .collect()
}

#[test]
fn the_salesforce_cli_converts_the_source() {
    let Some(sf) = find_sf() else {
        let how = "install it with `scripts/tools.sh` (npm install of salesforce/tooling into \
                   .local/npm; `bash .ci/run` does it), or point LAGO_SYNC_SF at an sf binary";
        if in_ci() {
            panic!("the Salesforce CLI (sf) is not installed: {how}");
        }
        eprintln!("SKIPPED the_salesforce_cli_converts_the_source: no `sf` found; {how}");
        return;
    };
    let stamp = format!(
        "lago-sync-convert-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let scratch = env::temp_dir().join(stamp);
    fs::create_dir_all(&scratch).unwrap();
    let output_dir = scratch.join("mdapi");
    // Anything sf starts by name (it runs itself for some hooks) must find the same sf.
    let mut path = vec![sf.parent().unwrap().to_path_buf()];
    path.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    let mut child = Command::new(&sf)
        .args([
            "project",
            "convert",
            "source",
            "--root-dir",
            "force-app",
            "--output-dir",
        ])
        .arg(&output_dir)
        .arg("--json")
        .current_dir(salesforce_dir())
        .env("PATH", env::join_paths(path).unwrap())
        .env("SF_DISABLE_TELEMETRY", "true")
        .env("SF_SKIP_NEW_VERSION_CHECK", "true")
        .env("SF_AUTOUPDATE_DISABLE", "true")
        .env("SF_DISABLE_AUTOUPDATE", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            fs::File::create(scratch.join("stdout")).unwrap(),
        ))
        .stderr(Stdio::from(
            fs::File::create(scratch.join("stderr")).unwrap(),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", sf.display()));
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sf project convert source ran for 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = fs::read_to_string(scratch.join("stdout")).unwrap_or_default();
    let stderr = fs::read_to_string(scratch.join("stderr")).unwrap_or_default();
    let report = format!(
        "{} ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        sf.display()
    );
    assert!(
        status.success(),
        "sf project convert source failed: {report}"
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("sf's --json answer does not parse ({e}): {report}"));
    assert_eq!(answer["status"], 0, "{report}");

    let members = package_members(&output_dir.join("package.xml"));
    let metadata = Metadata::load();
    let has = |kind: &str, expected: Vec<String>| {
        let listed = members.get(kind).cloned().unwrap_or_default();
        for member in expected {
            assert!(
                listed.contains(&member),
                "package.xml lists no {kind} {member}: {listed:?}"
            );
        }
    };
    let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    has("CustomObject", owned(&LAGO_OBJECTS));
    has(
        "CustomField",
        metadata
            .all_fields()
            .map(|(object, name, _)| format!("{object}.{name}"))
            .collect(),
    );
    has("CustomApplication", owned(&[APP]));
    has("CustomTab", owned(&TABBED_OBJECTS));
    has("FlexiPage", owned(&[ACCOUNT_PAGE]));
    has(
        "Layout",
        LAGO_OBJECTS
            .iter()
            .map(|o| format!("{o}-{} Layout", metadata.label(o)))
            .collect(),
    );
    has(
        "CompactLayout",
        LAGO_OBJECTS
            .iter()
            .map(|o| {
                let assigned = text(metadata.object(o).root(), "compactLayoutAssignment");
                format!("{o}.{}", assigned.unwrap())
            })
            .collect(),
    );
    has(
        "ListView",
        owned(&[
            "Lago_Invoice__c.All",
            "Lago_Invoice__c.Unpaid",
            "Lago_Invoice__c.Overdue",
            "Lago_Subscription__c.All",
            "Lago_Subscription__c.Active",
            "Lago_Credit_Note__c.All",
            "Lago_Invoice_Line_Item__c.All",
            "Lago_Sync_Issue__c.All",
            "Lago_Sync_Issue__c.Open_Issues",
        ]),
    );
    has("ReportType", owned(&[REPORT_TYPE]));
    has("PermissionSet", owned(&["Lago_Sync", "Lago_Viewer"]));
    has("Workflow", owned(&["Account"]));
    has(
        "WorkflowOutboundMessage",
        vec![format!("Account.{OUTBOUND_MESSAGE}")],
    );
    has("Flow", owned(&[FLOW]));
    for converted in ["workflows/Account.workflow", &format!("flows/{FLOW}.flow")] {
        let converted = output_dir.join(converted);
        assert!(converted.exists(), "{} is missing", converted.display());
    }
    for object in LAGO_OBJECTS {
        let converted = output_dir.join(format!("objects/{object}.object"));
        assert!(converted.exists(), "{} is missing", converted.display());
    }
    let _ = fs::remove_dir_all(&scratch);
}
