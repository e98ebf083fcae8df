//! fail2ban's date templates: which date is found and what is left of the line.

use super::date::{Dates, State};

/// Each line without its date, judged in order by one detector.
fn stripped(pattern: Option<&str>, lines: &[&str]) -> Vec<String> {
    let dates = Dates::new(pattern).unwrap();
    let mut state = State::default();
    lines.iter().map(|l| dates.strip(l, &mut state).into_owned()).collect()
}

/// Each line without its date, judged by a detector of its own.
fn fresh(pattern: Option<&str>, lines: &[&str]) -> Vec<String> {
    lines.iter().flat_map(|l| stripped(pattern, &[l])).collect()
}

#[test]
fn the_default_templates_find_dates_in_the_middle_of_a_line() {
    assert_eq!(
        fresh(
            Some("{DEFAULT}"),
            &[
                r#"1.2.3.4 - - [31/Oct/2006:09:22:55 -0000] "GET / HTTP/1.1" 401"#,
                "named[1]: client 1.2.3.4#53: 26-Jul-2007 15:20:52.252 query denied",
                "srv PDT Apr 16 21:05:29 monit: failed",
                "x [31/Oct/2006:09:22:55 -0000] y 2005-01-23 21:59:59 z",
            ]
        ),
        [
            r#"1.2.3.4 - - [] "GET / HTTP/1.1" 401"#,
            "named[1]: client 1.2.3.4#53:  query denied",
            "srv  monit: failed",
            "x [] y 2005-01-23 21:59:59 z",
        ],
        "the date nearest the start wins, whatever the order of the templates"
    );
    // common.conf's `{^LN-BEG}` keeps to the start of the line
    let line = r#"1.2.3.4 - - [31/Oct/2006:09:22:55 -0000] "GET""#;
    assert_eq!(stripped(None, &[line]), [line]);
}

#[test]
fn every_default_format_at_the_start_of_a_line() {
    let lines = [
        "2005-01-23T21:59:59.981746 x",
        "2005/01/23 21:59:59 x",
        "2006.12.21 06:43:20 x",
        "Sun Jan 23 21:59:59.011 2005 x",
        "Jan 23 2005 21:59:59 x",
        "23/01/05 21:59:59 x",
        "17-07-2008 17:23:25 x",
        "26-Jul-2007 15:20:52.252 x",
        "05/20/2008:01:57:39 x",
        "01-27-2012 16:22:44.252 x",
        "1465200000.123 x",
        "21:59:59 x",
        "<09/16/08@05:03:30> x",
        "130322 11:46:11 x",
        "Apr 27, 2013 2:33:06 PM x",
        "Apr-27-13 02:33:06 x",
        "20050123T215959 x",
        "+00:00 Jan 23 21:59:59.011 2005 x",
        "@400000004d9f1e4d2f4e6a4c x",
    ];
    for line in lines {
        assert_eq!(stripped(None, &[line]), [" x"], "{line}");
    }
    // one detector, formats changing from line to line
    assert_eq!(stripped(None, &lines), lines.map(|_| " x"));
}

#[test]
fn epoch_and_tai64n_in_datepattern() {
    assert_eq!(stripped(Some("EPOCH"), &["audit(1465200000.123:42): x"]), ["audit(:42): x"]);
    assert_eq!(stripped(Some("{^LN-BEG}EPOCH"), &["[1465200000] x"]), ["[] x"]);
    // seconds only: 13 digits are no EPOCH, but an LEPOCH with milliseconds
    assert_eq!(stripped(Some("EPOCH"), &["1465200000123 x"]), ["1465200000123 x"]);
    assert_eq!(stripped(Some("LEPOCH"), &["1465200000123 x"]), [" x"]);
    // `{EPOCH}` inside a pattern: the whole pattern goes
    assert_eq!(stripped(Some(r"^\[{EPOCH}\]"), &["[1465200000] x"]), [" x"]);
    assert_eq!(stripped(Some("{^LN-BEG}TAI64N"), &["@400000004d9f1e4d2f4e6a4c x"]), [" x"]);
    assert_eq!(stripped(Some("tai64n"), &["x @400000004d9f1e4d2f4e6a4c y"]), ["x  y"]);
}

#[test]
fn directives_as_fail2ban_reads_them() {
    // %b is a month name in any case; other words are no month
    let p = Some("%d/%b/%Y:%H:%M:%S");
    assert_eq!(stripped(p, &["[31/oct/2006:09:22:55] x"]), ["[] x"]);
    assert_eq!(stripped(p, &["[31/Foo/2006:09:22:55] x"]), ["[31/Foo/2006:09:22:55] x"]);
    // word boundaries on both sides, unless `{UNB}` drops them
    assert_eq!(stripped(Some("%H:%M:%S"), &["a10:11:12 x"]), ["a10:11:12 x"]);
    assert_eq!(stripped(Some("{UNB}%H:%M:%S"), &["a10:11:12 x"]), ["a x"]);
    // `{NONE}`: no date, nothing removed
    assert_eq!(stripped(Some("{NONE}"), &["2005-01-23 21:59:59 x"]), ["2005-01-23 21:59:59 x"]);
    // a group of its own is what goes
    assert_eq!(stripped(Some(r"^\[(%Y-%m-%d %H:%M:%S)\]"), &["[2005-01-23 21:59:59] x"]), ["[] x"]);
    assert!(Dates::new(Some("%Q")).is_err());
}

#[test]
fn the_template_that_won_is_preferred_afterwards() {
    let p = Some("^%H:%M:%S\n^%H:%M");
    assert_eq!(stripped(p, &["10:11:12 x"]), [" x"]);
    assert_eq!(stripped(p, &["10:11 x", "10:11:12 x"]), [" x", ":12 x"]);
}
