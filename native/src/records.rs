//! The JSON number convention every record follows (README "JSON output"), as types:
//!
//! - counts, sizes, pids and ticks are JSON numbers (exact below 2^53: 8 PiB, or 2.8 million years of
//!   ticks), with the unit in the field name (`rssBytes`, `startTicks`);
//! - 64-bit values that can pass 2^53 — nanosecond clocks, jiffies, byte counters — are [`U64`]/[`I64`]:
//!   decimal strings, exact in any language (`BigInt("…")` in JS);
//! - guest addresses and masks are [`Hex`]: "0x…" strings;
//! - every document carries `schemaVersion` ([`SCHEMA_VERSION`]).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, Serializer};

/// Bumped on any incompatible change to a record's JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// An unsigned 64-bit value that may pass 2^53, as a decimal string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U64(pub u64);

/// A signed 64-bit value that may pass ±2^53, as a decimal string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct I64(pub i64);

/// A guest address or bit mask, as "0x…" (lower-case hex).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hex(pub u64);

impl Serialize for U64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for I64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

impl JsonSchema for U64 {
    fn schema_name() -> Cow<'static, str> {
        "U64".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An unsigned 64-bit value that may pass 2^53, as a decimal string.",
            "type": "string",
            "pattern": "^[0-9]{1,20}$"
        })
    }
}

impl JsonSchema for I64 {
    fn schema_name() -> Cow<'static, str> {
        "I64".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A signed 64-bit value that may pass ±2^53, as a decimal string.",
            "type": "string",
            "pattern": "^-?[0-9]{1,19}$"
        })
    }
}

impl JsonSchema for Hex {
    fn schema_name() -> Cow<'static, str> {
        "Hex".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A guest address or bit mask, as \"0x…\" in lower-case hex.",
            "type": "string",
            "pattern": "^0x[0-9a-f]{1,16}$"
        })
    }
}

/// A record as one JSON document: `{"schemaVersion":N, …the record's fields}`.
pub fn document<T: Serialize>(record: &T) -> crate::Result<String> {
    let body = serde_json::to_string(record).map_err(|e| crate::Error::bad(format!("cannot encode the record: {e}")))?;
    let rest = body.strip_prefix('{').ok_or_else(|| crate::Error::bad("a record must encode as a JSON object"))?;
    let sep = if rest == "}" { "" } else { "," };
    Ok(format!("{{\"schemaVersion\":{SCHEMA_VERSION}{sep}{rest}"))
}

/// The schema of `T` as a document: `schemaVersion` added and required.
pub fn document_schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    let mut s = g.root_schema_for::<T>();
    if let Some(obj) = s.as_object_mut() {
        if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
            let mut with = serde_json::Map::new();
            with.insert(
                "schemaVersion".into(),
                serde_json::json!({ "description": "The JSON shape's version (README \"JSON output\").", "const": SCHEMA_VERSION }),
            );
            with.extend(std::mem::take(props));
            *props = with;
        }
        let required = obj.entry("required").or_insert_with(|| serde_json::json!([]));
        if let Some(r) = required.as_array_mut() {
            r.insert(0, "schemaVersion".into());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct R {
        big_ns: U64,
        address: Hex,
        delta: I64,
    }

    #[derive(Serialize, JsonSchema)]
    struct Empty {}

    #[test]
    fn big_values_are_strings_and_documents_carry_the_version() {
        let r = R { big_ns: U64(u64::MAX), address: Hex(0xffff_ffff_8100_0000), delta: I64(-5) };
        assert_eq!(
            document(&r).unwrap(),
            format!("{{\"schemaVersion\":{SCHEMA_VERSION},\"bigNs\":\"18446744073709551615\",\"address\":\"0xffffffff81000000\",\"delta\":\"-5\"}}")
        );
        assert_eq!(document(&Empty {}).unwrap(), format!("{{\"schemaVersion\":{SCHEMA_VERSION}}}"));
        let mut g = SchemaGenerator::default();
        let s = serde_json::to_value(document_schema::<R>(&mut g)).unwrap();
        assert_eq!(s["required"][0], "schemaVersion");
        assert_eq!(s["properties"]["schemaVersion"]["const"], SCHEMA_VERSION);
    }
}
