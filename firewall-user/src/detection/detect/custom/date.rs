//! The date in a log line, found and removed as fail2ban's date detector does
//! (`datedetector.py`, `filter.py` `processLine`). The templates are tried in order; an
//! anchored one (`{^LN-BEG}`, `^`, `$`) wins at once, one found in the middle of the line only
//! if no template finds a date nearer the start. The template that won is tried first on the
//! next line and keeps winning while it matches at the same place; templates that win often
//! move up the list. Only the matched date goes, the text around it stays, so `[2012-02-13
//! 17:21:54] NOTICE` reads `[] NOTICE` (hence `__date_ambit`) and a syslog line keeps the space
//! after the date. The date itself is not read: a failure counts when sipwall reads the line.

use std::{borrow::Cow, sync::LazyLock};

use fancy_regex::{Captures, Regex};

pub use super::template::Error;
use super::template::{self, Template};

/// The templates of one filter, in fail2ban's order.
#[derive(Debug)]
pub struct Dates {
    templates: Vec<Template>,
}

static DATE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)(?<!\\)\{DATE\}").expect("a fixed expression"));
static DEFAULTS: LazyLock<Vec<Template>> =
    LazyLock::new(|| template::defaults().expect("fail2ban's default templates compile"));

impl Dates {
    /// `datepattern` as written (after the definitions were substituted), one template per
    /// line; `None` is fail2ban's `common.conf` default, `{^LN-BEG}`.
    pub fn new(pattern: Option<&str>) -> Result<Dates, Error> {
        let lines: Vec<&str> =
            pattern.unwrap_or("{^LN-BEG}").lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut templates: Vec<Template> = Vec::new();
        let push = |t: Template, templates: &mut Vec<Template>| {
            if !templates.iter().any(|k| k.name == t.name) {
                templates.push(t);
            }
        };
        for line in if lines.is_empty() { vec!["{DEFAULT}"] } else { lines } {
            let key = if line.contains('%') { line.to_owned() } else { line.to_uppercase() };
            match key.as_str() {
                "{^LN-BEG}" | "{DEFAULT}" => {
                    for t in DEFAULTS.iter().filter(|t| key == "{DEFAULT}" || t.anchored) {
                        push(t.clone(), &mut templates);
                    }
                }
                "{NONE}" => push(template::from_line("{UNB}^", 1.0)?, &mut templates),
                _ if DATE.is_match(line).unwrap_or(false) => {
                    for d in template::DEFAULTS {
                        let p = DATE.replace_all(line, |_: &Captures<'_, str>| template::unbound(d).to_owned());
                        push(template::from_line(&p, 1.0)?, &mut templates);
                    }
                }
                _ => push(template::from_line(line, 1.0)?, &mut templates),
            }
        }
        Ok(Dates { templates })
    }

    /// `line` without its date, the choice of template remembered in `state`.
    pub fn strip<'a>(&self, line: &'a str, state: &mut State) -> Cow<'a, str> {
        let Some(caps) = state.find(&self.templates, line) else { return Cow::Borrowed(line) };
        let Some(m) = caps.get(1) else { return Cow::Borrowed(line) };
        match (m.start(), m.end()) {
            (_, 0) => Cow::Borrowed(line),
            (0, e) => Cow::Borrowed(&line[e..]),
            (s, e) => Cow::Owned(format!("{}{}", &line[..s], &line[e..])),
        }
    }
}

/// One template's standing in one detector (`DateDetectorTemplate`).
#[derive(Debug, Clone)]
struct Standing {
    index: usize,
    hits: u32,
    /// Where its last winning match started.
    distance: usize,
}

/// Where a date was found last: its position and the characters on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edge {
    pos: usize,
    before: Option<char>,
    at: Option<char>,
}

/// What a detector remembers between lines: the order of the templates, their wins, and
/// where the last date was.
#[derive(Debug, Clone, Default)]
pub struct State {
    order: Vec<Standing>,
    last: Option<usize>,
    start: Option<Edge>,
    end: Option<Edge>,
    first_unused: usize,
}

fn edge(line: &str, pos: usize) -> Edge {
    Edge { pos, before: line[..pos].chars().next_back(), at: line[pos..].chars().next() }
}

fn alnum(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

impl State {
    /// fail2ban's `matchTime`: the match of the winning template.
    fn find<'l>(&mut self, templates: &[Template], line: &'l str) -> Option<Captures<'l, str>> {
        if self.order.len() != templates.len() {
            self.order = (0..templates.len()).map(|index| Standing { index, hits: 0, distance: usize::MAX }).collect();
        }
        let n = self.order.len();
        let search = |i: usize, from: usize, to: usize| -> Option<Captures<'l, str>> {
            templates[self.order[i].index].regex.captures_from_pos(&line[..to], from).ok().flatten()
        };
        let anchored = |i: usize| templates[self.order[i].index].anchored;
        let mut best: Option<(Captures<'l, str>, usize)> = None;
        let mut skip = None;
        let mut won = None;
        if let Some(i) = self.last {
            let (start, end) = (self.start.expect("set with last"), self.end.expect("set with last"));
            let found = if anchored(i) {
                skip = Some(i);
                search(i, 0, line.len())
            } else {
                let (s, e) = (start.pos.min(line.len()), end.pos.min(line.len()));
                let same_start = line.is_char_boundary(s)
                    && (edge(line, s).before == start.before || (edge(line, s).at == start.at && !alnum(start.at)));
                let same_end = line.is_char_boundary(e)
                    && (edge(line, e).at == end.at || (edge(line, e).before == end.before && !alnum(end.before)));
                if same_start && same_end && s <= e {
                    search(i, s, e)
                } else {
                    skip = Some(i);
                    search(i, 0, line.len())
                }
            };
            if let Some(c) = found {
                let m = c.get(0).expect("group 0");
                if n == 1 || anchored(i) || (m.start() == start.pos && m.end() == end.pos) {
                    won = Some((c, i));
                } else {
                    best = Some((c, i));
                }
            }
        }
        if won.is_none() {
            for i in 0..n {
                if Some(i) == skip {
                    continue;
                }
                let Some(c) = search(i, 0, line.len()) else { continue };
                let distance = c.get(0).expect("group 0").start();
                if i + 1 >= n || anchored(i) || (distance == 0 && self.order[i].hits > 0 && self.order[i + 1].hits == 0)
                {
                    won = Some((c, i));
                    break;
                }
                let last_distance = self.start.map_or(1, |e| e.pos);
                if distance > self.order[i].distance || distance > last_distance {
                    if best.as_ref().is_none_or(|(b, _)| distance < b.get(0).expect("group 0").start()) {
                        best = Some((c, i));
                    }
                    continue;
                }
                won = Some((c, i));
                break;
            }
        }
        let (caps, mut i) = won.or(best)?;
        let m = caps.get(0).expect("group 0");
        self.order[i].hits += 1;
        self.order[i].distance = m.start();
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.start = Some(edge(line, m.start()));
        self.end = Some(edge(line, m.end()));
        if i != 0 && Some(i) != self.last {
            i = self.reorder(templates, i);
        }
        self.last = Some(i);
        Some(caps)
    }

    fn weight(&self, templates: &[Template], i: usize) -> f64 {
        let s = &self.order[i];
        f64::from(s.hits) * templates[s.index].weight / s.distance.max(1) as f64
    }

    /// fail2ban's `_reorderTemplate`: a template that won moves up past ones that weigh less.
    fn reorder(&mut self, templates: &[Template], num: usize) -> usize {
        let weight = self.weight(templates, num);
        let mut pos = if self.first_unused < num { self.first_unused } else { num / 2 };
        if weight <= self.weight(templates, pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if weight <= self.weight(templates, pos) {
                return num;
            }
        }
        let moved = self.order.remove(num);
        self.order.insert(pos, moved);
        while self.first_unused < self.order.len() && self.order[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }
}
