//! [`VariantName`]: what results call a measured server, one of ours
//! ([`Variant`]) or an external one by the name it was given.

use std::fmt;

use super::variant::Variant;

/// What results call a measured server: one of the variants above, or a
/// server measured from outside under the name it was given (`drive
/// --name`). It prints and parses as the plain name (so results files keep
/// their strings), and a name that is one of [`Variant::ALL`] is always that
/// variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VariantName {
    Builtin(Variant),
    External(String),
}

impl VariantName {
    /// The variant, when the name is one of ours.
    pub fn builtin(&self) -> Option<Variant> {
        match self {
            VariantName::Builtin(v) => Some(*v),
            VariantName::External(_) => None,
        }
    }

    /// Position in report order: [`Variant::ALL`]'s order, then external
    /// servers by name.
    pub fn report_order(&self) -> (usize, &str) {
        match self {
            VariantName::Builtin(v) => (Variant::ALL.iter().position(|a| a == v).unwrap_or(0), ""),
            VariantName::External(name) => (Variant::ALL.len(), name),
        }
    }
}

impl From<Variant> for VariantName {
    fn from(v: Variant) -> VariantName {
        VariantName::Builtin(v)
    }
}

impl fmt::Display for VariantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariantName::Builtin(v) => v.fmt(f),
            VariantName::External(name) => f.write_str(name),
        }
    }
}

impl From<&str> for VariantName {
    fn from(name: &str) -> VariantName {
        match name.parse::<Variant>() {
            Ok(v) => VariantName::Builtin(v),
            Err(_) => VariantName::External(name.to_string()),
        }
    }
}

impl PartialEq<str> for VariantName {
    fn eq(&self, other: &str) -> bool {
        match self {
            VariantName::Builtin(v) => v.to_string() == other,
            VariantName::External(name) => name == other,
        }
    }
}

impl PartialEq<&str> for VariantName {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl serde::Serialize for VariantName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VariantName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<VariantName, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(VariantName::from(name.as_str()))
    }
}
