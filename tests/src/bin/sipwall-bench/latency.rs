pub fn run(_quick: bool) -> String {
    String::new()
}
