//! The four event families, one function each (contract §1, §4).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Customer,
    Subscription,
    Invoice,
    CreditNote,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Customer,
        Family::Subscription,
        Family::Invoice,
        Family::CreditNote,
    ];

    /// The envelope's `object_type` this family reads.
    pub fn object_type(self) -> &'static str {
        match self {
            Family::Customer => "customer",
            Family::Subscription => "subscription",
            Family::Invoice => "invoice",
            Family::CreditNote => "credit_note",
        }
    }

    /// The webhook types that write to Salesforce (contract §4); any other type is ignored.
    pub fn writing_types(self) -> &'static [&'static str] {
        match self {
            Family::Customer => &["customer.created", "customer.updated"],
            Family::Subscription => &[
                "subscription.started",
                "subscription.updated",
                "subscription.terminated",
                "subscription.canceled",
                "subscription.incomplete",
                "subscription.trial_ended",
                "subscription.termination_alert",
            ],
            Family::Invoice => &[
                "invoice.created",
                "invoice.one_off_created",
                "invoice.paid_credit_added",
                "invoice.generated",
                "invoice.payment_status_updated",
                "invoice.payment_overdue",
                "invoice.voided",
                "invoice.resynced",
                // Its object_type is `payment_dispute_lost`, the invoice one level down
                // (see mapping::invoice::of_envelope).
                "invoice.payment_dispute_lost",
            ],
            Family::CreditNote => &["credit_note.created", "credit_note.generated"],
        }
    }

    /// The type a record's state read from Lago's API is mapped as (the backfill, the
    /// recovery of a dead writer): one the family writes, the one Lago sends when such a
    /// record is made (`customer.updated` for Accounts, which are only ever updated;
    /// subscriptions have no `.created` event, so `subscription.updated`).
    pub fn state_type(self) -> &'static str {
        match self {
            Family::Customer => "customer.updated",
            Family::Subscription => "subscription.updated",
            Family::Invoice => "invoice.created",
            Family::CreditNote => "credit_note.created",
        }
    }

    pub fn writes(self, webhook_type: &str) -> bool {
        self.writing_types().contains(&webhook_type)
    }

    /// The URL path segment and the name used in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Customer => "customer",
            Family::Subscription => "subscription",
            Family::Invoice => "invoice",
            Family::CreditNote => "credit-note",
        }
    }
}

impl std::str::FromStr for Family {
    type Err = ();

    /// The inverse of [`Family::as_str`], for families read back from the table.
    fn from_str(s: &str) -> Result<Self, ()> {
        Family::ALL.into_iter().find(|f| f.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_types_belong_to_their_family() {
        for family in Family::ALL {
            let prefix = format!("{}.", family.object_type());
            for t in family.writing_types() {
                assert!(t.starts_with(&prefix), "{t} listed under {family}");
            }
        }
    }

    #[test]
    fn drafts_and_foreign_types_do_not_write() {
        assert!(!Family::Invoice.writes("invoice.drafted"));
        assert!(!Family::Invoice.writes("customer.updated"));
        assert!(!Family::Customer.writes("customer.vies_check"));
        assert!(Family::CreditNote.writes("credit_note.generated"));
        assert!(Family::Invoice.writes("invoice.payment_dispute_lost"));
        assert!(!Family::Invoice.writes("invoice.payment_failure"));
    }
}
