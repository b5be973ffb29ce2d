// The demo bot's whole "intelligence": a few canned answers. Replace this with your NLU or LLM.

export const suggestions = ['Opening hours', 'Shipping', 'Returns', 'Talk to a human'];

const rules = [
  { match: /\b(human|person|agent|someone|somebody|staff|operator|representative|support team)\b/i, human: true },
  { match: /\b(hours?|open|opening|closed?|closing)\b/i, text: 'We are open Monday to Friday 9:00–17:00 and Saturday 10:00–14:00 (shop time).' },
  {
    match: /\b(ship|shipping|shipped|delivery|deliver|parcel)\b/i,
    text: 'Orders ship within 1–2 working days and arrive 2–4 days later. Shipping is free above €50.',
  },
  { match: /\b(return|returns|refund|exchange)\b/i, text: 'You can return anything within 30 days for a full refund: start the return from your order page.' },
  { match: /\b(price|prices|cost|costs|how much)\b/i, text: 'Prices are on each product page and include VAT.' },
  { match: /\b(thanks|thank you|cheers)\b/i, text: 'You are welcome! Anything else?' },
  { match: /^\s*(hi|hello|hey|good (morning|afternoon|evening))\b/i, text: 'Hello! Ask me about opening hours, shipping or returns — or ask for a human.' },
];

/** → { human: true } or { text } */
export function answer(text) {
  for (const rule of rules) if (rule.match.test(text)) return rule.human ? { human: true } : { text: rule.text };
  return { text: 'I am only a small demo bot and do not know that one. Would you like to talk to a person? Say “talk to a human”.' };
}
