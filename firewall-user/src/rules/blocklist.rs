//! Blocklist files: one address or CIDR per line; `#` and `;` start comments (so Spamhaus DROP
//! and FireHOL `.netset` files load as they are).

use ipnet::IpNet;

use super::{cidr, reader::Reader};

/// Parses a blocklist file's text, reporting bad lines into `r` (whose file is this list); the
/// byte offset of each network goes into `r.placed`.
pub fn parse(r: &mut Reader, text: &str) -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let body = line.split(['#', ';']).next().unwrap_or("");
        let lead = body.len() - body.trim_start().len();
        let token = body.split_whitespace().next();
        if let Some(tok) = token {
            let start = offset + lead;
            let span = Some(start..start + tok.len());
            if body.split_whitespace().nth(1).is_some() {
                r.error(span.clone(), "expected one address or CIDR per line".to_string());
            } else {
                match cidr::parse(tok) {
                    Ok((net, truncated)) => {
                        if truncated {
                            r.warn(span, format!("`{tok}` has host bits set; it means {net}"));
                        }
                        out.push(net);
                        r.placed.push(start);
                    }
                    Err(e) => r.error(span, e),
                }
            }
        }
        offset += line.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_comments_and_both_families() {
        let mut r = Reader::new("list", "");
        let text = "# FireHOL level1\n1.2.3.0/24 ; SBL123\n\n  2001:db8::/32\n5.6.7.8 # host\n";
        let nets = parse(&mut r, text);
        assert!(r.diags.is_empty(), "{:?}", r.diags);
        let got: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["1.2.3.0/24", "2001:db8::/32", "5.6.7.8/32"]);
    }

    #[test]
    fn reports_line_and_column_of_bad_entries() {
        let text = "1.2.3.0/24\n  300.1.2.3\n1.2.3.4 5.6.7.8\n";
        let mut r = Reader::new("list", text);
        let nets = parse(&mut r, text);
        assert_eq!(nets.len(), 1);
        let pos: Vec<(usize, usize)> = r.diags.iter().map(|d| (d.line, d.column)).collect();
        assert_eq!(pos, [(2, 3), (3, 1)]);
    }
}
