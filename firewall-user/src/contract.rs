//! The kernel contract, checked on the built object: its maps, programs and globals are exactly
//! the ones `firewall_common::{maps, programs}` names, so a static renamed or added on one side
//! fails here, on any machine, rather than at load time on a user's host.

use std::collections::BTreeSet;

use aya_obj::Object;
use firewall_common::{maps, programs, reason::Reason, trafficgen};
use object::{Object as _, ObjectSection, ObjectSymbol, SymbolKind, SymbolSection};

use crate::{BPF_OBJECT, TRAFFICGEN_OBJECT};

/// What aya-log's kernel side adds for `--trace-drops`: its ring buffer and its level switch,
/// which aya-log's user side opens by these names.
const AYA_LOG_MAP: &str = "AYA_LOGS";
const AYA_LOG_GLOBAL: &str = "AYA_LOG_LEVEL";

fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    names.into_iter().collect()
}

#[test]
fn the_object_holds_exactly_the_maps_firewall_common_names() {
    let obj = Object::parse(BPF_OBJECT).expect("the built object parses");
    // the data sections that hold the globals are maps to the loader too
    let found = set(obj.maps.keys().map(String::as_str).filter(|n| !n.starts_with('.')));
    let mut named = set(maps::ALL.iter().copied());
    assert_eq!(named.len(), maps::ALL.len(), "a map named twice in maps::ALL");
    named.insert(AYA_LOG_MAP);
    assert_eq!(found, named);
}

#[test]
fn the_object_holds_exactly_the_programs_firewall_common_names() {
    let obj = Object::parse(BPF_OBJECT).expect("the built object parses");
    assert_eq!(set(obj.programs.keys().map(String::as_str)), set(programs::ALL));
}

#[test]
fn the_object_holds_exactly_the_globals_firewall_common_names() {
    let elf = object::File::parse(BPF_OBJECT).expect("the built object is ELF");
    let globals: BTreeSet<&str> =
        elf.symbols()
            .filter(|s| s.is_global() && s.kind() == SymbolKind::Data)
            .filter(|s| match s.section() {
                SymbolSection::Section(i) => elf.section_by_index(i).and_then(|sec| sec.name()).is_ok_and(|n| {
                    [".bss", ".data", ".rodata"].iter().any(|d| n == *d || n.starts_with(&format!("{d}.")))
                }),
                _ => false,
            })
            .filter_map(|s| s.name().ok())
            .collect();
    let mut named = set(programs::global::ALL);
    named.insert(AYA_LOG_GLOBAL);
    assert_eq!(globals, named);
}

#[test]
fn the_reason_table_in_the_architecture_doc_is_the_kernel_s() {
    let doc = include_str!("../../docs/architecture.md");
    let table = doc.split("### Reasons").nth(1).expect("a Reasons section").split("\n## ").next().unwrap();
    let rows: Vec<(&str, &str)> = table
        .lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix("| `")?.split(" | ");
            Some((cells.next()?.strip_suffix('`')?, cells.next()?))
        })
        .collect();
    let kernel: Vec<(&str, &str)> = Reason::ALL.iter().map(|r| (r.name(), r.action().name())).collect();
    assert_eq!(rows, kernel);
}

#[test]
fn the_traffic_generator_is_an_object_of_its_own_with_the_names_firewall_common_gives() {
    if TRAFFICGEN_OBJECT.is_empty() {
        eprintln!("built from a prebuilt object (SIPWALL_BPF_OBJECT): no traffic generator to check");
        return;
    }
    let obj = Object::parse(TRAFFICGEN_OBJECT).expect("the generator's object parses");
    assert_eq!(set(obj.programs.keys().map(String::as_str)), set([trafficgen::PROGRAM, trafficgen::FLOOR_PROGRAM]));
    let found = set(obj.maps.keys().map(String::as_str).filter(|n| !n.starts_with('.')));
    assert_eq!(found, set([trafficgen::SOURCES, trafficgen::SENT, trafficgen::PASS, trafficgen::DROPPED]));
    for p in [trafficgen::PROGRAM, trafficgen::FLOOR_PROGRAM] {
        assert!(!programs::ALL.contains(&p), "the generator's {p} is no program of sipwall's object");
    }
}
