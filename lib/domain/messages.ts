/**
 * The one way messages show what they were given, so that every message prints a value
 * once, quoted and cut short, and never a number in exponent form (`1e+21`).
 */

/** Values longer than this are cut in messages, so a huge tag never floods a log line. */
export const MAX_QUOTED_LENGTH = 64;

/**
 * Quotes a value for a message, cut short so a huge tag never floods a log line.
 *
 * @example
 * quoteShort('dialy'); // '"dialy"'
 */
export function quoteShort(value: string, max = MAX_QUOTED_LENGTH): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(cut);
}

/**
 * A number as a person writes it: digits, never exponent form, whatever its size.
 *
 * @example
 * formatNumber(1e21); // '1000000000000000000000'
 * formatNumber(2.5); // '2.5'
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
}

/**
 * The message of a tag problem: the key and its value, once, then the reason. A reason
 * that names one part of a list value starts with `:` (`snapkeeper:copy-to="a,b": "b" is
 * not a region`); a reason about the whole value never repeats it.
 *
 * @example
 * tagMessage('snapkeeper:retain', '5000', 'is out of range; expected 1 to 1000');
 * // 'snapkeeper:retain="5000" is out of range; expected 1 to 1000'
 */
export function tagMessage(key: string, value: string, reason: string): string {
  const separator = reason.startsWith(':') ? '' : ' ';
  return `${key}=${quoteShort(value)}${separator}${reason}`;
}

/**
 * How a reason names the part of a list value it is about: not at all when the list has
 * one part (the value is already printed), else `: "part"` before the verb.
 *
 * @example
 * partOf(['eu-wst-1'], 'eu-wst-1'); // 'is'
 * partOf(['eu-west-1', 'eu-wst-1'], 'eu-wst-1'); // ': "eu-wst-1" is'
 */
export function partOf(parts: readonly string[], part: string): string {
  return parts.length === 1 ? 'is' : `: ${quoteShort(part)} is`;
}
