//! A self-contained HTML document: numbered sections with a table of contents, prose,
//! tables, collapsible details and inline SVG figures (pycls's `htmlbook.py`, without
//! external assets: the CSS is inline and the figures are SVG elements in the page).

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML report being built.
#[derive(Clone, Debug, Default)]
pub struct Report {
    title: String,
    toc: Vec<(String, String)>,
    body: String,
}

const STYLE: &str = r#"
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-top: 2px solid #444;
     padding-top: .6em; margin-top: 2em; } h3 { font-size: 1.05em; }
nav a { display: block; text-decoration: none; } a.top { font-size: .7em;
        text-decoration: none; margin-left: .5em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
figure { display: inline-block; margin: .4em; vertical-align: top; }
figcaption { font-size: .8em; color: #555; max-width: 480px; }
.grid { display: flex; flex-wrap: wrap; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: .8em; }
p.note { color: #555; font-size: .9em; }
"#;

impl Report {
    /// A report titled `title`.
    pub fn new(title: &str) -> Report {
        Report {
            title: title.to_string(),
            ..Report::default()
        }
    }

    /// Starts a numbered section (listed in the table of contents).
    pub fn section(&mut self, title: &str) {
        let n = self.toc.len() + 1;
        let anchor = format!("section{n:03}");
        let title = format!("{n} {title}");
        self.body.push_str(&format!(
            "<h2 id=\"{anchor}\">{}<a class=\"top\" href=\"#top\">[top]</a></h2>\n",
            escape(&title)
        ));
        self.toc.push((anchor, title));
    }

    /// A sub-heading.
    pub fn heading(&mut self, text: &str) {
        self.body.push_str(&format!("<h3>{}</h3>\n", escape(text)));
    }

    /// A paragraph of text (escaped).
    pub fn para(&mut self, text: &str) {
        self.body.push_str(&format!("<p>{}</p>\n", escape(text)));
    }

    /// A paragraph of trusted HTML.
    pub fn para_html(&mut self, html: &str) {
        self.body.push_str(&format!("<p>{html}</p>\n"));
    }

    /// A note (smaller, grey).
    pub fn note(&mut self, text: &str) {
        self.body
            .push_str(&format!("<p class=\"note\">{}</p>\n", escape(text)));
    }

    /// Opens a row of figures.
    pub fn begin_grid(&mut self) {
        self.body.push_str("<div class=\"grid\">\n");
    }

    /// Closes a row of figures.
    pub fn end_grid(&mut self) {
        self.body.push_str("</div>\n");
    }

    /// An inline SVG figure with a caption.
    pub fn figure(&mut self, svg: &str, caption: &str) {
        let start = svg.find("<svg").unwrap_or(0);
        self.body.push_str("<figure>\n");
        self.body.push_str(svg[start..].trim());
        if !caption.is_empty() {
            self.body
                .push_str(&format!("\n<figcaption>{}</figcaption>", escape(caption)));
        }
        self.body.push_str("\n</figure>\n");
    }

    /// A table; cells are escaped, and columns listed in `left` are left-aligned.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>], left: &[usize]) {
        let class = |i: usize| {
            if left.contains(&i) {
                " class=\"l\""
            } else {
                ""
            }
        };
        self.body.push_str("<table>\n<tr>");
        for (i, h) in header.iter().enumerate() {
            self.body
                .push_str(&format!("<th{}>{}</th>", class(i), escape(h)));
        }
        self.body.push_str("</tr>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                self.body
                    .push_str(&format!("<td{}>{}</td>", class(i), escape(c)));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// A collapsible block of preformatted text.
    pub fn details(&mut self, summary: &str, text: &str) {
        self.body.push_str(&format!(
            "<details><summary>{}</summary><pre>{}</pre></details>\n",
            escape(summary),
            escape(text)
        ));
    }

    /// The complete HTML document.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        s.push_str(&format!("<title>{}</title>\n", escape(&self.title)));
        s.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
        s.push_str(&format!(
            "<h1 id=\"top\">{}</h1>\n<nav>\n",
            escape(&self.title)
        ));
        for (anchor, title) in &self.toc {
            s.push_str(&format!("<a href=\"#{anchor}\">{}</a>\n", escape(title)));
        }
        s.push_str("</nav>\n");
        s.push_str(&self.body);
        s.push_str("</body>\n</html>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_structure() {
        let mut r = Report::new("A <sweep>");
        r.section("Errors");
        r.para("x < y & z");
        r.figure("<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>", "cap");
        r.table(&["a", "b"], &[vec!["1".into(), "<2>".into()]], &[0]);
        let html = r.render();
        assert!(html.contains("<title>A &lt;sweep&gt;</title>"));
        assert!(html.contains("<a href=\"#section001\">1 Errors</a>"));
        assert!(html.contains("<p>x &lt; y &amp; z</p>"));
        assert!(html.contains("<figure>\n<svg width=\"1\"></svg>"));
        assert!(!html.contains("<?xml"));
        assert!(html.contains("<td>&lt;2&gt;</td>"));
    }
}
