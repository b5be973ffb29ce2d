import { describe, expect, it } from 'vitest';
import { htmlToText, transcriptNote, userReply } from '../../src/connectors/intercom/intercom-content.js';

describe('Intercom content', () => {
  it('reads an HTML part body as text: paragraphs and breaks as lines, links kept, entities decoded', () => {
    expect(htmlToText('<p>Hello <b>Uma</b>,</p><p>see <a href="https://acme.test/r">the refund page</a><br>or reply &amp; wait&nbsp;&#8230;</p>')).toBe(
      'Hello Uma,\nsee the refund page (https://acme.test/r)\nor reply & wait \u2026',
    );
    expect(htmlToText('<p>&lt;script&gt; stays text</p>')).toBe('<script> stays text');
    expect(htmlToText('<p>&#x1F600; &#0; &bogus;</p>')).toBe('\u{1F600} &#0; &bogus;');
    // Plain text (webhooks of API version 2.15 and later) is taken as it is.
    expect(htmlToText('if x < 5 and y > 3 & z')).toBe('if x < 5 and y > 3 & z');
    expect(htmlToText('use <b> for bold, and <i> too ')).toBe('use <b> for bold, and <i> too ');
  });

  it('writes the note as escaped HTML, ending with the handover id', () => {
    const note = transcriptNote('ho_1', [{ role: 'user', text: 'a <b> & c' }], { plan: 'gold' });
    expect(note).toBe('<p>Conversation with the bot:</p><p>user: a &lt;b&gt; &amp; c</p><p></p><p>Details:</p><p>plan: gold</p><p></p><p>Handover: ho_1</p>');
  });

  it('sends images as attachment_urls (at most 10) and other files as links', () => {
    const images = Array.from({ length: 11 }, (_, i) => ({ url: `https://f.test/${i}.png`, contentType: 'image/png' }));
    const reply = userReply('hi', [...images, { url: 'https://f.test/a.pdf', name: 'a.pdf' }]);
    expect(reply.attachment_urls).toHaveLength(10);
    expect(reply.body).toBe('hi\nhttps://f.test/10.png\na.pdf: https://f.test/a.pdf');
    expect(userReply('', [{ url: 'https://f.test/x.png', name: 'x.png', contentType: 'image/png' }])).toEqual({
      body: 'x.png',
      attachment_urls: ['https://f.test/x.png'],
    });
  });
});
