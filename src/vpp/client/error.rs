//! Client errors, and VPP's `retval` codes (docs/vpp-wire.md §1.9).

use std::fmt;
use std::time::Duration;

use crate::vpp::wire::WireError;

/// A `VNET_API_ERROR_*` value returned in `retval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiErrorCode(pub i32);

impl ApiErrorCode {
    pub const UNSPECIFIED: Self = Self(-1);
    pub const INVALID_SW_IF_INDEX: Self = Self(-2);
    pub const NO_SUCH_FIB: Self = Self(-3);
    pub const NO_SUCH_ENTRY: Self = Self(-6);
    pub const INVALID_VALUE: Self = Self(-7);
    pub const UNIMPLEMENTED: Self = Self(-9);
    pub const INVALID_MEMORY_SIZE: Self = Self(-70);
    pub const INVALID_ARGUMENT: Self = Self(-73);
    pub const VALUE_EXIST: Self = Self(-81);
    pub const INVALID_ADDRESS_FAMILY: Self = Self(-97);
    pub const UNSUPPORTED: Self = Self(-126);
    pub const EAGAIN: Self = Self(-165);

    /// The `VNET_API_ERROR_*` suffix, if known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            -1 => "UNSPECIFIED",
            -2 => "INVALID_SW_IF_INDEX",
            -3 => "NO_SUCH_FIB",
            -6 => "NO_SUCH_ENTRY",
            -7 => "INVALID_VALUE",
            -9 => "UNIMPLEMENTED",
            -70 => "INVALID_MEMORY_SIZE",
            -73 => "INVALID_ARGUMENT",
            -81 => "VALUE_EXIST",
            -97 => "INVALID_ADDRESS_FAMILY",
            -126 => "UNSUPPORTED",
            -165 => "EAGAIN",
            _ => return None,
        })
    }
}

impl fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({})", self.0, name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Errors of the VPP client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VppError {
    /// The socket could not be opened.
    #[error("connect to {path}: {reason}")]
    Connect { path: String, reason: String },
    /// `sockclnt_create` failed or its reply made no sense.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The running VPP does not know this `name_crc` (plugin missing or other API version).
    #[error("VPP does not support {name_crc} (plugin not loaded or incompatible API version)")]
    Unsupported { name_crc: String },
    /// No reply within the request timeout; the connection is dropped.
    #[error("{message}: no reply within {after:?}")]
    Timeout {
        message: &'static str,
        after: Duration,
    },
    /// The connection is (or just went) down.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// VPP answered with a non-zero `retval`.
    #[error("{message} failed: retval {code}")]
    Api {
        message: &'static str,
        code: ApiErrorCode,
    },
    /// A CLI command failed; VPP's error text is in `output`.
    #[error("cli `{cmd}` failed: retval {code}: {output}")]
    Cli {
        cmd: String,
        code: ApiErrorCode,
        output: String,
    },
    /// A reply could not be decoded.
    #[error("decoding {message}: {source}")]
    Decode {
        message: &'static str,
        #[source]
        source: WireError,
    },
    /// Refused client-side: the request would be wrong or harmful on this VPP.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl VppError {
    /// The VPP error code, if VPP rejected the request.
    pub fn api_code(&self) -> Option<ApiErrorCode> {
        match self {
            VppError::Api { code, .. } | VppError::Cli { code, .. } => Some(*code),
            _ => None,
        }
    }
}
