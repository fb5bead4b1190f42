//! The `srcset` attribute's candidate list (HTML's "parse a srcset
//! attribute" micro-syntax: URLs end at whitespace, so `data:` URLs with
//! commas inside survive; descriptors end at a comma outside parentheses).

/// One image candidate: its URL and its descriptors as written (`2x`, `640w`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    pub descriptor: String,
}

/// The candidates of a `srcset` value, in order.
pub fn parse(value: &str) -> Vec<Candidate> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r');
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| is_space(c) || c == ',');
        if rest.is_empty() {
            break;
        }
        let end = rest.find(is_space).unwrap_or(rest.len());
        let (url, after) = rest.split_at(end);
        rest = after;
        if url.ends_with(',') {
            out.push(Candidate {
                url: url.trim_end_matches(',').to_string(),
                descriptor: String::new(),
            });
            continue;
        }
        let mut depth = 0usize;
        let mut cut = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        let descriptor = rest[..cut].trim_matches(is_space).to_string();
        rest = &rest[cut..];
        out.push(Candidate {
            url: url.to_string(),
            descriptor,
        });
    }
    out
}

/// Writes candidates back as a `srcset` value.
pub fn serialize(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| {
            if c.descriptor.is_empty() {
                c.url.clone()
            } else {
                format!("{} {}", c.url, c.descriptor)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &str) -> Vec<(String, String)> {
        parse(v)
            .into_iter()
            .map(|c| (c.url, c.descriptor))
            .collect()
    }

    #[test]
    fn candidates() {
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            pairs("a.png 1x, b.png 2x"),
            vec![p("a.png", "1x"), p("b.png", "2x")]
        );
        assert_eq!(
            pairs(" small.jpg  480w ,\n large.jpg 1080w,"),
            vec![p("small.jpg", "480w"), p("large.jpg", "1080w")]
        );
        assert_eq!(pairs("only.png"), vec![p("only.png", "")]);
        // A URL runs to whitespace, so this is one URL (as browsers read it).
        assert_eq!(pairs("a.png,b.png 2x"), vec![p("a.png,b.png", "2x")]);
        assert_eq!(
            pairs("a.png, b.png 2x"),
            vec![p("a.png", ""), p("b.png", "2x")]
        );
        assert_eq!(
            pairs("data:image/png;base64,AA,BB 1x, c.png (x, y) 2x"),
            vec![
                p("data:image/png;base64,AA,BB", "1x"),
                p("c.png", "(x, y) 2x")
            ]
        );
        assert!(pairs(" , ,, ").is_empty());
        assert_eq!(
            serialize(&parse("a.png 1x,b.png")),
            "a.png 1x, b.png".to_string()
        );
    }
}
