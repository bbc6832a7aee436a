//! Lago enums. Each keeps values it does not know as `Unknown(String)` so that a value added
//! by a newer Lago still reaches Salesforce's unrestricted picklists.

use serde::{Deserialize, Deserializer};

macro_rules! lago_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($variant,)+
            Unknown(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
                Ok($name::from(text.as_ref()))
            }
        }
    };
}

lago_enum!(SubscriptionStatus {
    Pending = "pending",
    Active = "active",
    Terminated = "terminated",
    Canceled = "canceled",
    Incomplete = "incomplete",
});

impl SubscriptionStatus {
    /// Lifecycle position: a subscription only moves forward (contract §4), so a lower
    /// rank never overwrites a higher one. Unknown values rank with `active`.
    pub fn rank(&self) -> u8 {
        match self {
            SubscriptionStatus::Pending | SubscriptionStatus::Incomplete => 0,
            SubscriptionStatus::Active | SubscriptionStatus::Unknown(_) => 1,
            SubscriptionStatus::Terminated | SubscriptionStatus::Canceled => 2,
        }
    }
}

lago_enum!(BillingTime { Calendar = "calendar", Anniversary = "anniversary" });

lago_enum!(InvoiceStatus {
    Draft = "draft",
    Finalized = "finalized",
    Voided = "voided",
    Failed = "failed",
    Pending = "pending",
});

lago_enum!(PaymentStatus { Pending = "pending", Succeeded = "succeeded", Failed = "failed" });

/// Lifecycle positions that break ties between two states stamped in the same second
/// (contract §7.1). Values a payload may not carry, or that Lago adds later, rank lowest.
impl InvoiceStatus {
    pub fn rank(&self) -> u8 {
        match self {
            InvoiceStatus::Draft | InvoiceStatus::Pending | InvoiceStatus::Failed => 0,
            InvoiceStatus::Finalized | InvoiceStatus::Unknown(_) => 1,
            InvoiceStatus::Voided => 2,
        }
    }
}

impl PaymentStatus {
    pub fn rank(&self) -> u8 {
        match self {
            PaymentStatus::Pending | PaymentStatus::Unknown(_) => 0,
            PaymentStatus::Failed => 1,
            PaymentStatus::Succeeded => 2,
        }
    }
}

lago_enum!(InvoiceType {
    Subscription = "subscription",
    AddOn = "add_on",
    Credit = "credit",
    OneOff = "one_off",
    AdvanceCharges = "advance_charges",
    ProgressiveBilling = "progressive_billing",
});

lago_enum!(CreditStatus { Available = "available", Consumed = "consumed", Voided = "voided" });

lago_enum!(RefundStatus { Pending = "pending", Succeeded = "succeeded", Failed = "failed" });

impl CreditStatus {
    pub fn rank(&self) -> u8 {
        match self {
            CreditStatus::Available | CreditStatus::Unknown(_) => 0,
            CreditStatus::Consumed => 1,
            CreditStatus::Voided => 2,
        }
    }
}

impl RefundStatus {
    pub fn rank(&self) -> u8 {
        match self {
            RefundStatus::Pending | RefundStatus::Unknown(_) => 0,
            RefundStatus::Failed => 1,
            RefundStatus::Succeeded => 2,
        }
    }
}

lago_enum!(CreditNoteReason {
    DuplicatedCharge = "duplicated_charge",
    ProductUnsatisfactory = "product_unsatisfactory",
    OrderChange = "order_change",
    OrderCancellation = "order_cancellation",
    FraudulentCharge = "fraudulent_charge",
    Other = "other",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_values_round_trip() {
        let known: SubscriptionStatus = serde_json::from_str(r#""terminated""#).unwrap();
        assert_eq!(known, SubscriptionStatus::Terminated);
        let unknown: SubscriptionStatus = serde_json::from_str(r#""paused""#).unwrap();
        assert_eq!(unknown, SubscriptionStatus::Unknown("paused".into()));
        assert_eq!(unknown.as_str(), "paused");
        // "other" is a real Lago reason, not the fallback.
        let reason: CreditNoteReason = serde_json::from_str(r#""other""#).unwrap();
        assert_eq!(reason, CreditNoteReason::Other);
    }

    #[test]
    fn subscription_status_only_moves_forward() {
        use SubscriptionStatus::*;
        assert!(Pending.rank() < Active.rank());
        assert_eq!(Pending.rank(), Incomplete.rank());
        assert!(Active.rank() < Terminated.rank());
        assert_eq!(Terminated.rank(), Canceled.rank());
    }
}
