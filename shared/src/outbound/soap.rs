//! The SOAP message of a Salesforce outbound message (salesforce-to-lago.md §2) and the
//! acknowledgement Salesforce waits for: `notifications{OrganizationId, …, Notification[]
//! {Id, sObject}}` in `http://soap.sforce.com/2005/09/outbound`, the sObject's fields in
//! `urn:sobject.enterprise.soap.sforce.com`.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};
use thiserror::Error;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const OUTBOUND: &str = "http://soap.sforce.com/2005/09/outbound";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// Salesforce sends at most 100 notifications in one message.
pub const MAX_NOTIFICATIONS: usize = 100;

/// The content type of the acknowledgement and of a SOAP fault.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub organization_id: String,
    pub notifications: Vec<Notification>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Unique per notification, the same when Salesforce sends it again.
    pub id: String,
    /// The sObject's fields with a value, by API name; a nil or empty field is absent.
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SoapError {
    #[error("the body is not XML: {0}")]
    NotXml(String),
    #[error("not an outbound message: {0}")]
    NotOutbound(&'static str),
    #[error("more than {MAX_NOTIFICATIONS} notifications in one message")]
    TooMany,
}

/// Reads the message. DTDs (and so entity expansion) are refused by the parser.
pub fn parse(body: &[u8]) -> Result<Message, SoapError> {
    let text = std::str::from_utf8(body).map_err(|_| SoapError::NotXml("not UTF-8".into()))?;
    let doc = Document::parse(text).map_err(|e| SoapError::NotXml(e.to_string()))?;
    let envelope = doc.root_element();
    if !envelope.has_tag_name((SOAP_ENV, "Envelope")) {
        return Err(SoapError::NotOutbound("no SOAP envelope"));
    }
    let notifications = child(envelope, SOAP_ENV, "Body")
        .and_then(|body| child(body, OUTBOUND, "notifications"))
        .ok_or(SoapError::NotOutbound("no notifications element"))?;
    let organization_id = child(notifications, OUTBOUND, "OrganizationId")
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or(SoapError::NotOutbound("no OrganizationId"))?
        .to_owned();
    let notifications = children(notifications, OUTBOUND, "Notification")
        .map(notification)
        .collect::<Result<Vec<_>, _>>()?;
    if notifications.is_empty() {
        return Err(SoapError::NotOutbound("no Notification"));
    }
    if notifications.len() > MAX_NOTIFICATIONS {
        return Err(SoapError::TooMany);
    }
    Ok(Message {
        organization_id,
        notifications,
    })
}

fn notification(node: Node<'_, '_>) -> Result<Notification, SoapError> {
    let id = child(node, OUTBOUND, "Id")
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or(SoapError::NotOutbound("a Notification without Id"))?
        .to_owned();
    let sobject = child(node, OUTBOUND, "sObject")
        .ok_or(SoapError::NotOutbound("a Notification without sObject"))?;
    let fields = sobject
        .children()
        .filter(Node::is_element)
        .filter(|field| field.attribute((XSI, "nil")) != Some("true"))
        .filter_map(|field| {
            let value = field.text().unwrap_or_default().trim();
            (!value.is_empty()).then(|| (field.tag_name().name().to_owned(), value.to_owned()))
        })
        .collect();
    Ok(Notification { id, fields })
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name((ns, name)))
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name((ns, name)))
}

/// What Salesforce needs to stop resending the message.
pub fn ack() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><notificationsResponse xmlns="{OUTBOUND}"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
    )
}

/// A SOAP fault: Salesforce keeps the message and sends it again later.
pub fn fault(reason: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>{}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
        escape(reason)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outbound message as Salesforce sends it (SOAP API Developer Guide, "Outbound
    /// Messaging WSDL"), with a nil field and an empty one.
    pub(crate) fn message(notifications: &[(&str, &str)]) -> String {
        let items: String = notifications
            .iter()
            .map(|(id, account)| {
                format!(
                    r#"<Notification><Id>{id}</Id><sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>{account}</sf:Id><sf:BillingCity>Paris</sf:BillingCity><sf:Lago_Sync__c>true</sf:Lago_Sync__c><sf:Name>Acme &amp; Co</sf:Name><sf:Phone xsi:nil="true"/><sf:Website></sf:Website><sf:SystemModstamp>2026-12-02T07:30:00.000Z</sf:SystemModstamp></sObject></Notification>"#
                )
            })
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000001AAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000001</PartnerUrl>
   {items}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
        )
    }

    #[test]
    fn notifications_and_their_fields_are_read() {
        let body = message(&[
            ("04l1", "001000000000001AAA"),
            ("04l2", "001000000000002AAA"),
        ]);
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.organization_id, "00D000000000001AAA");
        assert_eq!(parsed.notifications.len(), 2);
        let first = &parsed.notifications[0];
        assert_eq!(first.id, "04l1");
        let fields: Vec<(&str, &str)> = first
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("BillingCity", "Paris"),
                ("Id", "001000000000001AAA"),
                ("Lago_Sync__c", "true"),
                ("Name", "Acme & Co"),
                ("SystemModstamp", "2026-12-02T07:30:00.000Z"),
            ],
            "nil and empty fields are absent"
        );
    }

    #[test]
    fn what_is_not_an_outbound_message_says_why() {
        let cases: [(&[u8], &str); 8] = [
            (b"{\"json\": true}", "not XML"),
            (b"<a><b></a>", "not XML"),
            (&[0xff, 0xfe], "not UTF-8"),
            (b"<Envelope/>", "no SOAP envelope"),
            (
                b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>",
                "no notifications",
            ),
            (
                b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>00D</OrganizationId></notifications></s:Body></s:Envelope>",
                "no Notification",
            ),
            (
                b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>00D</OrganizationId><Notification><sObject/></Notification></notifications></s:Body></s:Envelope>",
                "without Id",
            ),
            (
                b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
                "not XML",
            ),
        ];
        for (body, expected) in cases {
            let error = parse(body).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let ids: Vec<(String, &str)> = (0..=MAX_NOTIFICATIONS)
            .map(|i| (format!("04l{i}"), "001000000000001AAA"))
            .collect();
        let refs: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        assert_eq!(parse(message(&refs).as_bytes()), Err(SoapError::TooMany));
    }

    #[test]
    fn the_ack_and_a_fault_are_soap() {
        let ack = ack();
        let doc = Document::parse(&ack).unwrap();
        let acked = doc
            .descendants()
            .find(|n| n.has_tag_name((OUTBOUND, "Ack")))
            .and_then(|n| n.text());
        assert_eq!(acked, Some("true"));
        let fault = fault("Lago <down> & out");
        assert!(Document::parse(&fault).is_ok(), "{fault}");
    }
}
