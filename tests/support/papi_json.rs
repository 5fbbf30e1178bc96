//! vpp-papi's `.api.json` definitions of our messages, built from their field lists
//! (`maglev::vpp::wire::schema`), for the cross-check against vpp-papi (docs/vpp-wire.md §6).
//! Only that test uses it, so it lives here and not in the daemon.

use maglev::vpp::wire::schema::{FieldDef, MessageDef, Shape, TypeDef, UnknownType, lookup_type};
use serde_json::{Value, json};

fn field_json(field: &FieldDef) -> Value {
    match field.shape {
        Shape::Scalar => json!([field.ty, field.name]),
        Shape::Fixed(n) => json!([field.ty, field.name, n]),
        Shape::Vla(None) => json!([field.ty, field.name, 0]),
        Shape::Vla(Some(lf)) => json!([field.ty, field.name, 0, lf]),
    }
}

fn collect_types(fields: &[FieldDef], out: &mut Vec<&'static TypeDef>) -> Result<(), UnknownType> {
    for field in fields {
        collect_type_name(field.ty, out)?;
    }
    Ok(())
}

fn collect_type_name(ty: &str, out: &mut Vec<&'static TypeDef>) -> Result<(), UnknownType> {
    if !ty.starts_with("vl_api_") {
        return Ok(());
    }
    let t = lookup_type(ty).ok_or_else(|| UnknownType(ty.to_string()))?;
    if out.iter().any(|seen| seen.name() == t.name()) {
        return Ok(());
    }
    out.push(t);
    match t {
        TypeDef::Typedef { fields, .. } | TypeDef::Union { fields, .. } => {
            collect_types(fields, out)
        }
        TypeDef::Alias { target, .. } => collect_type_name(target, out),
        TypeDef::Enum { .. } => Ok(()),
    }
}

/// vpp-papi's `.api.json` format for `messages` and every type they reference.
pub fn papi_json(messages: &[MessageDef]) -> Result<Value, UnknownType> {
    let mut used = Vec::new();
    let mut msgs = Vec::new();
    for m in messages {
        let fields = m.all_fields();
        collect_types(&fields, &mut used)?;
        let mut entry = vec![json!(m.name), json!(["u16", "_vl_msg_id"])];
        entry.extend(fields.iter().map(field_json));
        entry.push(json!({ "crc": format!("0x{}", m.crc), "options": {} }));
        msgs.push(Value::Array(entry));
    }
    let (mut types, mut unions, mut enums) = (Vec::new(), Vec::new(), Vec::new());
    let mut aliases = serde_json::Map::new();
    for t in used {
        match t {
            TypeDef::Typedef { name, fields } | TypeDef::Union { name, fields } => {
                let mut entry = vec![json!(name)];
                entry.extend(fields.iter().map(field_json));
                if matches!(t, TypeDef::Union { .. }) {
                    unions.push(Value::Array(entry));
                } else {
                    types.push(Value::Array(entry));
                }
            }
            TypeDef::Enum {
                name,
                width,
                values,
            } => {
                let mut entry = vec![json!(name)];
                entry.extend(values.iter().map(|(n, v)| json!([n, v])));
                entry.push(json!({ "enumtype": width }));
                enums.push(Value::Array(entry));
            }
            TypeDef::Alias {
                name,
                target,
                length,
            } => {
                let v = match length {
                    Some(n) => json!({ "type": target, "length": n }),
                    None => json!({ "type": target }),
                };
                aliases.insert((*name).to_string(), v);
            }
        }
    }
    Ok(json!({
        "types": types,
        "messages": msgs,
        "unions": unions,
        "enums": enums,
        "enumflags": [],
        "services": {},
        "options": { "version": "1.0.0" },
        "aliases": aliases,
        "vl_api_version": "0x00000000",
        "imports": [],
        "counters": [],
        "paths": [],
    }))
}
