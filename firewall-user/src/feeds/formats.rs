//! Reading a feed's answer: `plain` and `voipbl` lines, `json` arrays, and APIBAN pages.

use ipnet::IpNet;
use serde_json::Value;

use crate::rules::{blocklist, cidr, reader::Reader};

/// What an answer held: its networks, and how many entries were skipped as unreadable.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub nets: Vec<IpNet>,
    pub skipped: u64,
}

/// An answer that is not in the feed's format at all (an HTML error page, a cut JSON text).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotTheFormat(pub String);

/// Whole-Internet entries (`0.0.0.0/0`, `::/0`) are never taken from a feed: one such line
/// would block everything.
fn keep(p: &mut Parsed, net: IpNet) {
    if net.prefix_len() == 0 {
        p.skipped += 1;
    } else {
        p.nets.push(net);
    }
}

/// `plain` and `voipbl`: one address or CIDR per line, `#`/`;` comments, CRLF or LF line ends.
pub fn lines(body: &[u8]) -> Result<Parsed, NotTheFormat> {
    let text = std::str::from_utf8(body).map_err(|e| NotTheFormat(format!("the answer is not text ({e})")))?;
    let mut r = Reader::new("feed", text);
    let nets = blocklist::parse(&mut r, text);
    let mut p = Parsed { nets: Vec::new(), skipped: r.diags.iter().filter(|d| d.is_error()).count() as u64 };
    for n in nets {
        keep(&mut p, n);
    }
    if p.nets.is_empty() && p.skipped > 0 {
        return Err(NotTheFormat(format!("no line of the answer is an address or CIDR ({} lines skipped)", p.skipped)));
    }
    Ok(p)
}

fn strings(items: &[Value], p: &mut Parsed) {
    for v in items {
        match v.as_str().map(cidr::parse) {
            Some(Ok((n, _))) => keep(p, n),
            _ => p.skipped += 1,
        }
    }
}

/// `json`: an array of strings, or an object whose `field` is one.
pub fn json(body: &[u8], field: &str) -> Result<Parsed, NotTheFormat> {
    let v: Value = serde_json::from_slice(body).map_err(|e| NotTheFormat(format!("the answer is not JSON ({e})")))?;
    let items = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get(field) {
            Some(Value::Array(a)) => a,
            _ => return Err(NotTheFormat(format!("the JSON answer has no array `{field}` (set `json_field`)"))),
        },
        _ => return Err(NotTheFormat("the JSON answer is neither an array nor an object".into())),
    };
    let mut p = Parsed::default();
    strings(items, &mut p);
    if p.nets.is_empty() && p.skipped > 0 {
        return Err(NotTheFormat(format!("no entry of the JSON answer is an address or CIDR ({} skipped)", p.skipped)));
    }
    Ok(p)
}

/// One APIBAN answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub list: Parsed,
    /// The ID to ask from next; `None` when the answer says there is nothing newer.
    pub next: Option<String>,
}

/// APIBAN's `{"ipaddress": [...], "ID": "..."}`; `{"ipaddress": ["no new bans"], "ID": "none"}`
/// ends the paging.
pub fn apiban(body: &[u8]) -> Result<Page, NotTheFormat> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| NotTheFormat(format!("the APIBAN answer is not JSON ({e})")))?;
    let (Some(Value::Array(ips)), Some(id)) = (v.get("ipaddress"), v.get("ID")) else {
        return Err(NotTheFormat("the APIBAN answer has no `ipaddress` array and `ID`".into()));
    };
    let id = match id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(NotTheFormat("the APIBAN answer's `ID` is not a string or number".into())),
    };
    let none = id.eq_ignore_ascii_case("none") || ips.iter().any(|i| i.as_str() == Some("no new bans"));
    if none {
        return Ok(Page { list: Parsed::default(), next: None });
    }
    let mut list = Parsed::default();
    strings(ips, &mut list);
    Ok(Page { list, next: Some(id) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(p: &Parsed) -> Vec<String> {
        p.nets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn plain_lines_skip_and_count_bad_ones() {
        let p =
            lines(b"# list\n1.2.3.4\n10.0.0.0/8 ; c\nnot-an-ip\n2001:db8::/32\n1.2.3.4 5.6.7.8\n0.0.0.0/0\n").unwrap();
        assert_eq!(shown(&p), ["1.2.3.4/32", "10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(p.skipped, 3);
    }

    #[test]
    fn voipbl_crlf_lines_and_comments() {
        let body = b"# VoIPBL.org\r\n#\r\n1.10.16.0/20\r\n5.8.18.7/32\r\n\r\n";
        let p = lines(body).unwrap();
        assert_eq!(shown(&p), ["1.10.16.0/20", "5.8.18.7/32"]);
        assert_eq!(p.skipped, 0);
    }

    #[test]
    fn an_error_page_is_not_a_list() {
        let e = lines(b"<html>\n<body>Service Unavailable</body>\n</html>\n").unwrap_err();
        assert!(e.0.contains("3 lines skipped"), "{e}");
        assert!(lines(&[0xff, 0xfe, 0x00]).is_err());
        // an empty answer is an empty list (a feed may list nothing)
        assert_eq!(lines(b"# nothing listed today\n").unwrap(), Parsed::default());
    }

    #[test]
    fn json_arrays_and_objects() {
        let p = json(br#"["1.2.3.4", "10.0.0.0/8", 5, "bad"]"#, "ips").unwrap();
        assert_eq!((shown(&p), p.skipped), (vec!["1.2.3.4/32".to_owned(), "10.0.0.0/8".to_owned()], 2));
        let p = json(br#"{"count": 1, "addresses": ["2001:db8::1"]}"#, "addresses").unwrap();
        assert_eq!(shown(&p), ["2001:db8::1/128"]);
        assert!(json(br#"{"count": 1, "addresses": ["2001:db8::1"]}"#, "ips").unwrap_err().0.contains("`ips`"));
        assert!(json(br#"["1.2.3.4", "#, "ips").unwrap_err().0.contains("not JSON"));
        assert!(json(br#"["x", "y"]"#, "ips").is_err());
        assert!(json(br#""1.2.3.4""#, "ips").is_err());
    }

    #[test]
    fn apiban_pages_and_their_end() {
        let p = apiban(br#"{"ipaddress": ["1.2.3.4", "5.6.7.8", "junk"], "ID": "1600000001"}"#).unwrap();
        assert_eq!(shown(&p.list), ["1.2.3.4/32", "5.6.7.8/32"]);
        assert_eq!((p.list.skipped, p.next.as_deref()), (1, Some("1600000001")));
        let end = apiban(br#"{"ipaddress":["no new bans"], "ID":"none"}"#).unwrap();
        assert_eq!(end, Page { list: Parsed::default(), next: None });
        assert!(apiban(br#"{"ipaddress": "1.2.3.4"}"#).is_err());
        assert!(apiban(b"<html>").is_err());
        assert_eq!(apiban(br#"{"ipaddress": [], "ID": 17}"#).unwrap().next.as_deref(), Some("17"));
    }
}
