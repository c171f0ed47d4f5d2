/**
 * Credentials out of what cairn prints: a URL's user and password, and its query (which often
 * carries a token), are replaced before a URL goes into a name, an error or a file.
 */

/**
 * `scheme://user:password@host/path?query` as `scheme://<redacted>@host/path?<redacted>`. Works on
 * strings that do not parse as URLs too (a password with `/` in it): everything up to the last `@`
 * after the scheme counts as credentials, so a password is never half shown.
 */
export function redactUrl(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*:\/\/)/i.exec(url);
  if (!scheme) return url;
  let rest = url.slice(scheme[1]!.length);
  const at = rest.lastIndexOf('@');
  if (at !== -1) rest = `<redacted>${rest.slice(at)}`;
  const question = rest.indexOf('?');
  if (question !== -1) rest = `${rest.slice(0, question)}?<redacted>`;
  return scheme[1]! + rest;
}
