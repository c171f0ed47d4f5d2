import { ERROR_CODES, WARNING_CODES } from '../../src/errors.js';

const START = '<!-- codes: generated from src/errors.ts, checked by test/package/errors.test.ts -->';
const END = '<!-- end of codes -->';

/** The tables of docs/errors.md, from ERROR_CODES and WARNING_CODES. */
export function errorTables(): string {
  const codes = Object.entries(ERROR_CODES).map(([code, { classes, meaning }]) => `| \`${code}\` | ${classes.map((name) => `\`${name}\``).join(', ')} | ${meaning} |`);
  const warnings = Object.entries(WARNING_CODES).map(([code, meaning]) => `| \`${code}\` | ${meaning} |`);
  return [
    START,
    '| code | class | meaning |',
    '| --- | --- | --- |',
    ...codes,
    '',
    'Warnings (`process.emitWarning`; the call itself succeeds):',
    '',
    '| warning code | meaning |',
    '| --- | --- |',
    ...warnings,
    END,
  ].join('\n');
}

/** The generated part of a page, or null when it has none. */
export function generatedPart(page: string): string | null {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  return start === -1 || end === -1 ? null : page.slice(start, end + END.length);
}
