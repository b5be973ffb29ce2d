import type { Attachment } from '../../model/handover.js';

/** A message `content` as Sunshine Conversations documents it; only the fields read here. */
export interface SunshineContent {
  type?: string;
  text?: string | null;
  mediaUrl?: string | null;
  altText?: string | null;
  actions?: unknown[];
  items?: unknown[];
  coordinates?: unknown;
  location?: unknown;
}

/**
 * What an agent's message says, in the service's terms (text and attachments). Rich contents keep
 * what a user can act on: a carousel or list item becomes its title and description, its image an
 * attachment named by the title, its link actions `text: uri` lines, its other actions their labels; a
 * location becomes its name and coordinates; text, image and file messages their text (or alt text) and
 * media. A content of a type not known here gives its text or alt text, if any.
 */
export function readContent(content: SunshineContent): { text: string; attachments: Attachment[] } {
  const lines: string[] = [];
  const attachments: Attachment[] = [];
  const text = content.type === 'text' ? content.text : (content.text ?? content.altText);
  if (text) lines.push(text);
  if (content.mediaUrl) attachments.push({ url: content.mediaUrl, ...(content.altText ? { name: content.altText } : {}) });
  lines.push(...actionLines(content.actions));
  for (const raw of content.items ?? []) {
    const item = asRecord(raw);
    const title = str(item.title);
    const description = str(item.description);
    if (title || description) lines.push([title, description].filter(Boolean).join(' — '));
    const mediaUrl = str(item.mediaUrl);
    if (mediaUrl) attachments.push({ url: mediaUrl, ...(title ? { name: title } : {}) });
    lines.push(...actionLines(Array.isArray(item.actions) ? item.actions : undefined));
  }
  if (content.type === 'location') {
    const coordinates = asRecord(content.coordinates);
    const place = asRecord(content.location);
    const name = [str(place.name), str(place.address)].filter(Boolean).join(', ');
    const at = typeof coordinates.lat === 'number' && typeof coordinates.long === 'number' ? `(${coordinates.lat}, ${coordinates.long})` : '';
    if (name || at) lines.push([name, at].filter(Boolean).join(' '));
  }
  return { text: lines.join('\n'), attachments };
}

/** Link-like actions (`link`, `webview`) as `text: uri`; the others (replies, postbacks, buy, …) as their label. */
function actionLines(actions: unknown[] | undefined): string[] {
  return (actions ?? []).flatMap((raw) => {
    const action = asRecord(raw);
    const label = str(action.text);
    const uri = str(action.uri);
    if (uri && (action.type === 'link' || action.type === 'webview')) return [label ? `${label}: ${uri}` : uri];
    return label ? [label] : [];
  });
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
