//! A feed's list in the tables: all or nothing, under the allow list, kept across reloads.

use super::*;

#[test]
fn a_feed_list_applies_all_or_nothing_and_the_allow_list_still_wins() {
    let mut r = rules("[allow]\nsources = [\"10.1.2.3\", \"2001:db8:1::/48\"]\n");
    // tables of 1024 entries
    (r.block_capacity, r.bans.capacity) = (0, 1024);
    r.block_feeds.push(crate::rules::feeds::tests::feed("https://l.example/drop", crate::rules::feeds::Format::Plain));
    let mut e = Enforcer::new(FakeTables::default(), r.clone(), KernelClock::synthetic(1000)).unwrap();
    let mut with_feed = r.clone();
    with_feed.set_feed("l.example-drop", vec![net("10.0.0.0/8"), net("2001:db8::/32")]);
    e.apply_rules(with_feed.clone()).unwrap();
    let t = &e.tables;
    assert_ne!(t.classify_v4(v4("10.9.9.9")).flags & class::BLOCK, 0);
    assert_ne!(t.classify_v6(v6("2001:db8:2::1")).flags & class::BLOCK, 0);
    // the XDP program checks ALLOW before BLOCK (verdict.rs): an allow-listed source in a
    // feed's network stays allowed
    assert_ne!(t.classify_v4(v4("10.1.2.3")).flags & class::ALLOW, 0);
    assert_ne!(t.classify_v6(v6("2001:db8:1::9")).flags & class::ALLOW, 0);

    // a list the tables cannot take changes nothing
    let before = kernel_state(&e.tables);
    let mut too_big = with_feed.clone();
    too_big.set_feed(
        "l.example-drop",
        (0..2048u32).map(|i| net(&format!("100.{}.{}.0/24", 64 + i / 256, i % 256))).collect(),
    );
    let err = e.apply_rules(too_big).unwrap_err();
    assert!(err.to_string().contains("is full"), "{err}");
    assert_eq!(kernel_state(&e.tables), before);
    assert_eq!(e.rules(), &with_feed);

    // a reload of the rules file keeps the feed's list in force
    let mut reread = r.clone();
    reread.keep_good_lists(e.rules());
    assert_eq!(reread.feed_nets, with_feed.feed_nets);
    reread.block_feeds.clear();
    reread.keep_good_lists(e.rules());
    assert!(reread.feed_nets.is_empty(), "a feed taken out of the rules takes its list with it");
}
