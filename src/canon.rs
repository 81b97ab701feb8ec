//! Canonical JSON: the single byte form of every JSON value we hash, write
//! or sign.
//!
//! Rules: object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, strings escaped as serde_json escapes them (only `"`, `\`
//! and control characters; no `\u` escaping of non-ASCII), numbers as
//! serde_json prints them (integers exactly, floats via shortest round-trip).
//! The sort is explicit here so it does not depend on serde_json's map
//! feature flags.

use serde_json::Value;

/// Append the canonical form of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(val, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's string serialisation is already the minimal escaping we want.
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Canonical bytes of `v`.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// Canonical bytes of any serialisable value.
pub fn to_vec_of<T: serde::Serialize>(v: &T) -> Vec<u8> {
    to_vec(&serde_json::to_value(v).expect("serialisable value"))
}

/// Pretty but still deterministic form (sorted keys, 2-space indent, final
/// newline), for human-facing files such as `manifest.json`.
pub fn to_pretty(v: &Value) -> Vec<u8> {
    let sorted = sort_value(v);
    let mut out = serde_json::to_vec_pretty(&sorted).expect("serialisable");
    out.push(b'\n');
    out
}

fn sort_value(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            // serde_json's default Map is a BTreeMap (sorted); insertion in
            // sorted order keeps it sorted under `preserve_order` too.
            let mut m = serde_json::Map::new();
            for (k, val) in entries {
                m.insert(k.clone(), sort_value(val));
            }
            Value::Object(m)
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_value).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        let v: Value = serde_json::from_str(r#"{ "b": [1, {"z":1,"a":"é\n"}], "a": null }"#).unwrap();
        assert_eq!(String::from_utf8(to_vec(&v)).unwrap(), r#"{"a":null,"b":[1,{"a":"é\n","z":1}]}"#);
    }

    #[test]
    fn canonical_is_idempotent() {
        let v = json!({"x": 1.5, "a": [true, false], "m": {"k": "v"}});
        let once = to_vec(&v);
        let again = to_vec(&serde_json::from_slice(&once).unwrap());
        assert_eq!(once, again);
    }
}
