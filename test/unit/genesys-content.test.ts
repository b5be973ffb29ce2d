import { describe, expect, it } from 'vitest';
import { readAttachments } from '../../src/connectors/genesys/genesys-content.js';

describe('Genesys message content', () => {
  it('reads the attachments with a URL and passes over entries of any other shape', () => {
    const file = { contentType: 'Attachment', attachment: { url: 'https://files.example/a.png', filename: 'a.png', mime: 'image/png' } };
    // A signed webhook with `content: [null]` once answered 500 (found by the hostile-webhook fuzz).
    expect(readAttachments([null, 'text', 7, [], { contentType: 'Attachment', attachment: null }, { contentType: 'Attachment' }, file])).toEqual([
      { url: 'https://files.example/a.png', name: 'a.png', contentType: 'image/png' },
    ]);
    expect(readAttachments(null)).toEqual([]);
    expect(readAttachments({ contentType: 'Attachment' })).toEqual([]);
  });
});
