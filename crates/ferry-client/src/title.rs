//! The one place a page's title is taken: the bytes are decoded with the page's
//! charset ([`crate::charset`]), parsed with a real HTML parser (html5ever via
//! `scraper`, so entities, comments, `<script>` contents and broken markup are
//! handled as a browser would), and the first `<title>`'s text is returned with
//! whitespace stripped and collapsed (as `document.title` does). The parse
//! runs within a memory and work budget ([`crate::dom`]): markup built to
//! blow up a DOM gets no title (the file is named from its URL), not gigabytes.

use scraper::Selector;

use crate::charset;
use crate::dom::{DomBudget, parse_document};

/// The most memory the parse of a page's head may take (a normal page's
/// first 512 KiB take a few MiB).
const TITLE_DOM_BUDGET: u64 = 64 * 1024 * 1024;

/// How much of a page is kept for finding its title. A `<title>` sits in the
/// `<head>`, near the start; pages whose title comes later fall back to a name
/// from the URL.
pub const TITLE_SCAN_LIMIT: usize = 512 * 1024;

/// The title of an HTML page given its first bytes and its `Content-Type`.
pub fn page_title(content_type: Option<&str>, head: &[u8]) -> Option<String> {
    let encoding = charset::detect(content_type, head);
    let text = charset::decode(head, encoding);
    title_of(&text)
}

/// The text of the first `<title>` element of an HTML document, whitespace
/// collapsed; `None` if there is none or it is blank.
pub fn title_of(html: &str) -> Option<String> {
    let budget = DomBudget::new(TITLE_DOM_BUDGET);
    let dom = parse_document(html, &budget).ok()?;
    let selector = Selector::parse("title").ok()?;
    let element = dom.doc.select(&selector).next()?;
    let raw: String = element.text().collect();
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        let cases: &[(&str, Option<&str>)] = &[
            ("<title>Hello</title>", Some("Hello")),
            (
                "<html><head><title>\n  Rust &amp; Ferry\t&mdash; docs </title>",
                Some("Rust & Ferry — docs"),
            ),
            (
                "<title>&lt;b&gt;bold&lt;/b&gt; &#x263A;</title>",
                Some("<b>bold</b> ☺"),
            ),
            ("<title></title>", None),
            ("<title>   </title>", None),
            ("<html><body>no title</body></html>", None),
            ("", None),
            // The first title wins; comments and scripts are not titles.
            (
                "<!-- <title>no</title> --><script>'<title>no</title>'</script><title>yes</title><title>second</title>",
                Some("yes"),
            ),
            // Markup inside <title> is text (RCDATA).
            ("<title>a <b>b</b></title>", Some("a <b>b</b>")),
            // Unclosed title runs to the end.
            ("<title>unclosed", Some("unclosed")),
            ("<TITLE>Upper</TITLE>", Some("Upper")),
        ];
        for (html, want) in cases {
            assert_eq!(title_of(html).as_deref(), *want, "{html:?}");
        }
    }

    #[test]
    fn titles_in_declared_charsets() {
        let cases: &[(Option<&str>, &[u8], &str)] = &[
            (
                Some("text/html; charset=iso-8859-1"),
                b"<title>Caf\xe9 cr\xe8me</title>",
                "Café crème",
            ),
            (
                Some("text/html"),
                b"<meta charset=\"Shift_JIS\"><title>\x93\xfa\x96\x7b\x8c\xea</title>",
                "日本語",
            ),
            (None, b"\xEF\xBB\xBF<title>BOM \xC3\xA9</title>", "BOM é"),
            (None, b"<title>\xe9t\xe9</title>", "été"),
        ];
        for (ct, bytes, want) in cases {
            assert_eq!(page_title(*ct, bytes).as_deref(), Some(*want), "{bytes:?}");
        }
    }

    #[test]
    fn markup_built_to_blow_up_the_parse_gets_no_title_instead_of_gigabytes() {
        // Each new paragraph clones every open formatting element: without a
        // budget this 30 KB head builds some 400,000 nodes (2.5 GB measured).
        let mut page = String::from("<title>Bomb</title><p>");
        for i in 0..2000 {
            page.push_str(&format!("<b id={i}>"));
        }
        for _ in 0..200 {
            page.push_str("</p><p>x");
        }
        assert_eq!(title_of(&page), None);
        assert_eq!(title_of("<title>Plain</title><p>x"), Some("Plain".into()));
    }
}
