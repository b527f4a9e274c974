/**
 * Warning texts (docs/semantics.md admission §4.5): each names the image exactly as written and stays within the
 * apiserver's 256 characters (aim: under 120). The optional detail goes first; an image is
 * shortened in the middle (`…`) only when it is over 200 characters, or when an image and a
 * digest together could not fit otherwise. Digests are never cut.
 */
import { showImage } from './images.ts';

export const WARNING_LIMIT = 256;

function middle(text: string, length: number): string {
  if (text.length <= length) return text;
  const head = Math.ceil((length - 1) / 2);
  const tail = length - 1 - head;
  return `${text.slice(0, head)}…${tail > 0 ? text.slice(-tail) : ''}`;
}

/** `<image>: <text>[: <detail>]`, cut to fit. */
export function imageWarning(image: string, text: string, detail?: string): string {
  const shown = showImage(image);
  const base = `${shown}: ${text}`;
  if (detail !== undefined && detail !== '') {
    const full = `${base} (${detail})`;
    if (full.length <= WARNING_LIMIT) return full;
    const room = WARNING_LIMIT - base.length - 3;
    if (room >= 20) return `${base} (${middle(detail, room)})`;
  }
  if (base.length <= WARNING_LIMIT) return base;
  return `${middle(shown, Math.max(20, WARNING_LIMIT - text.length - 2))}: ${text}`;
}

/** `<prefix><image>`, the image shortened in the middle only if the whole would pass the limit. */
export function prefixedImage(prefix: string, image: string): string {
  const shown = showImage(image);
  if (prefix.length + shown.length <= WARNING_LIMIT) return prefix + shown;
  return prefix + middle(shown, Math.max(20, WARNING_LIMIT - prefix.length));
}
