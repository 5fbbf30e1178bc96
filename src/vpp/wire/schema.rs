//! Field lists of messages and types as declared in VPP's `.api` files. They are the
//! source of the CRC check (vppapigen's algorithm, docs/vpp-wire.md §2.1) and of the vpp-papi
//! JSON definitions the cross-check test builds (`tests/support/papi_json.rs`,
//! docs/vpp-wire.md §6).

use super::message::{HeaderKind, Message};

/// How a field is declared: `T name`, `T name[N]` or `T name[]` / `T name[count]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Scalar,
    Fixed(u32),
    /// Variable-length; `Some(field)` names the earlier count field.
    Vla(Option<&'static str>),
}

/// One field declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    pub ty: &'static str,
    pub name: &'static str,
    pub shape: Shape,
}

impl FieldDef {
    /// The declaration of a field of Rust type `T`.
    pub const fn of<T: super::WireType>(name: &'static str) -> Self {
        Self {
            ty: T::API_TYPE,
            name,
            shape: T::SHAPE,
        }
    }

    /// A VLA field whose length is held by `count_field`.
    pub const fn counted(ty: &'static str, name: &'static str, count_field: &'static str) -> Self {
        Self {
            ty,
            name,
            shape: Shape::Vla(Some(count_field)),
        }
    }

    /// Python `repr` of vppapigen's Field/Array objects.
    fn py_repr(&self) -> String {
        match self.shape {
            Shape::Scalar => format!("['{}', '{}']", self.ty, self.name),
            Shape::Fixed(n) => format!("['{}', '{}', {}, None]", self.ty, self.name, n),
            Shape::Vla(None) => format!("['{}', '{}', 0, None]", self.ty, self.name),
            Shape::Vla(Some(lf)) => format!("['{}', '{}', 0, '{}']", self.ty, self.name, lf),
        }
    }
}

/// A user-defined `.api` type, keyed by its `vl_api_<name>_t` spelling.
#[derive(Debug, Clone, Copy)]
pub enum TypeDef {
    Typedef {
        name: &'static str,
        fields: &'static [FieldDef],
    },
    Union {
        name: &'static str,
        fields: &'static [FieldDef],
    },
    Enum {
        name: &'static str,
        width: &'static str,
        values: &'static [(&'static str, u32)],
    },
    Alias {
        name: &'static str,
        target: &'static str,
        length: Option<u32>,
    },
}

impl TypeDef {
    pub fn name(&self) -> &'static str {
        match self {
            TypeDef::Typedef { name, .. }
            | TypeDef::Union { name, .. }
            | TypeDef::Enum { name, .. }
            | TypeDef::Alias { name, .. } => name,
        }
    }

    /// `vl_api_<name>_t`.
    pub fn api_name(&self) -> String {
        format!("vl_api_{}_t", self.name())
    }
}

const fn f(ty: &'static str, name: &'static str) -> FieldDef {
    FieldDef {
        ty,
        name,
        shape: Shape::Scalar,
    }
}

const fn fixed(ty: &'static str, name: &'static str, n: u32) -> FieldDef {
    FieldDef {
        ty,
        name,
        shape: Shape::Fixed(n),
    }
}

/// Every user type our messages reference (ip_types.api, interface_types.api,
/// lb_types.api, memclnt.api).
pub const TYPES: &[TypeDef] = &[
    TypeDef::Alias {
        name: "ip4_address",
        target: "u8",
        length: Some(4),
    },
    TypeDef::Alias {
        name: "ip6_address",
        target: "u8",
        length: Some(16),
    },
    TypeDef::Alias {
        name: "interface_index",
        target: "u32",
        length: None,
    },
    TypeDef::Alias {
        name: "address_with_prefix",
        target: "vl_api_prefix_t",
        length: None,
    },
    TypeDef::Enum {
        name: "address_family",
        width: "u8",
        values: &[("ADDRESS_IP4", 0), ("ADDRESS_IP6", 1)],
    },
    TypeDef::Enum {
        name: "ip_proto",
        width: "u8",
        values: &[
            ("IP_API_PROTO_HOPOPT", 0),
            ("IP_API_PROTO_ICMP", 1),
            ("IP_API_PROTO_IGMP", 2),
            ("IP_API_PROTO_TCP", 6),
            ("IP_API_PROTO_UDP", 17),
            ("IP_API_PROTO_GRE", 47),
            ("IP_API_PROTO_ESP", 50),
            ("IP_API_PROTO_AH", 51),
            ("IP_API_PROTO_ICMP6", 58),
            ("IP_API_PROTO_EIGRP", 88),
            ("IP_API_PROTO_OSPF", 89),
            ("IP_API_PROTO_SCTP", 132),
            ("IP_API_PROTO_RESERVED", 255),
        ],
    },
    TypeDef::Enum {
        name: "ip_dscp",
        width: "u8",
        values: &[
            ("IP_API_DSCP_CS0", 0),
            ("IP_API_DSCP_CS1", 8),
            ("IP_API_DSCP_AF11", 10),
            ("IP_API_DSCP_AF12", 12),
            ("IP_API_DSCP_AF13", 14),
            ("IP_API_DSCP_CS2", 16),
            ("IP_API_DSCP_AF21", 18),
            ("IP_API_DSCP_AF22", 20),
            ("IP_API_DSCP_AF23", 22),
            ("IP_API_DSCP_CS3", 24),
            ("IP_API_DSCP_AF31", 26),
            ("IP_API_DSCP_AF32", 28),
            ("IP_API_DSCP_AF33", 30),
            ("IP_API_DSCP_CS4", 32),
            ("IP_API_DSCP_AF41", 34),
            ("IP_API_DSCP_AF42", 36),
            ("IP_API_DSCP_AF43", 38),
            ("IP_API_DSCP_CS5", 40),
            ("IP_API_DSCP_EF", 46),
            ("IP_API_DSCP_CS6", 48),
            ("IP_API_DSCP_CS7", 50),
        ],
    },
    TypeDef::Union {
        name: "address_union",
        fields: &[
            f("vl_api_ip4_address_t", "ip4"),
            f("vl_api_ip6_address_t", "ip6"),
        ],
    },
    TypeDef::Typedef {
        name: "address",
        fields: &[
            f("vl_api_address_family_t", "af"),
            f("vl_api_address_union_t", "un"),
        ],
    },
    TypeDef::Typedef {
        name: "prefix",
        fields: &[f("vl_api_address_t", "address"), f("u8", "len")],
    },
    TypeDef::Typedef {
        name: "prefix_matcher",
        fields: &[f("u8", "le"), f("u8", "ge")],
    },
    TypeDef::Enum {
        name: "lb_encap_type",
        width: "u32",
        values: &[
            ("LB_API_ENCAP_TYPE_GRE4", 0),
            ("LB_API_ENCAP_TYPE_GRE6", 1),
            ("LB_API_ENCAP_TYPE_L3DSR", 2),
            ("LB_API_ENCAP_TYPE_NAT4", 3),
            ("LB_API_ENCAP_TYPE_NAT6", 4),
            ("LB_API_ENCAP_N_TYPES", 5),
        ],
    },
    TypeDef::Enum {
        name: "lb_srv_type",
        width: "u32",
        values: &[
            ("LB_API_SRV_TYPE_CLUSTERIP", 0),
            ("LB_API_SRV_TYPE_NODEPORT", 1),
            ("LB_API_SRV_N_TYPES", 2),
        ],
    },
    TypeDef::Typedef {
        name: "lb_vip",
        fields: &[
            f("vl_api_address_with_prefix_t", "pfx"),
            f("vl_api_ip_proto_t", "protocol"),
            f("u16", "port"),
        ],
    },
    TypeDef::Typedef {
        name: "message_table_entry",
        fields: &[f("u16", "index"), fixed("string", "name", 64)],
    },
    // fib_types.api 2.0.x and ip.api, for ip_route_lookup (docs/vpp-wire.md §4.6).
    TypeDef::Typedef {
        name: "fib_mpls_label",
        fields: &[
            f("u8", "is_uniform"),
            f("u32", "label"),
            f("u8", "ttl"),
            f("u8", "exp"),
        ],
    },
    TypeDef::Enum {
        name: "fib_path_nh_proto",
        width: "u32",
        values: &[
            ("FIB_API_PATH_NH_PROTO_IP4", 0),
            ("FIB_API_PATH_NH_PROTO_IP6", 1),
            ("FIB_API_PATH_NH_PROTO_MPLS", 2),
            ("FIB_API_PATH_NH_PROTO_ETHERNET", 3),
            ("FIB_API_PATH_NH_PROTO_BIER", 4),
        ],
    },
    TypeDef::Enum {
        name: "fib_path_flags",
        width: "u32",
        values: &[
            ("FIB_API_PATH_FLAG_NONE", 0),
            ("FIB_API_PATH_FLAG_RESOLVE_VIA_ATTACHED", 1),
            ("FIB_API_PATH_FLAG_RESOLVE_VIA_HOST", 2),
            ("FIB_API_PATH_FLAG_POP_PW_CW", 4),
        ],
    },
    TypeDef::Typedef {
        name: "fib_path_nh",
        fields: &[
            f("vl_api_address_union_t", "address"),
            f("u32", "via_label"),
            f("u32", "obj_id"),
            f("u32", "classify_table_index"),
        ],
    },
    TypeDef::Enum {
        name: "fib_path_type",
        width: "u32",
        values: &[
            ("FIB_API_PATH_TYPE_NORMAL", 0),
            ("FIB_API_PATH_TYPE_LOCAL", 1),
            ("FIB_API_PATH_TYPE_DROP", 2),
            ("FIB_API_PATH_TYPE_UDP_ENCAP", 3),
            ("FIB_API_PATH_TYPE_BIER_IMP", 4),
            ("FIB_API_PATH_TYPE_ICMP_UNREACH", 5),
            ("FIB_API_PATH_TYPE_ICMP_PROHIBIT", 6),
            ("FIB_API_PATH_TYPE_SOURCE_LOOKUP", 7),
            ("FIB_API_PATH_TYPE_DVR", 8),
            ("FIB_API_PATH_TYPE_INTERFACE_RX", 9),
            ("FIB_API_PATH_TYPE_CLASSIFY", 10),
        ],
    },
    TypeDef::Typedef {
        name: "fib_path",
        fields: &[
            f("u32", "sw_if_index"),
            f("u32", "table_id"),
            f("u32", "rpf_id"),
            f("u8", "weight"),
            f("u8", "preference"),
            f("vl_api_fib_path_type_t", "type"),
            f("vl_api_fib_path_flags_t", "flags"),
            f("vl_api_fib_path_nh_proto_t", "proto"),
            f("vl_api_fib_path_nh_t", "nh"),
            f("u8", "n_labels"),
            fixed("vl_api_fib_mpls_label_t", "label_stack", 16),
        ],
    },
    TypeDef::Typedef {
        name: "ip_route",
        fields: &[
            f("u32", "table_id"),
            f("u32", "stats_index"),
            f("vl_api_prefix_t", "prefix"),
            f("u8", "n_paths"),
            FieldDef::counted("vl_api_fib_path_t", "paths", "n_paths"),
        ],
    },
    TypeDef::Typedef {
        name: "module_version",
        fields: &[
            f("u32", "major"),
            f("u32", "minor"),
            f("u32", "patch"),
            fixed("string", "name", 64),
        ],
    },
];

/// Looks up a type by its `vl_api_<name>_t` spelling.
pub fn lookup_type(api_name: &str) -> Option<&'static TypeDef> {
    let short = api_name.strip_prefix("vl_api_")?.strip_suffix("_t")?;
    TYPES.iter().find(|t| t.name() == short)
}

/// A message's static description (what the [`Message`] trait carries).
#[derive(Debug, Clone, Copy)]
pub struct MessageDef {
    pub name: &'static str,
    pub crc: &'static str,
    pub header: HeaderKind,
    pub fields: &'static [FieldDef],
}

impl MessageDef {
    pub fn of<M: Message>() -> Self {
        Self {
            name: M::NAME,
            crc: M::CRC,
            header: M::HEADER,
            fields: M::FIELDS,
        }
    }

    /// Header fields followed by body fields, as in the `.api` file.
    pub fn all_fields(&self) -> Vec<FieldDef> {
        self.header
            .fields()
            .iter()
            .chain(self.fields)
            .copied()
            .collect()
    }
}

/// zlib CRC-32 (reflected, polynomial 0xEDB88320), continuing from `crc`.
pub fn crc32(data: &[u8], crc: u32) -> u32 {
    let mut c = !crc;
    for byte in data {
        c ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (c & 1).wrapping_neg();
            c = (c >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !c
}

fn py_block(fields: &[FieldDef]) -> String {
    let parts: Vec<String> = fields.iter().map(FieldDef::py_repr).collect();
    format!("[{}]", parts.join(", "))
}

fn py_type_block(t: &TypeDef) -> String {
    match t {
        TypeDef::Typedef { fields, .. } | TypeDef::Union { fields, .. } => py_block(fields),
        TypeDef::Enum { values, .. } => {
            let parts: Vec<String> = values
                .iter()
                .map(|(n, v)| format!("['{n}', {v}]"))
                .collect();
            format!("[{}]", parts.join(", "))
        }
        // vppapigen hashes an alias as its (empty) block.
        TypeDef::Alias { .. } => "[]".to_string(),
    }
}

/// A referenced `vl_api_*` type missing from [`TYPES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown API type {0}")]
pub struct UnknownType(pub String);

fn fold_types(fields: &[FieldDef], mut crc: u32) -> Result<u32, UnknownType> {
    for field in fields {
        if field.ty.starts_with("vl_api_") {
            let t = lookup_type(field.ty).ok_or_else(|| UnknownType(field.ty.to_string()))?;
            crc = crc32(py_type_block(t).as_bytes(), crc);
            if let TypeDef::Typedef { fields, .. } | TypeDef::Union { fields, .. } = t {
                crc = fold_types(fields, crc)?;
            }
        }
    }
    Ok(crc)
}

/// Recomputes a message CRC the way vppapigen does (docs/vpp-wire.md §2.1).
pub fn compute_crc(def: &MessageDef) -> Result<u32, UnknownType> {
    let fields = def.all_fields();
    let crc = crc32(py_block(&fields).as_bytes(), 0);
    fold_types(&fields, crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib_reference_values() {
        // Values quoted in docs/vpp-wire.md §2.1.
        assert_eq!(
            crc32(b"[['u32', 'client_index'], ['u32', 'context']]", 0),
            0x51077d14
        );
        assert_eq!(
            crc32(b"[['u32', 'context'], ['i32', 'retval']]", 0),
            0xe8d4e804
        );
        assert_eq!(crc32(b"123456789", 0), 0xcbf43926);
    }

    #[test]
    fn every_referenced_type_is_known() {
        for t in TYPES {
            let fields: &[FieldDef] = match t {
                TypeDef::Typedef { fields, .. } | TypeDef::Union { fields, .. } => fields,
                _ => &[],
            };
            for field in fields {
                if field.ty.starts_with("vl_api_") {
                    assert!(
                        lookup_type(field.ty).is_some(),
                        "{} references {}",
                        t.name(),
                        field.ty
                    );
                }
            }
        }
    }
}
