//! This host's fully qualified name, for the screen header (which prober saw what matters
//! when several run during a drill).

use std::ffi::{CStr, CString};

/// The canonical name of `gethostname()` (as `hostname -f` finds it), or the plain host
/// name when the resolver does not know a longer one.
pub fn fqdn() -> String {
    let short = short_name();
    let canonical = canonical(&short);
    pick(short, canonical)
}

/// The canonical name if it is a longer form of our own (a hosts file mapping us to
/// "localhost" gives no FQDN), else the plain name.
fn pick(short: String, canonical: Option<String>) -> String {
    canonical
        .filter(|c| c.starts_with(&format!("{short}.")))
        .unwrap_or(short)
}

fn short_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn canonical(host: &str) -> Option<String> {
    let node = CString::new(host).ok()?;
    // SAFETY: a zeroed addrinfo is a valid hints struct (all fields null/0).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: node and hints are valid for the call; res receives a list we free below.
    let rc = unsafe { libc::getaddrinfo(node.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a list from getaddrinfo; ai_canonname is null or a C string it owns.
    unsafe {
        let c = (*res).ai_canonname;
        let name = (!c.is_null()).then(|| CStr::from_ptr(c).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn only_a_longer_form_of_our_name_counts() {
        let p = |c: Option<&str>| pick("lb1".to_string(), c.map(str::to_string));
        assert_eq!(p(Some("lb1.example.net")), "lb1.example.net");
        assert_eq!(p(Some("localhost")), "lb1");
        assert_eq!(p(Some("lb10.example.net")), "lb1");
        assert_eq!(p(None), "lb1");
    }

    #[test]
    fn the_host_name_is_read() {
        assert!(!super::short_name().is_empty());
    }
}
