import { CairnError } from '../errors.js';
import { parseSize } from '../size.js';
import type { ConfigNode } from './node.js';

/**
 * Fields whose value is a secret: it must come from the environment, `${env:NAME}`. Header names
 * count too (`authorization`, `cookie`, `x-api-key`, `x-auth-token`…), and so do URL query
 * parameters with such names (`?token=`, `?access_token=`, `?X-Amz-Signature=`).
 */
const SECRET_FIELDS = /password|passphrase|secret|token|api[-_]?key|authorization|cookie|signature|credential|^x-auth/i;
const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * What a field may hold; values are checked and converted (`${env:NAME}` replaced). `object` is
 * passed through as it is (options of another library's client); a table of fields is a nested
 * mapping whose keys are checked like the location's own.
 */
export type FieldType =
  | 'string'
  | 'number'
  | 'boolean'
  | 'size'
  | 'numbers'
  | 'strings'
  | 'object'
  | 'string|number'
  | 'number|null'
  | typeof CODE_ONLY
  /** One of these strings (an option typed as a union of string literals, e.g. `'cairn' | 'tarn'`). */
  | readonly string[]
  | { readonly [field: string]: FieldType };

/**
 * An option a program gives and a file cannot: an object made in code (an HTTP dispatcher, say).
 * Listed so that the kind still names every option; in a file it is an error that says why.
 */
export const CODE_ONLY = 'code-only';

/**
 * The field types a config file may use for an option whose API type is `T`: those whose value is
 * one `T` accepts. `T` excludes `undefined` (every option is optional in a file).
 */
type FieldFor<T> =
  | typeof CODE_ONLY
  | (string extends T ? 'string' : never)
  | ([T] extends [string] ? (string extends T ? never : readonly T[]) : never)
  | (number extends T ? 'number' : never)
  | (boolean extends T ? 'boolean' : never)
  | (string | number extends T ? 'size' | 'string|number' : never)
  | (number | null extends T ? 'number|null' : never)
  | (number[] extends T ? 'numbers' : never)
  | (string[] extends T ? 'strings' : never)
  | ([T] extends [readonly unknown[]] ? never : [T] extends [object] ? 'object' | OptionTable<T> : never);

/**
 * The config-file table of an options interface: every key of `Options`, each with a field type
 * whose value the option accepts. Written as `{ … } satisfies OptionTable<DiskOptions>`, a key the
 * interface gains and the table lacks, or a key the table has and the interface does not, is a
 * compile error: the API and the config file cannot drift.
 */
export type OptionTable<Options> = { readonly [K in keyof Required<Options>]: FieldFor<Exclude<Options[K], undefined>> };

function isChoice(type: FieldType): type is readonly string[] {
  return Array.isArray(type);
}

/** A string with `${env:NAME}` replaced by the variable's value; a secret field must use one. */
export function stringValue(node: ConfigNode, env: NodeJS.ProcessEnv): string {
  const raw = node.scalar;
  if (typeof raw !== 'string') node.fail(`expected a string, got ${JSON.stringify(raw)}`);
  const name = node.field.split('.').pop()!.replace(/\[\d+\]$/, '');
  const secret = SECRET_FIELDS.test(name) || (name === 'privateKey' && raw.includes('-----BEGIN'));
  if (secret && !/\$\{env:/.test(raw)) {
    node.fail(`a secret must not be written in the file: use \${env:NAME} and set NAME in the environment`);
  }
  checkUrlSecrets(node, raw);
  return raw.replace(ENV_REF, (_match, variable: string) => {
    const value = env[variable];
    if (value === undefined) node.fail(`the environment variable ${variable} is not set`);
    return value;
  });
}

/** A URL written in the file may carry no literal password (`user:pass@`) and no literal token in its query. */
function checkUrlSecrets(node: ConfigNode, raw: string): void {
  if (!/^[a-z][a-z0-9+.-]*:\/\/\S*$/i.test(raw)) return;
  // `${env:NAME}` stands in as a plain word, so that the URL parses as it will once filled in
  const refs: string[] = [];
  const marked = raw.replace(ENV_REF, (ref) => `cairnenvref${refs.push(ref) - 1}x`);
  const isRef = (text: string) => /^cairnenvref\d+x$/.test(text);
  let password: string;
  let query: string;
  const url = parsedOrNull(marked);
  if (url !== null && (url.password === '' || !(url.pathname + url.search).includes('@'))) {
    password = decodeURIComponentSafe(url.password);
    query = url.search.slice(1);
  } else {
    // not a URL to the parser, or an `@` past its credentials: a password holding `/` or `@` runs to the last `@`
    const rest = marked.slice(marked.indexOf('//') + 2);
    const userinfo = rest.slice(0, Math.max(0, rest.lastIndexOf('@')));
    password = userinfo.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : '';
    query = rest.includes('?') ? rest.slice(rest.indexOf('?') + 1) : '';
  }
  if (password !== '' && !isRef(password)) node.fail('a password in a URL must not be written in the file: use ${env:NAME} for it');
  for (const pair of query.split(/[&;]/)) {
    const [name = '', value = ''] = pair.split('=', 2);
    if (SECRET_FIELDS.test(decodeURIComponentSafe(name)) && value !== '' && !isRef(value)) {
      node.fail(`the URL parameter "${name}" is a secret and must not be written in the file: use ${'${env:NAME}'} for its value`);
    }
  }
}

function parsedOrNull(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function fieldValue(node: ConfigNode, type: FieldType, env: NodeJS.ProcessEnv): unknown {
  if (isChoice(type)) {
    const value = stringValue(node, env);
    if (!type.includes(value)) node.fail(`expected one of ${type.map((choice) => JSON.stringify(choice)).join(', ')}, got ${JSON.stringify(value)}`);
    return value;
  }
  if (typeof type === 'object') {
    if (!node.isMap) node.fail(`expected a mapping with any of ${Object.keys(type).join(', ')}`);
    return readOptions(node, type, env);
  }
  switch (type) {
    case CODE_ONLY:
      return node.fail('this option is an object made by a program: it can be given in code, not in a config file');
    case 'string':
      return stringValue(node, env);
    case 'number': {
      const value = node.scalar;
      if (typeof value !== 'number' || !Number.isFinite(value)) node.fail(`expected a number, got ${JSON.stringify(value)}`);
      return value;
    }
    case 'number|null':
      return node.isNull ? null : fieldValue(node, 'number', env);
    case 'boolean': {
      const value = node.scalar;
      if (typeof value !== 'boolean') node.fail(`expected true or false, got ${JSON.stringify(value)}`);
      return value;
    }
    case 'string|number':
      return typeof node.scalar === 'number' ? node.scalar : stringValue(node, env);
    case 'size': {
      const value = typeof node.scalar === 'number' ? node.scalar : stringValue(node, env);
      try {
        parseSize(value as string | number);
      } catch (error) {
        node.fail(`${(error as Error).message}`, error);
      }
      return value;
    }
    case 'numbers':
      return node.items().map((item) => fieldValue(item, 'number', env));
    case 'strings':
      return node.items().map((item) => stringValue(item, env));
    case 'object':
      return plain(node, env);
  }
}

/** A nested mapping or list as plain values (options passed through to a client), secrets checked. */
export function plain(node: ConfigNode, env: NodeJS.ProcessEnv): unknown {
  if (node.isNull) return null;
  if (node.isMap) return Object.fromEntries(node.entries().map(([key, value]) => [key, plain(value, env)]));
  if (node.isSeq) return node.items().map((item) => plain(item, env));
  return typeof node.scalar === 'string' ? stringValue(node, env) : node.scalar;
}

/**
 * Reads the options of a mapping against a table of known fields. An unknown field is an error
 * (a typo must not be silently ignored).
 */
export function readOptions(
  node: ConfigNode,
  fields: Record<string, FieldType>,
  env: NodeJS.ProcessEnv,
  skip: readonly string[] = [],
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [key, value] of node.entries()) {
    if (skip.includes(key)) continue;
    const type = fields[key];
    if (type === undefined) value.fail(`unknown option "${key}" (known: ${Object.keys(fields).join(', ')})`);
    options[key] = fieldValue(value, type, env);
  }
  return options;
}

/** Runs a constructor and turns its errors into errors that name the line and field. */
export async function building<T>(node: ConfigNode, make: () => T | Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (error) {
    if (error instanceof CairnError && 'line' in error) throw error;
    node.fail((error as Error).message, error);
  }
}
