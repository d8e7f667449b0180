/**
 * Agent and PR text is untrusted: markdown-it with raw HTML off renders it, then DOMPurify removes anything
 * that could run (script, event handlers, javascript: and other non-web URLs). Links open in a new tab
 * without handing the opener over. Loaded with a dynamic import only where messages are shown.
 */
import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: false });

const SAFE_URL = /^(?:https?:|mailto:|#|\/(?!\/))/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    const href = node.getAttribute('href') ?? '';
    if (!SAFE_URL.test(href.trim())) node.removeAttribute('href');
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
  if (node.tagName === 'IMG') {
    const src = node.getAttribute('src') ?? '';
    if (!/^https:/i.test(src.trim())) node.removeAttribute('src');
  }
});

export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(markdown.render(text), {
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed'],
    FORBID_ATTR: ['style'],
    ALLOW_DATA_ATTR: false,
  });
}
