//! Port specifications: `5060/udp`, `10000-20000/udp`, `22/tcp`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub proto: Proto,
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn overlaps(&self, o: &PortRange) -> bool {
        self.proto == o.proto && self.lo <= o.hi && o.lo <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}/{}", self.lo, self.proto.name())
        } else {
            write!(f, "{}-{}/{}", self.lo, self.hi, self.proto.name())
        }
    }
}

fn port(s: &str, whole: &str) -> Result<u16, String> {
    match s.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("`{s}` in `{whole}` is not a port (1 to 65535)")),
    }
}

pub fn parse(text: &str) -> Result<PortRange, String> {
    let t = text.trim();
    let Some((ports, proto)) = t.rsplit_once('/') else {
        return Err(format!("`{t}` needs a protocol: write `{t}/udp` or `{t}/tcp`"));
    };
    let proto = match proto.trim().to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => return Err(format!("protocol `{other}` in `{t}` must be `tcp` or `udp`")),
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a, t)?, port(b, t)?),
        None => {
            let p = port(ports, t)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("range `{t}` runs backwards: write `{hi}-{lo}/{}`", proto.name()));
    }
    Ok(PortRange { proto, lo, hi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_ports_and_ranges() {
        assert_eq!(parse("5060/udp").unwrap(), PortRange { proto: Proto::Udp, lo: 5060, hi: 5060 });
        assert_eq!(parse("10000-20000/UDP").unwrap(), PortRange { proto: Proto::Udp, lo: 10000, hi: 20000 });
        assert_eq!(parse("22/tcp").unwrap().to_string(), "22/tcp");
        assert_eq!(parse("1-65535/tcp").unwrap().to_string(), "1-65535/tcp");
    }

    #[test]
    fn rejects_with_what_was_expected() {
        assert!(parse("5060").unwrap_err().contains("5060/udp"));
        assert!(parse("5060/sctp").unwrap_err().contains("`tcp` or `udp`"));
        assert!(parse("0/udp").unwrap_err().contains("1 to 65535"));
        assert!(parse("70000/udp").unwrap_err().contains("1 to 65535"));
        assert!(parse("20-10/udp").unwrap_err().contains("10-20/udp"));
        assert!(parse("a-b/tcp").is_err());
    }

    #[test]
    fn overlap_respects_protocol() {
        let a = parse("5060-5070/udp").unwrap();
        assert!(a.overlaps(&parse("5070/udp").unwrap()));
        assert!(!a.overlaps(&parse("5071/udp").unwrap()));
        assert!(!a.overlaps(&parse("5060/tcp").unwrap()));
    }
}
