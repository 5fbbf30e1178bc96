//! The exposition writer: families and samples written straight into one buffer, in the
//! OpenMetrics text format or the classic Prometheus text format (0.0.4). The output is
//! what prometheus-client's text encoder writes (numbers with `itoa`/`dtoa`, label values
//! escaped the same way), minus its per-row label sets: labels are borrowed `&str`s.

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text: counter families named without `_total`, `# EOF` at the end.
    OpenMetrics,
    /// Classic Prometheus text (0.0.4): counter families named with `_total`, no `# EOF`.
    Classic,
}

/// A family's type, as written in `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
}

/// Labels of one sample, borrowed from the snapshot.
pub type Labels<'a> = [(&'a str, &'a str)];

/// Takes the pieces of a streamed exposition, in order; false once nobody reads them any
/// more (the rest of the render is then dropped, not buffered).
pub type Sink<'s> = dyn FnMut(String) -> bool + 's;

/// One exposition being written.
pub struct Text<'s> {
    out: String,
    format: Format,
    /// The current family's name and whether its samples end in `_total`.
    family: String,
    counter: bool,
    /// A histogram's label set, written once per histogram and copied into each line.
    scratch: String,
    /// Streaming: `out` goes to the sink once it holds `chunk` bytes or more, so the
    /// buffer stays near `chunk` (a line more) whatever the exposition's size.
    chunk: usize,
    sink: Option<&'s mut Sink<'s>>,
}

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text")
            .field("format", &self.format)
            .field("len", &self.out.len())
            .field("chunk", &self.chunk)
            .field("streaming", &self.sink.is_some())
            .finish()
    }
}

impl<'s> Text<'s> {
    /// `capacity`: what the last render needed, so a render grows its buffer at most once.
    pub fn new(format: Format, capacity: usize) -> Text<'s> {
        Text {
            out: String::with_capacity(capacity),
            format,
            family: String::new(),
            counter: false,
            scratch: String::new(),
            chunk: usize::MAX,
            sink: None,
        }
    }

    /// A streamed exposition: pieces of about `chunk` bytes (each ends with a whole line)
    /// go to `sink` as they are written, the last one from [`Text::finish_stream`].
    pub fn streaming(format: Format, chunk: usize, sink: &'s mut Sink<'s>) -> Text<'s> {
        let chunk = chunk.max(1);
        Text {
            out: String::with_capacity(piece_capacity(chunk)),
            format,
            family: String::new(),
            counter: false,
            scratch: String::new(),
            chunk,
            sink: Some(sink),
        }
    }

    /// Hands `out` to the sink once it holds a chunk (called after every whole line).
    fn spill(&mut self) {
        if self.out.len() >= self.chunk {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.out.is_empty() {
            return;
        }
        let piece = std::mem::replace(
            &mut self.out,
            String::with_capacity(piece_capacity(self.chunk)),
        );
        if !sink(piece) {
            // The reader is gone: stop buffering, and write the rest into nothing
            // (a chunk at a time, reusing the buffer).
            self.sink = None;
            self.out.clear();
        }
    }

    /// Starts a family: `# HELP` and `# TYPE`. `name` is without `_total` for counters.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.family.clear();
        self.family.push_str(name);
        self.counter = kind == Kind::Counter;
        let total = if self.counter && self.format == Format::Classic {
            "_total"
        } else {
            ""
        };
        for (what, tail) in [("# HELP ", help), ("# TYPE ", kind.as_str())] {
            self.out.push_str(what);
            self.out.push_str(name);
            self.out.push_str(total);
            if self.format == Format::Classic && tail.trim_end().is_empty() {
                // The classic text's lines carry no trailing blanks.
                self.out.push('\n');
                continue;
            }
            self.out.push(' ');
            self.out.push_str(if self.format == Format::Classic {
                tail.trim_end()
            } else {
                tail
            });
            self.out.push('\n');
        }
        self.spill();
    }

    /// One sample of the current family (`_total` added for counters).
    pub fn sample(&mut self, labels: &Labels, value: Value) {
        self.out.push_str(&self.family);
        if self.counter {
            self.out.push_str("_total");
        }
        write_labels(&mut self.out, labels);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
        self.spill();
    }

    /// One histogram of the current family: `_sum`, `_count`, then cumulative `_bucket`s
    /// (`counts` are per bucket, not cumulative), `le` first as prometheus-client writes it.
    pub fn histogram(
        &mut self,
        labels: &Labels,
        sum: f64,
        count: u64,
        buckets: impl IntoIterator<Item = (f64, u64)>,
    ) {
        self.scratch.clear();
        write_labels(&mut self.scratch, labels);
        for (suffix, value) in [("_sum", Value::Float(sum)), ("_count", Value::Uint(count))] {
            self.out.push_str(&self.family);
            self.out.push_str(suffix);
            self.out.push_str(&self.scratch);
            self.out.push(' ');
            push_value(&mut self.out, value);
            self.out.push('\n');
        }
        let mut cumulative = 0u64;
        for (upper, n) in buckets {
            cumulative += n;
            self.out.push_str(&self.family);
            self.out.push_str("_bucket{le=\"");
            if upper == f64::INFINITY {
                self.out.push_str("+Inf");
            } else {
                self.out.push_str(dtoa::Buffer::new().format(upper));
            }
            self.out.push('"');
            if labels.is_empty() {
                self.out.push('}');
            } else {
                // The label set without its opening brace.
                self.out.push(',');
                self.out.push_str(&self.scratch[1..]);
            }
            self.out.push(' ');
            self.out.push_str(itoa::Buffer::new().format(cumulative));
            self.out.push('\n');
        }
        self.spill();
    }

    /// The text, `# EOF` ended for OpenMetrics.
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    /// Ends a streamed exposition: `# EOF` for OpenMetrics, and the last piece to the sink.
    pub fn finish_stream(mut self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.flush();
    }
}

/// A piece's buffer: its chunk and room for the line that crosses it, so a piece is
/// allocated once; huge chunks (a test's `usize::MAX`) grow as they are written instead.
fn piece_capacity(chunk: usize) -> usize {
    chunk.saturating_add(chunk / 8).min(1 << 20)
}

/// `{k="v",...}`, nothing for no labels.
fn write_labels(out: &mut String, labels: &Labels) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v);
        out.push('"');
    }
    out.push('}');
}

/// A label value with `\`, `"` and newline escaped.
fn push_escaped(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, value: Value) {
    match value {
        Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        Value::Uint(v) => out.push_str(itoa::Buffer::new().format(v)),
        Value::Float(v) => out.push_str(dtoa::Buffer::new().format(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values_like_prometheus_client() {
        let mut t = Text::new(Format::OpenMetrics, 0);
        t.family("x", "X.", Kind::Gauge);
        t.sample(&[("a", "q\"b\\s\nn")], Value::Int(-1));
        assert_eq!(
            t.finish(),
            "# HELP x X.\n# TYPE x gauge\nx{a=\"q\\\"b\\\\s\\nn\"} -1\n# EOF\n"
        );
    }

    #[test]
    fn classic_counters_carry_total_in_help_and_type() {
        let mut t = Text::new(Format::Classic, 0);
        t.family("c", "C.", Kind::Counter);
        t.sample(&[], Value::Uint(3));
        t.family("h", "H.", Kind::Histogram);
        t.histogram(&[], 0.5, 1, [(1.0, 1), (f64::INFINITY, 0)]);
        assert_eq!(
            t.finish(),
            "# HELP c_total C.\n# TYPE c_total counter\nc_total 3\n\
             # HELP h H.\n# TYPE h histogram\nh_sum 0.5\nh_count 1\n\
             h_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn a_sink_that_refuses_gets_nothing_more() {
        let mut calls = 0;
        let mut sink = |piece: String| {
            calls += 1;
            assert!(!piece.is_empty());
            false
        };
        let mut t = Text::streaming(Format::OpenMetrics, 1, &mut sink);
        for i in 0..10 {
            t.family("x", "X.", Kind::Gauge);
            t.sample(&[("i", itoa::Buffer::new().format(i))], Value::Int(i));
        }
        t.finish_stream();
        assert_eq!(calls, 1);
    }

    #[test]
    fn streamed_pieces_are_whole_lines_of_the_same_text() {
        let write = |t: &mut Text<'_>| {
            t.family("c", "C.", Kind::Counter);
            for i in 0..100 {
                t.sample(&[("i", itoa::Buffer::new().format(i))], Value::Uint(3));
            }
            t.family("h", "H.", Kind::Histogram);
            t.histogram(&[("a", "b")], 0.5, 1, [(1.0, 1), (f64::INFINITY, 0)]);
        };
        let mut whole = Text::new(Format::Classic, 0);
        write(&mut whole);
        let whole = whole.finish();
        let mut pieces = Vec::new();
        let mut sink = |piece: String| {
            pieces.push(piece);
            true
        };
        let mut t = Text::streaming(Format::Classic, 100, &mut sink);
        write(&mut t);
        t.finish_stream();
        assert!(pieces.len() > 10, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.ends_with('\n') && p.len() < 200));
        assert_eq!(pieces.concat(), whole);
    }
}
