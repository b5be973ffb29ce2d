// @ts-check
// Satisfaction ratings (CSAT): the score and comment a user gave after the chat ended, recorded by the
// bot. Shown as stars in the history, in a closed chat, and in a chat still on screen when it arrives.
import { h } from './dom.js';

/** "★★★★☆ 4/5 · “Quick and friendly”" as an element, or null without a rating. */
export function ratingElement(rating, className = 'rating') {
  if (!rating) return null;
  const stars = '★'.repeat(rating.score) + '☆'.repeat(Math.max(0, 5 - rating.score));
  return h(
    'span',
    { className, attrs: { 'data-score': rating.score, 'aria-label': `Rated ${rating.score} of 5${rating.comment ? `: ${rating.comment}` : ''}` } },
    h('span', { className: 'stars', attrs: { 'aria-hidden': 'true' } }, stars),
    ` ${rating.score}/5`,
    rating.comment ? h('span', { className: 'rating-comment' }, ` · “${rating.comment}”`) : null,
  );
}

/** The rating as a line of a conversation log. */
export function ratingLine(rating) {
  return h('li', { className: 'divider rating-line', attrs: { 'data-rating': rating.score } }, 'User’s rating: ', ratingElement(rating));
}

/** A chat on screen heard it was rated (the desk signal `handover.rated`): reads the rating and adds its line once. */
export async function showRating(api, chat) {
  if (!chat || chat.log.querySelector('li.rating-line')) return;
  const { rating } = await api('GET', `/v1/desk/handovers/${encodeURIComponent(chat.id)}`);
  if (rating && !chat.log.querySelector('li.rating-line')) {
    chat.log.append(ratingLine(rating));
    chat.scrollToEnd();
  }
}
