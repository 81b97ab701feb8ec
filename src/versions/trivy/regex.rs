//! The subset of Go's `regexp` (RE2 syntax, leftmost-first semantics) that
//! the Trivy comparer libraries use to parse versions and constraints.
//!
//! Why an engine and not hand-written scanners: these libraries split a
//! constraint with `FindAllString` (leftmost-first: the match a
//! backtracking engine would pick, *not* the longest) after a separate
//! anchored validity check that accepts any parse. The two can disagree
//! (go-pep440-version's `1.0alpha1` is valid, yet `FindAllString` yields
//! `1.0a` and `1`); reproducing that by hand per grammar is error-prone, so
//! we run the libraries' own patterns (data, not code) on this engine.
//! The `regex` crate would do, but it is not a dependency; this is small.
//!
//! Supported: literals, `\` escapes of punctuation, `\s` (`[\t\n\f\r ]`),
//! `\d` (`[0-9]`), classes with ranges, groups `(…)`, `(?:…)`,
//! `(?P<name>…)`, a leading `(?i)` flag, `|`, `?`, `*`, `+`, `^`, `$`
//! (text start and end). Case folding follows Go's simple folding for the
//! ASCII letters the patterns use, including `k`↔U+212A and `s`↔U+017F.
//!
//! Invariants: matching is a Pike VM: time O(text × program), memory
//! O(program × captures), whatever the input; no recursion on the text.
//! Patterns are compiled from constants and are trusted (a bad pattern
//! panics at first use, caught by the unit tests).

#[derive(Debug, Clone)]
enum Inst {
    /// One character in the (sorted, inclusive) ranges.
    Class(Vec<(char, char)>),
    /// Try the first target, then the second.
    Split(usize, usize),
    Jmp(usize),
    Save(usize),
    AssertStart,
    AssertEnd,
    Match,
}

/// A compiled pattern.
#[derive(Debug)]
pub struct Regex {
    prog: Vec<Inst>,
    slots: usize,
    names: Vec<Option<String>>,
}

#[derive(Debug)]
enum Node {
    Class(Vec<(char, char)>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, usize, bool), // (node, min 0|1, unbounded)
    Group(Box<Node>, Option<usize>),
    Start,
    End,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    fold: bool,
    groups: usize,
    names: &'a mut Vec<Option<String>>,
}

fn fold_class(ranges: &mut Vec<(char, char)>) {
    let mut extra = Vec::new();
    for &(lo, hi) in ranges.iter() {
        for c in lo..=hi {
            if c.is_ascii_alphabetic() {
                extra.push(c.to_ascii_lowercase());
                extra.push(c.to_ascii_uppercase());
            }
            match c.to_ascii_lowercase() {
                'k' => extra.push('\u{212A}'),
                's' => extra.push('\u{017F}'),
                _ => {}
            }
            if c as u32 > 0x7f {
                break;
            }
        }
    }
    ranges.extend(extra.into_iter().map(|c| (c, c)));
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars[self.pos..].iter().take(n).copied().eq(s.chars()) {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn alt(&mut self) -> Node {
        let mut alts = vec![self.concat()];
        while self.eat("|") {
            alts.push(self.concat());
        }
        if alts.len() == 1 {
            alts.pop().expect("one")
        } else {
            Node::Alt(alts)
        }
    }

    fn concat(&mut self) -> Node {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom();
            let atom = match self.peek() {
                Some('?') => Node::Repeat(Box::new(atom), 0, false),
                Some('*') => Node::Repeat(Box::new(atom), 0, true),
                Some('+') => Node::Repeat(Box::new(atom), 1, true),
                _ => {
                    items.push(atom);
                    continue;
                }
            };
            self.pos += 1;
            items.push(atom);
        }
        Node::Concat(items)
    }

    fn class_char(&mut self) -> char {
        let c = self.chars[self.pos];
        self.pos += 1;
        if c == '\\' {
            let e = self.chars[self.pos];
            self.pos += 1;
            assert!(e.is_ascii_punctuation(), "unsupported escape \\{e}");
            return e;
        }
        c
    }

    fn atom(&mut self) -> Node {
        if self.eat("(?i)") {
            self.fold = true;
            return Node::Concat(Vec::new());
        }
        if self.eat("(") {
            let index = if self.eat("?:") {
                None
            } else {
                let name = if self.eat("?P<") {
                    let end = self.chars[self.pos..].iter().position(|&c| c == '>').expect("name end");
                    let name: String = self.chars[self.pos..self.pos + end].iter().collect();
                    self.pos += end + 1;
                    Some(name)
                } else {
                    None
                };
                self.groups += 1;
                self.names.push(name);
                Some(self.groups)
            };
            let inner = self.alt();
            assert!(self.eat(")"), "unclosed group");
            return Node::Group(Box::new(inner), index);
        }
        if self.eat("^") {
            return Node::Start;
        }
        if self.eat("$") {
            return Node::End;
        }
        let mut ranges = if self.eat("[") {
            let mut ranges = Vec::new();
            while !self.eat("]") {
                let lo = self.class_char();
                if self.peek() == Some('-') && self.chars.get(self.pos + 1) != Some(&']') {
                    self.pos += 1;
                    let hi = self.class_char();
                    ranges.push((lo, hi));
                } else {
                    ranges.push((lo, lo));
                }
            }
            ranges
        } else if self.eat("\\s") {
            vec![('\t', '\n'), ('\x0c', '\r'), (' ', ' ')]
        } else if self.eat("\\d") {
            vec![('0', '9')]
        } else {
            let c = self.class_char();
            vec![(c, c)]
        };
        if self.fold {
            fold_class(&mut ranges);
        }
        Node::Class(ranges)
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Class(r) => prog.push(Inst::Class(r.clone())),
        Node::Concat(items) => items.iter().for_each(|n| compile(n, prog)),
        Node::Alt(alts) => {
            let mut jumps = Vec::new();
            for (i, alt) in alts.iter().enumerate() {
                if i + 1 < alts.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(alt, prog);
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(alt, prog);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(inner, min, unbounded) => {
            if *min == 1 {
                // x+: x; split(x, next)
                let start = prog.len();
                compile(inner, prog);
                let split = prog.len();
                prog.push(Inst::Split(start, split + 1));
            } else {
                // x? / x*: split(x, next); x; [jmp split]
                let split = prog.len();
                prog.push(Inst::Split(split + 1, 0));
                compile(inner, prog);
                if *unbounded {
                    prog.push(Inst::Jmp(split));
                }
                let next = prog.len();
                prog[split] = Inst::Split(split + 1, next);
            }
        }
        Node::Group(inner, index) => {
            if let Some(i) = index {
                prog.push(Inst::Save(2 * i));
            }
            compile(inner, prog);
            if let Some(i) = index {
                prog.push(Inst::Save(2 * i + 1));
            }
        }
        Node::Start => prog.push(Inst::AssertStart),
        Node::End => prog.push(Inst::AssertEnd),
    }
}

/// Capture slots of one match: byte offsets, `None` for a group that did
/// not take part.
pub type Slots = Vec<Option<usize>>;

struct Threads {
    dense: Vec<(usize, Slots)>,
    seen: Vec<bool>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads { dense: Vec::new(), seen: vec![false; n] }
    }

    fn clear(&mut self) {
        self.dense.clear();
        self.seen.iter_mut().for_each(|s| *s = false);
    }
}

impl Regex {
    /// Compiles a pattern of the supported subset (module doc).
    pub fn new(pattern: &str) -> Regex {
        let mut names = vec![None];
        let mut p =
            Parser { chars: pattern.chars().collect(), pos: 0, fold: false, groups: 0, names: &mut names };
        let node = p.alt();
        assert!(p.pos == p.chars.len(), "unparsed pattern tail at {}", p.pos);
        let groups = p.groups;
        let mut prog = vec![Inst::Save(0)];
        compile(&node, &mut prog);
        prog.push(Inst::Save(1));
        prog.push(Inst::Match);
        Regex { prog, slots: 2 * (groups + 1), names }
    }

    /// Index of the group called `name`.
    pub fn group(&self, name: &str) -> usize {
        self.names.iter().position(|n| n.as_deref() == Some(name)).expect("group name")
    }

    // Follows non-consuming instructions from `pc` in priority order.
    fn add(&self, list: &mut Threads, pc: usize, at: usize, len: usize, slots: &mut Slots) {
        // explicit stack: (pc, slot restore)
        enum Work {
            Pc(usize),
            Restore(usize, Option<usize>),
        }
        let mut stack = vec![Work::Pc(pc)];
        while let Some(w) = stack.pop() {
            let pc = match w {
                Work::Restore(i, v) => {
                    slots[i] = v;
                    continue;
                }
                Work::Pc(pc) => pc,
            };
            if list.seen[pc] {
                continue;
            }
            list.seen[pc] = true;
            match &self.prog[pc] {
                Inst::Jmp(t) => stack.push(Work::Pc(*t)),
                Inst::Split(a, b) => {
                    stack.push(Work::Pc(*b));
                    stack.push(Work::Pc(*a));
                }
                Inst::Save(i) => {
                    stack.push(Work::Restore(*i, slots[*i]));
                    slots[*i] = Some(at);
                    stack.push(Work::Pc(pc + 1));
                }
                Inst::AssertStart => {
                    if at == 0 {
                        stack.push(Work::Pc(pc + 1));
                    }
                }
                Inst::AssertEnd => {
                    if at == len {
                        stack.push(Work::Pc(pc + 1));
                    }
                }
                Inst::Class(_) | Inst::Match => list.dense.push((pc, slots.clone())),
            }
        }
    }

    /// The leftmost-first match starting at or after byte `from` (Go's
    /// `FindStringSubmatchIndex` on `text[from..]`, positions kept
    /// relative to `text` but `^` meaning `from`... only used with 0).
    pub fn captures_at(&self, text: &str, from: usize) -> Option<Slots> {
        let n = self.prog.len();
        let (mut clist, mut nlist) = (Threads::new(n), Threads::new(n));
        let mut matched: Option<Slots> = None;
        let mut at = from;
        let mut scratch = vec![None; self.slots];
        loop {
            if matched.is_none() {
                scratch.iter_mut().for_each(|s| *s = None);
                self.add(&mut clist, 0, at, text.len(), &mut scratch);
            }
            if clist.dense.is_empty() {
                break;
            }
            let c = text[at..].chars().next();
            let next = at + c.map_or(0, char::len_utf8);
            nlist.clear();
            for (pc, slots) in std::mem::take(&mut clist.dense) {
                match &self.prog[pc] {
                    Inst::Match => {
                        matched = Some(slots);
                        break; // lower-priority threads lose
                    }
                    Inst::Class(ranges) => {
                        if let Some(c) = c {
                            if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) {
                                let mut s = slots;
                                self.add(&mut nlist, pc + 1, next, text.len(), &mut s);
                            }
                        }
                    }
                    _ => unreachable!("only consuming instructions are queued"),
                }
            }
            if c.is_none() {
                break;
            }
            std::mem::swap(&mut clist, &mut nlist);
            at = next;
        }
        matched
    }

    /// Go's `MatchString`.
    pub fn is_match(&self, text: &str) -> bool {
        self.captures_at(text, 0).is_some()
    }

    /// Go's `FindStringSubmatch` as substrings (`None` for a group that did
    /// not take part).
    pub fn captures<'t>(&self, text: &'t str) -> Option<Vec<Option<&'t str>>> {
        let slots = self.captures_at(text, 0)?;
        Some(
            slots
                .chunks(2)
                .map(|p| match (p[0], p[1]) {
                    (Some(a), Some(b)) => Some(&text[a..b]),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Go's `FindAllString(text, -1)` (the patterns here never match the
    /// empty string, so Go's empty-match rules do not arise).
    pub fn find_all<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        let mut from = 0;
        while from <= text.len() {
            let Some(slots) = self.captures_at(text, from) else { break };
            let (a, b) = (slots[0].expect("start"), slots[1].expect("end"));
            out.push(&text[a..b]);
            from = if b > a { b } else { b + text[b..].chars().next().map_or(1, char::len_utf8) };
        }
        out
    }
}

/// Go's `strings.Split(s, "||")`, as an iterator.
pub fn split_or(s: &str) -> std::str::Split<'_, &'static str> {
    s.split("||")
}

/// Go's `strings.TrimSpace` (Unicode white space, as `unicode.IsSpace`).
pub fn trim_space(s: &str) -> &str {
    s.trim_matches(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftmost_first_not_longest() {
        let re = Regex::new("(a|ab)(c|bcd)?");
        assert_eq!(re.find_all("abcd"), vec!["abcd"]);
        let re = Regex::new("(?i)x(a|alpha)");
        assert_eq!(re.find_all("xALPHA xa"), vec!["xA", "xa"]);
        let re = Regex::new("^(?i)x(a|alpha)$");
        assert!(re.is_match("xALPHA"));
        assert!(!re.is_match("xALPH"));
    }

    #[test]
    fn classes_groups_and_names() {
        let re = Regex::new(r"v?(?P<major>[0-9|x|X|\*]+)(\.[0-9]+)?(-([0-9A-Za-z\-]+))?");
        let m = re.captures("v1|2.3-rc-1").expect("match");
        assert_eq!(m[re.group("major")], Some("1|2"));
        assert_eq!(m[2], Some(".3"));
        assert_eq!(m[4], Some("rc-1"));
        let re = Regex::new(r"[\[\(][0-9A-Za-z\-\.,]+[\]\)]");
        assert_eq!(re.find_all("(,1.0],[1.2,)"), vec!["(,1.0]", "[1.2,)"]);
        let re = Regex::new(r"^\s*(\s*(>=|<|)\s*([0-9]+)\s*\,?)*\s*$");
        assert!(re.is_match(" >= 1, <2 3 "));
        assert!(!re.is_match(">=1,,<2"));
        assert!(Regex::new("(?i)[a-z]").is_match("\u{212A}"));
    }

    #[test]
    fn long_inputs_stay_linear() {
        let re = Regex::new(r"^\s*(\s*(>=|<|)\s*([0-9]+(\.[0-9]+)*)\s*\,?)*\s*$");
        let text = "1".repeat(200_000) + "x";
        assert!(!re.is_match(&text));
    }
}
