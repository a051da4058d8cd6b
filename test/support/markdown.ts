/**
 * Just enough Markdown reading for the documentation tests: the links of a page and the
 * anchors its headings get on GitHub. Fenced code blocks and inline code are not Markdown.
 */

export interface MarkdownLink {
  readonly target: string;
  readonly line: number;
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let fence: string | null = null;
  text.split('\n').forEach((l, i) => {
    const m = /^\s*(```+|~~~+)/.exec(l);
    if (m?.[1]) {
      if (fence === null) fence = m[1].slice(0, 3);
      else if (m[1].startsWith(fence)) fence = null;
      return;
    }
    if (fence === null) out.push({ text: l, line: i + 1 });
  });
  return out;
}

const withoutInlineCode = (l: string): string => l.replace(/(`+)[\s\S]*?\1/g, '');

/** Inline links and images `[text](target)` and `![alt](target "title")`, outside code. */
export function markdownLinks(text: string): MarkdownLink[] {
  const out: MarkdownLink[] = [];
  for (const { text: l, line } of proseLines(text)) {
    for (const m of withoutInlineCode(l).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      if (m[1]) out.push({ target: m[1], line });
  }
  return out;
}

/**
 * GitHub's anchor for a heading: the rendered text (code marks and link syntax removed),
 * lower case, punctuation dropped, spaces as hyphens; repeated headings get -1, -2, ….
 */
export function headingAnchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text: l } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l);
    if (!m?.[1]) continue;
    const rendered = m[1].replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
    const base = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}
