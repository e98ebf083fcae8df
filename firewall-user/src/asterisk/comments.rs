//! Comments in Asterisk's configuration files: `;` to the end of the line, `\;` for a literal
//! semicolon, and block comments `;--` … `--;` that nest and span lines.
//!
//! This follows the loop in `config_text_file_load` (main/config.c) step by step, including its
//! odd corners: `;---` starts no block, and a `--;` with no block open sends Asterisk into
//! comment mode until the next `;--`.

/// Block-comment state across the lines of one file.
#[derive(Debug, Default)]
pub(super) struct Comments {
    /// Open block comments; below zero after a stray `--;`, as in Asterisk.
    depth: i32,
    /// The lines where the open block comments began.
    opened: Vec<usize>,
    /// Lines with a `--;` that closed no block comment.
    pub stray_closes: Vec<usize>,
}

impl Comments {
    /// The text of `line` that is not comment, or `None` when all of it is; `\;` becomes `;`.
    pub fn strip(&mut self, line: &[u8], lineno: usize) -> Option<Vec<u8>> {
        let mut buf = line.to_vec();
        // Asterisk works on a C string: text ends at the first NUL it writes.
        let mut process: Option<usize> = if self.depth != 0 { None } else { Some(0) };
        let mut from = 0;
        while let Some(p) = find_semicolon(&buf, from) {
            let at = |i: usize| buf.get(i).copied().unwrap_or(0);
            if p > from && at(p - 1) == b'\\' {
                buf.remove(p - 1);
                from = p;
            } else if at(p + 1) == b'-' && at(p + 2) == b'-' && at(p + 3) != b'-' {
                buf[p] = 0;
                from = p + 3;
                if self.depth >= 0 {
                    self.opened.push(lineno);
                }
                self.depth += 1;
            } else if p >= from + 2 && at(p - 1) == b'-' && at(p - 2) == b'-' {
                if self.depth > 0 {
                    self.opened.pop();
                }
                self.depth -= 1;
                if self.depth < 0 {
                    self.stray_closes.push(lineno);
                }
                from = p + 1;
                if self.depth == 0 {
                    match process {
                        Some(start) => {
                            // What follows the block joins what preceded it.
                            let end = c_end(&buf, start);
                            let rest = buf[from..c_end(&buf, from)].to_vec();
                            buf.truncate(end);
                            buf.extend_from_slice(&rest);
                            from = end;
                        }
                        None => process = Some(from),
                    }
                }
            } else if self.depth == 0 {
                buf[p] = 0;
                from = p;
            } else {
                from = p + 1;
            }
        }
        process.map(|start| buf[start..c_end(&buf, start)].to_vec())
    }

    /// The line where a block comment still open at the end of the file began.
    pub fn unterminated(&self) -> Option<usize> {
        if self.depth > 0 {
            self.opened.last().copied()
        } else {
            None
        }
    }
}

/// The end of the C string starting at `from`.
fn c_end(buf: &[u8], from: usize) -> usize {
    let from = from.min(buf.len());
    buf[from..].iter().position(|&b| b == 0).map_or(buf.len(), |i| from + i)
}

/// `strchr(buf + from, ';')`.
fn find_semicolon(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    let end = c_end(buf, from);
    buf[from..end].iter().position(|&b| b == b';').map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(lines: &[&str]) -> Vec<Option<String>> {
        let mut c = Comments::default();
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| c.strip(l.as_bytes(), i + 1).map(|b| String::from_utf8(b).unwrap()))
            .collect()
    }

    #[test]
    fn line_comments_and_escaped_semicolons() {
        let out = strip_all(&["a = 1 ; one", "; whole line", r"b = x\;y ; z", r"c = \;\;", ";------ banner"]);
        assert_eq!(out[0].as_deref(), Some("a = 1 "));
        assert_eq!(out[1].as_deref(), Some(""));
        assert_eq!(out[2].as_deref(), Some("b = x;y "));
        assert_eq!(out[3].as_deref(), Some("c = ;;"));
        assert_eq!(out[4].as_deref(), Some(""));
    }

    #[test]
    fn block_comments_span_lines_and_nest() {
        let out =
            strip_all(&["a = 1 ;-- start", "b = 2", ";-- inner --; still comment", "end --; c = 3", "d = ;-- x --; 4"]);
        assert_eq!(out[0].as_deref(), Some("a = 1 "));
        assert_eq!(out[1], None);
        assert_eq!(out[2], None);
        assert_eq!(out[3].as_deref(), Some(" c = 3"));
        assert_eq!(out[4].as_deref(), Some("d =  4"));
    }

    #[test]
    fn a_stray_close_comments_out_what_follows_as_asterisk_does() {
        let mut c = Comments::default();
        assert_eq!(c.strip(b"a = 1--; x", 1).as_deref(), Some(&b"a = 1--; x"[..]));
        assert_eq!(c.strip(b"b = 2", 2), None);
        assert_eq!(c.strip(b";-- reopens", 3), None);
        assert_eq!(c.strip(b"c = 3", 4).as_deref(), Some(&b"c = 3"[..]));
        assert_eq!(c.stray_closes, vec![1]);
        assert_eq!(c.unterminated(), None);
    }

    #[test]
    fn an_open_block_is_reported() {
        let mut c = Comments::default();
        c.strip(b"x ;-- never closed", 7);
        assert_eq!(c.unterminated(), Some(7));
    }
}
