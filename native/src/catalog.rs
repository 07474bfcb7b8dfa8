//! The schema catalog: the JSON Schema of every walker's options and record and of the disk records, from
//! their Rust definitions. `npm run build` writes it to schema/ and generates the TypeScript types from it.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{json, Value};

use crate::records::{document_schema, SCHEMA_VERSION};

/// A record's schema as it is written out: every field present (null where absent), plus schemaVersion, and
/// no field the Rust type does not have (so a validator catches anything added on the way).
pub fn record_schema<T: JsonSchema>() -> Schema {
    let mut s = document_schema::<T>(&mut SchemaSettings::draft2020_12().for_serialize().into_generator());
    if let Some(v) = s.as_object_mut() {
        close_objects(v);
    }
    s
}

/// `additionalProperties: false` on every object schema that lists its properties.
fn close_objects(schema: &mut serde_json::Map<String, Value>) {
    if schema.contains_key("properties") {
        schema.entry("additionalProperties").or_insert(Value::Bool(false));
    }
    for (key, child) in schema.iter_mut() {
        match child {
            // maps of name → schema: their values are schemas, the map itself is not
            Value::Object(map) if key == "properties" || key == "$defs" => map.values_mut().filter_map(Value::as_object_mut).for_each(close_objects),
            Value::Object(o) => close_objects(o),
            Value::Array(a) => a.iter_mut().filter_map(Value::as_object_mut).for_each(close_objects),
            _ => {}
        }
    }
}

/// Options as they are read: absent fields take their defaults.
pub fn options_schema<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12().for_deserialize().into_generator().into_root_schema_for::<T>()
}

fn disk_record<T: JsonSchema>(name: &str, about: &str) -> Value {
    json!({ "name": name, "about": about, "record": record_schema::<T>() })
}

/// `{schemaVersion, walkers: [{name, about, options, record}], disk: [{name, about, record}]}`.
pub fn catalog() -> Value {
    let walkers: Vec<Value> = crate::walkers::ALL
        .iter()
        .map(|w| {
            let s = (w.schemas)();
            json!({ "name": w.name, "about": w.about.trim(), "options": s.options, "record": s.record })
        })
        .collect();
    let disk = vec![
        disk_record::<crate::disk::records::FilesystemUsage>("statfs", "The filesystem's space as the guest kernel's statfs computes it, df's figures and the superblock's facts."),
    ];
    json!({ "schemaVersion": SCHEMA_VERSION, "walkers": walkers, "disk": disk })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_walker_has_an_object_record_with_schema_version_and_a_doc() {
        let c = super::catalog();
        let walkers = c["walkers"].as_array().unwrap();
        assert!(walkers.len() >= 8, "{}", walkers.len());
        for w in walkers.iter().chain(c["disk"].as_array().unwrap()) {
            assert!(!w["about"].as_str().unwrap().is_empty(), "{} has no doc comment", w["name"]);
            assert_eq!(w["record"]["type"], "object", "{}", w["name"]);
            assert_eq!(w["record"]["required"][0], "schemaVersion", "{}", w["name"]);
        }
    }
}
